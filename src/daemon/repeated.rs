//! Warnings that repeat (a flood of bad commands, a full disk losing every
//! event) are logged the first time, then as a count at most once per
//! interval, so a third party cannot flood the log and a lasting fault
//! stays visible.

use std::time::{Duration, Instant};

/// One kind of repeated warning.
#[derive(Debug, Clone)]
pub struct Repeated {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Repeated {
    pub fn new(every: Duration) -> Repeated {
        Repeated {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Another occurrence at `now`: `Some(n)` if it is to be logged, `n`
    /// being how many were not logged since the last line; `None` to stay
    /// quiet (it is counted).
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

impl Default for Repeated {
    /// Once every ten seconds.
    fn default() -> Self {
        Repeated::new(Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_is_logged_then_a_count_once_per_interval() {
        let mut r = Repeated::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(r.hit(t0), Some(0));
        let logged: Vec<Option<u64>> = (1..10_000u64).map(|i| r.hit(t0 + Duration::from_millis(i))).collect();
        assert!(
            logged.iter().all(Option::is_none),
            "9 999 within the interval: none logged"
        );
        assert_eq!(r.hit(t0 + Duration::from_secs(10)), Some(9_999), "then the count");
        assert_eq!(r.hit(t0 + Duration::from_secs(11)), None);
        assert_eq!(r.hit(t0 + Duration::from_secs(30)), Some(1));
    }
}
