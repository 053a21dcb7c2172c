//! `flatback watch` against a real Mosquitto on free loopback ports
//! (tests/setup.sh installs it): the non-terminal mode prints every mat's
//! events while `flatback publish` publishes three mats; it reconnects when
//! the broker comes back; the dashboard's MQTT link reads the retained
//! topics and sends the reset; and the full-screen mode, on a pseudo
//! terminal, draws the mats, resets the selected one on `r` and quits on `q`.
//!
//! Every wait is on something observed (a line printed, a message
//! received), bounded by a timeout.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::mosquitto::Broker;
use common::mqtt::{write_config, Daemon, Subscriber};
use flatback::contract::event::Event;
use flatback::dashboard::{Dashboard, Status};
use flatback::detector::{Detector, DetectorConfig};
use flatback::mqtt::subscriber::{self, LinkEvent, MqttLink};
use flatback::mqtt::MqttConfig;
use flatback::mqtt::Options;
use flatback::sim::{Kind, Scenario, Simulator};

const T: Duration = Duration::from_secs(30);

/// The events of a simulated mat as `flatback publish --kind KIND --seed
/// SEED --seconds SECONDS` emits them (mat k of the command simulates seed + k).
fn expected(kind: Kind, seed: u64, seconds: f64) -> Vec<Event> {
    let mut scenario = Scenario::new(kind, seed);
    scenario.duration_s = Some(seconds);
    let mut sim = Simulator::new(&scenario);
    let mut detector = Detector::new(flatback::contract::frame::Grid::REFERENCE, DetectorConfig::default()).unwrap();
    flatback::tools::replay::collect(&mut sim, &mut detector).unwrap()
}

/// Lines of a child's pipe, read on a thread of their own.
fn lines(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// `flatback watch` with its output piped: the non-terminal mode.
struct Watcher {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Watcher {
    fn spawn(url: &str) -> Watcher {
        let mut child = common::flatback()
            .args(["watch", "--broker", url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flatback watch");
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Watcher { child, stdout, stderr }
    }

    /// Waits for a line on stderr containing `part`.
    fn wait_stderr(&mut self, part: &str, timeout: Duration) -> String {
        let until = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            match self
                .stderr
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(part) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "no line with {part:?} on watch's stderr within {timeout:?}; it said: {seen:?} (exit: {:?})",
                    self.child.try_wait()
                ),
            }
        }
    }

    /// Waits for `n` lines on stdout.
    fn stdout_lines(&mut self, n: usize, timeout: Duration) -> Vec<String> {
        let until = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            match self
                .stdout
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(line) => out.push(line),
                Err(_) => panic!(
                    "{} of {n} lines within {timeout:?}; the last: {:?}",
                    out.len(),
                    out.iter().rev().take(5).collect::<Vec<_>>()
                ),
            }
        }
        out
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_prints_every_mats_events_while_flatback_publishes() {
    let broker = Broker::start();
    let mut watcher = Watcher::spawn(&broker.url());
    // Events are not retained: the gateway starts once watch has subscribed.
    watcher.wait_stderr("watching flatback/#", T);

    // `flatback publish` here, whose events are known exactly; the test
    // below runs `flatback demo`.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &broker.url(), "gym1", "");
    let seconds = 60.0;
    let mut gateway = Daemon::spawn(
        &cfg,
        &[
            "--mat",
            "mat1",
            "--mat",
            "mat2",
            "--mat",
            "mat3",
            "--kind",
            "three_sets",
            "--seed",
            "3",
            "--seconds",
            "60",
            "--speed",
            "30",
            "--exit-when-done",
        ],
    );
    let want: Vec<(String, Vec<Event>)> = (0..3)
        .map(|k| (format!("mat{}", k + 1), expected(Kind::ThreeSets, 3 + k, seconds)))
        .collect();
    let total: usize = want.iter().map(|(_, e)| e.len()).sum();
    for (mat, events) in &want {
        assert!(
            events.iter().any(|e| matches!(e, Event::Rep(_))) && events.iter().any(|e| matches!(e, Event::Arch(_))),
            "{mat}'s first minute has reps and arches"
        );
    }

    // One line per event, each naming its gateway and mat, its type and
    // key fields, in order per mat.
    let lines = watcher.stdout_lines(total, T);
    for (mat, events) in &want {
        let mine: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("gym1/{mat} ")))
            .collect();
        assert_eq!(mine.len(), events.len(), "lines of {mat}");
        for (line, e) in mine.iter().zip(events) {
            assert_eq!(line.split(' ').nth(1), Some(e.kind()), "{line}");
            assert!(line.contains(&format!(" t_ms={} time=20", e.t_ms())), "{line}");
            match e {
                Event::Rep(r) => assert!(
                    line.contains(&format!(
                        "rep set={} rep={} perfect={} arched={} rushed={}",
                        r.set, r.rep, r.perfect, r.arched, r.rushed
                    )),
                    "{line}"
                ),
                Event::Arch(a) => assert!(line.contains(&format!("arch {:?}", a.phase).to_lowercase()), "{line}"),
                _ => {}
            }
        }
    }
    assert!(gateway.wait_exit(T).success(), "{}", gateway.stderr());
    // Retained status and state print nothing: exactly one line per event.
    assert!(watcher.stdout.try_recv().is_err());
}

#[test]
fn watch_subscribes_again_when_the_broker_comes_back() {
    let mut broker = Broker::start();
    let mut watcher = Watcher::spawn(&broker.url());
    watcher.wait_stderr("watching flatback/#", T);
    broker.stop();
    watcher.wait_stderr("retrying", T);
    broker.restart();
    watcher.wait_stderr("watching flatback/#", T);
    let gateway = Subscriber::connect(broker.port(), "test-gateway", false, &[]);
    gateway.publish(
        "flatback/gym1/mat1/event",
        br#"{"type":"session","t_ms":5,"phase":"start","mat":"mat1","seq":1}"#,
        false,
    );
    assert_eq!(watcher.stdout_lines(1, T), ["gym1/mat1 session start t_ms=5"]);
}

/// The link as `watch` builds it, from an `[mqtt]` section.
fn link_to(url: &str) -> MqttLink {
    let config = MqttConfig {
        url: url.to_string(),
        ..MqttConfig::default()
    };
    let options = Options::from_config(&config).unwrap();
    let describe = {
        let options = options.clone();
        move |e: &rumqttc::ConnectionError| options.describe(e)
    };
    MqttLink::connect(
        options.mqtt_options(&subscriber::client_id("watch"), true, false),
        &flatback::wire::topics::watch_filters("flatback"),
        describe,
    )
}

#[test]
fn dashboard_link_reads_the_retained_topics_and_sends_reset() {
    let broker = Broker::start();
    // A gateway that was there before the watcher: its retained topics.
    let gateway = Subscriber::connect(broker.port(), "test-gateway", false, &["flatback/+/+/command"]);
    gateway.publish("flatback/gym1/status", b"online", true);
    gateway.publish("flatback/gym1/mat1/status", b"online", true);
    gateway.publish("flatback/gym1/mat2/status", b"offline", true);
    gateway.publish(
        "flatback/gym1/mat1/state",
        br#"{"occupied":true,"arching":true,"contact":35,"set":1,"set_reps":4,"set_perfect":3,"reps":4,"perfect_reps":3,"arches":1,"last_descent_s":3.2}"#,
        true,
    );
    gateway.barrier(T);

    let link = link_to(&broker.url());
    let mut dash = Dashboard::new("flatback", &broker.url(), 0.6);
    let mut bells = 0;
    let until = Instant::now() + T;
    let mut subscribed = false;
    while !(subscribed && dash.screen(0).tiles.len() == 2 && dash.screen(0).tiles[0].counters.reps == 4) {
        match link.recv_timeout(until.saturating_duration_since(Instant::now())).ok() {
            Some(LinkEvent::Subscribed) => subscribed = true,
            Some(LinkEvent::Message { topic, payload }) => bells += dash.apply(&topic, &payload, 0).arch_started as u32,
            Some(LinkEvent::Lost(why)) => panic!("lost the broker: {why}"),
            None => panic!("no subscription or retained state within {T:?}"),
        }
    }
    let screen = dash.screen(0);
    let status: Vec<_> = screen.tiles.iter().map(|t| (t.key.mat.as_str(), t.status)).collect();
    assert_eq!(status, [("mat1", Status::Arching), ("mat2", Status::Offline)]);
    assert_eq!(screen.tiles[0].contact, Some(0.35));
    assert_eq!(bells, 1, "the bell rings for an arch in progress");

    // `r` on the selected mat: the reset command, not retained.
    let reset = dash.reset_selected().unwrap();
    link.publish(&reset.topic, reset.payload.as_bytes()).unwrap();
    gateway.wait_msg("flatback/gym1/mat1/command", 0, T, |m| {
        m.text() == "reset_counters" && !m.retain
    });

    // A live event comes through too, and ends the alarm.
    gateway.publish(
        "flatback/gym1/mat1/event",
        br#"{"type":"arch","t_ms":100,"phase":"end","duration_ms":900,"min_contact":0.3,"mat":"mat1","seq":7}"#,
        false,
    );
    let until = Instant::now() + T;
    loop {
        match link.recv_timeout(until.saturating_duration_since(Instant::now())).ok() {
            Some(LinkEvent::Message { topic, payload }) if topic.ends_with("/event") => {
                let u = dash.apply(&topic, &payload, 10);
                assert_eq!(
                    u.line.as_deref(),
                    Some("gym1/mat1 arch end duration_ms=900 min_contact=0.3 t_ms=100")
                );
                break;
            }
            Some(_) => {}
            None => panic!("the event did not arrive within {T:?}"),
        }
    }
    assert_eq!(dash.screen(10).tiles[0].status, Status::Occupied);
}

/// Everything a child wrote to its pipe, collected on a thread.
struct Screen(Arc<(Mutex<Vec<u8>>, Condvar)>);

impl Screen {
    fn collect(pipe: impl Read + Send + 'static) -> Screen {
        let shared = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let sink = shared.clone();
        std::thread::spawn(move || {
            let mut pipe = pipe;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let (m, cv) = &*sink;
                m.lock().unwrap().extend_from_slice(&buf[..n]);
                cv.notify_all();
            }
        });
        Screen(shared)
    }

    /// Waits until everything in `parts` has been drawn.
    fn wait_for(&self, parts: &[&str], timeout: Duration) {
        let until = Instant::now() + timeout;
        let (m, cv) = &*self.0;
        let mut out = m.lock().unwrap();
        loop {
            let text = String::from_utf8_lossy(&out);
            if parts.iter().all(|p| text.contains(p)) {
                return;
            }
            let now = Instant::now();
            if now >= until {
                let missing: Vec<&&str> = parts.iter().filter(|p| !text.contains(**p)).collect();
                let text = text.into_owned();
                drop(out);
                panic!(
                    "the dashboard did not show {missing:?} within {timeout:?}; it wrote {} bytes",
                    text.len()
                );
            }
            out = cv.wait_timeout(out, until - now).unwrap().0;
        }
    }
}

#[test]
fn dashboard_on_a_terminal_resets_the_selected_mat_and_quits() {
    let broker = Broker::start();
    let gateway = Subscriber::connect(broker.port(), "test-gateway", false, &["flatback/+/+/command"]);
    gateway.publish("flatback/gym1/mat7/status", b"online", true);
    gateway.publish(
        "flatback/gym1/mat7/state",
        br#"{"occupied":true,"arching":false,"contact":91,"set":1,"set_reps":2,"set_perfect":2,"reps":2,"perfect_reps":2,"arches":0}"#,
        true,
    );
    gateway.barrier(T);
    // `script` gives watch a pseudo terminal of 120 x 40; its screen comes
    // back on script's stdout, our keys go in on script's stdin.
    let command = format!(
        "stty cols 120 rows 40; exec {} watch --broker {}",
        env!("CARGO_BIN_EXE_flatback"),
        broker.url()
    );
    let mut child = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script (util-linux) runs");
    let screen = Screen::collect(child.stdout.take().unwrap());
    screen.wait_for(&[" mat7 ", "91%", "connected"], T);
    let mut keys = child.stdin.take().unwrap();
    keys.write_all(b"r").unwrap();
    keys.flush().unwrap();
    gateway.wait_msg("flatback/gym1/mat7/command", 0, T, |m| m.text() == "reset_counters");
    screen.wait_for(&["reset sent to mat7"], T);
    keys.write_all(b"q").unwrap();
    keys.flush().unwrap();
    let until = Instant::now() + T;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("watch did not quit on q");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

/// `flatback demo --broker URL` publishes three mats; `flatback watch`,
/// another process on the same broker, sees events from every one.
#[test]
fn watch_sees_every_mat_while_flatback_demo_publishes() {
    let broker = Broker::start();
    let mut watcher = Watcher::spawn(&broker.url());
    watcher.wait_stderr("watching flatback/#", T);
    let mut demo = common::flatback()
        .args([
            "demo",
            "--broker",
            &broker.url(),
            "--speed",
            "20",
            "--duration",
            "15",
            "--plain",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start flatback demo");
    let mut seen = std::collections::BTreeSet::new();
    let until = Instant::now() + T;
    while seen.len() < 3 {
        assert!(Instant::now() < until, "events from {seen:?} only");
        let remaining = until.saturating_duration_since(Instant::now());
        let line = watcher.stdout_lines(1, remaining).remove(0);
        if let Some(mat) = line.strip_prefix("demo/").and_then(|l| l.split(' ').next()) {
            seen.insert(mat.to_string());
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["mat1", "mat2", "mat3"]);
    assert!(demo.wait().unwrap().success());
}
