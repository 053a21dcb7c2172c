//! `flatback run` (issue 6) as a child process against a real Mosquitto on a
//! free loopback port: two simulated mats end to end (discovery, events,
//! state, systemd's notifications, SIGTERM), a simulated SPI bus that fails
//! mid-run, and every configuration error with its message and exit code.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::mosquitto::Broker;
use common::mqtt::{write_config, Daemon, Subscriber};

const T: Duration = Duration::from_secs(40);

const TWO_SIM_MATS: &str = r#"
[[mats]]
id = "left"
source = "sim"
kind = "clean_set"
seed = 4

[[mats]]
id = "right"
source = "sim"
kind = "fatigue"
seed = 5
"#;

/// The notifications systemd would get, read from a socket of our own.
fn notifications(socket: &UnixDatagram, until: Instant, want: &str) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < until {
        socket
            .set_read_timeout(Some((until - Instant::now()).max(Duration::from_millis(1))))
            .unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = m.contains(want);
                got.push(m);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    got
}

#[test]
fn two_simulated_mats_end_to_end_then_sigterm_exits_0_with_offline_retained() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &broker.url(), "gym", TWO_SIM_MATS);
    let sub = Subscriber::connect(broker.port(), "watcher", false, &["flatback/#", "homeassistant/#"]);
    let notify_path = dir.path().join("notify");
    let systemd = UnixDatagram::bind(&notify_path).unwrap();
    let notify = notify_path.to_str().unwrap();
    let mut daemon = Daemon::run(
        &config,
        &["--speed", "20"],
        &[("NOTIFY_SOCKET", notify), ("WATCHDOG_USEC", "2000000")],
    );

    // systemd hears READY once frames flow, then the watchdog.
    let heard = notifications(&systemd, Instant::now() + T, "WATCHDOG=1");
    assert!(heard.iter().any(|m| m.starts_with("READY=1")), "{heard:?}");
    assert!(heard.iter().any(|m| m == "WATCHDOG=1"), "{heard:?}");

    // Discovery: one device per mat, linked to the gateway.
    for mat in ["left", "right"] {
        let topic = format!("homeassistant/binary_sensor/flatback_gym/{mat}_arching/config");
        sub.wait_msg(&topic, 0, T, |m| m.json()["device"]["via_device"].is_string());
        // Reps arrive as events with the envelope...
        let events = format!("flatback/gym/{mat}/event");
        sub.wait_msg(&events, 0, T, |m| {
            let v = m.json();
            v["type"] == "rep" && v["mat"] == mat && v["seq"].as_u64().is_some() && v["time"].is_string()
        });
        // ...and the retained state follows them.
        let state = format!("flatback/gym/{mat}/state");
        sub.wait_msg(&state, 0, T, |m| m.json()["reps"].as_u64().is_some_and(|r| r > 0));
        sub.wait_msg(&format!("flatback/gym/{mat}/status"), 0, T, |m| m.text() == "online");
    }

    daemon.term();
    let status = daemon.wait_exit(T);
    assert!(status.success(), "exit {status:?}:\n{}", daemon.stderr());
    let heard = notifications(&systemd, Instant::now() + Duration::from_secs(5), "STOPPING=1");
    assert!(heard.iter().any(|m| m.starts_with("STOPPING=1")), "{heard:?}");

    // A subscriber arriving now sees the gateway offline, retained.
    let late = Subscriber::connect(broker.port(), "late", false, &["flatback/gym/status"]);
    late.wait_msg("flatback/gym/status", 0, T, |m| m.retain && m.text() == "offline");
}

#[test]
fn a_simulated_spi_bus_that_fails_mid_run_makes_the_mat_unavailable_and_it_comes_back() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    // At 10x, the bus of "flaky" fails 20 s (simulated) into the run, for
    // 30 s: 2 s to 5 s of wall time.
    let mats = r#"
[[mats]]
id = "steady"
source = "sim"
kind = "clean_set"

[[mats]]
id = "flaky"
source = "sim"
kind = "clean_set"
seed = 2
bus_fault_at_s = 20.0
bus_fault_for_s = 30.0
"#;
    let config = write_config(dir.path(), &broker.url(), "gw", mats);
    let sub = Subscriber::connect(broker.port(), "watcher", false, &["flatback/gw/#"]);
    let mut daemon = Daemon::run(&config, &["--speed", "10"], &[]);
    let status = "flatback/gw/flaky/status";
    let online = sub.wait_msg(status, 0, T, |m| m.text() == "online");
    let offline = sub.wait_msg(status, online + 1, T, |m| m.text() == "offline");
    let log = daemon.wait_log(&["flaky", "source failed", "SPI"], T);
    assert!(log.contains("unavailable"), "{log}");
    assert!(daemon.is_running(), "a sensor fault never ends the process");
    sub.wait_msg(status, offline + 1, T, |m| m.text() == "online");
    // The other mat never went away.
    let steady: Vec<String> = sub.on("flatback/gw/steady/status").iter().map(|m| m.text()).collect();
    assert!(!steady.contains(&"offline".to_string()), "{steady:?}");
    // And the flaky mat's events go on after the fault, numbered without a gap.
    let before = sub.on("flatback/gw/flaky/event").len();
    sub.wait("an event of the flaky mat after the fault", T, |msgs| {
        (msgs.iter().filter(|m| m.topic == "flatback/gw/flaky/event").count() > before).then_some(())
    });
    let seqs: Vec<u64> = sub
        .on("flatback/gw/flaky/event")
        .iter()
        .map(|m| m.json()["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    daemon.term();
    assert!(daemon.wait_exit(T).success());
}

/// `flatback config check FILE` and `flatback run --config FILE` on `text`:
/// both exit 78 and print the same message, which contains every one of
/// `parts`.
fn config_error(text: &str, parts: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    for args in [
        vec!["config", "check", path.to_str().unwrap()],
        vec!["run", "--config", path.to_str().unwrap()],
    ] {
        let out = common::run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {stderr}");
        for p in parts {
            assert!(stderr.contains(p), "{args:?}: no {p:?} in: {stderr}");
        }
    }
}

#[test]
fn an_unknown_key_names_the_key_and_the_line() {
    config_error(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n\n[detector]\narch_contactt = 0.5\n",
        &["bad.toml", "line 5", "arch_contactt"],
    );
}

#[test]
fn a_value_out_of_range_names_the_key_and_the_line() {
    config_error(
        "[detector]\nmin_descent_s = 3.0\narch_contact = 1.5\n",
        &["line 3", "detector.arch_contact"],
    );
    config_error(
        "[mqtt]\nkeep_alive_s = 1\n",
        &["line 2", "mqtt.keep_alive_s", "5..=3600"],
    );
    config_error(
        "[[mats]]\nid = \"a\"\nsource = \"sim\"\nrate_hz = 9000\n",
        &["line 4", "mats[0].rate_hz", "50..=2000"],
    );
}

#[test]
fn duplicate_mat_ids_are_refused() {
    config_error(
        "[[mats]]\nid = \"a\"\nsource = \"sim\"\n\n[[mats]]\nid = \"a\"\nsource = \"sim\"\n",
        &["line 6", "mats[1].id", "mat id \"a\" is also the id of mats[0]"],
    );
}

#[test]
fn two_mats_on_one_chip_select_are_refused() {
    // Both SPI mats default to [hardware]: the same two chips.
    config_error(
        "[[mats]]\nid = \"a\"\n\n[[mats]]\nid = \"b\"\n",
        &["mats[1].source", "SPI0 CE0", "mats[0] (a)"],
    );
}

#[test]
fn a_good_configuration_checks_and_the_default_is_one() {
    let out = common::run(&["config", "default"]);
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("default.toml");
    std::fs::write(&path, &out.stdout).unwrap();
    let out = common::run(&["config", "check", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("good (1 mats: mat1)"));
    let path = dir.path().join("two.toml");
    std::fs::write(&path, TWO_SIM_MATS).unwrap();
    let out = common::run(&["config", "check", path.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 mats: left, right"));
}

#[test]
fn a_missing_configuration_file_is_a_configuration_error() {
    let out = common::run(&["run", "--config", "/nonexistent/flatback.toml"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/flatback.toml"));
}

/// Issue 13, point 5: what `run` needs from the file system and the
/// environment is checked by `config check` too, exit 78 with the key.
#[test]
fn what_run_needs_from_the_file_system_is_checked_by_config_check_too() {
    config_error(
        "[mqtt]\nusername = \"gym\"\npassword_file = \"/nonexistent/flatback.password\"\n",
        &["mqtt.password_file", "/nonexistent/flatback.password", "line 3"],
    );
    config_error(
        "[mqtt]\nusername = \"gym\"\npassword_env = \"FLATBACK_TEST_NEVER_SET_13\"\n",
        &["mqtt.password_env", "FLATBACK_TEST_NEVER_SET_13", "not set"],
    );
    config_error(
        "[mqtt]\nurl = \"mqtts://127.0.0.1:8883\"\nca_file = \"/nonexistent/ca.pem\"\n",
        &["mqtt.ca_file", "/nonexistent/ca.pem"],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outbox");
    std::fs::write(&file, "not a directory").unwrap();
    config_error(
        &format!("[mqtt]\noutbox_dir = \"{}\"\n", file.display()),
        &["mqtt.outbox_dir", "is a file, not a directory"],
    );
}

/// Issue 13, point 6: a replayed recording that cannot be read, or whose
/// grid is not the mats', is refused before `run` starts.
#[test]
fn a_replayed_recording_missing_or_of_another_grid_is_refused_by_check_and_run() {
    config_error(
        "[[mats]]\nid = \"r\"\nsource = \"replay\"\nfile = \"/nonexistent/mat.csv\"\n",
        &["mats[0].file", "/nonexistent/mat.csv", "line 4"],
    );
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("small.csv");
    std::fs::write(&rec, "t_us,r0c0,r0c1,r1c0,r1c1\n0,1,2,3,4\n").unwrap();
    config_error(
        &format!(
            "[[mats]]\nid = \"r\"\nsource = \"replay\"\nfile = \"{}\"\n",
            rec.display()
        ),
        &["mats[0].file", "2x2 recording", "4x4"],
    );
}
