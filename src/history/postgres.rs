//! The history in PostgreSQL, for a chain of gyms: several gateways write
//! into one server, and an athlete's history follows them across mats and
//! gateways. The same semantics as [`super::sqlite`], statement for
//! statement: idempotent writes (a gateway, mat and `seq` once), a rep finds
//! its session as the latest start before it, guests, claims, and the
//! deletion of an athlete cascading to every row of theirs.
//!
//! The password comes from `[history] password_file` (its first line), TLS
//! is rustls with the `ring` provider (as MQTT). The schema is migrated at
//! open, in one transaction under an advisory lock, so gateways starting at
//! once take turns. Calls fail with [`StoreError::Database`] while the
//! server is away (the writer keeps its events and hands them again); the
//! call after it came back opens a new connection and works.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use postgres::config::SslMode;
use postgres::{Client, Config, NoTls, Row, Statement, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::model::now_ms;
use super::model::{
    Athlete, Fingerprint, HistoryEvent, HistoryKind, Load, LoadChange, Plan, RepRecord, SessionKey, SessionQuery,
    SessionRecord, Who,
};
use super::store::{HistoryStore, Result, StoreError};
use crate::config::HistoryConfig;

/// The schema, one file a version, applied in order (`migrations/postgres/`).
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/postgres/0001_roster_and_history.sql"))];

/// The advisory lock the migrations hold: "flatback" in ASCII.
const MIGRATION_LOCK: i64 = 0x666c_6174_6261_636b;

pub struct PostgresStore {
    config: Config,
    tls: Option<MakeRustlsConnect>,
    /// `user@host:port/db`, for messages (never the password).
    target: String,
    conn: Option<Conn>,
}

/// A connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    /// When it last answered.
    used: Instant,
}

/// A connection unused this long is checked (one round trip) before a call.
const CHECK_AFTER: Duration = Duration::from_secs(1);
/// How long that check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

type PgResult<T> = std::result::Result<T, postgres::Error>;

fn db_error(e: &postgres::Error) -> StoreError {
    StoreError::Database(db_message(e))
}

/// What went wrong: the server's own words when it answered.
fn db_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("postgres: {}: {}", db.severity(), db.message()),
        None => format!("postgres: {e}"),
    }
}

/// Whether the connection is gone (closed, broken, or the server shutting
/// down): the next call opens a new one.
fn connection_lost(e: &postgres::Error) -> bool {
    match e.as_db_error() {
        None => true,
        // 08: connection exception; 57P: the server is shutting down.
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57P")
        }
    }
}

impl PostgresStore {
    /// Connects to `config.database` and brings its schema up to date.
    pub fn open(config: &HistoryConfig) -> Result<PostgresStore> {
        let url = config.database.trim();
        let mut pg: Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("history.database: not a PostgreSQL URL: {e}")))?;
        if pg.get_password().is_some() {
            return Err(StoreError::Invalid(
                "history.database: a password in the URL: put it in history.password_file instead".into(),
            ));
        }
        if let Some(path) = &config.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| StoreError::Invalid(format!("history.password_file: {}: {e}", path.display())))?;
            let password = text.lines().next().unwrap_or("");
            if password.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "history.password_file: {}: the first line is empty",
                    path.display()
                )));
            }
            pg.password(password);
        }
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(10));
        }
        // A server that vanished (a cable, a power cut) fails the call in
        // half a minute instead of hanging the writer.
        if pg.get_tcp_user_timeout().is_none() {
            pg.tcp_user_timeout(Duration::from_secs(30));
        }
        pg.keepalives(true).keepalives_idle(Duration::from_secs(30));
        if pg.get_application_name().is_none() {
            pg.application_name("flatback");
        }
        let tls = if config.tls {
            pg.ssl_mode(SslMode::Require);
            let tls = crate::mqtt::tls::verifying_config("history.ca_file", config.ca_file.as_deref())
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            Some(MakeRustlsConnect::new(tls))
        } else {
            if matches!(pg.get_ssl_mode(), SslMode::Require) {
                return Err(StoreError::Invalid(
                    "history.database: sslmode=require: set history.tls = true (and history.ca_file)".into(),
                ));
            }
            pg.ssl_mode(SslMode::Disable);
            None
        };
        let target = target(&pg);
        let mut store = PostgresStore {
            config: pg,
            tls,
            target,
            conn: None,
        };
        store.migrate()?;
        Ok(store)
    }

    fn connect(&self) -> Result<Conn> {
        let client = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        }
        .map_err(|e| StoreError::Database(format!("{} ({})", db_message(&e), self.target)))?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
            used: Instant::now(),
        })
    }

    /// Runs `f` on the connection: a new one if there is none, or if the
    /// one there was lost (closed, or unused for [`CHECK_AFTER`] and no
    /// longer answering: the server restarted meanwhile), so that a call
    /// after the database came back works the first time. When `again`, a
    /// call that finds the connection lost is done once more on a new one:
    /// only for calls that change nothing when done twice (the connection
    /// may be lost after the server committed).
    fn run<T>(&mut self, again: bool, mut f: impl FnMut(&mut Conn) -> PgResult<T>) -> Result<T> {
        if let Some(c) = &mut self.conn {
            if c.client.is_closed() || (c.used.elapsed() >= CHECK_AFTER && c.client.is_valid(CHECK_TIMEOUT).is_err()) {
                self.conn = None;
            }
        }
        let reused = self.conn.is_some();
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert(self.connect()?),
        };
        let result = f(conn);
        conn.used = Instant::now();
        let e = match result {
            Ok(v) => return Ok(v),
            Err(e) if !connection_lost(&e) => return Err(db_error(&e)),
            Err(e) => e,
        };
        self.conn = None;
        if !(again && reused) {
            return Err(db_error(&e));
        }
        tracing::debug!("postgres: connection lost ({e}), connecting again");
        let mut conn = self.connect()?;
        let result = f(&mut conn);
        conn.used = Instant::now();
        match result {
            Ok(v) => {
                self.conn = Some(conn);
                Ok(v)
            }
            Err(e) => {
                if !connection_lost(&e) {
                    self.conn = Some(conn);
                }
                Err(db_error(&e))
            }
        }
    }

    fn migrate(&mut self) -> Result<()> {
        self.run(true, |conn| {
            let mut tx = conn.client.transaction()?;
            // Gateways starting at once take turns; the lock goes with the
            // transaction.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
            )?;
            let current: i64 = tx
                .query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations", &[])?
                .get(0);
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
                tx.batch_execute(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
                    &[version, &now_ms()],
                )?;
            }
            tx.commit()
        })
        .map_err(|e| match e {
            StoreError::Database(m) => StoreError::Database(format!("{m} (migrating the schema)")),
            other => other,
        })
    }
}

/// `user@host:port/db` of a configuration.
fn target(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

/// The statement for `sql`, prepared once per connection.
fn statement(
    tx: &mut Transaction<'_>,
    cache: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> PgResult<Statement> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let s = tx.prepare(sql)?;
    cache.insert(sql, s.clone());
    Ok(s)
}

const ATHLETE_COLUMNS: &str = "id, name, secret, load_text, load_kg, plan_sets, plan_reps, created_ms";

fn athlete_row(r: &Row) -> Athlete {
    Athlete {
        id: r.get(0),
        name: r.get(1),
        secret: r.get(2),
        load: Load {
            text: r.get(3),
            kg: r.get(4),
        },
        plan: Plan {
            sets: r.get::<_, i64>(5) as u32,
            reps: r.get::<_, i64>(6) as u32,
        },
        created_ms: r.get(7),
    }
}

/// The columns of `reps` a [`RepRecord`] reads, from `rep_row`'s `at` on.
const REP_COLUMNS: &str = "r.seq, r.time_ms, r.set_no, r.rep_no, r.perfect, r.arched, r.rushed, r.bounce, \
                           r.descent_ms, r.ascent_ms, r.depth";

fn rep_row(r: &Row, at: usize) -> RepRecord {
    RepRecord {
        seq: r.get::<_, i64>(at) as u64,
        time_ms: r.get(at + 1),
        set: r.get::<_, i64>(at + 2) as u32,
        rep: r.get::<_, i64>(at + 3) as u32,
        perfect: r.get(at + 4),
        arched: r.get(at + 5),
        rushed: r.get(at + 6),
        bounce: r.get(at + 7),
        descent_ms: r.get::<_, i64>(at + 8) as u64,
        ascent_ms: r.get::<_, Option<i64>>(at + 9).map(|v| v as u64),
        depth: r.get(at + 10),
    }
}

impl PostgresStore {
    fn athlete_where(&mut self, column: &'static str, value: &str) -> Result<Option<Athlete>> {
        let sql = format!("SELECT {ATHLETE_COLUMNS} FROM athletes WHERE {column} = $1");
        self.run(true, |conn| {
            Ok(conn.client.query_opt(sql.as_str(), &[&value])?.map(|r| athlete_row(&r)))
        })
    }
}

impl PostgresStore {
    /// The sessions `query` names, with their reps; with `ended_after`, only
    /// those still open or ended after it.
    fn sessions_where(&mut self, query: &SessionQuery, ended_after: Option<i64>) -> Result<Vec<SessionRecord>> {
        // $1 is the athlete (NULL but for Who::Athlete); every form names it
        // so that its type is known.
        let who = match &query.who {
            Who::Everyone => "$1::TEXT IS NULL",
            Who::Athlete(_) => "s.athlete = $1::TEXT",
            Who::Guests => "s.athlete IS NULL AND $1::TEXT IS NULL",
        };
        let athlete: Option<&str> = match &query.who {
            Who::Athlete(id) => Some(id),
            _ => None,
        };
        let filter = format!(
            "{who} AND ($2::BIGINT IS NULL OR s.started_ms >= $2::BIGINT) AND ($3::TEXT IS NULL OR s.gateway = $3::TEXT) \
             AND ($4::BIGINT IS NULL OR s.ended_ms IS NULL OR s.ended_ms > $4::BIGINT)"
        );
        let sessions_sql = format!(
            "SELECT s.gateway, s.mat, s.start_seq, s.athlete, s.started_ms, s.ended_ms, s.load_text, s.load_kg \
             FROM sessions s WHERE {filter} \
             ORDER BY s.started_ms, s.gateway COLLATE \"C\", s.mat COLLATE \"C\", s.start_seq"
        );
        let reps_sql = format!(
            "SELECT r.gateway, r.mat, r.start_seq, {REP_COLUMNS} FROM reps r \
             JOIN sessions s ON s.gateway = r.gateway AND s.mat = r.mat AND s.start_seq = r.start_seq \
             WHERE {filter} ORDER BY r.seq"
        );
        let (since, gateway) = (query.since_ms, query.gateway.as_deref());
        self.run(true, |conn| {
            // One snapshot for the sessions and their reps.
            let mut tx = conn
                .client
                .build_transaction()
                .read_only(true)
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .start()?;
            let mut sessions: Vec<SessionRecord> = tx
                .query(sessions_sql.as_str(), &[&athlete, &since, &gateway, &ended_after])?
                .iter()
                .map(|r| SessionRecord {
                    key: SessionKey {
                        gateway: r.get(0),
                        mat: r.get(1),
                        start_seq: r.get::<_, i64>(2) as u64,
                    },
                    athlete: r.get(3),
                    started_ms: r.get(4),
                    ended_ms: r.get(5),
                    load: Load {
                        text: r.get(6),
                        kg: r.get(7),
                    },
                    reps: Vec::new(),
                })
                .collect();
            let index: HashMap<SessionKey, usize> =
                sessions.iter().enumerate().map(|(i, s)| (s.key.clone(), i)).collect();
            for r in tx.query(reps_sql.as_str(), &[&athlete, &since, &gateway, &ended_after])? {
                let key = SessionKey {
                    gateway: r.get(0),
                    mat: r.get(1),
                    start_seq: r.get::<_, i64>(2) as u64,
                };
                if let Some(&i) = index.get(&key) {
                    sessions[i].reps.push(rep_row(&r, 3));
                }
            }
            tx.commit()?;
            Ok(sessions)
        })
    }
}

impl HistoryStore for PostgresStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    fn add_athlete(&mut self, name: &str) -> Result<Athlete> {
        let athlete = Athlete::new(name)?;
        let sql = format!("INSERT INTO athletes ({ATHLETE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        let a = &athlete;
        self.run(false, |conn| {
            conn.client.execute(
                sql.as_str(),
                &[
                    &a.id,
                    &a.name,
                    &a.secret,
                    &a.load.text,
                    &a.load.kg,
                    &i64::from(a.plan.sets),
                    &i64::from(a.plan.reps),
                    &a.created_ms,
                ],
            )
        })?;
        Ok(athlete)
    }

    fn athletes(&mut self) -> Result<Vec<Athlete>> {
        // COLLATE "C": the order of SQLite's, bytewise, whatever the
        // database's locale.
        let sql = format!("SELECT {ATHLETE_COLUMNS} FROM athletes ORDER BY name COLLATE \"C\", id COLLATE \"C\"");
        self.run(true, |conn| {
            Ok(conn.client.query(sql.as_str(), &[])?.iter().map(athlete_row).collect())
        })
    }

    fn athlete(&mut self, id: &str) -> Result<Option<Athlete>> {
        self.athlete_where("id", id)
    }

    fn athlete_by_secret(&mut self, secret: &str) -> Result<Option<Athlete>> {
        self.athlete_where("secret", secret)
    }

    fn remove_athlete(&mut self, id: &str) -> Result<bool> {
        // Sessions go with the athlete and reps with their sessions, load
        // changes with the athlete (ON DELETE CASCADE).
        let n = self.run(false, |conn| {
            conn.client.execute("DELETE FROM athletes WHERE id = $1", &[&id])
        })?;
        Ok(n > 0)
    }

    fn set_load(&mut self, id: &str, load: &Load, at_ms: i64) -> Result<bool> {
        self.run(false, |conn| {
            let mut tx = conn.client.transaction()?;
            let n = tx.execute(
                "UPDATE athletes SET load_text = $2, load_kg = $3 WHERE id = $1",
                &[&id, &load.text, &load.kg],
            )?;
            if n > 0 {
                tx.execute(
                    "INSERT INTO load_changes (athlete, at_ms, load_text, load_kg) VALUES ($1, $2, $3, $4)",
                    &[&id, &at_ms, &load.text, &load.kg],
                )?;
            }
            tx.commit()?;
            Ok(n > 0)
        })
    }

    fn set_plan(&mut self, id: &str, plan: Plan) -> Result<bool> {
        let n = self.run(true, |conn| {
            conn.client.execute(
                "UPDATE athletes SET plan_sets = $2, plan_reps = $3 WHERE id = $1",
                &[&id, &i64::from(plan.sets), &i64::from(plan.reps)],
            )
        })?;
        Ok(n > 0)
    }

    fn load_changes(&mut self, id: &str) -> Result<Vec<LoadChange>> {
        self.run(true, |conn| {
            let rows = conn.client.query(
                "SELECT athlete, at_ms, load_text, load_kg FROM load_changes WHERE athlete = $1 ORDER BY at_ms",
                &[&id],
            )?;
            Ok(rows
                .iter()
                .map(|r| LoadChange {
                    athlete: r.get(0),
                    at_ms: r.get(1),
                    load: Load {
                        text: r.get(2),
                        kg: r.get(3),
                    },
                })
                .collect())
        })
    }

    fn write(&mut self, events: &[HistoryEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        // Idempotent, so safe to do again after a lost connection.
        self.run(true, |conn| {
            let Conn { client, statements, .. } = conn;
            let mut tx = client.transaction()?;
            for e in events {
                write_one(&mut tx, statements, e)?;
            }
            tx.commit()
        })
    }

    fn sessions(&mut self, query: &SessionQuery) -> Result<Vec<SessionRecord>> {
        self.sessions_where(query, None)
    }

    fn sessions_ended_after(&mut self, athlete: &str, ended_after_ms: i64) -> Result<Vec<SessionRecord>> {
        self.sessions_where(&SessionQuery::of(Who::Athlete(athlete.into())), Some(ended_after_ms))
    }

    fn fingerprints(&mut self) -> Result<Vec<(String, Fingerprint)>> {
        self.run(true, |conn| {
            let rows = conn.client.query(super::store::FINGERPRINTS, &[])?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        Fingerprint {
                            sessions: r.get::<_, i64>(1) as u64,
                            ended_sum: r.get(2),
                            ended: r.get::<_, i64>(5) as u64,
                            open_reps: r.get::<_, i64>(3) as u64,
                            load_changes: r.get::<_, i64>(4) as u64,
                        },
                    )
                })
                .collect())
        })
    }

    fn claim(&mut self, session: &SessionKey, athlete: &str) -> Result<bool> {
        let start_seq = session.start_seq as i64;
        self.run(false, |conn| {
            let mut tx = conn.client.transaction()?;
            // FOR SHARE: the athlete stays until the claim commits.
            let Some(load) = tx.query_opt(
                "SELECT load_text, load_kg FROM athletes WHERE id = $1 FOR SHARE",
                &[&athlete],
            )?
            else {
                return Ok(false);
            };
            let (load_text, load_kg): (String, f64) = (load.get(0), load.get(1));
            let n = tx.execute(
                "UPDATE sessions SET athlete = $4, load_text = $5, load_kg = $6 \
                 WHERE gateway = $1 AND mat = $2 AND start_seq = $3 AND athlete IS NULL",
                &[
                    &session.gateway,
                    &session.mat,
                    &start_seq,
                    &athlete,
                    &load_text,
                    &load_kg,
                ],
            )?;
            tx.commit()?;
            Ok(n > 0)
        })
    }
}

const ATHLETE_KNOWN: &str = "SELECT id FROM athletes WHERE id = $1 FOR KEY SHARE";
const SESSION_START: &str = "INSERT INTO sessions (gateway, mat, start_seq, athlete, started_ms, load_text, load_kg) \
     SELECT $1::TEXT, $2::TEXT, $3::BIGINT, $4::TEXT, $5::BIGINT, COALESCE(a.load_text, ''), COALESCE(a.load_kg, 0) \
     FROM (SELECT 1) AS one LEFT JOIN athletes a ON a.id = $4::TEXT \
     ON CONFLICT DO NOTHING";
const SESSION_END: &str = "UPDATE sessions SET ended_ms = $4 WHERE gateway = $1 AND mat = $2 AND start_seq = \
     (SELECT MAX(start_seq) FROM sessions WHERE gateway = $1 AND mat = $2 AND start_seq < $3) \
     AND ended_ms IS NULL";
const REP_SESSION: &str = "SELECT MAX(start_seq) FROM sessions WHERE gateway = $1 AND mat = $2 AND start_seq < $3";
const REP_OPENS_SESSION: &str = "INSERT INTO sessions (gateway, mat, start_seq, athlete, started_ms) \
     VALUES ($1, $2, $3, NULL, $4) ON CONFLICT DO NOTHING";
const SESSION_BECOMES_ATHLETES: &str = "UPDATE sessions SET athlete = $4, \
     load_text = (SELECT load_text FROM athletes WHERE id = $4), \
     load_kg = (SELECT load_kg FROM athletes WHERE id = $4) \
     WHERE gateway = $1 AND mat = $2 AND start_seq = $3 AND athlete IS NULL";
const REP: &str = "INSERT INTO reps (gateway, mat, seq, start_seq, time_ms, set_no, rep_no, perfect, arched, rushed, \
     bounce, descent_ms, ascent_ms, depth) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
     ON CONFLICT DO NOTHING";

/// One event into the open transaction; a (gateway, mat, seq) already
/// written changes nothing.
fn write_one(tx: &mut Transaction<'_>, cache: &mut HashMap<&'static str, Statement>, e: &HistoryEvent) -> PgResult<()> {
    // An athlete removed (or never known here) while their events were on
    // the way: the session is a guest's. FOR KEY SHARE: not removed under
    // this transaction's feet.
    let athlete: Option<String> = match &e.athlete {
        Some(id) => {
            let s = statement(tx, cache, ATHLETE_KNOWN)?;
            tx.query_opt(&s, &[id])?.map(|r| r.get(0))
        }
        None => None,
    };
    let seq = e.seq as i64;
    match &e.what {
        HistoryKind::SessionStart => {
            let s = statement(tx, cache, SESSION_START)?;
            tx.execute(&s, &[&e.gateway, &e.mat, &seq, &athlete, &e.time_ms])?;
        }
        HistoryKind::SessionEnd => {
            let s = statement(tx, cache, SESSION_END)?;
            tx.execute(&s, &[&e.gateway, &e.mat, &seq, &e.time_ms])?;
        }
        HistoryKind::Rep(r) => {
            let s = statement(tx, cache, REP_SESSION)?;
            let start: Option<i64> = tx.query_one(&s, &[&e.gateway, &e.mat, &seq])?.get(0);
            let start = match start {
                Some(start) => start,
                None => {
                    // Its session's start never reached the history (an
                    // outbox that was full): the rep opens one.
                    let s = statement(tx, cache, REP_OPENS_SESSION)?;
                    tx.execute(&s, &[&e.gateway, &e.mat, &seq, &e.time_ms])?;
                    seq
                }
            };
            if athlete.is_some() {
                // The session becomes the athlete's at its first rep of
                // theirs, with their load of then.
                let s = statement(tx, cache, SESSION_BECOMES_ATHLETES)?;
                tx.execute(&s, &[&e.gateway, &e.mat, &start, &athlete])?;
            }
            let s = statement(tx, cache, REP)?;
            tx.execute(
                &s,
                &[
                    &e.gateway,
                    &e.mat,
                    &seq,
                    &start,
                    &e.time_ms,
                    &i64::from(r.set),
                    &i64::from(r.rep),
                    &r.perfect,
                    &r.arched,
                    &r.rushed,
                    &r.bounce,
                    &(r.descent_ms as i64),
                    &r.ascent_ms.map(|v| v as i64),
                    &r.depth,
                ],
            )?;
        }
    }
    Ok(())
}
