//! Test helpers: an MQTT subscriber that records every message (rumqttc,
//! re-subscribing on every ConnAck), and the `flatback publish` daemon as a
//! child process whose stderr is collected. Waits are on observed messages
//! or log lines, each bounded by a timeout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    /// When it arrived, milliseconds since the epoch.
    pub received_ms: u64,
}

impl Msg {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or(serde_json::Value::Null)
    }
}

type Log = Arc<(Mutex<Vec<Msg>>, Condvar)>;

pub struct Subscriber {
    client: Client,
    log: Log,
    stop: Arc<AtomicBool>,
    connects: Arc<AtomicU64>,
    barriers: AtomicU64,
    id: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Connects to 127.0.0.1:`port` and subscribes `filters` with QoS 1 (on
    /// every ConnAck). `persistent`: a persistent session, so messages
    /// published while it is away wait for it at the broker.
    pub fn connect(port: u16, id: &str, persistent: bool, filters: &[&str]) -> Subscriber {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_clean_session(!persistent);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut connection) = Client::new(o, 1000);
        let log: Log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let connects = Arc::new(AtomicU64::new(0));
        let mut filters: Vec<String> = filters.iter().map(|s| s.to_string()).collect();
        filters.push(format!("test-barrier/{id}/#"));
        let thread = {
            let (log, stop, connects, client) = (log.clone(), stop.clone(), connects.clone(), client.clone());
            std::thread::spawn(move || {
                for ev in connection.iter() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match ev {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            for f in &filters {
                                let _ = client.try_subscribe(f.clone(), QoS::AtLeastOnce);
                            }
                            connects.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            let (m, cv) = &*log;
                            drop(m.lock().unwrap());
                            cv.notify_all();
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            let (m, cv) = &*log;
                            m.lock().unwrap().push(Msg {
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                                received_ms: std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .map_or(0, |d| d.as_millis() as u64),
                            });
                            cv.notify_all();
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                        _ => {}
                    }
                }
            })
        };
        let s = Subscriber {
            client,
            log,
            stop,
            connects,
            barriers: AtomicU64::new(0),
            id: id.to_string(),
            thread: Some(thread),
        };
        s.barrier(Duration::from_secs(10));
        s
    }

    /// Every message so far.
    pub fn messages(&self) -> Vec<Msg> {
        self.log.0.lock().unwrap().clone()
    }

    pub fn on(&self, topic: &str) -> Vec<Msg> {
        self.messages().into_iter().filter(|m| m.topic == topic).collect()
    }

    /// Waits until `check` finds what it looks for in the messages so far.
    pub fn wait<T>(&self, what: &str, timeout: Duration, mut check: impl FnMut(&[Msg]) -> Option<T>) -> T {
        let until = Instant::now() + timeout;
        let (m, cv) = &*self.log;
        let mut guard = m.lock().unwrap();
        loop {
            if let Some(t) = check(&guard) {
                return t;
            }
            let now = Instant::now();
            if now >= until {
                let tail: Vec<String> = guard
                    .iter()
                    .rev()
                    .take(8)
                    .map(|m| format!("{} {}", m.topic, m.text()))
                    .collect();
                let count = guard.len();
                // No panic while holding the lock: the connection thread
                // would find it poisoned.
                drop(guard);
                panic!(
                    "timed out after {timeout:?} waiting for {what}; {} messages, the last:\n{}",
                    count,
                    tail.join("\n")
                );
            }
            guard = cv
                .wait_timeout(guard, (until - now).min(Duration::from_millis(100)))
                .unwrap()
                .0;
        }
    }

    /// Waits for a message on `topic` whose payload satisfies `pred`, at or
    /// after index `from`; returns its index.
    pub fn wait_msg(&self, topic: &str, from: usize, timeout: Duration, pred: impl Fn(&Msg) -> bool) -> usize {
        self.wait(&format!("a message on {topic}"), timeout, |msgs| {
            msgs.iter()
                .enumerate()
                .skip(from)
                .find(|(_, m)| m.topic == topic && pred(m))
                .map(|(i, _)| i)
        })
    }

    /// Publishes, then waits for the broker to hand back a marker published
    /// after it: everything published before (retained messages of the
    /// subscriptions included) has arrived.
    pub fn barrier(&self, timeout: Duration) {
        let n = self.barriers.fetch_add(1, Ordering::SeqCst);
        let topic = format!("test-barrier/{}/{n}", self.id);
        // Subscriptions are made on ConnAck: wait for the first one.
        let until = Instant::now() + timeout;
        while self.connects.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < until, "subscriber {} never connected", self.id);
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut published = false;
        self.wait(&format!("barrier {topic}"), timeout, |msgs| {
            if !published {
                published = self
                    .client
                    .try_publish(topic.clone(), QoS::AtLeastOnce, false, "b")
                    .is_ok();
            }
            msgs.iter().any(|m| m.topic == topic).then_some(())
        });
    }

    pub fn publish(&self, topic: &str, payload: &[u8], retain: bool) {
        self.client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .expect("publish");
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
        if let Some(t) = self.thread.take() {
            // The connection thread ends on the disconnect (or its next
            // reconnect attempt); do not wait for a dead broker.
            drop(t);
        }
    }
}

/// `flatback publish` or `flatback run` as a child process.
pub struct Daemon {
    pub child: Child,
    stderr: Arc<(Mutex<String>, Condvar)>,
}

impl Daemon {
    pub fn spawn(config: &Path, args: &[&str]) -> Daemon {
        Daemon::spawn_env(config, args, &[])
    }

    pub fn spawn_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::command("publish", config, args, env, true)
    }

    /// `flatback run --config CONFIG ARGS`, the daemon.
    pub fn run(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::command("run", config, args, env, true)
    }

    /// `flatback run` as systemd starts it: stderr a pipe, and no
    /// `NO_COLOR` (whether colour goes into the log is flatback's choice).
    pub fn run_uncoloured_by_env(config: &Path, args: &[&str]) -> Daemon {
        Daemon::command("run", config, args, &[], false)
    }

    fn command(subcommand: &str, config: &Path, args: &[&str], env: &[(&str, &str)], no_color: bool) -> Daemon {
        let mut cmd = super::flatback();
        cmd.arg(subcommand).arg("--config").arg(config).args(args);
        cmd.env("FLATBACK_LOG", "info,flatback=debug");
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flatback");
        let stderr = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let (m, cv) = &*sink;
                let mut s = m.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
                cv.notify_all();
            }
        });
        Daemon { child, stderr }
    }

    pub fn stderr(&self) -> String {
        self.stderr.0.lock().unwrap().clone()
    }

    /// Waits for a line of its log containing every one of `parts`.
    pub fn wait_log(&mut self, parts: &[&str], timeout: Duration) -> String {
        let until = Instant::now() + timeout;
        let (m, cv) = &*self.stderr;
        let mut s = m.lock().unwrap();
        loop {
            if let Some(line) = s.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_string();
            }
            let now = Instant::now();
            if now >= until {
                let log = s.clone();
                drop(s);
                panic!("timed out waiting for a log line with {parts:?}; the log:\n{log}");
            }
            s = cv
                .wait_timeout(s, (until - now).min(Duration::from_millis(200)))
                .unwrap()
                .0;
        }
    }

    /// Waits until the daemon's web view accepts connections on `addr`.
    pub fn wait_listening(&mut self, addr: std::net::SocketAddr, timeout: Duration) {
        let until = Instant::now() + timeout;
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(self.is_running(), "flatback exited:\n{}", self.stderr());
            assert!(Instant::now() < until, "no web view on {addr}:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn term(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let until = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < until,
                "flatback did not exit within {timeout:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config file for `flatback publish` against `url`. Its web view is off
/// unless `extra` has a `[web]` section (tests listen on loopback only).
pub fn write_config(dir: &Path, url: &str, gateway: &str, extra: &str) -> std::path::PathBuf {
    let outbox = dir.join(format!("outbox-{gateway}"));
    // After `extra`, whose first lines may be more [mqtt] keys.
    let web = if extra.contains("[web]") {
        ""
    } else {
        "[web]\nlisten = \"\"\n"
    };
    // Each gateway's history in the test's directory, unless `extra` says.
    let history = if extra.contains("[history]") {
        String::new()
    } else {
        format!(
            "[history]\ndatabase = \"sqlite:{}\"\n",
            dir.join(format!("history-{gateway}.db")).display()
        )
    };
    let text = format!(
        "[mqtt]\nurl = \"{url}\"\ngateway_id = \"{gateway}\"\noutbox_dir = \"{}\"\n\
         reconnect_min_s = 0.2\nreconnect_max_s = 1.0\ndiscovery_resend_max_s = 0.5\n{extra}\n{web}{history}",
        outbox.display()
    );
    let path = dir.join(format!("{gateway}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `flatback purge --config CONFIG --mat MAT...`: must succeed; its stdout.
pub fn purge(config: &Path, mats: &[&str]) -> String {
    let mut cmd = super::flatback();
    cmd.args(["purge", "--config"]).arg(config);
    for m in mats {
        cmd.args(["--mat", m]);
    }
    let out = cmd.output().expect("flatback purge runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
