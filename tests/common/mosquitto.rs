//! A real Mosquitto for the tests: started on free loopback ports with a
//! temporary config and persistence directory; stopped, restarted on the
//! same ports, killed at the end.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server::{self, running_as_root};

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// Fails with a clear message when Mosquitto is not installed.
pub fn require_mosquitto() {
    assert!(
        Path::new(MOSQUITTO).exists(),
        "these tests need the Mosquitto broker at {MOSQUITTO}: run tests/setup.sh \
         (it installs the Debian package `mosquitto`), then cargo test again"
    );
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Broker {
    /// ports[0] is a plain, anonymous listener.
    pub ports: Vec<u16>,
    dir: tempfile::TempDir,
    conf: PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// One anonymous listener, persistence on.
    pub fn start() -> Broker {
        Broker::start_with(0, |_, _| String::new())
    }

    /// `extra_ports` more free ports; `listeners(ports, dir)` returns the
    /// config text for them (after the plain listener of ports[0]).
    pub fn start_with(extra_ports: usize, listeners: impl Fn(&[u16], &Path) -> String) -> Broker {
        require_mosquitto();
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..=extra_ports).map(|_| free_port()).collect();
        let mut conf = String::new();
        if running_as_root() {
            // Otherwise Mosquitto drops to the `mosquitto` user, who cannot
            // write the temporary directory.
            conf.push_str("user root\n");
        }
        conf.push_str(&format!(
            "per_listener_settings true\npersistence true\npersistence_location {}/\n\
             log_dest file {}\nlog_type error\nlog_type warning\nlog_type notice\n\
             listener {} 127.0.0.1\nallow_anonymous true\n",
            dir.path().display(),
            dir.path().join("mosquitto.log").display(),
            ports[0]
        ));
        conf.push_str(&listeners(&ports, dir.path()));
        let path = dir.path().join("mosquitto.conf");
        std::fs::write(&path, conf).unwrap();
        let mut b = Broker {
            ports,
            dir,
            conf: path,
            child: None,
        };
        b.restart();
        b
    }

    pub fn port(&self) -> u16 {
        self.ports[0]
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.ports[0])
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts (again) on the same ports; returns once every port accepts.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        for &port in &self.ports {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!("mosquitto exited ({status}) on start; its log:\n{}", self.log());
                }
                if Instant::now() >= until {
                    let ss = Command::new("ss")
                        .arg("-tanp")
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                        .unwrap_or_default();
                    let ss: Vec<&str> = ss.lines().filter(|l| l.contains(&format!(":{port}"))).collect();
                    panic!(
                        "mosquitto not listening on {port} after 10 s; sockets: {ss:#?}\nlog:\n{}",
                        self.log()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Stops it cleanly (SIGTERM: it saves its persistence) and waits.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            server::stop(child, libc::SIGTERM, Duration::from_secs(10));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
