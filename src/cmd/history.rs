//! `flatback history export`: the history as CSV on standard output.

use std::io::Write;

use anyhow::Result;

use super::athlete::open_store;
use crate::cmd::cli::HistoryAction;
use crate::config::Config;
use crate::history::export;
use crate::history::model::{SessionQuery, Who};

pub fn run(action: &HistoryAction, config: &Config) -> Result<()> {
    let HistoryAction::Export { athlete, since, .. } = action;
    let since_ms = since
        .as_deref()
        .map(|d| export::parse_day(d).map_err(|e| anyhow::anyhow!("--since: {e}")))
        .transpose()?;
    let mut store = open_store(config)?;
    let who = athlete.clone().map_or(Who::Everyone, Who::Athlete);
    let query = SessionQuery {
        who,
        since_ms,
        gateway: None,
    };
    let sessions = store.sessions(&query)?;
    let athletes = store.athletes()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    export::write_csv(&mut out, &sessions, &athletes)?;
    out.flush()?;
    Ok(())
}
