//! Readiness and the systemd watchdog, from the mats' progress.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::systemd::Notifier;

/// Ready once every mat has made progress (its first frame, or its first
/// attempt at opening a failing sensor: a sensor fault never holds up the
/// service); then the watchdog, pinged only while every mat keeps making
/// progress, so a stalled pipeline gets the service restarted. A mat whose
/// counter reads `u64::MAX` has finished and is not waited for.
pub async fn run(notifier: Notifier, alive: Vec<Arc<AtomicU64>>) {
    let mats = alive.len();
    let look = notifier
        .watchdog_interval()
        .unwrap_or(Duration::from_secs(1))
        .min(Duration::from_secs(1));
    let mut last: Vec<u64> = vec![0; mats];
    let mut ready = false;
    let mut since_ping = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(look).await;
        let now: Vec<u64> = alive.iter().map(|a| a.load(Ordering::Relaxed)).collect();
        if !ready && now.iter().all(|&n| n > 0) {
            notifier.ready(&format!("{mats} mats running"));
            tracing::info!(mats, "ready");
            ready = true;
        }
        if let Some(interval) = notifier.watchdog_interval() {
            let all_moved = now.iter().zip(&last).all(|(&n, &l)| n > l || n == u64::MAX);
            if ready && since_ping.elapsed() >= interval / 2 {
                if all_moved {
                    notifier.watchdog();
                    last = now;
                    since_ping = tokio::time::Instant::now();
                } else {
                    tracing::warn!("a mat made no progress since the last watchdog ping: not pinging");
                }
            }
        }
    }
}
