//! `flatback plot`: the picture of a recorded session, as SVG or PNG.
//!
//! - [`trace`]: the per-frame signals in bounded memory (pure);
//! - [`spans`]: what the events say about time: sessions, sets, arches (pure);
//! - [`svg`]: the picture built as SVG text (pure);
//! - [`png`]: the SVG rendered with resvg.
//!
//! [`load`] runs the detector over a recording (its events, unless an events
//! file is given, and its per-frame contact and rep signal); [`write()`] saves
//! the picture by the file's extension.

pub mod read;
pub mod spans;
pub mod svg;
pub mod trace;

use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::contract::event::Event;
use crate::contract::frame::{Frame, FrameSource};
use crate::detector::{Detector, DetectorConfig};
use crate::sources::RecordingReader;
use svg::PlotData;
use trace::Trace;

/// What the title says: the mat and the session's date.
#[derive(Debug, Clone, Default)]
pub struct Label {
    /// The mat's id; `None`: the recording's file name without its
    /// extension.
    pub mat: Option<String>,
    /// `YYYY-MM-DD`; `None`: the day the recording file was last modified.
    pub date: Option<String>,
}

/// Runs the detector over `recording` and gathers what the picture shows.
/// With `events`, the rep marks, arches and sets come from that file (JSON
/// lines as `flatback replay` prints them, or as the daemon publishes them)
/// instead of from this run of the detector.
pub fn load(recording: &Path, config: &DetectorConfig, events: Option<&Path>, label: &Label) -> Result<PlotData> {
    let mut source = RecordingReader::open(recording)?;
    let grid = source.grid();
    let mut detector = Detector::new(grid, config.clone()).map_err(|e| anyhow::anyhow!("config [detector]: {e}"))?;
    let mut trace = Trace::new(svg::PLOT_W, grid.len(), config.full_scale());
    let mut frame = Frame::zeroed(grid);
    let mut detected = Vec::new();
    while source.next_into(&mut frame)? {
        detector.push(&frame, &mut detected);
        trace.push(frame.t_us, &detector.probe(), &frame.counts);
    }
    detector.finish(&mut detected);
    let Some((t0_us, t1_us)) = trace.span_us() else {
        bail!("{}: no frames", recording.display());
    };
    let events = match events {
        Some(path) => read_events(path)?,
        None => detected,
    };
    let date = match &label.date {
        Some(date) => date.clone(),
        None => file_date(recording)?,
    };
    Ok(PlotData {
        mat: label.mat.clone().unwrap_or_else(|| recording_stem(recording)),
        date,
        source: recording
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        grid,
        t0_ms: t0_us / 1000,
        t1_ms: t1_us / 1000,
        columns: trace.columns(svg::PLOT_W),
        events,
        arch_threshold: config.arch_contact,
        full_scale: config.full_scale(),
        upper_rows: config.upper_rows.clone(),
        lumbar_rows: config.lumbar_rows.clone(),
        sacral_rows: config.sacral_rows.clone(),
    })
}

/// The recording's file name without `.csv` or `.csv.gz`.
pub fn recording_stem(recording: &Path) -> String {
    let name = recording
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for ext in [".csv.gz", ".gz", ".csv"] {
        if let Some(stem) = name.strip_suffix(ext).filter(|s| !s.is_empty()) {
            return stem.to_string();
        }
    }
    name
}

/// The day `path` was last modified, `YYYY-MM-DD` in local time: a
/// recording holds only the sampler's monotonic clock, and is written as the
/// session goes, so its file's time is when the session ended.
pub fn file_date(path: &Path) -> Result<String> {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("{}: reading its modification time", path.display()))?;
    let secs = match modified.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as libc::time_t,
        Err(e) => -(e.duration().as_secs() as libc::time_t),
    };
    // SAFETY: localtime_r only reads `secs` and writes the `tm` it is given
    // (all integers, so zeroed is a valid value); no shared state.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        bail!("{}: its modification time is not a date", path.display());
    }
    Ok(format!(
        "{:04}-{:02}-{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday
    ))
}

/// Events as JSON lines; blank lines are skipped, fields besides the
/// contract's (`mat`, `seq`, `time`) ignored.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut events = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let e: Event =
            serde_json::from_str(&line).with_context(|| format!("{} line {}: not an event", path.display(), n + 1))?;
        events.push(e);
    }
    Ok(events)
}

/// Renders SVG text to PNG with resvg, with the system's fonts (without any,
/// the picture comes out without its text rather than not at all).
pub fn png(svg_text: &str) -> Result<Vec<u8>> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    options.fontdb_mut().load_system_fonts();
    let tree = usvg::Tree::from_str(svg_text, &options).context("parsing the SVG")?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).context("allocating the picture")?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().context("encoding the PNG")
}

/// Writes the picture to `out`: `.svg` as is, `.png` rendered.
pub fn write(svg_text: &str, out: &Path) -> Result<()> {
    let name = out.to_string_lossy().to_ascii_lowercase();
    let bytes = if name.ends_with(".svg") {
        svg_text.as_bytes().to_vec()
    } else if name.ends_with(".png") {
        png(svg_text)?
    } else {
        bail!("{}: the output must end in .svg or .png", out.display());
    };
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))
}

/// `flatback plot`: one run of the detector, every output written.
pub fn run(
    recording: &Path,
    config: &DetectorConfig,
    events: Option<&Path>,
    label: &Label,
    outputs: &[std::path::PathBuf],
) -> Result<()> {
    if outputs.is_empty() {
        bail!("no output: give -o FILE.svg or -o FILE.png");
    }
    for out in outputs {
        let name = out.to_string_lossy().to_ascii_lowercase();
        if !(name.ends_with(".svg") || name.ends_with(".png")) {
            bail!("{}: the output must end in .svg or .png", out.display());
        }
    }
    let session = load(recording, config, events, label)?;
    let text = svg::build(&session);
    for out in outputs {
        write(&text, out)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
