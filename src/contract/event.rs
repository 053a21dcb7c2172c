//! The events of `shared/docs/contract.md` section 4.
//!
//! These are the JSON lines of `flatback replay` and the payloads the daemon
//! publishes. Field names are the contract's; add fields, never rename.

use serde::{Deserialize, Serialize};

/// One detector event. `t_ms` is the recording-clock time (`t_us / 1000`) of
/// the frame that made the detector emit it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    Session {
        t_ms: u64,
        phase: Phase,
    },
    Arch(ArchEvent),
    Rep(RepEvent),
    Set(SetEvent),
    /// A set held enough slow perfect reps: ready to add load.
    Progress {
        t_ms: u64,
        set: u32,
        perfect: u32,
        min_descent_ms: u64,
    },
    /// A taxel was found faulty (or recovered) and is left out.
    Health {
        t_ms: u64,
        row: usize,
        col: usize,
        fault: TaxelFault,
        ok: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Start,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxelFault {
    StuckLow,
    StuckHigh,
    Glitchy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchEvent {
    pub t_ms: u64,
    pub phase: Phase,
    /// start: estimated moment contact was lost.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub onset_ms: Option<u64>,
    /// start: lumbar contact as a fraction of the person's reference.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub contact: Option<f64>,
    /// end: how long contact was lost.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duration_ms: Option<u64>,
    /// end: the lowest contact during the arch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub min_contact: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepEvent {
    pub t_ms: u64,
    /// Set number within the session, from 1.
    pub set: u32,
    /// Rep number within the set, from 1.
    pub rep: u32,
    pub perfect: bool,
    pub arched: bool,
    pub rushed: bool,
    pub descent_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ascent_ms: Option<u64>,
    pub bounce: bool,
    /// How far down the descent the back lifted: 0 at the top, 1 at the
    /// bottom. Absent when the back stayed down.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub depth: Option<f64>,
}

impl RepEvent {
    /// Why the rep was not perfect, in the fields' words (none when it was).
    pub fn flaws(&self) -> Vec<&'static str> {
        [
            (self.arched, "arched"),
            (self.rushed, "rushed"),
            (self.bounce, "bounce"),
        ]
        .into_iter()
        .filter_map(|(flag, word)| flag.then_some(word))
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetEvent {
    pub t_ms: u64,
    pub set: u32,
    pub reps: u32,
    pub perfect: u32,
    pub arches: u32,
}

impl Event {
    pub fn t_ms(&self) -> u64 {
        match self {
            Event::Session { t_ms, .. } | Event::Progress { t_ms, .. } | Event::Health { t_ms, .. } => *t_ms,
            Event::Arch(e) => e.t_ms,
            Event::Rep(e) => e.t_ms,
            Event::Set(e) => e.t_ms,
        }
    }

    /// The contract's `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Session { .. } => "session",
            Event::Arch(_) => "arch",
            Event::Rep(_) => "rep",
            Event::Set(_) => "set",
            Event::Progress { .. } => "progress",
            Event::Health { .. } => "health",
        }
    }

    /// One JSON line (no trailing newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events serialise")
    }
}

#[cfg(test)]
impl Event {
    /// Rep `rep` of set `set` at `rep` seconds: the one the unit tests use.
    pub(crate) fn test_rep(set: u32, rep: u32, perfect: bool, descent_ms: u64) -> Event {
        Event::Rep(RepEvent {
            t_ms: 1000 * u64::from(rep),
            set,
            rep,
            perfect,
            arched: !perfect,
            rushed: false,
            descent_ms,
            ascent_ms: Some(1000),
            bounce: false,
            depth: None,
        })
    }

    /// An arch's start (its onset 100 ms before) or end at `t_ms`.
    pub(crate) fn test_arch(t_ms: u64, phase: Phase) -> Event {
        Event::Arch(ArchEvent {
            t_ms,
            phase,
            onset_ms: (phase == Phase::Start).then_some(t_ms - 100),
            contact: None,
            duration_ms: None,
            min_contact: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_start_has_contract_fields() {
        let e = Event::Arch(ArchEvent {
            t_ms: 1200,
            phase: Phase::Start,
            onset_ms: Some(1180),
            contact: Some(0.42),
            duration_ms: None,
            min_contact: None,
        });
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["type"], "arch");
        assert_eq!(v["phase"], "start");
        assert_eq!(v["t_ms"], 1200);
        assert_eq!(v["onset_ms"], 1180);
        assert!(v.get("duration_ms").is_none());
    }

    #[test]
    fn events_round_trip() {
        let e = Event::Rep(RepEvent {
            t_ms: 5,
            set: 1,
            rep: 2,
            perfect: false,
            arched: true,
            rushed: false,
            descent_ms: 3100,
            ascent_ms: Some(1500),
            bounce: false,
            depth: Some(0.8),
        });
        let back: Event = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.kind(), "rep");
    }
}
