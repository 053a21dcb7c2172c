//! What every history store must do, whatever its engine: run on a SQLite
//! file (tests/history.rs) and on a real PostgreSQL server
//! (tests/history_postgres.rs).

use flatback::contract::event::RepEvent;
use flatback::history::model::{HistoryKind, SessionQuery};
use flatback::history::{HistoryEvent, HistoryStore, Load, Plan, RepRecord, SessionKey, Who};

/// A session start, end or rep of `gateway`/`mat` at `seq`, `time_ms`.
pub fn start(gateway: &str, mat: &str, seq: u64, time_ms: i64, athlete: Option<&str>) -> HistoryEvent {
    HistoryEvent {
        gateway: gateway.into(),
        mat: mat.into(),
        seq,
        time_ms,
        athlete: athlete.map(String::from),
        what: HistoryKind::SessionStart,
    }
}

pub fn end(gateway: &str, mat: &str, seq: u64, time_ms: i64, athlete: Option<&str>) -> HistoryEvent {
    HistoryEvent {
        what: HistoryKind::SessionEnd,
        ..start(gateway, mat, seq, time_ms, athlete)
    }
}

/// Rep `n` of set `set`.
pub fn rep(
    gateway: &str,
    mat: &str,
    seq: u64,
    time_ms: i64,
    athlete: Option<&str>,
    (set, n, perfect): (u32, u32, bool),
) -> HistoryEvent {
    let r = RepEvent {
        t_ms: 0,
        set,
        rep: n,
        perfect,
        arched: !perfect,
        rushed: false,
        descent_ms: 3000 + u64::from(n),
        ascent_ms: Some(1400),
        bounce: false,
        depth: (!perfect).then_some(0.75),
    };
    HistoryEvent {
        what: HistoryKind::Rep(RepRecord::from_event(seq, time_ms, &r)),
        ..start(gateway, mat, seq, time_ms, athlete)
    }
}

/// A whole session: start at `seq0`, `reps` reps in one set, end.
pub fn session(gateway: &str, mat: &str, seq0: u64, t0: i64, athlete: Option<&str>, reps: u32) -> Vec<HistoryEvent> {
    let mut v = vec![start(gateway, mat, seq0, t0, athlete)];
    for k in 1..=reps {
        v.push(rep(
            gateway,
            mat,
            seq0 + u64::from(k),
            t0 + 5000 * i64::from(k),
            athlete,
            (1, k, k % 4 != 0),
        ));
    }
    v.push(end(
        gateway,
        mat,
        seq0 + u64::from(reps) + 1,
        t0 + 5000 * i64::from(reps + 1),
        athlete,
    ));
    v
}

fn of(store: &mut dyn HistoryStore, who: Who) -> Vec<flatback::history::SessionRecord> {
    store.sessions(&SessionQuery::of(who)).expect("sessions read")
}

/// The behaviour both engines share; `store` must be empty.
pub fn store_contract(store: &mut dyn HistoryStore) {
    // The roster.
    let ana = store.add_athlete("  Ana  ").unwrap();
    let bo = store.add_athlete("Bo").unwrap();
    assert_eq!(ana.name, "Ana");
    assert_ne!(ana.id, bo.id);
    assert_ne!(ana.secret, bo.secret);
    assert!(store.add_athlete("").is_err(), "an empty name is refused");
    let names: Vec<String> = store.athletes().unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["Ana", "Bo"]);
    assert_eq!(store.athlete(&ana.id).unwrap().unwrap().name, "Ana");
    assert_eq!(store.athlete_by_secret(&bo.secret).unwrap().unwrap().id, bo.id);
    assert!(store.athlete("a-nobody").unwrap().is_none());
    assert_eq!(ana.plan, Plan { sets: 3, reps: 10 });
    assert!(store.set_plan(&ana.id, Plan { sets: 4, reps: 12 }).unwrap());
    assert_eq!(
        store.athlete(&ana.id).unwrap().unwrap().plan,
        Plan { sets: 4, reps: 12 }
    );

    // Ana's session, written twice (a writer that crashed before its cursor
    // moved): every seq once.
    let first = session("g1", "m1", 1, 1_000_000, Some(&ana.id), 10);
    store.write(&first).unwrap();
    store.write(&first).unwrap();
    store.write(&first[3..7]).unwrap();
    let s = of(store, Who::Athlete(ana.id.clone()));
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].reps.len(), 10, "each rep once");
    assert_eq!(
        s[0].key,
        SessionKey {
            gateway: "g1".into(),
            mat: "m1".into(),
            start_seq: 1
        }
    );
    assert_eq!((s[0].started_ms, s[0].ended_ms), (1_000_000, Some(1_055_000)));
    assert_eq!(s[0].load, Load::bodyweight());
    let seqs: Vec<u64> = s[0].reps.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (2..=11).collect::<Vec<u64>>());
    let r = &s[0].reps[3];
    assert_eq!(
        (r.set, r.rep, r.perfect, r.arched, r.descent_ms, r.ascent_ms, r.depth),
        (1, 4, false, true, 3004, Some(1400), Some(0.75))
    );

    // A load: later sessions carry it, the earlier one keeps bodyweight.
    let two = Load {
        text: "2 kg dumbbell".into(),
        kg: 2.0,
    };
    assert!(store.set_load(&ana.id, &two, 2_000_000).unwrap());
    assert!(!store.set_load("a-nobody", &two, 2_000_000).unwrap());
    store
        .write(&session("g1", "m1", 20, 3_000_000, Some(&ana.id), 3))
        .unwrap();
    let s = of(store, Who::Athlete(ana.id.clone()));
    assert_eq!(s.iter().map(|s| s.load.kg).collect::<Vec<_>>(), [0.0, 2.0]);
    let changes = store.load_changes(&ana.id).unwrap();
    assert_eq!(
        (changes.len(), changes[0].at_ms, &changes[0].load),
        (1, 2_000_000, &two)
    );

    // The fingerprints move with what the figures read: a session ended, a
    // rep of an open one, a load change.
    let print = |store: &mut dyn HistoryStore, id: &str| {
        store
            .fingerprints()
            .unwrap()
            .into_iter()
            .find(|(a, _)| a == id)
            .map(|(_, f)| f)
    };
    let before = print(store, &ana.id).unwrap();
    assert_eq!((before.sessions, before.open_reps, before.load_changes), (2, 0, 1));
    assert_eq!(before.ended_sum, 1_055_000 + 3_020_000);
    store
        .write(&[start("g1", "m3", 100, 7_000_000, Some(&ana.id))])
        .unwrap();
    store
        .write(&[rep("g1", "m3", 101, 7_005_000, Some(&ana.id), (1, 1, true))])
        .unwrap();
    let open = print(store, &ana.id).unwrap();
    assert_eq!((open.sessions, open.open_reps, open.ended), (3, 1, 2));
    // What moved since a read whose latest end was the second session's:
    // the open session, with its rep.
    let moved = |store: &mut dyn HistoryStore, after_ms: i64| {
        let s = store.sessions_ended_after(&ana.id, after_ms).unwrap();
        s.iter().map(|s| (s.key.start_seq, s.reps.len())).collect::<Vec<_>>()
    };
    assert_eq!(moved(store, 3_020_000), [(100, 1)]);
    assert_eq!(moved(store, 1_055_000), [(20, 3), (100, 1)], "ended after, not at");
    store.write(&[end("g1", "m3", 102, 7_010_000, Some(&ana.id))]).unwrap();
    let ended = print(store, &ana.id).unwrap();
    assert_eq!((ended.open_reps, ended.ended_sum), (0, before.ended_sum + 7_010_000));
    assert_eq!(ended.ended, 3);
    assert_eq!(moved(store, 3_020_000), [(100, 1)], "ended since");
    assert!(moved(store, 7_010_000).is_empty());
    assert!(
        store.sessions_ended_after(&bo.id, i64::MIN).unwrap().is_empty(),
        "Bo has none"
    );
    assert!(print(store, &bo.id).is_none(), "no session yet");

    // An athlete named only from the second rep on: the session is theirs.
    let mut late = session("g1", "m2", 1, 3_500_000, None, 3);
    for e in late.iter_mut().skip(2) {
        e.athlete = Some(bo.id.clone());
    }
    store.write(&late).unwrap();
    assert_eq!(of(store, Who::Athlete(bo.id.clone())).len(), 1);

    // A guest, claimed by Bo with all its reps.
    store.write(&session("g2", "m1", 7, 4_000_000, None, 5)).unwrap();
    // An id nobody has (removed meanwhile): a guest too.
    store
        .write(&session("g2", "m1", 30, 5_000_000, Some("a-gone"), 2))
        .unwrap();
    let guests = of(store, Who::Guests);
    assert_eq!(guests.len(), 2);
    assert!(guests.iter().all(|g| g.athlete.is_none()));
    let key = guests[0].key.clone();
    assert!(!store.claim(&key, "a-nobody").unwrap(), "nobody to claim it");
    assert!(store.claim(&key, &bo.id).unwrap());
    assert!(
        !store.claim(&key, &ana.id).unwrap(),
        "a claimed session is no guest's any more"
    );
    let bos = of(store, Who::Athlete(bo.id.clone()));
    assert_eq!(bos.len(), 2);
    assert_eq!(bos[1].reps.len(), 5, "the claimed session moved whole");
    assert_eq!(of(store, Who::Guests).len(), 1);

    // A rep whose session start never arrived opens a session.
    store
        .write(&[rep("g3", "m9", 50, 6_000_000, Some(&bo.id), (1, 1, true))])
        .unwrap();
    assert_eq!(of(store, Who::Athlete(bo.id.clone())).len(), 3);

    // Filters: since, gateway.
    let q = SessionQuery {
        who: Who::Everyone,
        since_ms: Some(3_000_000),
        gateway: None,
    };
    assert_eq!(store.sessions(&q).unwrap().len(), 6);
    let q = SessionQuery {
        who: Who::Everyone,
        since_ms: None,
        gateway: Some("g2".into()),
    };
    assert_eq!(store.sessions(&q).unwrap().len(), 2);

    // Removing Ana removes her sessions, reps and load changes; Bo stays.
    assert!(store.remove_athlete(&ana.id).unwrap());
    assert!(!store.remove_athlete(&ana.id).unwrap());
    assert!(store.athlete(&ana.id).unwrap().is_none());
    assert!(of(store, Who::Athlete(ana.id.clone())).is_empty());
    assert!(store.load_changes(&ana.id).unwrap().is_empty());
    assert_eq!(of(store, Who::Everyone).len(), 4, "Bo's 3 and the guest's");
    assert_eq!(of(store, Who::Athlete(bo.id.clone())).len(), 3);
}
