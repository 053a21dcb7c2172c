//! The tools beside the live path: the detector run and judged off-line, and
//! the installer's look at the mat.
//!
//! - [`replay`]: a detector over any frame source, as fast as the CPU allows;
//! - [`score`]: the scoring rules of `shared/eval/score.py`;
//! - [`eval`]: `flatback eval`, the detector scored on simulated cases;
//! - [`inspect`]: `flatback check`'s live look at the mat (heatmap, dead or
//!   stuck channels).

pub mod eval;
pub mod inspect;
pub mod replay;
pub mod score;
