//! Athletes and their history: who is on the mat, what they did over the
//! weeks, and when to add load.
//!
//! - [`model`]: the roster and the history as plain data (athletes, their
//!   load and plan, sessions with their reps);
//! - [`figures`]: pure: sessions in, an athlete's figures out (perfect reps
//!   per set and the best set, descent, sessions per week and the streak,
//!   the floor, ready to add load);
//! - [`store`]: the one trait the rest reads and writes through, with a
//!   SQLite ([`sqlite`]) and a PostgreSQL ([`postgres`]) implementation, each
//!   with its migrations (`migrations/<engine>/`);
//! - [`writer`]: the events the outbox keeps safe, into the store, by a
//!   cursor of the outbox's own (idempotent per gateway, mat and `seq`);
//! - [`export`]: the CSV of `flatback history export` and the coach's page;
//! - [`secret`]: ids and the athletes' personal links;
//! - [`handle`]: the daemon's shared connection and its cached roster;
//! - [`homeassistant`]: the roster and athletes' figures, kept current for
//!   Home Assistant's athlete selects and athlete devices.
//!
//! The daemon wires the writer in [`crate::daemon::run`]; the pages and the
//! command line read through [`store::HistoryStore`] only.

pub mod export;
pub mod figures;
pub mod handle;
pub mod homeassistant;
pub mod model;
pub mod postgres;
pub mod secret;
pub mod sqlite;
pub mod store;
pub mod writer;

pub use handle::{Handle, RosterEntry};
pub use model::{Athlete, HistoryEvent, Load, Plan, RepRecord, SessionKey, SessionRecord, Who};
pub use store::{open, HistoryStore, StoreError};
