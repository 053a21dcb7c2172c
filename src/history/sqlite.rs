//! The history in a SQLite file on the gateway: WAL (readers never wait for
//! the writer, a crash or power cut loses no committed transaction), foreign
//! keys on, a busy timeout so `flatback athlete add` works beside a running
//! daemon. SQLite is bundled, so the static musl build for the Pi needs no
//! system library.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::model::now_ms;
use super::model::{
    Athlete, Fingerprint, HistoryEvent, HistoryKind, Load, LoadChange, Plan, RepRecord, SessionKey, SessionQuery,
    SessionRecord, Who,
};
use super::store::{HistoryStore, Result, StoreError};

/// The schema, one file a version, applied in order (`migrations/sqlite/`).
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/sqlite/0001_roster_and_history.sql"))];

pub struct SqliteStore {
    db: Connection,
}

fn db_error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(format!("sqlite: {e}"))
}

impl SqliteStore {
    /// Opens (or creates) the file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Database(format!("sqlite: cannot create {}: {e}", dir.display())))?;
        }
        let db = Connection::open(path).map_err(|e| StoreError::Database(format!("sqlite {}: {e}", path.display())))?;
        db.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_error)?;
        db.pragma_update(None, "journal_mode", "WAL").map_err(db_error)?;
        // FULL: a committed session survives a power cut, not only a crash.
        db.pragma_update(None, "synchronous", "FULL").map_err(db_error)?;
        db.pragma_update(None, "foreign_keys", "ON").map_err(db_error)?;
        let mut store = SqliteStore { db };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let tx = self.db.transaction().map_err(db_error)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
        )
        .map_err(db_error)?;
        let current: i64 = tx
            .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .map_err(db_error)?;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.execute_batch(sql)
                .map_err(|e| StoreError::Database(format!("sqlite: migration {version}: {e}")))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
                params![version, now_ms()],
            )
            .map_err(db_error)?;
        }
        tx.commit().map_err(db_error)
    }
}

const ATHLETE_COLUMNS: &str = "id, name, secret, load_text, load_kg, plan_sets, plan_reps, created_ms";

fn athlete_row(r: &Row<'_>) -> rusqlite::Result<Athlete> {
    Ok(Athlete {
        id: r.get(0)?,
        name: r.get(1)?,
        secret: r.get(2)?,
        load: Load {
            text: r.get(3)?,
            kg: r.get(4)?,
        },
        plan: Plan {
            sets: r.get(5)?,
            reps: r.get(6)?,
        },
        created_ms: r.get(7)?,
    })
}

fn rep_row(r: &Row<'_>) -> rusqlite::Result<RepRecord> {
    Ok(RepRecord {
        seq: r.get::<_, i64>(0)? as u64,
        time_ms: r.get(1)?,
        set: r.get(2)?,
        rep: r.get(3)?,
        perfect: r.get(4)?,
        arched: r.get(5)?,
        rushed: r.get(6)?,
        bounce: r.get(7)?,
        descent_ms: r.get::<_, i64>(8)? as u64,
        ascent_ms: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
        depth: r.get(10)?,
    })
}

impl SqliteStore {
    fn athlete_where(&mut self, column: &str, value: &str) -> Result<Option<Athlete>> {
        self.db
            .query_row(
                &format!("SELECT {ATHLETE_COLUMNS} FROM athletes WHERE {column} = ?1"),
                [value],
                athlete_row,
            )
            .optional()
            .map_err(db_error)
    }
}

impl SqliteStore {
    /// The sessions `query` names, with their reps; with `ended_after`, only
    /// those still open or ended after it.
    fn sessions_where(&mut self, query: &SessionQuery, ended_after: Option<i64>) -> Result<Vec<SessionRecord>> {
        let (who, athlete) = match &query.who {
            Who::Everyone => ("1", None),
            Who::Athlete(id) => ("athlete = ?1", Some(id.as_str())),
            Who::Guests => ("athlete IS NULL", None),
        };
        let sql = format!(
            "SELECT gateway, mat, start_seq, athlete, started_ms, ended_ms, load_text, load_kg FROM sessions \
             WHERE {who} AND (?2 IS NULL OR started_ms >= ?2) AND (?3 IS NULL OR gateway = ?3) \
             AND (?4 IS NULL OR ended_ms IS NULL OR ended_ms > ?4) \
             ORDER BY started_ms, gateway, mat, start_seq"
        );
        let mut q = self.db.prepare_cached(&sql).map_err(db_error)?;
        let rows = q
            .query_map(params![athlete, query.since_ms, query.gateway, ended_after], |r| {
                Ok(SessionRecord {
                    key: SessionKey {
                        gateway: r.get(0)?,
                        mat: r.get(1)?,
                        start_seq: r.get::<_, i64>(2)? as u64,
                    },
                    athlete: r.get(3)?,
                    started_ms: r.get(4)?,
                    ended_ms: r.get(5)?,
                    load: Load {
                        text: r.get(6)?,
                        kg: r.get(7)?,
                    },
                    reps: Vec::new(),
                })
            })
            .map_err(db_error)?;
        let mut sessions: Vec<SessionRecord> = rows.collect::<rusqlite::Result<_>>().map_err(db_error)?;
        drop(q);
        // Their reps in one pass (not a query per session), by the session's
        // index, which ends in `seq`: they come in order.
        let index: std::collections::HashMap<SessionKey, usize> =
            sessions.iter().enumerate().map(|(i, s)| (s.key.clone(), i)).collect();
        let sql = format!(
            "SELECT r.seq, r.time_ms, r.set_no, r.rep_no, r.perfect, r.arched, r.rushed, r.bounce, r.descent_ms, \
             r.ascent_ms, r.depth, r.gateway, r.mat, r.start_seq FROM sessions s JOIN reps r \
             ON r.gateway = s.gateway AND r.mat = s.mat AND r.start_seq = s.start_seq \
             WHERE {} AND (?2 IS NULL OR s.started_ms >= ?2) AND (?3 IS NULL OR s.gateway = ?3) \
             AND (?4 IS NULL OR s.ended_ms IS NULL OR s.ended_ms > ?4) \
             ORDER BY r.gateway, r.mat, r.start_seq, r.seq",
            who.replace("athlete", "s.athlete")
        );
        let mut q = self.db.prepare_cached(&sql).map_err(db_error)?;
        let mut rows = q
            .query(params![athlete, query.since_ms, query.gateway, ended_after])
            .map_err(db_error)?;
        while let Some(r) = rows.next().map_err(db_error)? {
            let key = SessionKey {
                gateway: r.get(11).map_err(db_error)?,
                mat: r.get(12).map_err(db_error)?,
                start_seq: r.get::<_, i64>(13).map_err(db_error)? as u64,
            };
            let rep = rep_row(r).map_err(db_error)?;
            if let Some(&i) = index.get(&key) {
                sessions[i].reps.push(rep);
            }
        }
        Ok(sessions)
    }
}

impl HistoryStore for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    fn add_athlete(&mut self, name: &str) -> Result<Athlete> {
        let athlete = Athlete::new(name)?;
        self.db
            .execute(
                &format!("INSERT INTO athletes ({ATHLETE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    athlete.id,
                    athlete.name,
                    athlete.secret,
                    athlete.load.text,
                    athlete.load.kg,
                    athlete.plan.sets,
                    athlete.plan.reps,
                    athlete.created_ms
                ],
            )
            .map_err(db_error)?;
        Ok(athlete)
    }

    fn athletes(&mut self) -> Result<Vec<Athlete>> {
        let mut q = self
            .db
            .prepare_cached(&format!("SELECT {ATHLETE_COLUMNS} FROM athletes ORDER BY name, id"))
            .map_err(db_error)?;
        let rows = q.query_map([], athlete_row).map_err(db_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_error)
    }

    fn athlete(&mut self, id: &str) -> Result<Option<Athlete>> {
        self.athlete_where("id", id)
    }

    fn athlete_by_secret(&mut self, secret: &str) -> Result<Option<Athlete>> {
        self.athlete_where("secret", secret)
    }

    fn remove_athlete(&mut self, id: &str) -> Result<bool> {
        // Reps go with their sessions, load changes with the athlete.
        let n = self
            .db
            .execute("DELETE FROM athletes WHERE id = ?1", [id])
            .map_err(db_error)?;
        Ok(n > 0)
    }

    fn set_load(&mut self, id: &str, load: &Load, at_ms: i64) -> Result<bool> {
        let tx = self.db.transaction().map_err(db_error)?;
        let n = tx
            .execute(
                "UPDATE athletes SET load_text = ?2, load_kg = ?3 WHERE id = ?1",
                params![id, load.text, load.kg],
            )
            .map_err(db_error)?;
        if n > 0 {
            tx.execute(
                "INSERT INTO load_changes (athlete, at_ms, load_text, load_kg) VALUES (?1, ?2, ?3, ?4)",
                params![id, at_ms, load.text, load.kg],
            )
            .map_err(db_error)?;
        }
        tx.commit().map_err(db_error)?;
        Ok(n > 0)
    }

    fn set_plan(&mut self, id: &str, plan: Plan) -> Result<bool> {
        let n = self
            .db
            .execute(
                "UPDATE athletes SET plan_sets = ?2, plan_reps = ?3 WHERE id = ?1",
                params![id, plan.sets, plan.reps],
            )
            .map_err(db_error)?;
        Ok(n > 0)
    }

    fn load_changes(&mut self, id: &str) -> Result<Vec<LoadChange>> {
        let mut q = self
            .db
            .prepare_cached(
                "SELECT athlete, at_ms, load_text, load_kg FROM load_changes WHERE athlete = ?1 ORDER BY at_ms",
            )
            .map_err(db_error)?;
        let rows = q
            .query_map([id], |r| {
                Ok(LoadChange {
                    athlete: r.get(0)?,
                    at_ms: r.get(1)?,
                    load: Load {
                        text: r.get(2)?,
                        kg: r.get(3)?,
                    },
                })
            })
            .map_err(db_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_error)
    }

    fn write(&mut self, events: &[HistoryEvent]) -> Result<()> {
        let tx = self.db.transaction().map_err(db_error)?;
        for e in events {
            write_one(&tx, e).map_err(db_error)?;
        }
        tx.commit().map_err(db_error)
    }

    fn sessions(&mut self, query: &SessionQuery) -> Result<Vec<SessionRecord>> {
        self.sessions_where(query, None)
    }

    fn sessions_ended_after(&mut self, athlete: &str, ended_after_ms: i64) -> Result<Vec<SessionRecord>> {
        self.sessions_where(&SessionQuery::of(Who::Athlete(athlete.into())), Some(ended_after_ms))
    }

    fn fingerprints(&mut self) -> Result<Vec<(String, Fingerprint)>> {
        let mut q = self.db.prepare_cached(super::store::FINGERPRINTS).map_err(db_error)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Fingerprint {
                        sessions: r.get::<_, i64>(1)? as u64,
                        ended_sum: r.get(2)?,
                        ended: r.get::<_, i64>(5)? as u64,
                        open_reps: r.get::<_, i64>(3)? as u64,
                        load_changes: r.get::<_, i64>(4)? as u64,
                    },
                ))
            })
            .map_err(db_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_error)
    }

    fn claim(&mut self, session: &SessionKey, athlete: &str) -> Result<bool> {
        let tx = self.db.transaction().map_err(db_error)?;
        let load: Option<(String, f64)> = tx
            .query_row(
                "SELECT load_text, load_kg FROM athletes WHERE id = ?1",
                [athlete],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_error)?;
        let Some((load_text, load_kg)) = load else {
            return Ok(false);
        };
        let n = tx
            .execute(
                "UPDATE sessions SET athlete = ?4, load_text = ?5, load_kg = ?6 \
                 WHERE gateway = ?1 AND mat = ?2 AND start_seq = ?3 AND athlete IS NULL",
                params![
                    session.gateway,
                    session.mat,
                    session.start_seq as i64,
                    athlete,
                    load_text,
                    load_kg
                ],
            )
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        Ok(n > 0)
    }
}

/// One event into the open transaction; a (gateway, mat, seq) already
/// written changes nothing.
fn write_one(tx: &rusqlite::Transaction<'_>, e: &HistoryEvent) -> rusqlite::Result<()> {
    // An athlete removed (or never known here) while their events were on
    // the way: the session is a guest's.
    let athlete: Option<String> = match &e.athlete {
        Some(id) => tx
            .query_row("SELECT id FROM athletes WHERE id = ?1", [id], |r| r.get(0))
            .optional()?,
        None => None,
    };
    let seq = e.seq as i64;
    match &e.what {
        HistoryKind::SessionStart => {
            tx.execute(
                "INSERT INTO sessions (gateway, mat, start_seq, athlete, started_ms, load_text, load_kg) \
                 SELECT ?1, ?2, ?3, ?4, ?5, COALESCE(a.load_text, ''), COALESCE(a.load_kg, 0) \
                 FROM (SELECT 1) LEFT JOIN athletes a ON a.id = ?4 \
                 ON CONFLICT DO NOTHING",
                params![e.gateway, e.mat, seq, athlete, e.time_ms],
            )?;
        }
        HistoryKind::SessionEnd => {
            tx.execute(
                "UPDATE sessions SET ended_ms = ?4 WHERE gateway = ?1 AND mat = ?2 AND start_seq = \
                 (SELECT MAX(start_seq) FROM sessions WHERE gateway = ?1 AND mat = ?2 AND start_seq < ?3) \
                 AND ended_ms IS NULL",
                params![e.gateway, e.mat, seq, e.time_ms],
            )?;
        }
        HistoryKind::Rep(r) => {
            let start: Option<i64> = tx.query_row(
                "SELECT MAX(start_seq) FROM sessions WHERE gateway = ?1 AND mat = ?2 AND start_seq < ?3",
                params![e.gateway, e.mat, seq],
                |row| row.get(0),
            )?;
            let start = match start {
                Some(s) => s,
                None => {
                    // Its session's start never reached the history (an
                    // outbox that was full): the rep opens one.
                    tx.execute(
                        "INSERT INTO sessions (gateway, mat, start_seq, athlete, started_ms) VALUES (?1, ?2, ?3, NULL, ?4) \
                         ON CONFLICT DO NOTHING",
                        params![e.gateway, e.mat, seq, e.time_ms],
                    )?;
                    seq
                }
            };
            if athlete.is_some() {
                // The session becomes the athlete's at its first rep of
                // theirs, with their load of then.
                tx.execute(
                    "UPDATE sessions SET athlete = ?4, \
                     load_text = (SELECT load_text FROM athletes WHERE id = ?4), \
                     load_kg = (SELECT load_kg FROM athletes WHERE id = ?4) \
                     WHERE gateway = ?1 AND mat = ?2 AND start_seq = ?3 AND athlete IS NULL",
                    params![e.gateway, e.mat, start, athlete],
                )?;
            }
            tx.execute(
                "INSERT INTO reps (gateway, mat, seq, start_seq, time_ms, set_no, rep_no, perfect, arched, rushed, \
                 bounce, descent_ms, ascent_ms, depth) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
                 ON CONFLICT DO NOTHING",
                params![
                    e.gateway,
                    e.mat,
                    seq,
                    start,
                    e.time_ms,
                    r.set,
                    r.rep,
                    r.perfect,
                    r.arched,
                    r.rushed,
                    r.bounce,
                    r.descent_ms as i64,
                    r.ascent_ms.map(|v| v as i64),
                    r.depth
                ],
            )?;
        }
    }
    Ok(())
}
