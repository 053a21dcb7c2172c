//! Scores detector events against ground truth, with the rules of
//! `shared/eval/score.py` (contract section 5), so that our own tests can
//! score the detector on hundreds of simulated cases without Python.

use crate::contract::event::{Event, Phase};
use crate::sim::Truth;

/// A `rep` event matches a true rep within this window (ms) of the true end
/// of its descent.
pub const REP_WINDOW: (i64, i64) = (-1000, 2500);
/// An `arch` start matches a true arch within this window of its onset.
pub const ARCH_WINDOW: (i64, i64) = (-300, 1000);
/// A matched rep's `descent_ms` is right within this share of the true
/// descent (`descent_within_15pct`).
pub const DESCENT_TOLERANCE: f64 = 0.15;
/// The tighter tolerance that is reported beside it (`descent_within_10pct`).
pub const DESCENT_TOLERANCE_TIGHT: f64 = 0.10;

/// Maximum in-order matching of detections to truths within a window;
/// returns (truth index, detection index) pairs.
pub fn align(truth: &[i64], det: &[i64], window: (i64, i64)) -> Vec<(usize, usize)> {
    let (n, m) = (truth.len(), det.len());
    let ok = |i: usize, j: usize| {
        let d = det[j] - truth[i];
        window.0 <= d && d <= window.1
    };
    let mut best = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let mut b = best[i + 1][j].max(best[i][j + 1]);
            if ok(i, j) {
                b = b.max(1 + best[i + 1][j + 1]);
            }
            best[i][j] = b;
        }
    }
    let (mut pairs, mut i, mut j) = (Vec::new(), 0, 0);
    while i < n && j < m {
        if ok(i, j) && best[i][j] == 1 + best[i + 1][j + 1] {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if best[i][j] == best[i + 1][j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

/// Totals for one or more cases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Score {
    pub reps_true: usize,
    pub reps_det: usize,
    pub reps_matched: usize,
    pub perfect_flag_ok: usize,
    /// Matched reps whose `descent_ms` is within `DESCENT_TOLERANCE` of the
    /// true descent.
    pub descent_ok: usize,
    /// Matched reps whose `descent_ms` is within `DESCENT_TOLERANCE_TIGHT`
    /// of the true descent.
    pub descent_ok_tight: usize,
    pub sets: usize,
    pub sets_exact: usize,
    pub arches_true: usize,
    pub arches_det: usize,
    pub arches_matched: usize,
    pub arch_fp: usize,
    pub arch_latency_ms: Vec<i64>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// A latency for a summary: the number, or `-` when there is none.
fn ms(latency: Option<i64>) -> String {
    latency.map_or_else(|| "-".to_string(), |l| l.to_string())
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

impl Score {
    /// Scores one case.
    pub fn case(events: &[Event], truth: &Truth) -> Score {
        let mut reps: Vec<_> = truth.reps().collect();
        reps.sort_by_key(|r| r.descent_end_ms);
        let mut det_reps: Vec<(i64, bool, u64)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Rep(r) => Some((r.t_ms as i64, r.perfect, r.descent_ms)),
                _ => None,
            })
            .collect();
        det_reps.sort_by_key(|d| d.0);
        let t: Vec<i64> = reps.iter().map(|r| r.descent_end_ms as i64).collect();
        let d: Vec<i64> = det_reps.iter().map(|r| r.0).collect();
        let pairs = align(&t, &d, REP_WINDOW);
        let perfect_flag_ok = pairs.iter().filter(|&&(i, j)| det_reps[j].1 == reps[i].perfect).count();
        let descent_within = |tolerance: f64| {
            pairs
                .iter()
                .filter(|&&(i, j)| {
                    let truth = reps[i].descent_ms as f64;
                    (det_reps[j].2 as f64 - truth).abs() <= tolerance * truth
                })
                .count()
        };
        let descent_ok = descent_within(DESCENT_TOLERANCE);
        let descent_ok_tight = descent_within(DESCENT_TOLERANCE_TIGHT);

        let mut sets = 0;
        let mut sets_exact = 0;
        for set in truth.sessions.iter().flat_map(|s| &s.sets) {
            sets += 1;
            let (lo, hi) = (set.start_ms as i64, set.end_ms as i64 + REP_WINDOW.1);
            let got = d.iter().filter(|&&x| lo <= x && x <= hi).count();
            if got == set.reps.len() {
                sets_exact += 1;
            }
        }

        let mut onsets: Vec<i64> = truth.arches.iter().map(|a| a.onset_ms as i64).collect();
        onsets.sort_unstable();
        let mut det_arch: Vec<i64> = events
            .iter()
            .filter_map(|e| match e {
                Event::Arch(a) if a.phase == Phase::Start => Some(a.t_ms as i64),
                _ => None,
            })
            .collect();
        det_arch.sort_unstable();
        let apairs = align(&onsets, &det_arch, ARCH_WINDOW);
        let arch_fp = det_arch
            .iter()
            .enumerate()
            .filter(|(j, &x)| {
                !apairs.iter().any(|p| p.1 == *j) && !truth.ignore.iter().any(|w| w[0] as i64 <= x && x <= w[1] as i64)
            })
            .count();
        Score {
            reps_true: reps.len(),
            reps_det: det_reps.len(),
            reps_matched: pairs.len(),
            perfect_flag_ok,
            descent_ok,
            descent_ok_tight,
            sets,
            sets_exact,
            arches_true: onsets.len(),
            arches_det: det_arch.len(),
            arches_matched: apairs.len(),
            arch_fp,
            arch_latency_ms: apairs.iter().map(|&(i, j)| det_arch[j] - onsets[i]).collect(),
        }
    }

    /// Adds another case's totals.
    pub fn add(&mut self, o: &Score) {
        self.reps_true += o.reps_true;
        self.reps_det += o.reps_det;
        self.reps_matched += o.reps_matched;
        self.perfect_flag_ok += o.perfect_flag_ok;
        self.descent_ok += o.descent_ok;
        self.descent_ok_tight += o.descent_ok_tight;
        self.sets += o.sets;
        self.sets_exact += o.sets_exact;
        self.arches_true += o.arches_true;
        self.arches_det += o.arches_det;
        self.arches_matched += o.arches_matched;
        self.arch_fp += o.arch_fp;
        self.arch_latency_ms.extend_from_slice(&o.arch_latency_ms);
    }

    pub fn rep_f1(&self) -> f64 {
        f1(
            ratio(self.reps_matched, self.reps_det),
            ratio(self.reps_matched, self.reps_true),
        )
    }

    pub fn arch_f1(&self) -> f64 {
        f1(
            ratio(self.arches_matched, self.arches_det),
            ratio(self.arches_matched, self.arches_true),
        )
    }

    pub fn set_exact_rate(&self) -> f64 {
        ratio(self.sets_exact, self.sets)
    }

    pub fn perfect_flag_acc(&self) -> f64 {
        ratio(self.perfect_flag_ok, self.reps_matched)
    }

    /// `descent_within_15pct`: the share of matched reps whose `descent_ms`
    /// is within 15 % of the true descent.
    pub fn descent_within_15pct(&self) -> f64 {
        ratio(self.descent_ok, self.reps_matched)
    }

    /// `descent_within_10pct`: the share of matched reps whose `descent_ms`
    /// is within 10 % of the true descent.
    pub fn descent_within_10pct(&self) -> f64 {
        ratio(self.descent_ok_tight, self.reps_matched)
    }

    /// Latency percentile (0..=1) of matched arches, in ms.
    pub fn arch_latency(&self, q: f64) -> Option<i64> {
        let mut l = self.arch_latency_ms.clone();
        l.sort_unstable();
        let k = ((q * (l.len() as f64 - 1.0)).round() as usize).min(l.len().checked_sub(1)?);
        Some(l[k])
    }

    pub fn summary(&self) -> String {
        format!(
            "rep F1 {:.3} ({}/{} matched, {} detected) | sets exact {:.3} | perfect-flag {:.3} | descent within 15% {:.3} 10% {:.3} | arch F1 {:.3} ({}/{}, {} detected, fp {}) | latency p50/p90 {}/{} ms",
            self.rep_f1(),
            self.reps_matched,
            self.reps_true,
            self.reps_det,
            self.set_exact_rate(),
            self.perfect_flag_acc(),
            self.descent_within_15pct(),
            self.descent_within_10pct(),
            self.arch_f1(),
            self.arches_matched,
            self.arches_true,
            self.arches_det,
            self.arch_fp,
            ms(self.arch_latency(0.5)),
            ms(self.arch_latency(0.9))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_is_in_order_and_within_window() {
        let pairs = align(&[1000, 5000, 9000], &[900, 1200, 7400, 9100], (-1000, 2500));
        assert_eq!(pairs, vec![(0, 0), (1, 2), (2, 3)]);
        assert!(align(&[1000], &[3600], (-1000, 2500)).is_empty());
    }

    #[test]
    fn summary_prints_latencies_as_numbers() {
        let mut s = Score::default();
        assert!(s.summary().ends_with("latency p50/p90 -/- ms"), "{}", s.summary());
        s.arch_latency_ms = vec![26, 20, 28];
        assert!(s.summary().ends_with("latency p50/p90 26/28 ms"), "{}", s.summary());
    }

    #[test]
    fn descent_is_reported_within_15_and_10_percent() {
        let s = Score {
            reps_matched: 4,
            descent_ok: 3,
            descent_ok_tight: 2,
            ..Score::default()
        };
        assert_eq!(s.descent_within_15pct(), 0.75);
        assert_eq!(s.descent_within_10pct(), 0.5);
        assert!(
            s.summary().contains("descent within 15% 0.750 10% 0.500"),
            "{}",
            s.summary()
        );
    }
}
