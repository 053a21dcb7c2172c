//! What Home Assistant is told of the athletes, kept current on a thread of
//! its own (the store is blocking): the roster, for every mat's athlete
//! select, and with `[athletes] home_assistant` each athlete's figures for
//! their device's sensors. The publisher gets them through a watch channel
//! and says what changed.
//!
//! Cheap by design (16 mats, a Pi): the roster comes from the handle's
//! cache; an athlete's figures are read again only when they may have
//! changed (the writer wrote while they were on a mat, or a minute after),
//! at most every [`RECOMPUTE_MIN`], and every athlete's every
//! [`RECOMPUTE_ALL`] (a new week, a session claimed from the pages).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::model::{SessionQuery, Who};
use super::Handle;
use crate::config::AthletesConfig;
use crate::outbox::Outbox;
use crate::wire::athletes::{AthleteSensors, AthletesView};

/// How often the roster and the figures are looked at.
const EVERY: Duration = Duration::from_secs(1);
/// An athlete training: their figures at most this often.
pub const RECOMPUTE_MIN: Duration = Duration::from_secs(15);
/// Everyone's figures at least this often.
const RECOMPUTE_ALL: Duration = Duration::from_secs(600);
/// After leaving a mat, the writer may still be writing their reps.
const AFTER_LEAVING: Duration = Duration::from_secs(60);

/// One athlete's figures for their sensors, read from the store now.
pub fn sensors(handle: &Handle, config: &AthletesConfig, id: &str) -> super::store::Result<Option<AthleteSensors>> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    handle.with(|s| {
        let Some(athlete) = s.athlete(id)? else {
            return Ok(None);
        };
        let sessions = s.sessions(&SessionQuery::of(Who::Athlete(id.to_string())))?;
        let changes = s.load_changes(id)?;
        let f = super::figures::athlete(&sessions, &athlete.load, &changes, &config.thresholds(), now_ms, 1);
        Ok(Some(AthleteSensors::of(&f)))
    })
}

/// Runs until `stop` is set or the publisher is gone.
pub fn follow(
    handle: Handle,
    config: AthletesConfig,
    outbox: Outbox,
    tx: watch::Sender<AthletesView>,
    stop: Arc<AtomicBool>,
) {
    let metrics = outbox.metrics().clone();
    // Per athlete: when their figures were read, and the writer's count then.
    let mut computed: HashMap<String, (Instant, u64)> = HashMap::new();
    let mut on_mat: HashMap<String, Instant> = HashMap::new();
    while !stop.load(Ordering::Relaxed) && !tx.is_closed() {
        let now = Instant::now();
        let mut view = tx.borrow().clone();
        view.roster = handle.roster();
        view.devices = config.home_assistant;
        if config.home_assistant {
            for m in outbox.views() {
                if let Some(id) = m.state.athlete {
                    on_mat.insert(id, now);
                }
            }
            on_mat.retain(|_, seen| now.duration_since(*seen) < AFTER_LEAVING);
            let written = metrics.history_written.load(Ordering::Relaxed);
            view.sensors.retain(|id, _| view.roster.iter().any(|e| e.id == *id));
            computed.retain(|id, _| view.roster.iter().any(|e| e.id == *id));
            for e in &view.roster {
                let due = match computed.get(&e.id) {
                    None => true,
                    Some((at, seen)) => {
                        let age = now.duration_since(*at);
                        age >= RECOMPUTE_ALL || (on_mat.contains_key(&e.id) && *seen != written && age >= RECOMPUTE_MIN)
                    }
                };
                if !due {
                    continue;
                }
                match sensors(&handle, &config, &e.id) {
                    Ok(Some(s)) => {
                        view.sensors.insert(e.id.clone(), s);
                        computed.insert(e.id.clone(), (now, written));
                    }
                    Ok(None) => {}
                    // Tried again next time round; the others too.
                    Err(err) => {
                        tracing::debug!(athlete = e.id, "history: cannot read the figures: {err}");
                        break;
                    }
                }
            }
        }
        tx.send_if_modified(|v| {
            let changed = *v != view;
            if changed {
                *v = view;
            }
            changed
        });
        std::thread::sleep(EVERY);
    }
}
