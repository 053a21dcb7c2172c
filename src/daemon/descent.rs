//! The legs' descent, live: when a person starts lowering the legs and for
//! how long, from the detector's rep signal (the seesaw: the legs' lever
//! moving load between the upper back and the sacrum), so that the web view
//! can count the descent aloud while it happens. The rep counter judges a
//! rep once it is over; this only follows the motion (pure, per frame, a few
//! float operations).
//!
//! The seesaw falls while the legs rise toward vertical (the top) and rises
//! while they are lowered (toward the bottom). A descent starts when, after
//! a rise of the legs (a fall of the signal of at least [`MIN_SWING`]), the
//! signal climbs back by a share of that swing; it ends when the signal
//! stops climbing (the bottom, or the legs back on the floor), or falls
//! again (the next rep's ascent).

use crate::detector::Probe;

/// Smoothing of the signal, seconds.
const SMOOTH_S: f32 = 0.15;
/// The smallest fall of the signal that counts as legs raised.
pub const MIN_SWING: f32 = 0.08;
/// The share of the last swing the signal must climb back to call it a descent.
const START_SHARE: f32 = 0.2;
/// The descent ends when the signal has not climbed for this long...
const STALL_US: u64 = 500_000;
/// ... or has fallen back by this share of the swing.
const TURN_SHARE: f32 = 0.2;

#[derive(Debug, Clone, Default)]
pub struct DescentTracker {
    smooth: Option<f32>,
    last_us: u64,
    /// The highest signal since the last top (legs low).
    high: f32,
    /// The lowest since the last bottom (legs high), and when.
    low: f32,
    low_us: u64,
    /// The descent under way: since when, the highest signal so far and when.
    descent: Option<(u64, f32, u64)>,
}

impl DescentTracker {
    pub fn new() -> Self {
        DescentTracker::default()
    }

    /// How long the descent under way has lasted at `t_us` (`None`: the legs
    /// are not being lowered).
    pub fn descent_ms(&self, t_us: u64) -> Option<u64> {
        self.descent.map(|(since, _, _)| t_us.saturating_sub(since) / 1000)
    }

    /// One frame: its time and the detector's view of it after it.
    pub fn push(&mut self, t_us: u64, probe: &Probe) {
        if !(probe.occupied && probe.settled) {
            *self = DescentTracker::default();
            return;
        }
        let dt = t_us.saturating_sub(self.last_us) as f32 * 1e-6;
        self.last_us = t_us;
        let s = match self.smooth {
            None => {
                self.high = probe.seesaw;
                self.low = probe.seesaw;
                self.low_us = t_us;
                probe.seesaw
            }
            Some(prev) => prev + dt / (SMOOTH_S + dt) * (probe.seesaw - prev),
        };
        self.smooth = Some(s);
        match &mut self.descent {
            Some((_, peak, peak_us)) => {
                if s > *peak {
                    *peak = s;
                    *peak_us = t_us;
                }
                let swing = (*peak - self.low).max(MIN_SWING);
                if s < *peak - TURN_SHARE * swing || t_us.saturating_sub(*peak_us) > STALL_US {
                    // At the bottom (or turning up again): the next top is
                    // looked for from here.
                    self.high = *peak;
                    self.low = s;
                    self.low_us = t_us;
                    self.descent = None;
                }
            }
            None => {
                if s < self.low {
                    self.low = s;
                    self.low_us = t_us;
                }
                if s > self.high {
                    self.high = s;
                }
                let swing = self.high - self.low;
                if swing >= MIN_SWING && s > self.low + START_SHARE * swing && self.low_us < t_us {
                    // The legs left the top when the signal left its low.
                    self.descent = Some((self.low_us, s, t_us));
                } else if s > self.low + START_SHARE * swing.max(MIN_SWING) {
                    // Climbing with no top before it (legs lifted from the
                    // floor): the low moves up with it.
                    self.low = s;
                    self.low_us = t_us;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::contract::frame::{Frame, FrameSource};
    use crate::detector::Detector;
    use crate::sim::{Kind, Scenario, Simulator};

    /// Descent starts (ms) found over a simulated recording, with its truth.
    fn run(kind: Kind, seed: u64) -> (Vec<(u64, u64)>, crate::sim::Truth) {
        let mut sim = Simulator::new(&Scenario::new(kind, seed));
        let truth = sim.truth().clone();
        let mut det = Detector::new(sim.grid(), Config::default().detector).unwrap();
        let mut frame = Frame::zeroed(sim.grid());
        let mut events = Vec::new();
        let mut tracker = DescentTracker::new();
        let mut found = Vec::new();
        let mut open: Option<u64> = None;
        while sim.next_into(&mut frame).unwrap() {
            det.push(&frame, &mut events);
            tracker.push(frame.t_us, &det.probe());
            match (open, tracker.descent_ms(frame.t_us)) {
                (None, Some(ms)) => open = Some(frame.t_ms() - ms),
                (Some(start), None) => {
                    found.push((start, frame.t_ms()));
                    open = None;
                }
                _ => {}
            }
        }
        (found, truth)
    }

    /// Every true descent of clean and rushed sets is found, starting
    /// within half a second of the truth's start, and nothing else is.
    #[test]
    fn finds_the_descents_of_simulated_sets() {
        let (mut hits, mut reps, mut extra) = (0, 0, 0);
        let mut misses = Vec::new();
        for (kind, seed) in [
            (Kind::CleanSet, 1),
            (Kind::CleanSet, 2),
            (Kind::Rushed, 3),
            (Kind::ThreeSets, 4),
            (Kind::Fatigue, 5),
        ] {
            let (found, truth) = run(kind, seed);
            let mut used = vec![false; found.len()];
            for r in truth.reps() {
                reps += 1;
                let near = found
                    .iter()
                    .position(|&(start, _)| start.abs_diff(r.descent_start_ms) <= 500);
                match near {
                    Some(i) => {
                        hits += 1;
                        used[i] = true;
                    }
                    None => misses.push((kind, seed, r.descent_start_ms)),
                }
            }
            extra += used.iter().filter(|u| !**u).count();
        }
        eprintln!("descents: {hits}/{reps} found, {extra} extra; misses {misses:?}");
        assert!(hits as f64 >= 0.9 * reps as f64, "{hits}/{reps}: {misses:?}");
        assert!(extra as f64 <= 0.1 * reps as f64, "{extra} extra of {reps}");
    }
}
