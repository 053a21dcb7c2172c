//! The wire contract: what a gateway puts on the broker and how anyone
//! reads it back. The mat's pipeline, the publisher, `flatback watch` and
//! the web view all use these types, so there is one of each.
//!
//! - [`topics`]: the topic layout, built for one gateway and parsed for any,
//!   and the MQTT filter rule;
//! - [`payload`]: the event envelope (contract JSON plus `mat`, `seq`,
//!   `time`), the state JSON, availability payloads;
//! - [`state`]: the mat's state and counters, followed from events;
//! - [`commands`]: the commands a mat takes, parsed and validated;
//! - [`discovery`]: Home Assistant's discovery configs;
//! - [`athlete_entities`]: the athlete select's options and athletes' sensors.

pub mod athlete_entities;
pub mod commands;
pub mod discovery;
pub mod payload;
pub mod state;
pub mod topics;

pub use commands::MatCommand;
pub use state::{Counters, MatState};
pub use topics::{Subject, Topics};
