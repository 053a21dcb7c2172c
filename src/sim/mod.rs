//! A simulator of the reference mat (see `shared/docs/signals.md`), with
//! ground truth in the shape of `shared/data/dev/*.truth.json`.
//!
//! [`Simulator::new`] plans the whole timeline from the scenario's seed (who
//! lies down when, each person's body, sets, reps, arches, wobbles); the
//! same plan yields the [`Truth`] and, lazily and frame by frame, the counts.
//! Memory stays flat however long the recording: frames are computed from
//! the plan (a pure function of time) plus a fixed-size per-taxel state.
//!
//! ```
//! use flatback::contract::frame::{Frame, FrameSource};
//! use flatback::sim::{Kind, Scenario, Simulator};
//! let mut sim = Simulator::new(&Scenario::new(Kind::Fatigue, 7).with_duration(20.0));
//! let mut frame = Frame::zeroed(sim.grid());
//! let mut n = 0;
//! while sim.next_into(&mut frame).unwrap() { n += 1; }
//! assert!(n > 3900 && sim.truth().duration_ms == 20_000);
//! ```

mod body;
mod plan;
pub mod rng;
pub mod scenario;
mod sensor;
pub mod truth;

pub use scenario::{Build, Field, Kind, Scenario, UnknownKind};
pub use sensor::Stuck;
pub use truth::Truth;

use crate::contract::frame::{Frame, FrameSource, Grid, SourceError};
use plan::SimPlan;
use rng::Rng;
use sensor::Sensor;

/// Frames of a simulated recording, with its ground truth.
#[derive(Debug, Clone)]
pub struct Simulator {
    scenario: Scenario,
    truth: Truth,
    plan: SimPlan,
    sensor: Sensor,
    noise: Rng,
    timing: Rng,
    glitch: Rng,
    period_us: f64,
    t0_us: f64,
    jitter_us: f64,
    gap_p: f64,
    end_us: u64,
    /// Nominal index of the next frame.
    k: u64,
    last_us: Option<u64>,
    gap_until_us: f64,
    /// Index of the session that covers or follows the current time.
    session: usize,
}

impl Simulator {
    /// Plans the recording.
    ///
    /// # Panics
    /// If `rate_hz` is outside 50..=2000, `adc_bits` is not 10 or 12, or the
    /// grid is empty.
    pub fn new(scenario: &Scenario) -> Simulator {
        assert!(
            (50.0..=2000.0).contains(&scenario.rate_hz),
            "rate_hz must be within 50..=2000, got {}",
            scenario.rate_hz
        );
        assert!(
            scenario.adc_bits == 10 || scenario.adc_bits == 12,
            "adc_bits must be 10 or 12, got {}",
            scenario.adc_bits
        );
        assert!(!scenario.grid.is_empty(), "empty grid");
        let (plan, truth) = plan::plan(scenario);
        let mut mat = Rng::stream(scenario.seed, 5);
        let sensor = Sensor::new(scenario, &mut mat);
        let mut timing = Rng::stream(scenario.seed, 3);
        let period_us = 1e6 / scenario.rate_hz;
        let jitter_us = match (scenario.jitter, scenario.faults) {
            (false, _) => 0.0,
            (true, false) => 0.01 * period_us,
            (true, true) => 0.04 * period_us,
        };
        let t0_us = timing.range(0.0, 100.0f64.min(0.4 * period_us)).floor();
        Simulator {
            scenario: scenario.clone(),
            end_us: (plan.end_ms * 1000.0) as u64,
            truth,
            plan,
            sensor,
            noise: Rng::stream(scenario.seed, 2),
            timing,
            glitch: Rng::stream(scenario.seed, 4),
            period_us,
            t0_us,
            jitter_us,
            // About one gap every 30 s.
            gap_p: if scenario.gaps {
                1.0 / (30.0 * scenario.rate_hz)
            } else {
                0.0
            },
            k: 0,
            last_us: None,
            gap_until_us: 0.0,
            session: 0,
        }
    }

    /// Ground truth of the whole recording (available before any frame).
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Broken taxels (row-major index and how), if the scenario has faults.
    pub fn stuck_taxels(&self) -> &[(usize, Stuck)] {
        &self.sensor.stuck
    }

    /// Lumbar load-loss fraction of true arches at `t_ms` (0..1): the
    /// quantity whose crossing of 0.5 is an arch's `onset_ms`.
    pub fn lumbar_loss(&self, t_ms: f64) -> f64 {
        self.plan
            .sessions
            .iter()
            .find(|s| s.covers(t_ms))
            .map_or(0.0, |s| s.arch_loss(t_ms))
    }

    /// Next frame time, or `None` past the end.
    fn next_time(&mut self) -> Option<u64> {
        loop {
            let nominal = self.t0_us + self.k as f64 * self.period_us;
            self.k += 1;
            if nominal > self.end_us as f64 {
                return None;
            }
            if nominal < self.gap_until_us {
                continue;
            }
            if self.gap_p > 0.0 && self.timing.chance(self.gap_p) {
                self.gap_until_us = nominal + self.timing.range(30_000.0, 250_000.0);
                continue;
            }
            let lim = 0.45 * self.period_us;
            let jitter = if self.jitter_us > 0.0 {
                (self.jitter_us * self.timing.normal()).clamp(-lim, lim)
            } else {
                0.0
            };
            let mut t = (nominal + jitter).round().max(0.0) as u64;
            if let Some(last) = self.last_us {
                t = t.max(last + 1);
            }
            if t > self.end_us {
                return None;
            }
            return Some(t);
        }
    }
}

impl FrameSource for Simulator {
    fn grid(&self) -> Grid {
        self.scenario.grid
    }

    fn next_into(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        let Some(t_us) = self.next_time() else {
            return Ok(false);
        };
        let n = self.scenario.grid.len();
        if frame.counts.len() != n {
            frame.counts.resize(n, 0);
        }
        let dt_ms = self.last_us.map_or(0.0, |l| (t_us - l) as f64 / 1000.0);
        self.last_us = Some(t_us);
        frame.t_us = t_us;
        let t = t_us as f64 / 1000.0;
        let sessions = &self.plan.sessions;
        while self.session < sessions.len() && t >= sessions[self.session].off + plan::GETUP_MS + 200.0 {
            self.session += 1;
        }
        let (loads, col_off, col_sigma) = match sessions.get(self.session) {
            Some(s) if s.covers(t) => (s.loads(t), s.person.col_off, s.person.col_sigma),
            _ => (body::MatLoads::default(), 0.0, 1.0),
        };
        self.sensor.read(
            t_us as f64 * 1e-6,
            &loads,
            col_off,
            col_sigma,
            dt_ms,
            self.scenario.rate_hz,
            &mut self.noise,
            &mut self.glitch,
            &mut frame.counts,
        );
        Ok(true)
    }
}

#[cfg(test)]
mod field_tests {
    //! The field's effects (signals.md, "In the field") are in the frames
    //! and the truth, each within its range.
    use super::*;

    fn frames(sc: &Scenario) -> (Vec<Frame>, Truth) {
        let mut sim = Simulator::new(sc);
        let mut out = Vec::new();
        let mut f = Frame::zeroed(sim.grid());
        while sim.next_into(&mut f).unwrap() {
            out.push(f.clone());
        }
        (out, sim.truth().clone())
    }

    #[test]
    fn a_noisy_mat_hums_and_glitches_on_every_taxel() {
        let mut sc = Scenario::new(Kind::NoisyMat, 3).with_duration(60.0).with_rate(1000.0);
        sc.jitter = false;
        let (fr, truth) = frames(&sc);
        let on = truth.sessions[0].on_ms;
        // The empty mat before the person lies down: hum and noise only.
        let empty: Vec<&Frame> = fr.iter().filter(|f| f.t_ms() + 200 < on).collect();
        assert!(empty.len() > 1000);
        for i in 0..16 {
            // (Glitches aside.)
            let v: Vec<f64> = empty
                .iter()
                .map(|f| f.counts[i] as f64)
                .filter(|&c| c < 100.0)
                .collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            // White noise 3.5 counts and hum of 1.8-6 counts (clipped at 0).
            assert!(sd > 2.0 && sd < 8.0, "taxel {i}: sd {sd}");
        }
        // Glitches: 6e-4 per taxel sample, on every taxel.
        let mut glitches = [0usize; 16];
        for w in fr.windows(3) {
            for (i, g) in glitches.iter_mut().enumerate() {
                let (a, b, c) = (w[0].counts[i], w[1].counts[i], w[2].counts[i]);
                if (b == 0 || b == 1023) && a.abs_diff(b) > 64 && c.abs_diff(b) > 64 {
                    *g += 1;
                }
            }
        }
        let total: usize = glitches.iter().sum();
        let expected = 6e-4 * 16.0 * fr.len() as f64;
        assert!((total as f64) > 0.25 * expected, "{glitches:?} vs {expected}");
        assert!(glitches.iter().filter(|&&g| g > 0).count() >= 12, "{glitches:?}");
    }

    /// The largest swing of a half-second moving average of any taxel of
    /// the empty mat, with hum and the ADC's own noise only.
    fn slow_swing(rate_hz: f64) -> f64 {
        let mut sc = Scenario::new(Kind::NoisyMat, 4).with_duration(40.0);
        sc.rate_hz = rate_hz;
        sc.jitter = false;
        sc.field.noise_counts = 0.0;
        sc.field.glitch_p = 0.0;
        sc.field.hum_counts = 10.0;
        // A beat of 3 s: the empty mat before lying down shows all of it.
        sc.field.hum_hz = 50.3;
        let (fr, truth) = frames(&sc);
        let on = truth.sessions[0].on_ms;
        let empty: Vec<&Frame> = fr.iter().filter(|f| f.t_ms() + 200 < on).collect();
        let n = (0.5 * rate_hz) as usize;
        (0..16)
            .map(|i| {
                let avg: Vec<f64> = empty
                    .windows(n)
                    .map(|w| w.iter().map(|f| f.counts[i] as f64).sum::<f64>() / n as f64)
                    .collect();
                avg.iter().cloned().fold(f64::MIN, f64::max) - avg.iter().cloned().fold(f64::MAX, f64::min)
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn hum_sampled_near_its_own_frequency_beats_slowly() {
        // 50.3 Hz mains read at 50 Hz: each taxel drifts through its hum
        // over 1 / 0.3 s, which no average of the samples removes; at
        // 1 kHz half a second of samples averages it out.
        let (slow, fast) = (slow_swing(50.0), slow_swing(1000.0));
        assert!(slow >= 8.0 && fast <= 2.0, "50 Hz: {slow}, 1 kHz: {fast}");
    }

    #[test]
    fn field_plans_pause_slide_creep_and_only_just_arch() {
        for seed in 0..6 {
            let sc = Scenario::new(Kind::GymFloor, seed);
            let sim = Simulator::new(&sc);
            let t = sim.truth();
            let s = &sim.plan.sessions[0];
            // Pauses of 2-5 s at the bottom.
            let pauses: Vec<u64> = t
                .sessions
                .iter()
                .flat_map(|s| &s.sets)
                .flat_map(|set| set.reps.windows(2).map(|w| w[1].ascent_start_ms - w[0].descent_end_ms))
                .collect();
            assert!(pauses.iter().any(|&p| (2000..=5000).contains(&p)), "{pauses:?}");
            assert!(pauses.iter().all(|&p| p <= 5000));
            // Arches keep 25-42 % of the lumbar load, wobbles lose at most a third.
            assert!(
                t.arches.iter().all(|a| (0.58..=0.75).contains(&a.amax)),
                "{:?}",
                t.arches
            );
            assert!(t.micro_wobbles.iter().all(|w| w.amax <= 1.0 / 3.0 + 1e-3));
            assert!(t.micro_wobbles.iter().any(|w| w.amax > 0.25));
            // Slides of a third to half a row, mid-set, over 10-25 s.
            let slides: Vec<&plan::ShiftP> = s.shifts.iter().filter(|x| x.rows.abs() >= 1.0 / 3.0).collect();
            assert!(!slides.is_empty());
            for x in slides {
                assert!(x.rows.abs() <= 0.5 && x.len >= 8000.0 && x.len <= 25_000.0);
                assert!(s.sets.iter().any(|set| x.start >= set.start && x.start < set.end));
            }
            // Creep of 12 % over minutes.
            assert_eq!(s.person.creep, 0.12);
        }
    }

    #[test]
    fn a_long_session_is_four_sets_over_about_ten_minutes() {
        for seed in 0..5 {
            let sim = Simulator::new(&Scenario::new(Kind::LongSession, seed));
            let s = &sim.truth().sessions[0];
            assert_eq!(s.sets.len(), 4);
            let minutes = (s.off_ms - s.on_ms) as f64 / 60_000.0;
            assert!((7.5..13.0).contains(&minutes), "{minutes}");
            // Still creeping after the first set.
            let p = &sim.plan.sessions[0];
            let creep = |t: f64| p.loads(t).creep;
            let first_end = s.sets[0].end_ms as f64;
            assert!(creep(s.off_ms as f64 - 10_000.0) > creep(first_end) + 0.03);
        }
    }

    #[test]
    fn the_legs_moment_follows_the_cosine_of_their_angle() {
        let sim = Simulator::new(&Scenario::new(Kind::CleanSet, 2));
        let mut p = sim.plan.sessions[0].clone();
        p.person.breath_amp = 0.0;
        let r = &p.sets[0].reps[1];
        let sacrum = |t: f64| p.loads(t).sacrum;
        let (top, bottom) = (sacrum(r.descent), sacrum(r.bottom));
        // Halfway through the descent the legs are at 45 % of their way
        // down in angle: cos(pi/2 * 0.55) = 0.76 of the moment.
        let mid = (sacrum(0.5 * (r.descent + r.bottom)) - top) / (bottom - top);
        let expected = (std::f64::consts::FRAC_PI_2 * (1.0 - plan::smooth(0.5 / 1.1))).cos();
        assert!((mid - expected).abs() < 0.03, "{mid} vs {expected}");
    }
}
