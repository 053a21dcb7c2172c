//! Recordings: the CSV format of `shared/docs/contract.md` section 2.
//!
//! ```text
//! t_us,r0c0,r0c1,...,r3c3
//! 67,2,1,0,1,...
//! ```
//!
//! Gzip-compressed when the file name ends in `.gz`. Reading streams one line
//! at a time into reused buffers, so memory stays flat on any file size. A
//! malformed file is an error naming the file and the line: nothing is
//! silently skipped.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::frame::{Frame, FrameSource, Grid, SourceError};

/// What is wrong with a recording, and where.
#[derive(Debug)]
pub struct RecordingError {
    pub path: PathBuf,
    /// 1-based line number; 0 when the problem is the file itself.
    pub line: usize,
    pub kind: ErrorKind,
}

#[derive(Debug)]
pub enum ErrorKind {
    Io(io::Error),
    Empty,
    BadHeader(String),
    FieldCount { expected: usize, found: usize },
    NotANumber { column: String, value: String },
    TimeNotIncreasing { previous: u64, found: u64 },
}

impl fmt::Display for RecordingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        if self.line > 0 {
            write!(f, "{p}: line {}: ", self.line)?;
        } else {
            write!(f, "{p}: ")?;
        }
        match &self.kind {
            ErrorKind::Io(e) => write!(f, "read error: {e}"),
            ErrorKind::Empty => write!(f, "empty file: no header line"),
            ErrorKind::BadHeader(why) => write!(f, "bad header: {why}"),
            ErrorKind::FieldCount { expected, found } => {
                write!(f, "expected {expected} fields, found {found}")
            }
            ErrorKind::NotANumber { column, value } => {
                write!(f, "column {column}: {value:?} is not a valid count")
            }
            ErrorKind::TimeNotIncreasing { previous, found } => {
                write!(f, "t_us {found} does not increase (previous frame at {previous})")
            }
        }
    }
}

impl std::error::Error for RecordingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RecordingError> for SourceError {
    fn from(e: RecordingError) -> Self {
        SourceError::Recording(e.to_string())
    }
}

fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// Parses the header line into a grid. Taxel columns must be `rRcC` in
/// row-major order covering a full rows x cols grid.
pub fn parse_header(line: &str) -> Result<Grid, String> {
    let mut fields = line.split(',');
    match fields.next() {
        Some("t_us") => {}
        Some(other) => return Err(format!("first column must be t_us, found {other:?}")),
        None => return Err("no columns".into()),
    }
    let mut cells = Vec::new();
    for name in fields {
        let pos = name
            .strip_prefix('r')
            .and_then(|rest| rest.split_once('c'))
            .and_then(|(r, c)| Some((r.parse::<usize>().ok()?, c.parse::<usize>().ok()?)));
        match pos {
            Some(p) => cells.push(p),
            None => return Err(format!("column {name:?} is not of the form rRcC")),
        }
    }
    if cells.is_empty() {
        return Err("no taxel columns after t_us".into());
    }
    // No index of a full grid reaches the number of taxels (and the grid's
    // size cannot overflow).
    if let Some((r, c)) = cells.iter().find(|p| p.0 >= cells.len() || p.1 >= cells.len()) {
        return Err(format!(
            "column r{r}c{c} is outside a grid of {} taxel columns",
            cells.len()
        ));
    }
    let rows = cells.iter().map(|p| p.0).max().unwrap_or(0) + 1;
    let cols = cells.iter().map(|p| p.1).max().unwrap_or(0) + 1;
    let grid = Grid::new(rows, cols);
    if cells.len() != grid.len() {
        return Err(format!("{} taxel columns do not fill a {grid} grid", cells.len()));
    }
    for (i, &(r, c)) in cells.iter().enumerate() {
        if grid.position(i) != (r, c) {
            let (er, ec) = grid.position(i);
            return Err(format!(
                "column {} is r{r}c{c}, expected r{er}c{ec} (row-major order)",
                i + 2
            ));
        }
    }
    Ok(grid)
}

/// Streams frames from a recording file.
pub struct RecordingReader {
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    grid: Grid,
    names: Vec<String>,
    line_no: usize,
    line: String,
    last_t_us: Option<u64>,
}

impl RecordingReader {
    /// Opens `path` (gzip if it ends in `.gz`) and reads its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RecordingError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| RecordingError {
            path: path.clone(),
            line: 0,
            kind: ErrorKind::Io(e),
        })?;
        let raw: Box<dyn Read + Send> = if is_gz(&path) {
            Box::new(MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        Self::from_reader(path, BufReader::with_capacity(64 * 1024, raw))
    }

    /// Reads a recording from any buffered reader; `path` names it in errors.
    pub fn from_reader(path: impl Into<PathBuf>, input: impl BufRead + Send + 'static) -> Result<Self, RecordingError> {
        let mut reader = RecordingReader {
            path: path.into(),
            input: Box::new(input),
            grid: Grid::new(0, 0),
            names: Vec::new(),
            line_no: 0,
            line: String::new(),
            last_t_us: None,
        };
        if !reader.read_line()? {
            return Err(reader.error(ErrorKind::Empty));
        }
        let header = reader.line.clone();
        reader.grid = parse_header(&header).map_err(|why| reader.error(ErrorKind::BadHeader(why)))?;
        reader.names = reader.grid.taxel_names().collect();
        Ok(reader)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, kind: ErrorKind) -> RecordingError {
        RecordingError {
            path: self.path.clone(),
            line: self.line_no,
            kind,
        }
    }

    /// Reads the next line into `self.line` without its line end.
    fn read_line(&mut self) -> Result<bool, RecordingError> {
        self.line.clear();
        self.line_no += 1;
        let n = self
            .input
            .read_line(&mut self.line)
            .map_err(|e| self.error(ErrorKind::Io(e)))?;
        if n == 0 {
            return Ok(false);
        }
        while self.line.ends_with('\n') || self.line.ends_with('\r') {
            self.line.pop();
        }
        Ok(true)
    }

    /// Reads the next frame into `frame`; `Ok(false)` at the end of the file.
    pub fn read_frame(&mut self, frame: &mut Frame) -> Result<bool, RecordingError> {
        if !self.read_line()? {
            return Ok(false);
        }
        let expected = self.grid.len() + 1;
        let found = self.line.bytes().filter(|&b| b == b',').count() + 1;
        if found != expected {
            return Err(self.error(ErrorKind::FieldCount { expected, found }));
        }
        frame.counts.resize(self.grid.len(), 0);
        let mut t_us = 0;
        for (i, field) in self.line.split(',').enumerate() {
            if i == 0 {
                t_us = field.parse::<u64>().map_err(|_| {
                    self.error(ErrorKind::NotANumber {
                        column: "t_us".into(),
                        value: field.into(),
                    })
                })?;
            } else {
                frame.counts[i - 1] = field.parse::<u16>().map_err(|_| {
                    self.error(ErrorKind::NotANumber {
                        column: self.names[i - 1].clone(),
                        value: field.into(),
                    })
                })?;
            }
        }
        if let Some(previous) = self.last_t_us {
            if t_us <= previous {
                return Err(self.error(ErrorKind::TimeNotIncreasing { previous, found: t_us }));
            }
        }
        self.last_t_us = Some(t_us);
        frame.t_us = t_us;
        Ok(true)
    }
}

impl FrameSource for RecordingReader {
    fn grid(&self) -> Grid {
        self.grid
    }
    fn next_into(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        Ok(self.read_frame(frame)?)
    }
}

/// Writes frames in the recording format; gzip when the name ends in `.gz`.
pub struct RecordingWriter<W: Write> {
    out: W,
    grid: Grid,
    line: String,
}

/// A recording file being written: plain or gzip.
pub enum FileSink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            FileSink::Plain(w) => w.write(buf),
            FileSink::Gzip(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            FileSink::Plain(w) => w.flush(),
            FileSink::Gzip(w) => w.flush(),
        }
    }
}

impl RecordingWriter<FileSink> {
    /// Creates `path` and writes the header.
    pub fn create(path: impl AsRef<Path>, grid: Grid) -> io::Result<Self> {
        let path = path.as_ref();
        let file = BufWriter::with_capacity(64 * 1024, File::create(path)?);
        let out = if is_gz(path) {
            FileSink::Gzip(GzEncoder::new(file, Compression::default()))
        } else {
            FileSink::Plain(file)
        };
        RecordingWriter::new(out, grid)
    }

    /// Ends the file (for gzip, writes the trailer) and reports any error.
    pub fn close(self) -> io::Result<()> {
        match self.finish()? {
            FileSink::Plain(mut w) => w.flush(),
            FileSink::Gzip(gz) => gz.finish()?.flush(),
        }
    }
}

impl<W: Write> RecordingWriter<W> {
    pub fn new(mut out: W, grid: Grid) -> io::Result<Self> {
        let mut header = String::from("t_us");
        for name in grid.taxel_names() {
            header.push(',');
            header.push_str(&name);
        }
        header.push('\n');
        out.write_all(header.as_bytes())?;
        Ok(RecordingWriter {
            out,
            grid,
            line: String::new(),
        })
    }

    pub fn write_frame(&mut self, frame: &Frame) -> io::Result<()> {
        use std::fmt::Write as _;
        if frame.counts.len() != self.grid.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "frame has {} counts, grid {} needs {}",
                    frame.counts.len(),
                    self.grid,
                    self.grid.len()
                ),
            ));
        }
        self.line.clear();
        let _ = write!(self.line, "{}", frame.t_us);
        for c in &frame.counts {
            let _ = write!(self.line, ",{c}");
        }
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }

    /// Flushes everything, including the gzip trailer, and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
