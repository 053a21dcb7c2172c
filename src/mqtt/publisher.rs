//! The publisher: one MQTT connection per gateway (rumqttc), the I/O around
//! the pure [`PublisherSession`].
//!
//! Two tokio tasks:
//!
//! - the **driver** owns rumqttc's `EventLoop` and only polls it (a poll is
//!   never cancelled); it reconnects with backoff and jitter, and forwards
//!   every event to the logic task;
//! - the **logic** task feeds the session (connections, packet ids, acks,
//!   messages, the outbox's news and the clock) and hands rumqttc what the
//!   session asks for, in order.
//!
//! rumqttc keeps unacknowledged publishes of a persistent session and sends
//! them again after a reconnect; the outbox does that job instead (it also
//! covers a restart of the process), so the driver drops rumqttc's own queue:
//! on a disconnect it waits until the logic task has stopped submitting,
//! then empties the request channel and the pending queue. Every publish the
//! logic task submits is thus matched, in order, with rumqttc's
//! `Outgoing::Publish(pkid)`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ClientError, Event as MqttEvent, EventLoop, Outgoing, Packet, QoS, SubscribeFilter,
    SubscribeReasonCode,
};
use tokio::sync::{mpsc, oneshot, watch};

use super::options::Options;
use super::session::{EventQueue, Incoming, Publish, PublisherSession, Qos, QueuedEvent, Request, SessionConfig};
use crate::daemon::backoff::{Backoff, Jitter};
use crate::daemon::repeated::Repeated;
use crate::outbox::{Journal, Outbox};
use crate::wire::athlete_entities::AthletesView;
use crate::wire::payload::OutboxFigures;

/// Most events in flight (sent, not yet acknowledged).
pub const EVENT_WINDOW: usize = 32;
/// Longest message the gateway takes from its subscriptions (commands, Home
/// Assistant's status: a few bytes); longer ones are dropped with a warning.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// How often the outbox's head is written down.
const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// How the publisher ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// Events still in the outbox (delivered by the next run).
    pub queued: u64,
}

/// The store as the session reads it.
struct JournalQueue<'a>(std::sync::MutexGuard<'a, Journal>);

impl EventQueue for JournalQueue<'_> {
    fn next(&self, cursor: u64) -> Option<QueuedEvent> {
        self.0.next(cursor).map(|r| QueuedEvent {
            offset: r.offset,
            next: r.next_offset(),
            mat: r.mat.clone(),
            payload: r.payload.clone(),
        })
    }

    fn ack(&mut self, offset: u64) {
        self.0.ack(offset);
        if let Err(e) = self.0.compact() {
            tracing::warn!("outbox compaction: {e}");
        }
    }

    fn figures(&self) -> OutboxFigures {
        OutboxFigures {
            queued_events: self.0.queued(),
            dropped_events: self.0.dropped(),
        }
    }
}

/// What the driver tells the logic task.
enum FromDriver {
    Connected {
        session_present: bool,
    },
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

async fn drive(opts: Arc<Options>, mut el: EventLoop, tx: mpsc::UnboundedSender<FromDriver>) {
    let mut backoff = Backoff::new(opts.reconnect_min, opts.reconnect_max).with_jitter(0.25, Jitter::from_time());
    let mut connected = false;
    let mut hinted: Option<String> = None;
    let clean_session = el.mqtt_options.clean_session();
    loop {
        match el.poll().await {
            Ok(MqttEvent::Incoming(Packet::ConnAck(ack))) => {
                connected = true;
                backoff.reset();
                // Back to the usual session after a clean one (below).
                el.mqtt_options.set_clean_session(clean_session);
                // Unacknowledged publishes are the outbox's to send again.
                el.pending.clear();
                let session_present = ack.session_present;
                if tx.send(FromDriver::Connected { session_present }).is_err() {
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
                if is_over_read_limit(&e) {
                    // A broker whose write of the message failed keeps it
                    // for the session and sends it again on every
                    // reconnect (Mosquitto 2.0 does): the next connection
                    // starts a clean session, which drops it. Nothing of
                    // value is lost: events wait in the outbox, and the
                    // subscriptions are made again for the new session.
                    el.mqtt_options.set_clean_session(true);
                }
                let mut error = opts.describe(&e);
                if !opts.broker.tls && is_reset(&e) {
                    error.push_str(&tls_hint(&opts, &mut hinted).await);
                }
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
                tokio::time::sleep(backoff.fail()).await;
            }
        }
    }
}

/// The broker sent a packet over [`super::options::READ_LIMIT`].
fn is_over_read_limit(e: &rumqttc::ConnectionError) -> bool {
    matches!(
        e,
        rumqttc::ConnectionError::MqttState(rumqttc::StateError::Deserialization(
            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(_)
        ))
    )
}

/// The broker's side reset or closed the connection before answering.
fn is_reset(e: &rumqttc::ConnectionError) -> bool {
    use rumqttc::{mqttbytes, ConnectionError, StateError};
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, UnexpectedEof};
    let io = match e {
        ConnectionError::Io(io)
        | ConnectionError::MqttState(StateError::Io(io))
        | ConnectionError::MqttState(StateError::Deserialization(mqttbytes::Error::Io(io))) => io,
        _ => return false,
    };
    matches!(io.kind(), ConnectionReset | ConnectionAborted | UnexpectedEof)
}

/// A plain connection reset by a port that speaks TLS: say to use
/// `mqtts://`. Probed once (the answer is kept), off the async threads.
async fn tls_hint(opts: &Options, hinted: &mut Option<String>) -> String {
    if hinted.is_none() {
        let (host, port) = (opts.broker.host.clone(), opts.broker.port);
        let tls =
            tokio::task::spawn_blocking(move || super::tls::speaks_tls(&host, port, std::time::Duration::from_secs(2)))
                .await
                .unwrap_or(false);
        *hinted = Some(if tls {
            format!(
                "; this port speaks TLS: use mqtts://{}:{} in mqtt.url",
                opts.broker.host, opts.broker.port
            )
        } else {
            String::new()
        });
    }
    hinted.clone().unwrap_or_default()
}

/// The logic task's state: the session and what rumqttc could not take yet.
struct Logic {
    opts: Arc<Options>,
    session: PublisherSession,
    outbox: Outbox,
    client: AsyncClient,
    /// Requests the session handed out that rumqttc's channel had no room
    /// for yet, in order.
    waiting: VecDeque<Request>,
    persisted_at: Instant,
    last_error: Option<String>,
    stopped: bool,
    /// Refused messages (a flood of bad commands): warnings rate-limited
    /// per kind of refusal.
    refused: HashMap<&'static str, Repeated>,
}

impl Logic {
    fn handle(&mut self, msg: FromDriver) {
        match msg {
            FromDriver::Connected { session_present } => {
                tracing::info!(
                    broker = %self.opts.broker,
                    client_id = %self.opts.client_id,
                    session_present,
                    "connected"
                );
                let metrics = self.outbox.metrics();
                metrics.mqtt_connected.store(true, Ordering::Relaxed);
                metrics.mqtt_connections.fetch_add(1, Ordering::Relaxed);
                self.last_error = None;
                self.waiting.clear();
                let views = self.outbox.views();
                let reqs = {
                    let queue = JournalQueue(self.outbox.journal());
                    self.session.connected(Instant::now(), session_present, &views, &queue)
                };
                self.submit(reqs);
            }
            FromDriver::Lost { error, quiesced } => {
                let queued = self.outbox.queued();
                tracing::warn!("lost the connection: {error}; {queued} events wait in the outbox");
                self.outbox.metrics().mqtt_connected.store(false, Ordering::Relaxed);
                self.session.lost();
                self.waiting.clear();
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
                self.outbox.metrics().mqtt_connected.store(false, Ordering::Relaxed);
                self.session.lost();
                self.stopped = true;
            }
            FromDriver::Mqtt(ev) => self.on_mqtt(ev),
        }
    }

    fn on_mqtt(&mut self, ev: MqttEvent) {
        match ev {
            MqttEvent::Outgoing(Outgoing::Publish(pkid)) => self.session.outgoing(pkid),
            MqttEvent::Outgoing(Outgoing::AwaitAck(pkid)) => self.session.await_ack(pkid),
            MqttEvent::Incoming(Packet::PubAck(ack)) => {
                let mut queue = JournalQueue(self.outbox.journal());
                self.session.puback(ack.pkid, &mut queue);
            }
            MqttEvent::Incoming(Packet::SubAck(s))
                if s.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) =>
            {
                tracing::warn!(
                    "the broker refused a subscription (commands or {})",
                    self.session.config().topics.ha_status()
                );
            }
            MqttEvent::Incoming(Packet::Publish(p)) => {
                let mats = self.outbox.mat_ids();
                let now = Instant::now();
                for incoming in self.session.message(&p.topic, &p.payload, p.retain, now, &mats) {
                    match incoming {
                        Incoming::Command { mat, command } => {
                            tracing::info!(mat, command = %command, "command");
                            self.outbox.command(&mat, command);
                        }
                        Incoming::Refused { topic, kind, why } => {
                            if let Some(suppressed) = self.refused.entry(kind).or_default().hit(now) {
                                let what = if kind == "oversized" {
                                    "message dropped"
                                } else {
                                    "command ignored"
                                };
                                tracing::warn!(topic, suppressed, "{what}: {why}");
                            }
                        }
                        Incoming::HomeAssistantOnline { delay } => tracing::info!(
                            delay_s = delay.as_secs_f64(),
                            "Home Assistant is online: discovery and state follow"
                        ),
                    }
                }
            }
            _ => {}
        }
    }

    /// Hands the requests to rumqttc in order; what its channel has no room
    /// for waits for the next turn.
    fn submit(&mut self, reqs: Vec<Request>) {
        self.waiting.extend(reqs);
        while let Some(r) = self.waiting.pop_front() {
            let sent = match &r {
                Request::Subscribe(filters) => self
                    .client
                    .try_subscribe_many(filters.iter().map(|f| SubscribeFilter::new(f.clone(), QoS::AtMostOnce))),
                Request::Publish(Publish {
                    topic,
                    qos,
                    retain,
                    payload,
                }) => self
                    .client
                    .try_publish(topic.clone(), qos_of(*qos), *retain, payload.clone()),
            };
            match sent {
                Ok(()) => {}
                Err(ClientError::TryRequest(_)) | Err(ClientError::Request(_)) => {
                    self.waiting.push_front(r);
                    return;
                }
            }
        }
    }

    /// Whatever is due now; the outbox's head written down every second.
    fn tick(&mut self) {
        let now = Instant::now();
        if self.waiting.is_empty() {
            let views = self.outbox.views();
            let reqs = {
                let queue = JournalQueue(self.outbox.journal());
                self.session.poll(now, &views, &queue)
            };
            self.submit(reqs);
        } else {
            self.submit(Vec::new());
        }
        if now >= self.persisted_at + PERSIST_EVERY {
            self.persisted_at = now;
            if let Err(e) = self.outbox.journal().persist(false) {
                tracing::warn!("outbox: cannot write its state: {e}");
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let now = Instant::now();
        let mut next = self.persisted_at + PERSIST_EVERY;
        if !self.waiting.is_empty() {
            // rumqttc's channel was full: look again soon.
            next = next.min(now + Duration::from_millis(5));
        }
        if let Some(due) = self.session.next_deadline(&self.outbox.views()) {
            next = next.min(due);
        }
        next.max(now)
    }

    async fn shutdown(&mut self, rx: &mut mpsc::UnboundedReceiver<FromDriver>) {
        // Deliver what the broker takes within a few seconds.
        let flush_until = Instant::now() + Duration::from_secs(5);
        while self.session.is_connected() && self.outbox.queued() > 0 && Instant::now() < flush_until {
            self.tick();
            if !self.recv_until(rx, flush_until).await {
                break;
            }
        }
        if self.session.is_connected() {
            let goodbye = self.session.goodbye(&self.outbox.views());
            self.submit(goodbye);
            // Wait for the broker to acknowledge them, then disconnect.
            let until = Instant::now() + Duration::from_secs(3);
            while self.session.is_connected() && (!self.waiting.is_empty() || !self.session.settled()) {
                self.submit(Vec::new());
                if !self.recv_until(rx, until).await {
                    break;
                }
            }
            let _ = self.client.try_disconnect();
            let until = Instant::now() + Duration::from_secs(2);
            while !self.stopped && self.recv_until(rx, until).await {}
        }
        self.outbox.close();
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

fn qos_of(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
    }
}

/// The athletes as they change (`None` once the sender is gone: they stay
/// as last said).
async fn athletes_changed(rx: &mut Option<watch::Receiver<AthletesView>>) -> Option<AthletesView> {
    let Some(r) = rx.as_mut() else {
        return std::future::pending().await;
    };
    if r.changed().await.is_err() {
        *rx = None;
        return None;
    }
    Some(r.borrow_and_update().clone())
}

/// Runs the publisher until `shutdown` resolves (or, with `exit_when_done`,
/// until every mat has finished and the outbox is empty); then flushes
/// what the broker will take within a few seconds, publishes `offline` and
/// disconnects. `athletes` (with a history): the roster the mats' athlete
/// selects offer and the athletes' figures, as they change.
pub async fn run(
    opts: Options,
    outbox: Outbox,
    shutdown: impl std::future::Future<Output = ()>,
    exit_when_done: bool,
    mut athletes: Option<watch::Receiver<AthletesView>>,
) -> Finished {
    let opts = Arc::new(opts);
    let (client, el) = opts.connect(&opts.client_id, false, true);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(drive(opts.clone(), el, tx));
    let session = PublisherSession::new(
        SessionConfig {
            topics: opts.topics.clone(),
            gateway_name: opts.gateway_name.clone(),
            discovery: opts.discovery,
            discovery_resend_max: opts.discovery_resend_max,
            state_min_interval: opts.state_min_interval,
            heartbeat: opts.heartbeat,
            window: EVENT_WINDOW,
            max_message: MAX_MESSAGE,
        },
        Jitter::from_time(),
    );
    let mut logic = Logic {
        opts: opts.clone(),
        session,
        outbox: outbox.clone(),
        client,
        waiting: VecDeque::new(),
        persisted_at: Instant::now(),
        last_error: None,
        stopped: false,
        refused: HashMap::new(),
    };
    if let Some(rx) = athletes.as_mut() {
        logic.session.set_athletes(rx.borrow_and_update().clone());
    }
    tokio::pin!(shutdown);
    loop {
        let deadline = logic.next_deadline();
        tokio::select! {
            _ = &mut shutdown => break,
            msg = rx.recv() => match msg {
                Some(m) => logic.handle(m),
                None => break,
            },
            _ = outbox.changed() => {}
            view = athletes_changed(&mut athletes) => {
                if let Some(view) = view {
                    logic.session.set_athletes(view);
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
        logic.tick();
        if exit_when_done
            && logic.session.is_connected()
            && outbox.all_finished()
            && outbox.queued() == 0
            && logic.waiting.is_empty()
            && logic.session.settled()
        {
            break;
        }
    }
    logic.shutdown(&mut rx).await;
    driver.abort();
    Finished {
        queued: outbox.queued(),
    }
}
