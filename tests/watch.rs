//! `flatback watch` against a real Mosquitto on a free loopback port
//! (tests/setup.sh installs it): the non-terminal mode prints the events of
//! every mat, and the dashboard's MQTT link receives the topic layout and
//! sends the reset command.
//!
//! Every wait is on something observed (a line printed, a message
//! received), bounded by a timeout.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flatback::detector::{Detector, DetectorConfig};
use flatback::event::Event;
use flatback::frame::{Frame, FrameSource};
use flatback::sim::{Kind, Scenario, Simulator};
use flatback::watch::link::{Broker, LinkEvent, MqttLink};
use flatback::watch::model::Dashboard;
use rumqttc::{Client, MqttOptions, Packet, QoS};

// TODO(after the MQTT branch is merged): use common::mosquitto::Broker,
// which this mirrors.
const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A Mosquitto of our own on a free 127.0.0.1 port, killed on drop.
struct Mosquitto {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    fn start() -> Mosquitto {
        assert!(
            Path::new(MOSQUITTO).exists(),
            "this test needs the Mosquitto broker at {MOSQUITTO}: run tests/setup.sh (it installs \
             the Debian package `mosquitto`), then cargo test again"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let root = std::fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false);
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "{}listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 log_dest file {}\n",
                // As root it would switch to the `mosquitto` user, who cannot
                // write the temporary directory.
                if root { "user root\n" } else { "" },
                dir.path().join("mosquitto.log").display()
            ),
        )
        .unwrap();
        let mut child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("mosquitto exited ({status}) on start");
            }
            assert!(Instant::now() < until, "mosquitto not listening on {port} after 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Mosquitto { port, child, _dir: dir }
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain MQTT client for the test's side: publishes, and records what its
/// subscriptions receive.
struct TestClient {
    client: Client,
    received: mpsc::Receiver<(String, Vec<u8>, bool)>,
    subscribed: mpsc::Receiver<()>,
}

impl TestClient {
    fn connect(port: u16, id: &str, filters: &[&str]) -> TestClient {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5));
        let (client, mut connection) = Client::new(o, 1000);
        let (tx, received) = mpsc::channel();
        let (sub_tx, subscribed) = mpsc::channel();
        let filters: Vec<String> = filters.iter().map(|s| s.to_string()).collect();
        let c = client.clone();
        std::thread::spawn(move || {
            for ev in connection.iter() {
                match ev {
                    Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                        for f in &filters {
                            let _ = c.try_subscribe(f.clone(), QoS::AtLeastOnce);
                        }
                        if filters.is_empty() {
                            let _ = sub_tx.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                        let _ = sub_tx.send(());
                    }
                    Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec(), p.retain)).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        let t = TestClient {
            client,
            received,
            subscribed,
        };
        t.subscribed
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("test client {id} not connected after 10 s"));
        t
    }

    fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.into())
            .expect("publish");
    }
}

/// A simulated mat's events, as the detector emits them.
fn simulated_events(kind: Kind, seed: u64) -> Vec<Event> {
    let mut sim = Simulator::new(&Scenario::new(kind, seed));
    let mut detector = Detector::new(sim.grid(), DetectorConfig::default()).unwrap();
    let mut frame = Frame::zeroed(sim.grid());
    let mut events = Vec::new();
    while sim.next_into(&mut frame).unwrap() {
        detector.push(&frame, &mut events);
    }
    detector.finish(&mut events);
    events
}

/// The publisher's envelope: the contract's JSON plus `mat`, `seq`, `time`.
fn envelope(e: &Event, mat: &str, seq: u64) -> String {
    let mut v = serde_json::to_value(e).unwrap();
    v["mat"] = mat.into();
    v["seq"] = seq.into();
    v["time"] = "2024-03-05T17:04:09.123Z".into();
    v.to_string()
}

/// Publishes mats the way the gateway does: gateway and mat status, a
/// retained state, then every event of a simulated session.
///
/// TODO(issue 6 / after the MQTT merge): replace this with the real
/// publisher, `flatback demo --broker URL` (3 mats) or
/// `flatback publish --broker URL --mat mat1 --mat mat2 --mat mat3 --speed 20`,
/// run as a child process while `watch` listens.
fn publish_mats(client: &TestClient, gateway: &str, mats: &[(&str, Kind, u64)]) -> Vec<(String, Vec<Event>)> {
    client.publish(&format!("flatback/{gateway}/status"), "online", true);
    let mut published = Vec::new();
    for &(mat, kind, seed) in mats {
        let base = format!("flatback/{gateway}/{mat}");
        client.publish(&format!("{base}/status"), "online", true);
        client.publish(
            &format!("{base}/state"),
            r#"{"occupied":false,"arching":false,"contact":null,"set":0,"set_reps":0,"set_perfect":0,"reps":0,"perfect_reps":0,"arches":0,"last_descent_s":null}"#,
            true,
        );
        let events = simulated_events(kind, seed);
        for (seq, e) in events.iter().enumerate() {
            client.publish(&format!("{base}/event"), envelope(e, mat, seq as u64 + 1), false);
        }
        published.push((mat.to_string(), events));
    }
    published
}

/// `flatback watch` as a child process, its stdout and stderr read line by
/// line on threads of their own.
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
        let lines = |pipe: Box<dyn std::io::Read + Send>| {
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
        };
        let stdout = lines(Box::new(child.stdout.take().unwrap()));
        let stderr = lines(Box::new(child.stderr.take().unwrap()));
        Watcher { child, stdout, stderr }
    }

    /// Waits for a line on stderr containing `part`.
    fn wait_stderr(&mut self, part: &str, timeout: Duration) -> String {
        let until = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(part) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "no line with {part:?} on watch's stderr within {timeout:?}; it said: {seen:?} (exit: {:?})",
                    self.child.try_wait()
                ),
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_prints_every_mats_events_as_plain_lines() {
    let broker = Mosquitto::start();
    let mut watcher = Watcher::spawn(&broker.url());
    // Events are not retained: publish only once watch has subscribed.
    watcher.wait_stderr("watching flatback/#", Duration::from_secs(15));

    let publisher = TestClient::connect(broker.port, "test-gateway", &[]);
    let mats = [
        ("mat1", Kind::Fatigue, 1),
        ("mat2", Kind::Fatigue, 2),
        ("mat3", Kind::Rushed, 3),
    ];
    let published = publish_mats(&publisher, "gym1", &mats);
    let expected: usize = published.iter().map(|(_, e)| e.len()).sum();
    for (mat, events) in &published {
        assert!(
            events.iter().any(|e| matches!(e, Event::Rep(_))),
            "{mat}'s simulated session has reps"
        );
    }

    // One line per event, each naming its mat and type.
    let until = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    while lines.len() < expected {
        let left = until.saturating_duration_since(Instant::now());
        match watcher.stdout.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!(
                "{} of {expected} event lines within 20 s; the last: {:?}",
                lines.len(),
                lines.iter().rev().take(5).collect::<Vec<_>>()
            ),
        }
    }
    for (mat, events) in &published {
        let mine: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("gym1/{mat} ")))
            .collect();
        assert_eq!(mine.len(), events.len(), "lines of {mat}");
        // In order, with the type and its key fields.
        for (line, e) in mine.iter().zip(events) {
            let kind = line.split(' ').nth(1).unwrap();
            assert_eq!(kind, e.kind(), "{line}");
            assert!(line.contains(&format!("t_ms={}", e.t_ms())), "{line}");
            assert!(line.ends_with("time=2024-03-05T17:04:09.123Z"), "{line}");
            if let Event::Rep(r) = e {
                assert!(
                    line.contains(&format!("set={} rep={} perfect={}", r.set, r.rep, r.perfect)),
                    "{line}"
                );
            }
        }
    }
    assert!(
        lines.iter().any(|l| l.contains(" arch start contact=")),
        "the fatigue sessions arch"
    );
    // Retained status and state print nothing: exactly one line per event.
    assert_eq!(lines.len(), expected);
    assert!(watcher.stdout.try_recv().is_err());
}

#[test]
fn dashboard_link_follows_the_layout_and_sends_reset() {
    let broker = Mosquitto::start();
    // A gateway that was there before the watcher: its retained topics.
    let gateway = TestClient::connect(broker.port, "test-gateway", &["flatback/+/+/command"]);
    gateway.publish("flatback/gym1/status", "online", true);
    gateway.publish("flatback/gym1/mat1/status", "online", true);
    gateway.publish("flatback/gym1/mat2/status", "offline", true);
    gateway.publish(
        "flatback/gym1/mat1/state",
        r#"{"occupied":true,"arching":true,"contact":35,"set":1,"set_reps":4,"set_perfect":3,"reps":4,"perfect_reps":3,"arches":1,"last_descent_s":3.2}"#,
        true,
    );

    let link = MqttLink::connect(&Broker::parse(&broker.url()).unwrap(), "flatback");
    let mut dash = Dashboard::new("flatback", &broker.url(), 0.6);
    let mut bells = 0;
    // Until subscribed, then until the retained state has come in.
    let until = Instant::now() + Duration::from_secs(15);
    let mut subscribed = false;
    while !(subscribed && dash.screen(0).tiles.len() == 2 && dash.screen(0).tiles[0].counters.reps == 4) {
        match link.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Some(LinkEvent::Subscribed) => subscribed = true,
            Some(LinkEvent::Message { topic, payload }) => bells += dash.apply(&topic, &payload, 0).arch_started as u32,
            Some(LinkEvent::Lost(why)) => panic!("lost the broker: {why}"),
            None => panic!("no subscription or retained state within 15 s"),
        }
    }
    let screen = dash.screen(0);
    let status: Vec<_> = screen.tiles.iter().map(|t| (t.key.mat.as_str(), t.status)).collect();
    use flatback::watch::model::Status;
    assert_eq!(status, [("mat1", Status::Arching), ("mat2", Status::Offline)]);
    assert_eq!(screen.tiles[0].contact, Some(0.35));
    assert_eq!(bells, 1, "the bell rings for an arch in progress");

    // `r` on the selected mat: the reset command, not retained.
    let reset = dash.reset_selected().unwrap();
    link.publish(&reset).unwrap();
    let (topic, payload, retain) = gateway
        .received
        .recv_timeout(Duration::from_secs(10))
        .expect("the gateway receives the reset");
    assert_eq!(
        (topic.as_str(), payload.as_slice(), retain),
        ("flatback/gym1/mat1/command", b"reset_counters".as_slice(), false)
    );

    // A live event arrives through the link too.
    gateway.publish(
        "flatback/gym1/mat1/event",
        r#"{"type":"arch","t_ms":100,"phase":"end","duration_ms":900,"min_contact":0.3,"mat":"mat1","seq":7}"#,
        false,
    );
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match link.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Some(LinkEvent::Message { topic, payload }) if topic.ends_with("/event") => {
                let u = dash.apply(&topic, &payload, 10);
                assert_eq!(
                    u.line.as_deref(),
                    Some("gym1/mat1 arch end duration_ms=900 min_contact=0.3 t_ms=100")
                );
                break;
            }
            Some(_) => {}
            None => panic!("the event did not arrive within 10 s"),
        }
    }
    assert_eq!(dash.screen(10).tiles[0].status, Status::Occupied);
}
