//! Paces any frame source to its own clock: real time, or `speed` times it.

use std::time::{Duration, Instant};

use crate::contract::frame::{Frame, FrameSource, Grid, SourceError};

/// Wraps a source so that each frame is delivered when its timestamp comes
/// due on the wall clock (scaled by `speed`).
pub struct Paced<S> {
    inner: S,
    speed: f64,
    start: Option<(Instant, u64)>,
}

impl<S: FrameSource> Paced<S> {
    pub fn new(inner: S, speed: f64) -> Self {
        Paced {
            inner,
            speed,
            start: None,
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: FrameSource> FrameSource for Paced<S> {
    fn grid(&self) -> Grid {
        self.inner.grid()
    }

    fn next_into(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        if !self.inner.next_into(frame)? {
            return Ok(false);
        }
        let (t0, first_us) = *self.start.get_or_insert((Instant::now(), frame.t_us));
        let due = t0 + Duration::from_secs_f64(frame.t_us.saturating_sub(first_us) as f64 * 1e-6 / self.speed);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        Ok(true)
    }
}
