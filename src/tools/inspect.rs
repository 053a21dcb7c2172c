//! `flatback check`: a live look at the mat. A heatmap of the counts per
//! taxel, the sampler's rate and jitter, and flags on channels that look
//! broken. The judging ([`ChannelWatch`]) and drawing ([`render`]) are pure;
//! [`run`] is the loop around them.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::contract::frame::{Frame, FrameSource, Grid};
use crate::sampler::{FrameReceiver, Sampler, SamplerStats};

/// Frames a channel is watched before it is judged.
pub const MIN_FRAMES: u64 = 50;

/// What a channel looks like so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelHealth {
    /// Not judged yet, or nothing wrong.
    Ok,
    /// Always near 0: an open wire, a missing divider, or simply unloaded.
    Dead,
    /// Always near full scale: a short, or the divider's resistor missing.
    StuckHigh,
    /// The same count every frame, away from the ends: a real input always
    /// shows a count or two of noise, so a frozen one is not being converted
    /// (floating input, chip not answering the way it should).
    Frozen,
}

impl ChannelHealth {
    pub fn describe(self) -> &'static str {
        match self {
            ChannelHealth::Ok => "ok",
            ChannelHealth::Dead => "dead: ~0 all along (open wire, or nothing presses it)",
            ChannelHealth::StuckHigh => "stuck at full scale (short, or its 10k resistor missing)",
            ChannelHealth::Frozen => "never changes (floating input or a chip not converting)",
        }
    }

    fn mark(self) -> char {
        match self {
            ChannelHealth::Ok => ' ',
            ChannelHealth::Dead => 'D',
            ChannelHealth::StuckHigh => 'S',
            ChannelHealth::Frozen => 'F',
        }
    }
}

/// Per-channel extremes since the start, to judge dead and stuck channels.
#[derive(Debug, Clone)]
pub struct ChannelWatch {
    full_scale: u16,
    min: Vec<u16>,
    max: Vec<u16>,
    frames: u64,
}

impl ChannelWatch {
    pub fn new(taxels: usize, full_scale: u16) -> Self {
        ChannelWatch {
            full_scale,
            min: vec![u16::MAX; taxels],
            max: vec![0; taxels],
            frames: 0,
        }
    }

    pub fn push(&mut self, counts: &[u16]) {
        for ((lo, hi), &c) in self.min.iter_mut().zip(&mut self.max).zip(counts) {
            *lo = (*lo).min(c);
            *hi = (*hi).max(c);
        }
        self.frames += 1;
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// 1 % of full scale: ~10 counts on 10 bits, ~41 on 12.
    fn margin(&self) -> u16 {
        (self.full_scale / 100).max(2)
    }

    pub fn health(&self, taxel: usize) -> ChannelHealth {
        if self.frames < MIN_FRAMES {
            return ChannelHealth::Ok;
        }
        let (lo, hi) = (self.min[taxel], self.max[taxel]);
        if hi <= self.margin() {
            ChannelHealth::Dead
        } else if lo >= self.full_scale - self.margin() {
            ChannelHealth::StuckHigh
        } else if lo == hi {
            ChannelHealth::Frozen
        } else {
            ChannelHealth::Ok
        }
    }
}

/// An ANSI 256-colour background for `level` (0..=1): dark blue through
/// cyan, green and yellow to red.
pub fn colour(level: f64) -> u8 {
    const RAMP: [u8; 20] = [
        17, 18, 19, 20, 21, 27, 33, 39, 45, 51, 50, 48, 46, 82, 118, 154, 190, 220, 208, 196,
    ];
    let i = (level.clamp(0.0, 1.0) * (RAMP.len() - 1) as f64).round() as usize;
    RAMP[i]
}

/// One screen: the heatmap of `counts`, the sampler's figures, the flags.
pub fn render(
    title: &str,
    grid: Grid,
    counts: &[u16],
    watch: &ChannelWatch,
    stats: &SamplerStats,
    ansi: bool,
) -> String {
    let mut out = String::new();
    out.push_str(title);
    out.push('\n');
    out.push_str("     ");
    for c in 0..grid.cols {
        out.push_str(&format!("{:>7}", format!("c{c}")));
    }
    out.push('\n');
    let full = f64::from(watch.full_scale);
    for r in 0..grid.rows {
        out.push_str(&format!("{:<5}", format!("r{r}")));
        for c in 0..grid.cols {
            let i = grid.index(r, c);
            let count = counts.get(i).copied().unwrap_or(0);
            let mark = watch.health(i).mark();
            let cell = format!("{count:>5}{mark} ");
            if ansi {
                let bg = colour(f64::from(count) / full);
                // Black text on the light half of the ramp.
                let fg = if bg >= 46 && bg != 196 { 16 } else { 231 };
                out.push_str(&format!(" \x1b[48;5;{bg}m\x1b[38;5;{fg}m{cell}\x1b[0m"));
            } else {
                out.push_str(&format!(" {cell}"));
            }
        }
        out.push('\n');
    }
    out.push_str(&stats.summary());
    out.push('\n');
    let flags: Vec<String> = (0..grid.len())
        .filter(|&i| watch.health(i) != ChannelHealth::Ok)
        .map(|i| {
            let (r, c) = grid.position(i);
            format!("  r{r}c{c} [{}] {}", watch.health(i).mark(), watch.health(i).describe())
        })
        .collect();
    if watch.frames() < MIN_FRAMES {
        out.push_str("channels: watching...\n");
    } else if flags.is_empty() {
        out.push_str(&format!(
            "channels: all {} move and none is stuck ({} frames)\n",
            grid.len(),
            watch.frames()
        ));
    } else {
        out.push_str(&format!("channels to look at ({} frames):\n", watch.frames()));
        for f in flags {
            out.push_str(&f);
            out.push('\n');
        }
    }
    out
}

/// How `run` shows the mat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Display {
    /// Redraw in place, colour, until interrupted (a terminal).
    Live,
    /// A text snapshot every second for `seconds`, then exit.
    Snapshots { seconds: f64 },
}

/// Reads frames from `rx` and shows them until done; returns the final
/// sampler statistics.
pub fn run(title: &str, sampler: Sampler, mut rx: FrameReceiver, display: Display) -> anyhow::Result<SamplerStats> {
    let grid = rx.grid();
    let mut watch = ChannelWatch::new(grid.len(), rx.full_scale());
    let mut frame = Frame::zeroed(grid);
    let start = Instant::now();
    let (every, end) = match display {
        Display::Live => (Duration::from_millis(200), None),
        Display::Snapshots { seconds } => (Duration::from_secs(1), Some(Duration::from_secs_f64(seconds.max(0.0)))),
    };
    let mut next_draw = start + every;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if display == Display::Live {
        // Clear once; later frames redraw from the top-left corner.
        write!(out, "\x1b[2J")?;
    }
    loop {
        if !rx.next_into(&mut frame)? {
            break;
        }
        watch.push(&frame.counts);
        let now = Instant::now();
        if now >= next_draw {
            next_draw += every;
            let stats = sampler.stats();
            let screen = render(title, grid, &frame.counts, &watch, &stats, display == Display::Live);
            match display {
                Display::Live => write!(out, "\x1b[H{}\x1b[J", screen)?,
                Display::Snapshots { .. } => writeln!(out, "t = {:.1} s\n{screen}", (now - start).as_secs_f64())?,
            }
            out.flush()?;
        }
        if end.is_some_and(|e| now - start >= e) {
            break;
        }
    }
    Ok(sampler.stop())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_stuck_and_frozen_channels_are_told_apart() {
        let mut w = ChannelWatch::new(4, 1023);
        for k in 0..MIN_FRAMES as u16 {
            assert_eq!(w.health(0), ChannelHealth::Ok, "not judged before {MIN_FRAMES} frames");
            // live, dead (noise of a few counts), stuck high, frozen mid-scale.
            w.push(&[300 + k % 7, k % 3, 1023 - k % 2, 512]);
        }
        assert_eq!(w.health(0), ChannelHealth::Ok);
        assert_eq!(w.health(1), ChannelHealth::Dead);
        assert_eq!(w.health(2), ChannelHealth::StuckHigh);
        assert_eq!(w.health(3), ChannelHealth::Frozen);
        // A press brings the dead one to life.
        w.push(&[300, 400, 1023, 513]);
        assert_eq!((w.health(1), w.health(3)), (ChannelHealth::Ok, ChannelHealth::Ok));
    }

    #[test]
    fn the_screen_shows_counts_flags_and_figures() {
        let grid = Grid::new(2, 2);
        let mut w = ChannelWatch::new(4, 4095);
        for k in 0..60 {
            w.push(&[0, 2000 + k, 4095, 1000 + k]);
        }
        let stats = SamplerStats {
            rate_hz: 199.9,
            target_hz: Some(200.0),
            ..SamplerStats::default()
        };
        let text = render("mat", grid, &[0, 2059, 4095, 1059], &w, &stats, false);
        assert!(text.contains("r0"));
        assert!(text.contains(" 2059 "), "{text}");
        assert!(text.contains("    0D"), "{text}");
        assert!(text.contains(" 4095S"), "{text}");
        assert!(text.contains("199.9 frames/s (target 200)"), "{text}");
        assert!(text.contains("r0c0 [D] dead"), "{text}");
        assert!(text.contains("r1c0 [S] stuck at full scale"), "{text}");
        assert!(!text.contains('\x1b'), "no escapes without a terminal");
        let coloured = render("mat", grid, &[0, 2059, 4095, 1059], &w, &stats, true);
        assert!(coloured.contains("\x1b[48;5;196m"), "full scale is red");
        assert!(coloured.contains("\x1b[48;5;17m"), "zero is dark blue");
    }

    #[test]
    fn the_colour_ramp_rises_from_blue_to_red() {
        assert_eq!(colour(0.0), 17);
        assert_eq!(colour(1.0), 196);
        assert_eq!(colour(2.0), 196);
        assert_ne!(colour(0.5), colour(0.0));
    }
}
