//! The one backoff: how long to wait before trying again after failures in
//! a row (a mat's source, the publisher's connection, a watcher's link).
//!
//! Exponential from `min`, doubling up to `max`, with optional jitter so
//! that many gateways cut off by the same broker restart do not all come
//! back in the same instant.

use std::time::Duration;

/// Waits that double from `min` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
    /// Each wait is scaled by a factor in `1 - jitter ..= 1 + jitter`.
    jitter: f64,
    rng: Jitter,
}

impl Backoff {
    /// No jitter: the waits are `min`, `2 min`, `4 min`, ... up to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
            jitter: 0.0,
            rng: Jitter::from_time(),
        }
    }

    /// Each wait is scaled by a random factor in `1 +- share` (at most `max`).
    pub fn with_jitter(mut self, share: f64, rng: Jitter) -> Backoff {
        self.jitter = share.clamp(0.0, 1.0);
        self.rng = rng;
        self
    }

    /// The wait after one more failure.
    pub fn fail(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let base = self.base(self.failures);
        let factor = 1.0 + self.jitter * (2.0 * self.rng.fraction() - 1.0);
        base.mul_f64(factor).min(self.max)
    }

    /// Success: the next failure waits `min` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The wait after `failures` failures in a row, without jitter.
    pub fn base(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30) as i32;
        self.min.mul_f64(2f64.powi(doublings)).min(self.max)
    }
}

/// A small random stream (SplitMix64) for jitter: no statistics needed,
/// only different gateways waiting different times.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Jitter {
        Jitter(seed)
    }

    /// Seeded from the clock and the process id.
    pub fn from_time() -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Jitter(nanos ^ (u64::from(std::process::id()) << 32))
    }

    /// Uniform in `0..1`.
    pub fn fraction(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_min_up_to_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let waits: Vec<f64> = (0..9).map(|_| b.fail().as_secs_f64()).collect();
        assert_eq!(waits, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        assert_eq!(b.failures(), 9);
        for _ in 0..1000 {
            b.fail();
        }
        assert_eq!(b.fail(), Duration::from_secs(30));
        b.reset();
        assert_eq!(b.fail(), Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_its_share_and_under_max() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10)).with_jitter(0.25, Jitter::new(7));
        let mut seen = Vec::new();
        for n in 1..=6 {
            let base = b.base(n).as_secs_f64();
            let d = b.fail().as_secs_f64();
            assert!(
                d >= base * 0.75 - 1e-9 && d <= (base * 1.25).min(10.0) + 1e-9,
                "{n}: {d} vs {base}"
            );
            seen.push(d);
        }
        seen.dedup();
        assert!(seen.len() > 1, "jitter varies the waits");
    }

    #[test]
    fn jitter_fractions_cover_zero_to_one() {
        let mut j = Jitter::new(1);
        let xs: Vec<f64> = (0..10_000).map(|_| j.fraction()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }
}
