//! Contact loss: the "hundred-dollar bill" being pulled out.
//!
//! Each person's pressed-flat reference is learnt per lumbar row once they
//! have settled, and follows slow changes (FSR creep, a small shift) only
//! while contact is near the reference, outside arches and fast drops, so
//! an arch is never absorbed. With the legs lifted the legs' lever moves
//! load on and off the lumbar rows, so each row is expected to carry what
//! its line against the seesaw says; with the legs down, its reference.
//! Contact is the lowest ratio of load to expected load over the rows
//! loaded enough to judge, and the whole lumbar region's.
//! With the legs lifted, the arch starts on the first frame below the
//! threshold (glitches are already removed by shape upstream), unless the
//! upper back's collapse explains the loss. Otherwise the loss must last:
//! `LEGS_DOWN_CONFIRM_US` with the legs down, and `LEAVING_CONFIRM_US` when
//! the whole body's load falls as in getting up; the arch's onset is still
//! the first frame of the loss. No arch starts while the person sits up.
//! `ContactLoss::push` takes these steps in order, one function each.

use super::{low_pass, DetectorConfig};

/// Reference tracking time constants: quick right after settling (the first
/// estimate may still hold some settling swing), slow afterwards.
const TAU_EARLY_S: f32 = 4.0;
const TAU_LATE_S: f32 = 30.0;
const EARLY_S: f32 = 20.0;
/// Contact band inside which the reference may follow the signal.
const TRACK_BAND: (f32, f32) = (0.82, 1.3);
/// A lumbar row takes part only if its reference holds this share of the
/// best-loaded lumbar row (an edge row with little load is mostly noise).
const ROW_SHARE: f32 = 0.45;
/// An FSR turns on only above some force, so a taxel carrying little (a
/// light person, a row at the edge of the lumbar region) switches off and
/// on as the load wobbles: a row whose taxels carry less than this each on
/// average (about 110 counts of 10 bits) loses far more than the region
/// does. Contact is the lowest of the strong rows' and the whole lumbar
/// region's (where a weak row counts by its load); when even the best row
/// is this weak (a light person), the region's.
const MARGINAL_TAXEL: f32 = 0.1;
/// A row judged weak (on its expected load over the last `LEVEL_TAU_S`)
/// takes part again above this many times `MARGINAL_TAXEL`.
const MARGINAL_HYSTERESIS: f32 = 1.25;
const LEVEL_TAU_S: f32 = 2.0;
/// An arch leaves the upper back loaded (it loses under a tenth). With the
/// legs lifted, the upper back falling to this share of its level of the
/// last `DROP_TAU_S`, and further than the best lumbar row falls, is the
/// lever emptying taxels near their turn-on (the upper back's, and a lumbar
/// row's share of it), not an arch.
const UPPER_COLLAPSE: f32 = 0.7;
/// ...unless a lumbar row lost more load than the upper back did, or the
/// whole lumbar region lost this share of what it should carry: the upper
/// back emptying takes only the rows' share of it. (A light person's upper
/// back rests on taxels near their turn-on: an arch, which takes a tenth of
/// its load, can empty it too.)
const COLLAPSE_REGION: f32 = 0.6;
/// Sitting up to get off the mat unloads the upper back together with the
/// lumbar rows; an arch leaves the upper back loaded. Below this share of its
/// level of the last seconds, the upper back says "sitting up", not "arch".
const SITTING_UP: f32 = 0.8;
const UPPER_TAU_S: f32 = 2.0;
/// Sitting up takes the upper back to nothing within half a second. With the
/// legs down (or only just "lifted": sitting up raises the seesaw too), the
/// upper back falling below this share of its level of the last seconds means
/// sitting up, and no arch starts until it is loaded again. With the legs
/// lifted for a while, a light person's upper back may unload completely in
/// an arch, so this does not apply there.
const SAT_UP: f32 = 0.45;
const SAT_UP_RECOVERED: f32 = 0.8;
/// With the legs on the floor the lever is small and an arch is rare, while
/// getting up unloads the lumbar rows first: there a loss of the whole lumbar
/// region must last this long (and the person must stay on the mat) before
/// it is an arch. With the legs
/// lifted an arch starts on the first frame below the threshold.
const LEGS_DOWN_CONFIRM_US: u64 = 500_000;
/// A loss of the whole body but the sacrum, the legs up: an arch once the
/// sacrum has kept its load this long (getting up empties it within a
/// second).
const LEAVING_CONFIRM_US: u64 = 700_000;
/// While the legs work, each lumbar row also carries part of the upper back
/// and of the sacrum, which the legs' lever unloads and loads: for a person
/// lying off the middle of the grid, or who slid along it mid-set, a lumbar
/// row can lose a third of its load at every bottom of a rep. So with the
/// legs lifted each row is compared with what its load is at this seesaw,
/// from a least-squares line of its clean frames, forgetting over this many
/// seconds of lifted legs: about one rep (5-8 s), which holds a whole swing
/// of the seesaw, while a slide of a third of a row takes 10-25 s. (Over 20 s
/// the line lagged slides and creep: a wobble of a third on a row already
/// below its line read as an arch.)
const FIT_TAU_S: f32 = 6.0;
/// The line is used once it holds this many seconds of frames; its slope
/// once the seesaw has swung (variance of this much).
const FIT_MIN_S: f32 = 1.0;
const FIT_MIN_VAR: f32 = 4e-4;
/// The line follows a slide over one rep, and lags it in between: a row
/// that slid off part of its line carries less than it says, and a wobble
/// of a third there would read as an arch. So a row is judged against its
/// line times its drift from it, its load against the line over the last
/// `DRIFT_TAU_S` of clean lifted frames (an arch or a wobble is a fast
/// drop, which nothing learns from), down to `DRIFT_MIN` of it.
const DRIFT_TAU_S: f32 = 2.0;
const DRIFT_MIN: f32 = 0.5;
/// A swing spread evenly between two levels lies within 1.73 standard
/// deviations of its mean.
const FIT_REACH: f32 = 2.0;
/// Frames are clean enough to learn from at least this long after an arch,
/// and outside a fast drop.
const FIT_AFTER_ARCH_US: u64 = 1_000_000;
/// What tells an arch or a wobble from a slide or creep is speed: the lumbar
/// region loses its load within a few hundred milliseconds, a slide moves it
/// over tens of seconds. Contact falling below this share of its level of
/// the last `DROP_TAU_S` is a fast drop: nothing learns from the rows until
/// contact is back within `HOLD_RELEASE` of where it was, or `HOLD_MAX_US`
/// has passed (a wobble is over by then, and an arch has crossed the
/// threshold; what stays is a step: a taxel that switched off).
const DROP: f32 = 0.85;
const DROP_TAU_S: f32 = 0.3;
const HOLD_RELEASE: f32 = 0.9;
const HOLD_MAX_US: u64 = 3_000_000;
/// An arch lasts until the legs come back up or drop, seconds at most: a
/// loss that lasts this long is a new posture, learnt afresh.
const ARCH_MAX_US: u64 = 20_000_000;
/// With the legs down for this long and contact steady, the reference
/// follows the rows quickly and in a wide band: a person who slid along
/// the mat during the set rests in a new place.
const REST_FOLLOW_US: u64 = 5_000_000;
const REST_TAU_S: f32 = 5.0;
const REST_BAND: (f32, f32) = (0.65, 2.0);
/// A row's line is trusted down to this share of its pressed-flat reference:
/// a line learnt on a swing that nearly empties the row would otherwise make
/// any small load read as full contact.
const LINE_FLOOR: f32 = 0.25;
/// Loads divided by are at least this, so an empty row or upper back reads
/// as a fall to nothing, not a division by zero.
const NO_LOAD: f32 = 1e-6;
/// The reference mat's taxels per row, until `set_row_taxels` says
/// otherwise.
const DEFAULT_ROW_TAXELS: f32 = 4.0;

/// A least-squares line `load = a + b * seesaw` of one lumbar row, from
/// exponentially forgotten sums.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct LeverFit {
    w: f32,
    x: f32,
    y: f32,
    xx: f32,
    xy: f32,
}

impl LeverFit {
    fn add(&mut self, dt_s: f32, x: f32, y: f32) {
        let keep = 1.0 - dt_s / (FIT_TAU_S + dt_s);
        for v in [&mut self.w, &mut self.x, &mut self.y, &mut self.xx, &mut self.xy] {
            *v *= keep;
        }
        self.w += dt_s;
        self.x += dt_s * x;
        self.y += dt_s * y;
        self.xx += dt_s * x * x;
        self.xy += dt_s * x * y;
    }

    /// The row's expected load at seesaw `x`, once there is enough data.
    /// The line holds over the swing it was learnt on (within `FIT_REACH`
    /// standard deviations of its mean); beyond, its edge value: an arch
    /// that empties the upper back takes the seesaw to 1, where the line
    /// would expect the row to carry next to nothing.
    fn predict(&self, x: f32) -> Option<f32> {
        if self.w < FIT_MIN_S {
            return None;
        }
        let (mx, my) = (self.x / self.w, self.y / self.w);
        let var = self.xx / self.w - mx * mx;
        if var < FIT_MIN_VAR {
            return Some(my);
        }
        let slope = (self.xy / self.w - mx * my) / var;
        let reach = FIT_REACH * var.sqrt();
        Some(my + slope * (x - mx).clamp(-reach, reach))
    }
}

/// What the rest of the body says on this frame, as far as an arch cares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Posture {
    /// False while the person is leaving the mat: no arch starts.
    pub may_start: bool,
    /// The whole load fell as in getting up: a loss must last
    /// `LEAVING_CONFIRM_US` (with `may_start` throughout) to be an arch.
    pub confirm: bool,
    /// The legs have been off the floor for a while: the person cannot be
    /// sitting up, and an arch starts on its first frame.
    pub legs_lifted: bool,
    /// The whole load is above its rest level: the legs' weight is on the
    /// pelvis. Sitting up takes the trunk's weight off instead, so an upper
    /// back that empties now is a leg lift (the lever), not sitting up.
    pub legs_weight: bool,
    /// The legs' lever: `(sacral - upper) / (sacral + upper)`.
    pub seesaw: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArchChange {
    Start { onset_us: u64, contact: f32 },
    End { duration_us: u64, min_contact: f32 },
}

#[derive(Debug, Clone)]
pub struct ContactLoss {
    arch_contact: f32,
    arch_release: f32,
    /// Reference per lumbar row (force proxy), learnt after settling.
    reference: Vec<f32>,
    /// Upper-back load averaged over the last seconds.
    upper_recent: f32,
    since_settled_s: f32,
    arch: Option<(u64, f32)>,
    /// Contact below the threshold since this time, waiting for the loss to
    /// last (`arch_wait`).
    candidate_us: Option<u64>,
    /// Sitting up: the upper-back level before it fell.
    sat_up: Option<f32>,
    contact: f32,
    /// Per lumbar row, its load against the seesaw with the legs lifted.
    fits: Vec<LeverFit>,
    /// The last arch ended at this time.
    arch_end_us: Option<u64>,
    /// The legs have been down (not lifted) since this time.
    down_since_us: Option<u64>,
    /// This frame's expected load per lumbar row (scratch).
    expected: Vec<f32>,
    /// Contact over the last `DROP_TAU_S`, and whether the legs were
    /// lifted on the last frame (the expectation changes then).
    recent: f32,
    was_lifted: bool,
    /// A fast drop: since when, and the contact before it.
    hold: Option<(u64, f32)>,
    /// Taxels per row (the rows' loads are sums).
    row_taxels: f32,
    /// Per lumbar row: its expected load over the last `LEVEL_TAU_S`,
    /// whether it is weak (see `MARGINAL_TAXEL`), and its load over the last
    /// `DROP_TAU_S`; the same for the upper back.
    level: Vec<f32>,
    weak: Vec<bool>,
    rows_fast: Vec<f32>,
    /// Per lumbar row: its load against its line over the last
    /// `DRIFT_TAU_S` of clean lifted frames.
    drift: Vec<f32>,
    upper_fast: f32,
}

impl ContactLoss {
    pub fn new(config: &DetectorConfig) -> Self {
        ContactLoss {
            arch_contact: config.arch_contact as f32,
            arch_release: config.arch_release as f32,
            reference: Vec::new(),
            upper_recent: 0.0,
            since_settled_s: 0.0,
            arch: None,
            candidate_us: None,
            sat_up: None,
            contact: 1.0,
            fits: Vec::new(),
            arch_end_us: None,
            down_since_us: None,
            expected: Vec::new(),
            recent: 1.0,
            was_lifted: false,
            hold: None,
            row_taxels: DEFAULT_ROW_TAXELS,
            level: Vec::new(),
            weak: Vec::new(),
            rows_fast: Vec::new(),
            drift: Vec::new(),
            upper_fast: 0.0,
        }
    }

    /// The grid's taxels per row (4 unless told).
    pub fn set_row_taxels(&mut self, n: usize) {
        self.row_taxels = n.max(1) as f32;
    }

    /// Starts a new person's reference from their settled lumbar rows.
    pub fn settle(&mut self, lumbar: &[f32], upper: f32) {
        self.reference.clear();
        self.reference.extend_from_slice(lumbar);
        self.upper_recent = upper;
        self.since_settled_s = 0.0;
        self.arch = None;
        self.candidate_us = None;
        self.sat_up = None;
        self.contact = 1.0;
        self.fits.clear();
        self.fits.resize(lumbar.len(), LeverFit::default());
        self.expected.clear();
        self.expected.resize(lumbar.len(), 0.0);
        self.arch_end_us = None;
        self.down_since_us = None;
        self.recent = 1.0;
        self.was_lifted = false;
        self.hold = None;
        self.level.clear();
        self.level.extend_from_slice(lumbar);
        let marginal = MARGINAL_TAXEL * self.row_taxels;
        self.weak.clear();
        self.weak.extend(lumbar.iter().map(|&x| x < marginal));
        self.rows_fast.clear();
        self.rows_fast.extend_from_slice(lumbar);
        self.drift.clear();
        self.drift.resize(lumbar.len(), 1.0);
        self.upper_fast = upper;
    }

    pub fn is_settled(&self) -> bool {
        !self.reference.is_empty()
    }

    /// The upper back has unloaded as in sitting up (see `SAT_UP`).
    pub fn sitting_up(&self) -> bool {
        self.sat_up.is_some()
    }

    pub fn in_arch(&self) -> bool {
        self.arch.is_some()
    }

    /// The last contact estimate (fraction of the reference).
    pub fn contact(&self) -> f32 {
        self.contact
    }

    /// Rescales the references after the set of healthy taxels changed:
    /// `ratio[i]` is new/old row value on the same frame.
    pub fn rescale(&mut self, lumbar_ratio: &[f32], upper_ratio: f32) {
        for (i, k) in lumbar_ratio.iter().enumerate() {
            self.reference[i] *= k;
            self.fits[i].y *= k;
            self.fits[i].xy *= k;
            self.level[i] *= k;
            self.rows_fast[i] *= k;
        }
        self.upper_fast *= upper_ratio;
        self.upper_recent *= upper_ratio;
    }

    /// Forgets the person (they got up).
    pub fn reset(&mut self, t_us: u64) -> Option<ArchChange> {
        self.reference.clear();
        self.end_arch(t_us)
    }

    fn end_arch(&mut self, t_us: u64) -> Option<ArchChange> {
        let (onset, min) = self.arch.take()?;
        self.arch_end_us = Some(t_us);
        Some(ArchChange::End {
            duration_us: t_us.saturating_sub(onset),
            min_contact: min,
        })
    }

    /// One frame: lumbar row forces and the upper-back force. Each step
    /// below is one decision; their order matters (each reads what the
    /// steps before it updated), so it is the order they had when this was
    /// one function.
    pub fn push(&mut self, t_us: u64, dt_s: f32, lumbar: &[f32], upper: f32, posture: Posture) -> Option<ArchChange> {
        if self.reference.is_empty() {
            return None;
        }
        self.since_settled_s += dt_s;
        self.note_legs(t_us, posture.legs_lifted);
        self.expect_loads(posture.legs_lifted, posture.seesaw);
        self.track_rows(dt_s, lumbar);
        let loss = self.judge_rows(lumbar, posture.legs_lifted)?;
        let upper_back = self.track_upper_back(dt_s, upper, loss.best_fall);
        self.track_drop(t_us, dt_s, loss.contact, posture.legs_lifted);
        self.contact = loss.contact;
        let clean = self.is_clean(t_us);
        if posture.legs_lifted && clean {
            self.learn_lever(dt_s, lumbar, posture.seesaw, loss.contact);
        }
        self.track_sitting_up(dt_s, upper, posture);
        if clean && !posture.legs_lifted {
            self.follow_reference(t_us, dt_s, lumbar);
        }
        if self.arch.is_some() {
            return self.follow_arch(t_us, lumbar, loss.contact);
        }
        let wait = arch_wait(&loss, &upper_back, posture, self.arch_contact, self.sat_up.is_some());
        self.confirm_start(t_us, loss.contact, wait)
    }

    /// Notes since when the legs have been down (`REST_FOLLOW_US`).
    fn note_legs(&mut self, t_us: u64, legs_lifted: bool) {
        if legs_lifted {
            self.down_since_us = None;
        } else if self.down_since_us.is_none() {
            self.down_since_us = Some(t_us);
        }
    }

    /// What each row should carry now: with the legs lifted, its line
    /// against the seesaw; else the pressed-flat reference.
    fn expect_loads(&mut self, legs_lifted: bool, seesaw: f32) {
        for ((e, r), fit) in self.expected.iter_mut().zip(&self.reference).zip(&self.fits) {
            *e = expected_load(*r, legs_lifted.then(|| fit.predict(seesaw)).flatten());
        }
    }

    /// Each row's expected level (and whether that makes it weak) and its
    /// load over the last `DROP_TAU_S`.
    fn track_rows(&mut self, dt_s: f32, lumbar: &[f32]) {
        let marginal = MARGINAL_TAXEL * self.row_taxels;
        for (((level, weak), fast), (e, x)) in self
            .level
            .iter_mut()
            .zip(&mut self.weak)
            .zip(&mut self.rows_fast)
            .zip(self.expected.iter().zip(lumbar))
        {
            low_pass(level, *e, dt_s, LEVEL_TAU_S);
            *weak = weak_row(*weak, *level, marginal);
            low_pass(fast, *x, dt_s, DROP_TAU_S);
        }
    }

    /// The lumbar region's loss on this frame: contact is the lowest ratio
    /// to its expected load of the rows that take part (a row holding at
    /// least `ROW_SHARE` of the best reference, and not weak unless it is
    /// the strongest) and of the whole region's. None when no row takes
    /// part.
    fn judge_rows(&self, lumbar: &[f32], legs_lifted: bool) -> Option<LumbarLoss> {
        let best = self.reference.iter().cloned().fold(0.0f32, f32::max);
        // The best row: the one expected to carry the most.
        let strongest = (0..self.expected.len())
            .max_by(|&a, &b| self.expected[a].total_cmp(&self.expected[b]))
            .unwrap_or(0);
        let mut contact = f32::INFINITY;
        let mut row_loss = 0.0f32;
        let (mut region, mut region_ref) = (0.0, 0.0);
        for (i, ((x, r), e)) in lumbar.iter().zip(&self.reference).zip(&self.expected).enumerate() {
            if *r > ROW_SHARE * best && *r > 0.0 {
                let judged = judged_load(*e, self.drift[i], legs_lifted);
                if !self.weak[i] || i == strongest {
                    contact = contact.min(row_contact(*x, judged, self.rows_fast[i], legs_lifted));
                    row_loss = row_loss.max(e - x);
                }
                region += x;
                region_ref += judged;
            }
        }
        if !contact.is_finite() || region_ref <= 0.0 {
            return None;
        }
        Some(LumbarLoss {
            contact: lumbar_contact(contact, region, region_ref, self.weak[strongest]),
            row_loss,
            region,
            region_ref,
            best_fall: lumbar[strongest] / self.rows_fast[strongest].max(NO_LOAD),
        })
    }

    /// The upper back against its levels of the last `DROP_TAU_S` and of
    /// the last `UPPER_TAU_S`, read before this frame moves the first.
    fn track_upper_back(&mut self, dt_s: f32, upper: f32, best_fall: f32) -> UpperBack {
        let fall = upper / self.upper_fast.max(NO_LOAD);
        let loss = self.upper_fast - upper;
        low_pass(&mut self.upper_fast, upper, dt_s, DROP_TAU_S);
        UpperBack {
            collapsed: fall < UPPER_COLLAPSE && fall < best_fall,
            loss,
            ratio: upper_ratio(upper, self.upper_recent),
        }
    }

    /// Contact over the last `DROP_TAU_S`, and the fast drop it shows
    /// (`DROP`): nothing learns from the rows during one.
    fn track_drop(&mut self, t_us: u64, dt_s: f32, contact: f32, legs_lifted: bool) {
        if legs_lifted != self.was_lifted {
            // The expectation changed, not the body.
            self.recent = contact;
            self.was_lifted = legs_lifted;
        }
        low_pass(&mut self.recent, contact, dt_s, DROP_TAU_S);
        self.hold = next_hold(self.hold, t_us, contact, self.recent);
    }

    /// Frames to learn from: outside an arch and a fast drop, and at least
    /// `FIT_AFTER_ARCH_US` after the last arch.
    fn is_clean(&self, t_us: u64) -> bool {
        self.arch.is_none() && self.hold.is_none() && self.arch_end_us.is_none_or(|end| t_us >= end + FIT_AFTER_ARCH_US)
    }

    /// With the legs lifted, each row's line against the seesaw and its
    /// drift from it (`FIT_TAU_S`, `DRIFT_TAU_S`).
    fn learn_lever(&mut self, dt_s: f32, lumbar: &[f32], seesaw: f32, contact: f32) {
        for (fit, x) in self.fits.iter_mut().zip(lumbar) {
            fit.add(dt_s, seesaw, *x);
        }
        for ((d, x), e) in self.drift.iter_mut().zip(lumbar).zip(&self.expected) {
            // Not from a frame that may start an arch.
            if *e > 0.0 && contact >= self.arch_contact {
                low_pass(d, x / e, dt_s, DRIFT_TAU_S);
            }
        }
    }

    /// Sitting up (`SAT_UP`), and the upper back's level of the last
    /// `UPPER_TAU_S`, which stands still while the person sits up.
    fn track_sitting_up(&mut self, dt_s: f32, upper: f32, posture: Posture) {
        self.sat_up = next_sat_up(self.sat_up, upper, self.upper_recent, posture);
        if self.sat_up.is_none() {
            low_pass(&mut self.upper_recent, upper, dt_s, UPPER_TAU_S);
        }
    }

    /// Follows slow changes only near the reference and outside arches;
    /// with the legs down for a while, in a wider band and faster.
    fn follow_reference(&mut self, t_us: u64, dt_s: f32, lumbar: &[f32]) {
        let resting = self.down_since_us.is_some_and(|d| t_us >= d + REST_FOLLOW_US);
        let (tau, band) = follow_pace(resting, self.since_settled_s);
        if near_reference(lumbar, &self.reference, band) {
            for (r, x) in self.reference.iter_mut().zip(lumbar) {
                low_pass(r, *x, dt_s, tau);
            }
        }
    }

    /// An arch under way: its lowest contact, and its end on release or
    /// after `ARCH_MAX_US`.
    fn follow_arch(&mut self, t_us: u64, lumbar: &[f32], contact: f32) -> Option<ArchChange> {
        let (onset, min) = self.arch.as_mut()?;
        *min = min.min(contact);
        if t_us >= *onset + ARCH_MAX_US {
            // Not an arch any more: the person lies differently now.
            self.reference.copy_from_slice(lumbar);
            self.fits.fill(LeverFit::default());
            return self.end_arch(t_us);
        }
        if contact > self.arch_release {
            self.end_arch(t_us)
        } else {
            None
        }
    }

    /// Starts an arch once its loss has lasted `wait`; its onset is the
    /// loss's first frame.
    fn confirm_start(&mut self, t_us: u64, contact: f32, wait: ArchWait) -> Option<ArchChange> {
        let wait_us = match wait {
            ArchWait::NoArch => {
                self.candidate_us = None;
                return None;
            }
            ArchWait::Explained => return None,
            ArchWait::For(wait_us) => wait_us,
        };
        let onset_us = *self.candidate_us.get_or_insert(t_us);
        if t_us.saturating_sub(onset_us) < wait_us {
            return None;
        }
        self.candidate_us = None;
        self.arch = Some((onset_us, contact));
        Some(ArchChange::Start { onset_us, contact })
    }
}

/// The lumbar region's loss on one frame (`ContactLoss::judge_rows`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct LumbarLoss {
    /// Fraction of the expected load (see `lumbar_contact`).
    contact: f32,
    /// The most load a judged row lost against its expected load.
    row_loss: f32,
    /// The region's load and what it is judged against.
    region: f32,
    region_ref: f32,
    /// The strongest row's load over its load of the last `DROP_TAU_S`.
    best_fall: f32,
}

/// The upper back on one frame (`ContactLoss::track_upper_back`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct UpperBack {
    /// Fell to under `UPPER_COLLAPSE` of its recent level, and further
    /// than the strongest lumbar row: the legs' lever emptying it.
    collapsed: bool,
    /// The load it lost against its level of the last `DROP_TAU_S`.
    loss: f32,
    /// Its load over its level of the last `UPPER_TAU_S`.
    ratio: f32,
}

/// How long a frame's loss must last to be an arch (`arch_wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArchWait {
    /// No loss that may be an arch: a pending loss is forgotten.
    NoArch,
    /// A loss the upper back's collapse explains: nothing starts on this
    /// frame, and a pending loss stays pending.
    Explained,
    /// An arch once the loss has lasted this many microseconds.
    For(u64),
}

/// What a row should carry: its line's value at this seesaw when there is
/// one (legs lifted), never under `LINE_FLOOR` of its reference; else its
/// pressed-flat reference.
fn expected_load(reference: f32, line: Option<f32>) -> f32 {
    match line {
        Some(p) => p.max(LINE_FLOOR * reference),
        None => reference,
    }
}

/// Whether a row is weak: its expected level under `marginal`, and back
/// only above `MARGINAL_HYSTERESIS` times it (a level near the edge must
/// not flip it on every frame).
fn weak_row(was_weak: bool, level: f32, marginal: f32) -> bool {
    if was_weak && level > MARGINAL_HYSTERESIS * marginal {
        false
    } else if !was_weak && level < marginal {
        true
    } else {
        was_weak
    }
}

/// What a row is judged against: its expected load; with the legs lifted,
/// times its drift from its line (see `DRIFT_TAU_S`), at least `DRIFT_MIN`
/// of it and never above it.
fn judged_load(expected: f32, drift: f32, legs_lifted: bool) -> f32 {
    if legs_lifted {
        expected * drift.clamp(DRIFT_MIN, 1.0)
    } else {
        expected
    }
}

/// One row's contact. An arch takes its share of what a row carries: with
/// the legs lifted, a row above its judged load that falls fast is judged
/// against where it fell from, its load of the last `DROP_TAU_S` (`recent`).
fn row_contact(load: f32, judged: f32, recent: f32, legs_lifted: bool) -> f32 {
    let from = if legs_lifted { judged.max(recent) } else { judged };
    load / from
}

/// The lumbar contact: the lowest of the judged rows' (`rows`) and of the
/// whole region's, which counts each row by its load, so a weak row (where
/// an arch may show best, with its neighbours' share of the load on the
/// strong one) still counts, but by its weight only. When even the
/// strongest row is weak (a light person), the region's alone.
fn lumbar_contact(rows: f32, region: f32, region_ref: f32, strongest_weak: bool) -> f32 {
    if strongest_weak {
        region / region_ref
    } else {
        rows.min(region / region_ref)
    }
}

/// A load over its level, 1 while there is no level yet.
fn upper_ratio(upper: f32, level: f32) -> f32 {
    if level > 0.0 {
        upper / level
    } else {
        1.0
    }
}

/// A fast drop (`DROP`) since when and from what contact: it starts when
/// contact falls below `DROP` of its recent level, and ends once contact is
/// back within `HOLD_RELEASE` of where it was or after `HOLD_MAX_US`.
fn next_hold(hold: Option<(u64, f32)>, t_us: u64, contact: f32, recent: f32) -> Option<(u64, f32)> {
    match hold {
        None if contact < DROP * recent => Some((t_us, recent)),
        Some((since, before)) if contact >= HOLD_RELEASE * before || t_us >= since + HOLD_MAX_US => None,
        other => other,
    }
}

/// Sitting up: the upper back's level before it fell, kept from when it
/// falls below `SAT_UP` of its recent level (`upper_recent`) with the legs
/// down and their weight off the pelvis, until it is back to
/// `SAT_UP_RECOVERED` of that level or the legs' weight comes on.
fn next_sat_up(sat_up: Option<f32>, upper: f32, upper_recent: f32, posture: Posture) -> Option<f32> {
    match sat_up {
        None if upper_ratio(upper, upper_recent) < SAT_UP && !posture.legs_lifted && !posture.legs_weight => {
            Some(upper_recent)
        }
        Some(before) if upper >= SAT_UP_RECOVERED * before || posture.legs_weight => None,
        other => other,
    }
}

/// How fast and in what band the reference follows the rows: quickly and
/// widely once the legs have rested for `REST_FOLLOW_US`, else quickly
/// during the first `EARLY_S` after settling, then slowly.
fn follow_pace(resting: bool, since_settled_s: f32) -> (f32, (f32, f32)) {
    if resting {
        (REST_TAU_S, REST_BAND)
    } else if since_settled_s < EARLY_S {
        (TAU_EARLY_S, TRACK_BAND)
    } else {
        (TAU_LATE_S, TRACK_BAND)
    }
}

/// Every row with a reference carries within `band` of it: the reference
/// follows only then, so a loss on one row is never learnt.
fn near_reference(lumbar: &[f32], reference: &[f32], band: (f32, f32)) -> bool {
    lumbar
        .iter()
        .zip(reference)
        .all(|(x, r)| *r <= 0.0 || (band.0..band.1).contains(&(x / r)))
}

/// How long a loss below `arch_contact` must last to be an arch. None
/// while the person is leaving or sitting up. With the legs lifted, at
/// once, unless the upper back's collapse explains it (`UPPER_COLLAPSE`):
/// the collapse takes a lumbar row's share of it, not more load than the
/// upper back lost itself, nor `COLLAPSE_REGION` of the whole region's.
/// With the legs down, `LEGS_DOWN_CONFIRM_US`, and the whole lumbar region
/// must have lost contact: a light person's weak lumbar row can rest on one
/// or two taxels near their turn-on, which switch off and on as they
/// breathe; and the upper back must be loaded (`SITTING_UP`). A loss as in
/// getting up is judged by the sacrum instead of the upper back, over
/// `LEAVING_CONFIRM_US`.
fn arch_wait(loss: &LumbarLoss, upper: &UpperBack, posture: Posture, arch_contact: f32, sitting_up: bool) -> ArchWait {
    if loss.contact >= arch_contact || !posture.may_start || sitting_up {
        return ArchWait::NoArch;
    }
    let wait_us = if posture.legs_lifted {
        if upper.collapsed && loss.region >= COLLAPSE_REGION * loss.region_ref && loss.row_loss <= upper.loss {
            return ArchWait::Explained;
        }
        0
    } else {
        if loss.region >= arch_contact * loss.region_ref || (upper.ratio < SITTING_UP && !posture.confirm) {
            return ArchWait::NoArch;
        }
        LEGS_DOWN_CONFIRM_US
    };
    ArchWait::For(if posture.confirm { LEAVING_CONFIRM_US } else { wait_us })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Legs lifted, or down, with the whole load at rest.
    const LIFTED: Posture = Posture {
        may_start: true,
        confirm: false,
        legs_lifted: true,
        legs_weight: true,
        seesaw: 0.4,
    };
    const DOWN: Posture = Posture {
        may_start: true,
        confirm: false,
        legs_lifted: false,
        legs_weight: false,
        seesaw: 0.1,
    };

    fn cl() -> ContactLoss {
        let mut c = ContactLoss::new(&DetectorConfig::default());
        c.settle(&[100.0, 80.0], 50.0);
        c
    }

    #[test]
    fn arch_starts_on_the_first_frame_below_threshold_and_ends_on_release() {
        let mut c = cl();
        let mut t = 0;
        let mut events = Vec::new();
        for k in 0..100 {
            t += 5000;
            let drop = if (20..60).contains(&k) { 0.4 } else { 1.0 };
            if let Some(e) = c.push(t, 0.005, &[100.0 * drop, 80.0], 50.0, LIFTED) {
                events.push((k, e));
            }
        }
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].0, 20);
        assert!(matches!(events[0].1, ArchChange::Start { contact, .. } if (contact - 0.4).abs() < 1e-3));
        assert!(matches!(
            events[1].1,
            ArchChange::End {
                duration_us: 200_000,
                ..
            }
        ));
    }

    #[test]
    fn wobbles_do_not_arch_and_are_not_absorbed() {
        let mut c = cl();
        let mut t = 0;
        for k in 0..20_000 {
            t += 5000;
            let wobble = 1.0 - 0.25 * ((k as f32) * 0.01).sin().abs();
            assert!(c.push(t, 0.005, &[100.0 * wobble, 80.0 * wobble], 50.0, DOWN).is_none());
        }
        // A long sustained arch is never learnt into the reference.
        t += 5000;
        assert!(matches!(
            c.push(t, 0.005, &[30.0, 50.0], 50.0, LIFTED),
            Some(ArchChange::Start { .. })
        ));
        let at_start = c.contact();
        assert!(at_start < 0.4, "{at_start}");
        for _ in 0..3900 {
            t += 5000;
            c.push(t, 0.005, &[30.0, 50.0], 50.0, LIFTED);
        }
        assert!(c.in_arch());
        assert_eq!(
            c.contact(),
            at_start,
            "19.5 s into the arch, the reference has not moved"
        );
        // A loss lasting longer than any arch is a new posture, learnt afresh.
        let mut ended = None;
        for _ in 0..200 {
            t += 5000;
            if let Some(e) = c.push(t, 0.005, &[30.0, 50.0], 50.0, LIFTED) {
                ended = Some(e);
            }
        }
        assert!(matches!(ended, Some(ArchChange::End { .. })), "{ended:?}");
        assert!(!c.in_arch());
    }

    #[test]
    fn with_legs_down_a_loss_must_last() {
        let mut c = cl();
        let mut t = 0;
        let mut started = None;
        for k in 0..200 {
            t += 5000;
            if let Some(ArchChange::Start { onset_us, .. }) = c.push(t, 0.005, &[40.0, 40.0], 50.0, DOWN) {
                started = Some((k, onset_us));
            }
        }
        let (k, onset) = started.expect("a lasting loss with legs down is an arch");
        assert_eq!(k, 100, "confirmed after 0.5 s");
        assert_eq!(onset, 5000, "onset is when it began");
    }

    #[test]
    fn with_legs_down_one_weak_row_losing_a_taxel_is_not_an_arch() {
        // The weak row halves (one of its taxels switched off), the region
        // keeps two thirds of its load.
        let mut c = cl();
        let mut t = 0;
        for _ in 0..400 {
            t += 5000;
            assert!(c.push(t, 0.005, &[100.0, 30.0], 50.0, DOWN).is_none());
        }
        assert!(c.contact() < 0.5, "the weak row shows the loss: {}", c.contact());
        // With the legs lifted the same loss is an arch at once.
        t += 5000;
        assert!(matches!(
            c.push(t, 0.005, &[100.0, 30.0], 50.0, LIFTED),
            Some(ArchChange::Start { .. })
        ));
    }

    #[test]
    fn sitting_up_is_not_an_arch() {
        let mut c = cl();
        assert!(c.push(5000, 0.005, &[20.0, 20.0], 20.0, DOWN).is_none());
    }

    #[test]
    fn an_upper_back_emptied_by_the_legs_lever_is_not_sitting_up() {
        // Lifting the legs tips the pelvis: on some people the upper back
        // empties while the whole load rises. The lumbar rows then lose
        // contact in an arch, which must still be seen at once.
        let weighted = Posture {
            legs_weight: true,
            ..DOWN
        };
        let mut c = cl();
        let mut t = 0;
        for _ in 0..200 {
            t += 5000;
            assert!(c.push(t, 0.005, &[100.0, 80.0], 5.0, weighted).is_none());
            assert!(!c.sitting_up());
        }
        // A second later the legs count as lifted, and the back arches.
        assert!(matches!(
            c.push(t + 5000, 0.005, &[40.0, 80.0], 5.0, LIFTED),
            Some(ArchChange::Start { .. })
        ));
        // The same upper back emptying with the load at rest is sitting up.
        let mut c = cl();
        c.push(5000, 0.005, &[100.0, 80.0], 5.0, DOWN);
        assert!(c.sitting_up());
        // ...until the legs' weight comes onto the pelvis.
        c.push(10_000, 0.005, &[100.0, 80.0], 5.0, weighted);
        assert!(!c.sitting_up());
    }

    #[test]
    fn a_lever_line_holds_its_edge_value_beyond_the_swing_it_learnt() {
        // A row losing load as the seesaw rises, learnt over 0.3..0.5.
        let mut fit = LeverFit::default();
        for k in 0..2000 {
            let x = 0.4 + 0.1 * (k as f32 * 0.01).sin();
            fit.add(0.005, x, 100.0 - 100.0 * x);
        }
        let at = |x: f32| fit.predict(x).unwrap();
        assert!((at(0.45) - 55.0).abs() < 0.5, "{}", at(0.45));
        // The seesaw at 1 (the upper back emptied in an arch): the line
        // would say 0; it holds what it says at the edge of its swing.
        assert!(at(1.0) > 45.0 && at(1.0) < 50.0, "{}", at(1.0));
        assert_eq!(at(1.0), at(0.7));
    }

    #[test]
    fn a_row_above_its_expected_load_arches_by_what_it_loses() {
        // With the legs lifted the first row's line learns 100; in the last
        // second it came to carry 130 (a slide, which the line follows over
        // tens of seconds). An arch takes 45 % of that, leaving 72 % of
        // what the line expects: an arch all the same.
        let mut c = cl();
        let mut t = 0;
        for k in 0..1000 {
            t += 5000;
            let x = if k < 800 { 100.0 } else { 130.0 };
            assert!(c.push(t, 0.005, &[x, 80.0], 50.0, LIFTED).is_none());
        }
        let mut started = None;
        for k in 0..40 {
            t += 5000;
            let x = 130.0 - 58.5 * (k.min(10) as f32 / 10.0);
            if let Some(ArchChange::Start { .. }) = c.push(t, 0.005, &[x, 80.0], 50.0, LIFTED) {
                started.get_or_insert(k);
            }
        }
        assert!(started.is_some_and(|k| k <= 10), "{started:?}");
        assert!(c.contact() > 0.6, "against the line: {}", c.contact());
    }

    #[test]
    fn a_wobble_on_a_row_that_slid_off_its_line_is_not_an_arch() {
        // Legs lifted for 4 s at 100, then the first row slides down to 75
        // over 3 s and stays there for 2 s: its line lags behind.
        let run = |depth: f32| {
            let mut c = cl();
            let mut t = 0;
            let mut x = 100.0;
            for k in 0..1800 {
                t += 5000;
                x = match k {
                    ..800 => 100.0,
                    800..1400 => 100.0 - 25.0 * (k - 800) as f32 / 600.0,
                    _ => 75.0,
                };
                assert!(c.push(t, 0.005, &[x, 80.0], 50.0, LIFTED).is_none(), "{k}");
            }
            // Then it loses `depth` of its load within 50 ms, for a second.
            let mut started = false;
            for k in 0..200 {
                t += 5000;
                let y = x * (1.0 - depth * (k.min(10) as f32 / 10.0));
                started |= matches!(
                    c.push(t, 0.005, &[y, 80.0], 50.0, LIFTED),
                    Some(ArchChange::Start { .. })
                );
            }
            started
        };
        assert!(!run(1.0 / 3.0), "a wobble of a third");
        assert!(run(0.5), "an arch that takes half");
    }

    #[test]
    fn a_loss_as_in_getting_up_is_an_arch_only_if_the_person_stays() {
        // The lumbar rows and the upper back empty; the legs are up.
        let leaving = Posture {
            confirm: true,
            ..LIFTED
        };
        let run = |stays_ms: u64| {
            let mut c = cl();
            let mut t = 0;
            let mut started = None;
            for k in 0..300u64 {
                t += 5000;
                let posture = Posture {
                    may_start: k * 5 < stays_ms,
                    ..leaving
                };
                if let Some(ArchChange::Start { onset_us, .. }) = c.push(t, 0.005, &[1.0, 1.0], 0.5, posture) {
                    started = Some((t, onset_us));
                }
            }
            started
        };
        // The sacrum keeps its load: an arch, 0.7 s after it began.
        assert_eq!(run(u64::MAX), Some((5000 + LEAVING_CONFIRM_US, 5000)));
        // The sacrum empties half a second in: getting up.
        assert_eq!(run(500), None);
    }

    fn loss(contact: f32, row_loss: f32, region: f32) -> LumbarLoss {
        LumbarLoss {
            contact,
            row_loss,
            region,
            region_ref: 100.0,
            best_fall: 1.0,
        }
    }

    const UPPER_STEADY: UpperBack = UpperBack {
        collapsed: false,
        loss: 0.0,
        ratio: 1.0,
    };

    #[test]
    fn a_line_never_expects_less_than_line_floor_of_the_reference() {
        assert_eq!(expected_load(100.0, None), 100.0);
        assert_eq!(expected_load(100.0, Some(60.0)), 60.0);
        assert_eq!(expected_load(100.0, Some(10.0)), LINE_FLOOR * 100.0);
    }

    #[test]
    fn a_weak_row_takes_part_again_only_above_its_hysteresis() {
        let marginal = MARGINAL_TAXEL * DEFAULT_ROW_TAXELS;
        assert!(weak_row(false, 0.9 * marginal, marginal), "below the margin");
        assert!(!weak_row(false, 1.1 * marginal, marginal), "above the margin");
        assert!(weak_row(true, 1.1 * marginal, marginal), "inside the hysteresis");
        assert!(!weak_row(true, 1.1 * MARGINAL_HYSTERESIS * marginal, marginal));
    }

    #[test]
    fn with_the_legs_lifted_a_row_is_judged_against_its_drift_and_where_it_fell_from() {
        assert_eq!(judged_load(100.0, 0.8, true), 80.0);
        assert_eq!(judged_load(100.0, 0.2, true), DRIFT_MIN * 100.0, "drift floor");
        assert_eq!(judged_load(100.0, 1.3, true), 100.0, "drift never raises it");
        assert_eq!(judged_load(100.0, 0.8, false), 100.0, "legs down: no drift");
        assert_eq!(row_contact(60.0, 100.0, 120.0, true), 0.5, "from where it fell");
        assert_eq!(row_contact(60.0, 100.0, 80.0, true), 0.6);
        assert_eq!(row_contact(60.0, 100.0, 120.0, false), 0.6, "legs down");
    }

    #[test]
    fn with_the_strongest_row_weak_contact_is_the_region_s() {
        assert_eq!(lumbar_contact(0.3, 70.0, 100.0, false), 0.3);
        assert_eq!(lumbar_contact(0.9, 70.0, 100.0, false), 0.7);
        assert_eq!(lumbar_contact(0.3, 70.0, 100.0, true), 0.7);
    }

    #[test]
    fn the_upper_back_collapses_when_it_falls_further_than_the_best_lumbar_row() {
        // cl() settles the upper back at 50.
        let upper = cl().track_upper_back(0.005, 30.0, 0.9);
        assert!(upper.collapsed);
        assert_eq!(upper.loss, 20.0);
        assert!(
            !cl().track_upper_back(0.005, 30.0, 0.5).collapsed,
            "the lumbar row fell further"
        );
        assert!(!cl().track_upper_back(0.005, 40.0, 0.9).collapsed, "a fall to 0.8");
    }

    #[test]
    fn a_fast_drop_holds_until_contact_returns_or_hold_max_passes() {
        assert_eq!(next_hold(None, 7, 0.8, 1.0), Some((7, 1.0)));
        assert_eq!(next_hold(None, 7, 0.9, 1.0), None, "not fast enough");
        let held = Some((0, 1.0));
        assert_eq!(next_hold(held, 1_000_000, 0.85, 0.85), held);
        assert_eq!(next_hold(held, 1_000_000, 0.95, 0.9), None, "contact returned");
        assert_eq!(next_hold(held, HOLD_MAX_US, 0.5, 0.5), None, "a step, not a drop");
    }

    #[test]
    fn sitting_up_starts_below_sat_up_and_ends_on_recovery_or_the_legs_weight() {
        let weighted = Posture {
            legs_weight: true,
            ..DOWN
        };
        assert_eq!(next_sat_up(None, 40.0, 100.0, DOWN), Some(100.0));
        assert_eq!(next_sat_up(None, 50.0, 100.0, DOWN), None);
        assert_eq!(next_sat_up(None, 40.0, 100.0, LIFTED), None);
        assert_eq!(next_sat_up(None, 40.0, 100.0, weighted), None);
        assert_eq!(next_sat_up(None, 0.0, 0.0, DOWN), None, "no level yet");
        assert_eq!(next_sat_up(Some(100.0), 70.0, 40.0, DOWN), Some(100.0));
        assert_eq!(next_sat_up(Some(100.0), 85.0, 40.0, DOWN), None);
        assert_eq!(next_sat_up(Some(100.0), 10.0, 40.0, weighted), None);
    }

    #[test]
    fn the_reference_follows_only_when_every_row_is_near_and_faster_at_rest() {
        assert_eq!(follow_pace(true, 0.0), (REST_TAU_S, REST_BAND));
        assert_eq!(follow_pace(false, 0.5 * EARLY_S), (TAU_EARLY_S, TRACK_BAND));
        assert_eq!(follow_pace(false, 2.0 * EARLY_S), (TAU_LATE_S, TRACK_BAND));
        assert!(near_reference(&[100.0, 90.0], &[100.0, 100.0], TRACK_BAND));
        assert!(!near_reference(&[100.0, 70.0], &[100.0, 100.0], TRACK_BAND));
        assert!(near_reference(&[100.0, 70.0], &[100.0, 100.0], REST_BAND));
        assert!(near_reference(&[100.0, 5.0], &[100.0, 0.0], TRACK_BAND), "no reference");
    }

    #[test]
    fn how_long_a_loss_must_last_depends_on_the_legs_and_on_getting_up() {
        let arch_contact = 0.6;
        let wait = |loss: LumbarLoss, upper: UpperBack, posture: Posture| {
            arch_wait(&loss, &upper, posture, arch_contact, false)
        };
        let leaving = |posture: Posture| Posture {
            confirm: true,
            ..posture
        };
        let gone = Posture {
            may_start: false,
            ..LIFTED
        };
        let sat = UpperBack {
            ratio: 0.5,
            ..UPPER_STEADY
        };
        let deep = loss(0.4, 60.0, 40.0);
        assert_eq!(wait(deep, UPPER_STEADY, LIFTED), ArchWait::For(0));
        assert_eq!(wait(deep, UPPER_STEADY, DOWN), ArchWait::For(LEGS_DOWN_CONFIRM_US));
        assert_eq!(
            wait(deep, UPPER_STEADY, leaving(LIFTED)),
            ArchWait::For(LEAVING_CONFIRM_US)
        );
        assert_eq!(
            wait(loss(arch_contact, 40.0, 60.0), UPPER_STEADY, LIFTED),
            ArchWait::NoArch
        );
        assert_eq!(wait(deep, UPPER_STEADY, gone), ArchWait::NoArch, "leaving the mat");
        assert_eq!(
            arch_wait(&deep, &UPPER_STEADY, LIFTED, arch_contact, true),
            ArchWait::NoArch,
            "sitting up"
        );
        // Legs down: the whole region must lose, and the upper back stay loaded
        // unless the sacrum is to judge.
        assert_eq!(wait(loss(0.4, 60.0, 70.0), UPPER_STEADY, DOWN), ArchWait::NoArch);
        assert_eq!(wait(deep, sat, DOWN), ArchWait::NoArch);
        assert_eq!(wait(deep, sat, leaving(DOWN)), ArchWait::For(LEAVING_CONFIRM_US));
    }

    #[test]
    fn an_upper_back_collapse_explains_a_loss_no_larger_than_its_own() {
        let collapse = UpperBack {
            collapsed: true,
            loss: 80.0,
            ratio: 0.5,
        };
        let wait = |loss: LumbarLoss| arch_wait(&loss, &collapse, LIFTED, 0.6, false);
        assert_eq!(wait(loss(0.4, 60.0, 70.0)), ArchWait::Explained);
        assert_eq!(
            wait(loss(0.4, 90.0, 70.0)),
            ArchWait::For(0),
            "a row lost more than the upper back"
        );
        assert_eq!(
            wait(loss(0.4, 60.0, 0.5 * COLLAPSE_REGION * 100.0)),
            ArchWait::For(0),
            "the region lost too much"
        );
    }

    #[test]
    fn a_pending_loss_survives_an_explained_frame_and_is_forgotten_on_recovery() {
        let wait = ArchWait::For(LEGS_DOWN_CONFIRM_US);
        let mut c = cl();
        assert_eq!(c.confirm_start(1000, 0.4, wait), None, "too soon");
        assert_eq!(c.confirm_start(2000, 0.4, ArchWait::Explained), None);
        assert_eq!(
            c.confirm_start(1000 + LEGS_DOWN_CONFIRM_US, 0.3, wait),
            Some(ArchChange::Start {
                onset_us: 1000,
                contact: 0.3
            })
        );
        let mut c = cl();
        c.confirm_start(1000, 0.4, wait);
        assert_eq!(c.confirm_start(2000, 0.7, ArchWait::NoArch), None);
        assert_eq!(
            c.confirm_start(1000 + LEGS_DOWN_CONFIRM_US, 0.3, wait),
            None,
            "the wait began again"
        );
    }
}
