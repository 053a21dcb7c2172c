//! MQTT acceptance tests (issue 5) against a real Mosquitto started on free
//! loopback ports, with `flatback publish` (simulated mats) as a child
//! process: discovery, state and events with their fields; the Last Will;
//! Home Assistant's birth; purge; commands; a 30 s broker outage; SIGKILL
//! while the broker is down; TLS with a CA, a password file and a client
//! certificate.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::mosquitto::Broker;
use common::mqtt::{write_config, Daemon, Msg, Subscriber};
use flatback::contract::event::Event;
use flatback::detector::{Detector, DetectorConfig};
use flatback::outbox::journal as outbox;
use flatback::sim::{Kind, Scenario, Simulator};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// `flatback athlete add NAME`: the new athlete's id.
fn add_athlete(config: &Path, name: &str) -> String {
    let line: Value = serde_json::from_str(common::cli(&["athlete", "add", name], config).trim()).unwrap();
    line["id"].as_str().unwrap().to_string()
}

/// The events the detector emits for a simulated mat, as `flatback
/// publish --kind KIND --seed SEED` runs it.
fn expected(kind: Kind, seed: u64) -> Vec<Event> {
    let mut sim = Simulator::new(&Scenario::new(kind, seed));
    let mut det = Detector::new(Grid4, DetectorConfig::default()).unwrap();
    flatback::tools::replay::collect(&mut sim, &mut det).unwrap()
}

#[allow(non_upper_case_globals)]
const Grid4: flatback::contract::frame::Grid = flatback::contract::frame::Grid::REFERENCE;

/// The events on `topic`, first arrivals only: checks that seqs come in
/// order from 1 without a gap (a repeated seq is a QoS 1 duplicate and is
/// dropped, as a consumer would). Returns (events, duplicates).
fn in_order(msgs: &[Msg], topic: &str) -> (Vec<Event>, usize) {
    let mut last = 0;
    let mut out = Vec::new();
    let mut dups = 0;
    for m in msgs.iter().filter(|m| m.topic == topic) {
        assert!(!m.retain, "events are never retained: {}", m.text());
        let v = m.json();
        let seq = v["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("event without seq: {}", m.text()));
        if seq <= last {
            dups += 1;
            continue;
        }
        assert_eq!(
            seq,
            last + 1,
            "seq jumps from {last} to {seq}: an event is missing or out of order"
        );
        last = seq;
        out.push(serde_json::from_value(v).expect("an event of the contract"));
    }
    (out, dups)
}

fn distinct_seqs(msgs: &[Msg], topic: &str) -> usize {
    let mut seqs: Vec<u64> = msgs
        .iter()
        .filter(|m| m.topic == topic)
        .filter_map(|m| m.json()["seq"].as_u64())
        .collect();
    seqs.sort();
    seqs.dedup();
    seqs.len()
}

fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 24 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && s.ends_with('Z')
}

#[test]
fn discovery_state_and_events_arrive_ha_birth_resends_purge_clears_and_a_kill_means_offline() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &broker.url(), "gwa", "");
    let sub = Subscriber::connect(broker.port(), "sub-a", false, &["flatback/#", "homeassistant/#"]);
    let mut d = Daemon::spawn(
        &cfg,
        &[
            "--mat",
            "mat1",
            "--mat",
            "mat2",
            "--kind",
            "three_sets",
            "--seed",
            "3",
            "--speed",
            "20",
        ],
    );

    sub.wait_msg("flatback/gwa/status", 0, T, |m| m.text() == "online");
    // With a history (on in these tests), each mat also has its athlete select.
    let configs: BTreeMap<String, Value> = sub.wait("36 discovery configs", T, |msgs| {
        let c: BTreeMap<String, Value> = msgs
            .iter()
            .filter(|m| m.topic.starts_with("homeassistant/") && m.topic.ends_with("/config"))
            .map(|m| (m.topic.clone(), m.json()))
            .collect();
        (c.len() >= 36).then_some(c)
    });
    assert_eq!(configs.len(), 36, "2 gateway entities and 17 per mat");
    let mut kinds = BTreeMap::new();
    for (topic, p) in &configs {
        let component = topic.split('/').nth(1).unwrap().to_string();
        *kinds.entry(component.clone()).or_insert(0) += 1;
        assert!(
            topic.starts_with("homeassistant/") && topic.contains("/flatback_gwa/"),
            "{topic}"
        );
        let uid = p["unique_id"].as_str().unwrap();
        assert!(uid.starts_with("flatback_gwa_"), "{uid}");
        assert_eq!(p["origin"]["name"], "flatback", "{topic}");
        assert_eq!(p["availability_mode"], "all", "{topic}");
        assert_eq!(p["availability"][0]["topic"], "flatback/gwa/status");
        let device = &p["device"];
        if let Some(mat) = ["mat1", "mat2"]
            .into_iter()
            .find(|m| uid.starts_with(&format!("flatback_gwa_{m}_")))
        {
            assert_eq!(device["via_device"], "flatback_gwa", "{topic}");
            assert_eq!(device["identifiers"][0], format!("flatback_gwa_{mat}"));
            assert_eq!(p["availability"][1]["topic"], format!("flatback/gwa/{mat}/status"));
        } else {
            assert_eq!(device["identifiers"][0], "flatback_gwa");
            assert_eq!(p["entity_category"], "diagnostic");
        }
        match component.as_str() {
            "binary_sensor" => assert!(["problem", "occupancy"].contains(&p["device_class"].as_str().unwrap())),
            "event" => {
                assert_eq!(p["event_types"], serde_json::json!(["rep", "arch", "set"]));
                assert!(p["state_topic"].as_str().unwrap().ends_with("/event"));
            }
            "button" => {
                assert_eq!(p["retain"], false);
                assert!(p["command_topic"].as_str().unwrap().ends_with("/command"));
            }
            "sensor" => assert!(p["state_topic"].as_str().unwrap().ends_with("/state")),
            "select" => {
                assert_eq!(p["options"], serde_json::json!(["Guest"]), "an empty roster");
                assert!(p["command_topic"].as_str().unwrap().ends_with("/command"));
                assert!(p["state_topic"].as_str().unwrap().ends_with("/state"));
            }
            other => panic!("unexpected component {other}"),
        }
    }
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("binary_sensor".to_string(), 4),
            ("button".to_string(), 6),
            ("event".to_string(), 2),
            ("select".to_string(), 2),
            ("sensor".to_string(), 22)
        ])
    );
    let arch = &configs["homeassistant/binary_sensor/flatback_gwa/mat1_arching/config"];
    assert_eq!(arch["device_class"], "problem");
    let reps = &configs["homeassistant/sensor/flatback_gwa/mat1_reps/config"];
    assert_eq!(reps["state_class"], "total_increasing");

    // Events: per mat, seq from 1 without gaps, the contract's fields plus
    // mat, seq and time, exactly what the detector emitted.
    for (mat, seed) in [("mat1", 3), ("mat2", 4)] {
        let topic = format!("flatback/gwa/{mat}/event");
        sub.wait(&format!("a rep and an arch on {topic}"), T, |msgs| {
            let types: Vec<String> = msgs
                .iter()
                .filter(|m| m.topic == topic)
                .map(|m| m.json()["type"].as_str().unwrap_or("").to_string())
                .collect();
            (types.iter().any(|t| t == "rep") && types.iter().any(|t| t == "arch")).then_some(())
        });
        let msgs = sub.messages();
        for m in msgs.iter().filter(|m| m.topic == topic) {
            let v = m.json();
            assert_eq!(v["mat"], mat);
            assert!(is_rfc3339_utc(v["time"].as_str().unwrap()), "{}", m.text());
            assert!(v["t_ms"].is_u64() && v["type"].is_string());
            if v["type"] == "rep" {
                for k in ["set", "rep", "perfect", "arched", "rushed", "descent_ms"] {
                    assert!(v.get(k).is_some(), "rep without {k}: {}", m.text());
                }
            }
        }
        let (events, _) = in_order(&msgs, &topic);
        let want = expected(Kind::ThreeSets, seed);
        assert!(events.len() >= 3);
        assert_eq!(
            events[..],
            want[..events.len()],
            "{mat}: the events the detector emitted"
        );
    }

    // State: retained, with every field, following the reps.
    let state_topic = "flatback/gwa/mat1/state";
    let i = sub.wait_msg(state_topic, 0, T, |m| m.json()["reps"].as_u64() >= Some(1));
    let state = sub.messages()[i].json();
    for k in [
        "occupied",
        "contact",
        "arching",
        "set",
        "reps",
        "perfect_reps",
        "last_descent_s",
        "sample_rate_hz",
        "overruns",
        "queued_events",
        "dropped_events",
        "taxel_faults",
        "time",
    ] {
        assert!(state.get(k).is_some(), "state without {k}: {state}");
    }
    assert_eq!(
        state["sample_rate_hz"].as_f64().map(|r| (r - 200.0).abs() < 20.0),
        Some(true)
    );
    assert!(sub.on("flatback/gwa/mat1/status").iter().any(|m| m.text() == "online"));
    assert!(sub.on("flatback/gwa/mat2/status").iter().any(|m| m.text() == "online"));
    // Retained for a newcomer.
    let late = Subscriber::connect(broker.port(), "sub-late", false, &[state_topic, "flatback/gwa/status"]);
    assert!(late
        .on(state_topic)
        .iter()
        .any(|m| m.retain && m.json()["reps"].is_u64()));
    assert!(late
        .on("flatback/gwa/status")
        .iter()
        .any(|m| m.retain && m.text() == "online"));

    // Home Assistant's birth: discovery is sent again.
    let before = sub.messages().len();
    sub.publish("homeassistant/status", b"online", false);
    sub.wait("discovery sent again after homeassistant/status online", T, |msgs| {
        let again = msgs[before..]
            .iter()
            .filter(|m| m.topic.starts_with("homeassistant/") && m.topic.ends_with("/config"))
            .count();
        (again >= 36).then_some(())
    });

    // SIGKILL: the broker publishes the Last Will.
    let before = sub.messages().len();
    d.kill9();
    sub.wait_msg("flatback/gwa/status", before, T, |m| m.text() == "offline");

    // Purge clears every retained config of this gateway, and its athletes'
    // figures (personal data), but no other gateway's.
    sub.publish("flatback/gwa/athletes/a-00000001", br#"{"best_set":12}"#, true);
    sub.publish("flatback/gwz/athletes/a-00000002", br#"{"best_set":9}"#, true);
    sub.barrier(T);
    let stdout = common::mqtt::purge(&cfg, &["mat1"]);
    assert!(
        stdout.contains("cleared 36 discovery configs and 1 athletes' figures"),
        "found the mat2 configs and the athlete too: {stdout}"
    );
    let figures = Subscriber::connect(broker.port(), "sub-figures", false, &["flatback/+/athletes/+"]);
    figures.barrier(T);
    let kept: Vec<String> = figures
        .messages()
        .into_iter()
        .filter(|m| m.topic.starts_with("flatback/") && !m.payload.is_empty())
        .map(|m| m.topic)
        .collect();
    assert_eq!(
        kept,
        ["flatback/gwz/athletes/a-00000002"],
        "only the other gateway's figures kept"
    );
    let after = Subscriber::connect(broker.port(), "sub-after-purge", false, &["homeassistant/#"]);
    let left: Vec<String> = after
        .messages()
        .into_iter()
        .filter(|m| m.topic.ends_with("/config") && !m.payload.is_empty())
        .map(|m| m.topic)
        .collect();
    assert!(left.is_empty(), "retained configs left after purge: {left:?}");
}

#[test]
fn commands_reset_counters_start_a_set_and_bad_ones_are_logged_and_ignored() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &broker.url(), "gwc", "");
    let sub = Subscriber::connect(broker.port(), "sub-c", false, &["flatback/#"]);
    let state = "flatback/gwc/m1/state";
    let events = "flatback/gwc/m1/event";
    let cmd = "flatback/gwc/m1/command";
    // A retained command would run again on every reconnect: refused when
    // the subscription brings it back.
    sub.publish(cmd, b"reset_counters", true);
    sub.barrier(T);
    let mut d = Daemon::spawn(
        &cfg,
        &["--mat", "m1", "--kind", "three_sets", "--seed", "3", "--speed", "5"],
    );
    d.wait_log(&["command ignored", cmd, "retained command refused"], T);
    sub.publish(cmd, b"", true); // clears the retained message
    d.wait_log(&["command ignored", cmd, "empty payload"], T);
    sub.wait_msg(state, 0, T, |m| m.json()["reps"].as_u64() >= Some(2));

    // Malformed, retained or misdirected commands: logged with the topic,
    // nothing changes, the daemon runs on.
    let first_bad = sub.messages().len();
    sub.publish(cmd, b"explode", false);
    d.wait_log(&["command ignored", cmd, "unknown command \"explode\""], T);
    sub.publish(cmd, b"{\"command\": 3}", false);
    d.wait_log(&["command ignored", cmd, "JSON payload"], T);
    sub.publish(cmd, &[0xff, 0xfe, 0x00], false);
    d.wait_log(&["command ignored", cmd, "not UTF-8"], T);
    sub.publish("flatback/gwc/nomat/command", b"reset_counters", false);
    d.wait_log(&["command ignored", "flatback/gwc/nomat/command", "no mat"], T);
    assert!(d.is_running());
    let reps_before = sub.messages()[..first_bad]
        .iter()
        .rev()
        .find(|m| m.topic == state)
        .map(|m| m.json()["reps"].as_u64().unwrap())
        .unwrap();
    // The states published after the bad commands: no reset.
    let after_bad = sub.messages().len();
    sub.wait_msg(state, after_bad, T, |_| true);
    let reps: Vec<u64> = sub.messages()[first_bad..]
        .iter()
        .filter(|m| m.topic == state)
        .map(|m| m.json()["reps"].as_u64().unwrap())
        .collect();
    assert!(
        !reps.is_empty() && reps.windows(2).all(|w| w[0] <= w[1]) && reps[0] >= reps_before && reps_before >= 2,
        "no reset by a bad command: {reps_before} then {reps:?}"
    );

    // reset_counters: the next state has zero reps.
    let from = sub.messages().len();
    sub.publish(cmd, b"reset_counters", false);
    sub.wait_msg(state, from, T, |m| {
        m.json()["reps"] == 0 && m.json()["perfect_reps"] == 0
    });
    d.wait_log(&["command", "reset_counters"], T);

    // new_set: the set in progress is published as over now, and the next
    // rep counts in the next set, within the same session.
    let i = sub.wait_msg(state, 0, T, |m| m.json()["set"].as_u64() >= Some(1));
    let set_now = sub.messages()[i].json()["set"].as_u64().unwrap();
    let from = sub.messages().len();
    sub.publish(cmd, br#"{"command":"new_set"}"#, false);
    let i = sub.wait_msg(events, from, T, |m| m.json()["type"] == "set");
    let closed = sub.messages()[i].json();
    assert_eq!(closed["set"].as_u64(), Some(set_now), "{closed}");
    assert!(
        closed["t_ms"].as_u64().unwrap() < 100_000,
        "closed by the command, not by a rest: {closed}"
    );
    let j = sub.wait_msg(events, i, Duration::from_secs(60), |m| m.json()["type"] == "rep");
    assert_eq!(sub.messages()[j].json()["set"].as_u64(), Some(set_now + 1));
    assert!(
        !sub.messages()[from..j]
            .iter()
            .any(|m| m.topic == events && m.json()["type"] == "session"),
        "the session goes on across the restart"
    );
    let (_, _) = in_order(&sub.messages(), events);

    // SIGTERM: a clean exit, offline published.
    let before = sub.messages().len();
    d.term();
    assert!(d.wait_exit(T).success(), "{}", d.stderr());
    sub.wait_msg("flatback/gwc/status", before, T, |m| m.text() == "offline");
    sub.wait_msg("flatback/gwc/m1/status", before, T, |m| m.text() == "offline");
}

/// Waits until the outbox in `dir` holds at least `n` events.
fn wait_outbox(dir: &Path, n: usize) -> Vec<outbox::OutboxRecord> {
    let until = Instant::now() + T;
    loop {
        let recs = outbox::inspect(dir).unwrap_or_default();
        if recs.len() >= n {
            return recs;
        }
        assert!(
            Instant::now() < until,
            "the outbox holds {} events, not {n}",
            recs.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn broker_down_30_s_in_the_middle_of_a_set_every_event_arrives_in_order() {
    let mut broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &broker.url(), "gwo", "");
    let topic = "flatback/gwo/m1/event";
    let sub = Subscriber::connect(broker.port(), "sub-outage", true, &[topic]);
    let want = expected(Kind::ThreeSets, 3);
    let mut d = Daemon::spawn(
        &cfg,
        &[
            "--mat",
            "m1",
            "--kind",
            "three_sets",
            "--seed",
            "3",
            "--speed",
            "6",
            "--exit-when-done",
        ],
    );
    // The first rep: in the middle of the first set.
    sub.wait_msg(topic, 0, T, |m| m.json()["type"] == "rep");
    broker.stop();
    let down = Instant::now();
    // The detector goes on; its events wait in the outbox.
    let buffered = wait_outbox(&dir.path().join("outbox-gwo"), 3);
    assert!(buffered.iter().all(|r| r.mat == "m1"));
    // The outage the issue asks for: 30 s.
    std::thread::sleep(Duration::from_secs(30).saturating_sub(down.elapsed()));
    let during = outbox::inspect(&dir.path().join("outbox-gwo")).unwrap().len();
    broker.restart();
    sub.wait(
        &format!("all {} events", want.len()),
        Duration::from_secs(120),
        |msgs| (distinct_seqs(msgs, topic) >= want.len()).then_some(()),
    );
    let (events, dups) = in_order(&sub.messages(), topic);
    assert_eq!(events, want, "every event, in order, as the detector emitted them");
    assert!(d.wait_exit(T).success(), "{}", d.stderr());
    assert!(outbox::inspect(&dir.path().join("outbox-gwo")).unwrap().is_empty());
    eprintln!(
        "outage: {} events, {during} waited in the outbox during the 30 s outage, {dups} duplicates",
        events.len()
    );
    assert!(
        during >= 10,
        "a real part of the session happened during the outage ({during} events)"
    );
}

#[test]
fn killed_while_the_broker_is_down_the_buffered_events_arrive_after_a_restart() {
    let mut broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &broker.url(), "gwk", "");
    let outbox_dir = dir.path().join("outbox-gwk");
    let topic = "flatback/gwk/m1/event";
    let sub = Subscriber::connect(broker.port(), "sub-kill", true, &[topic]);
    let sim = ["--mat", "m1", "--kind", "three_sets", "--seed", "3", "--speed", "20"];
    let mut d = Daemon::spawn(&cfg, &sim);
    sub.wait_msg(topic, 0, T, |m| m.json()["seq"] == 1);
    broker.stop();
    let buffered = wait_outbox(&outbox_dir, 3);
    d.kill9();
    // What the killed process left: at least what was seen before the kill.
    let left = outbox::inspect(&outbox_dir).unwrap();
    assert!(left.len() >= buffered.len());
    let last_seq = left.last().unwrap().seq;
    broker.restart();
    // A new run with a source that has no events: it delivers the old ones.
    let mut args = sim.to_vec();
    args.extend(["--seconds", "1", "--exit-when-done"]);
    let mut d2 = Daemon::spawn(&cfg, &args);
    d2.wait_log(&["events from a previous run"], T);
    assert!(d2.wait_exit(T).success(), "{}", d2.stderr());
    sub.wait("the buffered events", T, |msgs| {
        (distinct_seqs(msgs, topic) as u64 >= last_seq).then_some(())
    });
    let (events, _) = in_order(&sub.messages(), topic);
    assert_eq!(events.len() as u64, last_seq);
    let want = expected(Kind::ThreeSets, 3);
    assert_eq!(events[..], want[..events.len()]);
    assert!(outbox::inspect(&outbox_dir).unwrap().is_empty());
}

mod tls {
    use super::*;
    use crate::common::tls::Ca;
    use rcgen::ExtendedKeyUsagePurpose;

    #[test]
    fn tls_with_a_ca_and_a_password_file_connects_a_wrong_ca_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        let good = Ca::new("flatback test CA");
        let wrong = Ca::new("some other CA");
        let (server_pem, server_key) = good.leaf("127.0.0.1", &[ExtendedKeyUsagePurpose::ServerAuth]);
        let (client_pem, client_key) = good.leaf("coach", &[ExtendedKeyUsagePurpose::ClientAuth]);
        std::fs::write(p("ca.pem"), good.cert.pem()).unwrap();
        std::fs::write(p("wrong-ca.pem"), wrong.cert.pem()).unwrap();
        std::fs::write(p("server.pem"), server_pem).unwrap();
        std::fs::write(p("server.key"), server_key).unwrap();
        std::fs::write(p("client.pem"), client_pem).unwrap();
        std::fs::write(p("client.key"), client_key).unwrap();
        let password = "Corr3ct-horse";
        std::fs::write(p("password"), format!("{password}\n")).unwrap();
        let st = std::process::Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(p("passwd"))
            .args(["coach", password])
            .status()
            .expect("mosquitto_passwd (package mosquitto; run tests/setup.sh)");
        assert!(st.success());
        let d = dir.path().to_path_buf();
        let broker = Broker::start_with(2, move |ports, _| {
            let tls = format!(
                "cafile {}\ncertfile {}\nkeyfile {}\nallow_anonymous false\npassword_file {}\n",
                d.join("ca.pem").display(),
                d.join("server.pem").display(),
                d.join("server.key").display(),
                d.join("passwd").display()
            );
            format!(
                "listener {} 127.0.0.1\n{tls}listener {} 127.0.0.1\n{tls}require_certificate true\n",
                ports[1], ports[2]
            )
        });
        let sub = Subscriber::connect(broker.port(), "sub-tls", false, &["flatback/+/status"]);
        let tls_url = format!("mqtts://127.0.0.1:{}", broker.ports[1]);
        let mtls_url = format!("mqtts://127.0.0.1:{}", broker.ports[2]);
        let sim = ["--mat", "m1", "--kind", "still", "--speed", "1"];
        let ca_line = format!("ca_file = \"{}\"\n", p("ca.pem").display());

        // CA + user + password file: connects; the password is never logged.
        let cfg = write_config(
            dir.path(),
            &tls_url,
            "tls1",
            &format!(
                "username = \"coach\"\npassword_file = \"{}\"\n{ca_line}",
                p("password").display()
            ),
        );
        let mut d1 = Daemon::spawn(&cfg, &sim);
        sub.wait_msg("flatback/tls1/status", 0, T, |m| m.text() == "online");
        d1.wait_log(&["connected", &tls_url], T);
        d1.term();
        assert!(d1.wait_exit(T).success());
        assert!(!d1.stderr().contains(password), "the password appears in the log");

        // A client certificate (required by this listener), the password
        // from the environment.
        let cfg = write_config(
            dir.path(),
            &mtls_url,
            "tls2",
            &format!(
                "username = \"coach\"\npassword_env = \"FLATBACK_TEST_MQTT_PW\"\n{ca_line}\
                 client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
                p("client.pem").display(),
                p("client.key").display()
            ),
        );
        let mut d2 = Daemon::spawn_env(&cfg, &sim, &[("FLATBACK_TEST_MQTT_PW", password)]);
        sub.wait_msg("flatback/tls2/status", 0, T, |m| m.text() == "online");
        d2.term();
        assert!(d2.wait_exit(T).success());
        assert!(!d2.stderr().contains(password));

        // The wrong CA: refused, and the log says why.
        let cfg = write_config(
            dir.path(),
            &tls_url,
            "tls3",
            &format!(
                "username = \"coach\"\npassword_file = \"{}\"\nca_file = \"{}\"\n",
                p("password").display(),
                p("wrong-ca.pem").display()
            ),
        );
        let mut d3 = Daemon::spawn(&cfg, &sim);
        let line = d3.wait_log(&["TLS handshake with", "failed"], T);
        assert!(
            line.contains("not signed by the CA in mqtt.ca_file") && line.contains("wrong-ca.pem"),
            "{line}"
        );
        assert!(d3.is_running(), "a refused connection is retried, not fatal");

        // A wrong password: refused by the broker, said so.
        std::fs::write(p("bad-password"), "nope\n").unwrap();
        let cfg = write_config(
            dir.path(),
            &tls_url,
            "tls4",
            &format!(
                "username = \"coach\"\npassword_file = \"{}\"\n{ca_line}",
                p("bad-password").display()
            ),
        );
        let mut d4 = Daemon::spawn(&cfg, &sim);
        d4.wait_log(&["refused the connection", "password"], T);

        // Plain mqtt:// to the port that speaks TLS: the log says so.
        let plain_url = format!("mqtt://127.0.0.1:{}", broker.ports[1]);
        let cfg = write_config(dir.path(), &plain_url, "tls5", "");
        let mut d5 = Daemon::spawn(&cfg, &sim);
        let line = d5.wait_log(&["this port speaks TLS", "use mqtts://"], T);
        assert!(line.contains(&tls_url), "the URL to use: {line}");
        sub.barrier(T);
        assert!(sub.on("flatback/tls3/status").is_empty() && sub.on("flatback/tls4/status").is_empty());
    }
}

#[test]
fn the_athlete_select_offers_the_roster_a_chosen_name_goes_on_as_the_id_and_athletes_are_devices() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &broker.url(), "gws", "[athletes]\nhome_assistant = true\n");
    let ana = add_athlete(&cfg, "Ana Lee");
    let bo = add_athlete(&cfg, "Bo");
    // A session of Ana's a minute ago, on another mat: 6 reps, 5 perfect,
    // the 4th arched at 75 % of the way down.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut store = flatback::history::sqlite::SqliteStore::open(&dir.path().join("history-gws.db")).unwrap();
    flatback::history::HistoryStore::write(
        &mut store,
        &common::history::session("gws", "mat9", 1, now_ms - 60_000, Some(&ana), 6),
    )
    .unwrap();
    drop(store);
    let sub = Subscriber::connect(broker.port(), "sub-s", false, &["flatback/#", "homeassistant/#"]);
    let mut d = Daemon::spawn(
        &cfg,
        &["--mat", "mat1", "--kind", "three_sets", "--seed", "3", "--speed", "10"],
    );
    let select_topic = "homeassistant/select/flatback_gws/mat1_athlete/config";
    let select = sub.wait_msg(select_topic, 0, T, |m| !m.payload.is_empty());
    let config = sub.messages()[select].json();
    assert_eq!(config["options"], serde_json::json!(["Guest", "Ana Lee", "Bo"]));

    // Ana's device: every sensor with its state_class, her figures retained.
    let ana_state = format!("flatback/gws/athletes/{ana}");
    for (key, class) in [
        ("last_session_perfect", "measurement"),
        ("best_set", "measurement"),
        ("sessions_this_week", "total_increasing"),
        ("floor_pct", "measurement"),
    ] {
        let topic = format!("homeassistant/sensor/flatback_gws/athlete_{ana}_{key}/config");
        let at = sub.wait_msg(&topic, 0, T, |m| !m.payload.is_empty());
        let c = sub.messages()[at].json();
        assert_eq!(c["state_class"], class, "{key}");
        assert_eq!(c["state_topic"], ana_state.as_str());
        assert_eq!(c["device"]["name"], "Ana Lee");
    }
    sub.wait_msg(
        &format!("homeassistant/binary_sensor/flatback_gws/athlete_{bo}_ready/config"),
        0,
        T,
        |m| m.json()["device"]["name"] == "Bo",
    );
    let figures = sub.wait_msg(&ana_state, 0, T, |m| !m.payload.is_empty());
    let f = sub.messages()[figures].json();
    assert_eq!(
        (
            &f["last_session_perfect"],
            &f["best_set"],
            &f["sessions_this_week"],
            &f["floor_pct"],
            &f["ready"]
        ),
        (
            &Value::from(5),
            &Value::from(5),
            &Value::from(1),
            &Value::from(75.0),
            &Value::from(false)
        ),
        "{f}"
    );

    // Both retained, for a Home Assistant that comes later.
    let late = Subscriber::connect(broker.port(), "sub-s-late", false, &[&ana_state, select_topic]);
    assert!(late
        .on(&ana_state)
        .iter()
        .any(|m| m.retain && m.json()["best_set"] == 5));
    assert!(late.on(select_topic).iter().any(|m| m.retain));

    // A new athlete: the select again, with her name, within the roster's
    // refresh.
    let cy = add_athlete(&cfg, "Cy");
    sub.wait_msg(select_topic, select + 1, T, |m| {
        m.json()["options"] == serde_json::json!(["Guest", "Ana Lee", "Bo", "Cy"])
    });

    // Home Assistant sends the chosen option, as the select's template makes
    // it: the mat's state and its next reps carry Bo's id.
    let template = config["command_template"].as_str().unwrap();
    let payload = template.replace("{{ value | tojson }}", "\"Bo\"");
    sub.publish("flatback/gws/mat1/command", payload.as_bytes(), false);
    let named = sub.wait_msg("flatback/gws/mat1/state", 0, T, |m| m.json()["athlete"] == bo.as_str());
    sub.wait("3 reps of Bo", Duration::from_secs(60), |msgs| {
        let reps: Vec<&Msg> = msgs[named..]
            .iter()
            .filter(|m| m.topic == "flatback/gws/mat1/event" && m.json()["type"] == "rep")
            .collect();
        assert!(
            reps.iter().all(|m| m.json()["athlete"] == bo.as_str()),
            "every rep after is Bo's"
        );
        (reps.len() >= 3).then_some(())
    });
    // An option not in the roster changes nothing, and "Guest" clears.
    sub.publish(
        "flatback/gws/mat1/command",
        br#"{"command":"athlete","name":"Nobody Known"}"#,
        false,
    );
    sub.publish(
        "flatback/gws/mat1/command",
        br#"{"command":"athlete","name":"Guest"}"#,
        false,
    );
    let cleared = sub.wait_msg("flatback/gws/mat1/state", named, T, |m| m.json()["athlete"].is_null());
    assert!(
        sub.messages()[named..cleared]
            .iter()
            .filter(|m| m.topic == "flatback/gws/mat1/state")
            .all(|m| m.json()["athlete"] == bo.as_str()),
        "Bo until the guest"
    );
    // Bo's session is over for him (the mat says nobody now): his figures
    // follow, with his session this week.
    let bo_state = format!("flatback/gws/athletes/{bo}");
    let bo_figures = sub.wait_msg(&bo_state, 0, T, |m| !m.payload.is_empty());
    assert_eq!(
        sub.messages()[bo_figures].json()["sessions_this_week"],
        0,
        "none at first"
    );
    sub.wait_msg(&bo_state, bo_figures + 1, Duration::from_secs(60), |m| {
        m.json()["sessions_this_week"] == 1 && m.json()["last_session_perfect"].as_u64() > Some(0)
    });
    // Ids on the mat's topics, never names (but in the commands we sent).
    assert!(sub
        .messages()
        .iter()
        .filter(|m| m.topic.starts_with("flatback/gws/mat1/") && !m.topic.ends_with("/command"))
        .all(|m| !m.text().contains("Ana Lee") && !m.text().contains("\"Bo\"")));
    assert!(!cy.is_empty());
    d.term();
    d.wait_exit(T);
}
