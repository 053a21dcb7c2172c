//! The picture of a session as SVG (a pure function of [`PlotData`]).
//!
//! From the top: the title (mat, date) and a legend; the sets (brackets over
//! their reps); the lumbar contact against the reference with the arch
//! threshold; the legs (the rep signal, legs up at the top) with one mark per
//! rep (`class="rep perfect"` or `class="rep"`); the grid's heatmap (one
//! strip per taxel, row-major); the time axis; a table of every rep's
//! descent, and why it was not perfect. Arches are shaded across the lanes;
//! while nobody is on the mat (before, between and after the sessions, and
//! while getting up) the lanes are greyed and show no trace. Series are drawn
//! from one min/max column per pixel, so the file's size depends on the
//! width and the events, not on the frame rate or the length.

use std::fmt::Write;

use crate::contract::event::{Event, Phase, RepEvent};
use crate::contract::frame::Grid;

use super::spans::{self, SetReps};
use super::trace::Bucket;

/// Everything the picture shows.
#[derive(Debug, Clone)]
pub struct PlotData {
    /// The mat's id and the session's date (`YYYY-MM-DD`), for the title.
    pub mat: String,
    pub date: String,
    /// Where the frames came from (the recording's file name).
    pub source: String,
    pub grid: Grid,
    /// First and last frame, ms on the recording clock.
    pub t0_ms: u64,
    pub t1_ms: u64,
    /// One per pixel column of the plot ([`PLOT_W`] of them).
    pub columns: Vec<Bucket>,
    pub events: Vec<Event>,
    /// Share of the reference below which an arch starts.
    pub arch_threshold: f64,
    /// The ADC's top count: the heatmap's scale is told in counts.
    pub full_scale: u16,
    /// Grid rows, by what lies on them (for the heatmap's labels).
    pub upper_rows: Vec<usize>,
    pub lumbar_rows: Vec<usize>,
    pub sacral_rows: Vec<usize>,
}

/// The picture's size and the plot area inside it.
pub const WIDTH: u32 = 1200;
pub const X0: f64 = 80.0;
pub const PLOT_W: usize = 1090;

const TITLE_Y: f64 = 24.0;
const LEGEND_Y: f64 = 48.0;
const SETS_Y: f64 = 78.0;
pub const CONTACT_Y: f64 = 88.0;
pub const CONTACT_H: f64 = 180.0;
/// The contact lane shows 0 .. CONTACT_MAX of the reference.
const CONTACT_MAX: f64 = 1.25;
/// The legs' lane (the rep signal).
pub const REPS_Y: f64 = 286.0;
pub const REPS_H: f64 = 150.0;
/// Where a set's typical top and bottom of a rep sit in the legs' lane
/// (shares of its height from the top): most of the lane, a margin left for
/// the legs going a little higher or lower than usual.
const LEGS_UP_AT: f64 = 0.12;
const LEGS_DOWN_AT: f64 = 0.88;
const HEAT_Y: f64 = 466.0;
/// Pixels per taxel strip, and the heatmap's height at most.
const HEAT_STRIP_MAX: f64 = 8.0;
const HEAT_H_MAX: f64 = 160.0;
/// A run of empty columns longer than this breaks a series (a gap in the
/// recording); shorter ones are just columns no frame fell in.
const GAP_MS: f64 = 250.0;
/// Getting up takes a few seconds before the mat is empty, and the session
/// ends a second after that: at most this much of a session's end is looked
/// at for it.
const GETTING_UP_MAX_MS: u64 = 6_000;
/// The legs hover a second or two before a set's first rep and after its
/// last: at most this much is drawn with the set.
const HOVER_MAX_MS: u64 = 3_000;
/// The rep table: a cell per rep, this wide, so many to a line.
const NOTE_W: f64 = 72.0;
const NOTES_PER_LINE: usize = (PLOT_W as f64 / NOTE_W) as usize;
const NOTE_LINE_H: f64 = 15.0;
const FLAW_LINE_H: f64 = 12.0;

const CONTACT_COLOR: &str = "#1f77b4";
const SEESAW_COLOR: &str = "#7b3294";
const RAW_SEESAW_COLOR: &str = "#999999";
const PERFECT_COLOR: &str = "#1a9850";
const FLAWED_COLOR: &str = "#d73027";
const ARCH_FILL: &str = "#d73027";
const ARCH_OPACITY: f64 = 0.18;
const OFF_FILL: &str = "#7f7f7f";
const OFF_OPACITY: f64 = 0.12;
/// Heatmap levels, from nothing to full load (YlGnBu).
const HEAT: [&str; 9] = [
    "#ffffd9", "#edf8b1", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#253494", "#081d58",
];

impl PlotData {
    fn span_ms(&self) -> f64 {
        (self.t1_ms.saturating_sub(self.t0_ms)).max(1) as f64
    }

    fn x(&self, t_ms: u64) -> f64 {
        let t = t_ms.clamp(self.t0_ms, self.t1_ms);
        X0 + (t - self.t0_ms) as f64 / self.span_ms() * PLOT_W as f64
    }

    fn column_x(&self, i: usize) -> f64 {
        X0 + i as f64 + 0.5
    }

    /// The column `t_ms` falls in.
    fn column_of(&self, t_ms: u64) -> usize {
        ((self.x(t_ms) - X0) as usize).min(PLOT_W - 1)
    }

    /// The time at the middle of column `i`.
    fn column_mid_ms(&self, i: usize) -> u64 {
        self.t0_ms + ((i as f64 + 0.5) / PLOT_W as f64 * self.span_ms()) as u64
    }

    /// The time at the end of column `i`.
    fn column_end_ms(&self, i: usize) -> u64 {
        self.t0_ms + ((i + 1) as f64 / PLOT_W as f64 * self.span_ms()) as u64
    }

    fn strip_h(&self) -> f64 {
        (HEAT_H_MAX / self.grid.len().max(1) as f64).clamp(1.0, HEAT_STRIP_MAX)
    }

    fn heat_h(&self) -> f64 {
        self.strip_h() * self.grid.len() as f64
    }

    fn axis_y(&self) -> f64 {
        HEAT_Y + self.heat_h() + 6.0
    }

    fn table_y(&self) -> f64 {
        self.axis_y() + 52.0
    }

    /// The picture's height.
    pub fn height(&self) -> u32 {
        let sets = spans::sets(&self.events);
        let multi = several_sessions(&self.events);
        let table: f64 = sets.iter().map(|set| notes_h(set, multi)).sum();
        (self.table_y() + 18.0 + table + 12.0).ceil() as u32
    }

    /// When someone lay on the mat: the sessions, each without its getting
    /// up (the lumbar region unloads first as the person sits up, then
    /// everything goes to zero, and the session ends a second later: drawn,
    /// that is a deep arch that never was).
    fn on_mat(&self) -> Vec<(u64, u64)> {
        spans::sessions(&self.events, self.t0_ms, self.t1_ms)
            .into_iter()
            .map(|(from, to)| (from, self.getting_up(from, to)))
            .filter(|(from, to)| to > from)
            .collect()
    }

    /// Where getting up began in the session `from .. to`: after the last
    /// column before its end whose lowest contact held above the arch
    /// threshold, no earlier than the session's last arch event (an arch
    /// still open when the person got up stays drawn) nor than
    /// [`GETTING_UP_MAX_MS`] before the end. `to` when contact never held
    /// there (nothing to tell getting up from).
    fn getting_up(&self, from: u64, to: u64) -> u64 {
        let last_arch = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Arch(a) if (from..=to).contains(&a.t_ms) => Some(a.onset_ms.unwrap_or(a.t_ms).min(a.t_ms)),
                _ => None,
            })
            .max()
            .unwrap_or(from);
        let not_before = last_arch.max(from).max(to.saturating_sub(GETTING_UP_MAX_MS));
        let (first, last) = (self.column_of(not_before), self.column_of(to));
        (first..=last)
            .rev()
            .find(|&i| {
                self.columns
                    .get(i)
                    .and_then(|c| c.contact)
                    .is_some_and(|(lo, _)| lo as f64 >= self.arch_threshold)
            })
            .map_or(to, |i| self.column_end_ms(i).min(to))
    }
}

fn reps(events: &[Event]) -> impl Iterator<Item = &RepEvent> {
    events.iter().filter_map(|e| match e {
        Event::Rep(r) => Some(r),
        _ => None,
    })
}

fn several_sessions(events: &[Event]) -> bool {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Session {
                    phase: Phase::Start,
                    ..
                }
            )
        })
        .count()
        > 1
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// About how wide `text` is at `size` px (DejaVu Sans averages 0.6 em).
fn text_w(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

/// `1:05`, `12:30`, `1:02:03`.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Tick spacing giving about `want` ticks over `span_ms`.
fn tick_step_ms(span_ms: f64, want: f64) -> u64 {
    const STEPS: [u64; 13] = [
        1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000,
    ];
    STEPS
        .into_iter()
        .find(|&s| span_ms / s as f64 <= want)
        .unwrap_or(3_600_000)
}

/// A series as filled bands between each column's min and max, split where
/// the person's data stops (nobody on the mat, no reference), outside the
/// columns `shown`, or where frames are missing for longer than [`GAP_MS`].
fn band(
    session: &PlotData,
    shown: impl Fn(usize) -> bool,
    pick: impl Fn(&Bucket) -> Option<(f32, f32)>,
    y: impl Fn(f64) -> f64,
) -> String {
    let ms_per_col = session.span_ms() / PLOT_W as f64;
    let mut runs: Vec<Vec<(f64, f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64, f64)> = Vec::new();
    let mut empty_run = 0usize;
    for (i, c) in session.columns.iter().enumerate() {
        if c.frames == 0 && shown(i) {
            empty_run += 1;
            if empty_run as f64 * ms_per_col > GAP_MS && !current.is_empty() {
                runs.push(std::mem::take(&mut current));
            }
            continue;
        }
        empty_run = 0;
        match pick(c).filter(|_| shown(i)) {
            Some((lo, hi)) => current.push((session.column_x(i), y(lo as f64), y(hi as f64))),
            None => {
                if !current.is_empty() {
                    runs.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    let mut d = String::new();
    for run in runs {
        // Along the tops, back along the bottoms: a band at least a pixel
        // thick, so a steady signal still shows as a line. (Which of a
        // column's two ends is higher depends on the lane's direction.)
        for (k, (x, a, b)) in run.iter().enumerate() {
            let _ = write!(d, "{}{:.1} {:.1}", if k == 0 { "M" } else { "L" }, x, a.min(*b) - 0.5);
        }
        for (x, a, b) in run.iter().rev() {
            let _ = write!(d, "L{:.1} {:.1}", x, a.max(*b) + 0.5);
        }
        d.push('Z');
    }
    d
}

/// The rep signal (the seesaw) from `from_ms` to `to_ms` and how it is
/// drawn: `up` at [`LEGS_UP_AT`] of the lane, `down` at [`LEGS_DOWN_AT`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct LegsScale {
    from_ms: u64,
    to_ms: u64,
    /// The signal with the legs up (at a rep's top) and down (at its bottom).
    up: f64,
    down: f64,
    /// No reps to say where up and down are: the signal's range instead,
    /// drawn grey.
    raw: bool,
}

impl LegsScale {
    /// The y of signal `v`, kept inside the lane (the legs resting on the
    /// floor, or getting up, go far beyond a rep's range).
    fn y(&self, v: f64) -> f64 {
        let share = LEGS_UP_AT + (v - self.up) / (self.down - self.up) * (LEGS_DOWN_AT - LEGS_UP_AT);
        REPS_Y + share.clamp(0.0, 1.0) * REPS_H
    }
}

/// How each part of the legs' lane is drawn. A set's reps say where its legs
/// were up and down: the median, over its reps, of the signal's extreme near
/// each rep's top and near its end (so a glitch, an arch or a person
/// sliding along the mat moves it little), scaled per set (people and
/// variations differ, bent knees give half the swing). The load moves
/// toward the upper back as the legs rise, so the signal is lowest at the
/// top. A session with no reps shows its signal's 2nd to 98th percentile,
/// grey. Between sets the legs rest on the floor, which moves the signal
/// beyond both ends of a rep: not drawn.
fn legs_scales(s: &PlotData, on_mat: &[(u64, u64)]) -> Vec<LegsScale> {
    let mut out = Vec::new();
    let sets = spans::sets(&s.events);
    for set in sets.iter().filter(|set| !set.reps.is_empty()) {
        let (from_ms, to_ms) = set.span();
        let extreme = |a: u64, b: u64, low: bool| -> Option<f64> {
            let cols = s.column_of(a)..=s.column_of(b);
            let values = s.columns[cols]
                .iter()
                .filter_map(|c| c.seesaw)
                .map(|(lo, hi)| f64::from(if low { lo } else { hi }));
            if low {
                values.reduce(f64::min)
            } else {
                values.reduce(f64::max)
            }
        };
        let tops: Vec<f64> = set
            .reps
            .iter()
            .filter_map(|r| {
                let top = spans::rep_top(r);
                extreme(top.saturating_sub(700), top + 300, true)
            })
            .collect();
        let bottoms: Vec<f64> = set
            .reps
            .iter()
            .filter_map(|r| extreme(r.t_ms.saturating_sub(300), r.t_ms + 700, false))
            .collect();
        let scale = match (median(tops), median(bottoms)) {
            (Some(up), Some(down)) if down - up > 0.01 => {
                let (from_ms, to_ms) = hovering(s, from_ms, to_ms, up, down);
                Some(LegsScale {
                    from_ms,
                    to_ms,
                    up,
                    down,
                    raw: false,
                })
            }
            _ => raw_scale(s, from_ms, to_ms),
        };
        out.extend(scale);
    }
    for &(from_ms, to_ms) in on_mat {
        let has_reps = sets
            .iter()
            .any(|set| !set.reps.is_empty() && set.span().1 >= from_ms && set.span().0 <= to_ms);
        if !has_reps {
            out.extend(raw_scale(s, from_ms, to_ms).map(|r| LegsScale { raw: true, ..r }));
        }
    }
    out
}

/// A set's reps, `from_ms .. to_ms`, widened by up to [`HOVER_MAX_MS`] each
/// side while the signal stays steady within its reps' range: the first
/// ascent (whose start is only estimated) and the legs hovering before the
/// first rep and after the last, not the legs lifting off the floor or
/// dropping to it (the floor is far beyond the legs' top, and would be drawn
/// as legs up). Those take a fraction of a second: a column at either end
/// that swings over much of the range is left out.
fn hovering(s: &PlotData, from_ms: u64, to_ms: u64, up: f64, down: f64) -> (u64, u64) {
    let range = down - up;
    let seesaw = |i: usize| s.columns[i].seesaw.map(|(lo, hi)| (lo as f64, hi as f64));
    let steady = |i: usize| seesaw(i).is_none_or(|(lo, hi)| hi - lo <= 0.35 * range);
    let within =
        |i: usize| steady(i) && seesaw(i).is_some_and(|(lo, hi)| lo >= up - 0.3 * range && hi <= down + 0.3 * range);
    let (mut first, mut last) = (s.column_of(from_ms), s.column_of(to_ms));
    let earliest = s.column_of(from_ms.saturating_sub(HOVER_MAX_MS));
    let latest = s.column_of(to_ms + HOVER_MAX_MS);
    while first > earliest && within(first - 1) {
        first -= 1;
    }
    while last < latest && within(last + 1) {
        last += 1;
    }
    let (first_at_most, last_at_least) = (
        s.column_of(from_ms + 500).min(last),
        s.column_of(to_ms.saturating_sub(500)).max(first),
    );
    while first < first_at_most && !steady(first) {
        first += 1;
    }
    while last > last_at_least && !steady(last) {
        last -= 1;
    }
    (s.column_mid_ms(first), s.column_mid_ms(last))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// The signal's 2nd percentile of the columns' lows to the 98th of their
/// highs between `from_ms` and `to_ms`, the low end up.
fn raw_scale(s: &PlotData, from_ms: u64, to_ms: u64) -> Option<LegsScale> {
    let cols = &s.columns[s.column_of(from_ms)..=s.column_of(to_ms)];
    let mut lows: Vec<f32> = cols.iter().filter_map(|c| c.seesaw.map(|v| v.0)).collect();
    let mut highs: Vec<f32> = cols.iter().filter_map(|c| c.seesaw.map(|v| v.1)).collect();
    if lows.is_empty() {
        return None;
    }
    lows.sort_by(f32::total_cmp);
    highs.sort_by(f32::total_cmp);
    let lo = lows[lows.len() / 50] as f64;
    let hi = highs[highs.len() - 1 - highs.len() / 50] as f64;
    let pad = ((hi - lo) * 0.1).max(0.05);
    Some(LegsScale {
        from_ms,
        to_ms,
        up: lo - pad,
        down: hi + pad,
        raw: true,
    })
}

/// The heatmap's top: the highest column mean of any taxel the detector
/// never found faulty (a taxel stuck at full scale would wash the others
/// out), as a share of full scale.
fn heat_top(s: &PlotData) -> f32 {
    let faulty = faulty_taxels(s);
    let scaled: Vec<usize> = (0..s.grid.len()).filter(|i| !faulty.contains(i)).collect();
    let scaled = if scaled.is_empty() {
        (0..s.grid.len()).collect()
    } else {
        scaled
    };
    s.columns
        .iter()
        .flat_map(|c| scaled.iter().map(move |&i| c.load(i)))
        .fold(0.0f32, f32::max)
        .max(1e-6)
}

fn faulty_taxels(s: &PlotData) -> Vec<usize> {
    s.events
        .iter()
        .filter_map(|e| match e {
            Event::Health {
                row, col, ok: false, ..
            } => Some(s.grid.index(*row, *col)),
            _ => None,
        })
        .collect()
}

/// The whole picture.
pub fn build(s: &PlotData) -> String {
    let w = WIDTH;
    let h = s.height();
    let right = X0 + PLOT_W as f64;
    let mut o = String::with_capacity(64 * 1024);
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{w}" height="{h}" fill="white"/>"#);

    let all_reps: Vec<&RepEvent> = reps(&s.events).collect();
    let perfect = all_reps.iter().filter(|r| r.perfect).count();
    let arches = spans::arch_spans(&s.events, s.t0_ms, s.t1_ms);
    let sets = spans::sets(&s.events);
    let on_mat = s.on_mat();
    let on_mat_cols: Vec<bool> = (0..PLOT_W)
        .map(|i| {
            let t = s.column_mid_ms(i);
            on_mat.iter().any(|&(a, b)| (a..=b).contains(&t))
        })
        .collect();

    // Title (mat and date, the file in grey) and summary.
    let title = [s.mat.as_str(), s.date.as_str()]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" · ");
    let _ = writeln!(
        o,
        r#"<text class="title" x="{X0}" y="{TITLE_Y}" font-size="16" font-weight="bold">{}</text>"#,
        esc(&title)
    );
    let _ = writeln!(
        o,
        r##"<text x="{:.1}" y="{TITLE_Y}" font-size="11" fill="#666666">{}</text>"##,
        X0 + text_w(&title, 16.0) * 1.1 + 12.0,
        esc(&s.source)
    );
    let n_sets = sets.iter().filter(|set| set.summary.is_some()).count();
    let _ = writeln!(
        o,
        r#"<text x="{right}" y="{TITLE_Y}" text-anchor="end" class="summary">{} · {n_sets} set{} · {} reps, {perfect} perfect · {} arch{}</text>"#,
        clock(s.t1_ms.saturating_sub(s.t0_ms)),
        if n_sets == 1 { "" } else { "s" },
        all_reps.len(),
        arches.len(),
        if arches.len() == 1 { "" } else { "es" },
    );
    legend(s, &mut o);

    // Nobody on the mat: the lanes greyed, no trace.
    let lanes_bottom = HEAT_Y + s.heat_h();
    let mut off = Vec::new();
    let mut t = s.t0_ms;
    for &(a, b) in &on_mat {
        if a > t {
            off.push((t, a));
        }
        t = t.max(b);
    }
    if s.t1_ms > t {
        off.push((t, s.t1_ms));
    }
    let _ = writeln!(
        o,
        r#"<g class="off-mat" fill="{OFF_FILL}" fill-opacity="{OFF_OPACITY}">"#
    );
    for &(a, b) in &off {
        let (x0, x1) = (s.x(a), s.x(b));
        if x1 - x0 < 0.5 {
            continue;
        }
        let _ = writeln!(
            o,
            r#"<rect class="off" x="{x0:.1}" y="{CONTACT_Y}" width="{:.1}" height="{:.1}"><title>nobody on the mat {} to {}</title></rect>"#,
            x1 - x0,
            REPS_Y + REPS_H - CONTACT_Y,
            clock(a.saturating_sub(s.t0_ms)),
            clock(b.saturating_sub(s.t0_ms)),
        );
        if x1 - x0 > text_w("off the mat", 10.0) + 8.0 {
            let _ = writeln!(
                o,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#666666" fill-opacity="1">off the mat</text>"##,
                (x0 + x1) / 2.0,
                CONTACT_Y + CONTACT_H / 2.0
            );
        }
    }
    o.push_str("</g>\n");

    // Arches, shaded across the lanes.
    let _ = writeln!(
        o,
        r#"<g class="arches" fill="{ARCH_FILL}" fill-opacity="{ARCH_OPACITY}">"#
    );
    for &(a, b) in &arches {
        let (x0, x1) = (s.x(a), s.x(b));
        let _ = writeln!(
            o,
            r#"<rect class="arch" x="{x0:.1}" y="{CONTACT_Y}" width="{:.1}" height="{:.1}"><title>arch {} to {} ({:.1} s)</title></rect>"#,
            (x1 - x0).max(1.0),
            lanes_bottom - CONTACT_Y,
            clock(a.saturating_sub(s.t0_ms)),
            clock(b.saturating_sub(s.t0_ms)),
            b.saturating_sub(a) as f64 / 1000.0
        );
    }
    o.push_str("</g>\n");

    // Lane frames and labels.
    for (y, hgt, label) in [
        (CONTACT_Y, CONTACT_H, "lumbar contact"),
        (REPS_Y, REPS_H, "legs (rep signal)"),
        (HEAT_Y, s.heat_h(), "grid"),
    ] {
        let _ = writeln!(
            o,
            r##"<rect x="{X0}" y="{y}" width="{PLOT_W}" height="{hgt:.1}" fill="none" stroke="#bbbbbb"/>"##
        );
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{:.1}" text-anchor="middle" transform="rotate(-90 {} {:.1})" fill="#444444">{label}</text>"##,
            X0 - 58.0,
            y + hgt / 2.0,
            X0 - 58.0,
            y + hgt / 2.0
        );
    }

    // Contact lane: reference and threshold lines, the contact band.
    let cy = |v: f64| CONTACT_Y + (CONTACT_MAX - v.clamp(0.0, CONTACT_MAX)) / CONTACT_MAX * CONTACT_H;
    for (v, label) in [(0.0, "0"), (0.5, "50%"), (1.0, "100%")] {
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{:.1}" text-anchor="end" font-size="10" fill="#666666">{label}</text>"##,
            X0 - 4.0,
            cy(v) + 3.5
        );
    }
    let _ = writeln!(
        o,
        r##"<line class="reference" x1="{X0}" x2="{right}" y1="{y:.1}" y2="{y:.1}" stroke="#555555" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#555555" stroke="white" stroke-width="3" paint-order="stroke">reference (pressed flat)</text>"##,
        right - 4.0,
        cy(1.0) - 4.0,
        y = cy(1.0)
    );
    let _ = writeln!(
        o,
        r##"<line class="threshold" x1="{X0}" x2="{right}" y1="{y:.1}" y2="{y:.1}" stroke="{FLAWED_COLOR}" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="{FLAWED_COLOR}" stroke="white" stroke-width="3" paint-order="stroke">arch threshold {:.0}%</text>"##,
        right - 4.0,
        cy(s.arch_threshold) - 4.0,
        s.arch_threshold * 100.0,
        y = cy(s.arch_threshold)
    );
    let _ = writeln!(
        o,
        r#"<path class="contact" d="{}" fill="{CONTACT_COLOR}" fill-opacity="0.55" stroke="{CONTACT_COLOR}" stroke-width="0.8"/>"#,
        band(s, |i| on_mat_cols[i], |c| c.contact, cy)
    );

    // Legs' lane: where a typical rep's top and bottom sit, the signal per
    // set, then the reps.
    for (at, label) in [(LEGS_UP_AT, "legs up"), (LEGS_DOWN_AT, "down")] {
        let y = REPS_Y + at * REPS_H;
        let _ = writeln!(
            o,
            r##"<line class="legs-guide" x1="{X0}" x2="{right}" y1="{y:.1}" y2="{y:.1}" stroke="#cccccc" stroke-dasharray="1 3"/><text x="{}" y="{:.1}" text-anchor="end" font-size="10" fill="#666666">{label}</text>"##,
            X0 - 4.0,
            y + 3.5
        );
    }
    for scale in legs_scales(s, &on_mat) {
        let (class, color) = if scale.raw {
            ("seesaw raw", RAW_SEESAW_COLOR)
        } else {
            ("seesaw", SEESAW_COLOR)
        };
        let shown = |i: usize| on_mat_cols[i] && (scale.from_ms..=scale.to_ms).contains(&s.column_mid_ms(i));
        let d = band(s, shown, |c| c.seesaw, |v| scale.y(v));
        if !d.is_empty() {
            let _ = writeln!(
                o,
                r#"<path class="{class}" d="{d}" fill="{color}" fill-opacity="0.55" stroke="{color}" stroke-width="0.8"/>"#
            );
        }
    }
    let marks_y = REPS_Y + REPS_H;
    o.push_str("<g class=\"reps\">\n");
    for r in &all_reps {
        let x = s.x(r.t_ms);
        let (class, color) = if r.perfect {
            ("rep perfect", PERFECT_COLOR)
        } else {
            ("rep", FLAWED_COLOR)
        };
        let _ = writeln!(
            o,
            r#"<g class="{class}" data-set="{}" data-rep="{}"><title>set {} rep {}: {}, descent {:.1} s</title><line x1="{x:.1}" x2="{x:.1}" y1="{REPS_Y}" y2="{marks_y:.1}" stroke="{color}" stroke-opacity="0.4"/><circle cx="{x:.1}" cy="{marks_y:.1}" r="4.5" fill="{color}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="9" fill="{color}">{}</text></g>"#,
            r.set,
            r.rep,
            r.set,
            r.rep,
            verdict(r),
            r.descent_ms as f64 / 1000.0,
            marks_y + 15.0,
            r.rep
        );
    }
    o.push_str("</g>\n");

    // Sets: a bracket over each set's reps (the `set` event comes later:
    // after the legs rested a while, or when the person got up), labelled
    // as fully as the room between its neighbours allows.
    o.push_str("<g class=\"sets\">\n");
    let brackets: Vec<(f64, f64)> = sets
        .iter()
        .map(|set| {
            let (a, b) = set.span();
            (s.x(a), s.x(b))
        })
        .collect();
    for (k, set) in sets.iter().enumerate() {
        let (x0, x1) = brackets[k];
        let reps = set.reps.len();
        let perfect = set.reps.iter().filter(|r| r.perfect).count();
        let labels = match set.summary {
            Some(sum) => [
                format!(
                    "set {}: {} reps, {} perfect, {} arch{}",
                    sum.set,
                    sum.reps,
                    sum.perfect,
                    sum.arches,
                    if sum.arches == 1 { "" } else { "es" }
                ),
                format!("set {}: {} reps, {} perfect", sum.set, sum.reps, sum.perfect),
                format!("set {}", sum.set),
            ],
            None => [
                format!("set {} (not closed): {reps} reps, {perfect} perfect", set.number()),
                format!("set {}: {reps} reps, {perfect} perfect", set.number()),
                format!("set {}", set.number()),
            ],
        };
        let centre = (x0 + x1) / 2.0;
        let left = if k == 0 { 4.0 } else { (brackets[k - 1].1 + x0) / 2.0 };
        let right = brackets
            .get(k + 1)
            .map_or(WIDTH as f64 - 4.0, |next| (x1 + next.0) / 2.0);
        let room = 2.0 * (centre - left).min(right - centre);
        let label = labels.iter().find(|l| text_w(l, 11.0) <= room).unwrap_or(&labels[2]);
        let _ = writeln!(
            o,
            r##"<g class="{}"><path d="M{x0:.1} {:.1}V{SETS_Y}H{x1:.1}V{:.1}" fill="none" stroke="#333333"/><text x="{centre:.1}" y="{:.1}" text-anchor="middle" font-size="11">{label}</text></g>"##,
            if set.summary.is_some() { "set" } else { "set open" },
            SETS_Y + 6.0,
            SETS_Y + 6.0,
            SETS_Y - 4.0,
        );
    }
    o.push_str("</g>\n");

    heatmap(s, &mut o);

    // Time axis.
    let ay = s.axis_y();
    let step = tick_step_ms(s.span_ms(), 12.0);
    let _ = writeln!(
        o,
        r##"<g class="axis" font-size="10" fill="#444444"><line x1="{X0}" x2="{right}" y1="{ay:.1}" y2="{ay:.1}" stroke="#888888"/>"##
    );
    let mut t = 0;
    while t <= s.span_ms() as u64 {
        let x = s.x(s.t0_ms + t);
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{ay:.1}" y2="{:.1}" stroke="#888888"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            ay + 4.0,
            ay + 16.0,
            clock(t)
        );
        t += step;
    }
    let _ = writeln!(
        o,
        r#"<text x="{right}" y="{:.1}" text-anchor="end">time (min:s)</text></g>"#,
        ay + 32.0
    );

    rep_table(s, &sets, &mut o);
    o.push_str("</svg>\n");
    o
}

/// Why a rep was not perfect, in [`RepEvent::flaws`]'s words (an events
/// file may give no reason); nothing for a perfect one.
fn why(r: &RepEvent) -> Vec<&'static str> {
    match (r.perfect, r.flaws()) {
        (true, _) => Vec::new(),
        (false, flaws) if flaws.is_empty() => vec!["not perfect"],
        (false, flaws) => flaws,
    }
}

/// "perfect", or why not.
fn verdict(r: &RepEvent) -> String {
    if r.perfect {
        "perfect".to_string()
    } else {
        why(r).join(", ")
    }
}

/// One line under the title: what the marks, lines and shades mean, and
/// the heatmap's colours in counts.
fn legend(s: &PlotData, o: &mut String) {
    let y = LEGEND_Y;
    let mid = y - 4.0;
    let _ = writeln!(o, r##"<g class="legend" font-size="11" fill="#333333">"##);
    let key = |o: &mut String, at: f64, name: &str, glyph_w: f64, glyph: String, label: &str| {
        let _ = writeln!(
            o,
            r#"<g class="key" data-key="{name}">{glyph}<text x="{:.1}" y="{y}">{label}</text></g>"#,
            at + glyph_w + 5.0
        );
        at + glyph_w + 5.0 + text_w(label, 11.0) + 14.0
    };
    let at = X0;
    let at = key(
        o,
        at,
        "perfect",
        9.0,
        format!(
            r#"<circle cx="{:.1}" cy="{mid}" r="4.5" fill="{PERFECT_COLOR}"/>"#,
            at + 4.5
        ),
        "perfect rep",
    );
    let at = key(
        o,
        at,
        "flawed",
        9.0,
        format!(
            r#"<circle cx="{:.1}" cy="{mid}" r="4.5" fill="{FLAWED_COLOR}"/>"#,
            at + 4.5
        ),
        "not perfect: see below",
    );
    let at = key(
        o,
        at,
        "arch",
        16.0,
        format!(
            r#"<rect x="{at:.1}" y="{:.1}" width="16" height="14" fill="{ARCH_FILL}" fill-opacity="{ARCH_OPACITY}"/>"#,
            mid - 7.0
        ),
        "arch: back lifted",
    );
    let at = key(
        o,
        at,
        "threshold",
        22.0,
        format!(
            r#"<line x1="{at:.1}" x2="{:.1}" y1="{mid}" y2="{mid}" stroke="{FLAWED_COLOR}" stroke-dasharray="4 3"/>"#,
            at + 22.0
        ),
        "arch threshold",
    );
    let at = key(
        o,
        at,
        "reference",
        22.0,
        format!(
            r##"<line x1="{at:.1}" x2="{:.1}" y1="{mid}" y2="{mid}" stroke="#555555" stroke-dasharray="6 4"/>"##,
            at + 22.0
        ),
        "pressed flat",
    );
    let at = key(
        o,
        at,
        "set",
        20.0,
        format!(
            r##"<path d="M{at:.1} {:.1}V{:.1}H{:.1}V{:.1}" fill="none" stroke="#333333"/>"##,
            mid + 4.0,
            mid - 4.0,
            at + 20.0,
            mid + 4.0
        ),
        "set",
    );
    let at = key(
        o,
        at,
        "off",
        16.0,
        format!(
            r#"<rect x="{at:.1}" y="{:.1}" width="16" height="14" fill="{OFF_FILL}" fill-opacity="{OFF_OPACITY}"/>"#,
            mid - 7.0
        ),
        "off the mat",
    );
    // The heatmap's scale: level k covers k/9 .. (k+1)/9 of the top.
    let top_counts = heat_top(s) as f64 * s.full_scale as f64;
    let _ = write!(
        o,
        r#"<g class="key" data-key="heat"><text x="{at:.1}" y="{y}">grid, mean counts: 0</text>"#
    );
    let ramp_x = at + text_w("grid, mean counts: 0", 11.0) + 4.0;
    for (k, color) in HEAT.iter().enumerate() {
        let _ = write!(
            o,
            r##"<rect x="{:.1}" y="{:.1}" width="11" height="12" fill="{color}" stroke="#bbbbbb" stroke-width="0.5"/>"##,
            ramp_x + 11.0 * k as f64,
            mid - 6.0
        );
    }
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{y}">{top_counts:.0}</text></g>"#,
        ramp_x + 11.0 * HEAT.len() as f64 + 4.0
    );
    o.push_str("</g>\n");
}

/// The height of one set's lines in the rep table: a line per
/// [`NOTES_PER_LINE`] reps, each as tall as its most flawed rep needs.
fn notes_h(set: &SetReps, several_sessions: bool) -> f64 {
    let lines: f64 = if set.reps.is_empty() {
        NOTE_LINE_H
    } else {
        set.reps
            .chunks(NOTES_PER_LINE)
            .map(|line| {
                let flaws = line.iter().map(|r| why(r).len()).max().unwrap_or(0);
                NOTE_LINE_H + FLAW_LINE_H * flaws as f64
            })
            .sum()
    };
    let label = if several_sessions { 26.0 } else { NOTE_LINE_H };
    lines.max(label) + 8.0
}

/// Every rep as text, a line per set: its number and descent, and for a rep
/// that was not perfect each of its flaws on a line below, in red. A mark
/// on the legs' lane has no room for this when reps come close together.
fn rep_table(s: &PlotData, sets: &[SetReps], o: &mut String) {
    let several = several_sessions(&s.events);
    let mut y = s.table_y();
    let _ = writeln!(
        o,
        r##"<text class="table-head" x="{X0}" y="{y:.1}" font-size="12" fill="#333333">{}</text>"##,
        if sets.is_empty() {
            "Reps: none"
        } else {
            "Reps: number · descent (seconds lowering the legs); green when perfect, red when not, and why"
        }
    );
    y += 10.0;
    o.push_str("<g class=\"rep-table\">\n");
    for set in sets {
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11" font-weight="bold" fill="#333333">set {}</text>"##,
            X0 - 8.0,
            y + 11.0,
            set.number()
        );
        if several {
            let _ = writeln!(
                o,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="9" fill="#666666">session {}</text>"##,
                X0 - 8.0,
                y + 23.0,
                set.session
            );
        }
        if set.reps.is_empty() {
            let _ = writeln!(
                o,
                r##"<text x="{X0}" y="{:.1}" font-size="11" fill="#666666">no reps</text>"##,
                y + 11.0
            );
        }
        let mut line_y = y;
        for line in set.reps.chunks(NOTES_PER_LINE) {
            for (k, r) in line.iter().enumerate() {
                let color = if r.perfect { PERFECT_COLOR } else { FLAWED_COLOR };
                let _ = write!(
                    o,
                    r#"<g class="rep-note" data-session="{}" data-set="{}" data-rep="{}" transform="translate({:.1} {line_y:.1})"><text y="11" font-size="11" fill="{color}">{} · {:.1} s</text>"#,
                    set.session,
                    r.set,
                    r.rep,
                    X0 + NOTE_W * k as f64,
                    r.rep,
                    r.descent_ms as f64 / 1000.0
                );
                for (n, flaw) in why(r).iter().enumerate() {
                    let _ = write!(
                        o,
                        r#"<text class="flaw" y="{:.1}" font-size="10" fill="{FLAWED_COLOR}">{flaw}</text>"#,
                        11.0 + FLAW_LINE_H * (n + 1) as f64
                    );
                }
                o.push_str("</g>\n");
            }
            let flaws = line.iter().map(|r| why(r).len()).max().unwrap_or(0);
            line_y += NOTE_LINE_H + FLAW_LINE_H * flaws as f64;
        }
        y += notes_h(set, several);
    }
    o.push_str("</g>\n");
}

/// One strip per taxel: each column's mean reading, in 9 levels scaled to
/// [`heat_top`], drawn as one path per level of merged runs. Faults found
/// are marked where they were found.
fn heatmap(s: &PlotData, o: &mut String) {
    let taxels = s.grid.len();
    let strip = s.strip_h();
    let faults: Vec<(u64, usize, String)> = s
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Health {
                t_ms,
                row,
                col,
                fault,
                ok: false,
            } => Some((
                *t_ms,
                s.grid.index(*row, *col),
                format!(
                    "r{row}c{col} {}",
                    serde_json::to_string(fault).unwrap_or_default().trim_matches('"')
                ),
            )),
            _ => None,
        })
        .collect();
    let top = heat_top(s);
    let mut paths = vec![String::new(); HEAT.len()];
    for i in 0..taxels {
        let y = HEAT_Y + i as f64 * strip;
        let mut run: Option<(usize, usize)> = None; // (first column, level)
        let flush = |run: Option<(usize, usize)>, end: usize, paths: &mut Vec<String>| {
            if let Some((from, level)) = run {
                let _ = write!(
                    paths[level],
                    "M{:.0} {:.1}h{}v{:.1}h-{}z",
                    X0 + from as f64,
                    y,
                    end - from,
                    strip,
                    end - from
                );
            }
        };
        for (k, c) in s.columns.iter().enumerate() {
            let level = if c.frames == 0 {
                None
            } else {
                Some((((c.load(i) / top).min(1.0)) * (HEAT.len() as f32 - 0.001)) as usize)
            };
            match (run, level) {
                (Some((_, l)), Some(now)) if l == now => {}
                _ => {
                    flush(run, k, &mut paths);
                    run = level.map(|l| (k, l));
                }
            }
        }
        flush(run, s.columns.len(), &mut paths);
    }
    o.push_str("<g class=\"heatmap\" shape-rendering=\"crispEdges\">\n");
    for (level, d) in paths.iter().enumerate() {
        if !d.is_empty() {
            let _ = writeln!(o, r#"<path d="{d}" fill="{}"/>"#, HEAT[level]);
        }
    }
    o.push_str("</g>\n");
    for (t_ms, i, what) in &faults {
        let (x, y) = (s.x(*t_ms), HEAT_Y + (*i as f64 + 0.5) * strip);
        let _ = writeln!(
            o,
            r#"<g class="fault"><title>taxel {} found faulty</title><path d="M{x:.1} {y:.1}l5 -4v8z" fill="{FLAWED_COLOR}"/></g>"#,
            esc(what)
        );
    }
    // A label per grid row, by what lies on it.
    for r in 0..s.grid.rows {
        let what = if s.upper_rows.contains(&r) {
            "upper back"
        } else if s.lumbar_rows.contains(&r) {
            "lumbar"
        } else if s.sacral_rows.contains(&r) {
            "sacrum"
        } else {
            ""
        };
        let y = HEAT_Y + (r * s.grid.cols) as f64 * strip + strip * s.grid.cols as f64 / 2.0 + 3.5;
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{y:.1}" text-anchor="end" font-size="9" fill="#666666">r{r} {what}</text>"##,
            X0 - 4.0
        );
        if r > 0 {
            let ly = HEAT_Y + (r * s.grid.cols) as f64 * strip;
            let _ = writeln!(
                o,
                r##"<line x1="{X0}" x2="{}" y1="{ly:.1}" y2="{ly:.1}" stroke="#ffffff" stroke-width="0.6"/>"##,
                X0 + PLOT_W as f64
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::event::{ArchEvent, Phase, SetEvent};
    use crate::plot::read::{attrs, points, section, texts, translate};

    fn rep(t_ms: u64, set: u32, n: u32, perfect: bool) -> Event {
        Event::Rep(RepEvent {
            t_ms,
            set,
            rep: n,
            perfect,
            arched: !perfect,
            rushed: false,
            descent_ms: 3000,
            ascent_ms: Some(1500),
            bounce: false,
            depth: None,
        })
    }

    fn bucket(frames: u32, contact: Option<f32>, load: f32) -> Bucket {
        Bucket {
            frames,
            contact: contact.map(|c| (c, c)),
            seesaw: contact.map(|_| (-0.2, 0.4)),
            arch: false,
            load_sums: vec![load * frames as f32; 4],
        }
    }

    fn session(columns: Vec<Bucket>, events: Vec<Event>) -> PlotData {
        PlotData {
            mat: "test <recording>".into(),
            date: "2025-03-14".into(),
            source: "test.csv.gz".into(),
            grid: Grid::new(2, 2),
            t0_ms: 0,
            t1_ms: 60_000,
            columns,
            events,
            arch_threshold: 0.6,
            full_scale: 1023,
            upper_rows: vec![0],
            lumbar_rows: vec![1],
            sacral_rows: vec![],
        }
    }

    #[test]
    fn one_mark_per_rep_and_a_bracket_per_set() {
        let events = vec![
            Event::Session {
                t_ms: 100,
                phase: Phase::Start,
            },
            rep(10_000, 1, 1, true),
            rep(16_000, 1, 2, false),
            rep(22_000, 1, 3, true),
            Event::Set(SetEvent {
                t_ms: 32_000,
                set: 1,
                reps: 3,
                perfect: 2,
                arches: 1,
            }),
            rep(40_000, 2, 1, true),
            Event::Set(SetEvent {
                t_ms: 52_000,
                set: 2,
                reps: 1,
                perfect: 1,
                arches: 0,
            }),
        ];
        let svg = build(&session(vec![bucket(10, Some(1.0), 0.5); PLOT_W], events));
        assert_eq!(svg.matches(r#"class="rep perfect""#).count(), 3);
        assert_eq!(svg.matches(r#"class="rep""#).count(), 1);
        assert_eq!(svg.matches(r#"class="set""#).count(), 2);
        assert!(svg.contains("set 1: 3 reps, 2 perfect, 1 arch<"));
        assert!(svg.contains("test &lt;recording&gt;"), "titles are escaped");
        assert!(svg.contains("1:00 · 2 sets · 4 reps, 3 perfect · 0 arches"));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn arches_are_shaded_from_onset_to_end() {
        let arch = Event::test_arch;
        let events = vec![
            arch(6_000, Phase::Start),
            arch(12_000, Phase::End),
            arch(54_000, Phase::Start),
        ];
        assert_eq!(
            spans::arch_spans(&events, 0, 60_000),
            vec![(5_900, 12_000), (53_900, 60_000)]
        );
        let svg = build(&session(vec![bucket(10, Some(1.0), 0.5); PLOT_W], events));
        assert_eq!(svg.matches(r#"class="arch""#).count(), 2);
        // 5.9 s of 60 s across the plot's width.
        let x = X0 + 5_900.0 / 60_000.0 * PLOT_W as f64;
        assert!(svg.contains(&format!(r#"class="arch" x="{x:.1}""#)), "{x}");
    }

    #[test]
    fn series_break_where_the_person_is_gone_or_frames_are_missing() {
        let mut cols = vec![bucket(10, Some(0.9), 0.5); PLOT_W];
        // Nobody on the mat for a stretch: frames, but no contact.
        for c in &mut cols[100..200] {
            *c = bucket(10, None, 0.0);
        }
        // A few scattered empty columns (sparse frames): no break.
        for k in (300..400).step_by(2) {
            cols[k] = bucket(0, None, 0.0);
        }
        // A long gap (30 columns = 1.6 s): a break.
        for c in &mut cols[600..630] {
            *c = bucket(0, None, 0.0);
        }
        let svg = build(&session(cols, vec![]));
        let contact = section(&svg, r#"class="contact" d=""#, "\"").unwrap();
        assert_eq!(contact.matches('M').count(), 3, "three runs: before, between, after");
        assert_eq!(contact.matches('Z').count(), 3);
    }

    #[test]
    fn heatmap_runs_merge_and_levels_scale_to_the_top() {
        let mut cols = vec![bucket(10, Some(1.0), 0.0); PLOT_W];
        for c in &mut cols[500..] {
            *c = bucket(10, Some(1.0), 0.4);
        }
        let svg = build(&session(cols, vec![]));
        let heat = section(&svg, r#"class="heatmap""#, "</g>").unwrap();
        // Two runs per taxel (empty, then full load), each one rectangle.
        assert_eq!(heat.matches('M').count(), 8);
        assert!(heat.contains(&format!(r#"fill="{}""#, HEAT[0])));
        assert!(
            heat.contains(&format!(r#"fill="{}""#, HEAT[8])),
            "the highest load is the darkest"
        );
    }

    #[test]
    fn size_depends_on_width_not_frames() {
        // Noisy columns: every column a different level and band height.
        let cols: Vec<Bucket> = (0..PLOT_W)
            .map(|i| {
                let v = ((i * 7919) % 100) as f32 / 100.0;
                bucket(1000, Some(v), v)
            })
            .collect();
        let events: Vec<Event> = (0..200)
            .map(|k| rep(k * 290, 1 + k as u32 / 15, 1 + k as u32 % 15, k % 3 > 0))
            .collect();
        let svg = build(&session(cols, events));
        assert!(svg.len() < 400_000, "{} bytes", svg.len());
    }

    /// Five reps, 10 .. 40 s: legs resting on the floor (signal 0.3)
    /// before and after, hovering (0.7) in between, each rep's top at 0.5.
    fn leg_lifts() -> (Vec<Bucket>, Vec<Event>) {
        let rep_at = |k: u64| 10_000 + 6_000 * k;
        let signal = |t: f64| -> f32 {
            if !(9_000.0..41_000.0).contains(&t) {
                return 0.3;
            }
            for k in 0..5 {
                let r = (t - rep_at(k) as f64) / 1000.0;
                let v = match r {
                    r if (0.5..1.5).contains(&r) => 0.7 - 0.2 * (r - 0.5),
                    r if (1.5..2.0).contains(&r) => 0.5,
                    r if (2.0..5.0).contains(&r) => 0.5 + 0.2 * (r - 2.0) / 3.0,
                    _ => continue,
                };
                return v as f32;
            }
            0.7
        };
        let columns = (0..PLOT_W)
            .map(|i| {
                let t = (i as f64 + 0.5) * 60_000.0 / PLOT_W as f64;
                let v = signal(t);
                Bucket {
                    seesaw: Some((v, v)),
                    ..bucket(10, Some(1.0), 0.5)
                }
            })
            .collect();
        let mut events = vec![Event::Session {
            t_ms: 1_000,
            phase: Phase::Start,
        }];
        for k in 0..5 {
            events.push(Event::Rep(RepEvent {
                t_ms: rep_at(k) + 5_000,
                set: 1,
                rep: k as u32 + 1,
                perfect: true,
                arched: false,
                rushed: false,
                descent_ms: 3000,
                ascent_ms: Some(1000),
                bounce: false,
                depth: None,
            }));
        }
        events.push(Event::Set(SetEvent {
            t_ms: 50_000,
            set: 1,
            reps: 5,
            perfect: 5,
            arches: 0,
        }));
        events.push(Event::Session {
            t_ms: 58_000,
            phase: Phase::End,
        });
        (columns, events)
    }

    /// Where the legs' trace is, at its highest near each rep's top and at
    /// its lowest near each rep's end.
    fn rep_tops_and_bottoms(s: &PlotData, svg: &str) -> Vec<(f64, f64)> {
        let pts = points(svg, "seesaw");
        reps(&s.events)
            .map(|r| {
                let near = |t_ms: u64| {
                    let x = s.x(t_ms);
                    pts.iter().filter(move |p| (p.0 - x).abs() < 1.0).map(|p| p.1)
                };
                let top = near(r.t_ms - r.descent_ms).fold(f64::MAX, f64::min);
                let bottom = near(r.t_ms).fold(f64::MIN, f64::max);
                (top, bottom)
            })
            .collect()
    }

    #[test]
    fn legs_up_is_up_and_a_rep_swings_over_most_of_the_lane() {
        let (columns, events) = leg_lifts();
        let s = session(columns.clone(), events.clone());
        let svg = build(&s);
        let swings = rep_tops_and_bottoms(&s, &svg);
        assert_eq!(swings.len(), 5);
        for &(top, bottom) in &swings {
            // SVG's y grows downward.
            assert!(top < bottom, "legs up drawn below legs down: {swings:?}");
            assert!(bottom - top > 0.6 * REPS_H, "a rep swings over {:.0} px", bottom - top);
            assert!(top >= REPS_Y && bottom <= REPS_Y + REPS_H);
        }
        // The legs resting on the floor, before and after the set, are not
        // drawn (they would read as legs up).
        let pts = points(&svg, "seesaw");
        assert!(!pts.is_empty());
        assert!(pts.iter().all(|p| p.0 > s.x(8_000) && p.0 < s.x(42_000)));

        // One glitch (a column swinging over the whole signal's range) does
        // not change the scale.
        let mut glitched = columns;
        glitched[s.column_of(23_000)].seesaw = Some((-1.0, 1.0));
        let g = session(glitched, events);
        let with_glitch = rep_tops_and_bottoms(&g, &build(&g));
        assert_eq!(with_glitch[0], swings[0]);
        assert_eq!(with_glitch[4], swings[4]);
    }

    #[test]
    fn nothing_is_drawn_while_nobody_is_on_the_mat_nor_while_getting_up() {
        // Contact from 0 to 60 s (as an events file could have it), but the
        // session runs 5 .. 50 s, and its last 3 s are getting up: the lumbar
        // region unloads first.
        let mut columns = vec![bucket(10, Some(1.0), 0.5); PLOT_W];
        let s = session(Vec::new(), Vec::new());
        for c in &mut columns[s.column_of(47_000)..=s.column_of(50_000)] {
            c.contact = Some((0.02, 0.02));
        }
        let events = vec![
            Event::Session {
                t_ms: 5_000,
                phase: Phase::Start,
            },
            Event::Session {
                t_ms: 50_000,
                phase: Phase::End,
            },
        ];
        let s = session(columns, events);
        let svg = build(&s);
        let contact = points(&svg, "contact");
        assert!(!contact.is_empty());
        assert!(contact
            .iter()
            .all(|p| p.0 >= s.x(5_000) - 1.0 && p.0 <= s.x(47_000) + 1.0));
        // Greyed: before the session, and from getting up to the end.
        let xs = attrs(&svg, r#"<rect class="off""#, "x");
        let widths = attrs(&svg, r#"<rect class="off""#, "width");
        let off: Vec<(f64, f64)> = xs
            .iter()
            .zip(&widths)
            .map(|(x, w)| {
                (
                    x.parse::<f64>().unwrap(),
                    x.parse::<f64>().unwrap() + w.parse::<f64>().unwrap(),
                )
            })
            .collect();
        assert_eq!(off.len(), 2, "{off:?}");
        assert!((off[0].0 - X0).abs() < 0.2 && (off[0].1 - s.x(5_000)).abs() < 1.0);
        assert!((off[1].0 - s.x(47_000)).abs() < 1.5 && (off[1].1 - s.x(60_000)).abs() < 0.2);
    }

    #[test]
    fn an_arch_open_when_the_person_gets_up_is_shaded_to_the_session_end_only() {
        let events = vec![
            Event::Session {
                t_ms: 1_000,
                phase: Phase::Start,
            },
            Event::Arch(ArchEvent {
                t_ms: 30_000,
                phase: Phase::Start,
                onset_ms: Some(29_900),
                contact: Some(0.4),
                duration_ms: None,
                min_contact: None,
            }),
            Event::Session {
                t_ms: 40_000,
                phase: Phase::End,
            },
        ];
        let s = session(vec![bucket(10, Some(1.0), 0.5); PLOT_W], events);
        let svg = build(&s);
        let x: f64 = attrs(&svg, r#"<rect class="arch""#, "x")[0].parse().unwrap();
        let w: f64 = attrs(&svg, r#"<rect class="arch""#, "width")[0].parse().unwrap();
        assert!((x - s.x(29_900)).abs() < 0.1);
        assert!(x + w <= s.x(40_000) + 0.1, "shaded past the session's end: {}", x + w);
    }

    #[test]
    fn the_last_sets_bracket_ends_at_its_last_rep() {
        // The set's event comes when the person gets up, long after.
        let events = vec![
            Event::Session {
                t_ms: 1_000,
                phase: Phase::Start,
            },
            rep(10_000, 1, 1, true),
            rep(16_000, 1, 2, false),
            rep(22_000, 1, 3, true),
            Event::Set(SetEvent {
                t_ms: 50_000,
                set: 1,
                reps: 3,
                perfect: 2,
                arches: 1,
            }),
            Event::Session {
                t_ms: 50_000,
                phase: Phase::End,
            },
        ];
        let s = session(vec![bucket(10, Some(1.0), 0.5); PLOT_W], events);
        let svg = build(&s);
        let d = svg.split(r#"<g class="set"><path d=""#).nth(1).unwrap();
        let x1: f64 = d.split('H').nth(1).unwrap().split('V').next().unwrap().parse().unwrap();
        assert!((x1 - s.x(22_000)).abs() < 0.1, "{x1} vs {}", s.x(22_000));
        let x0: f64 = d[1..].split(' ').next().unwrap().parse().unwrap();
        // The first rep began one ascent and one descent before its event.
        assert!((x0 - s.x(10_000 - 4_500)).abs() < 0.1, "{x0}");
    }

    #[test]
    fn title_and_legend() {
        let s = session(vec![bucket(10, Some(1.0), 0.25); PLOT_W], vec![]);
        let svg = build(&s);
        let title = section(&svg, r#"class="title""#, "</text>").unwrap();
        assert!(title.ends_with(">test &lt;recording&gt; · 2025-03-14"), "{title}");
        let legend = svg.split(r#"<g class="legend""#).nth(1).unwrap();
        let keys = attrs(legend, r#"<g class="key""#, "data-key");
        assert_eq!(
            keys,
            [
                "perfect",
                "flawed",
                "arch",
                "threshold",
                "reference",
                "set",
                "off",
                "heat"
            ]
        );
        for label in [
            "perfect rep",
            "not perfect",
            "arch",
            "arch threshold",
            "pressed flat",
            "off the mat",
        ] {
            assert!(legend.contains(&format!(">{label}")), "{label}");
        }
        // The heatmap's colours, from 0 to the session's highest mean
        // (a quarter of 1023 counts).
        let heat = section(legend, r#"data-key="heat""#, "</g>").unwrap();
        assert!(heat.contains("counts: 0<"), "{heat}");
        assert_eq!(heat.matches("<rect").count(), HEAT.len());
        assert!(heat.contains(">256</text>"), "{heat}");
        // Every key fits in the picture's width.
        let last_x: f64 = attrs(legend, "<text", "x").last().unwrap().parse().unwrap();
        assert!(last_x + 30.0 < WIDTH as f64, "{last_x}");
    }

    #[test]
    fn every_rep_is_written_out_and_why_it_was_not_perfect() {
        // 20 reps a second apart: their marks crowd, their notes must not.
        let events: Vec<Event> = (0..20u32)
            .map(|k| {
                Event::Rep(RepEvent {
                    t_ms: 10_000 + 1_000 * k as u64,
                    set: 1,
                    rep: k + 1,
                    perfect: k % 3 == 0,
                    arched: k % 3 == 1,
                    rushed: k % 3 == 2 || k == 4,
                    descent_ms: 1_000 + 100 * k as u64,
                    ascent_ms: None,
                    bounce: k == 5,
                    depth: None,
                })
            })
            .collect();
        let s = session(vec![bucket(10, Some(1.0), 0.5); PLOT_W], events);
        let svg = build(&s);
        let notes: Vec<&str> = svg
            .split(r#"<g class="rep-note""#)
            .skip(1)
            .map(|n| n.split("</g>").next().unwrap())
            .collect();
        assert_eq!(notes.len(), 20);
        let mut places = Vec::new();
        for (k, r) in reps(&s.events).enumerate() {
            let note = notes[k];
            assert!(
                note.contains(&format!(r#"data-set="1" data-rep="{}""#, r.rep)),
                "{note}"
            );
            assert!(note.contains(&format!(">{} · {:.1} s<", r.rep, r.descent_ms as f64 / 1000.0)));
            let flaws = texts(note, r#"class="flaw""#);
            assert_eq!(flaws, r.flaws(), "rep {}", r.rep);
            let (x, y) = translate(note);
            places.push((x, y, flaws.len()));
        }
        // No two notes overlap: side by side a cell apart, or one below
        // the other's last flaw.
        for (i, a) in places.iter().enumerate() {
            for b in &places[i + 1..] {
                let apart = (a.0 - b.0).abs() >= NOTE_W - 0.1;
                let (upper, lower) = if a.1 <= b.1 { (a, b) } else { (b, a) };
                let below = lower.1 - upper.1 >= NOTE_LINE_H + FLAW_LINE_H * upper.2 as f64;
                assert!(apart || below, "{a:?} and {b:?} overlap");
            }
        }
        // The table fits in the picture.
        let lowest = places
            .iter()
            .map(|p| p.1 + NOTE_LINE_H + FLAW_LINE_H * p.2 as f64)
            .fold(0.0, f64::max);
        assert!(lowest < s.height() as f64, "{lowest} > {}", s.height());
        assert!(places.iter().all(|p| p.0 + NOTE_W <= WIDTH as f64));
    }

    #[test]
    fn ticks_and_clock() {
        assert_eq!(clock(65_000), "1:05");
        assert_eq!(clock(3_723_000), "1:02:03");
        assert_eq!(tick_step_ms(60_000.0, 12.0), 5000);
        assert_eq!(tick_step_ms(3_600_000.0, 12.0), 300_000);
    }
}
