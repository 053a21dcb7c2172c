//! Per-taxel conditioning: glitch rejection, linearisation, fault tracking.
//!
//! A glitch (SPI noise) is one sample of one taxel at 0 or full scale, far
//! from its previous value. It is recognised by that shape and replaced by the
//! previous value at once, so rejecting it costs no latency; a value that
//! stays at the extreme on the next sample is taken as real. On a noisy mat
//! (long leads on a gym floor: glitches on every taxel, as often as one
//! sample in a thousand) two glitches in a row on one taxel become frequent
//! enough to matter, so there the rejection is raised to runs of two samples.
//!
//! A glitch rejected by its shape costs nothing: it is not a fault. A taxel
//! is left out only when it is unusable, judged against the rest of the mat:
//! stuck at 0 while its row is loaded, stuck at full scale, or glitching in a
//! good share of its samples while the mat as a whole does not. Each taxel's
//! health changes at most once a minute, and glitches never leave a row with
//! fewer than half of its taxels.

use crate::contract::event::TaxelFault;

/// FSR conductance is roughly force^0.9; the divider gives
/// counts = full * G / (G + 1) (G in units of 1/Rm). Inverting both gives a
/// force proxy proportional to the load on the taxel.
const FSR_EXPONENT: f32 = 0.9;
/// Readings above this share of full scale carry no usable force
/// information (the divider has saturated); they are clamped here.
const SATURATION: f32 = 0.96;
/// A taxel at full scale while nobody lies on the mat is shorted: this long
/// is enough to say so.
const STUCK_HIGH_EMPTY_US: u64 = 2_000_000;
/// A taxel's health changes at most once in this long (no flood of
/// `health` events from a taxel that comes and goes).
pub const HEALTH_HOLD_US: u64 = 60_000_000;

/// What happened to a taxel's health on this frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthChange {
    pub index: usize,
    pub fault: TaxelFault,
    /// `true` when the taxel recovered, `false` when it was found faulty.
    pub ok: bool,
}

#[derive(Debug, Clone, Default)]
struct TaxelState {
    /// Last accepted (glitch-free) reading.
    accepted: u16,
    /// Raw readings in a row replaced as a suspected glitch.
    suspect: u8,
    /// Microseconds the taxel has read stuck low / stuck high in a row.
    low_us: u64,
    high_us: u64,
    /// Microseconds it has read normally since a fault (for recovery).
    normal_us: u64,
    /// Glitches seen, leaky (see `review`): about the last minute's.
    glitches: f32,
    fault: Option<TaxelFault>,
    /// When the health last changed.
    changed_us: Option<u64>,
}

/// Glitch counts are leaky over about this long.
const GLITCH_WINDOW_US: f32 = 60e6;
/// How often the mat's glitch level and the glitchy taxels are reviewed.
const REVIEW_US: u64 = 1_000_000;
/// A taxel glitching in this share of its samples is unusable if the mat
/// as a whole does not (shape rejection would let runs through)...
const GLITCHY_SHARE: f32 = 0.01;
/// ...that is, at least this many times the mat's typical taxel.
const GLITCHY_RATIO: f32 = 8.0;
/// A glitchy taxel is usable again below this share.
const GLITCHY_RECOVERED_SHARE: f32 = 0.002;
/// The mat is noisy (rejection raised to two samples) when its typical
/// taxel glitches in this share of its samples or more: then two in a row
/// on some taxel come about once an hour at 1 kHz.
const NOISY_MAT_SHARE: f32 = 1e-4;
const RECOVERY_US: u64 = 2_000_000;

/// Conditions raw counts into force proxies, frame by frame.
#[derive(Debug, Clone)]
pub struct TaxelConditioner {
    full: u16,
    cols: usize,
    stuck_us: u64,
    lut: Vec<f32>,
    state: Vec<TaxelState>,
    /// Glitch-free counts per taxel.
    pub counts: Vec<u16>,
    last_t_us: Option<u64>,
    /// Samples seen per taxel, leaky like the glitch counts.
    samples: f32,
    /// Longest run of extreme samples replaced as a glitch: 1, or 2 on a
    /// noisy mat.
    max_run: u8,
    next_review_us: u64,
    /// Time since the last review, for the leaky counts.
    since_review_us: u64,
}

impl TaxelConditioner {
    pub fn new(taxels: usize, cols: usize, full: u16, stuck_s: f64) -> Self {
        let lut = (0..=full as u32)
            .map(|c| {
                let x = (c as f32 / full as f32).min(SATURATION);
                (x / (1.0 - x)).powf(1.0 / FSR_EXPONENT)
            })
            .collect();
        TaxelConditioner {
            full,
            cols,
            stuck_us: (stuck_s * 1e6) as u64,
            lut,
            state: vec![TaxelState::default(); taxels],
            counts: vec![0; taxels],
            last_t_us: None,
            samples: 0.0,
            max_run: 1,
            next_review_us: 0,
            since_review_us: 0,
        }
    }

    /// Force proxy of a raw count.
    pub fn linear(&self, count: u16) -> f32 {
        self.lut[count.min(self.full) as usize]
    }

    pub fn is_healthy(&self, index: usize) -> bool {
        self.state[index].fault.is_none()
    }

    pub fn fault(&self, index: usize) -> Option<TaxelFault> {
        self.state[index].fault
    }

    /// Whether the mat is noisy: glitch rejection raised to runs of two.
    pub fn noisy_mat(&self) -> bool {
        self.max_run > 1
    }

    /// Processes one frame. `occupied` says whether someone lies on the mat
    /// (decided on the previous frame). Health changes are appended to
    /// `changes`.
    pub fn push(&mut self, t_us: u64, raw: &[u16], occupied: bool, changes: &mut Vec<HealthChange>) {
        let dt = self.last_t_us.map_or(0, |t| t_us.saturating_sub(t));
        self.last_t_us = Some(t_us);
        let full = self.full;
        // "Far": a real load never falls or rises this much in one sample; a
        // false suspicion only delays a real extreme by a sample or two.
        let far = full / 16;
        let max_run = self.max_run;
        for (i, &c) in raw.iter().enumerate() {
            let c = c.min(full);
            let extreme = c <= 1 || c >= full - 1;
            let st = &mut self.state[i];
            // Glitch shape: a sample or two at an extreme, far from the last
            // accepted value.
            if extreme && c.abs_diff(st.accepted) > far && st.suspect < max_run {
                st.suspect += 1;
            } else {
                if st.suspect > 0 && !extreme {
                    st.glitches += 1.0;
                }
                st.suspect = 0;
                st.accepted = c;
            }
        }
        self.samples += 1.0;
        self.since_review_us += dt;
        if t_us >= self.next_review_us {
            self.review(t_us, changes);
        }
        // Stuck detection on raw readings; a row is "loaded" when the median
        // of its other healthy taxels reads above a tenth of full scale.
        for (i, &c) in raw.iter().enumerate() {
            let c = c.min(full);
            // A healthy taxel reading in range: nothing to track (most
            // taxels on most frames).
            let st = &mut self.state[i];
            if st.fault.is_none() && c > 2 && c < full - 1 {
                st.low_us = 0;
                st.high_us = 0;
                continue;
            }
            // The row median is only needed for a taxel reading ~0: checked
            // lazily so the per-frame step does not sort every row.
            let loaded_row = c <= 2 && occupied && self.row_mates_loaded(i);
            let stuck_us = self.stuck_us;
            let st = &mut self.state[i];
            st.low_us = if c <= 2 && loaded_row { st.low_us + dt } else { 0 };
            st.high_us = if c >= full - 1 { st.high_us + dt } else { 0 };
            let may_change = st.changed_us.is_none_or(|at| t_us >= at + HEALTH_HOLD_US);
            match st.fault {
                None => {
                    let fault = if st.low_us >= stuck_us {
                        Some(TaxelFault::StuckLow)
                    } else if st.high_us >= stuck_us || (!occupied && st.high_us >= STUCK_HIGH_EMPTY_US) {
                        Some(TaxelFault::StuckHigh)
                    } else {
                        None
                    };
                    if let (Some(fault), true) = (fault, may_change) {
                        st.fault = Some(fault);
                        st.normal_us = 0;
                        st.changed_us = Some(t_us);
                        changes.push(HealthChange {
                            index: i,
                            fault,
                            ok: false,
                        });
                    }
                }
                Some(TaxelFault::Glitchy) => {}
                Some(fault) => {
                    let normal = match fault {
                        TaxelFault::StuckLow => c > 2 * (full / 100).max(2),
                        _ => c < full - full / 50,
                    };
                    st.normal_us = if normal { st.normal_us + dt } else { 0 };
                    if st.normal_us >= RECOVERY_US && may_change {
                        st.fault = None;
                        st.changed_us = Some(t_us);
                        changes.push(HealthChange {
                            index: i,
                            fault,
                            ok: true,
                        });
                    }
                }
            }
        }
        for (count, st) in self.counts.iter_mut().zip(&self.state) {
            *count = st.accepted;
        }
    }

    /// Once a second: the leaky glitch counts, the mat's glitch level (and
    /// so the rejection), and which taxels glitch so much more than the rest
    /// of the mat that they are unusable.
    fn review(&mut self, t_us: u64, changes: &mut Vec<HealthChange>) {
        self.next_review_us = t_us + REVIEW_US;
        let keep = (-(self.since_review_us as f32) / GLITCH_WINDOW_US).exp();
        self.since_review_us = 0;
        for st in &mut self.state {
            st.glitches *= keep;
        }
        self.samples *= keep;
        let samples = self.samples.max(1.0);
        // The typical taxel: the median of the mat.
        let mut shares = [0f32; 64];
        let n = self.state.len().min(shares.len());
        for (s, st) in shares.iter_mut().zip(&self.state) {
            *s = st.glitches / samples;
        }
        let shares = &mut shares[..n];
        shares.sort_unstable_by(f32::total_cmp);
        let typical = shares[n / 2];
        self.max_run = if typical >= NOISY_MAT_SHARE { 2 } else { 1 };
        for i in 0..self.state.len() {
            let st = &self.state[i];
            let share = st.glitches / samples;
            let may_change = st.changed_us.is_none_or(|at| t_us >= at + HEALTH_HOLD_US);
            if !may_change {
                continue;
            }
            match st.fault {
                None if share >= GLITCHY_SHARE && share >= GLITCHY_RATIO * typical && self.row_can_spare(i) => {
                    let st = &mut self.state[i];
                    st.fault = Some(TaxelFault::Glitchy);
                    st.changed_us = Some(t_us);
                    changes.push(HealthChange {
                        index: i,
                        fault: TaxelFault::Glitchy,
                        ok: false,
                    });
                }
                Some(TaxelFault::Glitchy) if share < GLITCHY_RECOVERED_SHARE.max(GLITCHY_RATIO * typical) => {
                    let st = &mut self.state[i];
                    st.fault = None;
                    st.changed_us = Some(t_us);
                    changes.push(HealthChange {
                        index: i,
                        fault: TaxelFault::Glitchy,
                        ok: true,
                    });
                }
                _ => {}
            }
        }
    }

    /// Whether taxel `i`'s row keeps at least half of its taxels healthy
    /// without it.
    fn row_can_spare(&self, i: usize) -> bool {
        let start = i / self.cols * self.cols;
        let healthy = self.state[start..start + self.cols]
            .iter()
            .filter(|st| st.fault.is_none())
            .count();
        2 * (healthy - 1) >= self.cols
    }

    fn row_mates_loaded(&self, i: usize) -> bool {
        let row = i / self.cols;
        let start = row * self.cols;
        let mut mates = [0u16; 16];
        let mut n = 0;
        for j in start..start + self.cols {
            if j != i && self.state[j].fault.is_none() && n < mates.len() {
                mates[n] = self.state[j].accepted;
                n += 1;
            }
        }
        if n == 0 {
            return false;
        }
        let mates = &mut mates[..n];
        mates.sort_unstable();
        mates[n / 2] > self.full / 10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cond: &mut TaxelConditioner, t_us: &mut u64, raw: &[u16], occupied: bool) -> Vec<HealthChange> {
        let mut ch = Vec::new();
        *t_us += 5000;
        cond.push(*t_us, raw, occupied, &mut ch);
        ch
    }

    #[test]
    fn single_sample_glitch_is_replaced_without_delay() {
        let mut c = TaxelConditioner::new(2, 2, 1023, 20.0);
        let mut t = 0;
        run(&mut c, &mut t, &[400, 400], true);
        run(&mut c, &mut t, &[1023, 401], true);
        assert_eq!(c.counts, vec![400, 401], "glitch to full scale held at previous value");
        run(&mut c, &mut t, &[402, 0], true);
        assert_eq!(c.counts, vec![402, 401], "glitch to 0 held, real value passes at once");
        run(&mut c, &mut t, &[403, 0], true);
        assert_eq!(c.counts, vec![403, 0], "a second sample at the extreme is real");
    }

    #[test]
    fn linearisation_is_monotonic_and_expands_the_top() {
        let c = TaxelConditioner::new(1, 1, 1023, 20.0);
        let mut last = -1.0;
        for n in 0..=1023u16 {
            let v = c.linear(n);
            assert!(v >= last, "not monotonic at {n}");
            last = v;
        }
        // Half scale is G = 1; 3/4 scale is G = 3, so force ratio 3^(1/0.9).
        let r = c.linear(767) / c.linear(512);
        assert!((r - 3f32.powf(1.0 / 0.9)).abs() < 0.05, "ratio {r}");
    }

    #[test]
    fn stuck_taxels_are_reported_and_recover_no_sooner_than_a_minute_later() {
        let mut c = TaxelConditioner::new(4, 4, 1023, 1.0);
        let mut t = 0;
        let mut found = Vec::new();
        for _ in 0..300 {
            found.extend(run(&mut c, &mut t, &[0, 500, 520, 1023], true));
        }
        assert!(found.contains(&HealthChange {
            index: 0,
            fault: TaxelFault::StuckLow,
            ok: false
        }));
        assert!(found.contains(&HealthChange {
            index: 3,
            fault: TaxelFault::StuckHigh,
            ok: false
        }));
        assert!(!c.is_healthy(0) && !c.is_healthy(3) && c.is_healthy(1));
        // Normal again at once, but health holds for a minute.
        let mut back = Vec::new();
        let until = t + 58_000_000;
        while t < until {
            back.extend(run(&mut c, &mut t, &[300, 500, 520, 600], true));
        }
        assert!(back.is_empty(), "{back:?}");
        for _ in 0..1000 {
            back.extend(run(&mut c, &mut t, &[300, 500, 520, 600], true));
        }
        assert!(back.iter().all(|h| h.ok) && back.len() == 2, "{back:?}");
    }

    /// Feeds `seconds` of 1 kHz frames of `levels` in which taxel `i`
    /// glitches (to 0 or full scale, one sample) with chance `p[i]`.
    fn glitching(
        c: &mut TaxelConditioner,
        t: &mut u64,
        levels: &[u16],
        p: &[f64],
        seconds: f64,
        seed: u64,
    ) -> Vec<HealthChange> {
        let mut rng = crate::sim::rng::Rng::new(seed);
        let mut out = Vec::new();
        let mut raw = levels.to_vec();
        for _ in 0..(seconds * 1000.0) as usize {
            for (i, r) in raw.iter_mut().enumerate() {
                *r = if rng.chance(p[i]) {
                    if rng.chance(0.5) {
                        0
                    } else {
                        1023
                    }
                } else {
                    levels[i]
                };
            }
            *t += 1000;
            c.push(*t, &raw, true, &mut out);
            // Every glitch on a taxel that glitches rarely is replaced (two
            // in a row are rare, and rejected once the mat is noisy).
            for (i, (a, b)) in c.counts.iter().zip(levels).enumerate() {
                assert!(a == b || p[i] >= 0.01, "taxel {i}: {a} for {b}");
            }
        }
        out
    }

    #[test]
    fn a_mat_glitching_everywhere_is_a_noisy_mat_not_broken_taxels() {
        let levels = [
            300, 400, 500, 600, 320, 420, 520, 620, 340, 440, 540, 640, 360, 460, 560, 660,
        ];
        let mut c = TaxelConditioner::new(16, 4, 1023, 20.0);
        let mut t = 0;
        // One glitch in a thousand samples on every taxel, for five minutes.
        let found = glitching(&mut c, &mut t, &levels, &[1e-3; 16], 300.0, 1);
        assert!(found.is_empty(), "{found:?}");
        assert!(c.noisy_mat(), "rejection raised");
        // Runs of two are rejected too now.
        for k in 0..2 {
            let mut raw = levels;
            raw[5] = 0;
            t += 1000;
            c.push(t, &raw, true, &mut Vec::new());
            assert_eq!(c.counts[5], 420, "sample {k} of the run");
        }
    }

    #[test]
    fn a_taxel_glitching_far_more_than_the_mat_is_left_out_once() {
        let levels = [300u16; 16];
        let mut p = [1e-4; 16];
        p[6] = 0.05;
        let mut c = TaxelConditioner::new(16, 4, 1023, 20.0);
        let mut t = 0;
        let found = glitching(&mut c, &mut t, &levels, &p, 120.0, 2);
        assert_eq!(
            found,
            vec![HealthChange {
                index: 6,
                fault: TaxelFault::Glitchy,
                ok: false
            }]
        );
        assert!(!c.is_healthy(6) && !c.noisy_mat());
        // Calm again: back once its last minutes are calm (the counts are
        // leaky over a minute: from 5 % to 0.2 % takes about three).
        p[6] = 1e-4;
        let back = glitching(&mut c, &mut t, &levels, &p, 300.0, 3);
        assert_eq!(back.len(), 1, "{back:?}");
        assert!(back[0].ok && c.is_healthy(6));
    }

    #[test]
    fn glitches_never_take_more_than_half_a_row() {
        let levels = [300u16; 16];
        let mut p = [1e-4; 16];
        p[4..8].copy_from_slice(&[0.05; 4]);
        let mut c = TaxelConditioner::new(16, 4, 1023, 20.0);
        let mut t = 0;
        let found = glitching(&mut c, &mut t, &levels, &p, 120.0, 4);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((4..8).filter(|&i| c.is_healthy(i)).count(), 2);
    }

    #[test]
    fn an_unloaded_row_is_not_stuck_low() {
        let mut c = TaxelConditioner::new(4, 4, 1023, 1.0);
        let mut t = 0;
        let mut found = Vec::new();
        for _ in 0..400 {
            found.extend(run(&mut c, &mut t, &[0, 2, 1, 0], false));
        }
        assert!(found.is_empty(), "{found:?}");
    }
}
