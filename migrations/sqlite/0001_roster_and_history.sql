-- The roster and the history (SQLite). One row per athlete, load change,
-- session and rep; a gateway, mat and seq names an event for good, so
-- writes of the same event again change nothing.
CREATE TABLE athletes (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret      TEXT NOT NULL UNIQUE,
    load_text   TEXT NOT NULL DEFAULT '',
    load_kg     REAL NOT NULL DEFAULT 0,
    plan_sets   INTEGER NOT NULL DEFAULT 3,
    plan_reps   INTEGER NOT NULL DEFAULT 10,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE load_changes (
    athlete     TEXT NOT NULL REFERENCES athletes(id) ON DELETE CASCADE,
    at_ms       INTEGER NOT NULL,
    load_text   TEXT NOT NULL,
    load_kg     REAL NOT NULL
);
CREATE INDEX load_changes_by_athlete ON load_changes(athlete, at_ms);

CREATE TABLE sessions (
    gateway     TEXT NOT NULL,
    mat         TEXT NOT NULL,
    start_seq   INTEGER NOT NULL,
    athlete     TEXT REFERENCES athletes(id) ON DELETE CASCADE,
    started_ms  INTEGER NOT NULL,
    ended_ms    INTEGER,
    load_text   TEXT NOT NULL DEFAULT '',
    load_kg     REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (gateway, mat, start_seq)
);
CREATE INDEX sessions_by_athlete ON sessions(athlete, started_ms);
CREATE INDEX sessions_by_start ON sessions(started_ms);

CREATE TABLE reps (
    gateway     TEXT NOT NULL,
    mat         TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    start_seq   INTEGER NOT NULL,
    time_ms     INTEGER NOT NULL,
    set_no      INTEGER NOT NULL,
    rep_no      INTEGER NOT NULL,
    perfect     INTEGER NOT NULL,
    arched      INTEGER NOT NULL,
    rushed      INTEGER NOT NULL,
    bounce      INTEGER NOT NULL,
    descent_ms  INTEGER NOT NULL,
    ascent_ms   INTEGER,
    depth       REAL,
    PRIMARY KEY (gateway, mat, seq),
    FOREIGN KEY (gateway, mat, start_seq) REFERENCES sessions(gateway, mat, start_seq) ON DELETE CASCADE
);
-- Ordered by seq within the session: the one index a session's reps are read by.
CREATE INDEX reps_by_session ON reps(gateway, mat, start_seq, seq);
