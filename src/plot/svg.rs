//! The picture of a session as SVG (a pure function of [`Session`]).
//!
//! From the top: the sets (brackets over their reps), the lumbar contact
//! against the reference with the arch threshold, the rep signal (the
//! seesaw) with one mark per rep (`class="rep perfect"` or `class="rep"`),
//! the grid's heatmap (one strip per taxel, row-major), the time axis.
//! Arches are shaded across the lanes. Series are drawn from one min/max
//! column per pixel, so the file's size depends on the width, not on the
//! frame rate or the length.

use std::fmt::Write;

use crate::event::{Event, Phase, RepEvent, SetEvent};
use crate::frame::Grid;

use super::trace::Bucket;

/// Everything the picture shows.
#[derive(Debug, Clone)]
pub struct Session {
    /// The recording's name.
    pub title: String,
    pub grid: Grid,
    /// First and last frame, ms on the recording clock.
    pub t0_ms: u64,
    pub t1_ms: u64,
    /// One per pixel column of the plot ([`PLOT_W`] of them).
    pub columns: Vec<Bucket>,
    pub events: Vec<Event>,
    /// Share of the reference below which an arch starts.
    pub arch_threshold: f64,
    /// Grid rows, by what lies on them (for the heatmap's labels).
    pub upper_rows: Vec<usize>,
    pub lumbar_rows: Vec<usize>,
    pub sacral_rows: Vec<usize>,
}

/// The picture's size and the plot area inside it.
pub const WIDTH: u32 = 1200;
pub const X0: f64 = 80.0;
pub const PLOT_W: usize = 1090;

const SETS_Y: f64 = 46.0;
const CONTACT_Y: f64 = 72.0;
const CONTACT_H: f64 = 190.0;
/// The contact lane shows 0 .. CONTACT_MAX of the reference.
const CONTACT_MAX: f64 = 1.25;
const SEESAW_Y: f64 = 286.0;
const SEESAW_H: f64 = 130.0;
const HEAT_Y: f64 = 440.0;
/// Pixels per taxel strip, and the heatmap's height at most.
const HEAT_STRIP_MAX: f64 = 8.0;
const HEAT_H_MAX: f64 = 160.0;
/// A run of empty columns longer than this breaks a series (a gap in the
/// recording); shorter ones are just columns no frame fell in.
const GAP_MS: f64 = 250.0;

const CONTACT_COLOR: &str = "#1f77b4";
const SEESAW_COLOR: &str = "#7b3294";
const PERFECT_COLOR: &str = "#1a9850";
const FLAWED_COLOR: &str = "#d73027";
const ARCH_FILL: &str = "#d73027";
/// Heatmap levels, from nothing to full load (YlGnBu).
const HEAT: [&str; 9] = [
    "#ffffd9", "#edf8b1", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#253494", "#081d58",
];

impl Session {
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

    fn strip_h(&self) -> f64 {
        (HEAT_H_MAX / self.grid.len().max(1) as f64).clamp(1.0, HEAT_STRIP_MAX)
    }

    fn heat_h(&self) -> f64 {
        self.strip_h() * self.grid.len() as f64
    }

    fn axis_y(&self) -> f64 {
        HEAT_Y + self.heat_h() + 6.0
    }

    /// The picture's height.
    pub fn height(&self) -> u32 {
        (self.axis_y() + 40.0).ceil() as u32
    }
}

/// An arch, from the moment contact was lost to its end.
fn arch_spans(events: &[Event], end_ms: u64) -> Vec<(u64, u64)> {
    let mut spans = Vec::new();
    let mut open: Option<u64> = None;
    for e in events {
        if let Event::Arch(a) = e {
            match a.phase {
                Phase::Start => open = Some(a.onset_ms.unwrap_or(a.t_ms).min(a.t_ms)),
                Phase::End => {
                    if let Some(s) = open.take() {
                        spans.push((s, a.t_ms));
                    }
                }
            }
        }
    }
    if let Some(s) = open {
        spans.push((s, end_ms));
    }
    spans
}

fn reps(events: &[Event]) -> impl Iterator<Item = &RepEvent> {
    events.iter().filter_map(|e| match e {
        Event::Rep(r) => Some(r),
        _ => None,
    })
}

fn sets(events: &[Event]) -> impl Iterator<Item = &SetEvent> {
    events.iter().filter_map(|e| match e {
        Event::Set(s) => Some(s),
        _ => None,
    })
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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
/// the person's data stops (nobody on the mat, no reference) or frames are
/// missing for longer than [`GAP_MS`].
fn band(session: &Session, pick: impl Fn(&Bucket) -> Option<(f32, f32)>, y: impl Fn(f64) -> f64) -> String {
    let ms_per_col = session.span_ms() / PLOT_W as f64;
    let mut runs: Vec<Vec<(f64, f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64, f64)> = Vec::new();
    let mut empty_run = 0usize;
    for (i, c) in session.columns.iter().enumerate() {
        if c.frames == 0 {
            empty_run += 1;
            if empty_run as f64 * ms_per_col > GAP_MS && !current.is_empty() {
                runs.push(std::mem::take(&mut current));
            }
            continue;
        }
        empty_run = 0;
        match pick(c) {
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
        // thick, so a steady signal still shows as a line.
        for (k, (x, _, top)) in run.iter().enumerate() {
            let _ = write!(d, "{}{:.1} {:.1}", if k == 0 { "M" } else { "L" }, x, top - 0.5);
        }
        for (x, bottom, _) in run.iter().rev() {
            let _ = write!(d, "L{:.1} {:.1}", x, bottom + 0.5);
        }
        d.push('Z');
    }
    d
}

/// The rep signal's range: the 1st percentile of the columns' lows to the
/// 99th of their highs (getting up swings it far beyond any rep), padded.
fn seesaw_range(columns: &[Bucket]) -> (f64, f64) {
    let mut lows: Vec<f32> = columns.iter().filter_map(|c| c.seesaw.map(|s| s.0)).collect();
    let mut highs: Vec<f32> = columns.iter().filter_map(|c| c.seesaw.map(|s| s.1)).collect();
    if lows.is_empty() {
        return (-1.0, 1.0);
    }
    lows.sort_by(f32::total_cmp);
    highs.sort_by(f32::total_cmp);
    let lo = lows[lows.len() / 100] as f64;
    let hi = highs[highs.len() - 1 - highs.len() / 100] as f64;
    let pad = ((hi - lo) * 0.1).max(0.05);
    ((lo - pad).max(-1.0), (hi + pad).min(1.0))
}

/// The whole picture.
pub fn build(s: &Session) -> String {
    let w = WIDTH;
    let h = s.height();
    let right = X0 + PLOT_W as f64;
    let mut o = String::with_capacity(64 * 1024);
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{w}" height="{h}" fill="white"/>"#);

    // Title and summary.
    let all_reps: Vec<&RepEvent> = reps(&s.events).collect();
    let perfect = all_reps.iter().filter(|r| r.perfect).count();
    let arches = arch_spans(&s.events, s.t1_ms);
    let n_sets = sets(&s.events).count();
    let _ = writeln!(
        o,
        r#"<text x="{X0}" y="22" font-size="16" font-weight="bold">{}</text>"#,
        esc(&s.title)
    );
    let _ = writeln!(
        o,
        r#"<text x="{right}" y="22" text-anchor="end" class="summary">{} · {n_sets} set{} · {} reps, {perfect} perfect · {} arch{}</text>"#,
        clock(s.t1_ms.saturating_sub(s.t0_ms)),
        if n_sets == 1 { "" } else { "s" },
        all_reps.len(),
        arches.len(),
        if arches.len() == 1 { "" } else { "es" },
    );

    // Arches, shaded across the lanes.
    let lanes_bottom = HEAT_Y + s.heat_h();
    let _ = writeln!(o, r#"<g class="arches" fill="{ARCH_FILL}" fill-opacity="0.18">"#);
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
        (SEESAW_Y, SEESAW_H, "rep signal"),
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
        band(s, |c| c.contact, cy)
    );

    // Rep signal lane, scaled to the session's range, and the reps.
    let (lo, hi) = seesaw_range(&s.columns);
    let sy = |v: f64| SEESAW_Y + (hi - v.clamp(lo, hi)) / (hi - lo) * SEESAW_H;
    for (y, label) in [(SEESAW_Y + 10.0, "legs up"), (SEESAW_Y + SEESAW_H - 2.0, "down")] {
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{y:.1}" text-anchor="end" font-size="10" fill="#666666">{label}</text>"##,
            X0 - 4.0,
        );
    }
    let _ = writeln!(
        o,
        r#"<path class="seesaw" d="{}" fill="{SEESAW_COLOR}" fill-opacity="0.55" stroke="{SEESAW_COLOR}" stroke-width="0.8"/>"#,
        band(s, |c| c.seesaw, sy)
    );
    o.push_str("<g class=\"reps\">\n");
    for r in &all_reps {
        let x = s.x(r.t_ms);
        let (class, color) = if r.perfect {
            ("rep perfect", PERFECT_COLOR)
        } else {
            ("rep", FLAWED_COLOR)
        };
        let verdict = if r.perfect {
            "perfect".to_string()
        } else {
            r.flaws().join(", ")
        };
        let _ = writeln!(
            o,
            r#"<g class="{class}" data-set="{}" data-rep="{}"><title>set {} rep {}: {verdict}, descent {:.1} s</title><line x1="{x:.1}" x2="{x:.1}" y1="{SEESAW_Y}" y2="{:.1}" stroke="{color}" stroke-opacity="0.4"/><circle cx="{x:.1}" cy="{:.1}" r="4.5" fill="{color}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="9" fill="{color}">{}</text></g>"#,
            r.set,
            r.rep,
            r.set,
            r.rep,
            r.descent_ms as f64 / 1000.0,
            SEESAW_Y + SEESAW_H,
            SEESAW_Y + SEESAW_H - 6.0,
            SEESAW_Y + SEESAW_H + 12.0,
            r.rep
        );
    }
    o.push_str("</g>\n");

    // Sets: a bracket over each set's reps, a line where it ended.
    o.push_str("<g class=\"sets\">\n");
    let mut set_start: Option<u64> = None;
    for e in &s.events {
        match e {
            Event::Rep(r) => {
                // A rep's event comes at its end; it began about one descent
                // and one ascent earlier.
                let began = r
                    .t_ms
                    .saturating_sub(r.descent_ms + r.ascent_ms.unwrap_or(r.descent_ms / 2));
                set_start.get_or_insert(began);
            }
            Event::Set(set) => {
                let start = set_start.take().unwrap_or(set.t_ms);
                let (x0, x1) = (s.x(start), s.x(set.t_ms));
                let _ = writeln!(
                    o,
                    r##"<g class="set"><path d="M{x0:.1} {:.1}V{SETS_Y}H{x1:.1}V{:.1}" fill="none" stroke="#333333"/><line x1="{x1:.1}" x2="{x1:.1}" y1="{CONTACT_Y}" y2="{:.1}" stroke="#333333" stroke-dasharray="2 3"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">set {}: {} reps, {} perfect, {} arch{}</text></g>"##,
                    SETS_Y + 6.0,
                    SETS_Y + 6.0,
                    lanes_bottom,
                    (x0 + x1) / 2.0,
                    SETS_Y - 4.0,
                    set.set,
                    set.reps,
                    set.perfect,
                    set.arches,
                    if set.arches == 1 { "" } else { "es" }
                );
            }
            _ => {}
        }
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
    o.push_str("</svg>\n");
    o
}

/// One strip per taxel: each column's mean reading, in 9 levels scaled to
/// the session's highest (of the taxels the detector never found faulty: a
/// taxel stuck at full scale would wash the others out), drawn as one path
/// per level of merged runs. Faults found are marked where they were found.
fn heatmap(s: &Session, o: &mut String) {
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
    let scaled: Vec<usize> = (0..taxels).filter(|i| !faults.iter().any(|f| f.1 == *i)).collect();
    let scaled = if scaled.is_empty() {
        (0..taxels).collect()
    } else {
        scaled
    };
    let top = s
        .columns
        .iter()
        .flat_map(|c| scaled.iter().map(move |&i| c.load(i)))
        .fold(0.0f32, f32::max)
        .max(1e-6);
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
    use crate::event::ArchEvent;

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

    fn session(columns: Vec<Bucket>, events: Vec<Event>) -> Session {
        Session {
            title: "test <recording>".into(),
            grid: Grid::new(2, 2),
            t0_ms: 0,
            t1_ms: 60_000,
            columns,
            events,
            arch_threshold: 0.6,
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
        let arch = |t_ms, phase| {
            Event::Arch(ArchEvent {
                t_ms,
                phase,
                onset_ms: (phase == Phase::Start).then_some(t_ms - 100),
                contact: None,
                duration_ms: None,
                min_contact: None,
            })
        };
        let events = vec![
            arch(6_000, Phase::Start),
            arch(12_000, Phase::End),
            arch(54_000, Phase::Start),
        ];
        assert_eq!(arch_spans(&events, 60_000), vec![(5_900, 12_000), (53_900, 60_000)]);
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
        let contact = svg
            .split(r#"class="contact" d=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
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
        let heat = svg
            .split(r#"class="heatmap""#)
            .nth(1)
            .unwrap()
            .split("</g>")
            .next()
            .unwrap();
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

    #[test]
    fn ticks_and_clock() {
        assert_eq!(clock(65_000), "1:05");
        assert_eq!(clock(3_723_000), "1:02:03");
        assert_eq!(tick_step_ms(60_000.0, 12.0), 5000);
        assert_eq!(tick_step_ms(3_600_000.0, 12.0), 300_000);
    }
}
