//! The one way into the history: [`HistoryStore`], implemented for SQLite
//! (a file on the gateway) and PostgreSQL (one server for a chain of gyms).
//!
//! Writes of events are idempotent: a gateway and mat's `seq` is written
//! once however often it arrives, so the writer may hand the same events
//! again after a crash or a lost connection.

use super::model::{
    Athlete, Fingerprint, HistoryEvent, Load, LoadChange, Plan, SessionKey, SessionQuery, SessionRecord,
};

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or failed (worth retrying).
    #[error("{0}")]
    Database(String),
    /// What was asked makes no sense (an unknown athlete, a bad name).
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The roster and the history. Blocking: the daemon calls it from a thread
/// of its own, the pages from `spawn_blocking`.
pub trait HistoryStore: Send {
    /// Which engine, for messages (`sqlite`, `postgres`).
    fn engine(&self) -> &'static str;

    /// A new athlete with a fresh id and personal link.
    fn add_athlete(&mut self, name: &str) -> Result<Athlete>;
    /// The roster, by name.
    fn athletes(&mut self) -> Result<Vec<Athlete>>;
    fn athlete(&mut self, id: &str) -> Result<Option<Athlete>>;
    fn athlete_by_secret(&mut self, secret: &str) -> Result<Option<Athlete>>;
    /// Deletes the athlete and every row of theirs (sessions, reps, load
    /// changes). False: no such athlete.
    fn remove_athlete(&mut self, id: &str) -> Result<bool>;
    /// The coach confirmed a new load: later sessions carry it.
    fn set_load(&mut self, id: &str, load: &Load, at_ms: i64) -> Result<bool>;
    fn set_plan(&mut self, id: &str, plan: Plan) -> Result<bool>;
    fn load_changes(&mut self, id: &str) -> Result<Vec<LoadChange>>;

    /// Events in one transaction; each (gateway, mat, seq) at most once.
    fn write(&mut self, events: &[HistoryEvent]) -> Result<()>;

    /// Sessions with their reps, oldest first.
    fn sessions(&mut self, query: &SessionQuery) -> Result<Vec<SessionRecord>>;
    /// An athlete's sessions still open or ended after `ended_after_ms`,
    /// with their reps, oldest first: all that can have moved since a read
    /// whose latest end was `ended_after_ms` (an ended session's reps stay
    /// as they are).
    fn sessions_ended_after(&mut self, athlete: &str, ended_after_ms: i64) -> Result<Vec<SessionRecord>>;
    /// Every athlete's [`Fingerprint`] (athletes without a session are left
    /// out).
    fn fingerprints(&mut self) -> Result<Vec<(String, Fingerprint)>>;
    /// A guest session becomes `athlete`'s, with all its reps. False: no
    /// such guest session (or no such athlete).
    fn claim(&mut self, session: &SessionKey, athlete: &str) -> Result<bool>;
}

/// Opens the store `[history]` names, migrated to the current schema;
/// `None` when the history is off (`database = ""`).
pub fn open(config: &crate::config::HistoryConfig) -> Result<Option<Box<dyn HistoryStore>>> {
    use crate::config::history::Database;
    match config.database().map_err(|e| StoreError::Invalid(e.to_string()))? {
        Database::Off => Ok(None),
        Database::Sqlite(path) => Ok(Some(Box::new(super::sqlite::SqliteStore::open(&path)?))),
        Database::Postgres(_) => Ok(Some(Box::new(super::postgres::PostgresStore::open(config)?))),
    }
}

/// The query behind [`HistoryStore::fingerprints`], the same on both
/// engines: one pass over the sessions, and the reps of open ones only.
pub(super) const FINGERPRINTS: &str = "SELECT s.athlete, COUNT(*), CAST(COALESCE(SUM(s.ended_ms), 0) AS BIGINT), \
     (SELECT COUNT(*) FROM reps r JOIN sessions o ON r.gateway = o.gateway AND r.mat = o.mat AND r.start_seq = o.start_seq \
      WHERE o.athlete = s.athlete AND o.ended_ms IS NULL), \
     (SELECT COUNT(*) FROM load_changes c WHERE c.athlete = s.athlete), COUNT(s.ended_ms) \
     FROM sessions s WHERE s.athlete IS NOT NULL GROUP BY s.athlete";
