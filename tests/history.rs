//! The athletes' history on a SQLite file: the store's contract, the
//! command line (`athlete add|list|remove`, `history export`), and the daemon
//! end to end against a real Mosquitto: an athlete named by an MQTT command,
//! the events that carry the id, the grace after getting up, and the reps in
//! the history across a restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use flatback::history::model::SessionQuery;
use flatback::history::sqlite::SqliteStore;
use flatback::history::{HistoryStore, Who};

use common::mosquitto::Broker;
use common::mqtt::{write_config, Daemon, Subscriber};
use common::{cli, json_lines};

const T: Duration = Duration::from_secs(60);

#[test]
fn the_sqlite_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("h.db")).unwrap();
    common::history::store_contract(&mut store);
    // The schema is versioned: opening again migrates nothing and keeps all.
    drop(store);
    let mut again = SqliteStore::open(&dir.path().join("h.db")).unwrap();
    assert_eq!(again.athletes().unwrap().len(), 1, "Bo");
}

#[test]
fn the_roster_on_the_command_line_and_the_csv_export() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let cfg = dir.path().join("f.toml");
    std::fs::write(&cfg, format!("[history]\ndatabase = \"sqlite:{}\"\n", db.display())).unwrap();
    let ana = &json_lines(&cli(&["athlete", "add", "Ana Lee"], &cfg))[0];
    assert_eq!(ana["name"], "Ana Lee");
    let id = ana["id"].as_str().unwrap().to_string();
    let link = ana["link"].as_str().unwrap();
    assert!(link.starts_with("/me/") && link.len() == 4 + 32, "{link}");
    cli(&["athlete", "add", "Bo"], &cfg);
    let list = json_lines(&cli(&["athlete", "list"], &cfg));
    assert_eq!(
        list.iter().map(|a| a["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["Ana Lee", "Bo"]
    );

    // Two sessions of Ana, one a week later.
    let mut store = SqliteStore::open(&db).unwrap();
    store
        .write(&common::history::session(
            "g1",
            "m1",
            1,
            1_793_577_600_000,
            Some(&id),
            4,
        ))
        .unwrap();
    store
        .write(&common::history::session(
            "g1",
            "m1",
            10,
            1_794_182_400_000,
            Some(&id),
            3,
        ))
        .unwrap();
    let csv = cli(&["history", "export", "--athlete", &id], &cfg);
    let lines: Vec<&str> = csv.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    for column in [
        "athlete",
        "gateway",
        "mat",
        "session_start",
        "set",
        "rep",
        "perfect",
        "arched",
        "rushed",
        "descent_ms",
        "depth",
        "load",
    ] {
        assert!(header.contains(&column), "{column} in {header:?}");
    }
    assert_eq!(lines.len(), 1 + 7, "a row per rep");
    assert!(
        lines[1].starts_with(&format!("{id},Ana Lee,g1,m1,2026-11-02T00:00:00.000Z,bodyweight,")),
        "{}",
        lines[1]
    );
    let since = cli(&["history", "export", "--since", "2026-11-05"], &cfg);
    assert_eq!(since.lines().count(), 1 + 3, "the second week only");
    let bad = common::flatback()
        .args(["history", "export", "--since", "last week", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since"));

    cli(&["athlete", "remove", &id], &cfg);
    let csv = cli(&["history", "export"], &cfg);
    assert_eq!(csv.lines().count(), 1, "nothing of Ana left: {csv}");
    assert!(!csv.contains("Ana"));
    let gone = common::flatback()
        .args(["athlete", "remove", &id, "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains(&id));
}

/// Reps of `athlete` in the history file, by seq (read beside the daemon).
fn reps_in_history(db: &Path, athlete: &str) -> Vec<u64> {
    let mut store = SqliteStore::open(db).unwrap();
    let sessions = store.sessions(&SessionQuery::of(Who::Athlete(athlete.into()))).unwrap();
    let mut seqs: Vec<u64> = sessions.iter().flat_map(|s| s.reps.iter().map(|r| r.seq)).collect();
    seqs.sort_unstable();
    seqs
}

fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + T;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_mqtt_command_names_the_athlete_events_carry_the_id_and_the_history_keeps_the_reps_across_a_restart() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &broker.url(), "gwh", "[athletes]\ngrace_s = 1.0\n");
    let db = dir.path().join("history-gwh.db");
    let ana = json_lines(&cli(&["athlete", "add", "Ana"], &cfg))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sub = Subscriber::connect(broker.port(), "sub-h", false, &["flatback/gwh/#"]);
    let args = ["--mat", "mat1", "--kind", "three_sets", "--seed", "3", "--speed", "10"];
    let mut d = Daemon::spawn(&cfg, &args);
    sub.wait_msg("flatback/gwh/mat1/state", 0, T, |m| m.json()["occupied"] == true);
    sub.publish(
        "flatback/gwh/mat1/command",
        format!(r#"{{"command":"athlete","athlete":"{ana}"}}"#).as_bytes(),
        false,
    );
    let named = sub.wait_msg("flatback/gwh/mat1/state", 0, T, |m| m.json()["athlete"] == ana.as_str());
    // Reps after the state said so carry the id; never the name.
    let from = sub.messages().len();
    let reps_of_ana = |msgs: &[common::mqtt::Msg]| -> Vec<u64> {
        msgs[from..]
            .iter()
            .filter(|m| m.topic == "flatback/gwh/mat1/event" && m.json()["type"] == "rep")
            .filter(|m| m.json()["athlete"] == ana.as_str())
            .map(|m| m.json()["seq"].as_u64().unwrap())
            .collect()
    };
    sub.wait("3 reps of Ana", T, |msgs| (reps_of_ana(msgs).len() >= 3).then_some(()));
    assert!(
        sub.messages()[named..].iter().all(|m| !m.text().contains("\"Ana\"")),
        "no name on the broker"
    );
    // Getting up, and nobody within the grace: the athlete is cleared.
    let cleared = sub.wait_msg("flatback/gwh/mat1/state", named, Duration::from_secs(120), |m| {
        m.json()["athlete"].is_null()
    });
    assert_eq!(
        sub.messages()[cleared].json()["occupied"],
        false,
        "cleared on an empty mat"
    );
    let published = reps_of_ana(&sub.messages());
    // Every rep of Ana on the broker is in the history, once.
    let kept = wait_until("Ana's reps in the history", || {
        let kept = reps_in_history(&db, &ana);
        published.iter().all(|s| kept.contains(s)).then_some(kept)
    });
    let mut unique = kept.clone();
    unique.dedup();
    assert_eq!(unique, kept, "no rep twice");
    // After the grace, events say nobody: the next person is a guest.
    let after = sub.wait_msg("flatback/gwh/mat1/state", cleared, T, |m| m.json()["occupied"] == false);
    assert!(sub.messages()[after..]
        .iter()
        .all(|m| m.json()["athlete"].is_null() || !m.topic.ends_with("/event")));

    // A restart keeps every rep (and doubles none).
    d.term();
    d.wait_exit(T);
    let before = reps_in_history(&db, &ana);
    assert!(before.len() >= published.len());
    let mut d = Daemon::spawn(&cfg, &args);
    sub.wait_msg("flatback/gwh/mat1/state", cleared, T, |m| m.json()["occupied"] == true);
    assert_eq!(reps_in_history(&db, &ana), before);
    d.term();
    d.wait_exit(T);
}
