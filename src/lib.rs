//! flatback: keeps backs flat during leg lifts.
//!
//! The flow of a frame, in order:
//! - [`sources`]: where frames come from (recordings, the simulator through
//!   emulated ADCs, the mat's SPI ADCs), each a [`frame::FrameSource`];
//! - [`hardware`]: the mat's wiring, the grid scanner, the Raspberry Pi
//!   backend (rppal), emulated chips, over the `mcp3x08` driver (its own
//!   crate, `mcp3x08/`);
//! - [`sampler`]: the real-time sampler thread and its frame ring;
//! - [`detector`]: the contact-loss detector, rep counter and judge, frames
//!   in, [`event`]s out;
//! - [`daemon`]: the process: a thread per mat running its pipeline
//!   (source, detector, state, commands), signals, the systemd watchdog;
//! - [`cue`]: the cue at the mat, driven by its pipeline on the frame: a
//!   buzzer when the back lifts, a green/red LED, tempo ticks (GPIO);
//! - [`outbox`]: events on disk until the broker has them, each mat's state;
//! - [`mqtt`]: the transport: the publisher's session and its driver, a
//!   subscriber, TLS;
//! - [`wire`]: the contract on the broker: topics, payloads, the mat's
//!   state and counters, commands, Home Assistant discovery.
//!
//! Around it: [`config`] (the configuration file), [`cli`] and [`cmd`] (the
//! command line, a file per subcommand), [`sim`] (the simulator, with ground
//! truth), [`replay`] (a detector over any source), [`eval`] (the detector
//! scored on simulated cases), [`score`] (the scoring
//! rules of `shared/eval/score.py`), [`backoff`], [`repeated`] (warnings
//! that repeat, rate-limited), [`inspect`] (the installer's
//! live look at the mat), [`dashboard`] (the floor's model, every mat's tile
//! from the broker's messages, for `watch` and the web view), and behind
//! cargo features [`watch`] (the coach's
//! terminal dashboard), [`plot`] (the picture of a session) and [`broker`]
//! (the demo's embedded MQTT broker).

pub mod backoff;
#[cfg(feature = "demo")]
pub mod broker;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod cue;
pub mod daemon;
pub mod dashboard;
pub mod detector;
pub mod eval;
pub mod event;
pub mod frame;
pub mod hardware;
pub mod history;
pub mod inspect;
pub mod metrics;
pub mod mqtt;
pub mod outbox;
#[cfg(feature = "plot")]
pub mod plot;
pub mod repeated;
pub mod replay;
pub mod sampler;
pub mod score;
pub mod sim;
pub mod sources;
#[cfg(feature = "watch")]
pub mod watch;
pub mod web;
pub mod wire;
