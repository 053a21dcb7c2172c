//! The PostgreSQL history store against a real PostgreSQL server, started
//! per test on a free loopback port (tests/common/postgres.rs).

mod common;

use std::time::{Duration, Instant};

use common::mosquitto::Broker;
use common::mqtt::{write_config, Daemon, Subscriber};
use common::postgres::Postgres;
use flatback::config::HistoryConfig;
use flatback::history::model::{HistoryKind, SessionQuery};
use flatback::history::postgres::PostgresStore;
use flatback::history::{
    HistoryEvent, HistoryStore, Load, Plan, RepRecord, SessionKey, SessionRecord, StoreError, Who,
};

/// Connects the way a gateway does: the URL, and the password from the file.
fn connect(pg: &Postgres) -> Result<postgres::Client, postgres::Error> {
    let password = std::fs::read_to_string(pg.password_file()).unwrap();
    let mut config: postgres::Config = pg.url().parse().unwrap();
    config.password(password.lines().next().unwrap());
    config.connect(postgres::NoTls)
}

#[test]
fn a_server_starts_on_loopback_and_answers() {
    let pg = Postgres::start();
    assert!(pg.url().starts_with("postgres://flatback@127.0.0.1:"), "{}", pg.url());
    let mut client = connect(&pg).expect("connect with the password file");
    let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1);
    let (addr, db): (String, String) = {
        let row = client
            .query_one("SELECT host(inet_server_addr()), current_database()", &[])
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((addr.as_str(), db.as_str()), ("127.0.0.1", "flatback"));

    // The password is checked: a wrong one is refused.
    let mut wrong: postgres::Config = pg.url().parse().unwrap();
    wrong.password("not-the-password");
    let err = wrong
        .connect(postgres::NoTls)
        .err()
        .expect("a wrong password is refused");
    assert!(
        err.as_db_error()
            .is_some_and(|e| e.code() == &postgres::error::SqlState::INVALID_PASSWORD),
        "{err}"
    );
}

#[test]
fn a_server_stops_and_starts_again_with_its_data() {
    let mut pg = Postgres::start();
    let port = pg.port();
    let mut client = connect(&pg).unwrap();
    client
        .batch_execute("CREATE TABLE kept (n BIGINT); INSERT INTO kept VALUES (42);")
        .unwrap();

    pg.stop();
    assert!(!pg.is_running());
    // The open connection is gone, and a new one is refused.
    assert!(
        client.query_one("SELECT 1", &[]).is_err(),
        "a query on a stopped server"
    );
    assert!(connect(&pg).is_err(), "a connection to a stopped server");

    pg.start_again();
    assert_eq!(pg.port(), port);
    let mut client = connect(&pg).expect("connect after start_again");
    let n: i64 = client.query_one("SELECT n FROM kept", &[]).unwrap().get(0);
    assert_eq!(n, 42, "the data directory is the same");
}

// ---------------------------------------------------------------- the store

fn config(pg: &Postgres) -> HistoryConfig {
    HistoryConfig {
        database: pg.url(),
        password_file: Some(pg.password_file()),
        tls: false,
        ca_file: None,
    }
}

fn open(pg: &Postgres) -> PostgresStore {
    PostgresStore::open(&config(pg)).unwrap_or_else(|e| panic!("open the store: {e}\nlog:\n{}", pg.log()))
}

fn event(gateway: &str, mat: &str, seq: u64, athlete: Option<&str>, what: HistoryKind) -> HistoryEvent {
    HistoryEvent {
        gateway: gateway.into(),
        mat: mat.into(),
        seq,
        time_ms: 1_760_000_000_000 + seq as i64 * 4_000,
        athlete: athlete.map(str::to_string),
        what,
    }
}

fn rep(seq: u64, set: u32, rep: u32, perfect: bool) -> RepRecord {
    RepRecord {
        seq,
        time_ms: 1_760_000_000_000 + seq as i64 * 4_000,
        set,
        rep,
        perfect,
        arched: !perfect,
        rushed: false,
        bounce: false,
        descent_ms: 3_000 + u64::from(rep) * 10,
        ascent_ms: Some(1_200),
        depth: (!perfect).then_some(0.4),
    }
}

/// A session on `gateway`'s `mat` from `start_seq`: its start, `sets` sets
/// of `reps` reps (seqs following), its end.
fn session(gateway: &str, mat: &str, start_seq: u64, athlete: Option<&str>, sets: u32, reps: u32) -> Vec<HistoryEvent> {
    let mut v = vec![event(gateway, mat, start_seq, athlete, HistoryKind::SessionStart)];
    let mut seq = start_seq;
    for s in 1..=sets {
        for r in 1..=reps {
            seq += 1;
            v.push(event(
                gateway,
                mat,
                seq,
                athlete,
                HistoryKind::Rep(rep(seq, s, r, r % 4 != 0)),
            ));
        }
    }
    v.push(event(gateway, mat, seq + 1, athlete, HistoryKind::SessionEnd));
    v
}

fn rep_seqs(sessions: &[SessionRecord]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = sessions
        .iter()
        .flat_map(|s| s.reps.iter().map(move |r| (s.key.gateway.clone(), r.seq)))
        .collect();
    v.sort();
    v
}

fn count(client: &mut postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).unwrap().get(0)
}

/// Every table of the database, by name.
fn tables(client: &mut postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT table_name::TEXT FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// For every table, how many of its rows name any of `words` in any column
/// (the row as text).
fn rows_naming(client: &mut postgres::Client, words: &[&str]) -> Vec<(String, i64)> {
    let tables = tables(client);
    assert_eq!(
        tables,
        ["athletes", "load_changes", "reps", "schema_migrations", "sessions"]
    );
    tables
        .into_iter()
        .map(|t| {
            let mut n = 0;
            for w in words {
                let sql = format!("SELECT count(*) FROM {t} AS row WHERE strpos(row::TEXT, $1) > 0");
                n += client.query_one(&sql, &[w]).unwrap().get::<_, i64>(0);
            }
            (t, n)
        })
        .collect()
}

/// What every store does, asserted through the trait alone (the same
/// behaviour as the SQLite store's).
fn contract(store: &mut dyn HistoryStore) {
    assert_eq!(store.engine(), "postgres");

    // The roster.
    assert!(matches!(store.add_athlete("  "), Err(StoreError::Invalid(_))));
    let zoe = store.add_athlete(" Zoë ").unwrap();
    let ana = store.add_athlete("Ana").unwrap();
    assert_eq!(zoe.name, "Zoë");
    assert_ne!(zoe.id, ana.id);
    assert_ne!(zoe.secret, ana.secret);
    assert_eq!((zoe.load.clone(), zoe.plan), (Load::bodyweight(), Plan::default()));
    let names: Vec<String> = store.athletes().unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["Ana", "Zoë"], "by name");
    assert_eq!(store.athlete(&ana.id).unwrap().as_ref(), Some(&ana));
    assert_eq!(store.athlete_by_secret(&zoe.secret).unwrap().as_ref(), Some(&zoe));
    assert_eq!(store.athlete("a-00000000").unwrap(), None);
    assert_eq!(store.athlete_by_secret("nope").unwrap(), None);

    // Plan and load.
    assert!(store.set_plan(&ana.id, Plan { sets: 4, reps: 12 }).unwrap());
    assert!(!store.set_plan("a-00000000", Plan::default()).unwrap());
    let dumbbell = Load {
        text: "2 kg dumbbell".into(),
        kg: 2.0,
    };
    assert!(!store.set_load("a-00000000", &dumbbell, 5).unwrap());
    assert!(store.set_load(&ana.id, &dumbbell, 1_000).unwrap());
    let a = store.athlete(&ana.id).unwrap().unwrap();
    assert_eq!((a.load.clone(), a.plan), (dumbbell.clone(), Plan { sets: 4, reps: 12 }));
    let changes = store.load_changes(&ana.id).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].athlete.as_str(), changes[0].at_ms, &changes[0].load),
        (ana.id.as_str(), 1_000, &dumbbell)
    );
    assert!(store.load_changes(&zoe.id).unwrap().is_empty());

    // Ana's session: 2 sets of 5, with her load of then.
    let ana_session = session("g1", "m1", 100, Some(&ana.id), 2, 5);
    store.write(&ana_session).unwrap();
    // Handed again (a writer after a crash): nothing changes.
    store.write(&ana_session).unwrap();
    store.write(&ana_session[3..7]).unwrap();
    let mine = store.sessions(&SessionQuery::of(Who::Athlete(ana.id.clone()))).unwrap();
    assert_eq!(mine.len(), 1, "{mine:#?}");
    let s = &mine[0];
    assert_eq!(
        s.key,
        SessionKey {
            gateway: "g1".into(),
            mat: "m1".into(),
            start_seq: 100
        }
    );
    assert_eq!(s.athlete.as_deref(), Some(ana.id.as_str()));
    assert_eq!(s.load, dumbbell);
    assert_eq!(s.started_ms, ana_session[0].time_ms);
    assert_eq!(s.ended_ms, Some(ana_session.last().unwrap().time_ms));
    let seqs: Vec<u64> = s.reps.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (101..=110).collect::<Vec<_>>(), "each rep once, in seq order");
    // Every field of the rep comes back as written.
    let HistoryKind::Rep(r4) = &ana_session[4].what else {
        panic!()
    };
    assert_eq!(&s.reps[3], r4);
    assert_eq!((s.reps[3].perfect, s.reps[3].depth), (false, Some(0.4)));
    assert_eq!((s.reps[5].set, s.reps[5].rep), (2, 1));

    // A guest session (nobody on the mat), then Zoë claims it: it moves
    // whole, with her load.
    let guest = session("g1", "m2", 200, None, 1, 3);
    store.write(&guest).unwrap();
    let guests = store.sessions(&SessionQuery::of(Who::Guests)).unwrap();
    assert_eq!(guests.len(), 1);
    assert_eq!((guests[0].athlete.clone(), guests[0].reps.len()), (None, 3));
    let key = guests[0].key.clone();
    assert!(!store.claim(&key, "a-00000000").unwrap(), "no such athlete");
    assert!(store.claim(&key, &zoe.id).unwrap());
    assert!(!store.claim(&key, &ana.id).unwrap(), "no longer a guest's");
    assert!(store.sessions(&SessionQuery::of(Who::Guests)).unwrap().is_empty());
    let zoes = store.sessions(&SessionQuery::of(Who::Athlete(zoe.id.clone()))).unwrap();
    assert_eq!(zoes.len(), 1);
    assert_eq!((zoes[0].key.clone(), zoes[0].reps.len()), (key, 3));
    assert_eq!(zoes[0].load, Load::bodyweight());

    // A session that starts as a guest's becomes the athlete's at their
    // first rep; an unknown athlete's events make a guest session.
    let mut late = session("g2", "m1", 300, None, 1, 2);
    late[2].athlete = Some(zoe.id.clone());
    store.write(&late).unwrap();
    store
        .write(&session("g2", "m1", 400, Some("a-ffffffff"), 1, 2))
        .unwrap();
    // A rep whose session start never arrived opens one, as a guest's.
    store
        .write(&[event("g2", "m3", 7, None, HistoryKind::Rep(rep(7, 1, 1, true)))])
        .unwrap();

    let all = store.sessions(&SessionQuery::of(Who::Everyone)).unwrap();
    let keys: Vec<(String, String, u64, Option<String>, usize)> = all
        .iter()
        .map(|s| {
            (
                s.key.gateway.clone(),
                s.key.mat.clone(),
                s.key.start_seq,
                s.athlete.clone(),
                s.reps.len(),
            )
        })
        .collect();
    assert_eq!(keys.len(), 5, "{keys:#?}");
    assert!(
        keys.contains(&("g2".into(), "m1".into(), 300, Some(zoe.id.clone()), 2)),
        "{keys:#?}"
    );
    assert!(keys.contains(&("g2".into(), "m1".into(), 400, None, 2)), "{keys:#?}");
    assert!(keys.contains(&("g2".into(), "m3".into(), 7, None, 1)), "{keys:#?}");
    assert!(
        all.windows(2).all(|w| w[0].started_ms <= w[1].started_ms),
        "oldest first"
    );

    // The filters: since and gateway.
    let on_g2 = store
        .sessions(&SessionQuery {
            who: Who::Everyone,
            since_ms: None,
            gateway: Some("g2".into()),
        })
        .unwrap();
    assert_eq!(on_g2.len(), 3);
    let since = store
        .sessions(&SessionQuery {
            who: Who::Athlete(zoe.id.clone()),
            since_ms: Some(late[0].time_ms),
            gateway: None,
        })
        .unwrap();
    assert_eq!(since.iter().map(|s| s.key.start_seq).collect::<Vec<_>>(), [300]);

    // Removal: the athlete and every row of theirs; the others stay.
    assert!(store.remove_athlete(&zoe.id).unwrap());
    assert!(!store.remove_athlete(&zoe.id).unwrap());
    assert_eq!(store.athlete(&zoe.id).unwrap(), None);
    assert!(store
        .sessions(&SessionQuery::of(Who::Athlete(zoe.id.clone())))
        .unwrap()
        .is_empty());
    assert_eq!(store.sessions(&SessionQuery::of(Who::Everyone)).unwrap().len(), 3);
    assert_eq!(
        store.sessions(&SessionQuery::of(Who::Athlete(ana.id.clone()))).unwrap()[0]
            .reps
            .len(),
        10
    );
    // Events of a removed athlete still on the way: a guest session.
    store.write(&session("g1", "m1", 500, Some(&zoe.id), 1, 1)).unwrap();
    let guests = store.sessions(&SessionQuery::of(Who::Guests)).unwrap();
    assert!(guests.iter().any(|s| s.key.start_seq == 500 && s.athlete.is_none()));
}

#[test]
fn the_store_keeps_the_roster_and_the_history() {
    let pg = Postgres::start();
    let mut store = open(&pg);
    contract(&mut store);
    // Opened again (a gateway restarting): the schema is there, migrated once,
    // and the data with it.
    drop(store);
    let mut store = open(&pg);
    assert_eq!(store.athletes().unwrap().len(), 1);
    let mut client = pg.client();
    assert_eq!(count(&mut client, "SELECT count(*) FROM schema_migrations"), 1);
    assert_eq!(count(&mut client, "SELECT max(version) FROM schema_migrations"), 1);
    // `[history] database = "postgres://..."` opens this store.
    let mut opened = flatback::history::open(&config(&pg)).unwrap().expect("a store");
    assert_eq!(opened.engine(), "postgres");
    assert_eq!(opened.athletes().unwrap(), store.athletes().unwrap());
}

#[test]
fn two_gateways_one_postgresql_one_history() {
    let pg = Postgres::start();
    // Both gateways start at once on an empty database: the migrations take
    // turns (an advisory lock), neither fails.
    let config = config(&pg);
    let opened: Vec<PostgresStore> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| PostgresStore::open(&config))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().expect("open at once"))
            .collect()
    });
    let mut client = pg.client();
    assert_eq!(count(&mut client, "SELECT count(*) FROM schema_migrations"), 1);
    let mut stores = opened.into_iter();
    let (mut g1, mut g2) = (stores.next().unwrap(), stores.next().unwrap());

    // The roster is one: added on g1, known on g2.
    let ana = g1.add_athlete("Ana").unwrap();
    assert_eq!(g2.athlete(&ana.id).unwrap().map(|a| a.name), Some("Ana".to_string()));

    // Ana trains on g1's mat "m1" and on g2's mat "m1" (the same seqs on
    // both gateways), the two gateways writing at the same time.
    let on_g1 = session("g1", "m1", 10, Some(&ana.id), 3, 10);
    let on_g2 = session("g2", "m1", 10, Some(&ana.id), 2, 15);
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            for chunk in on_g1.chunks(4) {
                g1.write(chunk).unwrap();
            }
        });
        let b = s.spawn(|| {
            for chunk in on_g2.chunks(4) {
                g2.write(chunk).unwrap();
            }
        });
        a.join().unwrap();
        b.join().unwrap();
    });

    // One history with both, read from either gateway.
    for store in [&mut g1, &mut g2] {
        let history = store.sessions(&SessionQuery::of(Who::Athlete(ana.id.clone()))).unwrap();
        let gateways: Vec<&str> = history.iter().map(|s| s.key.gateway.as_str()).collect();
        assert_eq!(history.len(), 2, "{gateways:?}");
        assert!(gateways.contains(&"g1") && gateways.contains(&"g2"), "{gateways:?}");
        let mut expected: Vec<(String, u64)> = (11..=40).map(|q| ("g1".to_string(), q)).collect();
        expected.extend((11..=40).map(|q| ("g2".to_string(), q)));
        expected.sort();
        assert_eq!(rep_seqs(&history), expected);
        assert!(history.iter().all(|s| s.ended_ms.is_some()));
    }
    assert_eq!(count(&mut client, "SELECT count(*) FROM reps"), 60);
}

/// The roster's figures as `handle` keeps them for a gateway's pages, each
/// checked against the figures computed from the whole history.
fn roster_checked(handle: &flatback::history::Handle, store: &mut PostgresStore) -> Vec<(String, usize)> {
    use flatback::history::figures::{self, Thresholds};
    let (t, now) = (Thresholds::default(), 1_760_000_000_000 + 3_600_000);
    let roster = handle.roster_figures(&t, now, 8).unwrap();
    for (a, kept) in &roster {
        let sessions = store.sessions(&SessionQuery::of(Who::Athlete(a.id.clone()))).unwrap();
        let changes = store.load_changes(&a.id).unwrap();
        assert_eq!(
            **kept,
            figures::athlete(&sessions, &a.load, &changes, &t, now, 8),
            "{}",
            a.name
        );
    }
    roster.iter().map(|(a, f)| (a.name.clone(), f.sessions.len())).collect()
}

#[test]
fn the_roster_figures_one_gateway_keeps_follow_what_another_writes() {
    let pg = Postgres::start();
    let handle = flatback::history::Handle::new(&config(&pg)).unwrap();
    let mut g2 = open(&pg);
    let ana = g2.add_athlete("Ana").unwrap();
    g2.write(&session("g1", "m1", 10, Some(&ana.id), 3, 10)).unwrap();
    assert_eq!(roster_checked(&handle, &mut g2), [("Ana".to_string(), 1)]);

    // g2's mat: a session open, a rep, then two, then its end.
    let on_g2 = session("g2", "m1", 100, Some(&ana.id), 1, 2);
    g2.write(&on_g2[..2]).unwrap();
    assert_eq!(roster_checked(&handle, &mut g2), [("Ana".to_string(), 2)]);
    g2.write(&on_g2[2..3]).unwrap();
    roster_checked(&handle, &mut g2);
    g2.write(&on_g2[3..]).unwrap();
    roster_checked(&handle, &mut g2);

    // A guest session older than all of Ana's, claimed; a load change.
    g2.write(&session("g2", "m9", 1, None, 1, 5)).unwrap();
    let guest = SessionKey {
        gateway: "g2".into(),
        mat: "m9".into(),
        start_seq: 1,
    };
    assert!(g2.claim(&guest, &ana.id).unwrap());
    assert_eq!(roster_checked(&handle, &mut g2), [("Ana".to_string(), 3)]);
    assert!(g2
        .set_load(
            &ana.id,
            &Load {
                text: "2 kg".into(),
                kg: 2.0
            },
            1_760_000_000_000
        )
        .unwrap());
    roster_checked(&handle, &mut g2);

    // Removed on g2: gone from g1's roster.
    assert!(g2.remove_athlete(&ana.id).unwrap());
    assert!(roster_checked(&handle, &mut g2).is_empty());
}

#[test]
fn the_database_away_for_a_set_loses_no_rep_and_doubles_none() {
    let mut pg = Postgres::start();
    let mut store = open(&pg);
    let ana = store.add_athlete("Ana").unwrap();
    // A session of 3 sets of 10: set 1 is written, then PostgreSQL goes away
    // for the length of set 2, and comes back for set 3.
    let events = session("g1", "m4", 1_000, Some(&ana.id), 3, 10);
    let (start_and_set1, rest) = events.split_at(11);
    let (set2, set3_and_end) = rest.split_at(10);
    for e in start_and_set1 {
        store.write(std::slice::from_ref(e)).unwrap();
    }

    pg.stop();
    // Every write fails while it is away, with a database error (the writer
    // keeps the events and hands them again).
    for e in set2 {
        match store.write(std::slice::from_ref(e)) {
            Err(StoreError::Database(m)) => assert!(m.starts_with("postgres"), "{m}"),
            other => panic!("a write with the database away: {other:?}"),
        }
    }
    assert!(matches!(store.write(set2), Err(StoreError::Database(_))));
    assert!(store.athletes().is_err());

    pg.start_again();
    // Nothing of the failed writes landed.
    let mut client = pg.client();
    assert_eq!(count(&mut client, "SELECT count(*) FROM reps"), 10);
    // The writer hands everything since its cursor again, set 1 included
    // (a cursor that was not saved), then set 3 as it comes.
    store.write(&events[..21]).unwrap();
    store.write(set2).unwrap();
    for e in set3_and_end {
        store.write(std::slice::from_ref(e)).unwrap();
    }

    // Each rep's seq exactly once.
    let history = store.sessions(&SessionQuery::of(Who::Athlete(ana.id.clone()))).unwrap();
    assert_eq!(history.len(), 1);
    let expected: Vec<(String, u64)> = (1_001..=1_030).map(|q| ("g1".to_string(), q)).collect();
    assert_eq!(rep_seqs(&history), expected);
    let sets: Vec<u32> = history[0].reps.iter().map(|r| r.set).collect();
    assert_eq!(sets.iter().filter(|&&s| s == 2).count(), 10);
    assert_eq!(history[0].ended_ms, Some(events.last().unwrap().time_ms));
    assert_eq!(count(&mut client, "SELECT count(*) FROM reps"), 30);
    assert_eq!(count(&mut client, "SELECT count(DISTINCT seq) FROM reps"), 30);
    assert_eq!(count(&mut client, "SELECT count(*) FROM sessions"), 1);
}

#[test]
fn remove_athlete_leaves_no_row_of_theirs() {
    let pg = Postgres::start();
    let mut store = open(&pg);
    let ana = store.add_athlete("Ana Removed").unwrap();
    let bo = store.add_athlete("Bo Stays").unwrap();
    store
        .set_load(
            &ana.id,
            &Load {
                text: "2 kg dumbbell".into(),
                kg: 2.0,
            },
            10,
        )
        .unwrap();
    store
        .set_load(
            &bo.id,
            &Load {
                text: "1 kg".into(),
                kg: 1.0,
            },
            10,
        )
        .unwrap();
    store.write(&session("g1", "m1", 10, Some(&ana.id), 2, 5)).unwrap();
    store.write(&session("g2", "m1", 10, Some(&ana.id), 1, 5)).unwrap();
    store.write(&session("g1", "m2", 10, Some(&bo.id), 1, 5)).unwrap();
    // A guest session that Ana claimed.
    store.write(&session("g1", "m3", 50, None, 1, 4)).unwrap();
    let claimed = SessionKey {
        gateway: "g1".into(),
        mat: "m3".into(),
        start_seq: 50,
    };
    assert!(store.claim(&claimed, &ana.id).unwrap());
    let anas: Vec<SessionKey> = store
        .sessions(&SessionQuery::of(Who::Athlete(ana.id.clone())))
        .unwrap()
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(anas.len(), 3);

    let mut client = pg.client();
    let hers = |client: &mut postgres::Client| -> Vec<(String, i64)> {
        let mut found = rows_naming(client, &[&ana.id, &ana.name, &ana.secret]);
        for k in &anas {
            let n: i64 = client
                .query_one(
                    "SELECT count(*) FROM reps WHERE gateway = $1 AND mat = $2 AND start_seq = $3",
                    &[&k.gateway, &k.mat, &(k.start_seq as i64)],
                )
                .unwrap()
                .get(0);
            found.push((format!("reps of {}/{}/{}", k.gateway, k.mat, k.start_seq), n));
        }
        found
    };
    let before = hers(&mut client);
    assert!(before.iter().filter(|(_, n)| *n > 0).count() >= 6, "{before:?}");

    assert!(store.remove_athlete(&ana.id).unwrap());
    let after = hers(&mut client);
    assert!(
        after.iter().all(|(_, n)| *n == 0),
        "rows of the removed athlete: {after:?}"
    );
    // Bo's rows stay.
    assert_eq!(
        store.sessions(&SessionQuery::of(Who::Athlete(bo.id.clone()))).unwrap()[0]
            .reps
            .len(),
        5
    );
    assert_eq!(store.load_changes(&bo.id).unwrap().len(), 1);
    assert_eq!(count(&mut client, "SELECT count(*) FROM athletes"), 1);
    assert_eq!(count(&mut client, "SELECT count(*) FROM reps"), 5);
}

mod tls {
    use super::*;
    use crate::common::tls::Ca;

    #[test]
    fn tls_with_the_ca_connects_encrypted_and_another_ca_is_refused() {
        let gym_ca = Ca::new("gym CA");
        let (cert, key) = gym_ca.leaf("postgres", &[]);
        let pg = Postgres::start_with_tls(&cert, &key);
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, gym_ca.cert.pem()).unwrap();

        let mut store = PostgresStore::open(&HistoryConfig {
            tls: true,
            ca_file: Some(ca_file),
            ..config(&pg)
        })
        .unwrap_or_else(|e| panic!("open over TLS: {e}\nlog:\n{}", pg.log()));
        let ana = store.add_athlete("Ana").unwrap();
        assert_eq!(store.athlete(&ana.id).unwrap().map(|a| a.name), Some("Ana".into()));
        // The store's connection is encrypted (the server says so).
        let mut client = pg.client();
        let encrypted = count(
            &mut client,
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE ssl AND application_name = 'flatback'",
        );
        assert_eq!(encrypted, 1);

        // A server whose certificate another CA signed is refused.
        let other = dir.path().join("other.pem");
        std::fs::write(&other, Ca::new("someone else").cert.pem()).unwrap();
        let err = PostgresStore::open(&HistoryConfig {
            tls: true,
            ca_file: Some(other),
            ..config(&pg)
        })
        .err()
        .expect("a certificate of another CA is refused");
        assert!(matches!(err, StoreError::Database(_)), "{err}");
        // A CA file that is not there is the configuration's fault.
        let err = PostgresStore::open(&HistoryConfig {
            tls: true,
            ca_file: Some(dir.path().join("missing.pem")),
            ..config(&pg)
        })
        .err()
        .expect("a missing CA file");
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains("history.ca_file")),
            "{err}"
        );
    }
}

#[test]
fn the_password_comes_from_the_file() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password\nsecond line\n").unwrap();
    let err = PostgresStore::open(&HistoryConfig {
        password_file: Some(wrong),
        ..config(&pg)
    })
    .err()
    .expect("a wrong password is refused");
    assert!(matches!(err, StoreError::Database(_)), "{err}");
    assert!(!err.to_string().contains(pg.password()), "{err}");
    let err = PostgresStore::open(&HistoryConfig {
        password_file: Some(dir.path().join("missing")),
        ..config(&pg)
    })
    .err()
    .expect("a missing password file");
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("history.password_file")),
        "{err}"
    );
    // The first line only: a second line in the file is not part of it.
    let good = dir.path().join("good");
    std::fs::write(&good, format!("{}\nanything\n", pg.password())).unwrap();
    PostgresStore::open(&HistoryConfig {
        password_file: Some(good),
        ..config(&pg)
    })
    .expect("the first line is the password");
    // What belongs elsewhere in the configuration is refused in the URL,
    // before any connection.
    let in_url = format!("postgres://flatback:{}@127.0.0.1:{}/flatback", pg.password(), pg.port());
    let err = PostgresStore::open(&HistoryConfig {
        database: in_url,
        ..config(&pg)
    })
    .err()
    .expect("a password in the URL");
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("password_file")),
        "{err}"
    );
    assert!(!err.to_string().contains(pg.password()), "{err}");
    let err = PostgresStore::open(&HistoryConfig {
        database: format!("{}?sslmode=require", pg.url()),
        ..config(&pg)
    })
    .err()
    .expect("sslmode=require without history.tls");
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("history.tls")),
        "{err}"
    );
}

#[test]
fn the_store_contract_holds_on_postgresql() {
    let pg = Postgres::start();
    let mut store = open(&pg);
    common::history::store_contract(&mut store);
}

#[test]
fn a_connection_lost_while_idle_is_opened_again_before_the_next_call() {
    let mut pg = Postgres::start();
    let mut store = open(&pg);
    store.add_athlete("Ana").unwrap();

    // The server restarts between two calls (the gateway idle meanwhile):
    // the next call of each kind works the first time, writes and roster
    // changes alike.
    pg.stop();
    pg.start_again();
    store
        .write(&session("g1", "m1", 1, None, 1, 3))
        .expect("a write right after the restart");
    pg.stop();
    pg.start_again();
    // Unused for more than a second (the store checks such a connection
    // before a call).
    std::thread::sleep(Duration::from_millis(1_100));
    store.add_athlete("Bo").expect("an athlete added after the restart");

    // The server drops the connection by itself (an administrator, a
    // failover).
    let mut client = pg.client();
    let flatback = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'flatback'";
    assert_eq!(count(&mut client, flatback), 1);
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'flatback'",
            &[],
        )
        .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while count(&mut client, flatback) > 0 {
        assert!(Instant::now() < until, "the backend still there after 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1_100));
    let cy = store
        .add_athlete("Cy")
        .expect("an athlete added after the connection was dropped");
    assert!(store
        .set_load(
            &cy.id,
            &Load {
                text: "1 kg".into(),
                kg: 1.0
            },
            5
        )
        .unwrap());
    let names: Vec<String> = store.athletes().unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["Ana", "Bo", "Cy"]);
    assert_eq!(store.load_changes(&cy.id).unwrap().len(), 1);
    assert_eq!(count(&mut client, "SELECT count(*) FROM reps"), 3);
}

#[test]
fn the_command_line_on_postgresql_adds_exports_and_removes_leaving_no_row() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("flatback.toml");
    std::fs::write(
        &cfg,
        format!(
            "[history]\ndatabase = \"{}\"\npassword_file = \"{}\"\n",
            pg.url(),
            pg.password_file().display()
        ),
    )
    .unwrap();
    let add = common::cli(&["athlete", "add", "Ana Lee"], &cfg);
    let ana: serde_json::Value = serde_json::from_str(&add).unwrap();
    let id = ana["id"].as_str().unwrap().to_string();
    common::cli(&["athlete", "add", "Bo"], &cfg);
    let list = common::cli(&["athlete", "list"], &cfg);
    let names: Vec<String> = list
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["Ana Lee", "Bo"]);

    // Ana's sessions on two gateways, written as their writers do.
    let mut store = open(&pg);
    let secret = store.athlete(&id).unwrap().unwrap().secret;
    store.write(&session("g1", "m1", 1, Some(&id), 1, 4)).unwrap();
    store.write(&session("g2", "m7", 1, Some(&id), 2, 3)).unwrap();
    let csv = common::cli(&["history", "export", "--athlete", &id], &cfg);
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 4 + 6, "a row per rep: {csv}");
    assert_eq!(rows.iter().filter(|r| r.contains(",g2,m7,")).count(), 6, "{csv}");

    let mut client = pg.client();
    assert!(rows_naming(&mut client, &[&id, &secret]).iter().any(|(_, n)| *n > 0));
    common::cli(&["athlete", "remove", &id], &cfg);
    let left = rows_naming(&mut client, &[&id, "Ana Lee", &secret]);
    assert!(
        left.iter().all(|(_, n)| *n == 0),
        "rows of the removed athlete: {left:?}"
    );
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM reps"),
        0,
        "her reps went with her sessions"
    );
    assert_eq!(count(&mut client, "SELECT count(*) FROM athletes"), 1, "Bo stays");
    let csv = common::cli(&["history", "export"], &cfg);
    assert_eq!(csv.lines().count(), 1, "{csv}");
}

/// The gateway and seq of every rep event on the broker.
fn reps_on_broker(msgs: &[common::mqtt::Msg]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = msgs
        .iter()
        .filter(|m| m.topic.ends_with("/event") && m.json()["type"] == "rep")
        .map(|m| {
            (
                m.topic.split('/').nth(1).unwrap().to_string(),
                m.json()["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The gateway and seq of every rep in PostgreSQL, doubles included.
fn reps_in_postgres(pg: &Postgres) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = pg
        .client()
        .query("SELECT gateway, seq FROM reps ORDER BY gateway, seq", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
        .collect();
    v.sort();
    v
}

#[test]
fn two_gateways_daemons_one_history_and_the_database_away_for_a_set_loses_no_rep_and_doubles_none() {
    const T: Duration = Duration::from_secs(60);
    let broker = Broker::start();
    let mut pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let history = format!(
        "[athletes]\ngrace_s = 1.0\n[history]\ndatabase = \"{}\"\npassword_file = \"{}\"\n",
        pg.url(),
        pg.password_file().display()
    );
    let cfg = |gateway: &str| write_config(dir.path(), &broker.url(), gateway, &history);
    let (cfg1, cfg2) = (cfg("g1"), cfg("g2"));
    let add = common::cli(&["athlete", "add", "Ana"], &cfg1);
    let ana: serde_json::Value = serde_json::from_str(&add).unwrap();
    let ana = ana["id"].as_str().unwrap().to_string();

    let sub = Subscriber::connect(broker.port(), "sub-pg", false, &["flatback/g1/#", "flatback/g2/#"]);
    let args = ["--mat", "mat1", "--kind", "three_sets", "--seed", "3", "--speed", "10"];
    let mut daemons = [Daemon::spawn(&cfg1, &args), Daemon::spawn(&cfg2, &args)];
    // Ana is on g1's mat, then on g2's (the roster is one: g2 knows her).
    for gw in ["g1", "g2"] {
        let state = format!("flatback/{gw}/mat1/state");
        sub.wait_msg(&state, 0, T, |m| m.json()["occupied"] == true);
        sub.publish(
            &format!("flatback/{gw}/mat1/command"),
            format!(r#"{{"command":"athlete","athlete":"{ana}"}}"#).as_bytes(),
            false,
        );
        sub.wait_msg(&state, 0, T, |m| m.json()["athlete"] == ana.as_str());
    }

    // PostgreSQL goes away at g1's first rep of set 2 and comes back at its
    // first rep of set 3.
    let rep_of_set = |set: u64| move |m: &common::mqtt::Msg| m.json()["type"] == "rep" && m.json()["set"] == set;
    let at = sub.wait_msg("flatback/g1/mat1/event", 0, T, rep_of_set(2));
    pg.stop();
    let back = sub.wait_msg("flatback/g1/mat1/event", at, T, rep_of_set(3));
    let away = reps_on_broker(&sub.messages()[at..back]).len();
    assert!(away >= 5, "{away} reps while PostgreSQL was away");
    // The writer found it away (and keeps the events in the outbox).
    daemons[0].wait_log(&["history: cannot write"], T);
    pg.start_again();

    // Both sessions end.
    for gw in ["g1", "g2"] {
        sub.wait_msg(&format!("flatback/{gw}/mat1/event"), 0, Duration::from_secs(120), |m| {
            m.json()["type"] == "session" && m.json()["phase"] == "end"
        });
    }
    let published = reps_on_broker(&sub.messages());
    assert!(
        published.iter().filter(|(g, _)| g == "g1").count() >= 20,
        "{published:?}"
    );
    assert!(
        published.iter().filter(|(g, _)| g == "g2").count() >= 20,
        "{published:?}"
    );
    // Every rep on the broker reaches PostgreSQL (the writers retry from
    // their outboxes), each once, and nothing else.
    let until = Instant::now() + T;
    loop {
        let kept = reps_in_postgres(&pg);
        if kept == published {
            break;
        }
        assert!(
            Instant::now() < until && kept.len() <= published.len(),
            "reps in PostgreSQL: {} of {}; missing {:?}; not on the broker or doubled {:?}",
            kept.len(),
            published.len(),
            published.iter().filter(|r| !kept.contains(r)).collect::<Vec<_>>(),
            kept.iter()
                .filter(|r| !published.contains(r) || kept.iter().filter(|k| k == r).count() > 1)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // One history of Ana with both gateways' sessions.
    let mut store = open(&pg);
    let history = store.sessions(&SessionQuery::of(Who::Athlete(ana.clone()))).unwrap();
    let mut gateways: Vec<&str> = history.iter().map(|s| s.key.gateway.as_str()).collect();
    gateways.sort_unstable();
    gateways.dedup();
    assert_eq!(gateways.len(), 2, "{history:#?}");
    assert_eq!(rep_seqs(&history), published);
    for d in &mut daemons {
        d.term();
        d.wait_exit(T);
    }
}
