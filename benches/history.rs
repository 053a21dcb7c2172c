//! The athletes' history: `cargo bench --bench history`.
//!
//! 1. A year of history for 200 athletes (3 sessions a week, 3 sets of 10:
//!    about 940,000 reps) in a SQLite file: what the coach's pages compute,
//!    each measured many times, p50 / p99 / max, side by side with the bare
//!    read of the same rows (the store's `sessions`, no figures):
//!    - the roster (`/athletes`): every athlete's figures, with nothing new
//!      and while 16 athletes train, the latter beside what reading those
//!      16 years again would cost (the read and the figures apart);
//!    - one athlete (`/athletes/<id>`): a year of their sessions.
//!      Aim: p99 under 100 ms.
//! 2. The gateway's cost: two `flatback run`s side by side for the same
//!    time, each with 16 simulated mats at 200 Hz to a real Mosquitto on
//!    loopback, one with the history off (`database = ""`), one writing it
//!    to SQLite: CPU in per cent of one core, resident memory. Aim: under 1 %
//!    of a core added.
//!
//! Every loop is bounded in count and time.

#[allow(dead_code)]
#[path = "../tests/common/mosquitto.rs"]
mod mosquitto;
#[path = "common/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../tests/common/server.rs"]
mod server;

use process::{cpu_s, memory_mb, spawn};

use std::path::Path;
use std::time::{Duration, Instant};

use flatback::contract::event::RepEvent;
use flatback::history::figures::{self, Thresholds};
use flatback::history::model::{HistoryEvent, HistoryKind, SessionQuery};
use flatback::history::sqlite::SqliteStore;
use flatback::history::{HistoryStore, RepRecord, Who};

const ATHLETES: usize = 200;
const WEEKS: i64 = 52;
const DAY_MS: i64 = 86_400_000;
const RUNS: usize = 30;
const MATS: usize = 16;
const WARMUP: Duration = Duration::from_secs(8);
const MEASURE: Duration = Duration::from_secs(30);

/// A year of sessions for `athletes`, written as the writer would.
fn fill(store: &mut SqliteStore, year_start_ms: i64) -> Vec<String> {
    let mut ids = Vec::new();
    let mut seq = 0u64;
    for a in 0..ATHLETES {
        let id = store.add_athlete(&format!("Athlete {a:03}")).unwrap().id;
        let mut events = Vec::new();
        for week in 0..WEEKS {
            for day in [0, 2, 4] {
                let t0 = year_start_ms + (week * 7 + day) * DAY_MS + (a as i64 % 12) * 3_600_000;
                let ev = |seq: u64, t: i64, what| HistoryEvent {
                    gateway: "g1".into(),
                    mat: format!("m{}", a % 16),
                    seq,
                    time_ms: t,
                    athlete: Some(id.clone()),
                    what,
                };
                seq += 1;
                events.push(ev(seq, t0, HistoryKind::SessionStart));
                let mut t = t0;
                for set in 1..=3u32 {
                    for rep in 1..=10u32 {
                        seq += 1;
                        t += 6_000;
                        let arched = (seq % 7) == 0;
                        let r = RepEvent {
                            t_ms: 0,
                            set,
                            rep,
                            perfect: !arched,
                            arched,
                            rushed: false,
                            descent_ms: 2500 + (seq % 1500),
                            ascent_ms: Some(1500),
                            bounce: false,
                            depth: arched.then_some(0.6 + (seq % 30) as f64 / 100.0),
                        };
                        events.push(ev(seq, t, HistoryKind::Rep(RepRecord::from_event(seq, t, &r))));
                    }
                    t += 120_000;
                }
                seq += 1;
                events.push(ev(seq, t, HistoryKind::SessionEnd));
            }
        }
        store.write(&events).unwrap();
        ids.push(id);
    }
    ids
}

fn timed(mut f: impl FnMut()) -> Vec<f64> {
    let mut v: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn row(what: &str, v: &[f64]) {
    println!(
        "{what:<44} p50 {:>8.1} ms   p99 {:>8.1} ms   max {:>8.1} ms",
        pct(v, 0.5),
        pct(v, 0.99),
        v[v.len() - 1]
    );
}

fn pages(dir: &Path) {
    let db = dir.join("year.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let now = flatback::history::figures::week_start(1_793_577_600_000 + WEEKS * 7 * DAY_MS) + 3 * DAY_MS;
    let start = now - WEEKS * 7 * DAY_MS - 3 * DAY_MS;
    let filled = Instant::now();
    let ids = fill(&mut store, start);
    println!(
        "a year for {ATHLETES} athletes: {} reps written in {:.1} s ({} bytes)",
        ATHLETES as i64 * WEEKS * 3 * 30,
        filled.elapsed().as_secs_f64(),
        std::fs::metadata(&db).map_or(0, |m| m.len())
    );
    let t = Thresholds::default();
    let one = ids[ATHLETES / 2].clone();
    let read_one = timed(|| {
        let s = store.sessions(&SessionQuery::of(Who::Athlete(one.clone()))).unwrap();
        assert_eq!(s.len() as i64, WEEKS * 3);
    });
    let page_one = timed(|| {
        let a = store.athlete(&one).unwrap().unwrap();
        let s = store.sessions(&SessionQuery::of(Who::Athlete(one.clone()))).unwrap();
        let changes = store.load_changes(&one).unwrap();
        let f = figures::athlete(&s, &a.load, &changes, &t, now, 12);
        assert_eq!(f.sessions.len() as i64, WEEKS * 3);
    });
    println!("\none athlete, a year (/athletes/<id>)");
    row("  reference: the store's read alone", &read_one);
    row("  the page's figures (read + figures)", &page_one);
    // The roster page's figures, as it gets them: through the handle, which
    // computes again only the athletes whose history moved.
    let handle = flatback::history::Handle::new(&flatback::config::HistoryConfig {
        database: format!("sqlite:{}", db.display()),
        ..Default::default()
    })
    .unwrap();
    let cold = Instant::now();
    assert_eq!(handle.roster_figures(&t, now, 12).unwrap().len(), ATHLETES);
    let cold_ms = cold.elapsed().as_secs_f64() * 1000.0;
    let warm = timed(|| assert_eq!(handle.roster_figures(&t, now, 12).unwrap().len(), ATHLETES));
    // While 16 athletes train: each look follows a rep of each of them.
    let training: Vec<String> = ids.iter().take(16).cloned().collect();
    let mut seq = 100_000_000u64;
    for (k, id) in training.iter().enumerate() {
        seq += 1;
        store
            .write(&[HistoryEvent {
                gateway: "g2".into(),
                mat: format!("t{k}"),
                seq,
                time_ms: now,
                athlete: Some(id.clone()),
                what: HistoryKind::SessionStart,
            }])
            .unwrap();
    }
    let mut rep_no = 0;
    let live = timed(|| {
        rep_no += 1;
        let events: Vec<HistoryEvent> = training
            .iter()
            .enumerate()
            .map(|(k, id)| {
                seq += 1;
                let r = RepEvent {
                    t_ms: 0,
                    set: 1,
                    rep: rep_no,
                    perfect: true,
                    arched: false,
                    rushed: false,
                    descent_ms: 3200,
                    ascent_ms: Some(1500),
                    bounce: false,
                    depth: None,
                };
                HistoryEvent {
                    gateway: "g2".into(),
                    mat: format!("t{k}"),
                    seq,
                    time_ms: now,
                    athlete: Some(id.clone()),
                    what: HistoryKind::Rep(RepRecord::from_event(seq, now, &r)),
                }
            })
            .collect();
        store.write(&events).unwrap();
        assert_eq!(handle.roster_figures(&t, now, 12).unwrap().len(), ATHLETES);
    });
    // What the same looks would cost reading each training athlete's year
    // again, split into the store's read and the figures.
    let (mut read_ms, mut figures_ms) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (mut read, mut computed) = (0.0, 0.0);
        for id in &training {
            let t0 = Instant::now();
            let s = store.sessions(&SessionQuery::of(Who::Athlete(id.clone()))).unwrap();
            let changes = store.load_changes(id).unwrap();
            let t1 = Instant::now();
            let f = figures::athlete(&s, &Default::default(), &changes, &t, now, 12);
            assert_eq!(f.sessions.len() as i64, WEEKS * 3 + 1);
            read += (t1 - t0).as_secs_f64() * 1000.0;
            computed += t1.elapsed().as_secs_f64() * 1000.0;
        }
        read_ms.push(read);
        figures_ms.push(computed);
    }
    read_ms.sort_by(f64::total_cmp);
    figures_ms.sort_by(f64::total_cmp);
    println!("\nthe roster, {ATHLETES} athletes, a year each (/athletes)");
    println!("  reference: every athlete read and computed  {cold_ms:>8.1} ms (the first look)");
    row("  nothing new since the last look", &warm);
    row("  16 athletes training (a rep each between looks)", &live);
    row("  reference: their 16 years read again", &read_ms);
    row("  reference: their 16 years' figures", &figures_ms);
}

fn config(dir: &Path, url: &str, name: &str, database: &str) -> std::path::PathBuf {
    let mut text = format!(
        "[mqtt]\nurl = \"{url}\"\ngateway_id = \"{name}\"\nbase_topic = \"{name}\"\ndiscovery = false\n\
         outbox_dir = \"{}\"\n\n[log]\nlevel = \"warn\"\n\n[web]\nlisten = \"\"\n\n[history]\ndatabase = \"{database}\"\n",
        dir.join(format!("outbox-{name}")).display()
    );
    for k in 0..MATS {
        text.push_str(&format!(
            "\n[[mats]]\nid = \"mat{}\"\nsource = \"sim\"\nkind = \"mixed\"\nseed = {}\nrate_hz = 200.0\n",
            k + 1,
            3 + k
        ));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn gateway_cost(dir: &Path) {
    let broker = mosquitto::Broker::start();
    let db = dir.join("gateway.db");
    let mut off = spawn(&config(dir, &broker.url(), "off", ""));
    let mut on = spawn(&config(dir, &broker.url(), "on", &format!("sqlite:{}", db.display())));
    std::thread::sleep(WARMUP);
    let (off0, on0) = (cpu_s(off.id()), cpu_s(on.id()));
    let t0 = Instant::now();
    std::thread::sleep(MEASURE);
    let secs = t0.elapsed().as_secs_f64();
    let (off1, on1) = (cpu_s(off.id()), cpu_s(on.id()));
    let (off_mb, on_mb) = (memory_mb(off.id()).0, memory_mb(on.id()).0);
    let _ = (off.kill(), on.kill());
    let _ = (off.wait(), on.wait());
    let reps = SqliteStore::open(&db)
        .unwrap()
        .sessions(&SessionQuery::of(Who::Everyone))
        .unwrap()
        .iter()
        .map(|s| s.reps.len())
        .sum::<usize>();
    let (off_pct, on_pct) = (100.0 * (off1 - off0) / secs, 100.0 * (on1 - on0) / secs);
    println!("\nthe gateway, {MATS} simulated mats at 200 Hz, {secs:.0} s side by side");
    println!("  history off            CPU {off_pct:>6.2} % of a core   RSS {off_mb:>6.1} MB");
    println!("  history on (SQLite)    CPU {on_pct:>6.2} % of a core   RSS {on_mb:>6.1} MB   ({reps} reps written)");
    println!(
        "  added                  CPU {:>+6.2} % of a core   RSS {:>+6.1} MB",
        on_pct - off_pct,
        on_mb - off_mb
    );
}

fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    if only.as_deref() != Some("gateway") {
        pages(dir.path());
    }
    if only.as_deref() != Some("pages") {
        gateway_cost(dir.path());
    }
}
