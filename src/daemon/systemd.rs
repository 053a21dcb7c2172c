//! The systemd service manager: readiness, the watchdog, stopping, and
//! whether our standard error goes to the journal.
//!
//! This is the `sd_notify(3)` protocol, written out because it is one
//! datagram per message: `READY=1` once frames flow, `WATCHDOG=1` from the
//! detector's loop (so a stalled pipeline is restarted, not just a dead
//! process), `STOPPING=1` on the way out, `STATUS=...` for `systemctl
//! status`. Outside systemd (no `NOTIFY_SOCKET`) every call does nothing.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

/// Where and how often to tell systemd we are alive.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Outside systemd: every notification is dropped.
    pub fn disabled() -> Self {
        Notifier {
            socket: None,
            watchdog: None,
        }
    }

    /// From the environment systemd gives a service: `NOTIFY_SOCKET` (a path,
    /// or `@name` in the abstract namespace) and `WATCHDOG_USEC` (with
    /// `WATCHDOG_PID`, when set, naming this process).
    pub fn from_env() -> io::Result<Self> {
        let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(Notifier::disabled());
        };
        let watchdog_for_us = match std::env::var("WATCHDOG_PID") {
            Ok(pid) => pid.trim() == std::process::id().to_string(),
            Err(_) => true,
        };
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&us| us > 0 && watchdog_for_us)
            .map(Duration::from_micros);
        Notifier::new(Path::new(&socket), watchdog)
    }

    /// Notifications to the socket at `path` (`@name`: abstract namespace),
    /// with the watchdog timeout systemd enforces, if any.
    pub fn new(path: &Path, watchdog: Option<Duration>) -> io::Result<Self> {
        let addr = socket_addr(path)?;
        let socket = UnixDatagram::unbound()?;
        Ok(Notifier {
            socket: Some((socket, addr)),
            watchdog,
        })
    }

    /// Another handle on the same socket (for a task of its own).
    pub fn clone_handle(&self) -> Notifier {
        Notifier {
            socket: self
                .socket
                .as_ref()
                .and_then(|(s, a)| s.try_clone().ok().map(|s| (s, a.clone()))),
            watchdog: self.watchdog,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to ping the watchdog: half its timeout, as `sd_watchdog_enabled(3)`
    /// advises; `None` when systemd does not watch us.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// Start-up is over: frames flow.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// The pipeline is alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={status}"));
    }

    fn send(&self, message: &str) {
        if let Some((socket, addr)) = &self.socket {
            // A lost notification is not worth failing for: systemd itself
            // reports a service that never became ready or stopped pinging.
            if let Err(e) = socket.send_to_addr(message.as_bytes(), addr) {
                tracing::debug!(error = %e, "systemd notification not sent");
            }
        }
    }
}

fn socket_addr(path: &Path) -> io::Result<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    match bytes.first() {
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(&bytes[1..])
        }
        Some(b'/') => SocketAddr::from_pathname(path),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("NOTIFY_SOCKET {path:?} is neither a path nor an abstract socket"),
        )),
    }
}

/// Whether standard error is the journal's stream (systemd sets
/// `JOURNAL_STREAM` to its `device:inode`): then log to journald, with
/// priorities, instead of formatted lines.
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("a notification arrives");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn notifications_reach_the_socket_in_the_protocol_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(&path, Some(Duration::from_secs(10))).unwrap();
        assert!(n.is_enabled());
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(5)));
        n.ready("2 mats, frames flowing");
        n.watchdog();
        n.stopping("SIGTERM");
        assert_eq!(receive(&systemd), "READY=1\nSTATUS=2 mats, frames flowing");
        assert_eq!(receive(&systemd), "WATCHDOG=1");
        assert_eq!(receive(&systemd), "STOPPING=1\nSTATUS=SIGTERM");
    }

    #[test]
    fn abstract_sockets_work_too() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("flatback-test-{}", std::process::id());
        let systemd = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        let n = Notifier::new(Path::new(&format!("@{name}")), None).unwrap();
        assert_eq!(n.watchdog_interval(), None);
        n.watchdog();
        assert_eq!(receive(&systemd), "WATCHDOG=1");
    }

    #[test]
    fn a_socket_name_that_is_neither_is_refused() {
        let e = Notifier::new(Path::new("relative/notify"), None).unwrap_err();
        assert!(e.to_string().contains("relative/notify"), "{e}");
    }

    #[test]
    fn outside_systemd_nothing_is_sent_and_nothing_fails() {
        let n = Notifier::disabled();
        assert!(!n.is_enabled());
        assert_eq!(n.watchdog_interval(), None);
        n.ready("x");
        n.watchdog();
    }
}
