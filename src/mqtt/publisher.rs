//! The publisher: one MQTT connection per gateway (rumqttc), several mats.
//!
//! Two tokio tasks:
//!
//! - the **driver** owns rumqttc's `EventLoop` and only polls it (a poll is
//!   never cancelled); it reconnects with exponential backoff and jitter, and
//!   forwards every event to the logic task;
//! - the **logic** task decides what is published: on every ConnAck it
//!   subscribes again (commands, Home Assistant's status), publishes the
//!   birth message, discovery, availability and state, then sends the
//!   outbox's events from the oldest unacknowledged one, at most
//!   [`EVENT_WINDOW`] in flight, with QoS 1. An event leaves the outbox only
//!   when its PUBACK arrives.
//!
//! rumqttc keeps unacknowledged publishes of a persistent session and sends
//! them again after a reconnect; the outbox does that job instead (it also
//! covers a restart of the process), so the driver drops rumqttc's own queue:
//! on a disconnect it waits until the logic task has stopped submitting,
//! then empties the request channel and the pending queue. Every publish the
//! logic task submits is thus matched, in order, with rumqttc's
//! `Outgoing::Publish(pkid)`, and a PUBACK's packet id names the outbox
//! record it acknowledges.
//!
//! Mat threads never wait for the network: [`MatLink::emit`] appends to the
//! outbox (a disk write and sync) and wakes the logic task; state is a
//! snapshot the logic task publishes at most every `state_min_interval_s`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rumqttc::{
    AsyncClient, ClientError, ConnectReturnCode, ConnectionError, Event as MqttEvent, EventLoop, LastWill, MqttOptions,
    NetworkOptions, Outgoing, Packet, QoS, SubscribeReasonCode, TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, oneshot, Notify};

use super::commands::{self, Command};
use super::config::{BrokerUrl, MqttConfig};
use super::discovery::{self, Identity};
use super::outbox::Outbox;
use super::payload::{self, MatState, OutboxFigures, OFFLINE, ONLINE};
use super::topics::Topics;
use crate::event::Event;

/// Most events in flight (sent, not yet acknowledged).
pub const EVENT_WINDOW: usize = 32;
const REQUEST_CHANNEL: usize = 64;
const INFLIGHT: u16 = 100;
const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// Everything the publisher needs, resolved from the configuration.
#[derive(Debug, Clone)]
pub struct Options {
    pub broker: BrokerUrl,
    pub topics: Topics,
    pub gateway_name: String,
    pub client_id: String,
    pub keep_alive: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub state_min_interval: Duration,
    pub heartbeat: Duration,
    pub discovery: bool,
    pub discovery_resend_max: Duration,
    credentials: Option<super::config::Credentials>,
    tls: Option<Arc<rustls::ClientConfig>>,
    ca_file: Option<std::path::PathBuf>,
}

impl Options {
    /// Resolves `config` (reads the password and the TLS files). Errors name
    /// the key.
    pub fn from_config(config: &MqttConfig) -> Result<Options, String> {
        config.validate()?;
        let broker = config.broker()?;
        let gateway = config.resolved_gateway_id();
        super::config::check_id("gateway id", &gateway)?;
        let tls = if broker.tls {
            Some(Arc::new(super::tls::client_config(config)?))
        } else {
            None
        };
        Ok(Options {
            topics: Topics::new(&config.base_topic, &gateway, &config.discovery_prefix),
            gateway_name: config.resolved_gateway_name(&gateway),
            client_id: format!("flatback-{gateway}"),
            keep_alive: Duration::from_secs(config.keep_alive_s),
            reconnect_min: Duration::from_secs_f64(config.reconnect_min_s),
            reconnect_max: Duration::from_secs_f64(config.reconnect_max_s),
            state_min_interval: Duration::from_secs_f64(config.state_min_interval_s),
            heartbeat: Duration::from_secs_f64(config.heartbeat_s),
            discovery: config.discovery,
            discovery_resend_max: Duration::from_secs_f64(config.discovery_resend_max_s),
            credentials: config.credentials()?,
            tls,
            ca_file: config.ca_file.clone(),
            broker,
        })
    }

    /// rumqttc's options: stable client id, persistent session, Last Will.
    pub fn mqtt_options(&self, client_id: &str, clean_session: bool, will: bool) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, self.broker.host.clone(), self.broker.port);
        o.set_keep_alive(self.keep_alive);
        o.set_clean_session(clean_session);
        o.set_inflight(INFLIGHT);
        o.set_max_packet_size(64 * 1024, 256 * 1024);
        if will {
            o.set_last_will(LastWill::new(
                self.topics.gateway_status(),
                OFFLINE,
                QoS::AtLeastOnce,
                true,
            ));
        }
        if let Some(c) = &self.credentials {
            let password = c.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default();
            o.set_credentials(c.username.clone(), password);
        }
        if let Some(tls) = &self.tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls.clone())));
        }
        o
    }

    /// A client and its event loop with `tcp_nodelay` on.
    pub fn connect(&self, client_id: &str, clean_session: bool, will: bool) -> (AsyncClient, EventLoop) {
        let (client, mut el) = AsyncClient::new(self.mqtt_options(client_id, clean_session, will), REQUEST_CHANNEL);
        let mut net = NetworkOptions::new();
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(10);
        el.set_network_options(net);
        (client, el)
    }

    /// A connection error in words, with a hint at the setting to check.
    pub fn describe(&self, e: &ConnectionError) -> String {
        let b = &self.broker;
        match e {
            ConnectionError::ConnectionRefused(code) => {
                let why = match code {
                    ConnectReturnCode::BadUserNamePassword => {
                        "bad user name or password (check mqtt.username and mqtt.password_file / password_env)"
                    }
                    // Mosquitto answers this one to a wrong password too.
                    ConnectReturnCode::NotAuthorized => {
                        "not authorized: wrong user name or password, or not allowed \
                         (check mqtt.username, mqtt.password_file / password_env and the broker's ACL)"
                    }
                    ConnectReturnCode::BadClientId => "client id refused",
                    ConnectReturnCode::ServiceUnavailable => "service unavailable",
                    ConnectReturnCode::RefusedProtocolVersion => "MQTT 3.1.1 not supported",
                    ConnectReturnCode::Success => "success?",
                };
                format!("broker {b} refused the connection: {why}")
            }
            ConnectionError::Tls(t) => {
                let rustls_err = match t {
                    rumqttc::TlsError::TLS(r) => Some(r),
                    rumqttc::TlsError::Io(io) => io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
                    _ => None,
                };
                let hint = match rustls_err {
                    Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => {
                        match &self.ca_file {
                            Some(ca) => format!(
                                ": the broker's certificate is not signed by the CA in mqtt.ca_file ({})",
                                ca.display()
                            ),
                            None => ": the broker's certificate is not signed by a CA this system trusts \
                                   (set mqtt.ca_file)"
                                .to_string(),
                        }
                    }
                    Some(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)) => {
                        format!(
                            ": the broker's certificate is not valid for the host name \"{}\"",
                            b.host
                        )
                    }
                    Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)) => {
                        ": the broker's certificate has expired".to_string()
                    }
                    _ => String::new(),
                };
                let detail = rustls_err.map_or_else(|| t.to_string(), |r| r.to_string());
                format!("TLS handshake with {b} failed: {detail}{hint}")
            }
            ConnectionError::Io(io) => format!("cannot reach broker {b}: {io}"),
            ConnectionError::NetworkTimeout => format!("broker {b}: connection timed out"),
            other => format!("broker {b}: {other}"),
        }
    }
}

/// One mat, as the publisher sees it.
struct MatSlot {
    id: String,
    state: Mutex<(MatState, u64)>,
    available: Mutex<(bool, u64)>,
    commands: Mutex<Sender<Command>>,
    finished: AtomicBool,
}

struct Shared {
    outbox: Mutex<Outbox>,
    wake: Notify,
    mats: Vec<MatSlot>,
    /// (records to sync, stop) for the background syncer.
    sync: (Mutex<(bool, bool)>, Condvar),
}

impl Shared {
    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The gateway: the outbox and the mats. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

/// A mat's end of the gateway, for the thread that runs its detector.
pub struct MatLink {
    shared: Arc<Shared>,
    index: usize,
    commands: Receiver<Command>,
}

impl Gateway {
    /// The gateway with these mats (ids checked by the caller); returns the
    /// links in the same order.
    pub fn new(outbox: Outbox, mats: &[String]) -> (Gateway, Vec<MatLink>) {
        let mut slots = Vec::new();
        let mut receivers = Vec::new();
        for id in mats {
            let (tx, rx) = std::sync::mpsc::channel();
            slots.push(MatSlot {
                id: id.clone(),
                state: Mutex::new((MatState::default(), 0)),
                available: Mutex::new((false, 0)),
                commands: Mutex::new(tx),
                finished: AtomicBool::new(false),
            });
            receivers.push(rx);
        }
        let shared = Arc::new(Shared {
            outbox: Mutex::new(outbox),
            wake: Notify::new(),
            mats: slots,
            sync: (Mutex::new((false, false)), Condvar::new()),
        });
        // Group commit: one sync for whatever was appended meanwhile, off
        // the mats' threads and outside the outbox's lock.
        let syncer = shared.clone();
        let _ = std::thread::Builder::new()
            .name("outbox-sync".into())
            .spawn(move || loop {
                let (m, cv) = &syncer.sync;
                let mut flags = m.lock().unwrap_or_else(|p| p.into_inner());
                while !flags.0 && !flags.1 {
                    flags = cv.wait(flags).unwrap_or_else(|p| p.into_inner());
                }
                let stop = flags.1;
                flags.0 = false;
                drop(flags);
                let handle = syncer.outbox().take_sync();
                if let Some(f) = handle {
                    if let Err(e) = f.sync_data() {
                        tracing::error!("outbox: cannot sync to disk: {e}");
                    }
                }
                if stop {
                    return;
                }
            });
        let links = receivers
            .into_iter()
            .enumerate()
            .map(|(index, commands)| MatLink {
                shared: shared.clone(),
                index,
                commands,
            })
            .collect();
        (Gateway { shared }, links)
    }

    pub fn mat_ids(&self) -> Vec<String> {
        self.shared.mats.iter().map(|m| m.id.clone()).collect()
    }

    /// Events waiting in the outbox.
    pub fn queued(&self) -> u64 {
        self.shared.outbox().queued()
    }

    /// Syncs and closes the outbox cleanly; stops the background syncer.
    pub fn close(&self) {
        {
            let (m, cv) = &self.shared.sync;
            m.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
            cv.notify_all();
        }
        if let Err(e) = self.shared.outbox().close() {
            tracing::warn!("outbox: cannot close cleanly: {e}");
        }
    }

    fn all_finished(&self) -> bool {
        self.shared.mats.iter().all(|m| m.finished.load(Ordering::Acquire))
    }
}

impl MatLink {
    pub fn id(&self) -> &str {
        &self.shared.mats[self.index].id
    }

    fn slot(&self) -> &MatSlot {
        &self.shared.mats[self.index]
    }

    /// Puts an event in the outbox (synced to disk) for delivery; returns
    /// its `seq`. Never waits for the network. An outbox that cannot write
    /// logs the error and counts the event as dropped.
    pub fn emit(&self, event: &Event) -> Option<u64> {
        let mat = self.id();
        let now = SystemTime::now();
        let result = self
            .shared
            .outbox()
            .append(mat, |seq| payload::event_envelope(event, mat, seq, now).into_bytes());
        {
            let (m, cv) = &self.shared.sync;
            m.lock().unwrap_or_else(|p| p.into_inner()).0 = true;
            cv.notify_one();
        }
        self.shared.wake.notify_one();
        match result {
            Ok(a) => Some(a.seq),
            Err(e) => {
                tracing::error!(mat, error = %e, "outbox: cannot store an event; it is lost");
                None
            }
        }
    }

    /// The mat's current state; published on change (rate-limited).
    pub fn set_state(&self, state: &MatState) {
        let mut s = self.slot().state.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 != *state {
            s.0 = state.clone();
            s.1 += 1;
            drop(s);
            self.shared.wake.notify_one();
        }
    }

    /// Whether the mat delivers frames (its availability topic).
    pub fn set_available(&self, on: bool) {
        let mut a = self.slot().available.lock().unwrap_or_else(|p| p.into_inner());
        if a.0 != on || a.1 == 0 {
            a.0 = on;
            a.1 += 1;
            drop(a);
            self.shared.wake.notify_one();
        }
    }

    /// The next command received for this mat, if any.
    pub fn try_command(&self) -> Option<Command> {
        self.commands.try_recv().ok()
    }

    /// The mat's source ended: it goes `offline`.
    pub fn finish(&self) {
        self.set_available(false);
        self.slot().finished.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

/// What the driver tells the logic task.
enum FromDriver {
    Connected,
    Mqtt(MqttEvent),
    /// The connection was lost; the driver waits for `quiesced` before it
    /// drops rumqttc's queues and reconnects.
    Lost {
        error: String,
        quiesced: oneshot::Sender<()>,
    },
    ConnectFailed(String),
    /// Our DISCONNECT went out: the driver has stopped.
    Stopped,
}

/// Exponential backoff with +-25 % jitter.
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    rng: crate::sim::rng::Rng,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
            rng: crate::sim::rng::Rng::new(seed()),
        }
    }
    fn reset(&mut self) {
        self.next = self.min;
    }
    fn delay(&mut self) -> Duration {
        let d = self.next.mul_f64(0.75 + 0.5 * self.rng.f64());
        self.next = (self.next * 2).min(self.max);
        d.min(self.max)
    }
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 32
}

async fn drive(opts: Arc<Options>, mut el: EventLoop, tx: mpsc::UnboundedSender<FromDriver>) {
    let mut backoff = Backoff::new(opts.reconnect_min, opts.reconnect_max);
    let mut connected = false;
    loop {
        match el.poll().await {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                connected = true;
                backoff.reset();
                // Unacknowledged publishes are the outbox's to send again.
                el.pending.clear();
                if tx.send(FromDriver::Connected).is_err() {
                    return;
                }
            }
            Ok(MqttEvent::Outgoing(Outgoing::Disconnect)) => {
                let _ = tx.send(FromDriver::Stopped);
                return;
            }
            Ok(ev) => {
                if tx.send(FromDriver::Mqtt(ev)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let error = opts.describe(&e);
                if connected {
                    connected = false;
                    let (qtx, qrx) = oneshot::channel();
                    if tx.send(FromDriver::Lost { error, quiesced: qtx }).is_err() {
                        return;
                    }
                    let _ = qrx.await;
                    // Whatever was submitted before the logic task knew is
                    // dropped: it sends again from the outbox after ConnAck.
                    el.clean();
                    el.pending.clear();
                } else if tx.send(FromDriver::ConnectFailed(error)).is_err() {
                    return;
                }
                tokio::time::sleep(backoff.delay()).await;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Event(u64),
    Other,
}

struct Msg {
    topic: String,
    qos: QoS,
    retain: bool,
    payload: Vec<u8>,
    tag: Tag,
}

#[derive(Default)]
struct MatPub {
    version: u64,
    figures: OutboxFigures,
    last: Option<Instant>,
    available_version: u64,
}

struct Logic {
    opts: Arc<Options>,
    gw: Gateway,
    client: AsyncClient,
    connected: bool,
    fifo: VecDeque<Tag>,
    inflight: HashMap<u16, Tag>,
    collided: HashSet<u16>,
    events_inflight: usize,
    cursor: u64,
    control: VecDeque<Msg>,
    mats: Vec<MatPub>,
    gateway_pub: MatPub,
    ha_resend_at: Option<Instant>,
    persisted_at: Instant,
    rng: crate::sim::rng::Rng,
    last_error: Option<String>,
    stopped: bool,
}

/// How the publisher ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// Events still in the outbox (delivered by the next run).
    pub queued: u64,
}

/// Runs the publisher until `shutdown` resolves (or, with `exit_when_done`,
/// until every mat has finished and the outbox is empty); then flushes
/// what the broker will take within a few seconds, publishes `offline` and
/// disconnects.
pub async fn run(
    opts: Options,
    gw: Gateway,
    shutdown: impl std::future::Future<Output = ()>,
    exit_when_done: bool,
) -> Finished {
    let opts = Arc::new(opts);
    let (client, el) = opts.connect(&opts.client_id, false, true);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(drive(opts.clone(), el, tx));
    let n = gw.shared.mats.len();
    let mut logic = Logic {
        opts: opts.clone(),
        gw: gw.clone(),
        client,
        connected: false,
        fifo: VecDeque::new(),
        inflight: HashMap::new(),
        collided: HashSet::new(),
        events_inflight: 0,
        cursor: 0,
        control: VecDeque::new(),
        mats: (0..n).map(|_| MatPub::default()).collect(),
        gateway_pub: MatPub::default(),
        ha_resend_at: None,
        persisted_at: Instant::now(),
        rng: crate::sim::rng::Rng::new(seed() ^ 0x5eed),
        last_error: None,
        stopped: false,
    };
    tokio::pin!(shutdown);
    loop {
        let deadline = logic.next_deadline();
        tokio::select! {
            _ = &mut shutdown => break,
            msg = rx.recv() => match msg {
                Some(m) => logic.handle(m),
                None => break,
            },
            _ = gw.shared.wake.notified() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
        logic.tick();
        if exit_when_done && logic.connected && gw.all_finished() && gw.queued() == 0 && logic.control.is_empty() {
            break;
        }
    }
    logic.shutdown(&mut rx).await;
    driver.abort();
    let queued = gw.queued();
    Finished { queued }
}

impl Logic {
    fn topics(&self) -> &Topics {
        &self.opts.topics
    }

    fn handle(&mut self, msg: FromDriver) {
        match msg {
            FromDriver::Connected => self.on_connected(),
            FromDriver::Lost { error, quiesced } => {
                let queued = self.gw.queued();
                tracing::warn!("lost the connection: {error}; {queued} events wait in the outbox");
                self.connected = false;
                self.reset_flight();
                let _ = quiesced.send(());
            }
            FromDriver::ConnectFailed(error) => {
                if self.last_error.as_deref() != Some(error.as_str()) {
                    tracing::warn!("{error}; retrying with backoff");
                } else {
                    tracing::debug!("{error}; retrying with backoff");
                }
                self.last_error = Some(error);
            }
            FromDriver::Stopped => {
                self.connected = false;
                self.stopped = true;
            }
            FromDriver::Mqtt(ev) => self.on_mqtt(ev),
        }
    }

    fn reset_flight(&mut self) {
        self.fifo.clear();
        self.inflight.clear();
        self.collided.clear();
        self.events_inflight = 0;
        self.cursor = 0;
        self.control.clear();
    }

    fn on_connected(&mut self) {
        tracing::info!(broker = %self.opts.broker, client_id = %self.opts.client_id, "connected");
        self.last_error = None;
        self.connected = true;
        self.reset_flight();
        let t = self.topics().clone();
        let subs = [
            rumqttc::SubscribeFilter::new(t.command_filter(), QoS::AtLeastOnce),
            rumqttc::SubscribeFilter::new(t.ha_status(), QoS::AtLeastOnce),
        ];
        if let Err(e) = self.client.try_subscribe_many(subs) {
            tracing::warn!("cannot subscribe: {e}");
        }
        self.submit(t.gateway_status(), QoS::AtLeastOnce, true, ONLINE.into(), Tag::Other);
        self.resend_all();
    }

    /// Discovery, availability and state of everything (on connect and when
    /// Home Assistant comes online).
    fn resend_all(&mut self) {
        if self.opts.discovery {
            let ids = self.gw.mat_ids();
            let t = self.topics().clone();
            let ident = Identity {
                topics: &t,
                gateway_name: &self.opts.gateway_name,
                version: env!("CARGO_PKG_VERSION"),
            };
            for c in discovery::all_configs(&ident, &ids) {
                self.submit(
                    c.topic,
                    QoS::AtLeastOnce,
                    true,
                    c.payload.to_string().into_bytes(),
                    Tag::Other,
                );
            }
        }
        for m in self.mats.iter_mut() {
            m.available_version = 0;
            m.last = None;
            m.version = u64::MAX;
        }
        self.gateway_pub.last = None;
        self.publish_states(Instant::now());
    }

    fn on_mqtt(&mut self, ev: MqttEvent) {
        match ev {
            MqttEvent::Outgoing(Outgoing::Publish(pkid)) => {
                if self.collided.remove(&pkid) {
                    return;
                }
                let tag = self.fifo.pop_front().unwrap_or(Tag::Other);
                if pkid != 0 {
                    self.inflight.insert(pkid, tag);
                }
            }
            MqttEvent::Outgoing(Outgoing::AwaitAck(pkid)) => {
                let tag = self.fifo.pop_front().unwrap_or(Tag::Other);
                self.inflight.insert(pkid, tag);
                self.collided.insert(pkid);
            }
            MqttEvent::Incoming(Packet::PubAck(ack)) => {
                if let Some(Tag::Event(offset)) = self.inflight.remove(&ack.pkid) {
                    self.events_inflight = self.events_inflight.saturating_sub(1);
                    let mut ob = self.gw.shared.outbox();
                    ob.ack(offset);
                    if let Err(e) = ob.compact() {
                        tracing::warn!("outbox compaction: {e}");
                    }
                }
            }
            MqttEvent::Incoming(Packet::SubAck(s))
                if s.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) =>
            {
                tracing::warn!(
                    "the broker refused a subscription (commands or {})",
                    self.topics().ha_status()
                );
            }
            MqttEvent::Incoming(Packet::Publish(p)) => self.on_message(&p.topic, &p.payload, p.retain),
            _ => {}
        }
    }

    fn on_message(&mut self, topic: &str, payload: &[u8], retain: bool) {
        let t = self.topics();
        if topic == t.ha_status() {
            if payload == ONLINE.as_bytes() {
                let max = self.opts.discovery_resend_max.as_secs_f64();
                let delay = Duration::from_secs_f64(max * self.rng.f64());
                tracing::info!(
                    delay_s = delay.as_secs_f64(),
                    "Home Assistant is online: discovery and state follow"
                );
                self.ha_resend_at = Some(Instant::now() + delay);
            }
            return;
        }
        let Some(mat) = t.command_mat(topic) else {
            return;
        };
        let Some(slot) = self.gw.shared.mats.iter().find(|m| m.id == mat) else {
            tracing::warn!(topic, "command ignored: no mat \"{mat}\" on this gateway");
            return;
        };
        match commands::parse_message(payload, retain) {
            Ok(c) => {
                tracing::info!(topic, command = %c, "command");
                let _ = slot.commands.lock().unwrap_or_else(|p| p.into_inner()).send(c);
            }
            Err(e) => tracing::warn!(topic, "command ignored: {e}"),
        }
    }

    fn submit(&mut self, topic: String, qos: QoS, retain: bool, payload: Vec<u8>, tag: Tag) {
        if !self.connected {
            return;
        }
        self.control.push_back(Msg {
            topic,
            qos,
            retain,
            payload,
            tag,
        });
        self.pump_control();
    }

    fn pump_control(&mut self) -> bool {
        while let Some(m) = self.control.pop_front() {
            match self
                .client
                .try_publish(m.topic.clone(), m.qos, m.retain, m.payload.clone())
            {
                Ok(()) => self.fifo.push_back(m.tag),
                Err(ClientError::TryRequest(_)) | Err(ClientError::Request(_)) => {
                    self.control.push_front(m);
                    return false;
                }
            }
        }
        true
    }

    fn pump_events(&mut self) {
        if !self.connected || !self.pump_control() {
            return;
        }
        while self.events_inflight < EVENT_WINDOW {
            let next = {
                let ob = self.gw.shared.outbox();
                ob.next(self.cursor).cloned()
            };
            let Some(r) = next else { break };
            let topic = self.topics().mat_event(&r.mat);
            match self.client.try_publish(topic, QoS::AtLeastOnce, false, r.payload) {
                Ok(()) => {
                    self.fifo.push_back(Tag::Event(r.offset));
                    self.cursor = r.offset + r.size;
                    self.events_inflight += 1;
                }
                Err(_) => break,
            }
        }
    }

    fn figures_for(&self, mat: Option<&str>) -> OutboxFigures {
        let ob = self.gw.shared.outbox();
        match mat {
            Some(m) => OutboxFigures {
                queued_events: ob.queued_for(m),
                dropped_events: ob.dropped_for(m),
            },
            None => OutboxFigures {
                queued_events: ob.queued(),
                dropped_events: ob.dropped(),
            },
        }
    }

    fn publish_states(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        let min = self.opts.state_min_interval;
        let hb = self.opts.heartbeat;
        for i in 0..self.mats.len() {
            let slot = &self.gw.shared.mats[i];
            let (available, av) = *slot.available.lock().unwrap_or_else(|p| p.into_inner());
            if av != self.mats[i].available_version {
                self.mats[i].available_version = av;
                let topic = self.topics().mat_status(&slot.id);
                let p = if available { ONLINE } else { OFFLINE };
                self.submit(topic, QoS::AtLeastOnce, true, p.into(), Tag::Other);
            }
            let slot = &self.gw.shared.mats[i];
            let (state, version) = slot.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let id = slot.id.clone();
            let figures = self.figures_for(Some(&id));
            let p = &self.mats[i];
            let changed = version != p.version || figures != p.figures;
            let due = match p.last {
                None => true,
                Some(last) => (changed && now >= last + min) || now >= last + hb,
            };
            if due {
                let body = payload::state_payload(&state, figures, SystemTime::now());
                let topic = self.topics().mat_state(&id);
                self.submit(topic, QoS::AtMostOnce, true, body.into_bytes(), Tag::Other);
                let p = &mut self.mats[i];
                p.version = version;
                p.figures = figures;
                p.last = Some(now);
            }
        }
        let figures = self.figures_for(None);
        let p = &self.gateway_pub;
        let due = match p.last {
            None => true,
            Some(last) => (figures != p.figures && now >= last + min) || now >= last + hb,
        };
        if due {
            let body = payload::gateway_state_payload(
                &self.gw.mat_ids(),
                figures,
                env!("CARGO_PKG_VERSION"),
                SystemTime::now(),
            );
            let topic = self.topics().gateway_state();
            self.submit(topic, QoS::AtMostOnce, true, body.into_bytes(), Tag::Other);
            self.gateway_pub.figures = figures;
            self.gateway_pub.last = Some(now);
        }
    }

    /// When something is next due (a rate-limited state, a heartbeat, the
    /// delayed resend for Home Assistant, persisting the outbox head).
    fn next_deadline(&self) -> Instant {
        let now = Instant::now();
        let mut d = self.persisted_at + PERSIST_EVERY;
        if let Some(t) = self.ha_resend_at {
            d = d.min(t);
        }
        if self.connected {
            for (i, p) in self.mats.iter().enumerate() {
                let Some(last) = p.last else { return now };
                let version = self.gw.shared.mats[i].state.lock().unwrap_or_else(|p| p.into_inner()).1;
                let next = if version != p.version {
                    last + self.opts.state_min_interval
                } else {
                    last + self.opts.heartbeat
                };
                d = d.min(next);
            }
            if let Some(last) = self.gateway_pub.last {
                d = d.min(last + self.opts.heartbeat);
            }
        }
        d.max(now)
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if self.ha_resend_at.is_some_and(|t| now >= t) {
            self.ha_resend_at = None;
            if self.connected {
                self.resend_all();
            }
        }
        self.publish_states(now);
        self.pump_events();
        if now >= self.persisted_at + PERSIST_EVERY {
            self.persisted_at = now;
            if let Err(e) = self.gw.shared.outbox().persist(false) {
                tracing::warn!("outbox: cannot write its state: {e}");
            }
        }
    }

    async fn shutdown(&mut self, rx: &mut mpsc::UnboundedReceiver<FromDriver>) {
        // Deliver what the broker takes within a few seconds.
        let flush_until = Instant::now() + Duration::from_secs(5);
        while self.connected && self.gw.queued() > 0 && Instant::now() < flush_until {
            self.tick();
            if !self.recv_until(rx, flush_until).await {
                break;
            }
        }
        if self.connected {
            for i in 0..self.mats.len() {
                let topic = self.topics().mat_status(&self.gw.shared.mats[i].id);
                self.submit(topic, QoS::AtLeastOnce, true, OFFLINE.into(), Tag::Other);
            }
            let topic = self.topics().gateway_status();
            self.submit(topic, QoS::AtLeastOnce, true, OFFLINE.into(), Tag::Other);
            // Wait for the broker to acknowledge them, then disconnect.
            let until = Instant::now() + Duration::from_secs(3);
            while self.connected && (!self.control.is_empty() || !self.fifo.is_empty() || !self.inflight.is_empty()) {
                self.pump_control();
                if !self.recv_until(rx, until).await {
                    break;
                }
            }
            let _ = self.client.try_disconnect();
            let until = Instant::now() + Duration::from_secs(2);
            while !self.stopped && self.recv_until(rx, until).await {}
        }
        self.gw.close();
    }

    /// Handles one driver message; false at `until` or when the driver is gone.
    async fn recv_until(&mut self, rx: &mut mpsc::UnboundedReceiver<FromDriver>, until: Instant) -> bool {
        match tokio::time::timeout_at(until.into(), rx.recv()).await {
            Ok(Some(m)) => {
                self.handle(m);
                true
            }
            _ => false,
        }
    }
}
