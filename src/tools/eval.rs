//! `flatback eval`: the detector scored on simulated cases, with the rules
//! of `shared/eval/score.py` ([`crate::tools::score`]), by kind and by field effect.
//!
//! Case `seed` is [`Scenario::random`]`(seed)`, so `flatback record --source
//! sim --case SEED` writes the very recording scored here. Cases run on every
//! core (each case alone is deterministic, and so is the report).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::contract::event::Event;
use crate::contract::frame::{Frame, FrameSource};
use crate::detector::{Detector, DetectorConfig};
use crate::tools::score::Score;

use crate::sim::{Kind, Scenario, Simulator};

/// One scored case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub seed: u64,
    pub scenario: Scenario,
    pub score: Score,
    /// Arch starts on a person who only lies still (must be none).
    pub still_arches: usize,
    pub frames: u64,
    /// Time spent in the detector alone.
    pub detector_time: Duration,
}

impl CaseResult {
    /// What the case is, for the breakdown: its kind, the field effects it
    /// has (`lab` when none) and `50 Hz` for a slow sampler.
    pub fn effects(&self) -> Vec<&'static str> {
        let f = &self.scenario.field;
        let mut out = Vec::new();
        if f.hum_counts > 0.0 || f.noise_counts > 0.0 || f.glitch_p > 0.0 {
            out.push("noise");
        }
        if f.creep > 0.0 {
            out.push("creep");
        }
        if f.slides > 0.0 {
            out.push("slides");
        }
        if f.pauses > 0.0 {
            out.push("pauses");
        }
        if f.borderline {
            out.push("borderline");
        }
        if f.long_session {
            out.push("long session");
        }
        if self.scenario.rate_hz <= 50.0 {
            out.push("50 Hz");
        }
        if f.is_lab() && self.scenario.rate_hz > 50.0 {
            out.push("lab");
        }
        out
    }
}

/// The figures of many cases.
#[derive(Debug, Clone, Default)]
pub struct EvalReport {
    /// Every case, in seed order.
    pub cases: Vec<CaseResult>,
    pub total: Score,
    pub by_kind: BTreeMap<&'static str, Score>,
    /// By field effect (a case counts under each effect it has).
    pub by_effect: BTreeMap<&'static str, Score>,
    pub still_arches: usize,
    pub frames: u64,
    pub detector_time: Duration,
    /// Print one line per case too.
    pub verbose: bool,
}

/// Why a case could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error(transparent)]
    Config(#[from] crate::config::Invalid),
    #[error(transparent)]
    Source(#[from] crate::contract::frame::SourceError),
}

/// A case that could not be scored, and its seed.
#[derive(Debug, thiserror::Error)]
#[error("case {seed}: {error}")]
pub struct EvalError {
    pub seed: u64,
    #[source]
    pub error: CaseError,
}

/// Simulates and scores one case; only the detector is timed (frames are
/// generated up front).
pub fn run_case(seed: u64, config: &DetectorConfig) -> Result<CaseResult, EvalError> {
    let failed = |e: CaseError| EvalError { seed, error: e };
    let scenario = Scenario::random(seed);
    let mut sim = Simulator::new(&scenario);
    let mut frames = Vec::new();
    let mut frame = Frame::zeroed(sim.grid());
    while sim.next_into(&mut frame).map_err(|e| failed(e.into()))? {
        frames.push(frame.clone());
    }
    let mut detector = Detector::new(sim.grid(), config.clone()).map_err(|e| failed(e.into()))?;
    let mut events = Vec::new();
    let start = Instant::now();
    for f in &frames {
        detector.push(f, &mut events);
    }
    detector.finish(&mut events);
    let detector_time = start.elapsed();
    let score = Score::case(&events, sim.truth());
    let still_arches = if scenario.kind == Kind::Still {
        events.iter().filter(|e| matches!(e, Event::Arch(_))).count()
    } else {
        0
    };
    Ok(CaseResult {
        seed,
        scenario,
        score,
        still_arches,
        frames: frames.len() as u64,
        detector_time,
    })
}

/// Scores the cases of `seeds` on `threads` threads (at least one).
pub fn evaluate(
    seeds: Range<u64>,
    config: &DetectorConfig,
    threads: usize,
    verbose: bool,
) -> Result<EvalReport, EvalError> {
    let next = AtomicU64::new(seeds.start);
    let results = Mutex::new(Vec::new());
    let failed = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    return;
                }
                match run_case(seed, config) {
                    Ok(r) => results.lock().expect("no worker panics holding it").push(r),
                    Err(e) => {
                        *failed.lock().expect("no worker panics holding it") = Some(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().expect("workers done") {
        return Err(e);
    }
    let mut cases = results.into_inner().expect("workers done");
    cases.sort_by_key(|c| c.seed);
    let mut report = EvalReport {
        verbose,
        ..EvalReport::default()
    };
    for c in &cases {
        report.total.add(&c.score);
        report.by_kind.entry(c.scenario.kind.name()).or_default().add(&c.score);
        for effect in c.effects() {
            report.by_effect.entry(effect).or_default().add(&c.score);
        }
        report.still_arches += c.still_arches;
        report.frames += c.frames;
        report.detector_time += c.detector_time;
    }
    report.cases = cases;
    Ok(report)
}

/// The machine's cores, for [`evaluate`].
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The bars of issue 14 (`shared/eval/score.py`'s figures).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bars {
    pub rep_f1: f64,
    pub sets_exact: f64,
    pub perfect_flag: f64,
    pub arch_f1: f64,
    pub arch_fp: usize,
    pub arch_latency_p90_ms: i64,
    pub descent_within_15pct: f64,
}

pub const BARS: Bars = Bars {
    rep_f1: 0.995,
    sets_exact: 0.97,
    perfect_flag: 0.97,
    arch_f1: 0.98,
    arch_fp: 0,
    arch_latency_p90_ms: 80,
    descent_within_15pct: 0.90,
};

impl EvalReport {
    /// The bars `score` misses, in words (empty when it meets them all).
    pub fn misses(score: &Score, bars: &Bars) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                out.push(what);
            }
        };
        check(
            score.rep_f1() >= bars.rep_f1,
            format!("rep F1 {:.4} < {}", score.rep_f1(), bars.rep_f1),
        );
        check(
            score.set_exact_rate() >= bars.sets_exact,
            format!("sets exact {:.4} < {}", score.set_exact_rate(), bars.sets_exact),
        );
        check(
            score.perfect_flag_acc() >= bars.perfect_flag,
            format!("perfect flag {:.4} < {}", score.perfect_flag_acc(), bars.perfect_flag),
        );
        check(
            score.arch_f1() >= bars.arch_f1,
            format!("arch F1 {:.4} < {}", score.arch_f1(), bars.arch_f1),
        );
        check(
            score.arch_fp <= bars.arch_fp,
            format!("{} false arches > {}", score.arch_fp, bars.arch_fp),
        );
        let p90 = score.arch_latency(0.9).unwrap_or(0);
        check(
            p90 <= bars.arch_latency_p90_ms,
            format!("arch latency p90 {p90} ms > {}", bars.arch_latency_p90_ms),
        );
        check(
            score.descent_within_15pct() >= bars.descent_within_15pct,
            format!(
                "descent within 15 % {:.4} < {}",
                score.descent_within_15pct(),
                bars.descent_within_15pct
            ),
        );
        out
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.verbose {
            for c in &self.cases {
                writeln!(
                    f,
                    "seed {:>5} {:<12} {:>6.1} Hz {:<28} {}",
                    c.seed,
                    c.scenario.kind,
                    c.scenario.rate_hz,
                    c.effects().join(","),
                    c.score.summary()
                )?;
            }
        }
        writeln!(f, "by kind:")?;
        for (kind, s) in &self.by_kind {
            writeln!(f, "  {kind:<13} {}", s.summary())?;
        }
        writeln!(f, "by field effect:")?;
        for (effect, s) in &self.by_effect {
            writeln!(f, "  {effect:<13} {}", s.summary())?;
        }
        writeln!(f, "{} cases: {}", self.cases.len(), self.total.summary())?;
        writeln!(f, "arches on a person lying still: {}", self.still_arches)?;
        let misses = EvalReport::misses(&self.total, &BARS);
        if misses.is_empty() {
            writeln!(f, "bars of issue 14: all met")?;
        } else {
            writeln!(f, "bars of issue 14 missed: {}", misses.join("; "))?;
        }
        let busy = self.detector_time.as_secs_f64();
        writeln!(
            f,
            "detector: {} frames in {:.3} s of detector time = {:.0} frames/s ({:.2} us/frame)",
            self.frames,
            busy,
            self.frames as f64 / busy.max(1e-9),
            busy * 1e6 / self.frames.max(1) as f64
        )
    }
}
