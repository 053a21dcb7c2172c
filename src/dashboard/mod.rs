//! The coach's floor: MQTT messages in, tiles out (pure, synchronous). One
//! model for every view of the floor: `flatback watch` draws its tiles in a
//! terminal ([`crate::watch`]), the gateway's web view ([`crate::web`]) in a
//! browser.
//!
//! Every mat seen under the base topic gets a tile. A mat's counters come
//! from its retained state (the publisher's own count, right after a reset
//! or a restart); until a state has arrived they are followed from its
//! events. The arch alarm, the last descent and the event log follow the
//! events as they come (the state trails them by up to its rate limit), and
//! the state's `arching` as well, so a watcher that connects mid-arch sees it.
//!
//! Time is whatever monotonic milliseconds the caller passes in (`now_ms`),
//! so the model needs no clock and tests need no sleeps.
//!
//! How an event reads (a tile's log line, `watch --plain`'s fields) is
//! [`wording`].

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::contract::event::{Event, Phase};
use crate::wire::topics::{self, Subject, Topics};
use crate::wire::{MatCommand, MatState};

pub use crate::wire::Counters;

pub mod wording;

use wording::{plain_fields, short_text, tone};

/// Events kept per mat for its log.
pub const EVENT_LOG: usize = 6;

/// A mat: its gateway and its id, ordered naturally (`mat2` before `mat10`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatKey {
    pub gateway: String,
    pub mat: String,
}

impl MatKey {
    pub fn new(gateway: &str, mat: &str) -> Self {
        MatKey {
            gateway: gateway.to_string(),
            mat: mat.to_string(),
        }
    }
}

impl Ord for MatKey {
    fn cmp(&self, other: &Self) -> Ordering {
        natural_cmp(&self.gateway, &other.gateway).then_with(|| natural_cmp(&self.mat, &other.mat))
    }
}

impl PartialOrd for MatKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares runs of digits by value, everything else as text.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.len() - a.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let db = b.len() - b.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let (na, nb) = (a[..da].trim_start_matches('0'), b[..db].trim_start_matches('0'));
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (&a[da..], &b[db..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
            }
        }
    }
}

/// How a logged event should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// A perfect rep, an arch over.
    Good,
    /// An arch, a rep that was not perfect.
    Bad,
    /// Sets, sessions, progress.
    Info,
    /// A faulty taxel.
    Warn,
}

/// One line of a mat's event log.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub at_ms: u64,
    pub text: String,
    pub tone: Tone,
}

/// What a tile shows above everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not heard from since the gateway or the mat went offline.
    Offline,
    /// The lower back is off the mat now.
    Arching,
    /// Someone is on the mat.
    Occupied,
    /// Nobody on the mat.
    Empty,
    /// Nothing but events so far (no state yet).
    Unknown,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Availability {
    #[default]
    Unknown,
    Online,
    Offline,
}

impl Availability {
    fn from_payload(payload: &[u8]) -> Option<Availability> {
        match std::str::from_utf8(payload).ok()?.trim() {
            "online" => Some(Availability::Online),
            "offline" => Some(Availability::Offline),
            _ => None,
        }
    }
}

/// Everything known about one mat.
#[derive(Debug, Clone, Default)]
struct Mat {
    availability: Availability,
    occupied: Option<bool>,
    /// Lumbar contact, share of the reference (1 = pressed flat).
    contact: Option<f64>,
    arching: bool,
    arch_since_ms: Option<u64>,
    /// The last state as published, its counters followed from events
    /// until a state has arrived.
    state: MatState,
    /// A state has arrived: counters are the publisher's from now on.
    state_seen: bool,
    last_descent_s: Option<f64>,
    last_rushed: bool,
    log: VecDeque<LoggedEvent>,
}

/// A tile, ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    pub key: MatKey,
    /// What the tile is titled with: the mat id, and its gateway when
    /// several gateways are in view.
    pub label: String,
    pub status: Status,
    pub selected: bool,
    /// Lumbar contact, share of the reference (`None`: nobody, or unknown).
    pub contact: Option<f64>,
    /// How long the current arch has lasted.
    pub arch_ms: Option<u64>,
    pub counters: Counters,
    pub last_descent_s: Option<f64>,
    pub last_rushed: bool,
    /// Newest first, with their age.
    pub events: Vec<(u64, LoggedEvent)>,
}

/// The broker connection, as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerLink {
    Connecting,
    Connected,
    Lost(String),
}

/// The whole screen's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Screen {
    pub broker: String,
    pub base: String,
    pub link: BrokerLink,
    pub arch_threshold: f64,
    pub tiles: Vec<Tile>,
    /// A passing message for the footer (e.g. a reset sent).
    pub notice: Option<String>,
}

impl Screen {
    pub fn selected(&self) -> Option<usize> {
        self.tiles.iter().position(|t| t.selected)
    }
}

/// What one message changed, for the edges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    /// One plain line for an event (the non-terminal output).
    pub line: Option<String>,
    /// An arch started on some mat (ring the bell).
    pub arch_started: bool,
}

/// Where the selection moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Left,
    Right,
    Up,
    Down,
}

/// A command to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub topic: String,
    pub payload: String,
}

/// How long a footer notice stays.
const NOTICE_MS: u64 = 4000;

/// The dashboard.
#[derive(Debug, Clone)]
pub struct Dashboard {
    base: String,
    broker: String,
    arch_threshold: f64,
    link: BrokerLink,
    gateways: HashMap<String, Availability>,
    mats: BTreeMap<MatKey, Mat>,
    selected: Option<MatKey>,
    notice: Option<(String, u64)>,
}

impl Dashboard {
    /// `base`: the publisher's base topic; `arch_threshold`: the share of the
    /// reference below which an arch starts (marked on the contact bars).
    pub fn new(base: &str, broker: &str, arch_threshold: f64) -> Self {
        Dashboard {
            base: base.trim_end_matches('/').to_string(),
            broker: broker.to_string(),
            arch_threshold,
            link: BrokerLink::Connecting,
            gateways: HashMap::new(),
            mats: BTreeMap::new(),
            selected: None,
            notice: None,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn set_link(&mut self, link: BrokerLink) {
        self.link = link;
    }

    /// Mats seen so far, in display order.
    pub fn mats(&self) -> impl Iterator<Item = &MatKey> {
        self.mats.keys()
    }

    /// One message from the broker.
    pub fn apply(&mut self, topic: &str, payload: &[u8], now_ms: u64) -> Update {
        let Some(subject) = topics::parse(&self.base, topic) else {
            return Update::default();
        };
        match subject {
            Subject::GatewayStatus { gateway } => {
                if let Some(a) = Availability::from_payload(payload) {
                    self.gateways.insert(gateway.to_string(), a);
                }
                Update::default()
            }
            Subject::MatStatus { gateway, mat } => {
                if let Some(a) = Availability::from_payload(payload) {
                    self.mat(gateway, mat).availability = a;
                }
                Update::default()
            }
            Subject::MatState { gateway, mat } => {
                // An empty retained payload clears the topic: nothing to read.
                match serde_json::from_slice::<serde_json::Value>(payload) {
                    Ok(state) if state.is_object() => Update {
                        line: None,
                        arch_started: self.mat(gateway, mat).apply_state(&state, now_ms),
                    },
                    _ => Update::default(),
                }
            }
            Subject::MatEvent { gateway, mat } => self.apply_event(gateway, mat, payload, now_ms),
            // Not the watcher's: a gateway's own figures, commands to mats.
            Subject::GatewayState { .. } | Subject::MatCommand { .. } => Update::default(),
        }
    }

    fn mat(&mut self, gateway: &str, mat: &str) -> &mut Mat {
        let key = MatKey::new(gateway, mat);
        if self.selected.is_none() {
            self.selected = Some(key.clone());
        }
        self.mats.entry(key).or_default()
    }

    fn apply_event(&mut self, gateway: &str, mat: &str, payload: &[u8], now_ms: u64) -> Update {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(payload) else {
            return Update::default();
        };
        let Some(kind) = json.get("type").and_then(|t| t.as_str()).map(str::to_string) else {
            return Update::default();
        };
        let time = json.get("time").and_then(|t| t.as_str()).map(str::to_string);
        let m = self.mat(gateway, mat);
        // An event is news from the mat: it is online, whatever was retained.
        m.availability = Availability::Online;
        let Ok(event) = serde_json::from_value::<Event>(json.clone()) else {
            // A type this version does not know: logged as it is.
            let line = format!("{gateway}/{mat} {kind} {json}");
            m.log_event(LoggedEvent {
                at_ms: now_ms,
                text: kind,
                tone: Tone::Info,
            });
            return Update {
                line: Some(line),
                arch_started: false,
            };
        };
        let arch_started = m.apply_event(&event, now_ms);
        m.log_event(LoggedEvent {
            at_ms: now_ms,
            text: short_text(&event),
            tone: tone(&event),
        });
        let mut line = format!("{gateway}/{mat} {}", plain_fields(&event));
        if let Some(t) = time {
            line.push_str(&format!(" time={t}"));
        }
        Update {
            line: Some(line),
            arch_started,
        }
    }

    /// Moves the selection; `columns` is how many tiles a row of the screen
    /// holds (up and down move by a row).
    pub fn select(&mut self, mv: Move, columns: usize) {
        let keys: Vec<&MatKey> = self.mats.keys().collect();
        if keys.is_empty() {
            return;
        }
        let at = self
            .selected
            .as_ref()
            .and_then(|s| keys.iter().position(|k| *k == s))
            .unwrap_or(0);
        let columns = columns.max(1);
        let last = keys.len() - 1;
        let to = match mv {
            Move::Left => at.saturating_sub(1),
            Move::Right => (at + 1).min(last),
            Move::Up => at.checked_sub(columns).unwrap_or(at),
            Move::Down => {
                if at + columns <= last {
                    at + columns
                } else {
                    at
                }
            }
        };
        self.selected = Some(keys[to].clone());
    }

    pub fn selected(&self) -> Option<&MatKey> {
        self.selected.as_ref()
    }

    /// The command that resets the selected mat's counters.
    pub fn reset_selected(&self) -> Option<Outgoing> {
        let key = self.selected.as_ref()?;
        Some(Outgoing {
            topic: Topics::new(&self.base, &key.gateway, "").mat_command(&key.mat),
            payload: MatCommand::ResetCounters.name().to_string(),
        })
    }

    /// Shows `text` in the footer for a few seconds.
    pub fn notify(&mut self, text: String, now_ms: u64) {
        self.notice = Some((text, now_ms + NOTICE_MS));
    }

    /// The screen at `now_ms`.
    pub fn screen(&self, now_ms: u64) -> Screen {
        let several_gateways = {
            let mut gws = self.mats.keys().map(|k| &k.gateway);
            let first = gws.next();
            gws.any(|g| Some(g) != first)
        };
        // Without the broker nothing is known to be live: every mat shows
        // as offline until the retained topics come back.
        let link_lost = matches!(self.link, BrokerLink::Lost(_));
        let tiles = self
            .mats
            .iter()
            .map(|(key, m)| {
                let gateway_offline = self.gateways.get(&key.gateway) == Some(&Availability::Offline);
                let status = if link_lost || gateway_offline || m.availability == Availability::Offline {
                    Status::Offline
                } else if m.arching {
                    Status::Arching
                } else {
                    match m.occupied {
                        Some(true) => Status::Occupied,
                        Some(false) => Status::Empty,
                        None => Status::Unknown,
                    }
                };
                Tile {
                    key: key.clone(),
                    label: if several_gateways {
                        format!("{} @{}", key.mat, key.gateway)
                    } else {
                        key.mat.clone()
                    },
                    status,
                    selected: self.selected.as_ref() == Some(key),
                    // Nobody there, or not heard from: no live contact to show.
                    contact: match status {
                        Status::Empty | Status::Offline => None,
                        _ => m.contact,
                    },
                    arch_ms: match status {
                        Status::Arching => m.arch_since_ms.map(|s| now_ms.saturating_sub(s)),
                        _ => None,
                    },
                    counters: m.state.counters,
                    last_descent_s: m.last_descent_s,
                    last_rushed: m.last_rushed,
                    events: m
                        .log
                        .iter()
                        .rev()
                        .map(|e| (now_ms.saturating_sub(e.at_ms), e.clone()))
                        .collect(),
                }
            })
            .collect();
        Screen {
            broker: self.broker.clone(),
            base: self.base.clone(),
            link: self.link.clone(),
            arch_threshold: self.arch_threshold,
            tiles,
            notice: self
                .notice
                .as_ref()
                .filter(|(_, until)| now_ms < *until)
                .map(|(t, _)| t.clone()),
        }
    }
}

impl Mat {
    fn log_event(&mut self, e: LoggedEvent) {
        if self.log.len() == EVENT_LOG {
            self.log.pop_front();
        }
        self.log.push_back(e);
    }

    /// Takes the publisher's state (the fields that read); returns whether
    /// it says an arch started.
    fn apply_state(&mut self, json: &serde_json::Value, now_ms: u64) -> bool {
        self.state_seen = true;
        let taken = self.state.merge_json(json);
        let has = |k: &str| taken.iter().any(|t| t == k);
        if has("occupied") {
            self.occupied = Some(self.state.occupied);
        }
        if has("contact") {
            // `null` while nobody is on the mat.
            self.contact = self.state.contact.map(|pct| f64::from(pct) / 100.0);
        }
        if has("last_descent_s") {
            if let Some(d) = self.state.last_descent_s {
                self.last_descent_s = Some(d);
            }
        }
        has("arching") && self.set_arching(self.state.arching, now_ms)
    }

    fn set_arching(&mut self, arching: bool, now_ms: u64) -> bool {
        let started = arching && !self.arching;
        if started {
            self.arch_since_ms = Some(now_ms);
        }
        if !arching {
            self.arch_since_ms = None;
        }
        self.arching = arching;
        started
    }

    /// Follows one event; returns whether an arch started.
    fn apply_event(&mut self, e: &Event, now_ms: u64) -> bool {
        if !self.state_seen {
            self.state.counters.follow(e);
        }
        match e {
            Event::Session { phase, .. } => {
                self.occupied = Some(*phase == Phase::Start);
                if *phase == Phase::End {
                    self.set_arching(false, now_ms);
                    self.contact = None;
                }
                false
            }
            Event::Arch(a) => match a.phase {
                Phase::Start => {
                    if let Some(c) = a.contact {
                        self.contact = Some(c);
                    }
                    self.occupied = Some(true);
                    self.set_arching(true, now_ms)
                }
                Phase::End => {
                    self.set_arching(false, now_ms);
                    false
                }
            },
            Event::Rep(r) => {
                self.last_descent_s = Some(r.descent_ms as f64 / 1000.0);
                self.last_rushed = r.rushed;
                false
            }
            Event::Set(_) | Event::Progress { .. } | Event::Health { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::event::{ArchEvent, SetEvent};

    fn event_json(e: &Event, mat: &str, seq: u64) -> Vec<u8> {
        let mut v = serde_json::to_value(e).unwrap();
        v["mat"] = mat.into();
        v["seq"] = seq.into();
        v["time"] = "2024-03-05T17:04:09.123Z".into();
        v.to_string().into_bytes()
    }

    fn rep(set: u32, n: u32, perfect: bool, descent_ms: u64) -> Event {
        Event::test_rep(set, n, perfect, descent_ms)
    }

    fn arch(phase: Phase, contact: Option<f64>) -> Event {
        Event::Arch(ArchEvent {
            t_ms: 5,
            phase,
            onset_ms: Some(4),
            contact,
            duration_ms: (phase == Phase::End).then_some(800),
            min_contact: (phase == Phase::End).then_some(0.3),
        })
    }

    fn dash() -> Dashboard {
        Dashboard::new("flatback", "mqtt://localhost:1883", 0.6)
    }

    fn tile<'a>(s: &'a Screen, mat: &str) -> &'a Tile {
        s.tiles.iter().find(|t| t.key.mat == mat).expect("tile")
    }

    #[test]
    fn a_tile_per_mat_in_natural_order() {
        let mut d = dash();
        for m in ["mat10", "mat2", "mat1"] {
            d.apply(&format!("flatback/gw1/{m}/status"), b"online", 0);
        }
        d.apply("flatback/gw1/status", b"online", 0);
        d.apply("flatback/gw1/state", b"{\"mats\":[]}", 0);
        d.apply("elsewhere/gw1/mat9/status", b"online", 0);
        let s = d.screen(0);
        let labels: Vec<&str> = s.tiles.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["mat1", "mat2", "mat10"]);
        // The first mat seen is selected.
        assert_eq!(s.selected(), Some(2));
        assert!(natural_cmp("a9", "a10").is_lt() && natural_cmp("a010", "a9").is_gt());
        assert!(natural_cmp("b", "a10").is_gt() && natural_cmp("mat", "mat1").is_lt());
    }

    #[test]
    fn several_gateways_are_named_on_the_tiles() {
        let mut d = dash();
        d.apply("flatback/gw1/mat1/status", b"online", 0);
        d.apply("flatback/gw2/mat1/status", b"online", 0);
        let s = d.screen(0);
        let labels: Vec<&str> = s.tiles.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["mat1 @gw1", "mat1 @gw2"]);
    }

    #[test]
    fn state_sets_contact_counters_and_occupancy() {
        let mut d = dash();
        let state = r#"{"occupied":true,"arching":false,"contact":87,"set":2,"set_reps":5,"set_perfect":4,
            "reps":17,"perfect_reps":12,"arches":3,"last_descent_s":3.4,"sample_rate_hz":200.0,
            "overruns":0,"taxel_faults":0,"queued_events":0,"dropped_events":0,"time":"2024-01-01T00:00:00.000Z"}"#;
        d.apply("flatback/gw1/mat1/state", state.as_bytes(), 0);
        let s = d.screen(0);
        let t = tile(&s, "mat1");
        assert_eq!(t.status, Status::Occupied);
        assert_eq!(t.contact, Some(0.87));
        assert_eq!(
            t.counters,
            Counters {
                set: 2,
                set_reps: 5,
                set_perfect: 4,
                reps: 17,
                perfect_reps: 12,
                arches: 3
            }
        );
        assert_eq!(t.last_descent_s, Some(3.4));
        // Nobody on the mat: contact null, the tile says empty.
        d.apply(
            "flatback/gw1/mat1/state",
            br#"{"occupied":false,"arching":false,"contact":null}"#,
            1,
        );
        let t = tile(&d.screen(1), "mat1").clone();
        assert_eq!((t.status, t.contact), (Status::Empty, None));
        assert_eq!(t.counters.reps, 17, "fields left out keep their value");
        // Garbage and a cleared retained topic change nothing.
        d.apply("flatback/gw1/mat1/state", b"", 2);
        d.apply("flatback/gw1/mat1/state", b"{not json", 2);
        d.apply("flatback/gw1/mat1/state", br#"{"reps":"many"}"#, 2);
        assert_eq!(tile(&d.screen(2), "mat1").counters.reps, 17);
    }

    #[test]
    fn arch_alarm_from_events_and_from_state() {
        let mut d = dash();
        d.apply("flatback/gw1/mat1/status", b"online", 0);
        let u = d.apply(
            "flatback/gw1/mat1/event",
            &event_json(&arch(Phase::Start, Some(0.42)), "mat1", 1),
            1000,
        );
        assert!(u.arch_started);
        let line = u.line.unwrap();
        assert!(
            line.starts_with("gw1/mat1 arch start contact=0.42") && line.ends_with("time=2024-03-05T17:04:09.123Z"),
            "{line}"
        );
        let s = d.screen(2500);
        let t = tile(&s, "mat1");
        assert_eq!(t.status, Status::Arching);
        assert_eq!(t.arch_ms, Some(1500));
        assert_eq!(t.contact, Some(0.42));
        assert_eq!(t.events[0].1.text, "ARCH 42%");
        assert_eq!(t.events[0].1.tone, Tone::Bad);
        // A state still saying arching starts no second alarm.
        let u = d.apply("flatback/gw1/mat1/state", br#"{"arching":true,"contact":40}"#, 2600);
        assert!(!u.arch_started && u.line.is_none());
        let u = d.apply(
            "flatback/gw1/mat1/event",
            &event_json(&arch(Phase::End, None), "mat1", 2),
            3000,
        );
        assert!(!u.arch_started);
        assert_eq!(tile(&d.screen(3000), "mat1").status, Status::Occupied);
        assert_eq!(tile(&d.screen(3000), "mat1").arch_ms, None);
        // A watcher connecting mid-arch learns it from the retained state.
        let mut late = dash();
        let u = late.apply(
            "flatback/gw1/mat1/state",
            br#"{"occupied":true,"arching":true,"contact":35}"#,
            0,
        );
        assert!(u.arch_started, "the bell rings for an arch in progress too");
        assert_eq!(tile(&late.screen(0), "mat1").status, Status::Arching);
    }

    #[test]
    fn counters_follow_events_until_a_state_arrives() {
        let mut d = dash();
        let t = "flatback/gw1/mat1/event";
        d.apply(t, &event_json(&rep(1, 1, true, 3500), "mat1", 1), 0);
        d.apply(t, &event_json(&rep(1, 2, false, 2100), "mat1", 2), 0);
        d.apply(t, &event_json(&rep(2, 1, true, 3300), "mat1", 3), 0);
        let c = tile(&d.screen(0), "mat1").counters;
        assert_eq!(
            (c.set, c.set_reps, c.set_perfect, c.reps, c.perfect_reps),
            (2, 1, 1, 3, 2)
        );
        assert_eq!(tile(&d.screen(0), "mat1").last_descent_s, Some(3.3));
        let set = Event::Set(SetEvent {
            t_ms: 9,
            set: 2,
            reps: 4,
            perfect: 3,
            arches: 1,
        });
        d.apply(t, &event_json(&set, "mat1", 4), 0);
        let c = tile(&d.screen(0), "mat1").counters;
        assert_eq!((c.set, c.set_reps, c.set_perfect), (2, 4, 3));
        // Once the publisher's state is there it is the count (a reset, say);
        // a rep event that arrives after it does not count twice.
        d.apply(
            "flatback/gw1/mat1/state",
            br#"{"set":2,"set_reps":4,"set_perfect":3,"reps":0,"perfect_reps":0,"arches":0}"#,
            1,
        );
        d.apply(t, &event_json(&rep(2, 5, true, 3900), "mat1", 5), 2);
        let tl = tile(&d.screen(2), "mat1").clone();
        assert_eq!((tl.counters.reps, tl.counters.set_reps), (0, 4));
        assert_eq!(tl.last_descent_s, Some(3.9), "descent still follows the events");
        assert_eq!(tl.events[0].1.text, "rep 5 ✓ 3.9s");
    }

    #[test]
    fn offline_mats_and_gateways() {
        let mut d = dash();
        d.apply("flatback/gw1/mat1/status", b"online", 0);
        d.apply("flatback/gw1/mat2/status", b"offline", 0);
        d.apply("flatback/gw2/mat1/status", b"online", 0);
        let s = d.screen(0);
        let status: Vec<Status> = s.tiles.iter().map(|t| t.status).collect();
        assert_eq!(status, [Status::Unknown, Status::Offline, Status::Unknown]);
        // The gateway's Last Will takes all its mats offline.
        d.apply("flatback/gw1/status", b"offline", 1);
        let status: Vec<Status> = d.screen(1).tiles.iter().map(|t| t.status).collect();
        assert_eq!(status, [Status::Offline, Status::Offline, Status::Unknown]);
        d.apply("flatback/gw1/status", b"online", 2);
        d.apply("flatback/gw1/mat2/status", b"online", 2);
        let status: Vec<Status> = d.screen(2).tiles.iter().map(|t| t.status).collect();
        assert_eq!(status, [Status::Unknown, Status::Unknown, Status::Unknown]);
        // Offline beats arching: the alarm of a mat not heard from is stale.
        d.apply(
            "flatback/gw1/mat1/state",
            br#"{"arching":true,"occupied":true,"contact":20}"#,
            3,
        );
        d.apply("flatback/gw1/mat1/status", b"offline", 4);
        assert_eq!(tile(&d.screen(4), "mat1").status, Status::Offline);
        assert_eq!(tile(&d.screen(4), "mat1").contact, None, "a stale contact is not shown");
        // Unknown payloads change nothing.
        d.apply("flatback/gw1/mat1/status", b"maybe", 5);
        assert_eq!(tile(&d.screen(5), "mat1").status, Status::Offline);
        // Losing the broker greys every mat until it is back.
        assert_eq!(tile(&d.screen(5), "mat1").key.gateway, "gw1");
        assert_ne!(d.screen(5).tiles[2].status, Status::Offline);
        d.set_link(BrokerLink::Lost("connection refused".into()));
        assert!(d.screen(6).tiles.iter().all(|t| t.status == Status::Offline));
        d.set_link(BrokerLink::Connected);
        assert_ne!(d.screen(7).tiles[2].status, Status::Offline);
    }

    #[test]
    fn the_log_keeps_the_last_few_newest_first() {
        let mut d = dash();
        for n in 1..=10 {
            d.apply(
                "flatback/gw1/mat1/event",
                &event_json(&rep(1, n, n % 2 == 0, 3000 + n as u64), "mat1", n as u64),
                n as u64 * 100,
            );
        }
        let s = d.screen(1000);
        let t = tile(&s, "mat1");
        assert_eq!(t.events.len(), EVENT_LOG);
        assert_eq!(t.events[0].0, 0);
        assert_eq!(t.events[0].1.text, "rep 10 ✓ 3.0s");
        assert_eq!(t.events[1].1.text, "rep 9 ✗ arched 3.0s");
        assert_eq!(t.events[1].0, 100);
        // Unknown event types are logged and printed as they are.
        let u = d.apply("flatback/gw1/mat1/event", br#"{"type":"calibrated","t_ms":5}"#, 2000);
        assert_eq!(
            u.line.as_deref(),
            Some(r#"gw1/mat1 calibrated {"t_ms":5,"type":"calibrated"}"#)
        );
        assert_eq!(d.screen(2000).tiles[0].events[0].1.text, "calibrated");
        // Not JSON, or no type: ignored.
        assert_eq!(d.apply("flatback/gw1/mat1/event", b"hello", 0), Update::default());
        assert_eq!(d.apply("flatback/gw1/mat1/event", b"{}", 0), Update::default());
    }

    #[test]
    fn plain_lines_carry_mat_type_and_key_fields() {
        let mut d = dash();
        let u = d.apply(
            "flatback/gw9/m1/event",
            &event_json(&rep(2, 7, false, 2950), "m1", 1),
            0,
        );
        assert_eq!(
            u.line.as_deref(),
            Some(
                "gw9/m1 rep set=2 rep=7 perfect=false arched=true rushed=false bounce=false descent_ms=2950 \
                 t_ms=7000 time=2024-03-05T17:04:09.123Z"
            )
        );
        let mut flawed = rep(2, 7, false, 2950);
        if let Event::Rep(r) = &mut flawed {
            r.rushed = true;
            r.bounce = true;
        }
        assert_eq!(short_text(&flawed), "rep 7 ✗ arched,rushed,bounce 3.0s");
        let e = Event::Health {
            t_ms: 1,
            row: 1,
            col: 2,
            fault: crate::contract::event::TaxelFault::StuckLow,
            ok: false,
        };
        assert_eq!(plain_fields(&e), "health taxel=r1c2 fault=stuck_low ok=false t_ms=1");
        assert_eq!(short_text(&e), "taxel r1c2 stuck_low");
        let s = Event::Session {
            t_ms: 3,
            phase: Phase::End,
        };
        assert_eq!(plain_fields(&s), "session end t_ms=3");
        assert_eq!(
            plain_fields(&arch(Phase::End, None)),
            "arch end duration_ms=800 min_contact=0.3 t_ms=5"
        );
    }

    #[test]
    fn selection_moves_within_the_grid_and_reset_targets_it() {
        let mut d = dash();
        assert_eq!(d.reset_selected(), None);
        for n in 1..=7 {
            d.apply(&format!("flatback/gw1/mat{n}/status"), b"online", 0);
        }
        let sel = |d: &Dashboard| d.selected().unwrap().mat.clone();
        assert_eq!(sel(&d), "mat1");
        d.select(Move::Left, 3);
        assert_eq!(sel(&d), "mat1");
        d.select(Move::Right, 3);
        d.select(Move::Down, 3);
        assert_eq!(sel(&d), "mat5");
        d.select(Move::Down, 3);
        assert_eq!(sel(&d), "mat5", "no tile below: stays");
        d.select(Move::Right, 3);
        d.select(Move::Right, 3);
        d.select(Move::Right, 3);
        assert_eq!(sel(&d), "mat7");
        d.select(Move::Up, 3);
        assert_eq!(sel(&d), "mat4");
        d.select(Move::Up, 3);
        assert_eq!(sel(&d), "mat1");
        d.select(Move::Up, 3);
        assert_eq!(sel(&d), "mat1");
        d.select(Move::Right, 0);
        assert_eq!(sel(&d), "mat2");
        assert_eq!(
            d.reset_selected(),
            Some(Outgoing {
                topic: "flatback/gw1/mat2/command".into(),
                payload: "reset_counters".into()
            })
        );
        assert_eq!(d.screen(0).selected(), Some(1));
    }

    /// What the gateway publishes (its own builders), the watcher reads.
    #[test]
    fn reads_what_the_publisher_publishes() {
        use crate::wire::commands;
        use crate::wire::payload::{self, OutboxFigures};
        use std::time::UNIX_EPOCH;
        let t = Topics::new("gym/floor2", "gw1", "homeassistant");
        let mut d = Dashboard::new("gym/floor2", "mqtt://x:1883", 0.6);
        d.apply(&t.gateway_status(), payload::ONLINE.as_bytes(), 0);
        let gw_state = payload::gateway_state_payload(&["mat1".into()], OutboxFigures::default(), "0.1.0", UNIX_EPOCH);
        assert_eq!(d.apply(&t.gateway_state(), gw_state.as_bytes(), 0), Update::default());
        assert!(d.screen(0).tiles.is_empty(), "gateway topics make no tile");
        d.apply(&t.mat_status("mat1"), payload::ONLINE.as_bytes(), 0);
        let state = MatState {
            occupied: true,
            arching: false,
            contact: Some(87),
            counters: Counters {
                set: 2,
                set_reps: 5,
                set_perfect: 4,
                reps: 17,
                perfect_reps: 12,
                arches: 3,
            },
            last_descent_s: Some(3.4),
            sample_rate_hz: 200.0,
            ..MatState::default()
        };
        let state = payload::state_payload(&state, OutboxFigures::default(), UNIX_EPOCH);
        d.apply(&t.mat_state("mat1"), state.as_bytes(), 0);
        let s = d.screen(0);
        let tl = tile(&s, "mat1");
        assert_eq!(
            (tl.status, tl.contact, tl.last_descent_s),
            (Status::Occupied, Some(0.87), Some(3.4))
        );
        assert_eq!(
            (tl.counters.set, tl.counters.set_reps, tl.counters.set_perfect),
            (2, 5, 4)
        );
        assert_eq!(
            (tl.counters.reps, tl.counters.perfect_reps, tl.counters.arches),
            (17, 12, 3)
        );
        let e = arch(Phase::Start, Some(0.42));
        let u = d.apply(
            &t.mat_event("mat1"),
            payload::event_envelope(&e, "mat1", 7, UNIX_EPOCH, None).as_bytes(),
            0,
        );
        assert!(u.arch_started);
        assert_eq!(
            u.line.as_deref(),
            Some("gw1/mat1 arch start contact=0.42 onset_ms=4 t_ms=5 time=1970-01-01T00:00:00.000Z")
        );
        let reset = d.reset_selected().unwrap();
        assert_eq!(reset.topic, t.mat_command("mat1"));
        assert_eq!(
            commands::parse_message(reset.payload.as_bytes(), false),
            Ok(commands::MatCommand::ResetCounters)
        );
        // The gateway's Last Will.
        d.apply(&t.gateway_status(), payload::OFFLINE.as_bytes(), 1);
        assert_eq!(tile(&d.screen(1), "mat1").status, Status::Offline);
    }

    #[test]
    fn notices_pass() {
        let mut d = dash();
        d.notify("reset sent".into(), 1000);
        assert_eq!(d.screen(1000).notice.as_deref(), Some("reset sent"));
        assert_eq!(d.screen(1000 + NOTICE_MS).notice, None);
    }

    #[test]
    fn session_end_clears_the_alarm_and_the_bar() {
        let mut d = dash();
        let t = "flatback/gw1/mat1/event";
        d.apply(t, &event_json(&arch(Phase::Start, Some(0.3)), "mat1", 1), 0);
        d.apply(
            t,
            &event_json(
                &Event::Session {
                    t_ms: 9,
                    phase: Phase::End,
                },
                "mat1",
                2,
            ),
            10,
        );
        let s = d.screen(10);
        let tl = tile(&s, "mat1");
        assert_eq!((tl.status, tl.contact), (Status::Empty, None));
        assert_eq!(tl.events[0].1.text, "got up");
    }
}
