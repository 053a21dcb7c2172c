//! The floor as the browsers see it: every mat of every gateway on the
//! broker, followed by the same model as `flatback watch`
//! ([`crate::dashboard::Dashboard`]) on a subscribing connection of its own, and
//! turned into JSON tiles for the pages.
//!
//! A thread takes the broker's messages in batches (whatever has arrived),
//! applies them to the model, and compares each tile's JSON with the one
//! sent before: only the tiles that changed go out, as one update, on a
//! broadcast channel every browser's stream reads. A change of a contact
//! alone waits up to [`CONTACT_EVERY`] for company: contacts move on almost
//! every state message, and each update costs a write per browser. A
//! browser that falls behind skips to the whole floor ([`FloorFeed::snapshot`]).
//! The JSON leaves out what changes with the clock alone (ages), so a tile
//! is sent only when something about the mat changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::dashboard::{BrokerLink, Dashboard, Screen, Status, Tile, Tone};
use crate::mqtt::subscriber::LinkEvent;
use crate::wire::topics::{self, Subject};

/// Updates kept for browsers that are a little behind.
const BACKLOG: usize = 64;
/// Messages from the broker are gathered this long into one update.
const GATHER: Duration = Duration::from_millis(30);
/// A change of a tile's contact alone goes out at most this often: it moves
/// on almost every state message of a mat in use, and each update costs a
/// write per browser; four a second is still a live bar. Anything else (an
/// event, a counter, the status) goes out within [`GATHER`].
const CONTACT_EVERY: Duration = Duration::from_millis(250);

/// One update of the floor, as the browsers' streams send it.
#[derive(Debug, Clone)]
pub enum FloorUpdate {
    /// The whole floor changed shape (a mat appeared, the broker link
    /// changed): every tile, in order.
    Floor(Bytes),
    /// These tiles changed.
    Tiles(Bytes),
}

/// What a mat's last event was, from its envelope.
#[derive(Debug, Clone, Default, PartialEq)]
struct LastEvent {
    kind: String,
    seq: Option<u64>,
    time: Option<String>,
}

#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: Option<String>,
    seq: Option<u64>,
    time: Option<String>,
}

/// How the floor names an athlete from their id (the public floor shows
/// initials unless `[athletes] show_names_on_floor`).
pub type Namer = Arc<dyn Fn(&str) -> String + Send + Sync>;

#[derive(serde::Deserialize)]
struct StateAthlete {
    #[serde(default)]
    athlete: Option<String>,
}

struct Model {
    dashboard: Dashboard,
    /// The athlete each mat's state names (their id).
    athletes: HashMap<(String, String), String>,
    namer: Option<Namer>,
    gateway: String,
    own: Vec<String>,
    last_events: HashMap<(String, String), LastEvent>,
    /// Each tile as last sent, in order.
    sent: Vec<TileJson>,
    link: Value,
    /// When the last update went out, for [`CONTACT_EVERY`].
    last_sent: Instant,
}

/// A tile's JSON as the pages get it, with what it says besides the
/// contact kept apart, to tell a contact-only change from the rest.
#[derive(Debug, Clone, PartialEq)]
struct TileJson {
    id: String,
    /// Everything but the contact.
    facts: Bytes,
    /// The whole tile: `facts` with the contact added.
    json: Bytes,
}

impl TileJson {
    /// `facts` is the tile's JSON object without its contact.
    fn new(id: String, facts: &Value, contact: Option<f64>) -> TileJson {
        let facts = facts.to_string();
        // The object with one more member: `{...,"contact":x}`.
        let mut json = facts.clone().into_bytes();
        json.pop();
        json.extend_from_slice(b",\"contact\":");
        json.extend_from_slice(json!(contact).to_string().as_bytes());
        json.push(b'}');
        TileJson {
            id,
            facts: Bytes::from(facts),
            json: Bytes::from(json),
        }
    }
}

/// Which of the tiles that changed go out now: all of them when one changed
/// more than its contact or when [`CONTACT_EVERY`] has passed since the last
/// update; none when only contacts moved and that time has not passed.
fn due(changed: &[(&TileJson, &TileJson)], since_last: Duration) -> bool {
    !changed.is_empty() && (since_last >= CONTACT_EVERY || changed.iter().any(|(new, old)| new.facts != old.facts))
}

/// The floor shared between its thread and the web server.
pub struct FloorFeed {
    model: Mutex<Model>,
    updates: broadcast::Sender<FloorUpdate>,
    started: Instant,
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Offline => "offline",
        Status::Arching => "arching",
        Status::Occupied => "occupied",
        Status::Empty => "empty",
        Status::Unknown => "unknown",
    }
}

fn tone_name(t: Tone) -> &'static str {
    match t {
        Tone::Good => "good",
        Tone::Bad => "bad",
        Tone::Info => "info",
        Tone::Warn => "warn",
    }
}

/// A tile's JSON but its contact: what the pages draw (no ages: the page
/// keeps time).
fn tile_facts(t: &Tile, own: bool, last: Option<&LastEvent>, athlete: Option<String>) -> Value {
    let c = &t.counters;
    json!({
        "id": format!("{}/{}", t.key.gateway, t.key.mat),
        "gateway": t.key.gateway,
        "mat": t.key.mat,
        "label": t.label,
        "own": own,
        "status": status_name(t.status),
        "set": c.set,
        "set_reps": c.set_reps,
        "set_perfect": c.set_perfect,
        "reps": c.reps,
        "perfect_reps": c.perfect_reps,
        "arches": c.arches,
        "last_descent_s": t.last_descent_s,
        "last_rushed": t.last_rushed,
        "log": t.events.iter().map(|(_, e)| json!({"text": e.text, "tone": tone_name(e.tone)})).collect::<Vec<_>>(),
        "event": last.map(|e| json!({"type": e.kind, "seq": e.seq, "time": e.time})),
        "athlete": athlete,
    })
}

fn link_json(link: &BrokerLink) -> Value {
    match link {
        BrokerLink::Connecting => json!({"state": "connecting"}),
        BrokerLink::Connected => json!({"state": "connected"}),
        BrokerLink::Lost(why) => json!({"state": "lost", "why": why}),
    }
}

impl Model {
    /// The tiles in the page's order: this gateway's own mats first.
    fn ordered(&self, screen: &Screen) -> Vec<TileJson> {
        let mut tiles: Vec<&Tile> = screen.tiles.iter().collect();
        tiles.sort_by_key(|t| t.key.gateway != self.gateway);
        tiles
            .into_iter()
            .map(|t| {
                let own = t.key.gateway == self.gateway && self.own.contains(&t.key.mat);
                let key = (t.key.gateway.clone(), t.key.mat.clone());
                let last = self.last_events.get(&key);
                // Never the id itself: a label only.
                let athlete = self
                    .athletes
                    .get(&key)
                    .map(|id| self.namer.as_ref().map_or_else(|| "athlete".to_string(), |n| n(id)));
                let id = format!("{}/{}", t.key.gateway, t.key.mat);
                TileJson::new(id, &tile_facts(t, own, last, athlete), t.contact)
            })
            .collect()
    }

    fn floor_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(256 + self.sent.iter().map(|t| t.json.len() + 1).sum::<usize>());
        out.extend_from_slice(format!("{{\"link\":{},\"tiles\":[", self.link).as_bytes());
        for (i, t) in self.sent.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&t.json);
        }
        out.extend_from_slice(b"]}");
        Bytes::from(out)
    }
}

impl FloorFeed {
    /// The floor under `base`, as seen by gateway `gateway` whose own mats
    /// are `own`; `arch_threshold` is the share of the reference below which
    /// an arch starts.
    pub fn new(base: &str, broker: &str, gateway: &str, own: &[String], arch_threshold: f64) -> Arc<FloorFeed> {
        let (updates, _) = broadcast::channel(BACKLOG);
        Arc::new(FloorFeed {
            model: Mutex::new(Model {
                dashboard: Dashboard::new(base, broker, arch_threshold),
                athletes: HashMap::new(),
                namer: None,
                gateway: gateway.to_string(),
                own: own.to_vec(),
                last_events: HashMap::new(),
                sent: Vec::new(),
                last_sent: Instant::now(),
                link: link_json(&BrokerLink::Connecting),
            }),
            updates,
            started: Instant::now(),
        })
    }

    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How tiles name the athlete on a mat.
    pub fn set_namer(&self, namer: Namer) {
        self.model().namer = Some(namer);
    }

    /// The whole floor now, and a receiver of the updates after it.
    pub fn subscribe(&self) -> (Bytes, broadcast::Receiver<FloorUpdate>) {
        // Subscribed under the lock: no update falls between the two.
        let model = self.model();
        let rx = self.updates.subscribe();
        (model.floor_bytes(), rx)
    }

    /// The whole floor now.
    pub fn snapshot(&self) -> Bytes {
        self.model().floor_bytes()
    }

    /// The tile of `gateway`/`mat`, if the floor has one.
    pub fn tile(&self, gateway: &str, mat: &str) -> Option<Bytes> {
        let id = format!("{gateway}/{mat}");
        self.model().sent.iter().find(|t| t.id == id).map(|t| t.json.clone())
    }

    /// Applies a batch of the broker's news, then sends what changed (or,
    /// when only contacts changed, what is due). True when changes wait:
    /// call it again (an empty batch will do) [`CONTACT_EVERY`] later.
    pub fn apply(&self, batch: impl IntoIterator<Item = LinkEvent>) -> bool {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let mut model = self.model();
        let mut link_changed = false;
        for event in batch {
            match event {
                LinkEvent::Subscribed => {
                    model.dashboard.set_link(BrokerLink::Connected);
                    link_changed = true;
                }
                LinkEvent::Lost(why) => {
                    model.dashboard.set_link(BrokerLink::Lost(why));
                    link_changed = true;
                }
                LinkEvent::Message { topic, payload } => {
                    if let Some(Subject::MatState { gateway, mat }) = topics::parse(model.dashboard.base(), &topic) {
                        if let Ok(state) = serde_json::from_slice::<StateAthlete>(&payload) {
                            let key = (gateway.to_string(), mat.to_string());
                            match state.athlete {
                                Some(id) => model.athletes.insert(key, id),
                                None => model.athletes.remove(&key),
                            };
                        }
                    }
                    if let Some(Subject::MatEvent { gateway, mat }) = topics::parse(model.dashboard.base(), &topic) {
                        if let Ok(env) = serde_json::from_slice::<Envelope>(&payload) {
                            let last = LastEvent {
                                kind: env.kind.unwrap_or_default(),
                                seq: env.seq,
                                time: env.time,
                            };
                            model.last_events.insert((gateway.to_string(), mat.to_string()), last);
                        }
                    }
                    model.dashboard.apply(&topic, &payload, now_ms);
                }
            }
        }
        let screen = model.dashboard.screen(now_ms);
        if link_changed {
            model.link = link_json(&screen.link);
        }
        let tiles = model.ordered(&screen);
        let same_shape = tiles.len() == model.sent.len() && tiles.iter().zip(&model.sent).all(|(a, b)| a.id == b.id);
        if !same_shape || link_changed {
            model.sent = tiles;
            let floor = model.floor_bytes();
            model.last_sent = Instant::now();
            let _ = self.updates.send(FloorUpdate::Floor(floor));
            return false;
        }
        let changed: Vec<(&TileJson, &TileJson)> = tiles
            .iter()
            .zip(&model.sent)
            .filter(|(new, old)| new.json != old.json)
            .collect();
        if !due(&changed, model.last_sent.elapsed()) {
            // Only contacts moved, and too soon: they wait for the next update.
            return !changed.is_empty();
        }
        let mut out = Vec::with_capacity(changed.iter().map(|(t, _)| t.json.len() + 1).sum::<usize>() + 2);
        out.push(b'[');
        for (i, (t, _)) in changed.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&t.json);
        }
        out.push(b']');
        model.sent = tiles;
        model.last_sent = Instant::now();
        let _ = self.updates.send(FloorUpdate::Tiles(Bytes::from(out)));
        false
    }

    /// Follows `link` until it ends: each message, with whatever else has
    /// arrived meanwhile, is one batch.
    pub fn follow(
        self: Arc<FloorFeed>,
        link: crate::mqtt::subscriber::MqttLink,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) {
        use std::sync::atomic::Ordering;
        use std::sync::mpsc::RecvTimeoutError;
        let mut last_update = Instant::now();
        // Contact changes held back by `apply`, to be sent when due.
        let mut waiting = false;
        while !stop.load(Ordering::Relaxed) {
            let wait = if waiting {
                CONTACT_EVERY
            } else {
                Duration::from_millis(250)
            };
            let first = match link.recv_timeout(wait) {
                Ok(e) => e,
                Err(RecvTimeoutError::Timeout) => {
                    if waiting {
                        waiting = self.apply([]);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // At most one update per GATHER: each costs a write and a
            // wake-up per browser, which is most of the web view's CPU (16
            // mats: about 57 updates a second one message at a time), not
            // the JSON. A message after a quiet spell goes out at once; under
            // load, what arrives until GATHER after the last update joins it.
            let until = last_update + GATHER;
            let mut batch = vec![first];
            while batch.len() < 1024 {
                let left = until.saturating_duration_since(Instant::now());
                let next = if left.is_zero() {
                    link.try_recv().ok_or(RecvTimeoutError::Timeout)
                } else {
                    link.recv_timeout(left)
                };
                match next {
                    Ok(e) => batch.push(e),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        self.apply(batch);
                        return;
                    }
                }
            }
            waiting = self.apply(batch);
            last_update = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, payload: &str) -> LinkEvent {
        LinkEvent::Message {
            topic: topic.into(),
            payload: payload.as_bytes().to_vec(),
        }
    }

    fn json_of(b: &Bytes) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn own_mats_first_then_only_what_changed() {
        let floor = FloorFeed::new("flatback", "mqtt://x", "gw2", &["b".into()], 0.6);
        let (first, mut rx) = floor.subscribe();
        assert_eq!(json_of(&first)["tiles"], json!([]));
        floor.apply([
            LinkEvent::Subscribed,
            msg("flatback/gw1/a/status", "online"),
            msg("flatback/gw2/b/status", "online"),
        ]);
        let Ok(FloorUpdate::Floor(f)) = rx.try_recv() else {
            panic!("a new floor")
        };
        let f = json_of(&f);
        let ids: Vec<&str> = f["tiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["gw2/b", "gw1/a"], "this gateway's own first");
        assert_eq!(f["tiles"][0]["own"], true);
        assert_eq!(f["tiles"][1]["own"], false);
        assert_eq!(f["link"]["state"], "connected");
        // An arch on gw1/a: one update, with only that tile.
        floor.apply([msg(
            "flatback/gw1/a/event",
            r#"{"type":"arch","phase":"start","t_ms":5,"contact":0.4,"mat":"a","seq":7,"time":"2024-01-01T00:00:00.000Z"}"#,
        )]);
        let Ok(FloorUpdate::Tiles(t)) = rx.try_recv() else {
            panic!("tiles")
        };
        let t = json_of(&t);
        assert_eq!(t.as_array().unwrap().len(), 1);
        assert_eq!(t[0]["id"], "gw1/a");
        assert_eq!(t[0]["status"], "arching");
        assert_eq!(t[0]["event"]["seq"], 7);
        assert_eq!(t[0]["event"]["time"], "2024-01-01T00:00:00.000Z");
        // Nothing new: nothing sent.
        floor.apply([msg("flatback/gw1/a/status", "online")]);
        assert!(rx.try_recv().is_err());
        assert_eq!(json_of(&floor.tile("gw1", "a").unwrap())["status"], "arching");
        assert!(floor.tile("gw1", "zz").is_none());
        // The athlete the state names: a label only, never the id.
        assert_eq!(json_of(&floor.tile("gw2", "b").unwrap())["athlete"], Value::Null);
        floor.apply([msg("flatback/gw2/b/state", r#"{"occupied":true,"athlete":"a-1"}"#)]);
        assert_eq!(json_of(&floor.tile("gw2", "b").unwrap())["athlete"], "athlete");
        floor.set_namer(Arc::new(|id: &str| format!("label of {}", id.len())));
        floor.apply([msg("flatback/gw2/b/state", r#"{"occupied":true,"athlete":"a-12"}"#)]);
        assert_eq!(json_of(&floor.tile("gw2", "b").unwrap())["athlete"], "label of 4");
        floor.apply([msg("flatback/gw2/b/state", r#"{"occupied":false,"athlete":null}"#)]);
        assert_eq!(json_of(&floor.tile("gw2", "b").unwrap())["athlete"], Value::Null);
    }

    #[test]
    fn a_contact_alone_waits_its_turn_anything_else_goes_at_once() {
        let floor = FloorFeed::new("flatback", "mqtt://x", "gw", &["a".into()], 0.6);
        let (_, mut rx) = floor.subscribe();
        let state = |contact: u32, reps: u32| {
            msg(
                "flatback/gw/a/state",
                &format!(
                    r#"{{"occupied":true,"arching":false,"contact":{contact},"set":1,"set_reps":{reps},"set_perfect":{reps}}}"#
                ),
            )
        };
        floor.apply([
            LinkEvent::Subscribed,
            msg("flatback/gw/a/status", "online"),
            state(90, 0),
        ]);
        assert!(matches!(rx.try_recv(), Ok(FloorUpdate::Floor(_))));
        assert_eq!(json_of(&floor.tile("gw", "a").unwrap())["contact"], 0.9);
        // The contact alone, right after an update: it waits.
        assert!(floor.apply([state(80, 0)]), "the change is held");
        assert!(rx.try_recv().is_err());
        assert_eq!(json_of(&floor.tile("gw", "a").unwrap())["contact"], 0.9);
        // A rep goes out at once, with the contact that waited.
        assert!(!floor.apply([state(70, 1)]));
        let Ok(FloorUpdate::Tiles(t)) = rx.try_recv() else {
            panic!("tiles")
        };
        let t = json_of(&t);
        assert_eq!(
            (t[0]["set_reps"].clone(), t[0]["contact"].clone()),
            (json!(1), json!(0.7))
        );
        assert_eq!(json_of(&floor.tile("gw", "a").unwrap()), t[0]);
    }

    #[test]
    fn contact_changes_are_due_after_contact_every() {
        let tile = |facts: &Value, contact| TileJson::new("gw/a".into(), facts, Some(contact));
        let (facts, other) = (json!({"id": "gw/a", "reps": 1}), json!({"id": "gw/a", "reps": 2}));
        let (old, moved, rep) = (tile(&facts, 0.9), tile(&facts, 0.8), tile(&other, 0.9));
        assert_eq!(json_of(&moved.json), json!({"id": "gw/a", "reps": 1, "contact": 0.8}));
        let soon = CONTACT_EVERY - Duration::from_millis(1);
        assert!(!due(&[(&moved, &old)], soon));
        assert!(due(&[(&moved, &old)], CONTACT_EVERY));
        assert!(due(&[(&moved, &old), (&rep, &old)], Duration::ZERO));
        assert!(!due(&[], CONTACT_EVERY), "nothing changed, nothing due");
    }
}
