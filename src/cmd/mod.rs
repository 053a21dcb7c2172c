//! The command line: clap's definitions ([`cli`]), then one file per
//! subcommand; [`run`] sends the command line to it.

pub mod athlete;
pub mod check;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod eval;
pub mod history;
#[cfg(feature = "plot")]
pub mod plot;
pub mod publish;
pub mod purge;
pub mod record;
pub mod replay;
pub mod run;
#[cfg(feature = "watch")]
pub mod watch;

use anyhow::Result;

use crate::cmd::cli::Command;
use crate::config::{Config, ConfigError};

/// sysexits.h: configuration error. systemd does not restart on it
/// (`RestartPreventExitStatus=78`).
pub const EX_CONFIG: u8 = 78;

/// The one way to load the configuration: the command's file, or the
/// defaults when it names none. `run` and `config check` check everything
/// the daemon needs from the file system too.
pub fn load_config(command: &Command) -> Result<Config, ConfigError> {
    let for_run = matches!(
        command,
        Command::Run(_)
            | Command::Config {
                action: crate::cmd::cli::ConfigAction::Check { .. }
            }
    );
    match command.config_file() {
        Some(path) if for_run => Config::load_with(path, crate::daemon::config_checks::for_run),
        Some(path) => Config::load_with(path, crate::daemon::config_checks::config),
        None => Ok(Config::default()),
    }
}

/// The log level when `RUST_LOG` does not say: the daemon's from its
/// configuration (`[log] level`), warn for the tools.
pub fn log_level(command: &Command, config: &Config) -> String {
    match command {
        Command::Run(_) => config.log.level.clone(),
        // The demo's screen is the coach's view: only errors on top.
        #[cfg(feature = "demo")]
        Command::Demo(_) => "error".into(),
        _ => "warn".into(),
    }
}

/// The process exit code for an error: [`EX_CONFIG`] for a bad
/// configuration, 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.chain().any(|e| e.is::<ConfigError>()) {
        EX_CONFIG
    } else {
        1
    }
}

/// Runs `command` with its configuration.
pub fn run(command: Command, config: Config) -> Result<()> {
    match command {
        Command::Replay(a) => replay::run(&a, &config),
        Command::Record(a) => record::run(&a, &config),
        #[cfg(feature = "demo")]
        Command::Demo(a) => demo::run(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Run(a) => run::run(&a, &config),
        Command::Config { action } => config::run(&action, &config),
        Command::Check(a) => check::run(&a, &config),
        Command::Publish(a) => publish::run(&a, config),
        Command::Purge(a) => purge::run(&a, config),
        #[cfg(feature = "watch")]
        Command::Watch(a) => watch::run(&a, config),
        #[cfg(feature = "plot")]
        Command::Plot(a) => plot::run(&a, &config),
        Command::Athlete { action } => athlete::run(&action, &config),
        Command::History { action } => history::run(&action, &config),
    }
}

/// The configuration with `--broker` applied and checked again.
pub fn with_broker(mut config: Config, broker: Option<&str>) -> Result<Config> {
    if let Some(url) = broker {
        config.mqtt.url = url.to_string();
        config
            .mqtt
            .validate()
            .map_err(|e| anyhow::anyhow!("--broker: {}", e.message))?;
    }
    Ok(config)
}

/// A configuration the command built (`publish`, `demo`), checked as a file
/// would be.
pub fn check_built(config: &Config) -> Result<()> {
    config
        .validate()
        .and_then(|()| crate::daemon::config_checks::config(config))
        .map_err(|e| anyhow::Error::new(ConfigError::from(e)))
}

/// The mat ids given with `--mat`, else `[mat] id`.
pub fn mat_ids(config: &Config, given: &[String]) -> Vec<String> {
    if given.is_empty() {
        vec![config.mat.id.clone()]
    } else {
        given.to_vec()
    }
}
