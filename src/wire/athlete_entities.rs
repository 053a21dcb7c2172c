//! Athletes as Home Assistant sees them (pure): the options of a mat's
//! athlete select, and the figures an athlete's sensors show.
//!
//! The select's options are display names, the one place names go on the
//! broker besides the athletes' own devices: Home Assistant shows them, and
//! sends the chosen option's text back to the mat's command topic
//! (`{"command":"athlete","name":OPTION}`), which the gateway turns into the
//! id. Events and states carry ids only.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::history::figures::{AthleteFigures, Floor};
use crate::history::RosterEntry;

/// The select's option for nobody named: a guest.
pub const GUEST: &str = "Guest";

/// One option of the athlete select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthleteOption {
    /// What Home Assistant shows and sends back.
    pub label: String,
    /// `None`: a guest.
    pub id: Option<String>,
}

/// "Guest", then the roster's display names in roster order. A name two
/// athletes share, or one that reads "Guest", gets its id in brackets, so
/// that every option names one athlete.
pub fn options(roster: &[RosterEntry]) -> Vec<AthleteOption> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for e in roster {
        *count.entry(e.name.trim()).or_default() += 1;
    }
    let mut out = vec![AthleteOption {
        label: GUEST.into(),
        id: None,
    }];
    out.extend(roster.iter().map(|e| {
        let name = e.name.trim();
        let label = if count[name] > 1 || name.eq_ignore_ascii_case(GUEST) || name.is_empty() {
            format!("{name} ({})", e.id)
        } else {
            name.to_string()
        };
        AthleteOption {
            label,
            id: Some(e.id.clone()),
        }
    }));
    out
}

/// What an athlete's Home Assistant sensors show, published retained as
/// JSON on the athlete's state topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AthleteSensors {
    /// Perfect reps in the last session (0 before any).
    pub last_session_perfect: u32,
    /// Perfect reps of the best set ever (the personal record).
    pub best_set: u32,
    pub sessions_this_week: u32,
    /// Where in the descent the back lifted in the last session that had
    /// reps, per cent of the way down (100: reached the bottom flat); `null`
    /// before any rep.
    pub floor_pct: Option<f64>,
    /// Ready to add load: a whole set at the athlete's load of now, since
    /// it last changed, with enough slow perfect reps.
    pub ready: bool,
}

impl AthleteSensors {
    pub fn of(f: &AthleteFigures) -> AthleteSensors {
        let floor = f.sessions.iter().rev().find_map(|s| s.floor);
        AthleteSensors {
            last_session_perfect: f.last_session().map_or(0, |s| s.perfect),
            best_set: f.record.as_ref().map_or(0, |r| r.perfect),
            sessions_this_week: f.sessions_this_week,
            floor_pct: floor.map(|fl| match fl {
                Floor::Flat => 100.0,
                Floor::Lifted(depth) => (depth * 1000.0).round() / 10.0,
            }),
            ready: f.ready.is_some(),
        }
    }
}

/// What the publisher is told of the athletes: the roster (for the selects)
/// and, with `[athletes] home_assistant`, each athlete's sensors by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AthletesView {
    pub roster: Vec<RosterEntry>,
    /// Each athlete a Home Assistant device.
    pub devices: bool,
    pub sensors: BTreeMap<String, AthleteSensors>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, name: &str) -> RosterEntry {
        RosterEntry {
            id: id.into(),
            name: name.into(),
        }
    }

    #[test]
    fn every_option_names_one_athlete() {
        let roster = [
            entry("a-1", "Ana"),
            entry("a-2", "Bo"),
            entry("a-3", "Bo"),
            entry("a-4", "guest"),
        ];
        let o = options(&roster);
        let labels: Vec<&str> = o.iter().map(|o| o.label.as_str()).collect();
        assert_eq!(labels, ["Guest", "Ana", "Bo (a-2)", "Bo (a-3)", "guest (a-4)"]);
        assert_eq!(o[0].id, None);
        assert_eq!(o[3].id.as_deref(), Some("a-3"));
        assert_eq!(options(&[]).len(), 1, "Guest only");
    }
}
