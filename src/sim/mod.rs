//! A simulator of the reference mat (see `shared/docs/signals.md`).

pub mod truth;
