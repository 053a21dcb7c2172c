//! The history writer: the events the outbox keeps safe, into the store.
//!
//! The outbox keeps every record until both the broker and the history have
//! it ([`crate::outbox::Journal::follow_history`]), so a database that is away
//! (PostgreSQL down for an hour, a locked SQLite file) costs time, not reps:
//! the writer retries with backoff and carries on from its cursor. A batch is
//! one transaction; the store writes each gateway, mat and `seq` once, so a
//! batch handed again after a crash changes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::model::{HistoryEvent, HistoryKind, RepRecord};
use super::Handle;
use crate::contract::event::{Event, Phase};
use crate::daemon::backoff::Backoff;
use crate::outbox::{Outbox, OutboxRecord};
use crate::wire::payload::parse_rfc3339_ms;

/// Records per transaction.
const BATCH: usize = 512;
/// How often an idle writer looks for new records.
const IDLE: Duration = Duration::from_millis(200);

/// What of an outbox record the history keeps (`None`: nothing, such as an
/// arch, or a record that does not read as an event).
pub fn history_event(gateway: &str, record: &OutboxRecord) -> Option<HistoryEvent> {
    let v: Value = serde_json::from_slice(&record.payload).ok()?;
    let athlete = v.get("athlete").and_then(Value::as_str).map(String::from);
    let time_ms = v.get("time").and_then(Value::as_str).and_then(parse_rfc3339_ms)?;
    let what = match serde_json::from_value::<Event>(v).ok()? {
        Event::Session {
            phase: Phase::Start, ..
        } => HistoryKind::SessionStart,
        Event::Session { phase: Phase::End, .. } => HistoryKind::SessionEnd,
        Event::Rep(r) => HistoryKind::Rep(RepRecord::from_event(record.seq, time_ms, &r)),
        _ => return None,
    };
    Some(HistoryEvent {
        gateway: gateway.to_string(),
        mat: record.mat.clone(),
        seq: record.seq,
        time_ms,
        athlete,
        what,
    })
}

/// How often the roster's cache is read again.
const ROSTER_EVERY: Duration = Duration::from_secs(1);

/// Runs until `stop` is set and everything the outbox had is written (or the
/// store is unreachable at that moment: the outbox keeps the rest for the
/// next run). Keeps the roster's cache of `history` fresh meanwhile.
pub fn run(outbox: Outbox, gateway: String, history: Handle, stop: Arc<AtomicBool>) {
    let mut roster_read = std::time::Instant::now() - ROSTER_EVERY;
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let metrics = outbox.metrics().clone();
    loop {
        if roster_read.elapsed() >= ROSTER_EVERY {
            roster_read = std::time::Instant::now();
            if let Err(e) = history.refresh_roster() {
                tracing::debug!("history: cannot read the roster: {e}");
            }
        }
        let (batch, (waiting, dropped)) = {
            let store = outbox.journal();
            (store.history_next(BATCH), store.history_backlog())
        };
        metrics.history_waiting.store(waiting, Ordering::Relaxed);
        metrics.history_dropped.store(dropped, Ordering::Relaxed);
        let stopping = stop.load(Ordering::Relaxed);
        if batch.is_empty() {
            if stopping {
                return;
            }
            std::thread::sleep(IDLE);
            continue;
        }
        let events: Vec<HistoryEvent> = batch.iter().filter_map(|r| history_event(&gateway, r)).collect();
        let written = history.with(|s| s.write(&events));
        match written {
            Ok(()) => {
                let next = batch.last().map_or(0, OutboxRecord::next_offset);
                outbox.journal().history_done(next);
                metrics
                    .history_written
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                backoff.reset();
            }
            Err(e) => {
                metrics.history_failures.fetch_add(1, Ordering::Relaxed);
                let wait = backoff.fail();
                tracing::warn!(
                    waiting = batch.len(),
                    retry_in_s = wait.as_secs_f64(),
                    "history: cannot write ({e}); the outbox keeps the events"
                );
                if stopping {
                    return;
                }
                wait_or_stop(wait, &stop);
            }
        }
    }
}

/// Waits `d`, or less once `stop` is set.
fn wait_or_stop(d: Duration, stop: &AtomicBool) {
    let until = std::time::Instant::now() + d;
    while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(IDLE.min(until.saturating_duration_since(std::time::Instant::now())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, payload: &str) -> OutboxRecord {
        OutboxRecord {
            offset: seq * 100,
            size: 100,
            mat: "m1".into(),
            seq,
            payload: payload.as_bytes().to_vec(),
        }
    }

    #[test]
    fn envelopes_become_history_events() {
        let rep = Event::test_rep(2, 3, true, 3200);
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_709_658_249_123);
        let env = crate::wire::payload::event_envelope(&rep, "m1", 9, at, Some("a-1"));
        let e = history_event("g1", &record(9, &env)).unwrap();
        assert_eq!((e.gateway.as_str(), e.mat.as_str(), e.seq), ("g1", "m1", 9));
        assert_eq!((e.time_ms, e.athlete.as_deref()), (1_709_658_249_123, Some("a-1")));
        match e.what {
            HistoryKind::Rep(r) => assert_eq!((r.set, r.rep, r.perfect, r.descent_ms, r.seq), (2, 3, true, 3200, 9)),
            other => panic!("{other:?}"),
        }
        let start = crate::wire::payload::event_envelope(
            &Event::Session {
                t_ms: 1,
                phase: Phase::Start,
            },
            "m1",
            1,
            at,
            None,
        );
        let e = history_event("g1", &record(1, &start)).unwrap();
        assert_eq!((e.what, e.athlete), (HistoryKind::SessionStart, None));
        let arch = crate::wire::payload::event_envelope(&Event::test_arch(500, Phase::Start), "m1", 2, at, None);
        assert_eq!(
            history_event("g1", &record(2, &arch)),
            None,
            "arches live in their reps"
        );
        assert_eq!(history_event("g1", &record(3, "not json")), None);
    }
}
