//! The contract of `shared/docs/contract.md`: what goes in and what comes out.
//!
//! - [`frame`]: a frame (timestamp + raw counts of a rows x cols grid) and
//!   the [`frame::FrameSource`] trait every source implements;
//! - [`event`]: the events the detector emits (the replay's output, the
//!   payloads of MQTT events).
//!
//! On the broker, the contract goes on in [`crate::wire`] (topics, payloads,
//! the mat's state, commands, Home Assistant discovery).

pub mod event;
pub mod frame;
