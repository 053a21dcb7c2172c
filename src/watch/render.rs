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

use crate::dashboard::{BrokerLink, Screen, Status, Tile, Tone};

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
    /// The height of the shortest tile (rows share out the odd lines).
    pub tile_h: u16,
}

impl TileGrid {
    /// Tiles on screen: `first..end`.
    pub fn end(&self, n: usize) -> usize {
        (self.first + self.columns * self.rows).min(n)
    }

    /// Where tile `i` (on screen) goes in `body`: the columns and rows share
    /// the width and height evenly, the odd cells spread among them.
    pub fn rect(&self, body: Rect, i: usize) -> Rect {
        let slot = i.saturating_sub(self.first);
        let (row, col) = (slot / self.columns, slot % self.columns);
        let (w, h) = (body.width as usize, body.height as usize);
        let x0 = (col * w / self.columns) as u16;
        let x1 = ((col + 1) * w / self.columns) as u16;
        let y0 = (row * h / self.rows) as u16;
        let y1 = (((row + 1) * h / self.rows) as u16).min(body.height);
        Rect::new(body.x + x0, body.y + y0, x1 - x0, y1.saturating_sub(y0))
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
    for i in grid.first..grid.end(screen.tiles.len()) {
        draw_tile(
            &screen.tiles[i],
            screen.arch_threshold,
            blink_on,
            grid.rect(body, i),
            buf,
        );
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
        BrokerLink::Connecting => ("  ○ connecting".to_string(), Color::Yellow),
        BrokerLink::Connected => ("  ● connected".to_string(), Color::Green),
        BrokerLink::Lost(why) => (format!("  ○ broker lost: {why}"), Color::Red),
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
    use crate::dashboard::{Counters, Dashboard, LoggedEvent, MatKey};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    /// `n` mats on gateway gym1, each with a state and a perfect rep;
    /// `arching` has an arch in progress, `offline` went offline.
    fn dashboard(n: usize, arching: &str, offline: &str) -> Dashboard {
        let mut d = Dashboard::new("flatback", "mqtt://gym.local:1883", 0.6);
        d.apply("flatback/gym1/status", b"online", 0);
        for k in 1..=n {
            let base = format!("flatback/gym1/mat{k}");
            d.apply(&format!("{base}/status"), b"online", 0);
            let state = format!(
                r#"{{"occupied":true,"arching":false,"contact":{},"set":2,"set_reps":5,"set_perfect":4,"reps":17,"perfect_reps":12,"arches":1,"last_descent_s":3.4}}"#,
                80 + k
            );
            d.apply(&format!("{base}/state"), state.as_bytes(), 0);
            let rep = r#"{"type":"rep","t_ms":9000,"set":2,"rep":5,"perfect":true,"arched":false,"rushed":false,"descent_ms":3400,"bounce":false,"mat":"m","seq":1,"time":"2024-03-05T17:04:09.123Z"}"#;
            d.apply(&format!("{base}/event"), rep.as_bytes(), 1000);
        }
        d.apply(
            &format!("flatback/gym1/{arching}/event"),
            br#"{"type":"arch","t_ms":9500,"phase":"start","onset_ms":9480,"contact":0.31}"#,
            2000,
        );
        d.apply(&format!("flatback/gym1/{offline}/status"), b"offline", 2000);
        d
    }

    fn draw_at(d: &Dashboard, w: u16, h: u16, blink_on: bool) -> (Buffer, TileGrid) {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        let mut grid = None;
        terminal
            .draw(|f| grid = Some(draw(f, &d.screen(3500), blink_on)))
            .unwrap();
        (terminal.backend().buffer().clone(), grid.unwrap())
    }

    fn text(buf: &Buffer, r: Rect) -> String {
        let mut s = String::new();
        for y in r.top()..r.bottom() {
            for x in r.left()..r.right() {
                s.push_str(buf[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    }

    /// Where tile `i` was drawn: below the header, above the footer.
    fn tile_rect(buf: &Buffer, grid: &TileGrid, i: usize) -> Rect {
        let area = buf.area;
        let r = grid.rect(Rect::new(0, 1, area.width, area.height - 2), i);
        assert!(r.width >= MIN_TILE_W && r.height >= grid.tile_h && r.bottom() < area.height);
        r
    }

    fn cells(buf: &Buffer, r: Rect) -> impl Iterator<Item = &ratatui::buffer::Cell> {
        (r.top()..r.bottom()).flat_map(move |y| (r.left()..r.right()).map(move |x| &buf[(x, y)]))
    }

    #[test]
    fn sixteen_mats_on_120_by_40_with_an_arch_and_an_offline_mat() {
        let d = dashboard(16, "mat7", "mat12");
        let (buf, grid) = draw_at(&d, 120, 40, true);
        assert_eq!((grid.columns, grid.rows, grid.first), (4, 4, 0));
        let all = text(&buf, buf.area);
        for k in 1..=16 {
            assert!(all.contains(&format!(" mat{k} ")), "mat{k} is not on screen:\n{all}");
        }
        assert!(all.contains("16 mats") && all.contains("1 ARCHING") && all.contains("1 offline"));
        // The arching tile (7th: row 1, column 2) is red all over, and says so.
        let arch = tile_rect(&buf, &grid, 6);
        let arch_text = text(&buf, arch);
        assert!(
            arch_text.contains(" mat7 ") && arch_text.contains("ARCH 1.5 s"),
            "{arch_text}"
        );
        assert!(arch_text.contains("31%"), "the contact of the arch start: {arch_text}");
        assert!(
            cells(&buf, arch).all(|c| c.bg == Color::Red),
            "every cell of the arching tile is red"
        );
        // Nowhere else.
        let red_elsewhere = (0..16)
            .filter(|&i| i != 6)
            .any(|i| cells(&buf, tile_rect(&buf, &grid, i)).any(|c| c.bg == Color::Red));
        assert!(!red_elsewhere);
        // The offline tile (12th: row 2, column 3) says offline, greyed.
        let off = tile_rect(&buf, &grid, 11);
        let off_text = text(&buf, off);
        assert!(
            off_text.contains(" mat12 ") && off_text.contains("offline"),
            "{off_text}"
        );
        let bright: Vec<(String, Color)> = cells(&buf, off)
            .filter(|c| c.symbol() != " " && c.fg != Color::DarkGray)
            .map(|c| (c.symbol().to_string(), c.fg))
            .collect();
        assert!(bright.is_empty(), "{bright:?}");
        // A live tile: the bar with the threshold mark, its per cent,
        // the counters, the last descent, the last event.
        let live = text(&buf, tile_rect(&buf, &grid, 0));
        for part in [
            "┃",
            "█",
            "81%",
            "set 2  reps 5  perfect 4",
            "descent 3.4 s",
            "rep 5 ✓ 3.4s",
        ] {
            assert!(live.contains(part), "{part:?} missing from\n{live}");
        }
        // The selected tile (the first mat seen) has the thick border.
        assert_eq!(buf[(0, 1)].symbol(), "┏");
        assert!(all.contains("reset mat1's counters"));
    }

    #[test]
    fn the_alarm_blinks_between_red_on_white_and_white_on_red() {
        let d = dashboard(4, "mat2", "mat3");
        let (on, grid) = draw_at(&d, 80, 24, true);
        let (off, _) = draw_at(&d, 80, 24, false);
        let r = tile_rect(&on, &grid, 1);
        // Everything but the threshold mark on the contact bar.
        let not_mark = |c: &&ratatui::buffer::Cell| c.symbol() != "┃";
        assert!(cells(&on, r).all(|c| c.bg == Color::Red));
        assert!(cells(&on, r).filter(not_mark).all(|c| c.fg == Color::White));
        assert!(cells(&off, r).all(|c| c.bg == Color::White));
        assert!(cells(&off, r).filter(not_mark).all(|c| c.fg == Color::Red));
        assert_eq!(cells(&on, r).filter(|c| c.symbol() == "┃").count(), 1);
        assert!(text(&off, r).contains("ARCH"));
    }

    #[test]
    fn four_mats_on_80_by_24() {
        let d = dashboard(4, "mat2", "mat4");
        let (buf, grid) = draw_at(&d, 80, 24, true);
        assert_eq!((grid.columns, grid.rows, grid.tile_h), (2, 2, 11));
        let arch = text(&buf, tile_rect(&buf, &grid, 1));
        assert!(arch.contains(" mat2 ") && arch.contains("!! ARCH 1.5 s !!"), "{arch}");
        assert!(cells(&buf, tile_rect(&buf, &grid, 1)).all(|c| c.bg == Color::Red));
        let off = text(&buf, tile_rect(&buf, &grid, 3));
        assert!(off.contains(" mat4 ") && off.contains("— offline —"), "{off}");
        // Big tiles show the whole log and the totals.
        let live = text(&buf, tile_rect(&buf, &grid, 0));
        assert!(
            live.contains("all 17 reps, 12 perfect") && live.contains("rep 5 ✓ 3.4s"),
            "{live}"
        );
    }

    #[test]
    fn sixteen_mats_on_80_by_24_scroll_to_the_selection() {
        let mut d = dashboard(16, "mat1", "mat16");
        let (buf, grid) = draw_at(&d, 80, 24, true);
        let all = text(&buf, buf.area);
        assert_eq!((grid.columns, grid.rows, grid.first), (3, 3, 0));
        assert!(all.contains("mats 1-9 of 16"), "{all}");
        assert!(all.contains(" mat9 ") && !all.contains(" mat10 "));
        for _ in 0..5 {
            d.select(crate::dashboard::Move::Down, grid.columns);
        }
        let (buf, grid) = draw_at(&d, 80, 24, true);
        let all = text(&buf, buf.area);
        assert_eq!(grid.first, 9);
        assert!(
            all.contains(" mat16 ") && all.contains("offline") && all.contains("mats 10-16 of 16"),
            "{all}"
        );
    }

    #[test]
    fn resizes_cleanly_to_any_size() {
        let d = dashboard(16, "mat3", "mat5");
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
        for (w, h) in [
            (120, 40),
            (80, 24),
            (200, 60),
            (24, 8),
            (23, 5),
            (10, 3),
            (9, 2),
            (1, 1),
            (0, 0),
            (119, 39),
            (120, 40),
        ] {
            terminal.backend_mut().resize(w, h);
            terminal.resize(Rect::new(0, 0, w, h)).unwrap();
            terminal
                .draw(|f| {
                    draw(f, &d.screen(3500), true);
                })
                .unwrap();
            let buf = terminal.backend().buffer();
            assert_eq!((buf.area.width, buf.area.height), (w, h));
            if h >= 3 && w >= 40 {
                assert!(text(buf, buf.area).contains("flatback watch"), "{w}x{h}");
            }
        }
        // Back at 120 x 40, all 16 again.
        let all = text(terminal.backend().buffer(), Rect::new(0, 0, 120, 40));
        assert!((1..=16).all(|k| all.contains(&format!(" mat{k} "))));
    }

    #[test]
    fn waiting_for_mats() {
        let d = Dashboard::new("flatback", "mqtt://gym.local:1883", 0.6);
        let (buf, _) = draw_at(&d, 80, 24, true);
        let all = text(&buf, buf.area);
        assert!(
            all.contains("waiting for mats under flatback/ on mqtt://gym.local:1883"),
            "{all}"
        );
        assert!(all.contains("connecting"));
    }

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
