//! `flatback`: the command line, the configuration, logging, then the
//! command (`cmd/`, a file each), in that order.

use clap::Parser;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use flatback::cmd::{self, cli::Cli};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = cmd::load_config(&cli.command)
        .map_err(anyhow::Error::new)
        .and_then(|config| {
            init_logging(&cmd::log_level(&cli.command, &config));
            cmd::run(cli.command, config)
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flatback: error: {e:#}");
            std::process::ExitCode::from(cmd::exit_code(&e))
        }
    }
}

/// `RUST_LOG` (or `FLATBACK_LOG`) wins over the command's default level. Under
/// systemd, records go to journald with their priorities; elsewhere, readable
/// lines on standard error.
fn init_logging(default_level: &str) {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_from_env("FLATBACK_LOG"))
        .unwrap_or_else(|_| EnvFilter::new(default_level));
    let registry = tracing_subscriber::registry().with(filter);
    if flatback::daemon::systemd::stderr_is_journal() {
        if let Ok(journald) = tracing_journald::layer() {
            registry.with(journald.with_syslog_identifier("flatback".into())).init();
            return;
        }
    }
    // Colour codes only for a person at a terminal, not in log files.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(colour),
        )
        .init();
}
