//! The publisher's session: what to publish and when, with no I/O (in the
//! manner of rumqttc's `state.rs`). Messages and ticks in, publishes out;
//! [`super::publisher`] does the I/O around it.
//!
//! - On every connection: subscribe (commands, Home Assistant's status), the
//!   birth message, discovery, every mat's availability and state, then the
//!   outbox's events from the oldest unacknowledged one.
//! - Events go out with QoS 1, at most [`SessionConfig::window`] unacknowledged
//!   at a time; one leaves the outbox only when its PUBACK arrives, so a
//!   connection lost with events in flight sends them again after the next
//!   connection (QoS 1: a consumer may see one twice and drops it by `seq`).
//! - A mat's state goes out when it changed (at most once per
//!   `state_min_interval`) and at least once per `heartbeat`.
//! - What third parties can send is bounded: the session subscribes with
//!   QoS 0 and only when the broker kept no session, so nothing it refuses
//!   is sent again; a message over [`SessionConfig::max_message`] bytes is
//!   dropped unread; a command is taken only once the broker has shown it
//!   holds no retained copy (MQTT 3.1.1 forwards a retained publish to
//!   current subscribers without its retain flag, so the session re-subscribes
//!   and looks, behind a marker only it knows), and retained commands are
//!   cleared from the broker.
//!
//! rumqttc numbers the publishes it sends; the driver reports each number
//! as it is given ([`PublisherSession::outgoing`]), in the order the session handed
//! the publishes out, so a PUBACK's packet id names the event it acknowledges.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::daemon::backoff::Jitter;
use crate::history::RosterEntry;
use crate::outbox::MatView;
use crate::wire::athlete_entities::{AthleteSensors, AthletesView};
use crate::wire::commands::{self, MatCommand};
use crate::wire::discovery::{self, Identity};
use crate::wire::payload::{self, OutboxFigures, OFFLINE, ONLINE};
use crate::wire::Topics;

/// What the session is told once.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub topics: Topics,
    pub gateway_name: String,
    /// Publish Home Assistant discovery.
    pub discovery: bool,
    /// Longest random delay before re-sending discovery when Home Assistant
    /// announces itself.
    pub discovery_resend_max: Duration,
    pub state_min_interval: Duration,
    pub heartbeat: Duration,
    /// Most events in flight (handed out, not yet acknowledged).
    pub window: usize,
    /// Longest message taken from a subscription, in bytes.
    pub max_message: usize,
}

/// Commands waiting for the retained check at most; more are refused.
pub const MAX_PENDING_COMMANDS: usize = 16;

/// MQTT's delivery guarantees the session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    AtMostOnce,
    AtLeastOnce,
}

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub qos: Qos,
    pub retain: bool,
    pub payload: Vec<u8>,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Subscribe to these filters, QoS 0: a message to us is for now; the
    /// broker keeps none for later nor sends one again.
    Subscribe(Vec<String>),
    Publish(Publish),
}

/// An event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// The event's id in the outbox.
    pub offset: u64,
    /// Where the next event starts.
    pub next: u64,
    pub mat: String,
    pub payload: Vec<u8>,
}

/// The outbox's events, as the session sees them.
pub trait EventQueue {
    /// The first event at or after `cursor`.
    fn next(&self, cursor: u64) -> Option<QueuedEvent>;
    /// The broker has the event at `offset`: it may leave.
    fn ack(&mut self, offset: u64);
    /// The whole gateway's figures.
    fn figures(&self) -> OutboxFigures;
}

/// What the session made of a message that arrived on a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A command for one of this gateway's mats, to carry out.
    Command { mat: String, command: MatCommand },
    /// A message refused, its topic, the kind of refusal and why (to log,
    /// rate-limited per kind).
    Refused {
        topic: String,
        kind: &'static str,
        why: String,
    },
    /// Home Assistant came online: discovery and state follow after `delay`.
    HomeAssistantOnline { delay: Duration },
}

/// A command waiting for the retained check.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    topic: String,
    payload: Vec<u8>,
    mat: String,
    command: MatCommand,
}

/// A retained check under way: the commands it decides, the marker that
/// ends it, and the retained commands the broker showed meanwhile. Commands
/// that arrive during a check wait for the next one: a retained publish the
/// broker stored after our re-subscription would not be shown to this one.
#[derive(Debug, Clone, Default)]
struct Check {
    commands: Vec<Pending>,
    marker: Vec<u8>,
    retained: Vec<(String, Vec<u8>)>,
}

/// What a handed-out publish was, to know what its PUBACK acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Event(u64),
    Other,
}

/// What was last published of one mat (or of the gateway).
#[derive(Debug, Clone, Default)]
struct Published {
    state_version: Option<u64>,
    figures: OutboxFigures,
    last: Option<Instant>,
    available_version: u64,
}

pub struct PublisherSession {
    config: SessionConfig,
    connected: bool,
    /// Tags of the publishes handed out and not yet given a packet id.
    unnumbered: VecDeque<Tag>,
    /// Packet id -> what awaits its PUBACK.
    inflight: HashMap<u16, Tag>,
    /// Packet ids rumqttc held back (AwaitAck) and will send later.
    held: HashSet<u16>,
    events_in_flight: usize,
    /// Where the next event to hand out starts.
    cursor: u64,
    mats: HashMap<String, Published>,
    gateway: Published,
    resend_at: Option<Instant>,
    jitter: Jitter,
    /// What a message asked for (a retained check, clearing a retained
    /// command), handed out by the next `poll`.
    asked: Vec<Request>,
    pending: Vec<Pending>,
    check: Option<Check>,
    /// The roster and athletes' figures (`None`: no history, no selects).
    athletes: Option<AthletesView>,
    /// What of them Home Assistant was last told.
    said: SaidOfAthletes,
}

/// What the session last published of the athletes: the roster the selects
/// offer (`None`: not yet on this connection), each athlete device's name,
/// and the sensors' figures.
#[derive(Debug, Clone, Default)]
struct SaidOfAthletes {
    select_roster: Option<Vec<RosterEntry>>,
    devices: BTreeMap<String, String>,
    sensors: BTreeMap<String, AthleteSensors>,
}

impl PublisherSession {
    pub fn new(config: SessionConfig, jitter: Jitter) -> PublisherSession {
        PublisherSession {
            config,
            connected: false,
            unnumbered: VecDeque::new(),
            inflight: HashMap::new(),
            held: HashSet::new(),
            events_in_flight: 0,
            cursor: 0,
            mats: HashMap::new(),
            gateway: Published::default(),
            resend_at: None,
            jitter,
            asked: Vec::new(),
            pending: Vec::new(),
            check: None,
            athletes: None,
            said: SaidOfAthletes::default(),
        }
    }

    /// The roster and the athletes' figures as they are now; what changed
    /// goes out with the next `poll` (the selects' options, athlete devices
    /// added or removed, their sensors).
    pub fn set_athletes(&mut self, view: AthletesView) {
        self.athletes = Some(view);
    }

    /// The roster the selects offer and names are looked up in.
    fn roster(&self) -> &[RosterEntry] {
        self.athletes.as_ref().map_or(&[], |a| &a.roster)
    }

    /// Whether the athletes' discovery or figures are due.
    fn athletes_due(&self) -> bool {
        let Some(view) = self.athletes.as_ref().filter(|_| self.config.discovery) else {
            return false;
        };
        if self.said.select_roster.as_ref() != Some(&view.roster) {
            return true;
        }
        if !view.devices {
            return !self.said.devices.is_empty();
        }
        self.said.devices.len() != view.roster.len()
            || view.roster.iter().any(|e| {
                self.said.devices.get(&e.id) != Some(&e.name)
                    || view
                        .sensors
                        .get(&e.id)
                        .is_some_and(|s| self.said.sensors.get(&e.id) != Some(s))
            })
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Events handed out and not yet acknowledged.
    pub fn events_in_flight(&self) -> usize {
        self.events_in_flight
    }

    /// Nothing handed out waits for its packet id or its acknowledgement.
    pub fn settled(&self) -> bool {
        self.unnumbered.is_empty() && self.inflight.is_empty()
    }

    /// The broker accepted the connection: everything is said again. The
    /// subscriptions are made only for a new session: a session the broker
    /// kept still has them, and subscribing again would make it send its
    /// retained messages again.
    pub fn connected(
        &mut self,
        now: Instant,
        session_present: bool,
        mats: &[MatView],
        queue: &dyn EventQueue,
    ) -> Vec<Request> {
        self.forget_flight();
        self.connected = true;
        let t = &self.config.topics;
        let mut out = Vec::new();
        if !session_present {
            out.push(Request::Subscribe(vec![t.command_filter(), t.ha_status(), t.marker()]));
        }
        self.hand_out(
            &mut out,
            t.gateway_status(),
            Qos::AtLeastOnce,
            true,
            ONLINE.into(),
            Tag::Other,
        );
        self.say_everything(&mut out, mats);
        self.due_athletes(&mut out, mats);
        self.due_states(&mut out, now, mats, queue.figures());
        self.fill_window(&mut out, queue);
        out
    }

    /// The connection is gone: whatever was in flight is forgotten here and
    /// sent again from the outbox after the next connection.
    pub fn lost(&mut self) {
        self.connected = false;
        self.forget_flight();
    }

    fn forget_flight(&mut self) {
        self.unnumbered.clear();
        self.inflight.clear();
        self.held.clear();
        self.events_in_flight = 0;
        self.cursor = 0;
        // Commands waiting for a check are for now: a new connection drops them.
        self.asked.clear();
        self.pending.clear();
        self.check = None;
    }

    /// rumqttc sent the next handed-out publish with packet id `pkid` (0 for
    /// QoS 0).
    pub fn outgoing(&mut self, pkid: u16) {
        if self.held.remove(&pkid) {
            return; // numbered already, at its AwaitAck
        }
        let tag = self.unnumbered.pop_front().unwrap_or(Tag::Other);
        if pkid != 0 {
            self.inflight.insert(pkid, tag);
        }
    }

    /// rumqttc holds the next handed-out publish back as `pkid` (that id is
    /// still in flight); it is sent later, reported by [`PublisherSession::outgoing`].
    pub fn await_ack(&mut self, pkid: u16) {
        let tag = self.unnumbered.pop_front().unwrap_or(Tag::Other);
        self.inflight.insert(pkid, tag);
        self.held.insert(pkid);
    }

    /// The broker acknowledged packet `pkid`; returns whether it was an event
    /// (now out of the outbox).
    pub fn puback(&mut self, pkid: u16, queue: &mut dyn EventQueue) -> bool {
        match self.inflight.remove(&pkid) {
            Some(Tag::Event(offset)) => {
                self.events_in_flight = self.events_in_flight.saturating_sub(1);
                queue.ack(offset);
                true
            }
            _ => false,
        }
    }

    /// A message on one of the session's subscriptions.
    pub fn message(
        &mut self,
        topic: &str,
        payload: &[u8],
        retain: bool,
        now: Instant,
        mats: &[String],
    ) -> Vec<Incoming> {
        let refused = |kind: &'static str, why: String| {
            vec![Incoming::Refused {
                topic: topic.to_string(),
                kind,
                why,
            }]
        };
        if payload.len() > self.config.max_message {
            return refused(
                "oversized",
                format!(
                    "a message of {} bytes, over the limit of {}: dropped",
                    payload.len(),
                    self.config.max_message
                ),
            );
        }
        let t = &self.config.topics;
        if topic == t.ha_status() {
            if payload != ONLINE.as_bytes() {
                return Vec::new();
            }
            let delay = self.config.discovery_resend_max.mul_f64(self.jitter.fraction());
            self.resend_at = Some(now + delay);
            return vec![Incoming::HomeAssistantOnline { delay }];
        }
        if topic == t.marker() {
            let ours = self.check.as_ref().is_some_and(|c| c.marker == payload);
            return if ours { self.end_check() } else { Vec::new() };
        }
        let Some(mat) = t.command_mat(topic) else {
            return Vec::new();
        };
        if retain {
            // Kept by the broker: it would be carried out on every
            // reconnect. Refused, and cleared so that it stops.
            if payload.is_empty() {
                return Vec::new(); // our own clearing, coming back
            }
            if let Some(check) = self.check.as_mut() {
                check.retained.push((topic.to_string(), payload.to_vec()));
            }
            self.asked.push(Request::Publish(Publish {
                topic: topic.to_string(),
                qos: Qos::AtLeastOnce,
                retain: true,
                payload: Vec::new(),
            }));
            let retained = commands::CommandError::Retained;
            return refused(retained.kind(), format!("{retained}; cleared from the broker"));
        }
        if !mats.iter().any(|m| m == mat) {
            return refused("no mat", format!("no mat \"{mat}\" on this gateway"));
        }
        let command = match commands::parse_message_in(payload, false, self.roster()) {
            Ok(c) => c,
            Err(e) => return refused(e.kind(), e.to_string()),
        };
        let waiting = self.pending.len() + self.check.as_ref().map_or(0, |c| c.commands.len());
        if waiting >= MAX_PENDING_COMMANDS {
            return refused(
                "too many",
                format!("{MAX_PENDING_COMMANDS} commands already wait to be checked: too many at once"),
            );
        }
        self.pending.push(Pending {
            topic: topic.to_string(),
            payload: payload.to_vec(),
            mat: mat.to_string(),
            command,
        });
        if self.check.is_none() {
            self.start_check();
        }
        Vec::new()
    }

    /// Subscribes to the commands again (the broker then sends any retained
    /// command, flagged), then publishes a marker to ourselves: when it comes
    /// back, every retained command has arrived before it.
    fn start_check(&mut self) {
        let marker = format!("{:016x}", (self.jitter.fraction() * (1u64 << 53) as f64) as u64).into_bytes();
        let t = &self.config.topics;
        self.asked.push(Request::Subscribe(vec![t.command_filter()]));
        self.asked.push(Request::Publish(Publish {
            topic: t.marker(),
            qos: Qos::AtMostOnce,
            retain: false,
            payload: marker.clone(),
        }));
        self.check = Some(Check {
            commands: std::mem::take(&mut self.pending),
            marker,
            retained: Vec::new(),
        });
    }

    /// The marker came back: the commands the broker does not hold retained
    /// are carried out, in order; a check starts for any that came meanwhile.
    fn end_check(&mut self) -> Vec<Incoming> {
        let Some(check) = self.check.take() else {
            return Vec::new();
        };
        if !self.pending.is_empty() {
            self.start_check();
        }
        check
            .commands
            .into_iter()
            .map(|p| {
                if check.retained.iter().any(|(t, b)| *t == p.topic && *b == p.payload) {
                    Incoming::Refused {
                        topic: p.topic,
                        kind: commands::CommandError::Retained.kind(),
                        why: format!("{} (published retained)", commands::CommandError::Retained),
                    }
                } else {
                    Incoming::Command {
                        mat: p.mat,
                        command: p.command,
                    }
                }
            })
            .collect()
    }

    /// What is due at `now`: states that changed or whose heartbeat came,
    /// availability, discovery after Home Assistant's birth, and events up to
    /// the window.
    pub fn poll(&mut self, now: Instant, mats: &[MatView], queue: &dyn EventQueue) -> Vec<Request> {
        let mut out = Vec::new();
        if !self.connected {
            return out;
        }
        for r in std::mem::take(&mut self.asked) {
            if let Request::Publish(p) = r {
                self.hand_out(&mut out, p.topic, p.qos, p.retain, p.payload, Tag::Other);
            } else {
                out.push(r);
            }
        }
        if self.resend_at.is_some_and(|t| now >= t) {
            self.resend_at = None;
            self.say_everything(&mut out, mats);
        }
        self.due_athletes(&mut out, mats);
        self.due_states(&mut out, now, mats, queue.figures());
        self.fill_window(&mut out, queue);
        out
    }

    /// The athletes' discovery and figures that changed since last said:
    /// every mat's select when the roster changed; with athlete devices,
    /// configs of new or renamed athletes, empty configs (HA removes the
    /// entities) for athletes gone from the roster, and the figures that
    /// changed, retained.
    fn due_athletes(&mut self, out: &mut Vec<Request>, mats: &[MatView]) {
        if !self.athletes_due() {
            return;
        }
        let Some(view) = self.athletes.clone() else { return };
        let topics = self.config.topics.clone();
        let gateway_name = self.config.gateway_name.clone();
        let ident = Identity {
            topics: &topics,
            gateway_name: &gateway_name,
            version: env!("CARGO_PKG_VERSION"),
        };
        let mut configs = Vec::new();
        if self.said.select_roster.as_ref() != Some(&view.roster) {
            configs.extend(
                mats.iter()
                    .map(|m| discovery::athlete_select(&ident, &m.id, &view.roster)),
            );
            self.said.select_roster = Some(view.roster.clone());
        }
        let wanted: BTreeMap<String, String> = if view.devices {
            view.roster.iter().map(|e| (e.id.clone(), e.name.clone())).collect()
        } else {
            BTreeMap::new()
        };
        for (id, name) in std::mem::take(&mut self.said.devices) {
            match wanted.get(&id) {
                Some(_) => {
                    self.said.devices.insert(id, name);
                }
                None => {
                    for c in discovery::athlete_configs(&ident, &RosterEntry { id: id.clone(), name }) {
                        self.hand_out(out, c.topic, Qos::AtLeastOnce, true, Vec::new(), Tag::Other);
                    }
                    let state = topics.athlete_state(&id);
                    self.hand_out(out, state, Qos::AtLeastOnce, true, Vec::new(), Tag::Other);
                    self.said.sensors.remove(&id);
                }
            }
        }
        for e in view.roster.iter().filter(|e| wanted.contains_key(&e.id)) {
            if self.said.devices.get(&e.id) != Some(&e.name) {
                configs.extend(discovery::athlete_configs(&ident, e));
                self.said.devices.insert(e.id.clone(), e.name.clone());
            }
        }
        for c in configs {
            self.hand_out(
                out,
                c.topic,
                Qos::AtLeastOnce,
                true,
                c.payload.to_string().into_bytes(),
                Tag::Other,
            );
        }
        for e in view.roster.iter().filter(|e| wanted.contains_key(&e.id)) {
            let Some(sensors) = view.sensors.get(&e.id) else {
                continue;
            };
            if self.said.sensors.get(&e.id) != Some(sensors) {
                let body = discovery::athlete_state(sensors).into_bytes();
                self.hand_out(
                    out,
                    topics.athlete_state(&e.id),
                    Qos::AtLeastOnce,
                    true,
                    body,
                    Tag::Other,
                );
                self.said.sensors.insert(e.id.clone(), sensors.clone());
            }
        }
    }

    /// When something is next due (a rate-limited state, a heartbeat, the
    /// delayed resend for Home Assistant); `None`: only news can make
    /// anything due.
    pub fn next_deadline(&self, mats: &[MatView]) -> Option<Instant> {
        if !self.connected {
            return None;
        }
        if !self.asked.is_empty() || self.athletes_due() {
            return Some(Instant::now());
        }
        let mut next = self.resend_at;
        let mut earliest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        for m in mats {
            let p = self.mats.get(&m.id).cloned().unwrap_or_default();
            match p.last {
                None => return Some(Instant::now()),
                Some(last) if p.state_version != Some(m.state_version) || p.figures != m.figures => {
                    earliest(last + self.config.state_min_interval)
                }
                Some(last) => earliest(last + self.config.heartbeat),
            }
        }
        if let Some(last) = self.gateway.last {
            earliest(last + self.config.heartbeat);
        }
        next
    }

    /// Before disconnecting: every mat and the gateway go `offline`.
    pub fn goodbye(&mut self, mats: &[MatView]) -> Vec<Request> {
        let mut out = Vec::new();
        if !self.connected {
            return out;
        }
        for m in mats {
            let topic = self.config.topics.mat_status(&m.id);
            self.hand_out(&mut out, topic, Qos::AtLeastOnce, true, OFFLINE.into(), Tag::Other);
        }
        let topic = self.config.topics.gateway_status();
        self.hand_out(&mut out, topic, Qos::AtLeastOnce, true, OFFLINE.into(), Tag::Other);
        out
    }

    fn hand_out(&mut self, out: &mut Vec<Request>, topic: String, qos: Qos, retain: bool, payload: Vec<u8>, tag: Tag) {
        self.unnumbered.push_back(tag);
        out.push(Request::Publish(Publish {
            topic,
            qos,
            retain,
            payload,
        }));
    }

    /// Discovery, availability and state of everything (on connect and when
    /// Home Assistant comes online).
    fn say_everything(&mut self, out: &mut Vec<Request>, mats: &[MatView]) {
        if self.config.discovery {
            let ids: Vec<String> = mats.iter().map(|m| m.id.clone()).collect();
            let ident = Identity {
                topics: &self.config.topics,
                gateway_name: &self.config.gateway_name,
                version: env!("CARGO_PKG_VERSION"),
            };
            for c in discovery::all_configs(&ident, &ids) {
                self.hand_out(
                    out,
                    c.topic,
                    Qos::AtLeastOnce,
                    true,
                    c.payload.to_string().into_bytes(),
                    Tag::Other,
                );
            }
        }
        self.mats.clear();
        self.gateway = Published::default();
        // The selects, athlete devices and figures go out again too.
        self.said = SaidOfAthletes::default();
    }

    fn due_states(&mut self, out: &mut Vec<Request>, now: Instant, mats: &[MatView], gateway: OutboxFigures) {
        let (min, heartbeat) = (self.config.state_min_interval, self.config.heartbeat);
        for m in mats {
            let p = self.mats.entry(m.id.clone()).or_default().clone();
            if m.available_version != p.available_version {
                let topic = self.config.topics.mat_status(&m.id);
                let payload = if m.available { ONLINE } else { OFFLINE };
                self.hand_out(out, topic, Qos::AtLeastOnce, true, payload.into(), Tag::Other);
            }
            let changed = p.state_version != Some(m.state_version) || p.figures != m.figures;
            let due = match p.last {
                None => true,
                Some(last) => (changed && now >= last + min) || now >= last + heartbeat,
            };
            if due {
                let body = payload::state_payload(&m.state, m.figures, std::time::SystemTime::now());
                let topic = self.config.topics.mat_state(&m.id);
                self.hand_out(out, topic, Qos::AtMostOnce, true, body.into_bytes(), Tag::Other);
            }
            let p = self.mats.get_mut(&m.id).expect("inserted above");
            p.available_version = m.available_version;
            if due {
                p.state_version = Some(m.state_version);
                p.figures = m.figures;
                p.last = Some(now);
            }
        }
        let p = &self.gateway;
        let due = match p.last {
            None => true,
            Some(last) => (gateway != p.figures && now >= last + min) || now >= last + heartbeat,
        };
        if due {
            let ids: Vec<String> = mats.iter().map(|m| m.id.clone()).collect();
            let body =
                payload::gateway_state_payload(&ids, gateway, env!("CARGO_PKG_VERSION"), std::time::SystemTime::now());
            let topic = self.config.topics.gateway_state();
            self.hand_out(out, topic, Qos::AtMostOnce, true, body.into_bytes(), Tag::Other);
            self.gateway.figures = gateway;
            self.gateway.last = Some(now);
        }
    }

    /// Hands out events from the cursor until the window is full.
    fn fill_window(&mut self, out: &mut Vec<Request>, queue: &dyn EventQueue) {
        while self.events_in_flight < self.config.window {
            let Some(e) = queue.next(self.cursor) else { break };
            let topic = self.config.topics.mat_event(&e.mat);
            self.cursor = e.next;
            self.events_in_flight += 1;
            self.hand_out(out, topic, Qos::AtLeastOnce, false, e.payload, Tag::Event(e.offset));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MatState;
    use std::collections::BTreeMap;

    /// An outbox in memory: events of `size` bytes each.
    #[derive(Default)]
    struct Queue {
        events: Vec<QueuedEvent>,
        acked: Vec<u64>,
    }

    impl Queue {
        fn with(n: usize) -> Queue {
            let mut q = Queue::default();
            for i in 0..n {
                q.push("m1", i);
            }
            q
        }

        fn push(&mut self, mat: &str, i: usize) {
            let offset = self.events.last().map_or(0, |e| e.next);
            self.events.push(QueuedEvent {
                offset,
                next: offset + 10,
                mat: mat.into(),
                payload: format!("event {i}").into_bytes(),
            });
        }
    }

    impl EventQueue for Queue {
        fn next(&self, cursor: u64) -> Option<QueuedEvent> {
            self.events.iter().find(|e| e.offset >= cursor).cloned()
        }
        fn ack(&mut self, offset: u64) {
            self.acked.push(offset);
            self.events.retain(|e| e.offset != offset);
        }
        fn figures(&self) -> OutboxFigures {
            OutboxFigures {
                queued_events: self.events.len() as u64,
                dropped_events: 0,
            }
        }
    }

    fn config(window: usize) -> SessionConfig {
        SessionConfig {
            topics: Topics::new("fb", "gw", "ha"),
            gateway_name: "gym".into(),
            discovery: false,
            discovery_resend_max: Duration::from_secs(2),
            state_min_interval: Duration::from_millis(100),
            heartbeat: Duration::from_secs(60),
            window,
            max_message: 64 * 1024,
        }
    }

    fn mat(id: &str, version: u64) -> MatView {
        MatView {
            id: id.into(),
            state: MatState::default(),
            state_version: version,
            available: true,
            available_version: 1,
            figures: OutboxFigures::default(),
        }
    }

    fn publishes(reqs: &[Request]) -> Vec<&Publish> {
        reqs.iter()
            .filter_map(|r| match r {
                Request::Publish(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    fn events(reqs: &[Request]) -> Vec<String> {
        publishes(reqs)
            .into_iter()
            .filter(|p| p.topic.ends_with("/event"))
            .map(|p| String::from_utf8(p.payload.clone()).unwrap())
            .collect()
    }

    /// Numbers every handed-out publish as rumqttc would: QoS 1 from
    /// `next_pkid` on, QoS 0 as 0. Returns the events' packet ids.
    fn number(s: &mut PublisherSession, reqs: &[Request], next_pkid: &mut u16) -> Vec<u16> {
        let mut ids = Vec::new();
        for p in publishes(reqs) {
            if p.qos == Qos::AtMostOnce {
                s.outgoing(0);
                continue;
            }
            s.outgoing(*next_pkid);
            if p.topic.ends_with("/event") {
                ids.push(*next_pkid);
            }
            *next_pkid += 1;
        }
        ids
    }

    #[test]
    fn a_connection_subscribes_says_online_then_states_then_events() {
        let mut s = PublisherSession::new(config(32), Jitter::new(1));
        let q = Queue::with(2);
        let reqs = s.connected(Instant::now(), false, &[mat("m1", 0)], &q);
        assert_eq!(
            reqs[0],
            Request::Subscribe(vec![
                "fb/gw/+/command".into(),
                "ha/status".into(),
                "fb/gw/marker".into()
            ])
        );
        let topics: Vec<&str> = publishes(&reqs).iter().map(|p| p.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "fb/gw/status",
                "fb/gw/m1/status",
                "fb/gw/m1/state",
                "fb/gw/state",
                "fb/gw/m1/event",
                "fb/gw/m1/event"
            ]
        );
        assert!(publishes(&reqs)[..4].iter().all(|p| p.retain));
        assert!(publishes(&reqs)[4..]
            .iter()
            .all(|p| !p.retain && p.qos == Qos::AtLeastOnce));
        assert!(
            s.poll(Instant::now(), &[mat("m1", 0)], &q).is_empty(),
            "nothing more is due"
        );
    }

    #[test]
    fn acks_in_order_and_out_of_order_release_exactly_their_events() {
        let mut s = PublisherSession::new(config(32), Jitter::new(1));
        let mut q = Queue::with(4);
        let reqs = s.connected(Instant::now(), false, &[], &q);
        let mut pkid = 1;
        let ids = number(&mut s, &reqs, &mut pkid);
        assert_eq!(ids, [2, 3, 4, 5], "after the birth message (1)");
        assert_eq!(s.events_in_flight(), 4);
        assert!(!s.puback(1, &mut q), "the birth message is not an event");
        assert!(s.puback(2, &mut q));
        assert!(s.puback(5, &mut q), "out of order");
        assert!(s.puback(3, &mut q));
        assert!(!s.puback(3, &mut q), "twice: nothing more");
        assert!(!s.puback(99, &mut q), "unknown: nothing");
        assert_eq!(q.acked, [0, 30, 10]);
        assert_eq!(s.events_in_flight(), 1);
        assert_eq!(events(&reqs).len(), 4);
        assert_eq!(q.events.len(), 1, "event 2 still waits for its ack");
        assert!(s.puback(4, &mut q));
        assert!(s.settled());
    }

    #[test]
    fn at_most_window_events_in_flight_and_each_ack_lets_one_more_out() {
        let mut s = PublisherSession::new(config(3), Jitter::new(1));
        let mut q = Queue::with(10);
        let mut pkid = 1;
        let reqs = s.connected(Instant::now(), false, &[], &q);
        let ids = number(&mut s, &reqs, &mut pkid);
        assert_eq!(events(&reqs), ["event 0", "event 1", "event 2"]);
        assert_eq!(s.events_in_flight(), 3);
        assert!(
            events(&s.poll(Instant::now(), &[], &q)).is_empty(),
            "the window is full"
        );
        assert!(s.puback(ids[1], &mut q));
        let more = s.poll(Instant::now(), &[], &q);
        assert_eq!(events(&more), ["event 3"]);
        number(&mut s, &more, &mut pkid);
        assert_eq!(s.events_in_flight(), 3);
    }

    #[test]
    fn after_a_reconnect_the_unacknowledged_are_sent_again_in_order() {
        let mut s = PublisherSession::new(config(32), Jitter::new(1));
        let mut q = Queue::with(3);
        let mut pkid = 1;
        let reqs = s.connected(Instant::now(), false, &[], &q);
        let ids = number(&mut s, &reqs, &mut pkid);
        assert!(s.puback(ids[1], &mut q));
        s.lost();
        assert!(!s.is_connected());
        assert!(s.poll(Instant::now(), &[], &q).is_empty(), "nothing while disconnected");
        assert!(!s.puback(ids[0], &mut q), "an ack of the old connection names nothing");
        q.push("m1", 3);
        let again = s.connected(Instant::now(), false, &[], &q);
        assert_eq!(events(&again), ["event 0", "event 2", "event 3"]);
        let ids = number(&mut s, &again, &mut pkid);
        for id in ids {
            assert!(s.puback(id, &mut q));
        }
        assert!(q.events.is_empty());
    }

    #[test]
    fn a_held_back_packet_id_is_numbered_once() {
        let mut s = PublisherSession::new(config(32), Jitter::new(1));
        let mut q = Queue::with(2);
        let reqs = s.connected(Instant::now(), false, &[], &q);
        assert_eq!(publishes(&reqs).len(), 4);
        s.outgoing(1); // birth
        s.outgoing(0); // the gateway's state, QoS 0
        s.await_ack(2); // event 0 held back as 2
        s.outgoing(3); // event 1
        s.outgoing(2); // event 0, sent at last: already numbered
        assert!(s.puback(2, &mut q));
        assert!(s.puback(3, &mut q));
        assert_eq!(q.acked, [0, 10]);
        assert!(!s.puback(1, &mut q), "the birth message");
        assert!(s.settled());
    }

    #[test]
    fn state_is_due_on_change_rate_limited_and_on_heartbeat() {
        let mut s = PublisherSession::new(config(32), Jitter::new(1));
        let q = Queue::default();
        let t0 = Instant::now();
        let states = |reqs: &[Request]| publishes(reqs).iter().filter(|p| p.topic == "fb/gw/m1/state").count();
        assert_eq!(
            states(&s.connected(t0, false, &[mat("m1", 0)], &q)),
            1,
            "the first is due at once"
        );
        assert_eq!(states(&s.poll(t0, &[mat("m1", 0)], &q)), 0, "unchanged");
        let soon = t0 + Duration::from_millis(50);
        assert_eq!(
            states(&s.poll(soon, &[mat("m1", 1)], &q)),
            0,
            "changed, within the minimum interval"
        );
        assert_eq!(
            s.next_deadline(&[mat("m1", 1)]),
            Some(t0 + Duration::from_millis(100)),
            "due when the interval ends"
        );
        let later = t0 + Duration::from_millis(100);
        assert_eq!(states(&s.poll(later, &[mat("m1", 1)], &q)), 1, "changed, interval over");
        assert_eq!(
            s.next_deadline(&[mat("m1", 1)]),
            Some(t0 + Duration::from_secs(60)),
            "the next: the gateway's heartbeat (its state went out at t0)"
        );
        let quiet = later + Duration::from_secs(30);
        assert_eq!(states(&s.poll(quiet, &[mat("m1", 1)], &q)), 0);
        let beat = later + Duration::from_secs(60);
        assert_eq!(states(&s.poll(beat, &[mat("m1", 1)], &q)), 1, "the heartbeat");
    }

    #[test]
    fn availability_goes_out_on_every_change() {
        let mut s = PublisherSession::new(config(32), Jitter::new(1));
        let q = Queue::default();
        let t0 = Instant::now();
        let status = |reqs: &[Request]| -> Vec<String> {
            publishes(reqs)
                .iter()
                .filter(|p| p.topic == "fb/gw/m1/status")
                .map(|p| String::from_utf8(p.payload.clone()).unwrap())
                .collect()
        };
        assert_eq!(status(&s.connected(t0, false, &[mat("m1", 0)], &q)), ["online"]);
        assert!(status(&s.poll(t0, &[mat("m1", 0)], &q)).is_empty());
        let mut off = mat("m1", 0);
        off.available = false;
        off.available_version = 2;
        assert_eq!(status(&s.poll(t0, &[off.clone()], &q)), ["offline"]);
        let bye = s.goodbye(&[off]);
        assert_eq!(publishes(&bye).len(), 2, "the mat and the gateway go offline");
    }

    /// The session connected with one mat, "m1", and what it asked for.
    fn connected_with_m1() -> (PublisherSession, Queue) {
        let mut s = PublisherSession::new(config(32), Jitter::new(1));
        let q = Queue::default();
        s.connected(Instant::now(), false, &[mat("m1", 0)], &q);
        s.poll(Instant::now(), &[mat("m1", 0)], &q);
        (s, q)
    }

    /// The marker of the check under way, from what the session asked for.
    fn marker_of(reqs: &[Request]) -> Vec<u8> {
        publishes(reqs)
            .iter()
            .find(|p| p.topic == "fb/gw/marker")
            .map(|p| p.payload.clone())
            .expect("a marker published")
    }

    #[test]
    fn a_command_is_carried_out_once_the_broker_shows_no_retained_copy() {
        let (mut s, q) = connected_with_m1();
        let now = Instant::now();
        let mats = ["m1".to_string()];
        assert!(s
            .message("fb/gw/m1/command", b"reset_counters", false, now, &mats)
            .is_empty());
        let asked = s.poll(now, &[mat("m1", 0)], &q);
        assert_eq!(
            asked[0],
            Request::Subscribe(vec!["fb/gw/+/command".into()]),
            "subscribe again"
        );
        let marker = marker_of(&asked);
        assert!(
            s.message("fb/gw/marker", b"someone else's", false, now, &mats)
                .is_empty(),
            "a marker not ours ends nothing"
        );
        assert_eq!(
            s.message("fb/gw/marker", &marker, false, now, &mats),
            [Incoming::Command {
                mat: "m1".into(),
                command: MatCommand::ResetCounters
            }]
        );
    }

    #[test]
    fn a_retained_command_is_refused_live_or_on_subscribe_and_cleared() {
        let (mut s, q) = connected_with_m1();
        let now = Instant::now();
        let mats = ["m1".to_string()];
        // Published retained while we are subscribed: it arrives unflagged...
        assert!(s.message("fb/gw/m1/command", b"new_set", false, now, &mats).is_empty());
        let marker = marker_of(&s.poll(now, &[mat("m1", 0)], &q));
        // ...and flagged when we subscribe again.
        let flagged = s.message("fb/gw/m1/command", b"new_set", true, now, &mats);
        assert!(matches!(&flagged[..], [Incoming::Refused { why, .. }] if why.contains("retained")));
        let clear = s.poll(now, &[mat("m1", 0)], &q);
        assert!(
            publishes(&clear)
                .iter()
                .any(|p| p.topic == "fb/gw/m1/command" && p.retain && p.payload.is_empty()),
            "the retained command is cleared: {clear:?}"
        );
        let out = s.message("fb/gw/marker", &marker, false, now, &mats);
        assert!(
            matches!(&out[..], [Incoming::Refused { why, .. }] if why.contains("retained")),
            "{out:?}"
        );
        assert!(
            s.message("fb/gw/m1/command", b"", true, now, &mats).is_empty(),
            "our own clearing coming back is nothing"
        );
    }

    #[test]
    fn a_command_that_comes_during_a_check_waits_for_the_next() {
        let (mut s, q) = connected_with_m1();
        let now = Instant::now();
        let mats = ["m1".to_string()];
        s.message("fb/gw/m1/command", b"reset_counters", false, now, &mats);
        let first = marker_of(&s.poll(now, &[mat("m1", 0)], &q));
        s.message("fb/gw/m1/command", b"new_set", false, now, &mats);
        assert_eq!(
            s.message("fb/gw/marker", &first, false, now, &mats),
            [Incoming::Command {
                mat: "m1".into(),
                command: MatCommand::ResetCounters
            }],
            "only the command the check saw"
        );
        let second = marker_of(&s.poll(now, &[mat("m1", 0)], &q));
        assert_ne!(first, second);
        assert_eq!(
            s.message("fb/gw/marker", &second, false, now, &mats),
            [Incoming::Command {
                mat: "m1".into(),
                command: MatCommand::NewSet
            }]
        );
    }

    #[test]
    fn commands_are_taken_for_our_mats_only_and_bounded() {
        let (mut s, _) = connected_with_m1();
        let now = Instant::now();
        let mats = ["m1".to_string()];
        let why = |v: Vec<Incoming>| match &v[..] {
            [Incoming::Refused { why, .. }] => why.clone(),
            other => panic!("{other:?}"),
        };
        assert!(why(s.message("fb/gw/m9/command", b"new_set", false, now, &mats)).contains("m9"));
        assert!(why(s.message("fb/gw/m1/command", b"dance", false, now, &mats)).contains("unknown"));
        assert!(s
            .message("fb/other/m1/command", b"new_set", false, now, &mats)
            .is_empty());
        let big = vec![b'x'; 64 * 1024 + 1];
        assert!(why(s.message("fb/gw/m1/command", &big, false, now, &mats)).contains("65537 bytes"));
        assert!(why(s.message("ha/status", &big, true, now, &mats)).contains("over the limit"));
        for _ in 0..MAX_PENDING_COMMANDS {
            assert!(s.message("fb/gw/m1/command", b"new_set", false, now, &mats).is_empty());
        }
        assert!(why(s.message("fb/gw/m1/command", b"new_set", false, now, &mats)).contains("too many"));
    }

    #[test]
    fn a_kept_session_is_not_subscribed_again() {
        let mut s = PublisherSession::new(config(32), Jitter::new(1));
        let reqs = s.connected(Instant::now(), true, &[], &Queue::default());
        assert!(!reqs.iter().any(|r| matches!(r, Request::Subscribe(_))), "{reqs:?}");
    }

    fn view(names: &[(&str, &str)], devices: bool) -> AthletesView {
        AthletesView {
            roster: names
                .iter()
                .map(|(id, name)| RosterEntry {
                    id: id.to_string(),
                    name: name.to_string(),
                })
                .collect(),
            devices,
            sensors: BTreeMap::new(),
        }
    }

    fn topics_of(reqs: &[Request]) -> Vec<String> {
        publishes(reqs).iter().map(|p| p.topic.clone()).collect()
    }

    #[test]
    fn the_selects_follow_the_roster_and_a_name_becomes_the_id() {
        let mut cfg = config(32);
        cfg.discovery = true;
        let mut s = PublisherSession::new(cfg, Jitter::new(3));
        let q = Queue::default();
        let t0 = Instant::now();
        let m = [mat("m1", 0), mat("m2", 0)];
        s.set_athletes(view(&[("a-1", "Ana")], false));
        let first = s.connected(t0, false, &m, &q);
        let select = |reqs: &[Request], mat: &str| -> Option<serde_json::Value> {
            publishes(reqs)
                .iter()
                .find(|p| p.topic == format!("ha/select/flatback_gw/{mat}_athlete/config"))
                .map(|p| serde_json::from_slice(&p.payload).unwrap())
        };
        assert_eq!(
            select(&first, "m1").unwrap()["options"],
            serde_json::json!(["Guest", "Ana"])
        );
        assert!(select(&first, "m2").is_some());
        assert!(s.poll(t0, &m, &q).is_empty(), "nothing more while the roster stands");
        assert_eq!(s.next_deadline(&m), Some(t0 + Duration::from_secs(60)));
        s.set_athletes(view(&[("a-1", "Ana")], false));
        assert!(s.poll(t0, &m, &q).is_empty(), "the same roster: nothing");
        // A new athlete: every select again, with the new options.
        s.set_athletes(view(&[("a-1", "Ana"), ("a-2", "Bo")], false));
        assert!(s.next_deadline(&m).is_some_and(|d| d <= Instant::now()));
        let again = s.poll(t0, &m, &q);
        assert_eq!(
            select(&again, "m2").unwrap()["options"],
            serde_json::json!(["Guest", "Ana", "Bo"])
        );
        assert_eq!(
            topics_of(&again).len(),
            2,
            "the two selects only: {:?}",
            topics_of(&again)
        );
        // The select's option, as a command: Bo's id.
        let mats = ["m1".to_string()];
        s.message(
            "fb/gw/m1/command",
            br#"{"command":"athlete","name":"Bo"}"#,
            false,
            t0,
            &mats,
        );
        let marker = marker_of(&s.poll(t0, &m, &q));
        assert_eq!(
            s.message("fb/gw/marker", &marker, false, t0, &mats),
            [Incoming::Command {
                mat: "m1".into(),
                command: MatCommand::Athlete(Some("a-2".into()))
            }]
        );
        let unknown = s.message(
            "fb/gw/m1/command",
            br#"{"command":"athlete","name":"Cy"}"#,
            false,
            t0,
            &mats,
        );
        assert!(
            matches!(&unknown[..], [Incoming::Refused { why, .. }] if why.contains("Cy")),
            "{unknown:?}"
        );
        // Home Assistant's birth: the selects go out again with the rest.
        let [Incoming::HomeAssistantOnline { delay }] = s.message("ha/status", b"online", false, t0, &[])[..] else {
            panic!("HA's birth")
        };
        let resent = s.poll(t0 + delay, &m, &q);
        assert_eq!(
            select(&resent, "m1").unwrap()["options"],
            serde_json::json!(["Guest", "Ana", "Bo"])
        );
    }

    #[test]
    fn athlete_devices_come_and_go_with_the_roster_and_their_figures_when_changed() {
        let mut cfg = config(32);
        cfg.discovery = true;
        let mut s = PublisherSession::new(cfg, Jitter::new(3));
        let q = Queue::default();
        let t0 = Instant::now();
        let m = [mat("m1", 0)];
        let figures = |best: u32| AthleteSensors {
            last_session_perfect: 3,
            best_set: best,
            sessions_this_week: 1,
            floor_pct: None,
            ready: false,
        };
        let mut v = view(&[("a-1", "Ana"), ("a-2", "Bo")], true);
        v.sensors.insert("a-1".into(), figures(5));
        s.set_athletes(v.clone());
        let first = s.connected(t0, false, &m, &q);
        let configs = |reqs: &[Request], id: &str| {
            publishes(reqs)
                .iter()
                .filter(|p| p.topic.contains(&format!("/athlete_{id}_")))
                .map(|p| p.payload.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(configs(&first, "a-1").len(), 5);
        assert_eq!(configs(&first, "a-2").len(), 5, "a device before any figures");
        let state = publishes(&first)
            .into_iter()
            .find(|p| p.topic == "fb/gw/athletes/a-1")
            .expect("Ana's figures");
        assert!(state.retain);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&state.payload).unwrap()["best_set"],
            5
        );
        assert!(!topics_of(&first).contains(&"fb/gw/athletes/a-2".to_string()));
        assert!(s.poll(t0, &m, &q).is_empty());
        // New figures: the state only.
        v.sensors.insert("a-1".into(), figures(6));
        s.set_athletes(v.clone());
        assert_eq!(topics_of(&s.poll(t0, &m, &q)), ["fb/gw/athletes/a-1"]);
        // Bo removed: his configs and state emptied, the selects again.
        v.roster.pop();
        s.set_athletes(v.clone());
        let gone = s.poll(t0, &m, &q);
        let cleared: Vec<_> = configs(&gone, "a-2");
        assert_eq!(cleared, [0, 0, 0, 0, 0], "empty retained configs");
        assert!(publishes(&gone)
            .iter()
            .any(|p| p.topic == "fb/gw/athletes/a-2" && p.retain && p.payload.is_empty()));
        assert!(topics_of(&gone).contains(&"ha/select/flatback_gw/m1_athlete/config".to_string()));
        assert!(configs(&gone, "a-1").is_empty(), "Ana's device stands");
        // Devices off: every device goes.
        v.devices = false;
        s.set_athletes(v);
        assert_eq!(configs(&s.poll(t0, &m, &q), "a-1"), [0, 0, 0, 0, 0]);
        assert!(s.poll(t0, &m, &q).is_empty());
    }

    #[test]
    fn home_assistants_birth_resends_discovery_after_a_random_delay() {
        let mut cfg = config(32);
        cfg.discovery = true;
        let mut s = PublisherSession::new(cfg, Jitter::new(3));
        let q = Queue::default();
        let t0 = Instant::now();
        let m = [mat("m1", 0)];
        let first = s.connected(t0, false, &m, &q);
        let discovery = |reqs: &[Request]| publishes(reqs).iter().filter(|p| p.topic.starts_with("ha/")).count();
        assert!(discovery(&first) > 10);
        s.poll(t0, &m, &q);
        assert!(s.message("ha/status", b"offline", true, t0, &[]).is_empty());
        let [Incoming::HomeAssistantOnline { delay }] = s.message("ha/status", b"online", true, t0, &[])[..] else {
            panic!("HA's birth")
        };
        assert!(delay <= Duration::from_secs(2));
        assert_eq!(s.next_deadline(&m), Some(t0 + delay));
        let again = s.poll(t0 + delay, &m, &q);
        assert_eq!(discovery(&again), discovery(&first));
        assert!(
            publishes(&again).iter().any(|p| p.topic == "fb/gw/m1/state"),
            "and the state again"
        );
    }
}
