//! `flatback run`: one process for a gateway and its mats.
//!
//! Each mat runs on a thread of its own: its source ([`sources`]), the
//! detector and its state ([`crate::mat::Pipeline`]), events into the
//! outbox. The publisher runs on tokio ([`crate::mqtt::serve`]). A source
//! that fails (an SPI error, a vanished device, a bus that stops answering)
//! marks its mat unavailable and is opened again with backoff; the process
//! and the other mats go on, and the mat's person, set and counters survive.

pub mod sources;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::config::{Config, MatEntry};
use crate::mat::Pipeline;
use crate::mqtt::publisher::MatLink;
use crate::mqtt::MatBody;
use crate::systemd::Notifier;

/// How `flatback run` was asked to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Simulated and replayed mats run this many times faster than real time.
    pub speed: f64,
    /// When to stop besides SIGTERM and SIGINT.
    pub stop: crate::mqtt::Stop,
}

/// Runs the gateway until SIGTERM or SIGINT.
pub fn run(config: &Config, options: &RunOptions, notifier: &Notifier) -> Result<()> {
    let mats = config.mats();
    let ids: Vec<String> = mats.iter().map(|m| m.id.clone()).collect();
    let bodies: Vec<MatBody> = mats
        .into_iter()
        .map(|mat| {
            let config = config.clone();
            let speed = options.speed;
            let body: MatBody = Box::new(move |link: MatLink, stop: Arc<AtomicBool>, alive: Arc<AtomicU64>| {
                supervise(&config, &mat, speed, &link, &stop, &alive)
            });
            body
        })
        .collect();
    tracing::info!(mats = ?ids, broker = %config.mqtt.url, "flatback running");
    crate::mqtt::serve(&config.mqtt, ids, bodies, false, options.stop.clone(), notifier)
}

/// The wait before opening a failed source again, after `failures` failures
/// in a row: 0.5 s doubling up to 30 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs_f64((0.5 * 2f64.powi(failures.saturating_sub(1).min(16) as i32)).min(30.0))
}

/// Runs one mat until `stop`: opens its source, feeds the pipeline, and on a
/// failure marks the mat unavailable, waits, and opens the source again.
fn supervise(config: &Config, mat: &MatEntry, speed: f64, link: &MatLink, stop: &AtomicBool, alive: &AtomicU64) {
    let grid = crate::frame::Grid::new(config.mat.rows, config.mat.cols);
    let mut pipeline = match Pipeline::new(grid, &config.detector) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(mat = mat.id, "cannot start the detector: {e}");
            return;
        }
    };
    link.set_state(pipeline.state());
    let mut failures = 0u32;
    let mut open: Option<sources::Opened> = None;
    while !stop.load(Ordering::Relaxed) {
        alive.fetch_add(1, Ordering::Relaxed);
        if open.is_none() {
            match sources::open(config, mat, speed) {
                Ok(o) => open = Some(o),
                Err(e) => {
                    failures += 1;
                    wait_after_failure(mat, link, stop, alive, failures, &e);
                    continue;
                }
            }
        }
        let Some(opened) = open.as_mut() else { continue };
        let overruns_before = pipeline.state().overruns;
        let frames_before = pipeline.figures().frames;
        let sampler = opened.sampler.as_ref();
        let result = pipeline.feed(opened.source.as_mut(), link, stop, |p| {
            alive.fetch_add(1, Ordering::Relaxed);
            // The sampler's figures sit behind a lock and change slowly: a
            // look every 256 frames (a quarter second at 1 kHz) is enough.
            if let Some(sampler) = sampler.filter(|_| p.figures().frames % 256 == 0) {
                p.tracker_mut().set_overruns(overruns_before + sampler.stats().overruns);
            }
        });
        if pipeline.figures().frames > frames_before {
            // Frames flowed: the next failure is a new one.
            failures = 0;
        }
        match result {
            Ok(true) => break,
            Ok(false) => {
                tracing::info!(mat = mat.id, "source ended");
                break;
            }
            Err(e) => {
                failures += 1;
                // A sampler stops after a run of failed scans: open the
                // device again. Other sources go on where they were.
                if open.as_ref().is_some_and(|o| o.sampler.is_some()) {
                    if let Some(sampler) = open.take().and_then(|o| o.sampler) {
                        sampler.stop();
                    }
                }
                wait_after_failure(mat, link, stop, alive, failures, &e);
            }
        }
    }
    if failures > 0 {
        tracing::info!(mat = mat.id, "stopped after {failures} source failures");
    }
    if let Some(sampler) = open.and_then(|o| o.sampler) {
        sampler.stop();
    }
    pipeline.finish(link);
}

/// After a failure: the mat is unavailable; wait (backoff) in short steps,
/// so a stop is seen at once and the watchdog sees this thread alive.
fn wait_after_failure(
    mat: &MatEntry,
    link: &MatLink,
    stop: &AtomicBool,
    alive: &AtomicU64,
    failures: u32,
    error: &crate::frame::SourceError,
) {
    let wait = backoff(failures);
    link.set_available(false);
    if failures == 1 || failures.is_power_of_two() {
        tracing::error!(
            mat = mat.id,
            failures,
            "source failed: {error}; mat unavailable, trying again in {:.1} s",
            wait.as_secs_f64()
        );
    }
    let until = Instant::now() + wait;
    while !stop.load(Ordering::Relaxed) {
        alive.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if now >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(100).min(until - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_up_to_thirty() {
        let waits: Vec<f64> = (1..=9).map(|n| backoff(n).as_secs_f64()).collect();
        assert_eq!(waits, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        assert_eq!(backoff(1000), Duration::from_secs(30));
    }
}
