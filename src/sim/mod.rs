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
//! use flatback::frame::{Frame, FrameSource};
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

pub use scenario::{Build, Kind, Scenario, UnknownKind};
pub use sensor::Stuck;
pub use truth::Truth;

use crate::frame::{Frame, FrameSource, Grid, SourceError};
use plan::Plan;
use rng::Rng;
use sensor::Sensor;

/// Frames of a simulated recording, with its ground truth.
#[derive(Debug, Clone)]
pub struct Simulator {
    scenario: Scenario,
    truth: Truth,
    plan: Plan,
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
            _ => (body::Loads::default(), 0.0, 1.0),
        };
        self.sensor.read(
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
