//! flatback: keeps backs flat during leg lifts.
//!
//! The contract, [`contract`]: a [`contract::frame::Frame`] in (raw counts of
//! the mat's grid), [`contract::event::Event`]s out; [`wire`] is the contract
//! on the broker (topics, payloads, the mat's state and counters, commands,
//! Home Assistant discovery).
//!
//! The live path, the flow of a frame in order:
//! - [`sources`]: where frames come from (recordings, the simulator through
//!   emulated ADCs, the mat's SPI ADCs), each a [`contract::frame::FrameSource`];
//! - [`hardware`]: the mat's wiring, the grid scanner, the Raspberry Pi
//!   backend (rppal), emulated chips, over the `mcp3x08` driver (its own
//!   crate, `mcp3x08/`);
//! - [`sampler`]: the real-time sampler thread and its frame ring;
//! - [`detector`]: the contact-loss detector, rep counter and judge, frames
//!   in, events out;
//! - [`daemon`]: the process: a thread per mat running its pipeline
//!   (source, detector, state, commands), the cue at the mat
//!   ([`daemon::cue`]: buzzer, LED, tempo ticks), the gateway's figures
//!   ([`daemon::metrics`]), signals, the systemd watchdog;
//! - [`outbox`]: events on disk until the broker has them, each mat's state;
//! - [`mqtt`]: the transport: the publisher's session and its driver, a
//!   subscriber, TLS;
//! - [`history`]: the athletes' history (SQLite or PostgreSQL), fed from the
//!   outbox.
//!
//! The tools beside it, [`tools`]: a detector over any source
//! ([`tools::replay`]), the scoring rules of `shared/eval/score.py`
//! ([`tools::score`]), the detector scored on simulated cases
//! ([`tools::eval`]), the installer's live look at the mat
//! ([`tools::inspect`]); and [`sim`], the simulator, with ground truth.
//!
//! The views: [`dashboard`] (the floor's model, every mat's tile from the
//! broker's messages, for `watch` and the web view), [`web`] (the gateway's
//! web view, `/metrics`, `/health`, the athletes' pages), and behind cargo
//! features [`watch`] (the coach's terminal dashboard) and [`plot`] (the
//! picture of a session).
//!
//! Around it all: [`config`] (the configuration file), [`cmd`] (the command
//! line, a file per subcommand), and behind the `demo` feature [`broker`]
//! (the demo's embedded MQTT broker).

#[cfg(feature = "demo")]
pub mod broker;
pub mod cmd;
pub mod config;
pub mod contract;
pub mod daemon;
pub mod dashboard;
pub mod detector;
pub mod hardware;
pub mod history;
pub mod mqtt;
pub mod outbox;
#[cfg(feature = "plot")]
pub mod plot;
pub mod sampler;
pub mod sim;
pub mod sources;
pub mod tools;
#[cfg(feature = "watch")]
pub mod watch;
pub mod web;
pub mod wire;
