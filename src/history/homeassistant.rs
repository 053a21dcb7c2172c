//! What Home Assistant is told of the athletes, kept current on a thread of
//! its own (the store is blocking): the roster, for every mat's athlete
//! select, and with `[athletes] home_assistant` each athlete's figures for
//! their device's sensors. The publisher gets them through a watch channel
//! and says what changed.
//!
//! Cheap by design (16 mats, a Pi): the roster comes from the handle's
//! cache, and an athlete's figures (their whole history) are read again
//! only when their session is over: when the mat they were named on is
//! left, or names someone else; once the writer has caught up (or after
//! [`WRITER_LAG_MAX`]). Besides, every athlete's every [`RECOMPUTE_ALL`] (a
//! new week, a session claimed from the pages). Reading them all every few
//! seconds instead cost 12 % of a core for 16 athletes of 3,000 reps each.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::model::{SessionQuery, Who};
use super::Handle;
use crate::config::AthletesConfig;
use crate::outbox::Outbox;
use crate::wire::athlete_entities::{AthleteSensors, AthletesView};

/// How often the roster and the mats are looked at.
const EVERY: Duration = Duration::from_secs(1);
/// Everyone's figures at least this often.
const RECOMPUTE_ALL: Duration = Duration::from_secs(600);
/// A session over: its last events reach the history first (the writer's
/// backlog empty), or this long at most.
const WRITER_LAG_MAX: Duration = Duration::from_secs(30);
/// The writer's backlog is read a moment late: this long after the end.
const SETTLE: Duration = Duration::from_secs(2);

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
    // When each athlete's figures were read.
    let mut computed: HashMap<String, Instant> = HashMap::new();
    // Athletes whose session ended, since when.
    let mut ended: HashMap<String, Instant> = HashMap::new();
    // Each mat's athlete, while someone is on it.
    let mut training: HashMap<String, String> = HashMap::new();
    while !stop.load(Ordering::Relaxed) && !tx.is_closed() {
        let now = Instant::now();
        let mut view = tx.borrow().clone();
        view.roster = handle.roster();
        view.devices = config.home_assistant;
        if config.home_assistant {
            for m in outbox.views() {
                let now_on = m.state.athlete.filter(|_| m.state.occupied);
                let before = match now_on {
                    Some(id) => training.insert(m.id.clone(), id.clone()).filter(|b| *b != id),
                    None => training.remove(&m.id),
                };
                if let Some(id) = before {
                    ended.entry(id).or_insert(now);
                }
            }
            let caught_up = metrics.history_waiting.load(Ordering::Relaxed) == 0;
            let known = |id: &String| view.roster.iter().any(|e| e.id == *id);
            view.sensors.retain(|id, _| known(id));
            computed.retain(|id, _| known(id));
            ended.retain(|id, _| known(id));
            for e in &view.roster {
                let due = match computed.get(&e.id) {
                    None => true,
                    Some(at) => {
                        now.duration_since(*at) >= RECOMPUTE_ALL
                            || ended
                                .get(&e.id)
                                .map(|t| now.duration_since(*t))
                                .is_some_and(|d| (caught_up && d >= SETTLE) || d >= WRITER_LAG_MAX)
                    }
                };
                if !due {
                    continue;
                }
                match sensors(&handle, &config, &e.id) {
                    Ok(Some(s)) => {
                        view.sensors.insert(e.id.clone(), s);
                        computed.insert(e.id.clone(), now);
                        ended.remove(&e.id);
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
