//! The mat: region loads spread over the taxels, FSR and divider, creep,
//! hysteresis, ADC noise, glitches and broken taxels.

use crate::contract::frame::Grid;

use super::body::MatLoads;
use super::rng::Rng;
use super::scenario::Scenario;

/// Standard normal CDF (Abramowitz-Stegun 7.1.26, |error| < 1.5e-7).
fn phi(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// How a taxel has failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stuck {
    /// Open wire: reads 0.
    Open,
    /// Short: reads full scale.
    Short,
}

#[derive(Debug, Clone)]
pub(crate) struct Sensor {
    grid: Grid,
    full: f64,
    /// Part-to-part gain of each taxel.
    gains: Vec<f64>,
    /// Force below which an FSR is open (reads ~0).
    thresholds: Vec<f64>,
    /// Hysteresis memory of each taxel's force.
    mem: Vec<f64>,
    hysteresis: f64,
    noise_sd: f64,
    noise_offset: f64,
    pub stuck: Vec<(usize, Stuck)>,
    /// Glitches per second, and the taxel that gets half of them, if any.
    glitch_hz: f64,
    hot: Option<usize>,
    /// The field: chance of a glitch per taxel sample, and mains hum:
    /// angular frequency (rad/s) and per taxel its amplitude's sine and
    /// cosine parts (counts).
    glitch_p: f64,
    hum_w: f64,
    hum: Vec<(f64, f64)>,
    // Per-frame scratch, allocated once.
    rows_u: Vec<f64>,
    rows_l: Vec<f64>,
    rows_s: Vec<f64>,
    cols_w: Vec<f64>,
}

/// Geometry of the three regions along the spine for `rows` rows:
/// (centre, sigma) in rows, and the load scale keeping per-taxel force
/// comparable across grid shapes.
fn regions(rows: usize) -> ([(f64, f64); 3], f64) {
    let k = rows as f64 / 4.0;
    ([(0.45 * k, 0.45 * k), (2.0 * k, 0.45 * k), (3.55 * k, 0.45 * k)], k)
}

impl Sensor {
    pub fn new(scn: &Scenario, r: &mut Rng) -> Sensor {
        let grid = scn.grid;
        let n = grid.len();
        let gains = (0..n).map(|_| (1.0 + 0.12 * r.normal()).clamp(0.75, 1.25)).collect();
        // The reference mat's taxels turn on at 129-133 counts of 10 bits
        // (no recording has a reading between 8 and 129): a conductance of
        // about 0.145 of the divider's, force 0.117.
        let thresholds = (0..n).map(|_| r.range(0.112, 0.122)).collect();
        let mut stuck = Vec::new();
        let mut hot = None;
        if scn.faults && n > 0 {
            let a = r.below(n as u64) as usize;
            stuck.push((a, Stuck::Open));
            if n > 1 {
                let mut b = r.below(n as u64) as usize;
                while b == a {
                    b = r.below(n as u64) as usize;
                }
                stuck.push((b, Stuck::Short));
            }
            if n > 2 {
                let mut c = r.below(n as u64) as usize;
                while stuck.iter().any(|&(i, _)| i == c) {
                    c = r.below(n as u64) as usize;
                }
                hot = Some(c);
            }
        }
        let glitch_hz = if !scn.glitches {
            0.0
        } else if scn.faults {
            1.1
        } else {
            0.06
        };
        let twelve = scn.adc_bits >= 12;
        let field = &scn.field;
        // Hum on each taxel: its own share of the amplitude and its phase
        // (drawn from a stream of their own: the lab's mats stay the same).
        let mut h = Rng::stream(scn.seed, 7);
        let hum: Vec<(f64, f64)> = (0..n)
            .map(|_| {
                let (a, phase) = (
                    field.hum_counts * h.range(0.3, 1.0),
                    h.range(0.0, std::f64::consts::TAU),
                );
                (a * phase.cos(), a * phase.sin())
            })
            .collect();
        // Field noise is in 10-bit counts, like everything in signals.md.
        let counts = scn.full_scale() as f64 / 1023.0;
        Sensor {
            grid,
            full: scn.full_scale() as f64,
            gains,
            thresholds,
            mem: vec![0.0; n],
            hysteresis: r.range(0.03, 0.08),
            noise_sd: (if twelve { 2.5f64 } else { 1.2 }).max(field.noise_counts * counts),
            noise_offset: if twelve { 3.2 } else { 0.8 },
            stuck,
            glitch_hz,
            hot,
            glitch_p: field.glitch_p,
            hum_w: std::f64::consts::TAU * field.hum_hz,
            hum: if field.hum_counts > 0.0 {
                hum.into_iter().map(|(c, s)| (c * counts, s * counts)).collect()
            } else {
                Vec::new()
            },
            rows_u: vec![0.0; grid.rows],
            rows_l: vec![0.0; grid.rows],
            rows_s: vec![0.0; grid.rows],
            cols_w: vec![0.0; grid.cols],
        }
    }

    /// Fills `out` with the counts of one frame at `t_s` seconds. `dt_ms` is
    /// the time since the previous frame (hysteresis), `col_off`/`col_sigma`
    /// the person's lateral placement.
    #[allow(clippy::too_many_arguments)]
    pub fn read(
        &mut self,
        t_s: f64,
        loads: &MatLoads,
        col_off: f64,
        col_sigma: f64,
        dt_ms: f64,
        rate_hz: f64,
        noise: &mut Rng,
        glitch: &mut Rng,
        out: &mut [u16],
    ) {
        let (rows, cols) = (self.grid.rows, self.grid.cols);
        let (geo, scale) = regions(rows);
        let bufs = [&mut self.rows_u, &mut self.rows_l, &mut self.rows_s];
        for (buf, &(c, s)) in bufs.into_iter().zip(geo.iter()) {
            let c = c + loads.row_off;
            for (r, m) in buf.iter_mut().enumerate() {
                *m = phi((r as f64 + 1.0 - c) / s) - phi((r as f64 - c) / s);
            }
        }
        let kc = cols as f64 / 4.0;
        let centre = cols as f64 / 2.0 + col_off * kc;
        for (c, w) in self.cols_w.iter_mut().enumerate() {
            let x = (c as f64 + 0.5 - centre) / (col_sigma * kc);
            *w = (-0.5 * x * x).exp();
        }
        let decay = (dt_ms / 2000.0).min(1.0);
        // Mains hum, sampled at the frame's time: A sin(wt + phase).
        let (hum_sin, hum_cos) = (self.hum_w * t_s).sin_cos();
        for (i, out_i) in out.iter_mut().enumerate().take(self.grid.len()) {
            let (r, c) = (i / cols, i % cols);
            let x = (c as f64 + 0.5) / cols as f64 * 2.0 - 1.0;
            let pelvis = (loads.lumbar * self.rows_l[r] + loads.sacrum * self.rows_s[r]) * (1.0 + loads.tilt * x);
            let force = self.gains[i] * loads.creep * self.cols_w[c] * scale * (loads.upper * self.rows_u[r] + pelvis);
            // Hysteresis: on unloading the FSR lags (reads higher).
            let m = &mut self.mem[i];
            if force > *m {
                *m = force;
            } else {
                *m -= (*m - force) * decay;
            }
            let fe = force + self.hysteresis * (*m - force);
            // FSR conductance ~ force^0.9, into the divider with 10k.
            let g = if fe > self.thresholds[i] { fe.powf(0.9) } else { 0.0 };
            let hum = self.hum.get(i).map_or(0.0, |&(c, s)| c * hum_sin + s * hum_cos);
            let v = self.full * g / (g + 1.0) + self.noise_offset + hum + self.noise_sd * noise.normal();
            *out_i = v.round().clamp(0.0, self.full) as u16;
        }
        if self.glitch_hz > 0.0 && glitch.chance(self.glitch_hz / rate_hz) {
            let i = match self.hot {
                Some(h) if glitch.chance(0.3) => h,
                _ => glitch.below(out.len() as u64) as usize,
            };
            out[i] = if glitch.chance(0.5) { 0 } else { self.full as u16 };
        }
        // Field glitches on any taxel (at most one per frame: at one in a
        // thousand per taxel, two on one frame are rare enough to leave out).
        if self.glitch_p > 0.0 && glitch.chance(self.glitch_p * out.len() as f64) {
            let i = glitch.below(out.len() as u64) as usize;
            out[i] = if glitch.chance(0.5) { 0 } else { self.full as u16 };
        }
        for &(i, s) in &self.stuck {
            out[i] = match s {
                Stuck::Open => 0,
                Stuck::Short => self.full as u16,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf() {
        assert!((phi(0.0) - 0.5).abs() < 1e-7);
        assert!((phi(1.0) - 0.841_344_746).abs() < 1e-6);
        assert!((phi(-1.96) - 0.024_997_9).abs() < 1e-6);
    }

    #[test]
    fn region_masses_cover_the_grid() {
        let (geo, _) = regions(4);
        for (c, s) in geo {
            let total: f64 = (0..4)
                .map(|r| phi((r as f64 + 1.0 - c) / s) - phi((r as f64 - c) / s))
                .sum();
            assert!(total > 0.75 && total <= 1.0);
        }
    }
}
