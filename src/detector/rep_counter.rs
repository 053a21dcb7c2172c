//! Reps and sets from the legs' lever.
//!
//! The legs' weight and lever move load between the sacrum and the upper
//! back: the seesaw `s = (sacral - upper) / (sacral + upper)` (force
//! proxies of those two ends only, see `Summary::seesaw`) sits at a rest level while the heels are on the floor, rises to a "hover" level when
//! the legs are lifted low, and falls back part of the way when they are
//! vertical. A rep is one bottom -> top -> bottom cycle of the lifted legs; the
//! lift-off before the first rep and the drop after the last are half cycles
//! from and to the rest level, so they never complete a rep.

use super::{low_pass, DetectorConfig};
use crate::contract::event::{Event, RepEvent, SetEvent};

/// Seesaw rise over the rest level that means the legs are off the floor.
const LIFT: f32 = 0.08;
/// Seconds the seesaw must stay above `LIFT` to count as a lift.
const LIFT_S: f32 = 0.3;
/// Right after lift-off the legs swing into the hover (an overshoot that
/// would look like a small rep); the bottom simply follows them this long.
const LIFT_SETTLE_US: u64 = 800_000;
/// Lifted legs put their weight on the pelvis: the whole load rises above
/// this share of its rest level (a person shifting along the mat moves the
/// seesaw as quickly, without it).
const LIFTED_LOAD: f32 = 1.02;
/// Once the seesaw says the legs are lifting, the whole load need only stay
/// above this share: the pelvis rows of a heavy person saturate (the divider
/// gives no more counts), and an upper back on taxels near their turn-on
/// empties, so the lever's unloading of it can even lower the load a
/// little. Sitting up takes the trunk off the mat, the lumbar region first:
/// the whole load falls below this share within a few hundred milliseconds.
const LIFTED_LOAD_MIN: f32 = 0.85;
/// A cycle that has not come down to the bottom this long after its
/// ascent began is no rep: an ascent takes under two seconds, the legs are
/// held up for a second at most and come down within five. Either they are
/// on the floor (a person who slid along the mat rests at a seesaw as low as
/// a rep's top, and on a noisy mat or with creep the whole load can stay
/// above its rest level), and the rest level is learnt there; or, with the
/// seesaw above rest and the legs' weight on the pelvis, they are still
/// lifted and the bottom learnt before was out of reach.
const STALL_S: f32 = 9.0;
/// The whole load is compared with its rest level over this many seconds
/// (on a noisy mat it flickers from frame to frame).
const RATIO_TAU_S: f32 = 0.5;
/// The rest level is the mean over this long before the legs count as down.
const LEVEL_US: u64 = 1_000_000;
/// Lifted legs tip load off the upper back (by a tenth or more even with
/// the short lever of bent knees); with the upper back as loaded as at rest,
/// a rising seesaw is something else (a light person's sacral taxel
/// crossing its turn-on threshold as they breathe).
const LIFTED_UPPER: f32 = 0.94;
/// The shortest descent of a real rep (bouncing ones take about a second).
const MIN_DESCENT_US: f32 = 400_000.0;
/// The whole load with lifted legs is averaged over this many seconds.
const LIFTED_GAIN_TAU_S: f32 = 5.0;
/// With the legs down the whole load is within this share of its rest
/// level (creep and hysteresis stay below it), or within half the lifted
/// legs' gain, whichever is more.
const LEGS_DOWN_GAIN: f32 = 0.15;
/// Lifted legs are on the floor when their weight is off the pelvis: the
/// whole load under its rest level plus this share of the lifted legs'
/// gain, or plus `LEGS_DOWN_GAIN`, whichever is more.
const FLOOR_GAIN_SHARE: f32 = 0.5;
/// Near rest: the seesaw less than this share of `LIFT` above rest, or...
const NEAR_REST_LIFT_SHARE: f32 = 0.5;
/// ...this share of the bottom's height, whichever is more.
const NEAR_REST_HEIGHT_SHARE: f32 = 0.2;
/// For arches, the legs are down in this lower share of the swing.
const WEIGHT_OFF_HEIGHT_SHARE: f32 = 0.5;
/// See [`RepCounter::legs_lifted`].
const LIFTED_SURE_US: u64 = 1_000_000;
/// Seconds near the rest level that mean the legs are back on the floor.
const REST_S: f32 = 2.5;
/// Leaving the bottom: the seesaw fell this share of the bottom's height
/// above rest (an ascent has begun).
const ASCENT_SHARE: f32 = 0.15;
/// The legs' moment about the hips goes with the cosine of their angle from
/// the floor, and the angle moves smoothly (smoothstep) from vertical to the
/// hover, easing in over the last tenth: the seesaw has covered share `L`
/// of its swing at share `descent_x(L)` of the descent (so the reference
/// mat's recordings show it: 0.255 of the descent at L = 0.2, 0.424 at 0.5,
/// 0.621 at 0.8). The descent is the line through the crossings of these
/// levels: the whole swing but its flat ends, so that a slow disturbance
/// (breathing, on a short lever) moves some crossings early and some late.
const FIT_LEVELS: [f32; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
/// Without an arch, the levels up to 0.8 only: past it the legs ease into
/// the bottom, and the crossing of 0.9 moves most with the bottom level (the
/// mean over the trace's last `BOTTOM_US`, which a level still creeping or a
/// short pause shifts) and with the lever's shape near the hover, which
/// differs with the legs' posture. An arched descent keeps every level: it
/// is timed on the few crossings before the arch.
const CLEAN_FIT_LEVELS: [f32; 8] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];
const DESCENT_EASE: f32 = 1.1;
/// Without enough clean crossings (an arch early in the descent): the time
/// between the 10 % and 85 % crossings is this share of the descent.
const DESCENT_DONE: f32 = 0.85;
const DESCENT_START: f32 = 0.1;
const DESCENT_SPAN: f32 = 0.52;
/// ...and the descent ends a third of its length after the 85 % crossing
/// (which is two thirds of the way): its length divided by this.
const AFTER_85_PARTS: f32 = 3.0;
/// One sample of the descent is kept per this many microseconds (bounded
/// memory at any frame rate).
const TRACE_STEP_US: u64 = 10_000;
const TRACE_LEN: usize = 1500;
/// A descent has reached the bottom when it rose at least this share of the
/// way from the top to the person's usual bottom...
const DONE_MIN: f32 = 0.6;
/// The smallest swing of a rep, as a share of the bottom's height above rest.
const MIN_SWING: f32 = 0.25;
/// ...and then stopped rising for this long (the pause at the bottom hover;
/// the wait also catches an arch at the bottom, which belongs to this rep).
const PLATEAU_S: f32 = 0.6;
/// The rep is emitted this long after the descent's estimated end (in the
/// middle of where it may be), or when the next ascent begins.
const EMIT_AFTER_END_US: f32 = 750_000.0;
/// An arched rep waits for its estimated end at most this long after its
/// descent was seen over: an arch 60-85 % of the way down is seen up to
/// 1.7 s before the bottom, and an estimate from the seesaw before the
/// arch can be seconds late on a noisy mat.
const ARCHED_WAIT_US: u64 = 1_500_000;
/// A person who slides along the mat mid-set moves the seesaw's levels (the
/// sacrum onto a lumbar row): the bottom learnt before is out of reach. A
/// rep's swing is taken as at most this many times the last one's.
const SWING_GROWTH: f32 = 1.5;
/// With the legs resting, their levels (the seesaw, the whole load, the
/// upper back's) follow over this long.
const REST_TAU_S: f32 = 10.0;
/// The bottom follows the seesaw at the bottom hover: quickly right after
/// lift-off, in `BOTTOM_DOWN_TAU_S` as the legs come lower, slowly as they
/// rise (an ascent must not drag it up).
const BOTTOM_SETTLING_TAU_S: f32 = 0.1;
const BOTTOM_DOWN_TAU_S: f32 = 0.3;
const BOTTOM_UP_TAU_S: f32 = 10.0;
/// Rising less than this share of the cycle's height is "not rising".
const PLATEAU_EPS: f32 = 0.03;
/// The seesaw is smoothed over this many seconds (noise would otherwise
/// keep making new highs on a flat bottom).
const SMOOTH_S: f32 = 0.05;

/// A rep whose cycle (bottom to bottom) is shorter than this has no pause:
/// bouncing.
const BOUNCE_CYCLE_S: f32 = 2.6;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Legs {
    /// Heels on the floor since this time.
    Rest {
        since_us: u64,
    },
    /// Seesaw above the lift level since this time (not yet confirmed).
    Lifting {
        since_us: u64,
    },
    Lifted,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RepPhase {
    Bottom,
    Cycle(Cycle),
}

/// A cycle of the lifted legs: its ascent, its top, its descent so far.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cycle {
    /// When the ascent began.
    start_us: u64,
    /// The top so far (the lowest seesaw), at `min_us`: the descent's start
    /// until a higher top comes.
    min: f32,
    min_us: u64,
    /// When the descent passed `DESCENT_START` of the swing after that top.
    t10_us: Option<u64>,
    /// The highest point of the descent so far, last raised at `high_us`.
    high: f32,
    high_us: u64,
    /// The same for the pelvis share (see `RepCounter::pelvis_settled`).
    pelvis_high: f32,
    pelvis_high_us: u64,
}

impl RepPhase {
    /// A cycle whose ascent began at `start_us`, with its top so far `s` at
    /// `t_us` (the descent's start, until a higher top comes), the pelvis
    /// share `pelvis` there.
    fn cycle(start_us: u64, t_us: u64, s: f32, pelvis: f32) -> RepPhase {
        RepPhase::Cycle(Cycle {
            start_us,
            min: s,
            min_us: t_us,
            t10_us: None,
            high: s,
            high_us: t_us,
            pelvis_high: pelvis,
            pelvis_high_us: t_us,
        })
    }
}

impl Cycle {
    /// The cycle after one more frame of its descent at `t_us` (the seesaw
    /// `s`, the pelvis share `pelvis`, whose value at the top was
    /// `pelvis_top`): the 10 % crossing once, and a new high only when it
    /// rises by more than `PLATEAU_EPS` (noise on a flat bottom must not
    /// keep the plateau from starting).
    fn followed(mut self, t_us: u64, s: f32, span: f32, pelvis: f32, pelvis_top: f32) -> Cycle {
        if self.t10_us.is_none() && s >= self.min + DESCENT_START * span {
            self.t10_us = Some(t_us);
        }
        if s > self.high + PLATEAU_EPS * span {
            self.high = s;
            self.high_us = t_us;
        }
        if pelvis > self.pelvis_high + PLATEAU_EPS * (self.pelvis_high - pelvis_top).max(0.0) {
            (self.pelvis_high, self.pelvis_high_us) = (pelvis, t_us);
        }
        self
    }
}

/// One frame of lifted legs, as the steps of `RepCounter::lifted` read it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LiftedFrame {
    t_us: u64,
    /// The seesaw (smoothed) and its rest level.
    s: f32,
    rest: f32,
    /// The bottom's height above rest, at least `LIFT`.
    height: f32,
    in_arch: bool,
    /// See [`floor_load`].
    floor_load: f32,
}

/// How a descent ended.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DescentEnd {
    /// The legs stopped at the bottom (the seesaw stopped rising).
    plateau: bool,
    /// They went up again (or dropped to the floor) without a pause, as in
    /// bouncing, or after a pause short of the bottom learnt before.
    turned: bool,
}

/// What the rows say on one frame, as far as the legs are concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loads {
    /// `(sacral - upper) / (sacral + upper)`.
    pub seesaw: f32,
    /// The whole load.
    pub total: f32,
    /// The upper back's load.
    pub upper: f32,
    /// The sacrum's share of the pelvis: `sacral / (lumbar + sacral)`.
    pub pelvis: f32,
    /// The sacrum's load on the left half of the grid, as a share of both
    /// halves: it moves when the load moves sideways (see `level_side_shifts`).
    pub side: f32,
}

/// One sample of the descent (see `TRACE_STEP_US`), smoothed.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TracePoint {
    t_us: u64,
    seesaw: f32,
    pelvis: f32,
    upper: f32,
    /// See [`lever`].
    lever: f32,
    side: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct PendingRep {
    emit_at_us: u64,
    descent_ms: u64,
    ascent_ms: u64,
    done_us: u64,
    /// The depth of the arch this rep carries, if any. An arched rep is
    /// emitted when the legs reach the bottom (`emit_at_us`, or when they
    /// are put down), not when the arch moves the seesaw: during an arch the
    /// seesaw is not the legs' alone, and its fall then is no ascent.
    arch: Option<f32>,
}

impl PendingRep {
    /// Whether the rep is to be emitted on an ascent at `t_us`: a clean one
    /// at once, an arched one only once the legs are at the bottom.
    fn due_on_ascent(&self, t_us: u64) -> bool {
        self.arch.is_none() || t_us >= self.emit_at_us
    }
}

#[derive(Debug, Clone)]
pub struct RepCounter {
    min_descent_ms: u64,
    set_rest_us: u64,
    progress_reps: u32,
    rest_level: Option<f32>,
    /// The seesaw, smoothed over `SMOOTH_S`.
    smooth: f32,
    /// The whole load with the legs resting, and how much more of it there
    /// is (a share) while they are lifted: the heels no longer carry the
    /// legs' weight.
    rest_total: f32,
    /// The upper back's load with the legs resting.
    rest_upper: f32,
    lifted_gain: f32,
    /// This frame's load as a share of `rest_total`.
    total_ratio: f32,
    legs: Legs,
    bottom: f32,
    phase: RepPhase,
    pending: Option<PendingRep>,
    last_done_us: Option<u64>,
    /// An arch started in the current cycle (since the last descent ended),
    /// and its depth.
    arch_in_rep: Option<f32>,
    /// When the last arch started (the seesaw is not the legs' alone after).
    arch_at_us: Option<u64>,
    last_top: Option<f32>,
    /// The swing (bottom minus top) of the last rep of this set.
    last_swing: Option<f32>,
    /// The seesaw (and the pelvis and upper back) since the top of the
    /// current cycle, decimated.
    trace: Vec<TracePoint>,
    /// The pelvis share and the upper back, smoothed like the seesaw.
    smooth_pelvis: f32,
    smooth_upper: f32,
    smooth_sacral: f32,
    smooth_side: f32,
    /// The range of `smooth_side` since the legs last rested (see
    /// `one_leg`); `side_jump`: a change of healthy taxels moved it on this
    /// frame.
    side_lo: f32,
    side_hi: f32,
    side_jump: bool,
    /// Lifted legs near the rest level since this time.
    near_rest_us: Option<u64>,
    /// `total_ratio` over the last `RATIO_TAU_S`.
    ratio_slow: f32,
    /// The legs' weight is off the pelvis on this frame (see `lifted`).
    weight_off: bool,
    lifted_us: u64,
    set_open: bool,
    set_no: u32,
    reps: u32,
    perfect: u32,
    arches: u32,
}

impl RepCounter {
    pub fn new(config: &DetectorConfig) -> Self {
        RepCounter {
            min_descent_ms: (config.min_descent_s * 1000.0) as u64,
            set_rest_us: (config.set_rest_s * 1e6) as u64,
            progress_reps: config.progress_reps,
            rest_level: None,
            smooth: 0.0,
            rest_total: 0.0,
            rest_upper: 0.0,
            lifted_gain: 0.0,
            total_ratio: 1.0,
            legs: Legs::Rest { since_us: 0 },
            bottom: 0.0,
            phase: RepPhase::Bottom,
            pending: None,
            last_done_us: None,
            arch_in_rep: None,
            arch_at_us: None,
            last_top: None,
            last_swing: None,
            trace: Vec::with_capacity(TRACE_LEN),
            smooth_pelvis: 0.0,
            smooth_upper: 0.0,
            smooth_sacral: 0.0,
            smooth_side: 0.5,
            side_lo: 0.5,
            side_hi: 0.5,
            side_jump: false,
            near_rest_us: None,
            ratio_slow: 1.0,
            weight_off: false,
            lifted_us: 0,
            set_open: false,
            set_no: 0,
            reps: 0,
            perfect: 0,
            arches: 0,
        }
    }

    /// A settled person with legs resting: learn the rest level.
    pub fn settle(&mut self, t_us: u64, loads: Loads) {
        *self = RepCounter {
            rest_level: Some(loads.seesaw),
            rest_total: loads.total,
            rest_upper: loads.upper,
            smooth: loads.seesaw,
            smooth_side: loads.side,
            side_lo: loads.side,
            side_hi: loads.side,
            legs: Legs::Rest { since_us: t_us },
            ..RepCounter::new_like(self)
        };
    }

    fn new_like(other: &RepCounter) -> Self {
        RepCounter {
            min_descent_ms: other.min_descent_ms,
            set_rest_us: other.set_rest_us,
            progress_reps: other.progress_reps,
            ..RepCounter::new(&DetectorConfig::default())
        }
    }

    /// Shifts the levels after the set of healthy taxels changed the seesaw
    /// by `delta`, and the whole load, the upper back's and the sacrum's by
    /// factors `total`, `upper` and `sacral`, on the same frame.
    pub fn shift(&mut self, delta: f32, total: f32, upper: f32, sacral: f32) {
        self.rest_total *= total;
        self.rest_upper *= upper;
        if let Some(r) = &mut self.rest_level {
            *r += delta;
        }
        self.bottom += delta;
        self.smooth += delta;
        if let RepPhase::Cycle(Cycle { min, high, .. }) = &mut self.phase {
            *min += delta;
            *high += delta;
        }
        if let Some(top) = &mut self.last_top {
            *top += delta;
        }
        for p in &mut self.trace {
            p.seesaw += delta;
            p.upper *= upper;
            p.lever += lever(upper, sacral);
        }
        self.smooth_upper *= upper;
        self.smooth_sacral *= sacral;
        self.side_jump = true;
    }

    /// The sacrum's load moved sideways by `SIDE_STEP` or more over the
    /// last `SIDE_SHIFT_US` (see `level_side_shifts`), by the trace.
    fn side_moved(&self, t_us: u64) -> bool {
        let before = self.trace.partition_point(|p| p.t_us + SIDE_SHIFT_US <= t_us);
        let Some(then) = self.trace.get(before.saturating_sub(1)) else {
            return false;
        };
        (self.smooth_side - then.side).abs() >= SIDE_STEP
    }

    /// One leg lifted, not two: the sacrum's load moved sideways by
    /// `SIDE_STEP` or more since the legs last rested (the lifted leg loads
    /// its side of the pelvis; alternating legs move it from side to side).
    fn one_leg(&self) -> bool {
        self.side_hi - self.side_lo >= SIDE_STEP
    }

    /// Follows the sacrum's side share (see `one_leg`); at rest its range
    /// starts afresh.
    fn follow_side(&mut self, side: f32, dt_s: f32, resting: bool) {
        if std::mem::take(&mut self.side_jump) {
            let moved = side - self.smooth_side;
            (self.side_lo, self.side_hi) = (self.side_lo + moved, self.side_hi + moved);
            self.smooth_side = side;
        }
        low_pass(&mut self.smooth_side, side, dt_s, SMOOTH_S);
        if resting {
            (self.side_lo, self.side_hi) = (self.smooth_side, self.smooth_side);
        } else {
            self.side_lo = self.side_lo.min(self.smooth_side);
            self.side_hi = self.side_hi.max(self.smooth_side);
        }
    }

    /// Whether the legs are off the floor, and have been since at least
    /// `LIFTED_SURE_US` before `t_us` (sitting up also raises the seesaw, but
    /// the upper back collapses within half a second of it). Legs whose
    /// weight is off the pelvis are down at once here, though the set only
    /// ends once they stay near rest (`REST_S`): a person often gets up soon
    /// after.
    pub fn legs_lifted(&self, t_us: u64) -> bool {
        self.legs == Legs::Lifted && t_us.saturating_sub(self.lifted_us) >= LIFTED_SURE_US && !self.weight_off
    }

    /// Whether the whole load `total` says the legs' weight is on the
    /// pelvis: above its rest level by what lifted legs add (their weight
    /// moves from the heels onto the pelvis), or, once the seesaw says the
    /// legs are lifting, not fallen as in sitting up (see `LIFTED_LOAD_MIN`).
    pub fn legs_weight(&self, total: f32) -> bool {
        let share = match self.legs {
            Legs::Rest { .. } => LIFTED_LOAD,
            _ => LIFTED_LOAD_MIN,
        };
        self.rest_level.is_some() && total >= share * self.rest_total
    }

    /// The legs went up and have not been seen back on the floor (whatever
    /// the load says on this frame).
    pub fn legs_up(&self) -> bool {
        self.legs == Legs::Lifted
    }

    pub fn in_set(&self) -> bool {
        self.set_open
    }

    /// The descent under way: since when (the top the legs left), once it
    /// has passed `DESCENT_START` of the swing and until it is over; for
    /// counting the descent live (the rep is judged once it is over).
    pub fn descent_since_us(&self) -> Option<u64> {
        match self.phase {
            RepPhase::Cycle(Cycle {
                min_us,
                t10_us: Some(_),
                ..
            }) if self.rest_level.is_some() && self.legs == Legs::Lifted => Some(min_us),
            _ => None,
        }
    }

    /// The person got up: flush the pending rep and close the set.
    pub fn end_session(&mut self, t_ms: u64, out: &mut Vec<Event>) {
        self.emit_pending(t_ms, out);
        self.close_set(t_ms, out);
        self.rest_level = None;
    }

    /// The depth (0 top .. 1 bottom) of the legs now, for an arch starting.
    fn depth(&self, s: f32) -> f32 {
        let pos = |top: f32| ((s - top) / (self.bottom - top).max(1e-6)).clamp(0.0, 1.0);
        match self.phase {
            _ if self.pending.is_some() => 1.0,
            RepPhase::Cycle(Cycle {
                min, t10_us: Some(_), ..
            }) => pos(min),
            _ => self.last_top.map_or(1.0, pos),
        }
    }

    /// An arch started now.
    pub fn arch_started(&mut self, t_us: u64, seesaw: f32) {
        if !self.set_open {
            return;
        }
        let depth = self.depth(seesaw);
        // A rep not emitted yet carries an arch that starts before the next
        // descent does (an arch at the bottom belongs to the rep it ends).
        let next_descent = matches!(self.phase, RepPhase::Cycle(Cycle { t10_us: Some(_), .. }));
        match &mut self.pending {
            Some(p) if !next_descent => {
                p.arch.get_or_insert(depth);
            }
            _ => {
                self.arch_in_rep.get_or_insert(depth);
            }
        }
        self.arch_at_us = Some(t_us);
        self.arches += 1;
    }

    /// One frame.
    pub fn push(&mut self, t_us: u64, dt_s: f32, loads: Loads, in_arch: bool, out: &mut Vec<Event>) {
        let Some(rest) = self.rest_level else { return };
        let Loads {
            seesaw: s,
            total,
            upper,
            pelvis,
            side,
        } = loads;
        let t_ms = t_us / 1000;
        self.total_ratio = total / self.rest_total.max(1e-6);
        low_pass(&mut self.ratio_slow, self.total_ratio, dt_s, RATIO_TAU_S);
        low_pass(&mut self.smooth, s, dt_s, SMOOTH_S);
        low_pass(&mut self.smooth_pelvis, pelvis, dt_s, SMOOTH_S);
        low_pass(&mut self.smooth_upper, upper, dt_s, SMOOTH_S);
        low_pass(&mut self.smooth_sacral, pelvis * (total - upper), dt_s, SMOOTH_S);
        self.follow_side(side, dt_s, matches!(self.legs, Legs::Rest { .. }));
        let s = self.smooth;
        if let Some(p) = self.pending {
            if t_us >= p.emit_at_us {
                self.emit_pending(t_ms, out);
            }
        }
        let rise = s - rest;
        match self.legs {
            Legs::Rest { since_us } => {
                if rise > LIFT {
                    self.legs = Legs::Lifting { since_us: t_us };
                } else {
                    let mut rest = rest;
                    low_pass(&mut rest, s, dt_s, REST_TAU_S);
                    self.rest_level = Some(rest);
                    low_pass(&mut self.rest_total, total, dt_s, REST_TAU_S);
                    low_pass(&mut self.rest_upper, upper, dt_s, REST_TAU_S);
                    if self.set_open && t_us.saturating_sub(since_us) >= self.set_rest_us {
                        self.close_set(t_ms, out);
                    }
                }
            }
            Legs::Lifting { since_us } => {
                // Lifted legs put their weight on the pelvis; sitting up (which
                // raises the seesaw too) takes the trunk's weight off the mat.
                let tipped = upper <= LIFTED_UPPER * self.rest_upper || self.rest_upper <= 0.0;
                if rise <= LIFT || self.total_ratio < LIFTED_LOAD || !tipped {
                    self.legs = Legs::Rest { since_us: t_us };
                } else if t_us.saturating_sub(since_us) as f32 >= LIFT_S * 1e6 {
                    self.legs = Legs::Lifted;
                    self.lifted_us = t_us;
                    self.weight_off = false;
                    self.lifted_gain = self.total_ratio - 1.0;
                    tracing::debug!(t_ms, seesaw = s, rest, "legs lifted");
                    self.bottom = s;
                    self.phase = RepPhase::Bottom;
                    self.last_done_us = None;
                    self.last_swing = None;
                    if !self.set_open {
                        self.set_open = true;
                        self.set_no += 1;
                        self.reps = 0;
                        self.perfect = 0;
                        self.arches = 0;
                        self.arch_in_rep = None;
                    }
                }
            }
            Legs::Lifted => self.lifted(t_us, dt_s, s, rest, in_arch, out),
        }
    }

    /// One frame with the legs lifted: whether they are back near the floor,
    /// then the step of the cycle they are in.
    fn lifted(&mut self, t_us: u64, dt_s: f32, s: f32, rest: f32, in_arch: bool, out: &mut Vec<Event>) {
        let height = (self.bottom - rest).max(LIFT);
        low_pass(&mut self.lifted_gain, self.total_ratio - 1.0, dt_s, LIFTED_GAIN_TAU_S);
        let floor_load = floor_load(self.lifted_gain);
        let rise = s - rest;
        let near = near_rest(rise, height, self.ratio_slow, floor_load);
        self.weight_off = weight_off(rise, height, self.total_ratio, floor_load);
        self.near_rest_us = near_rest_since(self.near_rest_us, near, t_us);
        let frame = LiftedFrame {
            t_us,
            s,
            rest,
            height,
            in_arch,
            floor_load,
        };
        match self.phase {
            RepPhase::Bottom => self.at_bottom(frame, dt_s, out),
            RepPhase::Cycle(cycle) => self.in_cycle(cycle, frame, out),
        }
    }

    /// At the bottom hover: the bottom follows the legs, and an ascent
    /// starts a cycle.
    fn at_bottom(&mut self, f: LiftedFrame, dt_s: f32, out: &mut Vec<Event>) {
        let settling = f.t_us.saturating_sub(self.lifted_us) < LIFT_SETTLE_US;
        if !f.in_arch {
            let tau = bottom_tau(settling, f.s > self.bottom);
            low_pass(&mut self.bottom, f.s, dt_s, tau);
        }
        if !settling && ascent_began(f.s, self.bottom, f.height) {
            tracing::debug!(t_ms = f.t_us / 1000, seesaw = f.s, bottom = self.bottom, "ascent");
            self.start_cycle(f.t_us, f.s, out);
        }
    }

    /// A new ascent at `t_us` from the seesaw `s`: a rep waiting for it goes
    /// out (see `PendingRep::due_on_ascent`).
    fn start_cycle(&mut self, t_us: u64, s: f32, out: &mut Vec<Event>) {
        if self.pending.is_some_and(|p| p.due_on_ascent(t_us)) {
            self.emit_pending(t_us / 1000, out);
        }
        self.phase = RepPhase::cycle(t_us, t_us, s, self.smooth_pelvis);
    }

    /// One frame of a cycle: the legs down, a stall, a higher top, or the
    /// descent going on or over.
    fn in_cycle(&mut self, mut cycle: Cycle, f: LiftedFrame, out: &mut Vec<Event>) {
        if let Some(since_us) = on_floor_since(self.near_rest_us, f.t_us) {
            // The drop after the last rep (or a rest): not a rep.
            tracing::debug!(t_ms = f.t_us / 1000, seesaw = f.s, rest = f.rest, "legs down");
            self.emit_pending(f.t_us / 1000, out);
            self.near_rest_us = None;
            self.legs_down(since_us, f.t_us);
            return;
        }
        let span = self.span(cycle.min, f.height);
        if stalled(&cycle, f.t_us, span, f.in_arch) {
            self.stall(cycle, f, out);
            return;
        }
        if f.s < cycle.min {
            if cycle.t10_us.is_none() || !self.side_moved(f.t_us) {
                self.new_top(cycle.start_us, f);
                return;
            }
            // The descent was under way and the sacrum's load moved
            // sideways, stepping the seesaw down: the same descent, whose
            // trace is levelled when it is timed.
            cycle.min = f.s;
        }
        self.sample_trace(f.t_us);
        let pelvis_top = self.trace.first().map_or(cycle.pelvis_high, |p| p.pelvis);
        let cycle = cycle.followed(f.t_us, f.s, span, self.smooth_pelvis, pelvis_top);
        let pelvis_settled = self.pelvis_settled(f.t_us, cycle.pelvis_high_us);
        match descent_end(&cycle, f, span, pelvis_settled) {
            Some(end) if self.near_rest_us.is_none() => self.finish_descent(cycle, end, f, out),
            _ => self.phase = RepPhase::Cycle(cycle),
        }
    }

    /// No descent long after the ascent began (see `STALL_S`): the legs are
    /// still lifted short of the bottom learnt before, or down.
    fn stall(&mut self, cycle: Cycle, f: LiftedFrame, out: &mut Vec<Event>) {
        let t_ms = f.t_us / 1000;
        self.emit_pending(t_ms, out);
        if still_lifted(self.ratio_slow, f.floor_load, f.s - f.rest) {
            // The bottom learnt before is out of reach (the person slid, or
            // the lift-off swung past it). It is where the legs came down to.
            tracing::debug!(t_ms, seesaw = f.s, high = cycle.high, "no descent, legs still lifted");
            self.bottom = cycle.high;
            self.phase = RepPhase::Bottom;
            self.trace.clear();
        } else {
            tracing::debug!(t_ms, seesaw = f.s, rest = f.rest, "legs down, no descent");
            self.near_rest_us = None;
            self.legs_down(cycle.start_us, f.t_us);
        }
    }

    /// A top higher than the cycle's (a lower seesaw): the descent is looked
    /// for from it, with a fresh trace.
    fn new_top(&mut self, start_us: u64, f: LiftedFrame) {
        self.phase = RepPhase::cycle(start_us, f.t_us, f.s, self.smooth_pelvis);
        self.trace.clear();
        self.trace.push(self.point(f.t_us));
    }

    /// One sample of the descent every `TRACE_STEP_US`, up to `TRACE_LEN`.
    fn sample_trace(&mut self, t_us: u64) {
        if self.trace.len() < TRACE_LEN && self.trace.last().is_none_or(|p| t_us >= p.t_us + TRACE_STEP_US) {
            self.trace.push(self.point(t_us));
        }
    }

    /// The descent is over: time it, queue its rep, learn the bottom and
    /// the swing, and go on to the bottom hover or the next ascent.
    fn finish_descent(&mut self, c: Cycle, end: DescentEnd, f: LiftedFrame, out: &mut Vec<Event>) {
        let (t_us, t_ms) = (f.t_us, f.t_us / 1000);
        // During an arch the sacrum presses harder: the seesaw after its
        // start is not the legs' alone.
        let arch_at = self.arch_at_us.filter(|&a| a > c.min_us);
        level_side_shifts(&mut self.trace);
        let (bottom, cut) = self.descent_bottom(&c, end.plateau, arch_at, t_us);
        let (end_us, descent_us) = self.timed_descent(&c, bottom, cut, arch_at.is_some(), t_us);
        let (end_us, descent_us) = if arch_at.is_some() {
            (end_us, descent_us)
        } else {
            self.stretched(end_us, descent_us)
        };
        tracing::debug!(
            t_ms,
            top = c.min,
            high = c.high,
            bottom = self.bottom,
            rest = f.rest,
            plateau = end.plateau,
            in_arch = f.in_arch,
            end_ms = end_us / 1000.0,
            descent_ms = descent_us / 1000.0,
            "descent over"
        );
        let arched = self.arch_in_rep.is_some();
        let real = is_real(descent_us, f.in_arch, arched);
        if real {
            // Never more than one rep waiting.
            self.emit_pending(t_ms, out);
            self.pending = Some(PendingRep {
                emit_at_us: emit_at_us(end_us, t_us, arched),
                descent_ms: descent_us as u64 / 1000,
                ascent_ms: c.min_us.saturating_sub(c.start_us) / 1000,
                done_us: c.high_us,
                arch: self.arch_in_rep.take(),
            });
        }
        if !f.in_arch {
            // The sacrum presses harder during an arch: only a clean bottom
            // is the person's bottom.
            self.bottom = c.high;
        }
        self.last_top = Some(c.min);
        // Only a clean rep's swing: an arch moves the seesaw too.
        if real && !f.in_arch && !arched {
            self.last_swing = Some(c.high - c.min);
        }
        self.trace.clear();
        if end.turned {
            self.start_cycle(t_us, f.s, out);
        } else {
            self.phase = RepPhase::Bottom;
        }
    }

    /// The bottom a finished descent is timed against, and the time its
    /// trace is read up to: with an arch since the top, the person's usual
    /// bottom up to the arch; legs at rest at the bottom, the level they
    /// rest at; else the highest point of the descent.
    fn descent_bottom(&self, c: &Cycle, plateau: bool, arch_at: Option<u64>, t_us: u64) -> (f32, u64) {
        match arch_at {
            Some(a) if self.bottom > c.min => (self.bottom, a),
            _ if plateau => (mean_near(&self.trace, t_us, BOTTOM_US, |p| p.seesaw), t_us),
            _ => (c.high, t_us),
        }
    }

    /// The finished descent's end and length (us): fitted on the trace, or,
    /// without enough clean crossings, from its 10 % and 85 % crossings.
    fn timed_descent(&self, c: &Cycle, bottom: f32, cut_us: u64, arched: bool, t_us: u64) -> (f32, f32) {
        match self.descent(c.min, bottom, cut_us, arched) {
            Some((start, d)) => (start + d, d),
            None => {
                let (t10, t85) = self.crossings(c.min, c.high, t_us);
                let d = t85.saturating_sub(t10) as f32 / DESCENT_SPAN;
                (t85 as f32 + d / AFTER_85_PARTS, d)
            }
        }
    }

    /// A clean descent of a short lever lengthened (see
    /// `short_lever_stretch`), unless one leg is lifted. (An arched descent
    /// is timed on the seesaw before the arch, whose swing says nothing of
    /// the lever's length; stretching it by the last clean swing helped as
    /// many reps as it hurt on the reference recordings.)
    fn stretched(&self, end_us: f32, descent_us: f32) -> (f32, f32) {
        let stretch = match ends(&self.trace, |p| p.lever) {
            Some((top, bottom)) if !self.one_leg() => short_lever_stretch(top - bottom),
            _ => 1.0,
        };
        (end_us + (stretch - 1.0) * descent_us, stretch * descent_us)
    }

    /// With the upper back switched off since the top (its taxels near
    /// their turn-on), the seesaw reaches 1 long before the legs reach the
    /// bottom: the descent goes on until the sacrum's share of the pelvis,
    /// which the upper back does not enter, has stopped rising too.
    fn pelvis_settled(&self, t_us: u64, pelvis_high_us: u64) -> bool {
        let upper_off = self
            .trace
            .first()
            .is_some_and(|top| self.smooth_upper < UPPER_SWITCHED_OFF * top.upper);
        !upper_off || t_us.saturating_sub(pelvis_high_us) as f32 >= PLATEAU_S * 1e6
    }

    /// The legs are back on the floor since `since_us`: what the mat reads
    /// now is the rest level (a person who slid along the mat during the
    /// set rests at another seesaw, and loads the upper back differently).
    fn legs_down(&mut self, since_us: u64, t_us: u64) {
        self.legs = Legs::Rest { since_us };
        self.phase = RepPhase::Bottom;
        let recent = self.trace.iter().filter(|p| p.t_us + LEVEL_US >= t_us);
        let (mut n, mut seesaw, mut upper) = (0.0, 0.0, 0.0);
        for p in recent {
            n += 1.0;
            seesaw += p.seesaw;
            upper += p.upper;
        }
        let (seesaw, upper) = if n > 0.0 {
            (seesaw / n, upper / n)
        } else {
            (self.smooth, self.smooth_upper)
        };
        self.rest_level = Some(seesaw);
        self.rest_upper = upper;
        self.rest_total *= self.ratio_slow;
    }

    /// The swing expected of a cycle with the top `min`. After an arch the
    /// seesaw may fall from far above the usual bottom; a rise from there is
    /// only a rep if it is a real one.
    fn span(&self, min: f32, height: f32) -> f32 {
        let mut span = self.bottom - min;
        if let Some(last) = self.last_swing {
            span = span.min(SWING_GROWTH * last);
        }
        span.max(MIN_SWING * height)
    }

    fn point(&self, t_us: u64) -> TracePoint {
        TracePoint {
            t_us,
            seesaw: self.smooth,
            pelvis: self.smooth_pelvis,
            upper: self.smooth_upper,
            lever: lever(self.smooth_upper, self.smooth_sacral),
            side: self.smooth_side,
        }
    }

    /// The descent from the top `top` to the bottom `bottom` of the seesaw,
    /// from the trace before `cut_us`: its start and length (us).
    ///
    /// With the legs low, the upper back of some people rests on taxels near
    /// their turn-on, which switch off one after another as the legs come
    /// down: the seesaw then reaches its bottom early (it saturates). With
    /// the upper back at the bottom under `UPPER_SWITCHED_OFF` of its load at
    /// the top (the lever alone takes 30-40 % of it), the descent is read on
    /// the sacrum's share of the pelvis instead, which the upper back does
    /// not enter (not after an arch: the lumbar rows lose their load then).
    /// Otherwise on the [`lever`], which breathing does not move; after an
    /// arch, which moves the upper back and the sacrum, on the seesaw before
    /// the arch (`cut_us`) against the person's usual bottom.
    fn descent(&self, top: f32, bottom: f32, cut_us: u64, arched: bool) -> Option<(f32, f32)> {
        let trace = &self.trace[..self.trace.partition_point(|p| p.t_us <= cut_us)];
        let (at_top, at_bottom) = ends(trace, |p| p.upper)?;
        if !arched && at_bottom < UPPER_SWITCHED_OFF * at_top {
            let (top, bottom) = ends(trace, |p| p.pelvis)?;
            if let Some(fit) = fit_descent(trace, |p| p.pelvis, top, bottom, &CLEAN_FIT_LEVELS) {
                return Some(fit);
            }
        }
        if !arched {
            let (top, bottom) = ends(trace, |p| p.lever)?;
            let (trace, top, bottom) = own_path(trace, |p| p.lever, top, bottom);
            if let Some(fit) = fit_descent(trace, |p| p.lever, top, bottom, &CLEAN_FIT_LEVELS) {
                return Some(fit);
            }
        }
        let levels: &[f32] = if arched { &FIT_LEVELS } else { &CLEAN_FIT_LEVELS };
        fit_descent(trace, |p| p.seesaw, top, bottom, levels)
    }

    /// When the descent from the top `min` to the bottom `max` passed 10 %
    /// and 85 % of the way, from the trace.
    fn crossings(&self, min: f32, max: f32, now_us: u64) -> (u64, u64) {
        let span = max - min;
        let (lo, hi) = (min + DESCENT_START * span, min + DESCENT_DONE * span);
        let t10 = self
            .trace
            .iter()
            .rev()
            .find(|p| p.seesaw < lo)
            .map_or(now_us, |p| p.t_us);
        let t85 = self
            .trace
            .iter()
            .find(|p| p.t_us > t10 && p.seesaw >= hi)
            .map_or(now_us, |p| p.t_us);
        (t10, t85)
    }

    fn emit_pending(&mut self, t_ms: u64, out: &mut Vec<Event>) {
        let Some(p) = self.pending.take() else { return };
        let arched = p.arch.is_some();
        let rushed = p.descent_ms < self.min_descent_ms;
        let bounce = self
            .last_done_us
            .is_some_and(|prev| (p.done_us.saturating_sub(prev) as f32) < BOUNCE_CYCLE_S * 1e6);
        self.last_done_us = Some(p.done_us);
        let perfect = !arched && !rushed && !bounce;
        self.reps += 1;
        if perfect {
            self.perfect += 1;
        }
        out.push(Event::Rep(RepEvent {
            t_ms,
            set: self.set_no,
            rep: self.reps,
            perfect,
            arched,
            rushed,
            descent_ms: p.descent_ms,
            ascent_ms: Some(p.ascent_ms),
            bounce,
            depth: p.arch.map(|d| (d as f64 * 100.0).round() / 100.0),
        }));
    }

    fn close_set(&mut self, t_ms: u64, out: &mut Vec<Event>) {
        if !self.set_open {
            return;
        }
        self.set_open = false;
        if self.reps == 0 {
            // Legs lifted and put down without a rep: not a set.
            self.set_no -= 1;
            return;
        }
        out.push(Event::Set(SetEvent {
            t_ms,
            set: self.set_no,
            reps: self.reps,
            perfect: self.perfect,
            arches: self.arches,
        }));
        if self.perfect >= self.progress_reps {
            out.push(Event::Progress {
                t_ms,
                set: self.set_no,
                perfect: self.perfect,
                min_descent_ms: self.min_descent_ms,
            });
        }
    }
}

/// The whole load (a share of its rest level) under which lifted legs are
/// back on the floor, their weight off the pelvis (see `FLOOR_GAIN_SHARE`).
fn floor_load(lifted_gain: f32) -> f32 {
    1.0 + (FLOOR_GAIN_SHARE * lifted_gain).max(LEGS_DOWN_GAIN)
}

/// Lifted legs near rest, the seesaw `rise` above it (for the set to end,
/// see `REST_S`). For some people (lying half a row up) the seesaw with the
/// legs vertical is as low as at rest; the legs' weight on the pelvis, the
/// whole load over `RATIO_TAU_S`, still tells them apart.
fn near_rest(rise: f32, height: f32, ratio_slow: f32, floor_load: f32) -> bool {
    rise < (NEAR_REST_LIFT_SHARE * LIFT).max(NEAR_REST_HEIGHT_SHARE * height) && ratio_slow < floor_load
}

/// For arches, the legs are down as soon as their weight is off the pelvis
/// on this frame and the seesaw is in the lower half of its swing (a person
/// who slid along the mat during the set rests at another level).
fn weight_off(rise: f32, height: f32, total_ratio: f32, floor_load: f32) -> bool {
    rise < (NEAR_REST_LIFT_SHARE * LIFT).max(WEIGHT_OFF_HEIGHT_SHARE * height) && total_ratio < floor_load
}

/// Since when the legs have been near rest (`None`: not on this frame): the
/// first frame of the stretch is kept.
fn near_rest_since(since_us: Option<u64>, near: bool, t_us: u64) -> Option<u64> {
    near.then(|| since_us.unwrap_or(t_us))
}

/// Legs near rest for `REST_S` are back on the floor: since when.
fn on_floor_since(near_rest_us: Option<u64>, t_us: u64) -> Option<u64> {
    near_rest_us.filter(|&since| t_us.saturating_sub(since) as f32 >= REST_S * 1e6)
}

/// How quickly the bottom follows the seesaw at the bottom hover: quickly
/// right after lift-off, fast as the legs come lower, slowly as they rise
/// (an ascent must not drag it up).
fn bottom_tau(settling: bool, legs_lower: bool) -> f32 {
    if settling {
        BOTTOM_SETTLING_TAU_S
    } else if legs_lower {
        BOTTOM_DOWN_TAU_S
    } else {
        BOTTOM_UP_TAU_S
    }
}

/// An ascent has begun: the seesaw `s` fell `ASCENT_SHARE` of the bottom's
/// height below the bottom.
fn ascent_began(s: f32, bottom: f32, height: f32) -> bool {
    s < bottom - ASCENT_SHARE * height
}

/// A cycle with no descent `STALL_S` after its ascent began; never during an
/// arch, which moves the seesaw.
fn stalled(c: &Cycle, t_us: u64, span: f32, in_arch: bool) -> bool {
    let late = t_us.saturating_sub(c.start_us) as f32 >= STALL_S * 1e6;
    late && c.high - c.min < DONE_MIN * span && !in_arch
}

/// The legs of a stalled cycle are still lifted when their weight is still
/// on the pelvis and the seesaw above rest by `LIFT`.
fn still_lifted(ratio_slow: f32, floor_load: f32, rise: f32) -> bool {
    ratio_slow >= floor_load && rise > LIFT
}

/// Whether the descent is over on this frame, and how: the legs stopped at
/// the bottom (`DONE_MIN` of the span, then `PLATEAU_S` without rising, the
/// pelvis settled too), or went up again (or dropped to the floor) without
/// a pause. A descent that stopped short of the bottom learnt before (a
/// person sliding along the mat moves the seesaw's levels), paused there
/// and went up again is a rep all the same.
fn descent_end(c: &Cycle, f: LiftedFrame, span: f32, pelvis_settled: bool) -> Option<DescentEnd> {
    let (t_us, s, height) = (f.t_us, f.s, f.height);
    let reached = c.high - c.min >= DONE_MIN * span;
    let paused = t_us.saturating_sub(c.high_us) as f32 >= PLATEAU_S * 1e6;
    let plateau = reached && paused && pelvis_settled;
    let short = !f.in_arch && c.high - c.min >= MIN_SWING * height && paused && s < c.high - ASCENT_SHARE * height;
    let turned = (reached && s < c.high - ASCENT_SHARE * (c.high - c.min)) || short;
    (plateau || turned).then_some(DescentEnd { plateau, turned })
}

/// Legs cannot come down from vertical faster than `MIN_DESCENT_US`: a
/// faster descent is a noisy seesaw (a light person), not a rep, unless an
/// arch moved the seesaw.
fn is_real(descent_us: f32, in_arch: bool, arched: bool) -> bool {
    descent_us >= MIN_DESCENT_US || in_arch || arched
}

/// When the rep of a descent seen over at `t_us`, estimated to end at
/// `end_us`, is emitted: `EMIT_AFTER_END_US` after that end, never before
/// now, an arched one within `ARCHED_WAIT_US`.
fn emit_at_us(end_us: f32, t_us: u64, arched: bool) -> u64 {
    let at = ((end_us + EMIT_AFTER_END_US).max(0.0) as u64).max(t_us);
    if arched {
        at.min(t_us + ARCHED_WAIT_US)
    } else {
        at
    }
}

/// Breathing moves the trunk about this many times as much as the sacrum
/// (the reference mat's still recording: the sacral row swings 0.49 times
/// as much as the upper back's).
const TRUNK_BREATH: f32 = 2.0;

/// The legs' lever with breathing taken out: the lever moves load from the
/// upper back to the sacrum, breathing scales both the same way, the upper
/// back `TRUNK_BREATH` times more, so `ln upper - TRUNK_BREATH ln sacral`
/// falls with the legs and stays put as the person breathes. On a short
/// lever (bent knees) breathing is a third of the seesaw's swing.
fn lever(upper: f32, sacral: f32) -> f32 {
    upper.max(1e-6).ln() - TRUNK_BREATH * sacral.max(1e-6).ln()
}

/// See `RepCounter::descent`.
const UPPER_SWITCHED_OFF: f32 = 0.55;
/// The top and the bottom levels of a signal (`ends`): its mean over this
/// long after the first / before the last sample of the trace.
const TOP_US: u64 = 150_000;
const BOTTOM_US: u64 = 300_000;

/// The mean of `value` over the trace's points within `span_us` of `t_us`.
fn mean_near(trace: &[TracePoint], t_us: u64, span_us: u64, value: impl Fn(&TracePoint) -> f32) -> f32 {
    let (mut sum, mut n) = (0.0, 0.0);
    for p in trace.iter().filter(|p| p.t_us.abs_diff(t_us) <= span_us) {
        sum += value(p);
        n += 1.0;
    }
    if n > 0.0 {
        sum / n
    } else {
        0.0
    }
}

/// The legs jolt the pelvis as they change direction: on the reference mat
/// the sacrum's load steps by a tenth to a quarter of the lever's swing
/// within about 0.1 s, one way or the other, as the descent begins and as
/// it ends (the larger share on a short lever: the jolt goes with the legs'
/// weight, the swing with their moment). The legs' own path lies between
/// the jolts: a step of at least `JOLT_STEP` of the swing within `JOLT_US`,
/// next to a stretch of `2 * JOLT_US` that wandered less than half as much
/// (the legs easing out of the top, or into the bottom; noise and hum
/// wander), within `JOLT_REACH` of the swing's end.
/// The step, the jolt's length, and how near the swing's ends it may be.
const JOLT_STEP: f32 = 0.06;
const JOLT_US: u64 = 150_000;
const JOLT_REACH: f32 = 0.3;
/// A jolt moves the sacrum: the upper back's load moves (in ln) less than
/// this many times as much (a light person's upper back switching off taxel
/// by taxel steps by a third or more with the sacrum still).
const JOLT_UPPER: f32 = 4.0;

/// Whether the lever's change from `a` to `b` is the sacrum's (see
/// `JOLT_UPPER`).
fn sacral_led(a: &TracePoint, b: &TracePoint) -> bool {
    let upper = b.upper.max(1e-6).ln() - a.upper.max(1e-6).ln();
    let sacral = (upper - (b.lever - a.lever)) / TRUNK_BREATH;
    upper.abs() < JOLT_UPPER * sacral.abs()
}

/// The part of `trace` between the jolts of the descent's start and end,
/// and the levels of `value` at its ends (see `JOLT_STEP`): `trace`, `top`
/// and `bottom` where no jolt shows.
fn own_path(
    trace: &[TracePoint],
    value: impl Fn(&TracePoint) -> f32,
    top: f32,
    bottom: f32,
) -> (&[TracePoint], f32, f32) {
    let (jolt_step, jolt_us, jolt_reach) = (JOLT_STEP, JOLT_US, JOLT_REACH);
    let span = bottom - top;
    if span.abs() <= 1e-6 || trace.is_empty() {
        return (trace, top, bottom);
    }
    let progress = |i: usize| (value(&trace[i]) - top) / span;
    let from = |t_us: u64| trace.partition_point(|p| p.t_us < t_us).min(trace.len() - 1);
    // How far the signal wandered over `trace[a..=b]`.
    let range = |a: usize, b: usize| {
        let (lo, hi) = (a..=b)
            .map(progress)
            .fold((f32::MAX, f32::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
        hi - lo
    };
    let (mut first, mut last) = (0, trace.len() - 1);
    let (mut top_level, mut bottom_level) = (top, bottom);
    // The start: a step out of the top, then the legs easing out.
    for i in 0..trace.len() {
        let j = from(trace[i].t_us + jolt_us);
        let k = from(trace[j].t_us + 2 * jolt_us);
        if j == i || k == j || progress(j) > jolt_reach {
            if progress(i) > jolt_reach {
                break;
            }
            continue;
        }
        let (step, eased) = (progress(j) - progress(i), range(j, k));
        if step.abs() >= jolt_step && eased.abs() < 0.5 * step.abs() && sacral_led(&trace[i], &trace[j]) {
            first = j;
            top_level = mean_near(&trace[j..], trace[j].t_us, jolt_us, &value);
            break;
        }
    }
    // The end: the legs easing in, then a step as they land.
    for i in first..trace.len() {
        let j = from(trace[i].t_us.saturating_sub(jolt_us));
        let k = from(trace[j].t_us.saturating_sub(2 * jolt_us));
        if k == j || j == i || j < first || progress(j) < 1.0 - jolt_reach {
            continue;
        }
        let (step, eased) = (progress(i) - progress(j), range(k, j));
        if step.abs() >= jolt_step && eased.abs() < 0.5 * step.abs() && sacral_led(&trace[j], &trace[i]) {
            last = j;
            bottom_level = mean_near(&trace[first..=j], trace[j].t_us, jolt_us, &value);
            break;
        }
    }
    (&trace[first..=last], top_level, bottom_level)
}

/// The top and the bottom levels of `value` in `trace` (see `TOP_US`):
/// `None` without a trace.
fn ends(trace: &[TracePoint], value: impl Fn(&TracePoint) -> f32) -> Option<(f32, f32)> {
    let (first, last) = (trace.first()?, trace.last()?);
    Some((
        mean_near(trace, first.t_us, TOP_US, &value),
        mean_near(trace, last.t_us, BOTTOM_US, &value),
    ))
}

/// Bent knees shorten the legs' lever to about half, and on the reference
/// mat's physics its moment then reaches its bottom level before the legs
/// reach the hover: the lever covers the descent's first 0.88 or so, and
/// the legs go on for the rest with no change in it. Two straight legs
/// swing the lever (`lever`, ln units) by 0.56 to 1.2; bent knees by 0.43
/// to 0.65. A descent timed on a swing under `SHORT_LEVER_FROM` is
/// lengthened, by up to `SHORT_LEVER_STRETCH` at `SHORT_LEVER_AT` and
/// under, in proportion between: a straight-leg descent with a short swing
/// is then at most that much too long. One leg (`RepCounter::one_leg`)
/// halves the lever too, but it is straight: its descent is not stretched.
const SHORT_LEVER_FROM: f32 = 0.62;
const SHORT_LEVER_AT: f32 = 0.45;
const SHORT_LEVER_STRETCH: f32 = 0.08;

/// The factor a descent with the lever's swing `swing` is lengthened by
/// (see `SHORT_LEVER_FROM`).
fn short_lever_stretch(swing: f32) -> f32 {
    let short = ((SHORT_LEVER_FROM - swing.abs()) / (SHORT_LEVER_FROM - SHORT_LEVER_AT)).clamp(0.0, 1.0);
    1.0 + SHORT_LEVER_STRETCH * short
}

/// A load moving sideways on the sacrum (from one leg to the other in
/// single-leg raises, or the person shifting across the mat) steps the
/// sacrum's sum: each taxel's gain and curve differ, so the same force
/// reads differently on other taxels. That step is not the legs' lever. A
/// side shift is the sacrum's left share moving by at least `SIDE_STEP`
/// within `SIDE_SHIFT_US`; the lever and the pelvis share (what a clean
/// descent is timed on) are levelled across it by the jump between curves
/// fitted over `SIDE_FIT_US` on either side. The seesaw is not: an arched
/// descent is timed on it against the person's usual bottom, learnt on
/// whichever side the load was then.
const SIDE_STEP: f32 = 0.04;
const SIDE_SHIFT_US: u64 = 200_000;
const SIDE_FIT_US: u64 = 250_000;

/// Levels the trace across its side shifts (see `SIDE_STEP`), in place.
fn level_side_shifts(trace: &mut [TracePoint]) {
    let after = |trace: &[TracePoint], i: usize, us: u64| trace.partition_point(|p| p.t_us < trace[i].t_us + us);
    let moved = |trace: &[TracePoint], i: usize| {
        let j = after(trace, i, SIDE_SHIFT_US);
        (j < trace.len()).then(|| (trace[j].side - trace[i].side).abs())
    };
    let mut i = 0;
    while let Some(change) = moved(trace, i) {
        if change < SIDE_STEP {
            i += 1;
            continue;
        }
        // The shift's window starts where the side moves most within it.
        let (mut start, mut most) = (i, change);
        let mut k = i + 1;
        while let Some(c) = moved(trace, k).filter(|&c| c >= SIDE_STEP) {
            if c > most {
                (start, most) = (k, c);
            }
            k += 1;
        }
        let end = after(trace, start, SIDE_SHIFT_US);
        let before = trace.partition_point(|p| p.t_us + SIDE_FIT_US < trace[start].t_us);
        let beyond = after(trace, end, SIDE_FIT_US + 1);
        let (t0, t1) = (trace[start].t_us, trace[end].t_us);
        let mid = t0 + (t1 - t0) / 2;
        for field in [TraceField::Lever, TraceField::Pelvis] {
            let (earlier, later) = (
                Curve::fit(&trace[before..=start], field),
                Curve::fit(&trace[end..beyond], field),
            );
            let jump = later.at(mid) - earlier.at(mid);
            // Inside the window the step's own shape is unknown: the curves
            // from either side, blended.
            for p in &mut trace[start + 1..end] {
                let w = (p.t_us - t0) as f32 / (t1 - t0).max(1) as f32;
                *field.of(p) = (1.0 - w) * earlier.at(p.t_us) + w * (later.at(p.t_us) - jump);
            }
            for p in &mut trace[end..] {
                *field.of(p) -= jump;
            }
        }
        i = end;
    }
}

/// The trace's values a side shift steps (see `level_side_shifts`).
#[derive(Clone, Copy)]
enum TraceField {
    Lever,
    Pelvis,
}

impl TraceField {
    fn get(self, p: &TracePoint) -> f32 {
        match self {
            TraceField::Lever => p.lever,
            TraceField::Pelvis => p.pelvis,
        }
    }

    fn of(self, p: &mut TracePoint) -> &mut f32 {
        match self {
            TraceField::Lever => &mut p.lever,
            TraceField::Pelvis => &mut p.pelvis,
        }
    }
}

/// The least-squares parabola through a field of trace points (the line
/// with fewer than five points, their mean with fewer than two, 0 with
/// none): the lever curves through a side shift's window. Its value at
/// `t0_us + t` seconds is `a + b t + c t^2`.
struct Curve {
    t0_us: u64,
    a: f64,
    b: f64,
    c: f64,
}

impl Curve {
    fn fit(points: &[TracePoint], field: TraceField) -> Curve {
        let t0_us = points.first().map_or(0, |p| p.t_us);
        let flat = |a: f64| Curve {
            t0_us,
            a,
            b: 0.0,
            c: 0.0,
        };
        if points.is_empty() {
            return flat(0.0);
        }
        // Moments of t (seconds from the first point) against the value.
        let (mut m, mut mv) = ([0.0f64; 5], [0.0f64; 3]);
        for p in points {
            let (t, v) = ((p.t_us - t0_us) as f64 * 1e-6, field.get(p) as f64);
            let mut tk = 1.0;
            for k in 0..5 {
                m[k] += tk;
                if k < 3 {
                    mv[k] += tk * v;
                }
                tk *= t;
            }
        }
        let (mean, mean_t) = (mv[0] / m[0], m[1] / m[0]);
        let var = m[2] / m[0] - mean_t * mean_t;
        if points.len() < 2 || var <= 1e-12 {
            return flat(mean);
        }
        let slope = (mv[1] / m[0] - mean_t * mean) / var;
        let line = Curve {
            t0_us,
            a: mean - slope * mean_t,
            b: slope,
            c: 0.0,
        };
        if points.len() < 5 {
            return line;
        }
        // The normal equations for a, b, c, by Cramer's rule.
        let det3 = |a: [[f64; 3]; 3]| {
            a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
                + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
        };
        let normal = [[m[0], m[1], m[2]], [m[1], m[2], m[3]], [m[2], m[3], m[4]]];
        let det = det3(normal);
        if det.abs() <= 1e-18 * m[0].powi(3) {
            return line;
        }
        let solved = |column: usize| {
            let mut n = normal;
            for (row, v) in n.iter_mut().zip(mv) {
                row[column] = v;
            }
            det3(n) / det
        };
        Curve {
            t0_us,
            a: solved(0),
            b: solved(1),
            c: solved(2),
        }
    }

    fn at(&self, t_us: u64) -> f32 {
        let t = (t_us as i64 - self.t0_us as i64) as f64 * 1e-6;
        (self.a + self.b * t + self.c * t * t) as f32
    }
}

/// The descent of `value` from `top` to `bottom` in `trace`: its start and
/// length (us), the line through the crossings of `levels` against
/// `descent_x` (least squares); `None` with fewer than three crossings.
fn fit_descent(
    trace: &[TracePoint],
    value: impl Fn(&TracePoint) -> f32,
    top: f32,
    bottom: f32,
    levels: &[f32],
) -> Option<(f32, f32)> {
    let span = bottom - top;
    if span.abs() <= 1e-6 {
        return None;
    }
    // Progress along the swing, rising from 0 at the top to 1 at the bottom.
    let progress = |p: &TracePoint| (value(p) - top) / span;
    let (mut n, mut sx, mut st, mut sxx, mut sxt) = (0.0f32, 0.0f32, 0.0f32, 0.0f32, 0.0f32);
    for (level, x) in levels.iter().map(|&l| (l, descent_x(l))) {
        // Where the trace goes above the level for the first time and for
        // the last time (noise makes these differ): the middle.
        let Some(first) = trace.iter().position(|p| progress(p) >= level) else {
            continue;
        };
        let last = trace.iter().rposition(|p| progress(p) < level).map_or(first, |j| j + 1);
        if first == 0 || last >= trace.len() {
            continue;
        }
        let at = |i: usize| {
            let (a, b) = (&trace[i - 1], &trace[i]);
            let (pa, pb) = (progress(a), progress(b));
            let k = ((level - pa) / (pb - pa).max(1e-9)).clamp(0.0, 1.0);
            a.t_us as f32 + (b.t_us - a.t_us) as f32 * k
        };
        let t = 0.5 * (at(first) + at(last.max(1)));
        n += 1.0;
        sx += x;
        st += t;
        sxx += x * x;
        sxt += x * t;
    }
    if n < 3.0 {
        return None;
    }
    let var = sxx / n - (sx / n).powi(2);
    let d = (sxt / n - sx / n * st / n) / var;
    if d.is_nan() || d <= 0.0 {
        return None;
    }
    Some((st / n - d * sx / n, d))
}

/// The share of the descent at which the seesaw has covered share `level`
/// of its swing (see `FIT_LEVELS`): the moment is sin(pi/2 * smoothstep(x /
/// 1.1)) of its range.
fn descent_x(level: f32) -> f32 {
    let eased = level.clamp(0.0, 1.0).asin() / std::f32::consts::FRAC_PI_2;
    // Smoothstep's inverse, by bisection (a few dozen steps, once per rep).
    let (mut lo, mut hi) = (0.0f32, 1.0f32);
    for _ in 0..30 {
        let mid = 0.5 * (lo + hi);
        if mid * mid * (3.0 - 2.0 * mid) < eased {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    DESCENT_EASE * 0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REST: Loads = Loads {
        seesaw: 0.15,
        total: 1.5,
        upper: 0.3,
        pelvis: 0.5,
        side: 0.5,
    };

    /// The legs' weight on the pelvis (the whole load 30 % above rest) and
    /// the seesaw at `seesaw`.
    fn lifted(seesaw: f32) -> Loads {
        Loads {
            seesaw,
            total: 1.95,
            upper: 0.25,
            pelvis: 0.6,
            side: 0.5,
        }
    }

    /// A settled person fed 5 ms frames, and what came out.
    struct Feed {
        rc: RepCounter,
        t_us: u64,
        out: Vec<Event>,
    }

    impl Feed {
        fn new() -> Self {
            let mut rc = RepCounter::new(&DetectorConfig::default());
            rc.settle(0, REST);
            Feed {
                rc,
                t_us: 0,
                out: Vec::new(),
            }
        }

        /// `secs` of frames `loads(x)`, `x` going from 0 to 1 over them;
        /// returns the last frame's time (us).
        fn run(&mut self, secs: f32, loads: impl Fn(f32) -> Loads) -> u64 {
            let n = (secs / 0.005) as usize;
            for k in 0..n {
                self.t_us += 5000;
                let x = (k + 1) as f32 / n as f32;
                self.rc.push(self.t_us, 0.005, loads(x), false, &mut self.out);
            }
            self.t_us
        }

        fn reps(&self) -> Vec<&RepEvent> {
            self.out
                .iter()
                .filter_map(|e| match e {
                    Event::Rep(r) => Some(r),
                    _ => None,
                })
                .collect()
        }
    }

    /// Two seconds at rest, then `lifted` for three; whether the legs
    /// counted as lifted.
    fn lifts(lifted: Loads) -> bool {
        let mut feed = Feed::new();
        feed.run(2.0, |_| REST);
        feed.run(3.0, |_| lifted);
        assert!(feed.out.is_empty(), "{:?}", feed.out);
        feed.rc.legs_lifted(5_000_000)
    }

    #[test]
    fn lifted_legs_raise_the_seesaw_and_the_load_and_tip_the_upper_back() {
        let lifted = Loads {
            seesaw: 0.35,
            total: 1.65,
            upper: 0.25,
            pelvis: 0.6,
            side: 0.5,
        };
        assert!(lifts(lifted));
        // Sitting up: the seesaw rises, the load falls.
        assert!(!lifts(Loads { total: 1.3, ..lifted }));
        // A sacral taxel switching on as a light person breathes: the seesaw
        // and the load rise, the upper back stays as it was.
        assert!(!lifts(Loads { upper: 0.3, ..lifted }));
        // A seesaw within the lift level of rest.
        assert!(!lifts(Loads { seesaw: 0.2, ..lifted }));
    }

    /// The seesaw of a set: lift-off to the bottom hover, then `reps` of
    /// (pause, 1.5 s ascent, 0.5 s hold, 3.5 s descent), all levels moved
    /// down by `slide` from rep `slide_from` on (the person slid along the
    /// mat), then the legs down. Returns the reps counted.
    fn reps_of(reps: usize, slide_from: usize, slide: f32) -> usize {
        let d = |r: usize| if r >= slide_from { slide } else { 0.0 };
        reps_between(reps, |r| (0.6 - d(r), 0.4 - d(r), 0.6 - d(r)))
    }

    /// As `reps_of`, with rep `r` pausing at `levels(r).0`, going up to
    /// `levels(r).1` and coming down to `levels(r).2`.
    fn reps_between(reps: usize, levels: impl Fn(usize) -> (f32, f32, f32)) -> usize {
        let mut feed = Feed::new();
        let between = |from: f32, to: f32| move |x: f32| lifted(from + (to - from) * x);
        feed.run(2.0, |_| REST);
        feed.run(0.5, between(0.15, 0.6));
        for r in 0..reps {
            let (bottom, top, end) = levels(r);
            feed.run(2.0, between(bottom, bottom));
            feed.run(1.5, between(bottom, top));
            feed.run(0.5, between(top, top));
            feed.run(3.5, between(top, end));
        }
        let last = levels(reps - 1).2;
        feed.run(2.0, between(last, last));
        feed.run(0.4, |_| REST);
        feed.run(12.0, |_| REST);
        feed.rc.end_session(feed.t_us / 1000, &mut feed.out);
        feed.reps().len()
    }

    #[test]
    fn reps_count_on_after_the_person_slid_along_the_mat() {
        assert_eq!(reps_of(6, 6, 0.0), 6, "without a slide");
        // From the third rep on, every level is 0.3 lower: the bottom learnt
        // before is out of reach of the new swings.
        assert_eq!(reps_of(6, 2, 0.3), 6);
    }

    #[test]
    fn a_descent_short_of_the_bottom_learnt_before_is_a_rep_when_it_pauses() {
        // From the third rep's descent on, the legs come down to 0.47 only
        // (the person slid and the seesaw's swing shrank): 60 % of the way
        // from the top to the old bottom would be 0.50.
        let levels = |r: usize| match r {
            0 | 1 => (0.6, 0.35, 0.6),
            2 => (0.6, 0.35, 0.47),
            _ => (0.47, 0.35, 0.47),
        };
        assert_eq!(reps_between(6, levels), 6);
    }

    #[test]
    fn legs_held_up_short_of_the_bottom_stay_lifted() {
        // 2 s at rest, 3 s at the bottom hover (0.6), 1 s up to 0.35, then
        // 12 s at 0.45: never back at the bottom, the legs' weight still on
        // the pelvis and the seesaw far above rest.
        let mut feed = Feed::new();
        feed.run(2.0, |_| REST);
        feed.run(3.0, |_| lifted(0.6));
        feed.run(1.0, |x| lifted(0.6 - 0.25 * x));
        let end = feed.run(12.0, |_| lifted(0.45));
        assert!(feed.rc.legs_lifted(end));
        assert!(feed.rc.in_set());
    }

    /// A trace of the lever over a 4 s descent from 0 to -1 on the model
    /// path of `descent_x`, 0.3 s still at the top and 0.8 s at the bottom,
    /// with jolts of `start_jolt` as the descent begins and `end_jolt` as it
    /// ends (over 0.1 s each); the upper back's load stays put.
    fn jolted(start_jolt: f32, end_jolt: f32) -> Vec<TracePoint> {
        let path = |x: f32| {
            let s = (x / DESCENT_EASE).clamp(0.0, 1.0);
            (std::f32::consts::FRAC_PI_2 * s * s * (3.0 - 2.0 * s)).sin()
        };
        let ramp = |t: f32, at: f32| ((t - at) / 0.1).clamp(0.0, 1.0);
        (0..=510)
            .map(|k| {
                let t = k as f32 * 0.01;
                let lever = -path((t - 0.3) / 4.0) - start_jolt * ramp(t, 0.3) - end_jolt * ramp(t, 4.3);
                TracePoint {
                    t_us: (t * 1e6) as u64,
                    seesaw: 0.0,
                    pelvis: 0.0,
                    upper: 1.0,
                    lever,
                    side: 0.5,
                }
            })
            .collect()
    }

    #[test]
    fn the_descent_is_timed_between_the_jolts_of_its_start_and_end() {
        let lever = |p: &TracePoint| p.lever;
        let length = |trace: &[TracePoint]| {
            let (top, bottom) = (trace[0].lever, trace[trace.len() - 1].lever);
            let (own, top, bottom) = own_path(trace, lever, top, bottom);
            let raw = fit_descent(trace, lever, trace[0].lever, trace[trace.len() - 1].lever, &FIT_LEVELS)
                .unwrap()
                .1;
            (fit_descent(own, lever, top, bottom, &FIT_LEVELS).unwrap().1, raw)
        };
        // No jolt: the path as it is.
        let (own, _) = length(&jolted(0.0, 0.0));
        assert!((own - 4e6).abs() < 0.05 * 4e6, "{own}");
        // A quarter of the swing at the end (a single leg's landing), either
        // way, and a sixth at the start.
        for (start, end) in [(0.0, 0.25), (0.0, -0.25), (0.16, 0.25), (-0.16, 0.0)] {
            let (own, raw) = length(&jolted(start, end));
            assert!((own - 4e6).abs() < 0.05 * 4e6, "jolts {start} {end}: {own}");
            assert!(
                (raw - 4e6).abs() > 0.1 * 4e6,
                "jolts {start} {end}: {raw} without own_path"
            );
        }
    }

    #[test]
    fn a_clean_descent_is_timed_without_the_legs_easing_into_the_bottom() {
        // The model descent (4 s), then a bottom level still creeping on by
        // 6 % of the swing over the 0.8 s pause: the bottom learnt from the
        // trace's end lies past where the legs arrived.
        let creep = 0.06;
        let trace: Vec<TracePoint> = jolted(0.0, 0.0)
            .into_iter()
            .map(|p| {
                let t = p.t_us as f32 / 1e6;
                TracePoint {
                    lever: p.lever - creep * ((t - 4.3) / 0.8).clamp(0.0, 1.0),
                    ..p
                }
            })
            .collect();
        let lever = |p: &TracePoint| p.lever;
        let (top, bottom) = ends(&trace, lever).unwrap();
        let error = |levels: &[f32]| (fit_descent(&trace, lever, top, bottom, levels).unwrap().1 - 4e6).abs() / 4e6;
        let (clean, every) = (error(&CLEAN_FIT_LEVELS), error(&FIT_LEVELS));
        assert!(clean < 0.07, "{clean}");
        assert!(clean < 0.75 * every, "{clean} against {every} with every level");
    }

    #[test]
    fn a_descent_goes_on_after_the_upper_back_switched_off() {
        // One rep of a light person: the upper back's taxels switch off a
        // third of the way down, and the seesaw reads 1 from there; the
        // sacrum's share of the pelvis rises all the way down (4 s).
        let at = |seesaw: f32, upper: f32, pelvis: f32| Loads {
            upper,
            pelvis,
            ..lifted(seesaw)
        };
        let mut feed = Feed::new();
        feed.run(2.0, |_| REST);
        feed.run(3.0, |_| at(0.6, 0.25, 0.6));
        feed.run(1.5, |x| at(0.6 - 0.3 * x, 0.25 + 0.15 * x, 0.6 - 0.15 * x));
        let top = feed.run(0.5, |_| at(0.3, 0.4, 0.45));
        let bottom = feed.run(4.0, |x| {
            let upper = if x < 1.0 / 3.0 { 0.4 - 0.45 * x } else { 0.0 };
            let seesaw = if upper > 0.0 { 0.3 + 0.9 * x } else { 1.0 };
            at(seesaw, upper, 0.45 + 0.15 * x)
        });
        feed.run(4.0, |_| at(1.0, 0.0, 0.6));
        let reps = feed.reps();
        assert_eq!(reps.len(), 1, "{:?}", feed.out);
        let descent = (bottom - top) / 1000;
        assert!(
            reps[0].t_ms >= bottom / 1000,
            "emitted at {} before the bottom at {}",
            reps[0].t_ms,
            bottom / 1000
        );
        // Not cut short (its length against the legs' own path is judged
        // on the simulator's reps).
        assert!(
            reps[0].descent_ms * 100 >= 85 * descent,
            "{} ms of {descent}",
            reps[0].descent_ms
        );
    }

    #[test]
    fn the_floor_load_is_half_the_lifted_gain_and_never_under_legs_down_gain() {
        assert_eq!(floor_load(0.1), 1.0 + LEGS_DOWN_GAIN);
        assert!((floor_load(0.6) - 1.3).abs() < 1e-6, "{}", floor_load(0.6));
    }

    #[test]
    fn near_rest_needs_a_low_seesaw_and_the_legs_weight_off_the_pelvis() {
        let floor = floor_load(0.3);
        // Within a fifth of the bottom's height of rest...
        assert!(near_rest(0.19, 1.0, 1.0, floor));
        assert!(!near_rest(0.21, 1.0, 1.0, floor));
        // ...or half of `LIFT` for a low bottom.
        assert!(near_rest(0.5 * LIFT - 0.001, LIFT, 1.0, floor));
        assert!(!near_rest(0.5 * LIFT + 0.001, LIFT, 1.0, floor));
        // Legs vertical with the seesaw as low as at rest: their weight is
        // still on the pelvis.
        assert!(!near_rest(0.0, 1.0, floor + 0.01, floor));
    }

    #[test]
    fn for_arches_the_legs_are_down_in_the_lower_half_of_the_swing_with_their_weight_off() {
        let floor = floor_load(0.3);
        assert!(weight_off(0.49, 1.0, 1.0, floor));
        assert!(!weight_off(0.51, 1.0, 1.0, floor));
        assert!(!weight_off(0.0, 1.0, floor, floor));
    }

    #[test]
    fn legs_near_rest_for_rest_s_are_on_the_floor_since_they_came_near() {
        let mut since = None;
        for t_us in [1_000_000, 2_000_000, 3_400_000] {
            since = near_rest_since(since, true, t_us);
        }
        assert_eq!(since, Some(1_000_000));
        assert_eq!(on_floor_since(since, 3_400_000), None);
        let rest_us = (REST_S * 1e6) as u64;
        assert_eq!(on_floor_since(since, 1_000_000 + rest_us + 1000), Some(1_000_000));
        assert_eq!(near_rest_since(since, false, 4_000_000), None);
        assert_eq!(near_rest_since(None, true, 5_000_000), Some(5_000_000));
    }

    #[test]
    fn the_bottom_follows_fast_after_lift_off_and_as_the_legs_come_lower_slowly_as_they_rise() {
        assert!(bottom_tau(true, false) < bottom_tau(false, true));
        assert!(bottom_tau(false, true) < bottom_tau(false, false));
        assert_eq!(bottom_tau(true, true), bottom_tau(true, false));
    }

    #[test]
    fn an_ascent_begins_when_the_seesaw_falls_a_share_of_the_height_below_the_bottom() {
        assert!(!ascent_began(0.5 - 0.1 * 0.4, 0.5, 0.4));
        assert!(ascent_began(0.5 - 0.2 * 0.4, 0.5, 0.4));
    }

    /// A cycle from the top `min` (at 1 s) up to `high` (at `high_us`).
    fn cycle_to(min: f32, high: f32, high_us: u64) -> Cycle {
        Cycle {
            start_us: 0,
            min,
            min_us: 1_000_000,
            t10_us: Some(1_200_000),
            high,
            high_us,
            pelvis_high: 0.6,
            pelvis_high_us: high_us,
        }
    }

    /// A frame at `t_us` with the seesaw at `s`, a bottom 0.5 above rest.
    fn frame_at(t_us: u64, s: f32, in_arch: bool) -> LiftedFrame {
        LiftedFrame {
            t_us,
            s,
            rest: 0.0,
            height: 0.5,
            in_arch,
            floor_load: 1.15,
        }
    }

    #[test]
    fn a_cycle_with_no_descent_after_stall_s_stalls_and_its_legs_stay_up_only_with_their_weight_on() {
        let stall_us = (STALL_S * 1e6) as u64;
        let barely_down = cycle_to(-0.3, -0.2, 0);
        assert!(!stalled(&barely_down, stall_us - 10_000, 0.8, false));
        assert!(stalled(&barely_down, stall_us + 1000, 0.8, false));
        assert!(!stalled(&barely_down, stall_us + 1000, 0.8, true), "not while arching");
        let came_down = cycle_to(-0.3, 0.3, 0);
        assert!(!stalled(&came_down, stall_us + 1000, 0.8, false));
        assert!(still_lifted(1.2, 1.15, LIFT + 0.01));
        assert!(!still_lifted(1.1, 1.15, 0.3), "the legs' weight off the pelvis");
        assert!(!still_lifted(1.2, 1.15, LIFT), "the seesaw at rest");
    }

    #[test]
    fn a_descent_ends_on_a_pause_at_the_bottom_or_on_turning_up() {
        let span = 0.8;
        let (plateau, turned) = (
            Some(DescentEnd {
                plateau: true,
                turned: false,
            }),
            Some(DescentEnd {
                plateau: false,
                turned: true,
            }),
        );
        // Down 0.6 of the span of 0.8 (past `DONE_MIN`), the high at 5 s.
        let c = cycle_to(-0.3, 0.3, 5_000_000);
        let paused_us = 5_000_000 + (PLATEAU_S * 1e6) as u64 + 1000;
        assert_eq!(
            descent_end(&c, frame_at(paused_us - 20_000, 0.3, false), span, true),
            None
        );
        assert_eq!(descent_end(&c, frame_at(paused_us, 0.3, false), span, true), plateau);
        // The pelvis share still rising (an upper back switched off).
        assert_eq!(descent_end(&c, frame_at(paused_us, 0.3, false), span, false), None);
        // Up again without a pause: at once.
        let up = 0.3 - 0.2 * 0.6;
        assert_eq!(descent_end(&c, frame_at(5_100_000, up, false), span, false), turned);
        // Short of `DONE_MIN` of the span, but a swing: after a pause, a
        // rising seesaw ends it; not during an arch.
        let short = cycle_to(-0.3, -0.1, 5_000_000);
        let up = frame_at(paused_us, -0.2, false);
        assert_eq!(descent_end(&short, up, span, true), turned);
        assert_eq!(
            descent_end(&short, LiftedFrame { in_arch: true, ..up }, span, true),
            None
        );
        assert_eq!(descent_end(&short, frame_at(5_100_000, -0.2, false), span, true), None);
    }

    #[test]
    fn a_descent_notes_its_ten_percent_crossing_once_and_highs_only_above_the_noise() {
        let RepPhase::Cycle(c) = RepPhase::cycle(0, 1_000_000, -0.3, 0.5) else {
            unreachable!()
        };
        let span = 0.8;
        let c = c.followed(1_100_000, -0.25, span, 0.5, 0.5);
        assert_eq!((c.t10_us, c.high_us), (None, 1_100_000));
        let c = c.followed(1_200_000, -0.21, span, 0.5, 0.5);
        assert_eq!((c.t10_us, c.high_us), (Some(1_200_000), 1_200_000));
        // 0.01 over the high is under `PLATEAU_EPS` of the span: noise.
        let c = c.followed(1_300_000, -0.2, span, 0.51, 0.5);
        assert_eq!((c.t10_us, c.high, c.high_us), (Some(1_200_000), -0.21, 1_200_000));
        assert_eq!((c.pelvis_high, c.pelvis_high_us), (0.51, 1_300_000));
        // The pelvis share too, by its own swing from the top.
        let c = c.followed(1_400_000, -0.2, span, 0.515, 0.3);
        assert_eq!(c.pelvis_high_us, 1_300_000);
    }

    #[test]
    fn a_rep_is_emitted_after_its_descent_s_end_never_before_now_an_arched_one_soon() {
        let end_us = 10_000_000.0;
        assert_eq!(
            emit_at_us(end_us, 9_000_000, false),
            10_000_000 + EMIT_AFTER_END_US as u64
        );
        assert_eq!(emit_at_us(end_us, 12_000_000, false), 12_000_000);
        assert_eq!(emit_at_us(end_us, 9_000_000, true), 9_000_000 + ARCHED_WAIT_US);
        assert_eq!(emit_at_us(-5e6, 1000, false), 1000);
    }

    #[test]
    fn a_descent_faster_than_legs_come_down_is_no_rep_unless_an_arch_moved_the_seesaw() {
        assert!(!is_real(MIN_DESCENT_US - 1.0, false, false));
        assert!(is_real(MIN_DESCENT_US, false, false));
        assert!(is_real(100_000.0, true, false));
        assert!(is_real(100_000.0, false, true));
    }

    /// The model descent of `jolted` with the load moving sideways on the
    /// sacrum at `at_s` seconds (the side share from 0.65 to 0.52 in 0.1 s),
    /// which steps the lever by `step` as it goes.
    fn side_shifted(at_s: f32, step: f32) -> Vec<TracePoint> {
        jolted(0.0, 0.0)
            .into_iter()
            .map(|p| {
                let moved = ((p.t_us as f32 / 1e6 - at_s) / 0.1).clamp(0.0, 1.0);
                TracePoint {
                    lever: p.lever + step * moved,
                    pelvis: p.lever,
                    side: 0.65 - 0.13 * moved,
                    ..p
                }
            })
            .collect()
    }

    fn clean_length(trace: &[TracePoint]) -> f32 {
        let lever = |p: &TracePoint| p.lever;
        let (top, bottom) = ends(trace, lever).unwrap();
        fit_descent(trace, lever, top, bottom, &CLEAN_FIT_LEVELS).unwrap().1
    }

    #[test]
    fn a_sideways_move_of_the_sacrum_is_levelled_out_of_the_lever() {
        // A third of the swing, either way, early or late in the 4 s descent.
        for (at_s, step) in [(1.2, -0.3), (2.5, 0.3), (3.5, 0.3), (0.6, -0.3)] {
            let shifted = side_shifted(at_s, step);
            let raw = clean_length(&shifted);
            let mut levelled = shifted.clone();
            level_side_shifts(&mut levelled);
            let length = clean_length(&levelled);
            let (error, raw_error) = ((length - 4e6).abs() / 4e6, (raw - 4e6).abs() / 4e6);
            assert!(error < 0.05, "shift at {at_s} by {step}: {length}");
            assert!(
                raw_error > 2.0 * error,
                "shift at {at_s} by {step}: {raw} unlevelled, {length} levelled"
            );
            // The pelvis share moved with the legs alone: levelling keeps it.
            let pelvis_moved = levelled
                .iter()
                .zip(&shifted)
                .map(|(a, b)| (a.pelvis - b.pelvis).abs())
                .fold(0.0, f32::max);
            assert!(pelvis_moved < 0.02, "{pelvis_moved}");
        }
        // Without a sideways move nothing changes.
        let still = jolted(0.0, 0.0);
        let mut levelled = still.clone();
        level_side_shifts(&mut levelled);
        assert_eq!(levelled, still);
    }

    #[test]
    fn a_short_lever_is_stretched_up_to_its_share_and_a_long_one_not_at_all() {
        assert_eq!(short_lever_stretch(-0.9), 1.0);
        assert_eq!(short_lever_stretch(-SHORT_LEVER_FROM), 1.0);
        assert!((short_lever_stretch(-SHORT_LEVER_AT) - (1.0 + SHORT_LEVER_STRETCH)).abs() < 1e-6);
        assert!((short_lever_stretch(-0.2) - (1.0 + SHORT_LEVER_STRETCH)).abs() < 1e-6);
        let mid = short_lever_stretch(-0.5 * (SHORT_LEVER_FROM + SHORT_LEVER_AT));
        assert!((mid - (1.0 + 0.5 * SHORT_LEVER_STRETCH)).abs() < 1e-6, "{mid}");
        // The swing's sign is the lever's direction, not its length.
        assert_eq!(short_lever_stretch(0.5), short_lever_stretch(-0.5));
    }

    #[test]
    fn one_leg_is_the_sacrum_loaded_sideways_since_the_legs_rested() {
        let at = |side: f32, seesaw: f32| Loads { side, ..lifted(seesaw) };
        let mut feed = Feed::new();
        feed.run(2.0, |_| Loads { side: 0.55, ..REST });
        feed.run(3.0, |_| at(0.55, 0.6));
        assert!(!feed.rc.one_leg(), "two legs lifted");
        // Hum and noise on the taxels move it by a hundredth or so (the
        // taxels' glitch filter has taken out single-sample glitches).
        feed.run(2.0, |x| at(0.55 + 0.012 * (x * 400.0).sin(), 0.6));
        assert!(!feed.rc.one_leg(), "noise is not a leg");
        // A taxel left out moves the side share on one frame (`shift`).
        feed.rc.shift(0.0, 1.0, 1.0, 1.0);
        feed.run(1.0, |_| at(0.62, 0.6));
        assert!(!feed.rc.one_leg(), "a change of taxels is not a leg");
        // The other leg takes over: the load moves sideways.
        feed.run(1.0, |_| at(0.55, 0.6));
        assert!(feed.rc.one_leg());
        // Legs down: the next lift starts afresh.
        feed.run(4.0, |_| Loads { side: 0.55, ..REST });
        feed.run(3.0, |_| at(0.55, 0.6));
        assert!(!feed.rc.one_leg(), "after a rest");
    }

    #[test]
    fn a_sideways_move_down_the_descent_keeps_its_top() {
        // One rep: the legs' lever moves load from the upper back to the
        // sacrum over a 4 s descent; a fifth of the way down the load moves
        // sideways on the sacrum, whose sum reads a quarter less from then on
        // (the seesaw falls below the top).
        let path = |x: f32| {
            let s = (x / DESCENT_EASE).clamp(0.0, 1.0);
            (std::f32::consts::FRAC_PI_2 * s * s * (3.0 - 2.0 * s)).sin()
        };
        let at = |lever: f32, moved: f32| {
            let (upper, sacral) = (0.4 - 0.15 * lever, (1.0 + 0.5 * lever) * (1.0 - 0.25 * moved));
            Loads {
                seesaw: (sacral - upper) / (sacral + upper),
                total: 2.2,
                upper,
                pelvis: sacral / (2.2 - upper),
                side: 0.5 + 0.12 * moved,
            }
        };
        let mut feed = Feed::new();
        feed.run(2.0, |_| REST);
        feed.run(3.0, |_| at(1.0, 0.0));
        feed.run(1.5, |x| at(1.0 - path(x), 0.0));
        let top = feed.run(0.5, |_| at(0.0, 0.0));
        let bottom = feed.run(4.0, |x| at(path(x), ((x - 0.2) / 0.025).clamp(0.0, 1.0)));
        feed.run(3.0, |_| at(1.0, 1.0));
        let reps = feed.reps();
        assert_eq!(reps.len(), 1, "{:?}", feed.out);
        let descent = (bottom - top) / 1000;
        let error = reps[0].descent_ms as f32 / descent as f32 - 1.0;
        assert!(error.abs() < 0.1, "{} ms of {descent}", reps[0].descent_ms);
    }
}
