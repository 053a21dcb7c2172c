//! A subscriber's MQTT connection (rumqttc, on a thread of its own), as
//! `flatback watch` and the web view use it: it subscribes to its filters on
//! each connection (a clean session), hands messages over a channel, and
//! publishes commands.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use rumqttc::{Client, ConnectionError, Event, MqttOptions, Packet, QoS, SubscribeFilter};

use crate::daemon::backoff::Backoff;

/// What the connection reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// Connected and subscribed: from now on every message arrives.
    Subscribed,
    Message {
        topic: String,
        payload: Vec<u8>,
    },
    /// The connection failed or dropped; it is being retried.
    Lost(String),
}

/// A connection to the broker, subscribed to its filters.
pub struct MqttLink {
    client: Client,
    events: Receiver<LinkEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Reconnect delays: from the first to the longest, doubling.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// A client id of its own: several subscribers may share a broker (and a
/// process, in the tests). `what` says who subscribes (`watch`, `web`).
pub fn client_id(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "flatback-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl MqttLink {
    /// Starts connecting with `options` (broker, login, TLS; a clean
    /// session); returns at once: [`LinkEvent::Subscribed`] says when
    /// messages flow. `describe` puts a connection error in words.
    pub fn connect(
        options: MqttOptions,
        filters: &[String],
        describe: impl Fn(&ConnectionError) -> String + Send + 'static,
    ) -> MqttLink {
        let (client, mut connection) = Client::new(options, 64);
        let (tx, events) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let filters: Vec<SubscribeFilter> = filters
            .iter()
            .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce))
            .collect();
        let thread = {
            let (client, stop) = (client.clone(), stop.clone());
            std::thread::Builder::new()
                .name("watch-mqtt".into())
                .spawn(move || {
                    let mut retry = Backoff::new(RETRY_MIN, RETRY_MAX);
                    let mut lost = false;
                    for notification in connection.iter() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let sent = match notification {
                            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                                retry.reset();
                                // A clean session: subscribe on every connection.
                                let _ = client.try_subscribe_many(filters.clone());
                                Ok(())
                            }
                            Ok(Event::Incoming(Packet::SubAck(_))) => {
                                lost = false;
                                tx.send(LinkEvent::Subscribed)
                            }
                            Ok(Event::Incoming(Packet::Publish(p))) => tx.send(LinkEvent::Message {
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                            }),
                            Ok(_) => Ok(()),
                            Err(e) => {
                                let r = if lost {
                                    Ok(())
                                } else {
                                    tx.send(LinkEvent::Lost(describe(&e)))
                                };
                                lost = true;
                                // The event loop reconnects on the next poll:
                                // wait first, so a dead broker is not hammered.
                                std::thread::sleep(retry.fail());
                                r
                            }
                        };
                        if sent.is_err() {
                            break; // nobody listens any more
                        }
                    }
                })
                .expect("start the MQTT thread")
        };
        MqttLink {
            client,
            events,
            stop,
            thread: Some(thread),
        }
    }

    /// The next event, waiting for it; `None` once the connection's thread
    /// has ended.
    pub fn recv(&self) -> Option<LinkEvent> {
        self.events.recv().ok()
    }

    /// The next event, waiting at most `timeout`; `Err(Disconnected)` once
    /// the connection's thread has ended.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<LinkEvent, std::sync::mpsc::RecvTimeoutError> {
        self.events.recv_timeout(timeout)
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<LinkEvent> {
        self.events.try_recv().ok()
    }

    /// Publishes a command (QoS 1, never retained: the gateway refuses a
    /// retained command, which would replay on every reconnect).
    pub fn publish(&self, topic: &str, payload: &[u8]) -> Result<()> {
        self.client
            .try_publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
            .map_err(|e| anyhow::anyhow!("publishing to {topic}: {e}"))
    }
}

impl Drop for MqttLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
        // The thread ends on the disconnect's own notification; it is not
        // joined, so a broker that went away cannot hold the exit up.
        drop(self.thread.take());
    }
}
