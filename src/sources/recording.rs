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

use crate::contract::frame::{Frame, FrameSource, Grid, SourceError};

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

/// Frames handed from the parsing thread to the reader in one go.
const BATCH: usize = 1024;
/// Batches parsed ahead of the reader (bounded memory).
const AHEAD: usize = 4;

/// Frames parsed by the worker: times, counts row after row, and how the
/// stream went on after them (`None`: more batches follow).
struct Batch {
    t_us: Vec<u64>,
    counts: Vec<u16>,
    end: Option<Result<(), RecordingError>>,
}

/// Streams frames from a recording file.
///
/// Decompression and CSV parsing run on a thread of their own, a few
/// batches of frames ahead, so that whoever reads the frames (the detector
/// in `flatback replay`) works in parallel with them. Frames, their order
/// and errors (after every frame before the bad line) are what a
/// line-by-line reader gives.
pub struct RecordingReader {
    path: PathBuf,
    grid: Grid,
    batches: std::sync::mpsc::Receiver<Batch>,
    spent: std::sync::mpsc::Sender<Batch>,
    batch: Batch,
    next: usize,
    done: bool,
}

/// Reads and parses the lines of a recording (on the worker thread).
struct LineParser {
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    grid: Grid,
    names: Vec<String>,
    line_no: usize,
    line: String,
    /// The current line's bytes (the text of `line` when it needs parsing
    /// as text).
    bytes: Vec<u8>,
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
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(64 * 1024, file)))
        } else {
            Box::new(file)
        };
        Self::from_reader(path, BufReader::with_capacity(256 * 1024, raw))
    }

    /// Reads a recording from any buffered reader; `path` names it in errors.
    pub fn from_reader(path: impl Into<PathBuf>, input: impl BufRead + Send + 'static) -> Result<Self, RecordingError> {
        let mut parser = LineParser {
            path: path.into(),
            input: Box::new(input),
            grid: Grid::new(0, 0),
            names: Vec::new(),
            line_no: 0,
            line: String::new(),
            bytes: Vec::new(),
            last_t_us: None,
        };
        if !parser.read_line()? {
            return Err(parser.error(ErrorKind::Empty));
        }
        let header = parser.line.clone();
        parser.grid = parse_header(&header).map_err(|why| parser.error(ErrorKind::BadHeader(why)))?;
        parser.names = parser.grid.taxel_names().collect();
        let (path, grid) = (parser.path.clone(), parser.grid);
        let (to_reader, batches) = std::sync::mpsc::sync_channel(AHEAD);
        let (spent, from_reader) = std::sync::mpsc::channel::<Batch>();
        std::thread::Builder::new()
            .name("recording".into())
            .spawn(move || parser.run(to_reader, from_reader))
            .map_err(|e| RecordingError {
                path: path.clone(),
                line: 0,
                kind: ErrorKind::Io(e),
            })?;
        Ok(RecordingReader {
            path,
            grid,
            batches,
            spent,
            batch: Batch::empty(),
            next: 0,
            done: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the next frame into `frame`; `Ok(false)` at the end of the file.
    pub fn read_frame(&mut self, frame: &mut Frame) -> Result<bool, RecordingError> {
        let n = self.grid.len();
        loop {
            if self.next < self.batch.t_us.len() {
                let k = self.next;
                self.next += 1;
                frame.t_us = self.batch.t_us[k];
                frame.counts.clear();
                frame.counts.extend_from_slice(&self.batch.counts[k * n..(k + 1) * n]);
                return Ok(true);
            }
            if self.done {
                return Ok(false);
            }
            if let Some(end) = self.batch.end.take() {
                self.done = true;
                return end.map(|()| false);
            }
            let spent = std::mem::replace(&mut self.batch, Batch::empty());
            // The worker may have finished: a spent batch is only a spare.
            let _ = self.spent.send(spent);
            self.next = 0;
            match self.batches.recv() {
                Ok(batch) => self.batch = batch,
                // The worker ends only after sending its last batch.
                Err(_) => {
                    self.done = true;
                    return Ok(false);
                }
            }
        }
    }
}

impl Batch {
    fn empty() -> Batch {
        Batch {
            t_us: Vec::new(),
            counts: Vec::new(),
            end: None,
        }
    }
}

impl LineParser {
    /// The worker: parses batches of frames until the end of the file or
    /// an error (sent with the frames before it), or until the reader is
    /// dropped.
    fn run(mut self, out: std::sync::mpsc::SyncSender<Batch>, spent: std::sync::mpsc::Receiver<Batch>) {
        let mut frame = Frame::zeroed(self.grid);
        loop {
            let mut batch = spent.try_recv().unwrap_or_else(|_| Batch::empty());
            batch.t_us.clear();
            batch.counts.clear();
            batch.end = None;
            while batch.t_us.len() < BATCH {
                match self.read_frame(&mut frame) {
                    Ok(true) => {
                        batch.t_us.push(frame.t_us);
                        batch.counts.extend_from_slice(&frame.counts);
                    }
                    Ok(false) => {
                        batch.end = Some(Ok(()));
                        break;
                    }
                    Err(e) => {
                        batch.end = Some(Err(e));
                        break;
                    }
                }
            }
            let last = batch.end.is_some();
            if out.send(batch).is_err() || last {
                return;
            }
        }
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
    ///
    /// Lines of plain digits and commas (every line a recorder writes) are
    /// parsed straight from their bytes; anything else goes through
    /// [`LineParser::parse_text`], which gives the same frame or the error
    /// naming the line.
    fn read_frame(&mut self, frame: &mut Frame) -> Result<bool, RecordingError> {
        self.bytes.clear();
        self.line_no += 1;
        let n = self
            .input
            .read_until(b'\n', &mut self.bytes)
            .map_err(|e| self.error(ErrorKind::Io(e)))?;
        if n == 0 {
            return Ok(false);
        }
        while let Some(b'\n' | b'\r') = self.bytes.last() {
            self.bytes.pop();
        }
        let t_us = match parse_digits(&self.bytes, &mut frame.counts, self.grid.len()) {
            Some(t_us) => t_us,
            None => {
                self.line = match String::from_utf8(std::mem::take(&mut self.bytes)) {
                    Ok(line) => line,
                    Err(e) => {
                        self.bytes = e.into_bytes();
                        let bad = io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8");
                        return Err(self.error(ErrorKind::Io(bad)));
                    }
                };
                let t_us = self.parse_text(frame);
                self.bytes = std::mem::take(&mut self.line).into_bytes();
                t_us?
            }
        };
        if let Some(previous) = self.last_t_us {
            if t_us <= previous {
                return Err(self.error(ErrorKind::TimeNotIncreasing { previous, found: t_us }));
            }
        }
        self.last_t_us = Some(t_us);
        frame.t_us = t_us;
        Ok(true)
    }

    /// Parses `self.line` into `frame`'s counts; returns its time.
    fn parse_text(&self, frame: &mut Frame) -> Result<u64, RecordingError> {
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
        Ok(t_us)
    }
}

/// A line of `taxels + 1` plain decimal fields (the time, then the counts
/// into `counts`): its time; `None` for anything else (an empty field, a
/// sign, a space, a number out of range, too few or too many fields).
fn parse_digits(line: &[u8], counts: &mut Vec<u16>, taxels: usize) -> Option<u64> {
    counts.resize(taxels, 0);
    let mut fields = line.split(|&b| b == b',');
    let t = fields.next()?;
    // Up to 19 digits always fit a u64.
    if t.is_empty() || t.len() > 19 {
        return None;
    }
    let mut t_us = 0u64;
    for &b in t {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        t_us = t_us * 10 + d as u64;
    }
    for c in counts.iter_mut() {
        let f = fields.next()?;
        if f.is_empty() || f.len() > 5 {
            return None;
        }
        let mut v = 0u32;
        for &b in f {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + d as u32;
        }
        *c = u16::try_from(v).ok()?;
    }
    if fields.next().is_some() {
        return None;
    }
    Some(t_us)
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
    Gzip(Box<GzEncoder<BufWriter<File>>>),
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
            FileSink::Gzip(Box::new(GzEncoder::new(file, Compression::default())))
        } else {
            FileSink::Plain(file)
        };
        RecordingWriter::new(out, grid)
    }

    /// Ends the file (for gzip, writes the trailer) and reports any error.
    pub fn close(self) -> io::Result<()> {
        match self.finish()? {
            FileSink::Plain(mut w) => w.flush(),
            FileSink::Gzip(gz) => (*gz).finish()?.flush(),
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
