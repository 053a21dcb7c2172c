//! `flatback check`: the mat live, for the installer; `--cue`: the cue's
//! buzzer and LED, each pin in turn.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use embedded_hal::digital::OutputPin;

use crate::cmd::cli::{CheckArgs, SourceKind};
use crate::config::cue::Role;
use crate::config::{Config, MatEntry};
use crate::daemon::cue::{CuePins, Levels, Show};
use crate::hardware::{EmulatedGpio, RppalGpio, Wiring};
use crate::sources::{self, LiveInput};
use crate::tools::inspect::{self, Display};

pub fn run(args: &CheckArgs, config: &Config) -> Result<()> {
    if args.cue {
        return cue(args, config);
    }
    let live = match args.source {
        SourceKind::Spi => LiveInput::Spi,
        SourceKind::Sim => LiveInput::Sim {
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
    let stats = inspect::run(&title, sampler, rx, display)?;
    eprintln!("sampler: {}", stats.summary());
    Ok(())
}

/// What is being read: the chips, their selects, the grid, the rate.
pub fn title(wiring: &Wiring, live: &LiveInput, rate_hz: f64) -> String {
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
        LiveInput::Spi => format!("{hardware}, target {rate_hz} Hz"),
        LiveInput::Sim { kind, seed } => {
            format!("simulated {kind} (seed {seed}) through emulated {hardware}, target {rate_hz} Hz")
        }
    }
}

/// The mat `--mat` names, or the only one.
fn chosen_mat(config: &Config, wanted: Option<&str>) -> Result<(usize, MatEntry)> {
    let mats = config.mats();
    let ids = || mats.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ");
    let i = match wanted {
        Some(id) => match mats.iter().position(|m| m.id == id) {
            Some(i) => i,
            None => bail!("--mat {id}: no such mat (the mats: {})", ids()),
        },
        None if mats.len() == 1 => 0,
        None => bail!("--cue: {} mats ({}): choose one with --mat ID", mats.len(), ids()),
    };
    Ok((i, mats[i].clone()))
}

/// `flatback check --cue`: the buzzer and each LED colour of a mat's cue
/// in turn, on the Pi's GPIO (`--source spi`) or emulated pins (`sim`).
fn cue(args: &CheckArgs, config: &Config) -> Result<()> {
    let (i, mat) = chosen_mat(config, args.mat.as_deref())?;
    let Some(cue) = &mat.cue else {
        let (section, place) = if config.mats.is_empty() {
            ("[mat.cue]", "the file".to_string())
        } else {
            ("[mats.cue]", format!("its [[mats]] entry (mats[{i}])"))
        };
        bail!(
            "mat \"{}\" has no {section}: no buzzer or LED to test. Add one to {place}, with BCM GPIO numbers, \
             e.g.\n  {section}\n  buzzer = 22\n  led_green = 23\n  led_red = 24",
            mat.id
        );
    };
    let on = match args.seconds.unwrap_or(1.0) {
        s if s.is_finite() && (0.0..=60.0).contains(&s) => Duration::from_secs_f64(s),
        s => bail!("--seconds {s}: with --cue, how long each pin is on: 0 to 60"),
    };
    match args.source {
        SourceKind::Spi => {
            let pins = CuePins::open(cue, &mut RppalGpio::new())?;
            test_pins(&mat.id, "the Pi's GPIO", pins, on, || {})
        }
        SourceKind::Sim => {
            let gpio = EmulatedGpio::new();
            let pins = CuePins::open(cue, &mut gpio.clone())?;
            let start = Instant::now();
            test_pins(&mat.id, "emulated GPIO", pins, on, || {
                gpio.set_time(start.elapsed().as_micros() as u64)
            })?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "emulated GPIO edges:")?;
            for e in gpio.edges() {
                let level = if e.high { "high" } else { "low" };
                writeln!(out, "  GPIO{} {level} at {:.3} s", e.pin, e.t_us as f64 / 1e6)?;
            }
            Ok(())
        }
    }
}

/// Each pin on for `on`, then off, in turn (buzzer, green, red), saying
/// which; `stamp` is called before each write.
fn test_pins<P: OutputPin>(
    mat: &str,
    gpio: &str,
    mut pins: CuePins<P>,
    on: Duration,
    mut stamp: impl FnMut(),
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let roles = pins.roles();
    let list: Vec<String> = roles.iter().map(|(r, p)| format!("{} GPIO{p}", r.what())).collect();
    writeln!(out, "flatback check --cue: mat \"{mat}\": {} ({gpio})", list.join(", "))?;
    for &(role, bcm) in &roles {
        writeln!(out, "{}: GPIO{bcm} on for {} s", role.what(), on.as_secs_f64())?;
        out.flush()?;
        stamp();
        pins.apply(&Show {
            levels: Levels::only(role),
            buzz_start: role == Role::Buzzer,
        });
        std::thread::sleep(on);
        stamp();
        pins.apply(&Show::default());
        writeln!(out, "{}: GPIO{bcm} off", role.what())?;
    }
    writeln!(
        out,
        "done: {} pin{} driven in turn; each should have sounded or lit while on (nothing: check the wiring, \
         the transistor and the LED's polarity)",
        roles.len(),
        if roles.len() == 1 { "" } else { "s" }
    )?;
    Ok(())
}
