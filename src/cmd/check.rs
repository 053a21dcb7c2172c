//! `flatback check`: the mat live, for the installer.

use std::io::IsTerminal;

use anyhow::Result;

use crate::check::{self, Display};
use crate::cli::{CheckArgs, SourceKind};
use crate::config::Config;
use crate::hardware::Wiring;
use crate::sources::{self, Live};

pub fn run(args: &CheckArgs, config: &Config) -> Result<()> {
    let live = match args.source {
        SourceKind::Spi => Live::Spi,
        SourceKind::Sim => Live::Sim {
            kind: args.kind.parse().map_err(|e| anyhow::anyhow!("--kind: {e}"))?,
            seed: args.seed,
        },
    };
    let (sampler, rx, wiring) = sources::sample(config, &live)?;
    let display = match args.seconds {
        None if std::io::stdout().is_terminal() => Display::Live,
        None => Display::Snapshots { seconds: 3.0 },
        Some(s) => Display::Snapshots { seconds: s },
    };
    let title = format!("flatback check: {}", title(&wiring, &live, config.hardware.rate_hz));
    let stats = check::run(&title, sampler, rx, display)?;
    eprintln!("sampler: {}", stats.summary());
    Ok(())
}

/// What is being read: the chips, their selects, the grid, the rate.
pub fn title(wiring: &Wiring, live: &Live, rate_hz: f64) -> String {
    let chips: Vec<String> = wiring.adcs.iter().map(|a| format!("SPI{} CE{}", a.bus, a.cs)).collect();
    let hardware = format!(
        "{} x{} on {}, {} grid{}",
        wiring.chip,
        wiring.adcs.len(),
        chips.join(", "),
        wiring.grid,
        if wiring.matrix.is_some() { ", row-scanned" } else { "" }
    );
    match live {
        Live::Spi => format!("{hardware}, target {rate_hz} Hz"),
        Live::Sim { kind, seed } => {
            format!("simulated {kind} (seed {seed}) through emulated {hardware}, target {rate_hz} Hz")
        }
    }
}
