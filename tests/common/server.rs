//! The servers the tests and benches start (Mosquitto, PostgreSQL): who
//! runs them, and stopping them.

use std::process::Child;
use std::time::{Duration, Instant};

/// Whether the tests run as root (PostgreSQL refuses to; Mosquitto then
/// needs telling which user to stay).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Sends `signal` to `child` and waits until it has exited, killing it if it
/// has not within `within`.
pub fn stop(mut child: Child, signal: libc::c_int, within: Duration) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let until = Instant::now() + within;
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
