//! The body on the mat at an instant: region loads from the plan. A pure
//! function of time, so frames can be generated lazily in any amount.

use std::f64::consts::{FRAC_PI_2, TAU};

use super::plan::{smooth, SessionP, DROP_MS, GETUP_MS, LIFT_MS};

/// What the mat carries at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct MatLoads {
    pub upper: f64,
    pub lumbar: f64,
    pub sacrum: f64,
    /// Side-to-side tilt of the pelvis load (single-leg raises).
    pub tilt: f64,
    /// Row offset of the body now (placement plus slow shift).
    pub row_off: f64,
    /// FSR creep factor of this person's load.
    pub creep: f64,
}

/// The legs' descent, eased into the hover, spans this many times the
/// descent of the truth.
const DESCENT_EASE: f64 = 1.1;
/// Breathing moves the trunk: the sacrum, under the pelvis, feels it at
/// this share of the upper back's swing (the reference mat's still
/// recording: rows from the head 1.0, 1.4, 0.9, 0.5, each row carrying
/// part of its neighbours').
const SACRUM_BREATH: f64 = 0.45;

impl SessionP {
    /// Whether the person touches the mat at `t`.
    pub fn covers(&self, t: f64) -> bool {
        t >= self.on && t < self.off + GETUP_MS + 200.0
    }

    /// Legs lifted (0 on the floor, 1 up), leg height (0 hover, 1 vertical)
    /// and the side of the current rep.
    fn legs(&self, t: f64) -> (f64, f64, f64) {
        let i = self.sets.partition_point(|s| s.start <= t);
        if i == 0 {
            return (0.0, 0.0, 0.0);
        }
        let set = &self.sets[i - 1];
        if t >= set.end {
            return (0.0, 0.0, 0.0);
        }
        let up = smooth((t - set.start) / LIFT_MS) * (1.0 - smooth((t - (set.end - DROP_MS)) / DROP_MS));
        let j = set.reps.partition_point(|r| r.ascent <= t);
        if j == 0 {
            return (up, 0.0, set.reps.first().map_or(0.0, |r| r.side));
        }
        let r = &set.reps[j - 1];
        // Single-leg raises switch legs smoothly at the start of the ascent.
        let side = match j {
            1 => r.side,
            _ => {
                let prev = set.reps[j - 2].side;
                prev + (r.side - prev) * smooth((t - r.ascent) / 600.0)
            }
        };
        let h = if t < r.top {
            smooth((t - r.ascent) / (r.top - r.ascent))
        } else if t < r.descent {
            1.0
        } else {
            // The legs ease into the hover: at the end of the descent (the
            // truth's, when they arrive) they are within 2.3 % of its angle,
            // and settle the rest of the way over another tenth of it. (So
            // the reference mat's recordings show it: the seesaw crosses
            // each level of its swing at 1.1 times the share of the descent
            // that smoothstep takes.)
            1.0 - smooth((t - r.descent) / (DESCENT_EASE * (r.bottom - r.descent)))
        };
        (up, h, side)
    }

    /// Lumbar load-loss fraction of arches at `t` (0..1).
    pub fn arch_loss(&self, t: f64) -> f64 {
        let i = self.arches.partition_point(|a| a.start <= t);
        if i == 0 {
            return 0.0;
        }
        let a = &self.arches[i - 1];
        if t < a.start + a.rise {
            a.amax * smooth((t - a.start) / a.rise)
        } else if t < a.rec_start {
            a.amax
        } else {
            a.amax * (1.0 - smooth((t - a.rec_start) / a.rec))
        }
    }

    fn wobble_loss(&self, t: f64) -> f64 {
        let i = self.wobbles.partition_point(|w| w.start <= t);
        if i == 0 {
            return 0.0;
        }
        let w = &self.wobbles[i - 1];
        let x = t - w.start;
        if x < w.down {
            w.amax * smooth(x / w.down)
        } else if x < w.down + w.hold {
            w.amax
        } else {
            w.amax * (1.0 - smooth((x - w.down - w.hold) / w.up))
        }
    }

    /// Region loads at `t` (zero outside the session).
    pub fn loads(&self, t: f64) -> MatLoads {
        if !self.covers(t) {
            return MatLoads::default();
        }
        let p = &self.person;
        let lie = t - self.on;
        let up = t - self.off;
        // Lying down: the sacrum touches first, then lumbar, then upper back.
        let mut env_u = smooth((lie - 150.0) / 600.0);
        let mut env_l = smooth((lie - 80.0) / 550.0);
        let mut env_s = smooth(lie / 500.0);
        // Settling: a second or two of rocking swings.
        let x = lie - 450.0;
        let swing = if x > 0.0 && x < p.settle_len {
            p.settle_amp * (-x / p.settle_tau).exp() * (TAU * p.settle_hz * x / 1000.0).sin()
        } else {
            0.0
        };
        // Getting up: lumbar unloads first as the person sits up, then the
        // upper back, the sacrum presses, then everything goes to zero.
        let mut bump = 1.0;
        if up > 0.0 {
            env_l *= 1.0 - smooth((up - 100.0) / 450.0);
            env_u *= 1.0 - smooth((up - 200.0) / 500.0);
            env_s *= 1.0 - smooth((up - 700.0) / 900.0);
            bump = 1.0 + 0.15 * smooth(up / 500.0);
        }
        let (legs, h, side) = self.legs(t);
        // The legs' moment about the hips goes with the cosine of their angle
        // from the floor; the angle moves smoothly (`h`: 0 hover, 1 vertical).
        let moment = legs * (FRAC_PI_2 * h).cos() * p.lever;
        let f = self.arch_loss(t);
        let fw = self.wobble_loss(t);
        let breath = (TAU * p.breath_hz * t / 1000.0 + p.breath_phase).sin() * p.breath_amp;
        let shift: f64 = self.shifts.iter().map(|s| s.rows * smooth((t - s.start) / s.len)).sum();
        MatLoads {
            upper: p.upper
                * env_u
                * (1.0 - p.k_upper * moment)
                * (1.0 - 0.08 * f)
                * (1.0 + breath)
                * (1.0 - 0.6 * swing),
            lumbar: p.lumbar
                * env_l
                * (1.0 - 0.05 * moment)
                * (1.0 - f)
                * (1.0 - fw)
                * (1.0 + 1.3 * breath)
                * (1.0 + swing),
            sacrum: p.sacrum
                * env_s
                * bump
                * (1.0 + p.k_legs * legs + p.k_moment * moment)
                * (1.0 + 0.15 * f)
                * (1.0 + SACRUM_BREATH * breath)
                * (1.0 - 0.4 * swing),
            tilt: p.asym * side * legs,
            row_off: p.row_off + shift,
            creep: 1.0 + p.creep * (1.0 - (-lie / p.creep_tau).exp()),
        }
    }
}
