//! A mat's state as published (its retained `state` topic) and the counters
//! followed from its events: the gateway's pipeline keeps them, a watcher
//! reads them back, and both follow events the same way ([`Counters::follow`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::event::{Event, Phase};

/// The counters a coach reads: this set, and the totals since the last reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Number of the current (or last) set of this session; 0 before the first.
    pub set: u32,
    /// Reps and perfect reps of that set.
    pub set_reps: u32,
    pub set_perfect: u32,
    /// Reps, perfect reps and arches since the counters were last reset.
    pub reps: u64,
    pub perfect_reps: u64,
    pub arches: u64,
}

impl Counters {
    /// Follows one event (with its set number as published).
    pub fn follow(&mut self, e: &Event) {
        match e {
            Event::Session {
                phase: Phase::Start, ..
            } => {
                self.set = 0;
                self.set_reps = 0;
                self.set_perfect = 0;
            }
            Event::Arch(a) if a.phase == Phase::Start => self.arches += 1,
            Event::Rep(r) => {
                if r.set != self.set {
                    self.set = r.set;
                    self.set_perfect = 0;
                }
                self.set_reps = r.rep;
                self.reps += 1;
                if r.perfect {
                    self.perfect_reps += 1;
                    self.set_perfect += 1;
                }
            }
            Event::Set(s) => {
                self.set = s.set;
                self.set_reps = s.reps;
                self.set_perfect = s.perfect;
            }
            _ => {}
        }
    }

    /// Zeroes the totals (the `reset_counters` command); the set stays.
    pub fn reset_totals(&mut self) {
        self.reps = 0;
        self.perfect_reps = 0;
        self.arches = 0;
    }
}

/// What a mat's pipeline knows about it, published as its retained state
/// (with the outbox figures and the time added by
/// [`super::payload::state_payload`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MatState {
    /// Someone lies on the mat.
    pub occupied: bool,
    /// The lower back is off the mat now.
    pub arching: bool,
    /// Lumbar contact in per cent of the person's pressed-flat reference;
    /// `null` while nobody is on the mat.
    pub contact: Option<u32>,
    #[serde(flatten)]
    pub counters: Counters,
    /// Descent of the last rep, seconds.
    pub last_descent_s: Option<f64>,
    /// Sampler: frames per second achieved over the last second, overruns.
    pub sample_rate_hz: f64,
    pub overruns: u64,
    /// Taxels found faulty and left out.
    pub taxel_faults: u32,
    /// The athlete on the mat (their id, never their name); `null`: a
    /// guest, or nobody.
    pub athlete: Option<String>,
}

impl MatState {
    /// Takes every field of a state JSON object that reads as its type and
    /// leaves the others as they were (a publisher of another version may
    /// add, drop or retype fields); returns which fields were taken.
    pub fn merge_json(&mut self, json: &Value) -> Vec<String> {
        let Some(incoming) = json.as_object() else {
            return Vec::new();
        };
        let Ok(Value::Object(mut current)) = serde_json::to_value(&*self) else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        for (key, value) in incoming {
            let Some(old) = current.get(key).cloned() else { continue };
            current.insert(key.clone(), value.clone());
            if serde_json::from_value::<MatState>(Value::Object(current.clone())).is_ok() {
                taken.push(key.clone());
            } else {
                current.insert(key.clone(), old);
            }
        }
        if let Ok(merged) = serde_json::from_value(Value::Object(current)) {
            *self = merged;
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::event::{ArchEvent, SetEvent};

    fn rep(set: u32, rep: u32, perfect: bool) -> Event {
        Event::test_rep(set, rep, perfect, 3000)
    }

    #[test]
    fn counters_follow_reps_sets_arches_and_a_new_session() {
        let mut c = Counters::default();
        c.follow(&Event::Session {
            t_ms: 0,
            phase: Phase::Start,
        });
        c.follow(&rep(1, 1, true));
        c.follow(&rep(1, 2, false));
        c.follow(&Event::Arch(ArchEvent {
            t_ms: 0,
            phase: Phase::Start,
            onset_ms: None,
            contact: Some(0.4),
            duration_ms: None,
            min_contact: None,
        }));
        assert_eq!(
            c,
            Counters {
                set: 1,
                set_reps: 2,
                set_perfect: 1,
                reps: 2,
                perfect_reps: 1,
                arches: 1
            }
        );
        c.follow(&rep(2, 1, true));
        assert_eq!((c.set, c.set_reps, c.set_perfect, c.reps), (2, 1, 1, 3));
        c.follow(&Event::Set(SetEvent {
            t_ms: 0,
            set: 2,
            reps: 5,
            perfect: 4,
            arches: 0,
        }));
        assert_eq!((c.set, c.set_reps, c.set_perfect), (2, 5, 4));
        c.reset_totals();
        assert_eq!((c.reps, c.perfect_reps, c.arches, c.set), (0, 0, 0, 2));
        c.follow(&Event::Session {
            t_ms: 0,
            phase: Phase::Start,
        });
        assert_eq!((c.set, c.set_reps, c.set_perfect), (0, 0, 0));
    }

    #[test]
    fn merging_takes_what_reads_and_keeps_the_rest() {
        let mut s = MatState {
            counters: Counters {
                reps: 4,
                arches: 2,
                ..Counters::default()
            },
            contact: Some(90),
            ..MatState::default()
        };
        let taken = s.merge_json(&serde_json::json!({
            "reps": 7, "arches": "many", "contact": null, "unknown": 1, "occupied": true
        }));
        assert_eq!(s.counters.reps, 7);
        assert_eq!(s.counters.arches, 2, "a field of the wrong type is left as it was");
        assert_eq!(s.contact, None, "null is a value: nobody on the mat");
        assert!(s.occupied);
        let mut taken = taken;
        taken.sort();
        assert_eq!(taken, ["contact", "occupied", "reps"]);
        assert!(s.merge_json(&serde_json::json!([1, 2])).is_empty());
    }
}
