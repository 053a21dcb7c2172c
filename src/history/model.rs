//! The roster and the history as plain data: what the store keeps and the
//! figures read.

use serde::{Deserialize, Serialize};

use crate::contract::event::RepEvent;

/// An athlete of the roster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Athlete {
    /// Short, stable, safe in topics and URLs (`a-` and 8 hex digits).
    pub id: String,
    /// As shown to the coach (and on the floor only when
    /// `[athletes] show_names_on_floor`).
    pub name: String,
    /// The athlete's own page is `/me/<secret>`: 128 random bits.
    #[serde(skip_serializing)]
    pub secret: String,
    /// The load the athlete trains with now.
    pub load: Load,
    /// The plan for today, set by the coach.
    pub plan: Plan,
    /// When the athlete was added, ms since the Unix epoch.
    pub created_ms: i64,
}

/// The wall clock, milliseconds since the Unix epoch, as the history
/// stores every time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Athlete {
    /// A new athlete for the roster, as every engine adds one: the name
    /// checked, a fresh id and link, bodyweight, the default plan.
    pub fn new(name: &str) -> super::store::Result<Athlete> {
        Ok(Athlete {
            id: super::secret::athlete_id(),
            name: super::secret::check_name(name)?,
            secret: super::secret::link_secret(),
            load: Load::bodyweight(),
            plan: Plan::default(),
            created_ms: now_ms(),
        })
    }

    /// The athlete's own page.
    pub fn link(&self) -> String {
        format!("/me/{}", self.secret)
    }
}

/// An added load: the coach's words and its weight. Bodyweight is the
/// default (`""`, 0 kg).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub text: String,
    pub kg: f64,
}

impl Load {
    pub fn bodyweight() -> Load {
        Load::default()
    }

    /// How the pages and the CSV say it.
    pub fn label(&self) -> String {
        if self.text.is_empty() && self.kg == 0.0 {
            "bodyweight".into()
        } else if self.text.is_empty() {
            format!("{} kg", self.kg)
        } else {
            self.text.clone()
        }
    }
}

/// Sets of reps: the article's "3 sets of 10" by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub sets: u32,
    pub reps: u32,
}

impl Default for Plan {
    fn default() -> Self {
        Plan { sets: 3, reps: 10 }
    }
}

/// A load change the coach confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadChange {
    pub athlete: String,
    pub at_ms: i64,
    pub load: Load,
}

/// A session names itself by where it happened and the `seq` of its
/// `session` start event: the same on every gateway and every write.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionKey {
    pub gateway: String,
    pub mat: String,
    pub start_seq: u64,
}

/// A session with its reps, in `seq` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub key: SessionKey,
    /// `None`: a guest session (it can be claimed).
    pub athlete: Option<String>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    /// The athlete's load when the session became theirs.
    pub load: Load,
    pub reps: Vec<RepRecord>,
}

/// One rep as kept: every field of the rep event, with its `seq` and wall
/// clock time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepRecord {
    pub seq: u64,
    pub time_ms: i64,
    pub set: u32,
    pub rep: u32,
    pub perfect: bool,
    pub arched: bool,
    pub rushed: bool,
    pub bounce: bool,
    pub descent_ms: u64,
    pub ascent_ms: Option<u64>,
    pub depth: Option<f64>,
}

impl RepRecord {
    pub fn from_event(seq: u64, time_ms: i64, r: &RepEvent) -> RepRecord {
        RepRecord {
            seq,
            time_ms,
            set: r.set,
            rep: r.rep,
            perfect: r.perfect,
            arched: r.arched,
            rushed: r.rushed,
            bounce: r.bounce,
            descent_ms: r.descent_ms,
            ascent_ms: r.ascent_ms,
            depth: r.depth,
        }
    }
}

/// One event of the outbox, as the history keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    pub gateway: String,
    pub mat: String,
    pub seq: u64,
    /// Wall clock, ms since the Unix epoch (the envelope's `time`).
    pub time_ms: i64,
    pub athlete: Option<String>,
    pub what: HistoryKind,
}

/// What of an event the history keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryKind {
    SessionStart,
    SessionEnd,
    Rep(RepRecord),
}

/// What an athlete's figures depend on in the store, cheap to read for the
/// whole roster: when it is the same, their figures are too (the roster
/// page computes only those of athletes whose history moved).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    pub sessions: u64,
    /// The sum of the sessions' ends: moves when one ends.
    pub ended_sum: i64,
    /// Sessions that have ended.
    pub ended: u64,
    /// Reps of their sessions still open.
    pub open_reps: u64,
    pub load_changes: u64,
}

/// Whose sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Everyone,
    Athlete(String),
    /// Sessions nobody has claimed yet.
    Guests,
}

/// Which sessions to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionQuery {
    pub who: Who,
    /// Sessions started at or after this, ms since the Unix epoch.
    pub since_ms: Option<i64>,
    /// On this gateway only.
    pub gateway: Option<String>,
}

impl SessionQuery {
    pub fn of(who: Who) -> SessionQuery {
        SessionQuery {
            who,
            since_ms: None,
            gateway: None,
        }
    }
}
