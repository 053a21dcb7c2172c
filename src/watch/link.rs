//! The watcher's MQTT connection (rumqttc, on a thread of its own): it
//! subscribes to every mat under the base topic on each connection, hands
//! messages over a channel, and publishes commands.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Result};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS, SubscribeFilter};

use super::model::Outgoing;
use super::topic;

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

/// Where the broker is: `mqtt://host[:port]` (or `host[:port]`), port 1883
/// by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
}

impl Broker {
    pub fn parse(url: &str) -> Result<Broker> {
        if url.starts_with("mqtts://") {
            bail!("{url}: TLS (mqtts://) is not supported by watch yet; use mqtt://");
        }
        let rest = url.strip_prefix("mqtt://").unwrap_or(url);
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains("://") || rest.contains('/') || rest.contains('@') {
            bail!("{url}: expected mqtt://host[:port]");
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            match v6.split_once(']') {
                Some((h, "")) => (h, None),
                Some((h, p)) if p.starts_with(':') => (h, Some(&p[1..])),
                _ => bail!("{url}: expected mqtt://[v6 address]:port"),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            bail!("{url}: no host");
        }
        let port = match port {
            None => 1883,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => bail!("{url}: port {p:?} is not a number in 1..=65535"),
            },
        };
        Ok(Broker {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "mqtt://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "mqtt://{}:{}", self.host, self.port)
        }
    }
}

/// A connection to the broker, subscribed to every mat under `base`.
pub struct MqttLink {
    client: Client,
    events: Receiver<LinkEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Reconnect delays: from the first to the longest, doubling.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

impl MqttLink {
    /// Starts connecting (it returns at once; [`LinkEvent::Subscribed`] says
    /// when messages flow).
    pub fn connect(broker: &Broker, base: &str) -> MqttLink {
        let id = format!("flatback-watch-{}-{}", std::process::id(), unique_suffix());
        let mut options = MqttOptions::new(id, broker.host.clone(), broker.port);
        options.set_keep_alive(Duration::from_secs(15));
        options.set_clean_session(true);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut connection) = Client::new(options, 64);
        let (tx, events) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let filters: Vec<SubscribeFilter> = topic::filters(base)
            .into_iter()
            .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce))
            .collect();
        let thread = {
            let (client, stop) = (client.clone(), stop.clone());
            std::thread::Builder::new()
                .name("watch-mqtt".into())
                .spawn(move || {
                    let mut retry = RETRY_MIN;
                    let mut lost = false;
                    for notification in connection.iter() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let sent = match notification {
                            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                                retry = RETRY_MIN;
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
                                    tx.send(LinkEvent::Lost(e.to_string()))
                                };
                                lost = true;
                                // The event loop reconnects on the next poll:
                                // wait first, so a dead broker is not hammered.
                                std::thread::sleep(retry);
                                retry = (retry * 2).min(RETRY_MAX);
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

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<LinkEvent> {
        match self.events.recv_timeout(timeout) {
            Ok(e) => Some(e),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<LinkEvent> {
        self.events.try_recv().ok()
    }

    /// Publishes a command (QoS 1, never retained: a retained command would
    /// replay on every reconnect of the gateway).
    pub fn publish(&self, out: &Outgoing) -> Result<()> {
        self.client
            .try_publish(
                out.topic.clone(),
                QoS::AtLeastOnce,
                false,
                out.payload.clone().into_bytes(),
            )
            .map_err(|e| anyhow::anyhow!("publishing to {}: {e}", out.topic))
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

/// Distinguishes two watchers started in the same process (tests).
fn unique_suffix() -> u64 {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let b = |h: &str, p| Broker {
            host: h.into(),
            port: p,
        };
        assert_eq!(Broker::parse("mqtt://gym.local").unwrap(), b("gym.local", 1883));
        assert_eq!(Broker::parse("mqtt://127.0.0.1:1884/").unwrap(), b("127.0.0.1", 1884));
        assert_eq!(Broker::parse("10.0.0.2:1999").unwrap(), b("10.0.0.2", 1999));
        assert_eq!(Broker::parse("mqtt://[::1]:1885").unwrap(), b("::1", 1885));
        assert_eq!(
            Broker::parse("mqtt://[::1]:1885").unwrap().to_string(),
            "mqtt://[::1]:1885"
        );
        for bad in [
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:x",
            "http://h",
            "mqtt://u@h",
            "mqtt://h/x",
            "mqtts://h",
        ] {
            let e = Broker::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad.trim_end_matches('/')), "{bad}: {e}");
        }
    }
}
