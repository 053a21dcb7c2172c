//! `flatback record`: frames into a recording of the contract's format,
//! from the simulator (with its ground truth beside it) or from the mat.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use anyhow::{bail, Context, Result};

use crate::cmd::cli::{RecordArgs, SimArgs, SourceKind};
use crate::config::Config;
use crate::contract::frame::{Frame, FrameSource};
use crate::sim::{Kind, Scenario, Simulator};
use crate::sources::{self, LiveInput, RecordingWriter};

pub fn run(args: &RecordArgs, config: &Config) -> Result<()> {
    match args.source {
        SourceKind::Sim => simulated(&args.sim, args.seconds, &args.file),
        SourceKind::Spi => live(config, &LiveInput::Spi, args.seconds, &args.file),
    }
}

impl SimArgs {
    /// The scenario these arguments name, lasting `seconds` if given.
    pub fn scenario(&self, seconds: Option<f64>) -> Result<Scenario> {
        if let Some(case) = self.case {
            let mut s = Scenario::random(case);
            s.duration_s = seconds.or(s.duration_s);
            return Ok(s);
        }
        let kind: Kind = self.kind.parse().map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
        if !(50.0..=2000.0).contains(&self.rate) {
            bail!("--rate {}: must be between 50 and 2000 Hz", self.rate);
        }
        let mut s = Scenario::new(kind, self.seed);
        s.rate_hz = self.rate;
        s.duration_s = seconds;
        Ok(s)
    }
}

/// `NAME.truth.json` beside `NAME.csv[.gz]`.
pub fn truth_path(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = name
        .strip_suffix(".csv.gz")
        .or_else(|| name.strip_suffix(".csv"))
        .or_else(|| name.strip_suffix(".gz"))
        .unwrap_or(&name);
    file.with_file_name(format!("{base}.truth.json"))
}

fn simulated(sim: &SimArgs, seconds: Option<f64>, file: &Path) -> Result<()> {
    let scenario = sim.scenario(seconds)?;
    let mut source = Simulator::new(&scenario);
    let mut writer =
        RecordingWriter::create(file, source.grid()).with_context(|| format!("creating {}", file.display()))?;
    let mut frame = Frame::zeroed(source.grid());
    let mut frames = 0u64;
    while source.next_into(&mut frame)? {
        writer
            .write_frame(&frame)
            .with_context(|| format!("writing {}", file.display()))?;
        frames += 1;
    }
    writer.close().with_context(|| format!("closing {}", file.display()))?;
    let truth = truth_path(file);
    std::fs::write(&truth, source.truth().to_json()).with_context(|| format!("writing {}", truth.display()))?;
    eprintln!(
        "wrote {frames} frames to {} and ground truth to {}",
        file.display(),
        truth.display()
    );
    Ok(())
}

/// The mat (or the simulator through emulated chips) through the real
/// sampler into `file`, until `seconds` of frames or SIGINT/SIGTERM.
/// Whatever was recorded is kept, even when the mat fails.
pub fn live(config: &Config, live: &LiveInput, seconds: Option<f64>, file: &Path) -> Result<()> {
    let stop = crate::daemon::signals::flag().context("signal handler")?;
    let (sampler, mut rx, wiring) = sources::sample(config, live)?;
    let grid = wiring.grid;
    let mut writer = RecordingWriter::create(file, grid).with_context(|| format!("creating {}", file.display()))?;
    eprintln!(
        "flatback record: {}; recording to {}{}",
        super::check::title(&wiring, live, config.hardware.rate_hz),
        file.display(),
        if seconds.is_some() { "" } else { " until Ctrl-C" }
    );
    let limit_us = seconds.map(|s| (s * 1e6) as u64);
    let mut frame = Frame::zeroed(grid);
    let mut frames = 0u64;
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        match rx.next_into(&mut frame) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(anyhow::Error::new(e)),
        }
        if limit_us.is_some_and(|l| frame.t_us > l) {
            break Ok(());
        }
        if let Err(e) = writer.write_frame(&frame) {
            break Err(anyhow::Error::new(e).context(format!("writing {}", file.display())));
        }
        frames += 1;
    };
    let stats = sampler.stop();
    writer.close().with_context(|| format!("closing {}", file.display()))?;
    eprintln!(
        "wrote {frames} frames to {}; sampler: {}",
        file.display(),
        stats.summary()
    );
    result
}
