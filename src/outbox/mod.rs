//! The outbox: what the mats hand to the publisher, and what the publisher
//! hands back.
//!
//! - events go into the [`store`] on disk ([`MatLink::emit`]) and leave it
//!   only when the broker has acknowledged them;
//! - each mat's latest state and availability sit in a slot, versioned, for
//!   the publisher to publish on change (rate-limited);
//! - commands for a mat wait in its channel until its thread takes them.
//!
//! Mat threads never wait for the network: `emit` appends to the store (a
//! disk write; synced by a background thread, group commit) and wakes the
//! publisher.

pub mod store;

pub use store::{Lost, Record, Recovery, Store, SyncMode};

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::Notify;

use crate::event::Event;
use crate::repeated::Repeated;
use crate::wire::payload::{self, OutboxFigures};
use crate::wire::{Command, MatState};

/// One mat, as the publisher sees it.
struct MatSlot {
    id: String,
    state: Mutex<(MatState, u64)>,
    available: Mutex<(bool, u64)>,
    commands: Mutex<Sender<Command>>,
    finished: AtomicBool,
}

struct Shared {
    store: Mutex<Store>,
    wake: Notify,
    mats: Vec<MatSlot>,
    /// (records to sync, stop) for the background syncer.
    sync: (Mutex<(bool, bool)>, Condvar),
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The publisher's end: the store and every mat's slot. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

/// A mat's end, for the thread that runs its pipeline.
pub struct MatLink {
    shared: Arc<Shared>,
    index: usize,
    commands: Receiver<Command>,
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
    /// The outbox over `store` with these mats (ids checked by the caller);
    /// returns the mats' links in the same order.
    pub fn new(store: Store, mats: &[String]) -> (Outbox, Vec<MatLink>) {
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
            });
            receivers.push(rx);
        }
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            wake: Notify::new(),
            mats: slots,
            sync: (Mutex::new((false, false)), Condvar::new()),
        });
        // Group commit: one sync for whatever was appended meanwhile, off
        // the mats' threads and outside the store's lock.
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
                let handle = syncer.store().take_sync();
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

    /// The store, locked (keep it short: the mats append through it).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.shared.store()
    }

    /// Events waiting for the broker's acknowledgement.
    pub fn queued(&self) -> u64 {
        self.shared.store().queued()
    }

    /// Resolves when a mat has put something in (an event, a state, its
    /// availability, its end).
    pub async fn changed(&self) {
        self.shared.wake.notified().await
    }

    /// Every mat's slot now, with its outbox figures.
    pub fn views(&self) -> Vec<MatView> {
        let store = self.shared.store();
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
                        queued_events: store.queued_for(&m.id),
                        dropped_events: store.dropped_for(&m.id),
                    },
                }
            })
            .collect()
    }

    /// Hands a command to mat `mat`'s thread; false if there is no such mat.
    pub fn command(&self, mat: &str, command: Command) -> bool {
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

    /// Syncs and closes the store cleanly; stops the background syncer.
    pub fn close(&self) {
        {
            let (m, cv) = &self.shared.sync;
            m.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
            cv.notify_all();
        }
        if let Err(e) = self.shared.store().close() {
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

    /// Puts an event in the store for delivery; returns its `seq`. Never
    /// waits for the network. An event the store cannot write is lost: its
    /// seq is spent and it is counted in `dropped_events` (the warning is
    /// rate-limited).
    pub fn emit(&self, event: &Event) -> Option<u64> {
        let mat = self.id();
        let now = SystemTime::now();
        let result = self
            .shared
            .store()
            .append(mat, |seq| payload::event_envelope(event, mat, seq, now).into_bytes());
        {
            let (m, cv) = &self.shared.sync;
            m.lock().unwrap_or_else(|p| p.into_inner()).0 = true;
            cv.notify_one();
        }
        self.shared.wake.notify_one();
        match result {
            Ok(a) => Some(a.seq),
            Err(lost) => {
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
        if a.0 != on || a.1 == 0 {
            a.0 = on;
            a.1 += 1;
            drop(a);
            self.shared.wake.notify_one();
        }
    }

    /// The next command received for this mat, if any.
    pub fn try_command(&self) -> Option<Command> {
        self.commands.try_recv().ok()
    }

    /// The mat's source ended: it goes `offline`.
    pub fn finish(&self) {
        self.set_available(false);
        self.slot().finished.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Phase;

    #[test]
    fn mats_put_events_state_and_availability_in_and_commands_come_out() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), 1 << 20).unwrap();
        let (outbox, links) = Outbox::new(store, &["a".into(), "b".into()]);
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
        assert!(outbox.command("a", Command::ResetCounters));
        assert!(!outbox.command("c", Command::ResetCounters));
        assert_eq!(links[0].try_command(), Some(Command::ResetCounters));
        assert_eq!(links[1].try_command(), None);
        assert!(!outbox.all_finished());
        links[0].finish();
        links[1].finish();
        assert!(outbox.all_finished());
        assert!(!outbox.views()[0].available);
        outbox.close();
    }
}
