//! One shared way into the store for the daemon's readers (the web view,
//! Home Assistant's roster): a connection opened on first use, dropped on a
//! database error so that the next use opens a fresh one, and the roster's
//! ids and names cached for the paths that must never wait for a database
//! (a command from the broker, discovery).

use std::sync::{Arc, Mutex, RwLock};

use super::model::Athlete;
use super::store::{HistoryStore, Result, StoreError};
use crate::config::HistoryConfig;

/// An athlete as the live paths know them: no secret, no history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub id: String,
    pub name: String,
}

/// Cheap to clone; blocking (call from a thread or `spawn_blocking`).
#[derive(Clone)]
pub struct Handle {
    config: Arc<HistoryConfig>,
    store: Arc<Mutex<Option<Box<dyn HistoryStore>>>>,
    roster: Arc<RwLock<Vec<RosterEntry>>>,
}

impl Handle {
    /// `None` when the history is off.
    pub fn new(config: &HistoryConfig) -> Option<Handle> {
        (!config.database.trim().is_empty()).then(|| Handle {
            config: Arc::new(config.clone()),
            store: Arc::new(Mutex::new(None)),
            roster: Arc::new(RwLock::new(Vec::new())),
        })
    }

    /// Runs `f` on the store, opening it first if needed; a database error
    /// closes the connection (the next call opens a new one).
    pub fn with<T>(&self, f: impl FnOnce(&mut dyn HistoryStore) -> Result<T>) -> Result<T> {
        let mut slot = self.store.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(super::open(&self.config)?.ok_or_else(|| StoreError::Invalid("history is off".into()))?);
        }
        let result = f(slot.as_mut().expect("opened above").as_mut());
        if matches!(result, Err(StoreError::Database(_))) {
            *slot = None;
        }
        result
    }

    /// Reads the roster again into the cache; returns it.
    pub fn refresh_roster(&self) -> Result<Vec<Athlete>> {
        let athletes = self.with(|s| s.athletes())?;
        let entries = athletes
            .iter()
            .map(|a| RosterEntry {
                id: a.id.clone(),
                name: a.name.clone(),
            })
            .collect();
        *self.roster.write().unwrap_or_else(|p| p.into_inner()) = entries;
        Ok(athletes)
    }

    /// The roster as last read (never waits for the database).
    pub fn roster(&self) -> Vec<RosterEntry> {
        self.roster.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether `id` is in the roster as last read.
    pub fn knows(&self, id: &str) -> bool {
        self.roster
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|e| e.id == id)
    }
}
