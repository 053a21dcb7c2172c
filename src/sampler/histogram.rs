//! A fixed-size histogram of wake-up latencies: recording is a couple of
//! integer operations and never allocates, so the sampler can record every
//! cycle; percentiles are read from it rarely.

/// 1 us buckets below 1 ms, 10 us buckets from 1 ms to 10 ms, one overflow
/// bucket beyond (the exact maximum is kept apart).
#[derive(Debug, Clone)]
pub struct JitterHistogram {
    buckets: Box<[u64; BUCKETS]>,
    total: u64,
    max_ns: u64,
}

const FINE: usize = 1000; // 0..1000 us, 1 us wide
const COARSE: usize = 900; // 1000..10000 us, 10 us wide
const BUCKETS: usize = FINE + COARSE + 1;

impl Default for JitterHistogram {
    fn default() -> Self {
        JitterHistogram {
            buckets: Box::new([0; BUCKETS]),
            total: 0,
            max_ns: 0,
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    let us = ns / 1000;
    if us < FINE as u64 {
        us as usize
    } else if us < 10_000 {
        FINE + (us as usize - FINE) / 10
    } else {
        BUCKETS - 1
    }
}

/// Upper edge of a bucket, in microseconds.
fn upper_us(bucket: usize) -> f64 {
    if bucket < FINE {
        (bucket + 1) as f64
    } else {
        (FINE + (bucket - FINE + 1) * 10) as f64
    }
}

impl JitterHistogram {
    pub fn record(&mut self, ns: u64) {
        self.buckets[bucket_of(ns)] += 1;
        self.total += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max_us(&self) -> f64 {
        self.max_ns as f64 / 1000.0
    }

    /// The value at or below which a share `q` (0..=1) of the samples lie,
    /// rounded up to its bucket's upper edge (never more than the maximum);
    /// 0 when empty.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                if b == BUCKETS - 1 {
                    return self.max_us();
                }
                return upper_us(b).min(self.max_us());
            }
        }
        self.max_us()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantiles_of_known_samples() {
        let mut h = JitterHistogram::default();
        assert_eq!(h.quantile_us(0.5), 0.0);
        for us in 1..=100u64 {
            h.record(us * 1000 - 500);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile_us(0.5), 50.0);
        assert_eq!(h.quantile_us(0.99), 99.0);
        assert_eq!(h.max_us(), 99.5);
        h.record(2_345_000);
        assert_eq!(h.max_us(), 2345.0);
        assert_eq!(h.quantile_us(1.0), 2345.0);
        h.record(50_000_000);
        assert_eq!(h.quantile_us(1.0), 50_000.0);
    }

    proptest! {
        /// The quantile is never below the exact one and at most one bucket
        /// width above it.
        #[test]
        fn quantiles_bracket_the_exact_ones(mut ns in prop::collection::vec(0u64..12_000_000, 1..400), q in 0.0f64..1.0) {
            let mut h = JitterHistogram::default();
            for &x in &ns {
                h.record(x);
            }
            ns.sort_unstable();
            let rank = ((q * ns.len() as f64).ceil() as usize).max(1);
            let exact = ns[rank - 1] as f64 / 1000.0;
            let got = h.quantile_us(q);
            prop_assert!(got >= exact - 1e-9, "{} < {}", got, exact);
            let width = if exact < 1000.0 { 1.0 } else if exact < 10_000.0 { 10.0 } else { f64::INFINITY };
            prop_assert!(got <= exact + width + 1e-9, "{} >> {}", got, exact);
        }
    }
}
