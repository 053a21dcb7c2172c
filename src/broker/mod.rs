//! The MQTT hop of `flatback demo` when no broker is given: is a broker
//! answering on localhost ([`probe`], [`local_mosquitto_answers`]), and if
//! not, a small MQTT 3.1.1 broker inside the process ([`EmbeddedBroker`]).
//! [`choose`] puts the order together: the broker given, else Mosquitto on
//! localhost if it answers, else the embedded one.
//!
//! # Why our own broker and not `rumqttd`
//!
//! rumqttd 0.20 (the rumqtt project's broker) was the obvious candidate and
//! does not fit:
//!
//! - it cannot be stopped: `Broker::start` blocks its thread for ever and
//!   there is no shutdown, so "stops on drop" is impossible;
//! - it binds inside `start` and does not report the address, so "port 0,
//!   then tell the actual port" would need a racy pick-a-free-port first;
//! - even without default features it brings axum, two hypers, the `config`
//!   crate, prometheus metrics, clap and uuid: its own tree is about 160
//!   crates against flatback's 97 (no aws-lc, but a long build on a Pi);
//! - on SUBSCRIBE it sends at most as many retained messages as the
//!   connection has free in-flight slots and drops the rest ("for now, we
//!   just try to read all messages and drop the excess ones", its router
//!   says): `flatback purge` finds the discovery configs to clear by
//!   subscribing to `homeassistant/#` and needs every one of them;
//! - its configuration is a large struct meant to come from a file.
//!
//! What flatback uses of MQTT is a small subset, so this module implements
//! that subset on tokio, with rumqttc's own packet codec
//! (`rumqttc::mqttbytes::v4`, public), which the client side of every test
//! exercises anyway. No new crate comes in (`bytes` was already in the
//! tree). The whole broker is a few hundred lines that can be read in one
//! sitting: [`router`] holds the sessions, subscriptions and retained
//! messages behind one mutex; [`embedded`] accepts connections and speaks
//! the protocol.
//!
//! # What the embedded broker does
//!
//! MQTT 3.1.1 (protocol level 4) over plain TCP on 127.0.0.1, anonymous
//! (user names and passwords are accepted and ignored), nothing on disk:
//!
//! - CONNECT with clean_session true or false (a persistent session keeps
//!   its subscriptions and QoS 1 messages while the client is away;
//!   CONNACK's session_present says so), a Last Will, keep-alive enforced
//!   (1.5 x the client's interval); a second connection with the same
//!   client id takes the session over and the first is closed;
//! - PUBLISH QoS 0, 1 (PUBACK after the message is routed) and 2 (PUBREC,
//!   PUBCOMP, delivered once); subscribers get QoS min(published, granted),
//!   granted QoS is at most 1, so the broker never sends QoS 2 itself;
//! - retained messages: the last one of a topic is kept, an empty retained
//!   payload clears it; a subscriber gets the matching ones (retain flag
//!   set) right after its SUBACK; live copies go out with the flag cleared;
//! - SUBSCRIBE with `+` and `#` (topics starting with `$` do not match
//!   filters starting with a wildcard), UNSUBSCRIBE, PINGREQ, DISCONNECT;
//! - the Last Will on any end without DISCONNECT: EOF, reset, keep-alive
//!   timeout, protocol error, takeover.
//!
//! Limits, all generous for a demo: packets up to 1 MiB; per session 100
//! QoS 1 messages in flight and 10 000 queued (more are dropped, with a
//! warning); a client that does not read its socket while 16 384 packets
//! wait for it is disconnected. A message matching several subscriptions
//! of one client is delivered once, at the highest QoS. QoS 0 messages are
//! not queued for offline sessions (as Mosquitto by default).

pub mod embedded;
mod probe;
pub mod router;

use std::time::Duration;

pub use embedded::EmbeddedBroker;
pub use probe::probe;

/// Where Mosquitto listens when it is installed as a system service.
pub const LOCAL_BROKER_URL: &str = "mqtt://127.0.0.1:1883";

/// Whether an MQTT broker answers on 127.0.0.1:1883 within `timeout`: it
/// accepts a CONNECT with a CONNACK of success. A broker that refuses
/// (wants a password, say) counts as not answering: the demo could not use
/// it.
pub fn local_mosquitto_answers(timeout: Duration) -> bool {
    probe(LOCAL_BROKER_URL, timeout).is_ok()
}

/// The broker `flatback demo` talks to.
#[derive(Debug)]
pub enum Chosen {
    /// The URL given with `--broker`, not probed: connection errors come
    /// from the publisher, with its hints.
    Given(String),
    /// A broker (Mosquitto, usually) answered on the local URL.
    Local(String),
    /// None answered: one inside this process. Keep it alive as long as the
    /// demo runs; dropping it stops it. `local` says why the local URL was
    /// not used (the probe's error).
    Embedded { broker: EmbeddedBroker, local: String },
}

impl Chosen {
    /// The URL to connect to.
    pub fn url(&self) -> String {
        match self {
            Chosen::Given(u) | Chosen::Local(u) => u.clone(),
            Chosen::Embedded { broker, .. } => broker.url(),
        }
    }

    /// For the user, e.g. "the broker embedded in flatback at
    /// mqtt://127.0.0.1:40123 (mqtt://127.0.0.1:1883: cannot connect ...)".
    pub fn describe(&self) -> String {
        match self {
            Chosen::Given(u) => format!("the broker given, {u}"),
            Chosen::Local(u) => format!("the MQTT broker answering on {u}"),
            Chosen::Embedded { broker, local } => {
                format!("the broker embedded in flatback at {} ({local})", broker.url())
            }
        }
    }
}

/// The broker given, else the one at `local_url` if it answers within
/// `probe_timeout` (see [`probe`]), else a new [`EmbeddedBroker`].
/// `flatback demo` passes [`LOCAL_BROKER_URL`]; tests pass other ports.
pub fn choose(given: Option<&str>, local_url: &str, probe_timeout: Duration) -> std::io::Result<Chosen> {
    if let Some(url) = given {
        return Ok(Chosen::Given(url.to_string()));
    }
    match probe(local_url, probe_timeout) {
        Ok(()) => Ok(Chosen::Local(local_url.to_string())),
        Err(local) => Ok(Chosen::Embedded {
            broker: EmbeddedBroker::start()?,
            local,
        }),
    }
}
