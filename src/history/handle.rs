//! One shared way into the store for the daemon's readers (the web view,
//! Home Assistant's roster): a connection opened on first use, dropped on a
//! database error so that the next use opens a fresh one, and the roster's
//! ids and names cached for the paths that must never wait for a database
//! (a command from the broker, discovery).

use std::sync::{Arc, Mutex, RwLock};

use std::collections::HashMap;

use super::figures::{self, week_start, AthleteFigures, Thresholds};
use super::model::{Athlete, Fingerprint, Load, SessionQuery, Who};
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
    /// Figures per athlete id, with what they were computed from.
    figures: Arc<Mutex<FiguresCache>>,
}

/// Each athlete's figures with what they were computed from.
type FiguresCache = HashMap<String, (FiguresKey, Arc<AthleteFigures>)>;

/// What an athlete's figures were computed from: the same key, the same
/// figures.
#[derive(Debug, Clone, PartialEq)]
struct FiguresKey {
    fingerprint: Fingerprint,
    load: Load,
    week: i64,
    thresholds: Thresholds,
    weeks: usize,
}

impl Handle {
    /// `None` when the history is off.
    pub fn new(config: &HistoryConfig) -> Option<Handle> {
        (!config.database.trim().is_empty()).then(|| Handle {
            config: Arc::new(config.clone()),
            store: Arc::new(Mutex::new(None)),
            roster: Arc::new(RwLock::new(Vec::new())),
            figures: Arc::default(),
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

    /// Every athlete with their figures at `now_ms` (`weeks` weeks of
    /// calendar): only athletes whose history moved since the last call are
    /// read and computed again (the roster page over a year of 200 athletes
    /// stays quick).
    pub fn roster_figures(
        &self,
        t: &Thresholds,
        now_ms: i64,
        weeks: usize,
    ) -> Result<Vec<(Athlete, Arc<AthleteFigures>)>> {
        let week = week_start(now_ms);
        self.with(|s| {
            let athletes = s.athletes()?;
            let prints: HashMap<String, Fingerprint> = s.fingerprints()?.into_iter().collect();
            let mut cache = self.figures.lock().unwrap_or_else(|p| p.into_inner());
            cache.retain(|id, _| athletes.iter().any(|a| &a.id == id));
            let mut out = Vec::with_capacity(athletes.len());
            for a in athletes {
                let key = FiguresKey {
                    fingerprint: prints.get(&a.id).copied().unwrap_or_default(),
                    load: a.load.clone(),
                    week,
                    thresholds: *t,
                    weeks,
                };
                let figures = match cache.get(&a.id) {
                    Some((k, f)) if *k == key => f.clone(),
                    _ => {
                        let sessions = s.sessions(&SessionQuery::of(Who::Athlete(a.id.clone())))?;
                        let changes = s.load_changes(&a.id)?;
                        let f = Arc::new(figures::athlete(&sessions, &a.load, &changes, t, now_ms, weeks));
                        cache.insert(a.id.clone(), (key, f.clone()));
                        f
                    }
                };
                out.push((a, figures));
            }
            Ok(out)
        })
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
