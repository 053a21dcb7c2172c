//! MQTT transport: connecting, publishing, subscribing. It speaks the wire
//! contract ([`crate::wire`]) and reads the outbox ([`crate::outbox`]); it
//! knows nothing of the daemon, the detector or where frames come from.
//!
//! - [`options`]: the `[mqtt]` section ([`crate::config::MqttConfig`])
//!   resolved for rumqttc (the gateway id, login, TLS), and connection
//!   errors in words;
//! - [`tls`]: rustls (ring) client configuration;
//! - [`session`]: the publisher's session, pure: what to publish and when;
//! - [`publisher`]: the I/O around the session (rumqttc, tokio);
//! - [`subscriber`]: a subscribing connection (`flatback watch`, the web view);
//! - [`purge`]: removes a gateway's retained discovery configs.

pub mod options;
pub mod publisher;
pub mod purge;
pub mod session;
pub mod subscriber;
pub mod tls;

pub use crate::config::MqttConfig;
pub use options::Options;
