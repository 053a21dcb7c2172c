//! `flatback replay`: the detector over a recording, events as JSON lines.

use std::io::{self, BufWriter, Write};

use anyhow::{Context, Result};

use crate::cmd::cli::ReplayArgs;
use crate::config::Config;
use crate::contract::frame::FrameSource;
use crate::detector::Detector;
use crate::sources::RecordingReader;
use crate::tools::replay;

pub fn run(args: &ReplayArgs, config: &Config) -> Result<()> {
    let mut source = RecordingReader::open(&args.recording)?;
    let mut detector =
        Detector::new(source.grid(), config.detector.clone()).map_err(|e| anyhow::anyhow!("config [detector]: {e}"))?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut write_err = None;
    let result = replay::run(&mut source, &mut detector, |e| {
        if write_err.is_none() {
            if let Err(err) = writeln!(out, "{}", e.to_json()) {
                write_err = Some(err);
            }
        }
    });
    // Events accepted before an error are written out before reporting it.
    out.flush()?;
    if let Some(e) = write_err {
        return Err(e).context("writing events");
    }
    let stats = result?;
    tracing::info!(frames = stats.frames, events = stats.events, "replay done");
    Ok(())
}
