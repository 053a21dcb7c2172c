//! The floor's wording: how an event reads in a tile's log (a few words
//! and a tone) and in `flatback watch --plain` (its type and key fields).
//! The model ([`super::Dashboard`]) calls it; it keeps no state.

use crate::contract::event::{Event, Phase};

use super::Tone;

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// A few words for a tile's event log.
pub fn short_text(e: &Event) -> String {
    match e {
        Event::Session {
            phase: Phase::Start, ..
        } => "on the mat".into(),
        Event::Session { phase: Phase::End, .. } => "got up".into(),
        Event::Arch(a) => match a.phase {
            Phase::Start => match a.contact {
                Some(c) => format!("ARCH {:.0}%", c * 100.0),
                None => "ARCH".into(),
            },
            Phase::End => format!("arch over {}", secs(a.duration_ms.unwrap_or(0))),
        },
        Event::Rep(r) => {
            let mark = if r.perfect {
                "✓".to_string()
            } else {
                format!("✗ {}", r.flaws().join(","))
            };
            format!("rep {} {} {}", r.rep, mark.trim_end(), secs(r.descent_ms))
        }
        Event::Set(s) => format!("set {}: {} reps, {} ✓", s.set, s.reps, s.perfect),
        Event::Progress { set, .. } => format!("set {set}: add load!"),
        Event::Health {
            row, col, fault, ok, ..
        } => {
            if *ok {
                format!("taxel r{row}c{col} ok")
            } else {
                format!("taxel r{row}c{col} {}", fault_name(*fault))
            }
        }
    }
}

fn fault_name(f: crate::contract::event::TaxelFault) -> &'static str {
    match f {
        crate::contract::event::TaxelFault::StuckLow => "stuck_low",
        crate::contract::event::TaxelFault::StuckHigh => "stuck_high",
        crate::contract::event::TaxelFault::Glitchy => "glitchy",
    }
}

pub(super) fn tone(e: &Event) -> Tone {
    match e {
        Event::Arch(a) if a.phase == Phase::Start => Tone::Bad,
        Event::Arch(_) => Tone::Good,
        Event::Rep(r) if r.perfect => Tone::Good,
        Event::Rep(_) => Tone::Bad,
        Event::Health { ok: false, .. } => Tone::Warn,
        _ => Tone::Info,
    }
}

/// The event's type and key fields, `key=value`, for the plain output.
pub fn plain_fields(e: &Event) -> String {
    match e {
        Event::Session { phase, t_ms } => format!("session {} t_ms={t_ms}", phase_name(*phase)),
        Event::Arch(a) => match a.phase {
            Phase::Start => format!(
                "arch start contact={} onset_ms={} t_ms={}",
                opt(a.contact),
                opt(a.onset_ms),
                a.t_ms
            ),
            Phase::End => format!(
                "arch end duration_ms={} min_contact={} t_ms={}",
                opt(a.duration_ms),
                opt(a.min_contact),
                a.t_ms
            ),
        },
        Event::Rep(r) => format!(
            "rep set={} rep={} perfect={} arched={} rushed={} bounce={} descent_ms={} t_ms={}",
            r.set, r.rep, r.perfect, r.arched, r.rushed, r.bounce, r.descent_ms, r.t_ms
        ),
        Event::Set(s) => format!(
            "set set={} reps={} perfect={} arches={} t_ms={}",
            s.set, s.reps, s.perfect, s.arches, s.t_ms
        ),
        Event::Progress {
            set,
            perfect,
            min_descent_ms,
            t_ms,
        } => format!("progress set={set} perfect={perfect} min_descent_ms={min_descent_ms} t_ms={t_ms}"),
        Event::Health {
            row,
            col,
            fault,
            ok,
            t_ms,
        } => format!(
            "health taxel=r{row}c{col} fault={} ok={ok} t_ms={t_ms}",
            fault_name(*fault)
        ),
    }
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Start => "start",
        Phase::End => "end",
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}
