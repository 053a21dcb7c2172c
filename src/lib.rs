//! flatback: keeps backs flat during leg lifts.
//!
//! Where things are:
//! - [`frame`]: the `Frame` of the taxel grid and the `FrameSource` trait;
//! - [`recording`]: the CSV recording format (reader and writer);
//! - [`sim`]: a simulator of the reference mat, with ground truth;
//! - [`detector`]: the contact-loss detector, rep counter and judge;
//! - [`event`]: the events of the contract (replay output, MQTT payloads);
//! - [`score`]: scores events against ground truth, like `shared/eval/score.py`;
//! - [`hardware`]: wiring from the config, the grid scanner over the `mcp3x08`
//!   driver (its own crate, `mcp3x08/`), the Raspberry Pi backend (rppal), an
//!   emulated mat;
//! - [`sampler`]: the real-time sampler thread and its frame ring;
//! - [`mat`]: one mat's pipeline (source, detector, state, commands);
//! - [`mqtt`]: MQTT, Home Assistant discovery, the outbox;
//! - [`daemon`]: `flatback run`: the gateway's mats, supervised, and MQTT;
//! - [`systemd`]: readiness, watchdog and stopping notifications, journald;
//! - [`broker`]: is an MQTT broker answering locally (a probe), and a small
//!   MQTT 3.1.1 broker embedded in the process, for `flatback demo`;
//! - [`demo`]: `flatback demo`: simulated mats, the real detector, MQTT and
//!   the coach's view;
//! - [`watch`]: the coach's live dashboard of every mat on a broker;
//! - [`plot`]: the picture of a recorded session (SVG, PNG).

pub mod broker;
pub mod check;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod detector;
pub mod event;
pub mod frame;
pub mod hardware;
pub mod live;
pub mod mat;
pub mod mqtt;
pub mod pacing;
pub mod plot;
pub mod recording;
pub mod replay;
pub mod sampler;
pub mod score;
pub mod sim;
pub mod systemd;
pub mod watch;
