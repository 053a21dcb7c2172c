//! `flatback publish`: simulated mats over MQTT, the daemon with its mats
//! made from the command line (a tool for tests and trials).

use anyhow::Result;

use crate::cmd::cli::PublishArgs;
use crate::config::{Config, MatEntry, MatSourceKind};
use crate::daemon::{self, systemd::Notifier, RunOptions};

pub fn run(args: &PublishArgs, config: Config) -> Result<()> {
    let mut config = super::with_broker(config, args.mqtt.broker.as_deref())?;
    let sim = &args.sim;
    // Simulated mats made from the command line: no buzzer or LED of the
    // file's one mat is driven for them.
    config.mat.cue = None;
    config.mats = super::mat_ids(&config, &args.mats)
        .into_iter()
        .enumerate()
        .map(|(k, id)| MatEntry {
            id,
            source: MatSourceKind::Sim,
            kind: sim.kind.clone(),
            seed: Some(sim.seed + k as u64),
            rate_hz: sim.rate,
            case: sim.case.map(|c| c + k as u64),
            seconds: args.seconds,
            repeat: false,
            ..MatEntry::default()
        })
        .collect();
    super::check_built(&config)?;
    let options = RunOptions {
        speed: args.speed,
        exit_when_done: args.exit_when_done,
        ..RunOptions::default()
    };
    daemon::run(&config, &options, &Notifier::disabled())
}
