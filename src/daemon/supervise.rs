//! One mat on its own thread: its source opened, fed through the pipeline,
//! and on a failure the mat marked unavailable, a wait (backoff), the
//! source opened again. The pipeline, with the person's reference, set and
//! counters, outlives its sources: a sensor fault costs frames, not state.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::pipeline::Pipeline;
use crate::config::{Config, MatEntry};
use crate::daemon::backoff::Backoff;
use crate::outbox::MatLink;
use crate::sources::{self, Opened};

/// A source that ran this long before failing failed anew: its backoff
/// starts again from the shortest wait.
pub const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// Reopening a failed source: 0.5 s doubling up to 30 s.
pub fn backoff() -> Backoff {
    Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
}

/// Runs `mat` until `stop` (or until its source ends). `alive` is bumped
/// whenever the mat makes progress (a frame, a retry) for the watchdog.
pub fn mat(config: &Config, mat: &MatEntry, speed: f64, link: &MatLink, stop: &AtomicBool, alive: &AtomicU64) {
    let mut pipeline = match Pipeline::new(sources::grid_of(config), &config.detector) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(mat = mat.id, "cannot start the detector: {e}");
            return;
        }
    };
    pipeline
        .tracker_mut()
        .set_athlete_grace(Duration::from_secs_f64(config.athletes.grace_s));
    // The buzzer and LED: a mat runs without them rather than not at all.
    match crate::daemon::cue::for_mat(mat, &crate::daemon::cue::emulated_gpio()) {
        Ok(cue) => pipeline.set_cue(cue),
        Err(e) => tracing::error!(mat = mat.id, "no cue at the mat: {e}"),
    }
    link.set_state(pipeline.state());
    let mut backoff = backoff();
    let mut open: Option<Opened> = None;
    while !stop.load(Ordering::Relaxed) {
        alive.fetch_add(1, Ordering::Relaxed);
        if open.is_none() {
            match sources::open(config, mat, speed) {
                Ok(o) => open = Some(o),
                Err(e) => {
                    wait_after_failure(mat, link, stop, alive, &mut backoff, &e);
                    continue;
                }
            }
        }
        let Some(opened) = open.as_mut() else { continue };
        let overruns_before = pipeline.state().overruns;
        let started = Instant::now();
        let sampler = opened.sampler.as_ref();
        let result = pipeline.feed(opened.source.as_mut(), link, stop, |p| {
            alive.fetch_add(1, Ordering::Relaxed);
            // The sampler's figures sit behind a lock and change slowly: a
            // look every 256 frames (a quarter second at 1 kHz) is enough.
            if let Some(sampler) = sampler.filter(|_| p.figures().frames % 256 == 0) {
                let stats = sampler.stats();
                let overruns = overruns_before + stats.overruns;
                p.tracker_mut().set_overruns(overruns);
                link.metrics()
                    .sampler(overruns, stats.jitter_p50_us, stats.jitter_p99_us);
            }
        });
        if started.elapsed() >= HEALTHY_RUN {
            // The source ran well for a while: the next failure is a new one.
            // (Frames alone are not enough: a recording bad at its third
            // line gives two every time.)
            backoff.reset();
        }
        match result {
            Ok(true) => break,
            Ok(false) => {
                tracing::info!(mat = mat.id, "source ended");
                break;
            }
            Err(e) => {
                // A sampler stops after a run of failed scans: open the
                // device again. Other sources go on where they were.
                if open.as_ref().is_some_and(|o| o.sampler.is_some()) {
                    if let Some(sampler) = open.take().and_then(|o| o.sampler) {
                        sampler.stop();
                    }
                }
                wait_after_failure(mat, link, stop, alive, &mut backoff, &e);
            }
        }
    }
    if backoff.failures() > 0 {
        tracing::info!(mat = mat.id, "stopped after {} source failures", backoff.failures());
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
    backoff: &mut Backoff,
    error: &dyn std::fmt::Display,
) {
    let wait = backoff.fail();
    let failures = backoff.failures();
    link.set_available(false);
    link.metrics().source_failures.fetch_add(1, Ordering::Relaxed);
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
    fn reopening_waits_from_half_a_second_doubling_up_to_thirty() {
        let mut b = backoff();
        let waits: Vec<f64> = (1..=9).map(|_| b.fail().as_secs_f64()).collect();
        assert_eq!(waits, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
    }
}
