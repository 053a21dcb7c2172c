//! `flatback run`: the daemon.

use anyhow::{Context, Result};

use crate::cmd::cli::RunArgs;
use crate::config::Config;
use crate::daemon::{self, systemd::Notifier, RunOptions};

pub fn run(args: &RunArgs, config: &Config) -> Result<()> {
    let notifier = Notifier::from_env().context("NOTIFY_SOCKET")?;
    let options = RunOptions {
        speed: args.speed,
        ..RunOptions::default()
    };
    daemon::run(config, &options, &notifier)
}
