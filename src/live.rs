//! Live frames from the mat (or the simulator read through emulated chips)
//! through the sampler: what `flatback check` and `flatback record --source
//! spi` run.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::check::{self, Display};
use crate::cli::SourceKind;
use crate::config::Config;
use crate::frame::{Frame, FrameSource};
use crate::hardware::{self, SimulatedMat, Wiring};
use crate::recording::RecordingWriter;
use crate::sampler::{FrameReceiver, Sampler, SamplerConfig};
use crate::sim::{Kind, Scenario};

/// The sampler settings of the `[hardware]` section.
pub fn sampler_config(config: &Config) -> SamplerConfig {
    SamplerConfig {
        realtime_priority: config.hardware.realtime_priority,
        ..SamplerConfig::at(config.hardware.rate_hz)
    }
}

fn describe(wiring: &Wiring) -> String {
    let chips: Vec<String> = wiring.adcs.iter().map(|a| format!("SPI{} CE{}", a.bus, a.cs)).collect();
    format!(
        "{} x{} on {}, {} grid{}",
        wiring.chip,
        wiring.adcs.len(),
        chips.join(", "),
        wiring.grid,
        if wiring.matrix.is_some() { ", row-scanned" } else { "" }
    )
}

/// Starts the sampler on the configured mat (`Spi`) or on the simulator
/// read through emulated chips wired the same way (`Sim`). Returns a title
/// for the screen too.
pub fn start(config: &Config, source: SourceKind, kind: &str, seed: u64) -> Result<(Sampler, FrameReceiver, String)> {
    let wiring = hardware::wiring_of(config)?;
    let rate = config.hardware.rate_hz;
    let title = match source {
        SourceKind::Spi => format!("flatback check: {}, target {rate} Hz", describe(&wiring)),
        SourceKind::Sim => format!(
            "flatback check: simulated {kind} (seed {seed}) through emulated {}, target {rate} Hz",
            describe(&wiring)
        ),
    };
    let (sampler, rx) = match source {
        SourceKind::Spi => {
            let scanner = hardware::open(&wiring, config.hardware.spi_clock_hz)?;
            Sampler::start(scanner, sampler_config(config))?
        }
        SourceKind::Sim => {
            let kind: Kind = kind.parse().map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
            let scenario = Scenario::new(kind, seed)
                .with_rate(rate.clamp(50.0, 2000.0))
                .with_grid(wiring.grid)
                .with_adc_bits(wiring.chip.bits());
            let mat = SimulatedMat::new(&wiring, scenario).from_first_person();
            Sampler::start(mat, sampler_config(config))?
        }
    };
    Ok((sampler, rx, title))
}

/// `flatback check`.
pub fn check(config: &Config, source: SourceKind, seconds: Option<f64>, kind: &str, seed: u64) -> Result<()> {
    let (sampler, rx, title) = start(config, source, kind, seed)?;
    let display = match seconds {
        None if std::io::stdout().is_terminal() => Display::Live,
        None => Display::Snapshots { seconds: 3.0 },
        Some(s) => Display::Snapshots { seconds: s },
    };
    let stats = check::run(&title, sampler, rx, display)?;
    eprintln!("sampler: {}", stats.summary());
    Ok(())
}

/// A flag set by Ctrl-C (SIGINT) or SIGTERM, so a recording is closed
/// properly.
fn stop_on_signal() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = Arc::clone(&flag);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("signal handler")?;
    std::thread::Builder::new()
        .name("flatback-signals".into())
        .spawn(move || {
            rt.block_on(async {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                }
            });
            set.store(true, Ordering::Relaxed);
        })
        .context("signal thread")?;
    Ok(flag)
}

/// `flatback record --source spi`: the configured mat into a recording of
/// the contract's format, until `seconds` of frames or Ctrl-C.
pub fn record(config: &Config, seconds: Option<f64>, file: &Path) -> Result<()> {
    record_from(config, SourceKind::Spi, seconds, file)
}

/// [`record`] from either source (the simulator's default scenario for
/// `Sim`: what the tests exercise on a machine without a mat).
pub fn record_from(config: &Config, source: SourceKind, seconds: Option<f64>, file: &Path) -> Result<()> {
    let stop = stop_on_signal()?;
    let (sampler, mut rx, title) = start(config, source, "three_sets", 1)?;
    let grid = rx.grid();
    let mut writer = RecordingWriter::create(file, grid).with_context(|| format!("creating {}", file.display()))?;
    eprintln!(
        "{}; recording to {}{}",
        title.replace("flatback check: ", "flatback record: "),
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
    // Whatever was recorded is kept, even when the mat failed.
    writer.close().with_context(|| format!("closing {}", file.display()))?;
    eprintln!(
        "wrote {frames} frames to {}; sampler: {}",
        file.display(),
        stats.summary()
    );
    result
}
