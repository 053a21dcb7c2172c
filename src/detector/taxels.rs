//! Per-taxel conditioning: glitch rejection, linearisation, fault tracking.
//!
//! A glitch (SPI noise) is one sample of one taxel at 0 or full scale, far
//! from its previous value. It is recognised by that shape and replaced by the
//! previous value at once, so rejecting it costs no latency; a value that
//! stays at the extreme on the next sample is taken as real.

use crate::event::TaxelFault;

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
    /// The previous raw reading was a suspected glitch (replaced).
    suspect: bool,
    /// Microseconds the taxel has read stuck low / stuck high in a row.
    low_us: u64,
    high_us: u64,
    /// Microseconds it has read normally since a fault (for recovery).
    normal_us: u64,
    /// Leaky glitch counter (decays by one per `GLITCH_WINDOW_US`).
    glitches: f32,
    fault: Option<TaxelFault>,
}

const GLITCH_WINDOW_US: f32 = 60e6;
/// Glitches within about a minute that make a taxel "glitchy".
const GLITCHY_COUNT: f32 = 12.0;
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

    fn is_extreme(&self, c: u16) -> bool {
        c <= 1 || c >= self.full - 1
    }

    /// Processes one frame. `occupied` says whether someone lies on the mat
    /// (decided on the previous frame). Health changes are appended to
    /// `changes`.
    pub fn push(&mut self, t_us: u64, raw: &[u16], occupied: bool, changes: &mut Vec<HealthChange>) {
        let dt = self.last_t_us.map_or(0, |t| t_us.saturating_sub(t));
        self.last_t_us = Some(t_us);
        let full = self.full;
        // "Far": a real load never falls or rises this much in one sample; a
        // false suspicion only delays a real extreme by one sample.
        let far = full / 16;
        for (i, &c) in raw.iter().enumerate() {
            let c = c.min(full);
            let extreme = self.is_extreme(c);
            let st = &mut self.state[i];
            // Glitch shape: one sample at an extreme, far from the last value.
            let jump = c.abs_diff(st.accepted) > far;
            if extreme && jump && !st.suspect {
                st.suspect = true;
            } else {
                if st.suspect && !extreme {
                    st.glitches += 1.0;
                }
                st.suspect = false;
                st.accepted = c;
            }
            st.glitches = (st.glitches - dt as f32 / GLITCH_WINDOW_US).max(0.0);
        }
        // Stuck detection on raw readings; a row is "loaded" when the median
        // of its other healthy taxels reads above a tenth of full scale.
        for (i, &c) in raw.iter().enumerate() {
            let c = c.min(full);
            // The row median is only needed for a taxel reading ~0: checked
            // lazily so the per-frame step does not sort every row.
            let loaded_row = c <= 2 && occupied && self.row_mates_loaded(i);
            let st = &mut self.state[i];
            st.low_us = if c <= 2 && loaded_row { st.low_us + dt } else { 0 };
            st.high_us = if c >= full - 1 { st.high_us + dt } else { 0 };
            match st.fault {
                None => {
                    let fault = if st.low_us >= self.stuck_us {
                        Some(TaxelFault::StuckLow)
                    } else if st.high_us >= self.stuck_us || (!occupied && st.high_us >= STUCK_HIGH_EMPTY_US) {
                        Some(TaxelFault::StuckHigh)
                    } else if st.glitches >= GLITCHY_COUNT {
                        Some(TaxelFault::Glitchy)
                    } else {
                        None
                    };
                    if let Some(fault) = fault {
                        st.fault = Some(fault);
                        st.normal_us = 0;
                        changes.push(HealthChange {
                            index: i,
                            fault,
                            ok: false,
                        });
                    }
                }
                Some(fault) => {
                    let normal = match fault {
                        TaxelFault::StuckLow => c > 2 * (full / 100).max(2),
                        TaxelFault::StuckHigh => c < full - full / 50,
                        TaxelFault::Glitchy => st.glitches < GLITCHY_COUNT / 4.0,
                    };
                    st.normal_us = if normal { st.normal_us + dt } else { 0 };
                    if st.normal_us >= RECOVERY_US {
                        st.fault = None;
                        st.glitches = 0.0;
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
    fn stuck_taxels_are_reported_and_recover() {
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
        let mut back = Vec::new();
        for _ in 0..500 {
            back.extend(run(&mut c, &mut t, &[300, 500, 520, 600], true));
        }
        assert!(back.iter().all(|h| h.ok) && back.len() == 2, "{back:?}");
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
