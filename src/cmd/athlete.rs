//! `flatback athlete add|list|remove`: the roster, in the history database
//! (works beside a running daemon on the same database).

use anyhow::{bail, Context, Result};

use crate::cmd::cli::AthleteAction;
use crate::config::Config;
use crate::history::{self, Athlete, HistoryStore};

/// The history store of `config`, or why there is none.
pub fn open_store(config: &Config) -> Result<Box<dyn HistoryStore>> {
    match history::open(&config.history).with_context(|| format!("history.database \"{}\"", config.history.database))? {
        Some(store) => Ok(store),
        None => bail!("history.database is \"\": the history is off, so there is no roster"),
    }
}

/// What the roster commands print of an athlete: never the secret alone,
/// the link is the athlete's to have.
pub fn athlete_json(a: &Athlete) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "name": a.name,
        "link": a.link(),
        "load": a.load.label(),
        "load_kg": a.load.kg,
        "plan": {"sets": a.plan.sets, "reps": a.plan.reps},
    })
}

pub fn run(action: &AthleteAction, config: &Config) -> Result<()> {
    let mut store = open_store(config)?;
    match action {
        AthleteAction::Add { name, .. } => {
            let a = store.add_athlete(name)?;
            println!("{}", athlete_json(&a));
        }
        AthleteAction::List { .. } => {
            for a in store.athletes()? {
                println!("{}", athlete_json(&a));
            }
        }
        AthleteAction::Remove { id, .. } => {
            if !store.remove_athlete(id)? {
                bail!("no athlete {id:?} in the roster");
            }
            println!("{}", serde_json::json!({ "removed": id }));
        }
    }
    Ok(())
}
