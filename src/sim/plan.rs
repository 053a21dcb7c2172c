//! The timeline of a recording, planned up front from the seed: who lies
//! down when, their body, every set, rep, arch, wobble and shift. The same
//! plan produces the ground truth and drives the frames, so both agree.
//!
//! All times are milliseconds on the recording clock (f64 holding whole
//! milliseconds for every instant that appears in the truth).

use super::rng::Rng;
use super::scenario::{Build, Kind, Scenario};
use super::truth::{Truth, TruthArch, TruthRep, TruthSession, TruthSet, TruthWobble};

/// Kinds a `Mixed` person draws from.
const MIX: [Kind; 8] = [
    Kind::CleanSet,
    Kind::Fatigue,
    Kind::Rushed,
    Kind::Bouncing,
    Kind::BentKnee,
    Kind::SingleLeg,
    Kind::ThreeSets,
    Kind::Still,
];

/// One person's body and habits.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    /// Loads of the three regions lying flat, pressed (force units where 1
    /// reads half scale on a taxel of gain 1).
    pub upper: f64,
    pub lumbar: f64,
    pub sacrum: f64,
    /// Placement: rows toward the feet (+) or head (-); columns right (+).
    pub row_off: f64,
    pub col_off: f64,
    /// Body width across the grid (in columns of the 4-wide mat).
    pub col_sigma: f64,
    /// Leg lever (1 straight legs, ~0.5 bent knee / single leg).
    pub lever: f64,
    /// Side-to-side pelvis loading of single-leg raises.
    pub asym: f64,
    /// Upper back unloading with the leg moment, sacrum loading with the
    /// legs' weight and with the moment.
    pub k_upper: f64,
    pub k_legs: f64,
    pub k_moment: f64,
    pub breath_hz: f64,
    pub breath_amp: f64,
    pub breath_phase: f64,
    /// FSR creep under this person's load: fraction and time constant (ms).
    pub creep: f64,
    pub creep_tau: f64,
    /// Settling swings after lying down.
    pub settle_amp: f64,
    pub settle_hz: f64,
    pub settle_tau: f64,
    pub settle_len: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct RepP {
    pub ascent: f64,
    pub top: f64,
    pub descent: f64,
    pub bottom: f64,
    /// Which leg for single-leg raises (+1 / -1), 0 otherwise.
    pub side: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct SetP {
    /// Legs leave the floor (ramp of `LIFT_MS` from here).
    pub start: f64,
    /// Legs back on the floor (ramp of `DROP_MS` up to here).
    pub end: f64,
    pub reps: Vec<RepP>,
}

/// An arch: the lumbar load-loss fraction rises to `amax` over `rise` ms
/// from `start`, holds, and recovers over `rec` ms from `rec_start`.
#[derive(Debug, Clone)]
pub(crate) struct ArchP {
    pub start: f64,
    pub rise: f64,
    pub amax: f64,
    pub rec_start: f64,
    pub rec: f64,
}

/// A small lumbar dip that is not an arch.
#[derive(Debug, Clone)]
pub(crate) struct WobP {
    pub start: f64,
    pub down: f64,
    pub hold: f64,
    pub up: f64,
    pub amax: f64,
}

/// A slow slide of the body along the spine.
#[derive(Debug, Clone)]
pub(crate) struct ShiftP {
    pub start: f64,
    pub len: f64,
    pub rows: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct SessionP {
    /// First contact when lying down.
    pub on: f64,
    /// Starts getting up (upper and lumbar unload from `on + 100`, all zero
    /// by `off + GETUP_MS`).
    pub off: f64,
    pub person: Person,
    pub sets: Vec<SetP>,
    pub arches: Vec<ArchP>,
    pub wobbles: Vec<WobP>,
    /// Slow slides along the spine: a shift while lying, slides mid-set.
    pub shifts: Vec<ShiftP>,
}

#[derive(Debug, Clone)]
pub(crate) struct SimPlan {
    pub sessions: Vec<SessionP>,
    pub end_ms: f64,
}

pub(crate) const LIFT_MS: f64 = 500.0;
pub(crate) const DROP_MS: f64 = 400.0;
pub(crate) const GETUP_MS: f64 = 1800.0;

/// How a kind shapes one person's session.
struct Style {
    bouncing: bool,
    single_leg: bool,
    lever: f64,
    sets: usize,
    reps: (usize, usize),
    rushed_p: f64,
    /// Arched reps at the end of set `i` of `n`.
    arched: fn(&mut Rng, usize, usize) -> usize,
}

fn no_arches(_: &mut Rng, _: usize, _: usize) -> usize {
    0
}

impl Style {
    fn of(kind: Kind) -> Style {
        let base = Style {
            bouncing: false,
            single_leg: false,
            lever: 1.0,
            sets: 1,
            reps: (8, 12),
            rushed_p: 0.0,
            arched: no_arches,
        };
        match kind {
            Kind::CleanSet | Kind::Mixed => base,
            Kind::Fatigue => Style {
                reps: (10, 12),
                arched: |r, _, _| r.int(2, 4),
                ..base
            },
            Kind::Rushed => Style {
                reps: (10, 12),
                rushed_p: 0.45,
                ..base
            },
            Kind::Bouncing => Style {
                bouncing: true,
                reps: (10, 15),
                ..base
            },
            Kind::BentKnee => Style {
                lever: 0.5,
                sets: 2,
                reps: (10, 12),
                arched: |r, i, n| if i + 1 == n { r.int(3, 4) } else { 0 },
                ..base
            },
            Kind::SingleLeg => Style {
                single_leg: true,
                lever: 0.5,
                sets: 2,
                arched: |r, i, n| if i + 1 == n { r.int(0, 2) } else { 0 },
                ..base
            },
            Kind::Faulty => Style {
                sets: 2,
                reps: (8, 10),
                rushed_p: 0.25,
                arched: |r, i, _| if i == 0 { r.int(3, 4) } else { 0 },
                ..base
            },
            Kind::Still => Style { sets: 0, ..base },
            Kind::ThreeSets => Style {
                sets: 3,
                rushed_p: 0.15,
                arched: |r, _, _| r.int(1, 4),
                ..base
            },
            Kind::TwoPeople => Style {
                reps: (8, 10),
                arched: |r, _, _| r.int(2, 3),
                ..base
            },
            // The field's kinds: sets as in the lab, with fatigue arches,
            // and the field's effects on top (`Scenario::field`).
            Kind::NoisyMat | Kind::SlowSampler => Style {
                sets: 3,
                rushed_p: 0.15,
                arched: |r, _, _| r.int(1, 3),
                ..base
            },
            Kind::Sliding | Kind::Pauses => Style {
                sets: 2,
                rushed_p: 0.15,
                arched: |r, i, n| if i + 1 == n { r.int(1, 3) } else { 0 },
                ..base
            },
            Kind::LongSession => Style {
                sets: 4,
                rushed_p: 0.1,
                arched: |r, _, _| r.int(0, 3),
                ..base
            },
            Kind::Borderline => Style {
                sets: 2,
                reps: (10, 12),
                arched: |r, _, _| r.int(2, 4),
                ..base
            },
            Kind::GymFloor => Style {
                sets: 3,
                rushed_p: 0.15,
                arched: |r, _, _| r.int(1, 3),
                ..base
            },
        }
    }

    /// The field's kinds do any of the three lifts: straight legs (half of
    /// them), bent knees or single legs.
    fn with_lift(self, kind: Kind, r: &mut Rng) -> Style {
        if Kind::LAB.contains(&kind) {
            return self;
        }
        match r.below(4) {
            0 => Style { lever: 0.5, ..self },
            1 => Style {
                lever: 0.5,
                single_leg: true,
                ..self
            },
            _ => self,
        }
    }
}

fn ms(x: f64) -> f64 {
    x.round()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Smoothstep on `[0, 1]`, clamped.
pub(crate) fn smooth(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// `x` in `[0, 1]` with `smooth(x) == y`.
fn inv_smooth(y: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if smooth(mid) < y {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

impl Person {
    fn draw(r: &mut Rng, build: Build, style: &Style) -> Person {
        let build = match build {
            Build::Any => {
                let u = r.f64();
                if u < 0.15 {
                    Build::Light
                } else if u < 0.3 {
                    Build::Heavy
                } else {
                    Build::Normal
                }
            }
            b => b,
        };
        let weight = match build {
            // With the reference mat's turn-on (130 counts), the lightest
            // read 130-160 on their lumbar taxels ("may read under 150").
            Build::Light => r.range(0.27, 0.4),
            Build::Heavy => r.range(5.0, 12.0),
            _ => r.range(0.75, 1.15),
        };
        let press = r.range(0.8, 1.25);
        Person {
            upper: 0.81 * weight * r.range(0.9, 1.1),
            lumbar: 1.37 * weight * press,
            sacrum: 1.25 * weight * r.range(0.9, 1.1),
            row_off: r.range(-0.5, 0.5),
            col_off: r.range(-0.5, 0.5),
            col_sigma: r.range(1.2, 1.5),
            lever: style.lever * r.range(0.85, 1.15),
            asym: if style.single_leg {
                r.range(0.25, 0.45)
            } else {
                r.range(0.0, 0.04)
            },
            k_upper: r.range(0.3, 0.4),
            k_legs: r.range(0.4, 0.55),
            k_moment: r.range(0.4, 0.55),
            breath_hz: r.range(0.2, 0.4),
            breath_amp: r.range(0.015, 0.035),
            breath_phase: r.range(0.0, std::f64::consts::TAU),
            creep: r.range(0.03, 0.07),
            creep_tau: r.range(60_000.0, 150_000.0),
            settle_amp: r.range(0.15, 0.35),
            settle_hz: r.range(1.0, 1.6),
            settle_tau: r.range(400.0, 800.0),
            settle_len: r.range(1500.0, 2500.0),
        }
    }
}

struct Tempo {
    ascent: f64,
    hold: f64,
    descent: f64,
    pause: f64,
}

fn tempo(r: &mut Rng, style: &Style, rushed: bool) -> Tempo {
    if style.bouncing {
        return Tempo {
            ascent: ms(r.range(800.0, 1100.0)),
            hold: ms(r.range(0.0, 100.0)),
            descent: ms(r.range(800.0, 1100.0)),
            pause: ms(r.range(50.0, 200.0)),
        };
    }
    Tempo {
        ascent: ms(r.range(1000.0, 1800.0)),
        hold: ms(r.range(200.0, 800.0)),
        descent: if rushed {
            ms(r.range(900.0, 2000.0))
        } else {
            ms(r.range(3500.0, 5000.0))
        },
        pause: ms(r.range(300.0, 1500.0)),
    }
}

/// The longest a set may run past its last descent, and the lying after the
/// last set: used to check that a rep still fits the time budget.
const SET_TAIL_MAX: f64 = 3000.0;
const LIE_AFTER_MAX: f64 = 6000.0;

struct SessionOut {
    plan: SessionP,
    truth: TruthSession,
    arches: Vec<TruthArch>,
    wobbles: Vec<TruthWobble>,
    ignore: [[u64; 2]; 2],
}

fn plan_session(
    r: &mut Rng,
    scn: &Scenario,
    kind: Kind,
    session: usize,
    on: f64,
    latest_off: f64,
    last_person: bool,
) -> Option<SessionOut> {
    if latest_off - on < 8000.0 {
        return None;
    }
    let field = &scn.field;
    // The field's effects draw from a stream of their own, so that the
    // lab's plans stay what they were.
    let mut fr = Rng::stream(scn.seed ^ ((session as u64) << 32), 0xF1E1_D001);
    let style = Style::of(kind).with_lift(kind, &mut fr);
    let mut person = Person::draw(r, scn.build, &style);
    if field.creep > 0.0 {
        person.creep = field.creep;
        person.creep_tau = field.creep_tau_s * 1000.0;
    }
    let settle_ignore = ms(r.range(3000.0, 3900.0));
    let nsets = scn.sets_per_person.unwrap_or(if field.long_session && style.sets > 0 {
        style.sets.max(4)
    } else {
        style.sets
    });
    let mut slides: Vec<ShiftP> = Vec::new();
    let mut sets: Vec<SetP> = Vec::new();
    let mut arches: Vec<ArchP> = Vec::new();
    let mut t_arches: Vec<TruthArch> = Vec::new();
    let mut t_sets: Vec<TruthSet> = Vec::new();
    let mut t = on + ms(r.range(3500.0, 5500.0));
    for si in 0..nsets {
        if let Some(prev) = sets.last() {
            t = prev.end + ms(r.range(15_000.0, 40_000.0));
            if field.long_session {
                // Four sets over about ten minutes.
                t += ms(fr.range(45_000.0, 80_000.0));
            }
        }
        let start = t;
        let nreps = scn.reps_per_set.unwrap_or_else(|| r.int(style.reps.0, style.reps.1));
        let narched = (style.arched)(r, si, nsets).min(nreps);
        let mut reps = Vec::new();
        let mut rushed_flags = Vec::new();
        let mut a = start + ms(r.range(1100.0, 2000.0));
        for ri in 0..nreps {
            let rushed = style.bouncing || r.chance(style.rushed_p);
            let mut tp = tempo(r, &style, rushed);
            if field.pauses > 0.0 && !style.bouncing && fr.chance(field.pauses) {
                // Catching their breath at the bottom, legs hovering.
                tp.pause = ms(fr.range(2000.0, 5000.0));
            }
            let top = a + tp.ascent;
            let descent = top + tp.hold;
            let bottom = descent + tp.descent;
            if bottom + SET_TAIL_MAX + LIE_AFTER_MAX > latest_off {
                break;
            }
            let side = if style.single_leg {
                if ri % 2 == 0 {
                    1.0
                } else {
                    -1.0
                }
            } else {
                0.0
            };
            reps.push(RepP {
                ascent: a,
                top,
                descent,
                bottom,
                side,
            });
            rushed_flags.push(tp.descent < 3000.0);
            a = bottom + tp.pause;
        }
        if reps.is_empty() {
            break;
        }
        let end = reps.last().unwrap().bottom + ms(r.range(900.0, SET_TAIL_MAX));
        let n = reps.len();
        let narched = if style.bouncing { 0 } else { narched.min(n) };
        let mut arched_flags = vec![false; n];
        for j in 0..narched {
            let ri = n - narched + j;
            let rep = &reps[ri];
            let desc = rep.bottom - rep.descent;
            // The first arched rep loses it late in the descent or at the
            // bottom; each later one earlier (fatigue).
            let frac = (0.92 - 0.22 * j as f64 + r.range(-0.08, 0.08)).clamp(0.2, 1.1);
            let next_ascent = reps.get(ri + 1).map(|n| n.ascent);
            let pause_end = next_ascent.unwrap_or(end - DROP_MS);
            let mut onset = rep.descent + frac * desc;
            if onset > rep.bottom {
                onset = onset.min(rep.bottom + 0.5 * (pause_end - rep.bottom));
            }
            let onset = ms(onset);
            let mut amax = round3(r.range(0.72, 0.99));
            if field.borderline {
                // Only just past half contact: the lumbar region keeps 25-42 %.
                amax = round3(fr.range(0.58, 0.75));
            }
            let rise = r.range(150.0, 400.0);
            let start_a = onset - inv_smooth(0.5 / amax) * rise;
            let rec = r.range(300.0, 600.0);
            let v = inv_smooth(1.0 - 0.5 / amax);
            let mut end_a = match next_ascent {
                Some(na) => na + ms(r.range(300.0, 600.0)),
                None => end - ms(r.range(150.0, 250.0)),
            };
            let earliest = (start_a + rise + 100.0 + v * rec).ceil();
            if end_a < earliest {
                end_a = earliest;
            }
            arches.push(ArchP {
                start: start_a,
                rise,
                amax,
                rec_start: end_a - v * rec,
                rec,
            });
            t_arches.push(TruthArch {
                onset_ms: onset as u64,
                end_ms: end_a as u64,
                amax,
                set: t_sets.len(),
                rep: ri,
                session,
            });
            arched_flags[ri] = true;
        }
        t_sets.push(TruthSet {
            start_ms: start as u64,
            end_ms: end as u64,
            reps: reps
                .iter()
                .zip(rushed_flags.iter().zip(&arched_flags))
                .map(|(rp, (&rushed, &arched))| TruthRep {
                    ascent_start_ms: rp.ascent as u64,
                    top_ms: rp.top as u64,
                    descent_start_ms: rp.descent as u64,
                    descent_end_ms: rp.bottom as u64,
                    descent_ms: (rp.bottom - rp.descent) as u64,
                    rushed,
                    arched,
                    perfect: !rushed && !arched && !style.bouncing,
                })
                .collect(),
        });
        if field.slides > 0.0 && fr.chance(field.slides) {
            // The legs' work pushes the body along the mat mid-set: a third
            // to half a row over 10-25 s, back toward the middle of the grid
            // if it lies off it.
            let from = reps[0].bottom;
            let start = fr.range(from, (end - 10_000.0).max(from));
            let len = fr.range(10_000.0, 25_000.0).min((end - start).max(8000.0));
            let at = person.row_off + slides.iter().map(|s| s.rows).sum::<f64>();
            let toward_feet = if at.abs() > 0.1 { at < 0.0 } else { fr.chance(0.5) };
            let sign = if toward_feet { 1.0 } else { -1.0 };
            slides.push(ShiftP {
                start,
                len,
                rows: sign * fr.range(1.0 / 3.0, 0.5),
            });
        }
        sets.push(SetP { start, end, reps });
    }
    let off = match sets.last() {
        Some(last) => last.end + ms(r.range(3000.0, LIE_AFTER_MAX)),
        None => {
            let natural = if kind == Kind::Still {
                on + ms(r.range(120_000.0, 140_000.0))
            } else {
                on + ms(r.range(12_000.0, 20_000.0))
            };
            if kind == Kind::Still && scn.duration_s.is_some() && last_person {
                latest_off
            } else {
                natural.min(latest_off)
            }
        }
    };

    // Micro-wobbles: not in or near an arch, a leg transition, or another
    // wobble.
    let lo = on + settle_ignore + 1000.0;
    let hi = off - 3000.0;
    let mut want = if kind == Kind::Still { r.int(2, 5) } else { r.int(1, 3) };
    if field.borderline {
        want += fr.int(2, 4);
    }
    let mut wobbles: Vec<WobP> = Vec::new();
    let mut tries = 0;
    while wobbles.len() < want && tries < 50 && hi > lo {
        tries += 1;
        let s = ms(r.range(lo, hi));
        let near_arch = arches
            .iter()
            .any(|a| s > a.start - 1500.0 && s < a.rec_start + a.rec + 1500.0);
        let near_legs = sets
            .iter()
            .any(|st| (s - st.start).abs() < 1500.0 || (s - st.end).abs() < 1500.0);
        let near_wob = wobbles.iter().any(|w| (s - w.start).abs() < 3000.0);
        if near_arch || near_legs || near_wob {
            continue;
        }
        wobbles.push(WobP {
            start: s,
            down: r.range(150.0, 300.0),
            hold: r.range(100.0, 300.0),
            up: r.range(200.0, 400.0),
            amax: round3(r.range(0.08, 0.25)),
        });
        if field.borderline {
            // Wobbles taking away up to a third of the lumbar load.
            wobbles.last_mut().expect("just pushed").amax = round3(fr.range(0.15, 1.0 / 3.0));
        }
    }
    wobbles.sort_by(|a, b| a.start.total_cmp(&b.start));
    let t_wobbles = wobbles
        .iter()
        .map(|w| TruthWobble {
            onset_ms: w.start as u64,
            amax: w.amax,
        })
        .collect();

    let shift_p = if kind == Kind::Still { 0.9 } else { 0.35 };
    let shift = if r.chance(shift_p) {
        let s_lo = on + settle_ignore + 5000.0;
        let s_hi = off - 25_000.0;
        if s_hi > s_lo {
            let start = r.range(s_lo, s_hi);
            let len = r.range(20_000.0, 60_000.0).min(off - 3000.0 - start);
            let sign = if r.chance(0.5) { 1.0 } else { -1.0 };
            Some(ShiftP {
                start,
                len,
                rows: sign * r.range(0.1, 0.3),
            })
        } else {
            None
        }
    } else {
        None
    };

    Some(SessionOut {
        truth: TruthSession {
            on_ms: on as u64,
            off_ms: off as u64,
            sets: t_sets,
        },
        ignore: [
            [on as u64, (on + settle_ignore) as u64],
            [(off - 2000.0) as u64, (off + 2000.0) as u64],
        ],
        plan: SessionP {
            on,
            off,
            person,
            sets,
            arches,
            wobbles,
            shifts: shift.into_iter().chain(slides).collect(),
        },
        arches: t_arches,
        wobbles: t_wobbles,
    })
}

/// Plans the whole recording.
pub(crate) fn plan(scn: &Scenario) -> (SimPlan, Truth) {
    // The kind is mixed in so that kinds sharing a seed differ.
    let kind_ix = Kind::ALL.iter().position(|&k| k == scn.kind).unwrap_or(0) as u64;
    let mut r = Rng::stream(scn.seed, 1 + (kind_ix << 8));
    let budget = scn.duration_s.map(|d| (d.max(0.0) * 1000.0).floor());
    let tail = ms(r.range(3300.0, 4300.0));
    let mut cursor = ms(r.range(2000.0, 5000.0));
    let mut sessions = Vec::new();
    let mut truth = Truth {
        kind: scn.kind.name().to_string(),
        seed: scn.seed,
        rate_hz: scn.rate_hz,
        rows: scn.grid.rows,
        cols: scn.grid.cols,
        adc_bits: scn.adc_bits,
        duration_ms: 0,
        sessions: Vec::new(),
        arches: Vec::new(),
        ignore: Vec::new(),
        micro_wobbles: Vec::new(),
    };
    for i in 0..scn.people {
        let kind = if scn.kind == Kind::Mixed {
            r.pick(&MIX)
        } else {
            scn.kind
        };
        // The person must be up (GETUP_MS) and the tail recorded in budget.
        let latest_off = budget.map_or(f64::INFINITY, |b| b - tail.max(GETUP_MS + 200.0));
        let Some(out) = plan_session(&mut r, scn, kind, i, cursor, latest_off, i + 1 == scn.people) else {
            break;
        };
        cursor = out.plan.off + ms(r.range(6000.0, 11_000.0));
        truth.sessions.push(out.truth);
        truth.arches.extend(out.arches);
        truth.micro_wobbles.extend(out.wobbles);
        truth.ignore.extend(out.ignore);
        sessions.push(out.plan);
    }
    let end_ms = match (budget, sessions.last()) {
        (Some(b), _) => b,
        (None, Some(last)) => last.off + tail,
        (None, None) => cursor + 10_000.0,
    };
    truth.duration_ms = end_ms as u64;
    (SimPlan { sessions, end_ms }, truth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_smoothstep() {
        for y in [0.1, 0.5, 0.7, 0.99] {
            assert!((smooth(inv_smooth(y)) - y).abs() < 1e-9);
        }
    }

    #[test]
    fn plan_respects_duration() {
        for kind in Kind::ALL {
            for seed in 0..5 {
                let scn = Scenario::new(kind, seed).with_duration(60.0);
                let (p, t) = plan(&scn);
                assert_eq!(t.duration_ms, 60_000);
                for s in &t.sessions {
                    assert!(s.off_ms + 2000 <= 60_000, "{kind} {seed}");
                }
                assert_eq!(p.sessions.len(), t.sessions.len());
            }
        }
    }

    #[test]
    fn fatigue_arches_come_earlier() {
        for seed in 0..20 {
            let (_, t) = plan(&Scenario::new(Kind::Fatigue, seed));
            let reps: Vec<&TruthRep> = t.reps().collect();
            assert!(t.arches.len() >= 2);
            let lag: Vec<i64> = t
                .arches
                .iter()
                .map(|a| a.onset_ms as i64 - reps[a.rep].descent_start_ms as i64)
                .collect();
            assert!(lag.windows(2).all(|w| w[1] < w[0] + 400), "{lag:?}");
            for a in &t.arches {
                assert!(reps[a.rep].arched && !reps[a.rep].perfect);
                assert!(a.amax > 0.5 && a.amax < 1.0 && a.end_ms > a.onset_ms + 300);
            }
        }
    }
}
