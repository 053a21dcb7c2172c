//! One mat's pipeline: frames from a source through the detector, events
//! into the outbox, the mat's state kept up to date, commands applied.
//!
//! [`MatTracker`] is the pure part: it follows the events and the
//! detector's live figures into a [`MatState`], applies commands, and
//! numbers sets across a command-driven restart of the detector.
//!
//! Who is on the mat: `athlete` names the athlete until they get up and
//! nobody lies down again within the grace time (`[athletes] grace_s`); an
//! athlete named while the mat is empty has the same grace to lie down.
//! Every event and the mat's state carry the id.
//!
//! Commands: `reset_counters` zeroes the reps, perfect reps and arches
//! counters. `new_set` and `rereference` restart the detector on the spot
//! (the detector has no hook for either yet): the set in progress is closed
//! (its `set` event is published), the new detector learns the person's
//! reference afresh, and the next reps count as the next set. The restart is
//! invisible otherwise: the session goes on (no `session` end and start), and
//! set numbers continue.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::contract::event::{Event, Phase};
use crate::contract::frame::{Frame, FrameSource, Grid, SourceError};
use crate::daemon::cue::{Look, MatCue};
use crate::detector::{Detector, DetectorConfig};
use crate::outbox::MatLink;
use crate::wire::{MatCommand, MatState};

/// How often the mat's live look (its raw frame, for the web view's grid)
/// is handed over, milliseconds of wall time.
const LIVE_EVERY_MS: u64 = 100;

/// `[athletes] grace_s`'s default.
const ATHLETE_GRACE_US: u64 = 120_000_000;

/// If the restarted detector sees nobody within this time, the session the
/// restart kept open is ended after all.
const RESTART_GRACE_US: u64 = 3_000_000;

/// What the pipeline must do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    /// Finish the detector (events through [`MatTracker::on_event`]), then
    /// call [`MatTracker::restarted`] and build a new one.
    RestartDetector,
}

#[derive(Debug, Clone, PartialEq)]
struct Restart {
    at_us: u64,
    /// The old detector's session end, held back.
    held_end: Option<Event>,
    finishing: bool,
}

/// The mat's state, followed from events and the detector.
#[derive(Debug, Clone, Default)]
pub struct MatTracker {
    state: MatState,
    set_offset: u32,
    restart: Option<Restart>,
    faults: BTreeSet<(usize, usize)>,
    window_start_us: Option<u64>,
    window_frames: u64,
    /// Since when the mat has been empty with an athlete still named.
    vacant_since_us: Option<u64>,
    /// How long an athlete stays named on an empty mat.
    athlete_grace_us: u64,
}

impl MatTracker {
    pub fn new() -> Self {
        MatTracker {
            athlete_grace_us: ATHLETE_GRACE_US,
            ..MatTracker::default()
        }
    }

    /// How long an athlete stays named after getting up (`[athletes]
    /// grace_s`).
    pub fn set_athlete_grace(&mut self, grace: std::time::Duration) {
        self.athlete_grace_us = grace.as_micros() as u64;
    }

    pub fn state(&self) -> &MatState {
        &self.state
    }

    /// The sampler's overruns (set by a source that knows them).
    pub fn set_overruns(&mut self, overruns: u64) {
        self.state.overruns = overruns;
    }

    /// Follows one detector event; returns the event to publish (its set
    /// renumbered after a restart), or `None` when a restart hides it.
    pub fn on_event(&mut self, e: &Event) -> Option<Event> {
        let mut e = e.clone();
        match &mut e {
            Event::Session { phase, .. } => match phase {
                Phase::Start => {
                    if let Some(r) = self.restart.take() {
                        if !r.finishing {
                            // The same person, seen again by the new detector.
                            return None;
                        }
                        self.restart = Some(r);
                    }
                    self.set_offset = 0;
                    self.vacant_since_us = None;
                }
                Phase::End => {
                    if let Some(r) = self.restart.as_mut() {
                        if r.finishing {
                            r.held_end = Some(e);
                            return None;
                        }
                    }
                    self.vacant_since_us = Some(e.t_ms() * 1000);
                }
            },
            Event::Rep(r) => {
                r.set += self.set_offset;
                self.state.last_descent_s = Some((r.descent_ms as f64 / 100.0).round() / 10.0);
            }
            Event::Set(s) => s.set += self.set_offset,
            Event::Progress { set, .. } => *set += self.set_offset,
            Event::Health { row, col, ok, .. } => {
                if *ok {
                    self.faults.remove(&(*row, *col));
                } else {
                    self.faults.insert((*row, *col));
                }
                self.state.taxel_faults = self.faults.len() as u32;
            }
            Event::Arch(_) => {}
        }
        self.state.counters.follow(&e);
        Some(e)
    }

    /// Applies a command at `t_us` (the current frame's time).
    pub fn command(&mut self, c: MatCommand, t_us: u64, occupied: bool) -> Action {
        match c {
            MatCommand::ResetCounters => {
                self.state.counters.reset_totals();
                Action::None
            }
            MatCommand::Athlete(id) => {
                tracing::info!(athlete = id.as_deref().unwrap_or("nobody"), "athlete on the mat");
                self.state.athlete = id;
                self.vacant_since_us = (!occupied).then_some(t_us);
                Action::None
            }
            MatCommand::NewSet | MatCommand::Rereference => {
                if !occupied {
                    tracing::info!(command = %c, "nobody on the mat: nothing to restart");
                    return Action::None;
                }
                self.restart = Some(Restart {
                    at_us: t_us,
                    held_end: None,
                    finishing: true,
                });
                Action::RestartDetector
            }
        }
    }

    /// The old detector is finished: sets continue from the last one.
    pub fn restarted(&mut self) {
        if let Some(r) = self.restart.as_mut() {
            r.finishing = false;
        }
        self.set_offset = self.state.counters.set;
    }

    /// Follows the detector after a frame; returns an event that must be
    /// published now (a held-back session end when nobody came back).
    pub fn on_frame(&mut self, t_us: u64, occupied: bool, in_arch: bool, contact: f32) -> Option<Event> {
        let start = *self.window_start_us.get_or_insert(t_us);
        self.window_frames += 1;
        let span = t_us.saturating_sub(start);
        if span >= 1_000_000 {
            let rate = (self.window_frames - 1) as f64 * 1e6 / span as f64;
            self.state.sample_rate_hz = (rate * 10.0).round() / 10.0;
            self.window_start_us = Some(t_us);
            self.window_frames = 1;
        }
        let mut out = None;
        let restarting = match &self.restart {
            Some(r) if !r.finishing && t_us.saturating_sub(r.at_us) > RESTART_GRACE_US && !occupied => {
                let r = self.restart.take().unwrap();
                out = r.held_end;
                self.set_offset = 0;
                if out.is_some() {
                    self.vacant_since_us = Some(t_us);
                }
                false
            }
            Some(r) => !r.finishing,
            None => false,
        };
        let occupied = occupied || restarting;
        if let Some(since) = self.vacant_since_us {
            if !occupied && t_us.saturating_sub(since) >= self.athlete_grace_us {
                // Got up and nobody lay down within the grace: the next
                // person is a guest.
                self.state.athlete = None;
                self.vacant_since_us = None;
            }
        }
        self.state.occupied = occupied;
        self.state.arching = in_arch;
        self.state.contact = occupied.then(|| (contact.clamp(0.0, 5.0) * 100.0).round() as u32);
        out
    }
}

/// How a mat's run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatRun {
    pub frames: u64,
    pub events: u64,
}

/// A mat's detector and state, kept across its sources: when a source
/// fails (an SPI error, a vanished device) the daemon opens it again and
/// feeds the same pipeline, so a sensor fault costs frames, not the person's
/// reference, set or counters.
pub struct Pipeline {
    detector: Detector,
    tracker: MatTracker,
    frame: Frame,
    events: Vec<Event>,
    run: MatRun,
    /// The buzzer and LED at the mat (`[mats.cue]`), driven on the frame.
    cue: Option<MatCue>,
    /// When the live look is handed over next ([`crate::daemon::metrics::now_ms`]).
    next_live_ms: u64,
    /// The session recorded for the web view's pictures, when it draws them.
    #[cfg(feature = "plot")]
    recorder: Option<crate::web::pictures::SessionRecorder>,
    #[cfg(feature = "plot")]
    recorder_checked: bool,
    /// Added to a source's timestamps: a source opened again (a sampler
    /// restarted, a recording replayed from its start) counts from zero,
    /// the detector's clock never goes back.
    offset_us: u64,
    /// The detector's time of the last frame...
    last_us: Option<u64>,
    /// ...and when the source that gave it stopped.
    left_at: Instant,
}

impl Pipeline {
    pub fn new(grid: Grid, config: &DetectorConfig) -> Result<Pipeline, crate::config::Invalid> {
        Ok(Pipeline {
            detector: Detector::new(grid, config.clone())?,
            tracker: MatTracker::new(),
            frame: Frame::zeroed(grid),
            events: Vec::with_capacity(16),
            run: MatRun::default(),
            cue: None,
            next_live_ms: 0,
            #[cfg(feature = "plot")]
            recorder: None,
            #[cfg(feature = "plot")]
            recorder_checked: false,
            offset_us: 0,
            last_us: None,
            left_at: Instant::now(),
        })
    }

    pub fn state(&self) -> &MatState {
        self.tracker.state()
    }

    /// Drives `cue` (the mat's buzzer and LED) from now on; `None`: no pin.
    pub fn set_cue(&mut self, cue: Option<MatCue>) {
        self.cue = cue;
    }

    pub fn tracker_mut(&mut self) -> &mut MatTracker {
        &mut self.tracker
    }

    /// Frames and events so far.
    pub fn figures(&self) -> MatRun {
        self.run
    }

    fn drain(&mut self, link: &MatLink) {
        let mut events = std::mem::take(&mut self.events);
        for e in events.drain(..) {
            if let Some(out) = self.tracker.on_event(&e) {
                link.emit(&out);
                self.run.events += 1;
                #[cfg(feature = "plot")]
                self.record_event(link, &out);
            }
        }
        // The buffer goes back, its capacity kept.
        self.events = events;
    }

    /// The session's events into its recording (sessions start recording
    /// once someone draws them).
    #[cfg(feature = "plot")]
    fn record_event(&mut self, link: &MatLink, e: &Event) {
        if !self.recorder_checked || (self.recorder.is_none() && matches!(e, Event::Session { .. })) {
            self.recorder_checked = true;
            self.recorder = link
                .session_sink()
                .map(|sink| crate::web::pictures::SessionRecorder::new(link.id(), self.detector.grid(), sink));
        }
        if let Some(r) = self.recorder.as_mut() {
            r.event(e);
        }
    }

    /// Feeds `source` through the detector, publishing through `link`, until
    /// the source ends (`Ok(false)`), `stop` is set (`Ok(true)`) or the
    /// source fails. The mat is `online` from its first frame. `on_frame` is
    /// called after every frame (the daemon's watchdog and figures).
    pub fn feed(
        &mut self,
        source: &mut dyn FrameSource,
        link: &MatLink,
        stop: &AtomicBool,
        on_frame: impl FnMut(&mut Pipeline),
    ) -> Result<bool, SourceError> {
        let result = self.feed_frames(source, link, stop, on_frame);
        self.left_at = Instant::now();
        if result.is_err() {
            // No frames for a while: the cue shows nothing rather than a
            // stale flat back.
            self.cue_off();
        }
        result
    }

    fn feed_frames(
        &mut self,
        source: &mut dyn FrameSource,
        link: &MatLink,
        stop: &AtomicBool,
        mut on_frame: impl FnMut(&mut Pipeline),
    ) -> Result<bool, SourceError> {
        let mut online = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(true);
            }
            if !source.next_into(&mut self.frame)? {
                return Ok(false);
            }
            if !online {
                // This source's first frame: it continues the detector's
                // clock from the last frame, by the time that passed.
                if let Some(last_us) = self.last_us {
                    let due = last_us + (self.left_at.elapsed().as_micros() as u64).max(1);
                    self.offset_us = due.saturating_sub(self.frame.t_us);
                }
                link.set_available(true);
                online = true;
            }
            self.frame.t_us += self.offset_us;
            self.last_us = Some(self.frame.t_us);
            self.run.frames += 1;
            while let Some(c) = link.try_command() {
                if self.tracker.command(c, self.frame.t_us, self.detector.occupied()) == Action::RestartDetector {
                    self.detector.finish(&mut self.events);
                    self.drain(link);
                    self.tracker.restarted();
                    self.detector.restart();
                }
                link.set_state(self.tracker.state());
            }
            self.detector.push(&self.frame, &mut self.events);
            let t_us = self.frame.t_us;
            let probe = self.detector.probe();
            if let Some(cue) = self.cue.as_mut() {
                // The person's cue first, on this frame, before the events
                // go anywhere.
                let look = Look {
                    t_us,
                    occupied: probe.occupied,
                    settled: probe.settled,
                    in_arch: probe.in_arch,
                    descent_ms: self.detector.descent_ms(),
                };
                cue.frame(&look, &self.events);
            }
            self.drain(link);
            let (occupied, in_arch, contact) = (probe.occupied, probe.in_arch, probe.contact);
            if let Some(held) = self.tracker.on_frame(t_us, occupied, in_arch, contact) {
                link.emit(&held);
                self.run.events += 1;
                #[cfg(feature = "plot")]
                self.record_event(link, &held);
            }
            #[cfg(feature = "plot")]
            if let Some(r) = self.recorder.as_mut() {
                r.frame(&self.frame);
            }
            let now_ms = link.metrics().frame();
            if now_ms >= self.next_live_ms {
                self.next_live_ms = now_ms + LIVE_EVERY_MS;
                self.hand_live(link, &probe);
            }
            on_frame(self);
            link.set_state(self.tracker.state());
        }
    }

    /// The mat's live look for the web view: the raw frame, the detector's
    /// view of it, the descent under way.
    fn hand_live(&self, link: &MatLink, probe: &crate::detector::Probe) {
        let (frame, grid, full_scale) = (&self.frame, self.detector.grid(), self.detector.config().full_scale());
        let descent_ms = self.detector.descent_ms();
        link.set_live(|live| {
            live.t_ms = frame.t_ms();
            live.rows = grid.rows;
            live.cols = grid.cols;
            live.counts.clear();
            live.counts.extend_from_slice(&frame.counts);
            live.full_scale = full_scale;
            live.occupied = probe.occupied;
            live.settled = probe.settled;
            live.in_arch = probe.in_arch;
            live.contact = probe.contact;
            live.descent_ms = descent_ms;
        });
    }

    /// The cue's pins all off.
    fn cue_off(&mut self) {
        if let Some(cue) = self.cue.as_mut() {
            cue.off(self.frame.t_us);
        }
    }

    /// The mat is done: close what is open (the set, the session) and say so.
    pub fn finish(mut self, link: &MatLink) -> MatRun {
        self.cue_off();
        self.detector.finish(&mut self.events);
        self.drain(link);
        self.tracker.on_frame(self.frame.t_us, false, false, 0.0);
        link.set_state(self.tracker.state());
        link.finish();
        self.run
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::event::SetEvent;

    fn rep(set: u32, rep: u32, perfect: bool) -> Event {
        Event::test_rep(set, rep, perfect, 3456)
    }

    fn session(phase: Phase) -> Event {
        Event::Session { t_ms: 0, phase }
    }

    #[test]
    fn counters_follow_reps_and_reset() {
        let mut t = MatTracker::new();
        t.on_event(&session(Phase::Start));
        t.on_event(&rep(1, 1, true));
        t.on_event(&rep(1, 2, false));
        let s = t.state();
        let c = s.counters;
        assert_eq!(
            (c.reps, c.perfect_reps, c.set, c.set_reps, c.set_perfect),
            (2, 1, 1, 2, 1)
        );
        assert_eq!(s.last_descent_s, Some(3.5));
        assert_eq!(t.command(MatCommand::ResetCounters, 0, true), Action::None);
        let c = t.state().counters;
        assert_eq!((c.reps, c.perfect_reps, c.set), (0, 0, 1));
    }

    #[test]
    fn a_restart_closes_the_set_and_numbering_continues_in_the_same_session() {
        let mut t = MatTracker::new();
        assert!(t.on_event(&session(Phase::Start)).is_some());
        t.on_event(&rep(1, 1, true));
        t.on_event(&rep(1, 2, true));
        assert_eq!(t.command(MatCommand::NewSet, 5_000_000, true), Action::RestartDetector);
        // The old detector's finish: the set goes out, the session end not.
        let set = Event::Set(SetEvent {
            t_ms: 5000,
            set: 1,
            reps: 2,
            perfect: 2,
            arches: 0,
        });
        assert_eq!(t.on_event(&set), Some(set.clone()));
        assert_eq!(t.on_event(&session(Phase::End)), None);
        t.restarted();
        assert!(t.on_frame(5_100_000, false, false, 1.0).is_none());
        assert!(t.state().occupied, "still occupied while the new detector looks");
        // The new detector sees the person again: no new session, set 2.
        assert_eq!(t.on_event(&session(Phase::Start)), None);
        match t.on_event(&rep(1, 1, false)) {
            Some(Event::Rep(r)) => assert_eq!((r.set, r.rep), (2, 1)),
            other => panic!("{other:?}"),
        }
        assert_eq!((t.state().counters.set, t.state().counters.reps), (2, 3));
        // A real new session starts numbering again.
        t.on_event(&session(Phase::End));
        t.on_event(&session(Phase::Start));
        match t.on_event(&rep(1, 1, true)) {
            Some(Event::Rep(r)) => assert_eq!(r.set, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_restart_with_nobody_back_ends_the_session_after_all() {
        let mut t = MatTracker::new();
        t.on_event(&session(Phase::Start));
        t.command(MatCommand::Rereference, 1_000_000, true);
        assert_eq!(t.on_event(&session(Phase::End)), None);
        t.restarted();
        assert!(t.on_frame(2_000_000, false, false, 1.0).is_none());
        let end = t.on_frame(1_000_000 + RESTART_GRACE_US + 1, false, false, 1.0);
        assert!(matches!(end, Some(Event::Session { phase: Phase::End, .. })), "{end:?}");
        assert!(!t.state().occupied);
        assert_eq!(t.command(MatCommand::NewSet, 9_000_000, false), Action::None);
    }

    fn athlete(id: Option<&str>) -> MatCommand {
        MatCommand::Athlete(id.map(String::from))
    }

    #[test]
    fn an_athlete_stays_named_until_they_get_up_and_the_grace_passes() {
        let mut t = MatTracker::new();
        t.set_athlete_grace(std::time::Duration::from_secs(120));
        t.on_event(&Event::Session {
            t_ms: 1000,
            phase: Phase::Start,
        });
        t.on_frame(1_000_000, true, false, 1.0);
        assert_eq!(t.command(athlete(Some("a-1")), 2_000_000, true), Action::None);
        assert_eq!(t.state().athlete.as_deref(), Some("a-1"));
        // Up at 60 s; someone lies down at 150 s, within the grace: the same athlete.
        t.on_event(&Event::Session {
            t_ms: 60_000,
            phase: Phase::End,
        });
        t.on_frame(149_000_000, false, false, 0.0);
        t.on_event(&Event::Session {
            t_ms: 150_000,
            phase: Phase::Start,
        });
        t.on_frame(300_000_000, true, false, 1.0);
        assert_eq!(t.state().athlete.as_deref(), Some("a-1"), "back within the grace");
        // Up at 400 s; nobody until 520 s: cleared, the next person is a guest.
        t.on_event(&Event::Session {
            t_ms: 400_000,
            phase: Phase::End,
        });
        t.on_frame(519_999_000, false, false, 0.0);
        assert_eq!(t.state().athlete.as_deref(), Some("a-1"));
        t.on_frame(520_000_000, false, false, 0.0);
        assert_eq!(t.state().athlete, None);
        // Named on an empty mat, nobody lies down: cleared after the grace too.
        t.command(athlete(Some("a-2")), 600_000_000, false);
        t.on_frame(700_000_000, false, false, 0.0);
        assert_eq!(t.state().athlete.as_deref(), Some("a-2"));
        t.on_frame(720_000_000, false, false, 0.0);
        assert_eq!(t.state().athlete, None);
        // And cleared on request.
        t.command(athlete(Some("a-3")), 800_000_000, true);
        t.command(athlete(None), 801_000_000, true);
        assert_eq!(t.state().athlete, None);
    }

    #[test]
    fn sample_rate_and_faults() {
        let mut t = MatTracker::new();
        for k in 0..=400u64 {
            t.on_frame(k * 5000, true, false, 0.874);
        }
        assert_eq!(t.state().sample_rate_hz, 200.0);
        assert_eq!(t.state().contact, Some(87));
        let fault = |ok| Event::Health {
            t_ms: 0,
            row: 1,
            col: 2,
            fault: crate::contract::event::TaxelFault::StuckLow,
            ok,
        };
        t.on_event(&fault(false));
        assert_eq!(t.state().taxel_faults, 1);
        t.on_event(&fault(true));
        assert_eq!(t.state().taxel_faults, 0);
    }
}
