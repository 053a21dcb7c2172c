//! The contact-loss detector for one mat: frames in, events out.
//!
//! A synchronous, deterministic state machine with no I/O; buffers are sized
//! at construction, so the per-frame step does not allocate. The daemon and
//! `flatback replay` run this same code.
//!
//! Stages, each in its own module:
//! - [`taxels`]: glitch rejection by shape, linearisation, faulty taxels;
//! - [`turn_on`]: taxels below their turn-on read by what their row lost;
//! - presence and settling (here): a person lying down starts a session;
//! - [`roles`]: which rows are the upper back, lumbar region and sacrum for
//!   the person settled on the mat;
//! - [`contact_loss`]: the person's reference and arches;
//! - [`rep_counter`]: reps, sets and their quality.

pub mod contact_loss;
pub mod rep_counter;
pub mod roles;
pub mod taxels;
pub mod turn_on;

pub use crate::config::DetectorConfig;
pub use contact_loss::{ArchChange, ContactLoss, Posture};
pub use rep_counter::{Loads, RepCounter};
pub use taxels::{HealthChange, TaxelConditioner};

use crate::contract::event::{ArchEvent, Event, Phase};
use crate::contract::frame::{Frame, Grid};

/// Someone is on the mat when at least this share of the healthy taxels is
/// loaded (and at least `MIN_LOADED` of them).
const LOADED_SHARE: f32 = 0.25;
const MIN_LOADED: usize = 2;
/// Seconds of presence before a session starts, and of absence before it ends.
const ON_S: f32 = 0.3;
const OFF_S: f32 = 1.0;
/// Lying down: wait at least this long, then until the load is steady.
const SETTLE_MIN_S: f32 = 1.5;
const SETTLE_STEADY: f32 = 0.04;
const SETTLE_STEADY_S: f32 = 0.75;
/// The steady band's width as a share of its top: `SETTLE_STEADY` either
/// side of its middle.
const SETTLE_BAND: f32 = 2.0 * SETTLE_STEADY;
/// The whole body's load below this share of the person's usual total means
/// they are getting up: no new arches or reps while the rows unload.
const LEAVING: f32 = 0.6;
/// An arch presses the sacrum harder; getting up takes its load away.
const SACRUM_HOLDS: f32 = 0.9;
/// A usual load (see `UsualLoad`) follows the load over this many seconds.
const TOTAL_TAU_S: f32 = 30.0;
/// A usual load follows a level within these shares of it only: beyond,
/// the load is not the person's usual one (an arch, getting up, a change of
/// posture) and must not become it.
const USUAL_BAND: std::ops::Range<f32> = 0.7..1.5;
/// Row loads pass two first-order low-passes of this time constant: mains
/// hum (50-60 Hz, a few counts on every taxel of a mat with long leads) is
/// cut to a seventh, white noise by half, for about 16 ms of delay. At a
/// slow sampler's 50 Hz they barely smooth (hum aliases into slow beats
/// there, which no filter removes).
const ROW_TAU_S: f32 = 0.008;

/// One step of a first-order low-pass of time constant `tau_s`: `state`
/// moves `dt_s / (tau_s + dt_s)` of the way towards `x`. Every smoothed
/// level of the detector is one of these.
pub(crate) fn low_pass(state: &mut f32, x: f32, dt_s: f32, tau_s: f32) {
    *state += dt_s / (tau_s + dt_s) * (x - *state);
}

/// Settling: the whole load is smoothed over this long before its band is
/// judged (`SETTLE_STEADY`).
const SETTLE_TAU_S: f32 = 0.15;

/// A person's usual level of some load (the whole body's, the trunk ends'),
/// learnt when they settle and followed slowly while it stays near.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct UsualLoad(f32);

impl UsualLoad {
    /// `x` as a share of the usual level; follows `x` when it is near it.
    fn follow(&mut self, x: f32, dt_s: f32) -> f32 {
        let ratio = x / self.0.max(1e-6);
        if USUAL_BAND.contains(&ratio) {
            low_pass(&mut self.0, x, dt_s, TOTAL_TAU_S);
        }
        ratio
    }

    /// The healthy taxels changed: this load went from `old` to `new` on the
    /// same frame.
    fn rescale(&mut self, old: f32, new: f32) {
        if old > 0.0 {
            self.0 *= new / old;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Presence {
    Empty { since_us: Option<u64> },
    Occupied { since_us: u64, absent_us: Option<u64> },
}

/// The per-mat detector.
pub struct Detector {
    config: DetectorConfig,
    grid: Grid,
    taxels: TaxelConditioner,
    contact: ContactLoss,
    reps: RepCounter,
    presence: Presence,
    /// The total load, smoothed, and its range since `steady_since_us`,
    /// for settling.
    total_fast: f32,
    steady_lo: f32,
    steady_hi: f32,
    steady_since_us: Option<u64>,
    /// The person's usual total load, once settled.
    total_reference: UsualLoad,
    /// The same for the upper back and sacrum together: an arch can empty
    /// the lumbar rows of a person who lies mostly on them, but it never
    /// takes the ends' load away, getting up does.
    ends_reference: UsualLoad,
    /// The same for the sacrum alone (see `SACRUM_HOLDS`).
    sacral_reference: UsualLoad,
    last_t_us: Option<u64>,
    /// Per-row force sums of the healthy taxels, scaled to the full row,
    /// low-passed (`ROW_TAU_S`): the first stage, and the output.
    rows_stage: Vec<f32>,
    rows: Vec<f32>,
    /// This frame's row sums before the low-pass.
    rows_raw: Vec<f32>,
    lumbar: Vec<f32>,
    /// The rows of each part of the back for the person on the mat.
    roles: roles::Roles,
    /// Taxels that dropped below their turn-on (see `turn_on`): every row
    /// reads them as having lost what the rest of the row lost, so an upper
    /// back or a sacrum near its turn-on does not step as a light person
    /// breathes or the legs swing.
    turn_on: turn_on::TurnOn,
    /// This frame's healthy taxels, row by row, and where each row ends
    /// (scratch).
    row_taxels: Vec<turn_on::Taxel>,
    row_ends: Vec<usize>,
    /// The sacrum's left share on this frame (see `side_forces`).
    sacral_side: f32,
    health: Vec<HealthChange>,
    /// `presence_level` in counts.
    presence_counts: u16,
}

/// The detector's view of the last frame (see [`Detector::probe`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    /// Someone lies on the mat.
    pub occupied: bool,
    /// The person's pressed-flat reference is taken, so `contact` means
    /// something.
    pub settled: bool,
    /// Lumbar contact as a fraction of the reference (1 = pressed flat).
    pub contact: f32,
    /// The rep signal: the legs' lever moving load from the upper back
    /// (-1) to the sacrum (+1).
    pub seesaw: f32,
    pub in_arch: bool,
}

/// The force of `row`'s taxels (row-major, the row's first index `first`)
/// on the left and on the right half of a grid `cols` wide; a middle
/// column counts for neither side.
fn side_forces(row: &[turn_on::Taxel], first: usize, cols: usize) -> (f32, f32) {
    let (mut left, mut right) = (0.0, 0.0);
    for &(i, _, force) in row {
        let twice_col = 2 * (i - first) + 1;
        if twice_col < cols {
            left += force;
        } else if twice_col > cols {
            right += force;
        }
    }
    (left, right)
}

/// The left side's share of `(left, right)`; even without force.
fn left_share((left, right): (f32, f32)) -> f32 {
    if left + right > 0.0 {
        left / (left + right)
    } else {
        0.5
    }
}

/// What the rows say on one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    upper: f32,
    sacral: f32,
    total: f32,
    /// The sacrum's load on the left half of the grid, as a share of both
    /// halves (see `Loads::side`).
    side: f32,
}

impl Summary {
    fn loads(&self) -> Loads {
        let pelvis = self.total - self.upper;
        Loads {
            seesaw: self.seesaw(),
            total: self.total,
            upper: self.upper,
            pelvis: if pelvis > 0.0 { self.sacral / pelvis } else { 0.0 },
            side: self.side,
        }
    }

    /// The legs' lever moves load between the sacrum and the upper back.
    /// Normalised by those two rows only, so that lumbar contact (arches,
    /// wobbles) does not move it.
    fn seesaw(&self) -> f32 {
        let ends = self.sacral + self.upper;
        if ends > 0.0 {
            (self.sacral - self.upper) / ends
        } else {
            0.0
        }
    }
}

impl Detector {
    /// A detector for `grid`; a setting that does not fit the grid is
    /// refused with its key.
    pub fn new(grid: Grid, config: DetectorConfig) -> Result<Self, crate::config::Invalid> {
        config.validate(grid.rows)?;
        Ok(Detector::build(grid, config))
    }

    /// Forgets the person (reference, set, counters) and starts afresh with
    /// the same settings: a `new_set` or `rereference` command.
    pub fn restart(&mut self) {
        *self = Detector::build(self.grid, self.config.clone());
    }

    fn build(grid: Grid, config: DetectorConfig) -> Self {
        let taxels = TaxelConditioner::new(grid.len(), grid.cols, config.full_scale(), config.stuck_s);
        let mut contact = ContactLoss::new(&config);
        contact.set_row_taxels(grid.cols);
        Detector {
            contact,
            reps: RepCounter::new(&config),
            taxels,
            presence: Presence::Empty { since_us: None },
            total_fast: 0.0,
            steady_lo: 0.0,
            steady_hi: 0.0,
            steady_since_us: None,
            total_reference: UsualLoad::default(),
            ends_reference: UsualLoad::default(),
            sacral_reference: UsualLoad::default(),
            last_t_us: None,
            rows_stage: vec![0.0; grid.rows],
            rows: vec![0.0; grid.rows],
            rows_raw: vec![0.0; grid.rows],
            lumbar: vec![0.0; config.lumbar_rows.len()],
            roles: roles::Roles::new(&config),
            turn_on: turn_on::TurnOn::new(grid.rows * grid.cols, config.full_scale()),
            row_taxels: Vec::with_capacity(grid.len()),
            row_ends: Vec::with_capacity(grid.rows),
            sacral_side: 0.5,
            health: Vec::with_capacity(grid.len()),
            presence_counts: (config.presence_level * config.full_scale() as f64) as u16,
            grid,
            config,
        }
    }

    pub fn grid(&self) -> Grid {
        self.grid
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Whether someone lies on the mat now.
    pub fn occupied(&self) -> bool {
        matches!(self.presence, Presence::Occupied { .. })
    }

    /// What the detector sees after the last frame, for plots and live views
    /// (read-only: calling it changes nothing).
    pub fn probe(&self) -> Probe {
        Probe {
            occupied: self.occupied(),
            settled: self.contact.is_settled(),
            contact: self.contact.contact(),
            seesaw: self.summary_of(&self.rows).seesaw(),
            in_arch: self.contact.in_arch(),
        }
    }

    /// How long the legs have been lowered at the last frame, while a
    /// descent is under way (`None`: not now): the rep counter's own
    /// descent, counted from its start, for the cue's tempo and live views.
    pub fn descent_ms(&self) -> Option<u64> {
        let t_us = self.last_t_us?;
        if !(self.occupied() && self.contact.is_settled()) {
            return None;
        }
        self.reps
            .descent_since_us()
            .map(|since| t_us.saturating_sub(since) / 1000)
    }

    /// Feeds one frame; events it causes are appended to `out`.
    pub fn push(&mut self, frame: &Frame, out: &mut Vec<Event>) {
        let t_us = frame.t_us;
        let t_ms = frame.t_ms();
        let dt_s = self.last_t_us.map_or(0.0, |t| t_us.saturating_sub(t) as f32 * 1e-6);
        self.last_t_us = Some(t_us);

        self.health.clear();
        let occupied = self.occupied();
        self.taxels.push(t_us, &frame.counts, occupied, &mut self.health);
        if !self.health.is_empty() {
            self.on_health_change(t_ms, out);
        }

        self.update_presence(t_us, out);
        let summary = self.summarise(dt_s);
        if !self.occupied() {
            self.turn_on.reset();
            return;
        }

        if !self.contact.is_settled() {
            self.settle(t_us, dt_s, summary);
            return;
        }

        let s = summary.seesaw();
        let leaving = self.total_reference.follow(summary.total, dt_s) < LEAVING;
        let ends_ratio = self.ends_reference.follow(summary.upper + summary.sacral, dt_s);
        let sacral_ratio = self.sacral_reference.follow(summary.sacral, dt_s);
        let posture = Posture {
            // Getting up takes the whole body off the mat, the sacrum within
            // a second. A light person's deep arch can switch off all but
            // the sacrum (the lumbar rows and an upper back near its
            // turn-on); the legs are up then and the sacrum keeps its load.
            may_start: !leaving || (self.reps.legs_up() && sacral_ratio >= SACRUM_HOLDS),
            confirm: leaving,
            legs_lifted: self.reps.legs_lifted(t_us),
            legs_weight: self.reps.legs_weight(summary.total),
            seesaw: s,
        };
        match self.contact.push(t_us, dt_s, &self.lumbar, summary.upper, posture) {
            Some(ArchChange::Start { onset_us, contact }) => {
                out.push(Event::Arch(ArchEvent {
                    t_ms,
                    phase: Phase::Start,
                    onset_ms: Some(onset_us / 1000),
                    contact: Some(round2(contact)),
                    duration_ms: None,
                    min_contact: None,
                }));
                self.reps.arch_started(t_us, s);
            }
            Some(ArchChange::End {
                duration_us,
                min_contact,
            }) => out.push(arch_end(t_ms, duration_us, min_contact)),
            None => {}
        }
        // The reps follow the legs until the ends of the trunk leave too:
        // the whole load alone would stop them in a deep arch of a person
        // lying mostly on the lumbar rows.
        let ends_leaving = ends_ratio < LEAVING;
        if !ends_leaving && !self.contact.sitting_up() {
            self.reps.push(t_us, dt_s, summary.loads(), self.contact.in_arch(), out);
        }
    }

    /// The stream ended: close whatever is open, as if the person got up.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if let (Presence::Occupied { .. }, Some(t_us)) = (self.presence, self.last_t_us) {
            self.end_session(t_us / 1000, out);
            self.presence = Presence::Empty { since_us: Some(t_us) };
        }
    }

    fn update_presence(&mut self, t_us: u64, out: &mut Vec<Event>) {
        let level = self.presence_counts;
        let mut healthy = 0;
        let mut loaded = 0;
        for (i, &c) in self.taxels.counts.iter().enumerate() {
            if self.taxels.is_healthy(i) {
                healthy += 1;
                if c >= level {
                    loaded += 1;
                }
            }
        }
        let present = loaded >= MIN_LOADED && loaded as f32 >= LOADED_SHARE * healthy as f32;
        self.presence = match self.presence {
            Presence::Empty { since_us } => match (present, since_us) {
                (false, _) => Presence::Empty { since_us: None },
                (true, None) => Presence::Empty { since_us: Some(t_us) },
                (true, Some(s)) if t_us.saturating_sub(s) as f32 >= ON_S * 1e6 => {
                    out.push(Event::Session {
                        t_ms: t_us / 1000,
                        phase: Phase::Start,
                    });
                    self.steady_since_us = None;
                    Presence::Occupied {
                        since_us: t_us,
                        absent_us: None,
                    }
                }
                (true, since) => Presence::Empty { since_us: since },
            },
            Presence::Occupied { since_us, absent_us } => match (present, absent_us) {
                (true, _) => Presence::Occupied {
                    since_us,
                    absent_us: None,
                },
                (false, None) => Presence::Occupied {
                    since_us,
                    absent_us: Some(t_us),
                },
                (false, Some(a)) if t_us.saturating_sub(a) as f32 >= OFF_S * 1e6 => {
                    self.end_session(t_us / 1000, out);
                    Presence::Empty { since_us: None }
                }
                (false, a) => Presence::Occupied { since_us, absent_us: a },
            },
        };
    }

    fn end_session(&mut self, t_ms: u64, out: &mut Vec<Event>) {
        if let Some(ArchChange::End {
            duration_us,
            min_contact,
        }) = self.contact.reset(t_ms * 1000)
        {
            out.push(arch_end(t_ms, duration_us, min_contact));
        }
        self.reps.end_session(t_ms, out);
        self.roles.reset(&self.config);
        self.take_lumbar();
        out.push(Event::Session {
            t_ms,
            phase: Phase::End,
        });
    }

    /// Waits for the swings of lying down to die out, then takes the
    /// person's reference.
    fn settle(&mut self, t_us: u64, dt_s: f32, summary: Summary) {
        let Presence::Occupied { since_us, .. } = self.presence else {
            return;
        };
        let total = summary.total;
        match self.steady_since_us {
            None => self.total_fast = total,
            Some(_) => low_pass(&mut self.total_fast, total, dt_s, SETTLE_TAU_S),
        }
        // Steady: the smoothed total has stayed within a narrow band (relative
        // to its level) for a while; any excursion restarts the band here.
        let x = self.total_fast;
        let (lo, hi) = (self.steady_lo.min(x), self.steady_hi.max(x));
        match self.steady_since_us {
            Some(_) if hi - lo <= SETTLE_BAND * hi => (self.steady_lo, self.steady_hi) = (lo, hi),
            _ => {
                self.steady_since_us = Some(t_us);
                (self.steady_lo, self.steady_hi) = (x, x);
            }
        }
        let steady_s = self
            .steady_since_us
            .map_or(0.0, |s| t_us.saturating_sub(s) as f32 * 1e-6);
        let lying_s = t_us.saturating_sub(since_us) as f32 * 1e-6;
        if lying_s >= SETTLE_MIN_S && steady_s >= SETTLE_STEADY_S {
            // Where the person lies decides which rows are which.
            self.roles.fit(&self.config, &self.rows);
            self.take_lumbar();
            let summary = self.summary_of(&self.rows);
            self.contact.settle(&self.lumbar, summary.upper);
            self.total_reference = UsualLoad(total);
            self.ends_reference = UsualLoad(summary.upper + summary.sacral);
            self.sacral_reference = UsualLoad(summary.sacral);
            tracing::debug!(t_ms = t_us / 1000, lumbar = ?self.lumbar, total, seesaw = summary.seesaw(), "settled");
            self.reps.settle(t_us, summary.loads());
        }
    }

    /// Sums the force of the taxels that `include` admits, per row, scaled
    /// up for the left-out ones.
    fn row_sums(&self, include: impl Fn(usize) -> bool, rows: &mut [f32]) {
        let cols = self.grid.cols;
        for (r, row) in rows.iter_mut().enumerate() {
            let (mut sum, mut n) = (0.0, 0);
            for i in r * cols..(r + 1) * cols {
                if include(i) {
                    sum += self.taxels.linear(self.taxels.counts[i]);
                    n += 1;
                }
            }
            *row = if n > 0 { sum * cols as f32 / n as f32 } else { 0.0 };
        }
    }

    fn summary_of(&self, rows: &[f32]) -> Summary {
        let pick = |list: &[usize]| list.iter().map(|&r| rows[r]).sum::<f32>();
        Summary {
            upper: pick(&self.roles.upper),
            sacral: pick(&self.roles.sacral),
            total: rows.iter().sum(),
            side: self.sacral_side,
        }
    }

    /// Row sums of the healthy taxels, low-passed, and what the rows say.
    fn summarise(&mut self, dt_s: f32) -> Summary {
        let mut raw = std::mem::take(&mut self.rows_raw);
        // As `row_sums`, with the taxels below their turn-on estimated; the
        // lumbar rows are one group. Each taxel is read once into `row_taxels`.
        let cols = self.grid.cols;
        let (mut taxels, mut ends) = (std::mem::take(&mut self.row_taxels), std::mem::take(&mut self.row_ends));
        taxels.clear();
        ends.clear();
        for r in 0..self.grid.rows {
            let healthy = (r * cols..(r + 1) * cols).filter(|&i| self.taxels.is_healthy(i));
            taxels.extend(healthy.map(|i| (i, self.taxels.counts[i], self.taxels.linear(self.taxels.counts[i]))));
            ends.push(taxels.len());
        }
        let row_of = |r: usize| &taxels[if r == 0 { 0 } else { ends[r - 1] }..ends[r]];
        let sides = self
            .roles
            .sacral
            .iter()
            .map(|&r| side_forces(row_of(r), r * cols, cols));
        self.sacral_side = left_share(sides.fold((0.0, 0.0), |(l, r), (a, b)| (l + a, r + b)));
        let lumbar_on: f32 = self
            .roles
            .lumbar
            .iter()
            .map(|&r| self.turn_on.on_force(row_of(r)))
            .sum();
        for (r, row) in raw.iter_mut().enumerate() {
            let healthy = row_of(r);
            let group = self.roles.lumbar.contains(&r).then_some(lumbar_on);
            *row = if healthy.is_empty() {
                0.0
            } else {
                self.turn_on.row(healthy, group) * cols as f32 / healthy.len() as f32
            };
        }
        (self.row_taxels, self.row_ends) = (taxels, ends);
        for ((&x, stage), out) in raw.iter().zip(&mut self.rows_stage).zip(&mut self.rows) {
            low_pass(stage, x, dt_s, ROW_TAU_S);
            low_pass(out, *stage, dt_s, ROW_TAU_S);
        }
        self.rows_raw = raw;
        self.take_lumbar();
        self.summary_of(&self.rows)
    }

    /// The lumbar rows' loads from the low-passed rows, by the person's
    /// roles (no allocation: never more lumbar rows than configured).
    fn take_lumbar(&mut self) {
        self.lumbar.clear();
        self.lumbar.extend(self.roles.lumbar.iter().map(|&r| self.rows[r]));
    }

    /// A taxel was left out or taken back: report it, and rescale the
    /// person's references by how the change moved each row on this very
    /// frame, so the change itself is never read as contact loss.
    fn on_health_change(&mut self, t_ms: u64, out: &mut Vec<Event>) {
        for h in &self.health {
            let (row, col) = self.grid.position(h.index);
            out.push(Event::Health {
                t_ms,
                row,
                col,
                fault: h.fault,
                ok: h.ok,
            });
        }
        if !self.contact.is_settled() {
            return;
        }
        // Rare (a fault found or cleared): allocating here is fine.
        let was_healthy = |i: usize| match self.health.iter().find(|h| h.index == i) {
            Some(h) => !h.ok,
            None => self.taxels.is_healthy(i),
        };
        let mut old = vec![0.0; self.grid.rows];
        self.row_sums(was_healthy, &mut old);
        let mut new = vec![0.0; self.grid.rows];
        self.row_sums(|i| self.taxels.is_healthy(i), &mut new);
        let ratio = |r: usize| if old[r] > 0.0 { new[r] / old[r] } else { 1.0 };
        // The low-passed rows follow the new taxels from their current level.
        for (r, (stage, out)) in self.rows_stage.iter_mut().zip(&mut self.rows).enumerate() {
            *stage *= ratio(r);
            *out *= ratio(r);
        }
        let lumbar: Vec<f32> = self.roles.lumbar.iter().map(|&r| ratio(r)).collect();
        let (o, n) = (self.summary_of(&old), self.summary_of(&new));
        let upper = if o.upper > 0.0 { n.upper / o.upper } else { 1.0 };
        self.contact.rescale(&lumbar, upper);
        let total = if o.total > 0.0 { n.total / o.total } else { 1.0 };
        self.total_reference.rescale(o.total, n.total);
        self.ends_reference.rescale(o.upper + o.sacral, n.upper + n.sacral);
        self.sacral_reference.rescale(o.sacral, n.sacral);
        let sacral = if o.sacral > 0.0 { n.sacral / o.sacral } else { 1.0 };
        self.reps.shift(n.seesaw() - o.seesaw(), total, upper, sacral);
    }
}

fn arch_end(t_ms: u64, duration_us: u64, min_contact: f32) -> Event {
    Event::Arch(ArchEvent {
        t_ms,
        phase: Phase::End,
        onset_ms: None,
        contact: None,
        duration_ms: Some(duration_us / 1000),
        min_contact: Some(round2(min_contact)),
    })
}

fn round2(x: f32) -> f64 {
    (x as f64 * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::contract::frame::FrameSource;
    use crate::sim::{Kind, Scenario, Simulator};

    /// Descents (start, end, ms) `Detector::descent_ms` shows over a
    /// simulated recording, with its truth.
    fn descents(kind: Kind, seed: u64) -> (Vec<(u64, u64)>, crate::sim::Truth) {
        let mut sim = Simulator::new(&Scenario::new(kind, seed));
        let truth = sim.truth().clone();
        let mut det = Detector::new(sim.grid(), Config::default().detector).unwrap();
        let mut frame = Frame::zeroed(sim.grid());
        let mut events = Vec::new();
        let mut found = Vec::new();
        let mut open: Option<u64> = None;
        while sim.next_into(&mut frame).unwrap() {
            det.push(&frame, &mut events);
            match (open, det.descent_ms()) {
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

    #[test]
    fn the_side_share_is_the_left_half_s_force_and_a_middle_column_counts_for_neither() {
        let taxel = |i: usize, force: f32| (i, 0u16, force);
        // Four columns: 0 and 1 left, 2 and 3 right; row 3 starts at 12.
        let four = [taxel(12, 1.0), taxel(13, 2.0), taxel(14, 1.0), taxel(15, 0.0)];
        assert_eq!(side_forces(&four, 12, 4), (3.0, 1.0));
        assert!((left_share(side_forces(&four, 12, 4)) - 0.75).abs() < 1e-6);
        // A taxel left out: the rest keep their columns.
        assert_eq!(side_forces(&[taxel(13, 2.0), taxel(14, 1.0)], 12, 4), (2.0, 1.0));
        // Three columns: the middle one is neither side.
        let three = [taxel(9, 1.0), taxel(10, 5.0), taxel(11, 3.0)];
        assert_eq!(side_forces(&three, 9, 3), (1.0, 3.0));
        // No force at all: even.
        assert_eq!(left_share((0.0, 0.0)), 0.5);
    }

    /// The live descent: every true descent of clean and rushed sets is
    /// shown, starting within half a second of the truth's start, and
    /// nothing else is.
    #[test]
    fn the_live_descent_finds_the_descents_of_simulated_sets() {
        let (mut hits, mut reps, mut extra) = (0, 0, 0);
        let mut misses = Vec::new();
        for (kind, seed) in [
            (Kind::CleanSet, 1),
            (Kind::CleanSet, 2),
            (Kind::Rushed, 3),
            (Kind::ThreeSets, 4),
            (Kind::Fatigue, 5),
        ] {
            let (found, truth) = descents(kind, seed);
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
