//! flatback: keeps backs flat during leg lifts.
//!
//! Where things are:
//! - [`frame`]: the `Frame` of the taxel grid and the `FrameSource` trait;
//! - [`recording`]: the CSV recording format (reader and writer);
//! - [`sim`]: a simulator of the reference mat, with ground truth;
//! - [`detector`]: the contact-loss detector, rep counter and judge;
//! - [`event`]: the events of the contract (replay output, MQTT payloads);
//! - [`mat`]: one mat's pipeline (source, detector, state, commands);
//! - [`mqtt`]: MQTT, Home Assistant discovery, the outbox;
//! - [`score`]: scores events against ground truth, like `shared/eval/score.py`.

pub mod cli;
pub mod config;
pub mod detector;
pub mod event;
pub mod frame;
pub mod mat;
pub mod mqtt;
pub mod pacing;
pub mod recording;
pub mod replay;
pub mod score;
pub mod sim;
