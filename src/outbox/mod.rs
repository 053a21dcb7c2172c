//! The outbox: what the mats hand to the publisher, and what the publisher
//! hands back.
//!
//! - events go into the [`journal`] on disk ([`MatLink::emit`]) and leave it
//!   only when the broker has acknowledged them;
//! - each mat's latest state and availability sit in a slot, versioned, for
//!   the publisher to publish on change (rate-limited);
//! - commands for a mat wait in its channel until its thread takes them;
//! - each mat's live look (its latest raw frame and the detector's view of
//!   it, a few times a second) sits in a slot of its own for the web view;
//! - the gateway's figures ([`crate::daemon::metrics`]) are bumped on the way.
//!
//! Mat threads never wait for the network: `emit` appends to the journal (a
//! disk write; synced by a background thread, group commit) and wakes the
//! publisher.

pub mod journal;

pub use journal::{Journal, Lost, OutboxRecord, Recovery, SyncMode};

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::Notify;

use crate::contract::event::Event;
use crate::daemon::metrics::{MatMetrics, Registry};
use crate::daemon::repeated::Repeated;
use crate::wire::payload::{self, OutboxFigures};
use crate::wire::{MatCommand, MatState};

/// One mat, as the publisher sees it.
struct MatSlot {
    id: String,
    state: Mutex<(MatState, u64)>,
    available: Mutex<(bool, u64)>,
    commands: Mutex<Sender<MatCommand>>,
    finished: AtomicBool,
    live: Mutex<LiveLook>,
}

/// A mat's session as recorded while it lasted (for the web view's
/// pictures): a recording (gzip-compressed CSV, thinned) and its events.
#[derive(Debug, Clone)]
pub struct FinishedSession {
    pub mat: String,
    pub recording: Vec<u8>,
    pub events: Vec<Event>,
    pub started: SystemTime,
}

/// A mat's live look, for the web view: its latest raw frame and what the
/// detector made of it, handed over a few times a second (not per frame).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveLook {
    /// Bumped on every hand-over (0: nothing yet).
    pub version: u64,
    /// The frame's time on the source's clock.
    pub t_ms: u64,
    pub rows: usize,
    pub cols: usize,
    /// Raw ADC counts, row-major.
    pub counts: Vec<u16>,
    pub full_scale: u16,
    pub occupied: bool,
    /// The person's reference is taken: `contact` means something.
    pub settled: bool,
    pub in_arch: bool,
    /// Lumbar contact, share of the reference.
    pub contact: f32,
    /// The legs are being lowered now, for this long (source clock).
    pub descent_ms: Option<u64>,
}

struct OutboxShared {
    journal: Mutex<Journal>,
    wake: Notify,
    mats: Vec<MatSlot>,
    metrics: Arc<Registry>,
    /// Where mats hand their finished sessions (the web view's pictures);
    /// none: mats record nothing.
    sessions: Mutex<Option<std::sync::mpsc::SyncSender<FinishedSession>>>,
    /// (records to sync, stop) for the background syncer.
    sync: (Mutex<(bool, bool)>, Condvar),
}

impl OutboxShared {
    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The publisher's end: the journal and every mat's slot. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<OutboxShared>,
}

/// A mat's end, for the thread that runs its pipeline.
pub struct MatLink {
    shared: Arc<OutboxShared>,
    index: usize,
    commands: Receiver<MatCommand>,
    lost: Cell<Repeated>,
}

/// A mat's slot as the publisher reads it at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct MatView {
    pub id: String,
    pub state: MatState,
    /// Bumped on every change of `state`.
    pub state_version: u64,
    pub available: bool,
    /// Bumped on every change of `available` (0: never said).
    pub available_version: u64,
    pub figures: OutboxFigures,
}

impl Outbox {
    /// The outbox over `journal` with these mats (ids checked by the caller);
    /// returns the mats' links in the same order.
    pub fn new(journal: Journal, mats: &[String]) -> (Outbox, Vec<MatLink>) {
        let mut slots = Vec::new();
        let mut receivers = Vec::new();
        for id in mats {
            let (tx, rx) = std::sync::mpsc::channel();
            slots.push(MatSlot {
                id: id.clone(),
                state: Mutex::new((MatState::default(), 0)),
                available: Mutex::new((false, 0)),
                commands: Mutex::new(tx),
                finished: AtomicBool::new(false),
                live: Mutex::new(LiveLook::default()),
            });
            receivers.push(rx);
        }
        let shared = Arc::new(OutboxShared {
            journal: Mutex::new(journal),
            wake: Notify::new(),
            mats: slots,
            metrics: Arc::new(Registry::new(mats)),
            sessions: Mutex::new(None),
            sync: (Mutex::new((false, false)), Condvar::new()),
        });
        // Group commit: one sync for whatever was appended meanwhile, off
        // the mats' threads and outside the journal's lock.
        let syncer = shared.clone();
        let _ = std::thread::Builder::new()
            .name("outbox-sync".into())
            .spawn(move || loop {
                let (m, cv) = &syncer.sync;
                let mut flags = m.lock().unwrap_or_else(|p| p.into_inner());
                while !flags.0 && !flags.1 {
                    flags = cv.wait(flags).unwrap_or_else(|p| p.into_inner());
                }
                let stop = flags.1;
                flags.0 = false;
                drop(flags);
                let handle = syncer.journal().take_sync();
                if let Some(f) = handle {
                    if let Err(e) = f.sync_data() {
                        tracing::error!("outbox: cannot sync to disk: {e}");
                    }
                }
                if stop {
                    return;
                }
            });
        let links = receivers
            .into_iter()
            .enumerate()
            .map(|(index, commands)| MatLink {
                shared: shared.clone(),
                index,
                commands,
                lost: Cell::new(Repeated::default()),
            })
            .collect();
        (Outbox { shared }, links)
    }

    pub fn mat_ids(&self) -> Vec<String> {
        self.shared.mats.iter().map(|m| m.id.clone()).collect()
    }

    /// The journal, locked (keep it short: the mats append through it).
    pub fn journal(&self) -> MutexGuard<'_, Journal> {
        self.shared.journal()
    }

    /// The gateway's figures.
    pub fn metrics(&self) -> &Arc<Registry> {
        &self.shared.metrics
    }

    /// The outbox's figures into [`Outbox::metrics`] (queued and dropped
    /// events), read now.
    pub fn refresh_metrics(&self) {
        let (queued, dropped) = {
            let journal = self.shared.journal();
            (journal.queued(), journal.dropped())
        };
        self.shared.metrics.outbox_queued.store(queued, Ordering::Relaxed);
        self.shared.metrics.outbox_dropped.store(dropped, Ordering::Relaxed);
    }

    /// Mat `mat`'s live look, if it is one of this gateway's and its version
    /// is newer than `seen`.
    pub fn live(&self, mat: &str, seen: u64) -> Option<LiveLook> {
        let slot = self.shared.mats.iter().find(|m| m.id == mat)?;
        let live = slot.live.lock().unwrap_or_else(|p| p.into_inner());
        (live.version > seen).then(|| live.clone())
    }

    /// Mats that start a session from now on record it and hand it to
    /// `sink` when it ends.
    pub fn record_sessions(&self, sink: std::sync::mpsc::SyncSender<FinishedSession>) {
        *self.shared.sessions.lock().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    /// Events waiting for the broker's acknowledgement.
    pub fn queued(&self) -> u64 {
        self.shared.journal().queued()
    }

    /// Resolves when a mat has put something in (an event, a state, its
    /// availability, its end).
    pub async fn changed(&self) {
        self.shared.wake.notified().await
    }

    /// Every mat's slot now, with its outbox figures.
    pub fn views(&self) -> Vec<MatView> {
        let journal = self.shared.journal();
        self.shared
            .mats
            .iter()
            .map(|m| {
                let (state, state_version) = m.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let (available, available_version) = *m.available.lock().unwrap_or_else(|p| p.into_inner());
                MatView {
                    id: m.id.clone(),
                    state,
                    state_version,
                    available,
                    available_version,
                    figures: OutboxFigures {
                        queued_events: journal.queued_for(&m.id),
                        dropped_events: journal.dropped_for(&m.id),
                    },
                }
            })
            .collect()
    }

    /// Hands a command to mat `mat`'s thread; false if there is no such mat.
    pub fn command(&self, mat: &str, command: MatCommand) -> bool {
        match self.shared.mats.iter().find(|m| m.id == mat) {
            Some(slot) => {
                let _ = slot.commands.lock().unwrap_or_else(|p| p.into_inner()).send(command);
                true
            }
            None => false,
        }
    }

    /// Every mat's source has ended.
    pub fn all_finished(&self) -> bool {
        self.shared.mats.iter().all(|m| m.finished.load(Ordering::Acquire))
    }

    /// Syncs and closes the journal cleanly; stops the background syncer.
    pub fn close(&self) {
        {
            let (m, cv) = &self.shared.sync;
            m.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
            cv.notify_all();
        }
        if let Err(e) = self.shared.journal().close() {
            tracing::warn!("outbox: cannot close cleanly: {e}");
        }
    }
}

impl MatLink {
    pub fn id(&self) -> &str {
        &self.shared.mats[self.index].id
    }

    fn slot(&self) -> &MatSlot {
        &self.shared.mats[self.index]
    }

    /// This mat's figures.
    pub fn metrics(&self) -> &MatMetrics {
        &self.shared.metrics.mats[self.index]
    }

    /// Where finished sessions go, if anyone draws them.
    pub fn session_sink(&self) -> Option<std::sync::mpsc::SyncSender<FinishedSession>> {
        self.shared.sessions.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Hands the mat's live look over: `update` fills it in place (keep it
    /// short: the web view reads it under the same lock). Called a few times
    /// a second, not per frame.
    pub fn set_live(&self, update: impl FnOnce(&mut LiveLook)) {
        let mut live = self.slot().live.lock().unwrap_or_else(|p| p.into_inner());
        update(&mut live);
        live.version += 1;
    }

    /// Puts an event in the journal for delivery; returns its `seq`. Never
    /// waits for the network. An event the journal cannot write is lost: its
    /// seq is spent and it is counted in `dropped_events` (the warning is
    /// rate-limited).
    pub fn emit(&self, event: &Event) -> Option<u64> {
        let mat = self.id();
        let now = SystemTime::now();
        // Who is on the mat, as the pipeline last said with `set_state`.
        let athlete = self
            .slot()
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .athlete
            .clone();
        let result = self.shared.journal().append(mat, |seq| {
            payload::event_envelope(event, mat, seq, now, athlete.as_deref()).into_bytes()
        });
        {
            let (m, cv) = &self.shared.sync;
            m.lock().unwrap_or_else(|p| p.into_inner()).0 = true;
            cv.notify_one();
        }
        self.shared.wake.notify_one();
        let metrics = &self.shared.metrics;
        match result {
            Ok(a) => {
                metrics.mats[self.index].event(event);
                metrics.outbox_accepting.store(true, Ordering::Relaxed);
                Some(a.seq)
            }
            Err(lost) => {
                metrics.outbox_failures.fetch_add(1, Ordering::Relaxed);
                metrics.outbox_accepting.store(false, Ordering::Relaxed);
                let mut warning = self.lost.take();
                if let Some(suppressed) = warning.hit(std::time::Instant::now()) {
                    tracing::error!(
                        mat,
                        seq = lost.seq,
                        suppressed,
                        "outbox: {lost}; counted in dropped_events"
                    );
                }
                self.lost.set(warning);
                None
            }
        }
    }

    /// The mat's current state; published on change (rate-limited).
    pub fn set_state(&self, state: &MatState) {
        let mut s = self.slot().state.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 != *state {
            s.0 = state.clone();
            s.1 += 1;
            drop(s);
            self.shared.wake.notify_one();
        }
    }

    /// Whether the mat delivers frames (its availability topic).
    pub fn set_available(&self, on: bool) {
        let mut a = self.slot().available.lock().unwrap_or_else(|p| p.into_inner());
        self.metrics().available.store(on, Ordering::Relaxed);
        if a.0 != on || a.1 == 0 {
            a.0 = on;
            a.1 += 1;
            drop(a);
            self.shared.wake.notify_one();
        }
    }

    /// The next command received for this mat, if any.
    pub fn try_command(&self) -> Option<MatCommand> {
        self.commands.try_recv().ok()
    }

    /// The mat's source ended: it goes `offline`.
    pub fn finish(&self) {
        self.set_available(false);
        self.metrics().finished.store(true, Ordering::Relaxed);
        self.slot().finished.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::event::Phase;

    #[test]
    fn mats_put_events_state_and_availability_in_and_commands_come_out() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        let (outbox, links) = Outbox::new(journal, &["a".into(), "b".into()]);
        assert_eq!(outbox.views()[0].available_version, 0, "nothing said yet");
        let seq = links[1].emit(&Event::Session {
            t_ms: 5,
            phase: Phase::Start,
        });
        assert_eq!(seq, Some(1));
        links[1].set_available(true);
        let mut state = MatState {
            occupied: true,
            ..MatState::default()
        };
        links[1].set_state(&state);
        links[1].set_state(&state);
        let v = &outbox.views()[1];
        assert_eq!((v.available, v.available_version, v.state_version), (true, 1, 1));
        assert!(v.state.occupied);
        assert_eq!(v.figures.queued_events, 1);
        assert_eq!(outbox.views()[0].figures.queued_events, 0);
        state.arching = true;
        links[1].set_state(&state);
        assert_eq!(outbox.views()[1].state_version, 2, "a change bumps the version");
        assert!(outbox.command("a", MatCommand::ResetCounters));
        assert!(!outbox.command("c", MatCommand::ResetCounters));
        assert_eq!(links[0].try_command(), Some(MatCommand::ResetCounters));
        assert_eq!(links[1].try_command(), None);
        assert!(!outbox.all_finished());
        links[0].finish();
        links[1].finish();
        assert!(outbox.all_finished());
        assert!(!outbox.views()[0].available);
        outbox.close();
    }
}
