//! The embedded broker's state: sessions, their subscriptions and QoS 1
//! flights, the retained messages, and the Last Will of each live
//! connection. One [`Router`] behind one mutex; every method runs without
//! waiting (packets go to connections through bounded channels with
//! `try_send`), so the lock is held only for the routing itself. Holding it
//! across a whole publish is also what keeps the order: messages reach every
//! subscriber in the order the router saw them.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::wire::topics::matches;
use bytes::Bytes;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, PubComp, PubRec, Publish, SubAck, Subscribe, SubscribeReasonCode,
    UnsubAck, Unsubscribe,
};
use rumqttc::mqttbytes::QoS;
use tokio::sync::{mpsc, Notify};

/// QoS 1 messages sent to one session and not yet acknowledged.
pub const MAX_INFLIGHT: usize = 100;
/// QoS 1 messages waiting for a session (offline, or its window full).
pub const MAX_QUEUED: usize = 10_000;

/// One network connection, as the router sees it: where its packets go and
/// how to close it.
#[derive(Debug, Clone)]
pub struct Link {
    pub id: u64,
    pub tx: mpsc::Sender<Packet>,
    pub close: Arc<Notify>,
}

impl Link {
    /// Queues `packet` for the connection; a connection whose queue is full
    /// (a client that does not read) or gone is told to close.
    pub fn send(&self, packet: Packet) {
        if let Err(e) = self.tx.try_send(packet) {
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                tracing::warn!(
                    link = self.id,
                    "embedded broker: a client does not keep up; disconnecting it"
                );
            }
            self.close.notify_one();
        }
    }
}

/// A message as stored and routed.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
}

impl Message {
    pub fn from_publish(p: &Publish) -> Message {
        Message {
            topic: p.topic.clone(),
            payload: p.payload.clone(),
            qos: p.qos,
            retain: p.retain,
        }
    }
}

#[derive(Debug)]
struct Connected {
    link: Link,
    will: Option<Message>,
}

#[derive(Debug, Default)]
struct ClientSession {
    connected: Option<Connected>,
    clean: bool,
    /// Filter -> granted QoS.
    subscriptions: BTreeMap<String, QoS>,
    /// Sent QoS 1 messages in sending order, each with its packet id.
    inflight: VecDeque<Publish>,
    /// QoS 1 messages not sent yet.
    queue: VecDeque<Publish>,
    last_pkid: u16,
    /// Packet ids of QoS 2 messages received (and routed) whose PUBREL has
    /// not come yet: a resent PUBLISH with one of them is not routed again.
    qos2_received: HashSet<u16>,
}

impl ClientSession {
    fn link(&self) -> Option<&Link> {
        self.connected.as_ref().map(|c| &c.link)
    }

    fn granted(&self, topic: &str) -> Option<QoS> {
        self.subscriptions
            .iter()
            .filter(|(filter, _)| matches(filter, topic))
            .map(|(_, &qos)| qos)
            .max_by_key(|&q| q as u8)
    }

    fn deliver(&mut self, m: &Message, qos: QoS, retain: bool) {
        let mut p = Publish::from_bytes(m.topic.clone(), qos, m.payload.clone());
        p.retain = retain;
        if qos == QoS::AtMostOnce {
            if let Some(link) = self.link() {
                link.send(Packet::Publish(p));
            }
            return;
        }
        if self.queue.len() >= MAX_QUEUED {
            tracing::warn!(topic = %m.topic, "embedded broker: {MAX_QUEUED} messages queued for a session; dropping one");
            return;
        }
        self.queue.push_back(p);
        self.pump();
    }

    /// Sends queued QoS 1 messages while the window has room.
    fn pump(&mut self) {
        let Some(link) = self.connected.as_ref().map(|c| c.link.clone()) else {
            return;
        };
        while self.inflight.len() < MAX_INFLIGHT {
            let Some(mut p) = self.queue.pop_front() else { break };
            p.pkid = self.next_pkid();
            self.inflight.push_back(p.clone());
            link.send(Packet::Publish(p));
        }
    }

    /// A packet id in 1..=65535 not in flight (there are at most
    /// MAX_INFLIGHT in flight, so one is always free).
    fn next_pkid(&mut self) -> u16 {
        loop {
            self.last_pkid = self.last_pkid.checked_add(1).unwrap_or(1);
            let id = self.last_pkid;
            if !self.inflight.iter().any(|p| p.pkid == id) {
                return id;
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Router {
    sessions: HashMap<String, ClientSession>,
    retained: BTreeMap<String, Message>,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Clients with a live connection.
    pub fn connected_clients(&self) -> usize {
        self.sessions.values().filter(|s| s.connected.is_some()).count()
    }

    /// Whether `link_id` is the live connection of `client_id` (not one
    /// taken over, still reading its last packets).
    pub fn is_current(&self, client_id: &str, link_id: u64) -> bool {
        self.sessions
            .get(client_id)
            .and_then(|s| s.connected.as_ref())
            .is_some_and(|c| c.link.id == link_id)
    }

    /// Retained messages stored.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// A CONNECT accepted for `client_id` on `link`: takes over an earlier
    /// connection of the same client (closing it and publishing its Last
    /// Will first, so that whatever the new connection publishes comes
    /// after), starts or resumes the session, sends CONNACK, then what a
    /// resumed session has for the client (unacknowledged messages again,
    /// then queued ones). Returns whether a session was resumed.
    pub fn connect(&mut self, client_id: &str, clean: bool, link: Link, will: Option<Message>) -> bool {
        let mut taken_over_will = None;
        if let Some(old) = self.sessions.get_mut(client_id).and_then(|s| s.connected.take()) {
            tracing::debug!(client_id, "embedded broker: a new connection takes the session over");
            old.link.close.notify_one();
            taken_over_will = old.will;
        }
        if let Some(w) = taken_over_will {
            self.publish(&w);
        }
        if clean {
            self.sessions.remove(client_id);
        }
        let session_present = self.sessions.contains_key(client_id);
        let session = self.sessions.entry(client_id.to_string()).or_default();
        session.clean = clean;
        link.send(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            session_present,
        )));
        for p in session.inflight.iter_mut() {
            p.dup = true;
            link.send(Packet::Publish(p.clone()));
        }
        session.connected = Some(Connected { link, will });
        session.pump();
        session_present
    }

    /// The client said DISCONNECT: its Last Will is discarded.
    pub fn forget_will(&mut self, client_id: &str, link_id: u64) {
        if let Some(c) = self.current(client_id, link_id) {
            c.will = None;
        }
    }

    /// The connection `link_id` of `client_id` has ended. Unless it was
    /// taken over (then nothing is left to do), the session goes offline
    /// (or away, for a clean session) and a Last Will still held is
    /// published.
    pub fn disconnected(&mut self, client_id: &str, link_id: u64) {
        if self.current(client_id, link_id).is_none() {
            return;
        }
        let session = self.sessions.get_mut(client_id).expect("current session");
        let will = session.connected.take().and_then(|c| c.will);
        if session.clean {
            self.sessions.remove(client_id);
        }
        if let Some(w) = will {
            tracing::debug!(client_id, topic = %w.topic, "embedded broker: publishing the Last Will");
            self.publish(&w);
        }
    }

    fn current(&mut self, client_id: &str, link_id: u64) -> Option<&mut Connected> {
        self.sessions
            .get_mut(client_id)
            .and_then(|s| s.connected.as_mut())
            .filter(|c| c.link.id == link_id)
    }

    /// Stores or clears the retained message of the topic, then hands the
    /// message to every matching session (retain flag cleared: these are
    /// live messages).
    pub fn publish(&mut self, m: &Message) {
        if m.retain {
            if m.payload.is_empty() {
                self.retained.remove(&m.topic);
            } else {
                self.retained.insert(m.topic.clone(), m.clone());
            }
        }
        for session in self.sessions.values_mut() {
            if let Some(granted) = session.granted(&m.topic) {
                session.deliver(m, min_qos(granted, m.qos), false);
            }
        }
    }

    /// A PUBLISH from the client: routed, then acknowledged per its QoS.
    pub fn client_publish(&mut self, client_id: &str, link: &Link, p: &Publish) {
        match p.qos {
            QoS::AtMostOnce => self.publish(&Message::from_publish(p)),
            QoS::AtLeastOnce => {
                self.publish(&Message::from_publish(p));
                link.send(Packet::PubAck(PubAck::new(p.pkid)));
            }
            QoS::ExactlyOnce => {
                let fresh = self
                    .sessions
                    .get_mut(client_id)
                    .is_some_and(|s| s.qos2_received.insert(p.pkid));
                if fresh {
                    self.publish(&Message::from_publish(p));
                }
                link.send(Packet::PubRec(PubRec::new(p.pkid)));
            }
        }
    }

    /// PUBREL for a QoS 2 message from the client.
    pub fn client_pubrel(&mut self, client_id: &str, link: &Link, pkid: u16) {
        if let Some(s) = self.sessions.get_mut(client_id) {
            s.qos2_received.remove(&pkid);
        }
        link.send(Packet::PubComp(PubComp::new(pkid)));
    }

    /// PUBACK for a QoS 1 message sent to the client.
    pub fn puback(&mut self, client_id: &str, pkid: u16) {
        if let Some(s) = self.sessions.get_mut(client_id) {
            if let Some(i) = s.inflight.iter().position(|p| p.pkid == pkid) {
                s.inflight.remove(i);
            }
            s.pump();
        }
    }

    /// SUBSCRIBE: a SUBACK (granted QoS at most 1; 0x80 for an invalid
    /// filter), then every retained message matching each filter, with the
    /// retain flag set.
    pub fn subscribe(&mut self, client_id: &str, link: &Link, sub: &Subscribe) {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        let mut codes = Vec::with_capacity(sub.filters.len());
        let mut granted_filters = Vec::new();
        for f in &sub.filters {
            if valid_filter(&f.path) {
                let qos = min_qos(f.qos, QoS::AtLeastOnce);
                session.subscriptions.insert(f.path.clone(), qos);
                granted_filters.push((f.path.clone(), qos));
                codes.push(SubscribeReasonCode::Success(qos));
            } else {
                codes.push(SubscribeReasonCode::Failure);
            }
        }
        link.send(Packet::SubAck(SubAck::new(sub.pkid, codes)));
        for (filter, qos) in granted_filters {
            for m in self.retained.values().filter(|m| matches(&filter, &m.topic)) {
                session.deliver(m, min_qos(qos, m.qos), true);
            }
        }
    }

    /// UNSUBSCRIBE: the filters go (unknown ones are fine), UNSUBACK.
    pub fn unsubscribe(&mut self, client_id: &str, link: &Link, unsub: &Unsubscribe) {
        if let Some(s) = self.sessions.get_mut(client_id) {
            for t in &unsub.topics {
                s.subscriptions.remove(t);
            }
        }
        link.send(Packet::UnsubAck(UnsubAck::new(unsub.pkid)));
    }
}

fn min_qos(a: QoS, b: QoS) -> QoS {
    if (a as u8) <= (b as u8) {
        a
    } else {
        b
    }
}

/// A topic name a client may publish to: not empty, no wildcard.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#']) && !topic.contains('\0')
}

/// A topic filter (MQTT 3.1.1, 4.7): not empty, `+` alone in its level,
/// `#` alone in the last level.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| match *level {
        "#" => i == levels.len() - 1,
        "+" => true,
        l => !l.contains(['+', '#']),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_with_misplaced_wildcards_are_invalid() {
        for ok in ["#", "+", "a/#", "a/+/b", "+/+", "/", "a//b"] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a/b+", "a/+b/c", "##", "a/\0"] {
            assert!(!valid_filter(bad), "{bad:?}");
        }
        assert!(valid_topic("a/b"));
        for bad in ["", "a/+", "a/#", "a+b"] {
            assert!(!valid_topic(bad), "{bad:?}");
        }
    }

    fn link(id: u64) -> (Link, mpsc::Receiver<Packet>) {
        let (tx, rx) = mpsc::channel(1000);
        (
            Link {
                id,
                tx,
                close: Arc::new(Notify::new()),
            },
            rx,
        )
    }

    fn drain(rx: &mut mpsc::Receiver<Packet>) -> Vec<Packet> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    fn msg(topic: &str, payload: &str, qos: QoS, retain: bool) -> Message {
        Message {
            topic: topic.into(),
            payload: Bytes::copy_from_slice(payload.as_bytes()),
            qos,
            retain,
        }
    }

    fn publishes(packets: &[Packet]) -> Vec<(String, Vec<u8>, u16, bool, bool)> {
        packets
            .iter()
            .filter_map(|p| match p {
                Packet::Publish(p) => Some((p.topic.clone(), p.payload.to_vec(), p.pkid, p.dup, p.retain)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_qos1_window_holds_back_messages_until_pubacks_free_it() {
        let mut r = Router::new();
        let (l, mut rx) = link(1);
        r.connect("sub", true, l.clone(), None);
        r.subscribe("sub", &l, &Subscribe::new("t", QoS::AtLeastOnce));
        for i in 0..MAX_INFLIGHT + 5 {
            r.publish(&msg("t", &i.to_string(), QoS::AtLeastOnce, false));
        }
        let sent = publishes(&drain(&mut rx));
        assert_eq!(sent.len(), MAX_INFLIGHT, "only a window's worth goes out");
        let first_pkid = sent[0].2;
        r.puback("sub", first_pkid);
        r.puback("sub", sent[1].2);
        let more = publishes(&drain(&mut rx));
        let payloads: Vec<Vec<u8>> = more.iter().map(|m| m.1.clone()).collect();
        assert_eq!(
            payloads,
            vec![b"100".to_vec(), b"101".to_vec()],
            "the next two, in order"
        );
        assert!(
            more.iter().all(|m| m.2 != sent[2].2),
            "packet ids still in flight are not reused"
        );
    }

    #[test]
    fn a_persistent_session_gets_unacknowledged_messages_again_marked_dup_then_the_queued_ones() {
        let mut r = Router::new();
        let (l1, mut rx1) = link(1);
        r.connect("sub", false, l1.clone(), None);
        r.subscribe("sub", &l1, &Subscribe::new("t", QoS::AtLeastOnce));
        r.publish(&msg("t", "sent", QoS::AtLeastOnce, false));
        assert_eq!(publishes(&drain(&mut rx1)).len(), 1);
        r.disconnected("sub", 1);
        r.publish(&msg("t", "queued", QoS::AtLeastOnce, false));
        r.publish(&msg("t", "qos0 is not kept", QoS::AtMostOnce, false));

        let (l2, mut rx2) = link(2);
        assert!(r.connect("sub", false, l2, None), "the session is resumed");
        let packets = drain(&mut rx2);
        assert!(matches!(
            packets[0],
            Packet::ConnAck(ConnAck {
                session_present: true,
                ..
            })
        ));
        let p = publishes(&packets);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!((p[0].1.as_slice(), p[0].3), (b"sent".as_slice(), true));
        assert_eq!((p[1].1.as_slice(), p[1].3), (b"queued".as_slice(), false));
    }

    #[test]
    fn a_takeover_publishes_the_old_connections_will_before_the_new_connack() {
        let mut r = Router::new();
        let (watcher, mut wrx) = link(1);
        r.connect("watcher", true, watcher.clone(), None);
        r.subscribe("watcher", &watcher, &Subscribe::new("status", QoS::AtLeastOnce));
        let (old, _orx) = link(2);
        r.connect(
            "dev",
            true,
            old.clone(),
            Some(msg("status", "offline", QoS::AtLeastOnce, true)),
        );
        let (new, mut nrx) = link(3);
        r.connect("dev", true, new.clone(), None);
        assert!(
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap()
                .block_on(async {
                    tokio::time::timeout(std::time::Duration::from_secs(1), old.close.notified())
                        .await
                        .is_ok()
                }),
            "the old connection is told to close"
        );
        let got = publishes(&drain(&mut wrx));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, b"offline");
        assert!(matches!(drain(&mut nrx)[0], Packet::ConnAck(_)));
        // The old connection's end changes nothing more: its will is gone.
        r.disconnected("dev", 2);
        assert!(drain(&mut wrx).is_empty());
        assert_eq!(r.connected_clients(), 2);
    }
}
