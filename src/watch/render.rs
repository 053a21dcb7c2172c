//! Draws a [`Screen`] with ratatui: a header, one tile per mat, a footer.
//!
//! The tiles share the screen as a grid: as many columns as keep each tile
//! readable (at least [`MIN_TILE_W`] x [`MIN_TILE_H`]); 16 mats make a 4 x 4
//! grid of 30 x 9 tiles on 120 x 40. When the mats do not fit, the rows
//! scroll to keep the selected tile in view. An arching tile is painted red
//! as a whole and blinks (the caller alternates `blink_on`).

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Widget};
use ratatui::Frame;

use super::model::{Link, Screen, Status, Tile, Tone};

/// The smallest tile that still shows the bar, the counters and an event.
pub const MIN_TILE_W: u16 = 24;
pub const MIN_TILE_H: u16 = 6;

/// How the tiles are laid out on the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileGrid {
    pub columns: usize,
    /// Rows of tiles on screen.
    pub rows: usize,
    /// Index of the first tile on screen (rows above it scrolled away).
    pub first: usize,
    pub tile_h: u16,
}

impl TileGrid {
    /// Tiles on screen: `first..end`.
    pub fn end(&self, n: usize) -> usize {
        (self.first + self.columns * self.rows).min(n)
    }
}

/// The grid for `n` tiles in `area`, scrolled so that `selected` shows.
pub fn tile_grid(n: usize, area: Rect, selected: Option<usize>) -> TileGrid {
    let (w, h) = (area.width.max(1), area.height.max(1));
    let n = n.max(1);
    // Among the column counts where every tile fits, the one whose tiles are
    // the most readable: wide enough for the bar, tall enough for the log
    // (a cell is about twice as tall as it is wide).
    let best = (1..=n)
        .filter_map(|cols| {
            let rows = n.div_ceil(cols);
            let tw = w / cols as u16;
            let th = h / rows as u16;
            (tw >= MIN_TILE_W && th >= MIN_TILE_H).then_some((cols, rows, th, tw.min(3 * th)))
        })
        .max_by_key(|&(cols, _, _, score)| (score, cols));
    match best {
        Some((columns, rows, tile_h, _)) => TileGrid {
            columns,
            rows,
            first: 0,
            tile_h,
        },
        None => {
            let columns = ((w / MIN_TILE_W) as usize).clamp(1, n);
            let rows = ((h / MIN_TILE_H) as usize).max(1);
            let sel_row = selected.unwrap_or(0) / columns;
            let first_row = sel_row.saturating_sub(rows - 1);
            TileGrid {
                columns,
                rows,
                first: first_row * columns,
                tile_h: (h / rows as u16).max(1),
            }
        }
    }
}

/// Draws the screen; returns the tile grid it used (for the arrow keys).
pub fn draw(frame: &mut Frame, screen: &Screen, blink_on: bool) -> TileGrid {
    let area = frame.area();
    render(screen, blink_on, area, frame.buffer_mut())
}

/// Renders into any buffer (what [`draw`] does to the terminal's).
pub fn render(screen: &Screen, blink_on: bool, area: Rect, buf: &mut Buffer) -> TileGrid {
    if area.height < 3 || area.width < 10 {
        Paragraph::new("flatback watch: enlarge the terminal").render(area, buf);
        return tile_grid(0, area, None);
    }
    let header = Rect { height: 1, ..area };
    let footer = Rect {
        y: area.bottom() - 1,
        height: 1,
        ..area
    };
    let body = Rect {
        y: area.y + 1,
        height: area.height - 2,
        ..area
    };
    header_line(screen).render(header, buf);
    let grid = tile_grid(screen.tiles.len(), body, screen.selected());
    footer_line(screen, &grid).render(footer, buf);
    if screen.tiles.is_empty() {
        let text = vec![
            Line::from(""),
            Line::from(format!("waiting for mats under {}/ on {}", screen.base, screen.broker)),
            Line::from("(mats appear as soon as their gateway publishes)").style(Style::new().fg(Color::DarkGray)),
        ];
        Paragraph::new(text).alignment(Alignment::Center).render(body, buf);
        return grid;
    }
    let (w, cols) = (body.width as usize, grid.columns);
    for (slot, i) in (grid.first..grid.end(screen.tiles.len())).enumerate() {
        let (row, col) = (slot / cols, slot % cols);
        let x0 = body.x + (col * w / cols) as u16;
        let x1 = body.x + ((col + 1) * w / cols) as u16;
        let rect = Rect {
            x: x0,
            y: body.y + row as u16 * grid.tile_h,
            width: x1 - x0,
            height: grid.tile_h,
        };
        draw_tile(&screen.tiles[i], screen.arch_threshold, blink_on, rect, buf);
    }
    grid
}

fn header_line(screen: &Screen) -> Line<'static> {
    let n = screen.tiles.len();
    let arching = screen.tiles.iter().filter(|t| t.status == Status::Arching).count();
    let offline = screen.tiles.iter().filter(|t| t.status == Status::Offline).count();
    let mut spans = vec![
        Span::styled("flatback watch ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(" {}  {}/#  ", screen.broker, screen.base)),
        Span::raw(format!("{n} mat{}", if n == 1 { "" } else { "s" })),
    ];
    if arching > 0 {
        spans.push(Span::styled(
            format!("  {arching} ARCHING"),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    if offline > 0 {
        spans.push(Span::styled(
            format!("  {offline} offline"),
            Style::new().fg(Color::DarkGray),
        ));
    }
    let (text, color) = match &screen.link {
        Link::Connecting => ("  ○ connecting".to_string(), Color::Yellow),
        Link::Connected => ("  ● connected".to_string(), Color::Green),
        Link::Lost(why) => (format!("  ○ broker lost: {why}"), Color::Red),
    };
    spans.push(Span::styled(text, Style::new().fg(color)));
    Line::from(spans)
}

fn footer_line(screen: &Screen, grid: &TileGrid) -> Line<'static> {
    let key = Style::new().add_modifier(Modifier::BOLD);
    let mut spans = vec![
        Span::styled("q", key),
        Span::raw(" quit  "),
        Span::styled("←↑↓→", key),
        Span::raw(" select  "),
        Span::styled("r", key),
    ];
    match screen.selected().map(|i| &screen.tiles[i]) {
        Some(t) => spans.push(Span::raw(format!(" reset {}'s counters", t.label))),
        None => spans.push(Span::raw(" reset counters")),
    }
    let n = screen.tiles.len();
    let end = grid.end(n);
    if n > 0 && (grid.first > 0 || end < n) {
        spans.push(Span::styled(
            format!("   mats {}-{end} of {n}", grid.first + 1),
            Style::new().fg(Color::Yellow),
        ));
    }
    if let Some(notice) = &screen.notice {
        spans.push(Span::styled(format!("   {notice}"), Style::new().fg(Color::Cyan)));
    }
    Line::from(spans)
}

/// Colours of a tile, by its status.
struct Palette {
    base: Style,
    border: Style,
    dim: Style,
    /// Per-event colours apply (off for the alarm and offline tiles).
    tones: bool,
}

fn palette(status: Status, selected: bool, blink_on: bool) -> Palette {
    let border_fg = if selected { Color::Cyan } else { Color::Gray };
    match status {
        Status::Arching => {
            // The whole tile flips between red on white and white on red.
            let (fg, bg) = if blink_on {
                (Color::White, Color::Red)
            } else {
                (Color::Red, Color::White)
            };
            let base = Style::new().fg(fg).bg(bg).add_modifier(Modifier::BOLD);
            Palette {
                base,
                border: base,
                dim: base,
                tones: false,
            }
        }
        Status::Offline => {
            let base = Style::new().fg(Color::DarkGray);
            Palette {
                base,
                border: base.fg(if selected { Color::Cyan } else { Color::DarkGray }),
                dim: base,
                tones: false,
            }
        }
        _ => Palette {
            base: Style::new(),
            border: Style::new().fg(border_fg),
            dim: Style::new().fg(Color::DarkGray),
            tones: true,
        },
    }
}

fn draw_tile(tile: &Tile, threshold: f64, blink_on: bool, rect: Rect, buf: &mut Buffer) {
    let p = palette(tile.status, tile.selected, blink_on);
    let tag = match tile.status {
        Status::Arching => " ARCH ",
        Status::Offline => " offline ",
        Status::Empty => " empty ",
        Status::Occupied | Status::Unknown => "",
    };
    let mut block = Block::bordered()
        .border_type(if tile.selected {
            BorderType::Thick
        } else {
            BorderType::Rounded
        })
        .border_style(p.border)
        .style(p.base)
        .title(Line::from(format!(" {} ", tile.label)).style(p.border.add_modifier(Modifier::BOLD)));
    if !tag.is_empty() {
        block = block.title(Line::from(tag).right_aligned());
    }
    let inner = block.inner(rect);
    block.render(rect, buf);
    let width = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    match tile.status {
        Status::Arching => {
            let secs = tile
                .arch_ms
                .map(|ms| format!(" {:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default();
            lines.push(Line::from(format!("!! ARCH{secs} !!")).alignment(Alignment::Center));
        }
        Status::Offline => lines.push(Line::from("— offline —").alignment(Alignment::Center)),
        _ => {}
    }
    lines.push(contact_bar(tile, threshold, width, &p));
    let c = &tile.counters;
    lines.push(Line::from(format!(
        "set {}  reps {}  perfect {}",
        c.set, c.set_reps, c.set_perfect
    )));
    let mut descent = vec![Span::raw(match tile.last_descent_s {
        Some(d) => format!("descent {d:.1} s"),
        None => "descent -".to_string(),
    })];
    if tile.last_rushed && tile.last_descent_s.is_some() {
        let style = if p.tones { Style::new().fg(Color::Red) } else { p.base };
        descent.push(Span::styled(" rushed", style));
    }
    lines.push(Line::from(descent));
    lines.push(Line::from(Span::styled(
        format!("all {} reps, {} perfect", c.reps, c.perfect_reps),
        p.dim,
    )));
    for (age, e) in &tile.events {
        let style = match (p.tones, e.tone) {
            (false, _) => p.base,
            (true, Tone::Good) => Style::new().fg(Color::Green),
            (true, Tone::Bad) => Style::new().fg(Color::Red),
            (true, Tone::Warn) => Style::new().fg(Color::Yellow),
            (true, Tone::Info) => Style::new(),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:>4} ", age_text(*age)), p.dim),
            Span::styled(e.text.clone(), style),
        ]));
    }
    lines.truncate(inner.height as usize);
    Paragraph::new(lines).render(inner, buf);
}

/// `12s`, `5m`, `2h`: how long ago.
fn age_text(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

/// The contact bar: filled up to the contact (a share of the reference,
/// full width = pressed flat), the arch threshold marked, the per cent.
fn contact_bar(tile: &Tile, threshold: f64, width: usize, p: &Palette) -> Line<'static> {
    let Some(contact) = tile.contact else {
        let text = match tile.status {
            Status::Empty => "nobody on the mat",
            Status::Offline => "",
            _ => "contact -",
        };
        return Line::from(Span::styled(text, p.dim));
    };
    let label = format!(" {:>4}", format!("{:.0}%", contact * 100.0));
    let bar_w = width.saturating_sub(label.chars().count()).max(1);
    let mark = ((threshold * bar_w as f64) as usize).min(bar_w - 1);
    let fill_color = if contact < threshold {
        Color::Red
    } else if contact < threshold + 0.15 {
        Color::Yellow
    } else {
        Color::Green
    };
    let fill = if p.tones { Style::new().fg(fill_color) } else { p.base };
    let marker = if p.tones {
        Style::new().fg(Color::White).add_modifier(Modifier::BOLD)
    } else {
        p.base.fg(Color::Yellow)
    };
    let mut spans = Vec::with_capacity(bar_w + 1);
    for i in 0..bar_w {
        let filled = contact >= (i as f64 + 0.5) / bar_w as f64;
        spans.push(if i == mark {
            Span::styled("┃", marker)
        } else if filled {
            Span::styled("█", fill)
        } else {
            Span::styled("░", p.dim)
        });
    }
    spans.push(Span::styled(label, p.base.add_modifier(Modifier::BOLD)));
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::model::{Counters, LoggedEvent, MatKey};

    fn rect(w: u16, h: u16) -> Rect {
        Rect::new(0, 0, w, h)
    }

    #[test]
    fn sixteen_mats_make_four_by_four_on_120_by_40() {
        let g = tile_grid(16, rect(120, 38), None);
        assert_eq!((g.columns, g.rows, g.first, g.tile_h), (4, 4, 0, 9));
        assert_eq!(g.end(16), 16);
    }

    #[test]
    fn few_mats_get_big_tiles() {
        let g = tile_grid(4, rect(80, 22), None);
        assert_eq!((g.columns, g.rows, g.tile_h), (2, 2, 11));
        let g = tile_grid(2, rect(80, 22), None);
        assert_eq!((g.columns, g.rows), (2, 1));
        let g = tile_grid(1, rect(80, 22), None);
        assert_eq!((g.columns, g.rows, g.tile_h), (1, 1, 22));
    }

    #[test]
    fn too_many_mats_scroll_to_the_selected_one() {
        let g = tile_grid(16, rect(80, 22), Some(0));
        assert_eq!((g.columns, g.rows, g.first), (3, 3, 0));
        assert_eq!(g.end(16), 9);
        let g = tile_grid(16, rect(80, 22), Some(15));
        assert_eq!((g.first, g.end(16)), (9, 16));
        assert!((g.first..g.end(16)).contains(&15));
    }

    #[test]
    fn bar_fills_to_the_contact_and_marks_the_threshold() {
        let tile = Tile {
            key: MatKey::new("g", "m"),
            label: "m".into(),
            status: Status::Occupied,
            selected: false,
            contact: Some(0.5),
            arch_ms: None,
            counters: Counters::default(),
            last_descent_s: None,
            last_rushed: false,
            events: vec![(
                1500,
                LoggedEvent {
                    at_ms: 0,
                    text: "x".into(),
                    tone: Tone::Good,
                },
            )],
        };
        let p = palette(Status::Occupied, false, true);
        let line = contact_bar(&tile, 0.6, 25, &p);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        // 20 cells of bar + " 50%" right-aligned in 5.
        assert_eq!(
            text,
            format!("{}{}┃{}  50%", "█".repeat(10), "░".repeat(2), "░".repeat(7))
        );
        assert_eq!(line.spans[0].style.fg, Some(Color::Red), "below the threshold: red");
        assert_eq!(age_text(1500), "1s");
        assert_eq!(age_text(125_000), "2m");
        assert_eq!(age_text(7_300_000), "2h");
    }
}
