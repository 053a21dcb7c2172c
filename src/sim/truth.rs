//! Ground truth of a recording, in the shape of `shared/data/dev/*.truth.json`.
//!
//! The simulator writes it; `crate::tools::score` reads it to score the detector.
//! All times are milliseconds on the recording's clock.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub kind: String,
    pub seed: u64,
    pub rate_hz: f64,
    pub rows: usize,
    pub cols: usize,
    pub adc_bits: u32,
    pub duration_ms: u64,
    pub sessions: Vec<TruthSession>,
    pub arches: Vec<TruthArch>,
    /// Windows `[start_ms, end_ms]` where a detected arch is not a false
    /// positive (lying down, getting up).
    pub ignore: Vec<[u64; 2]>,
    /// Small lumbar dips (breathing hitches, wobbles) that must not be arches.
    #[serde(default)]
    pub micro_wobbles: Vec<TruthWobble>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthSession {
    pub on_ms: u64,
    pub off_ms: u64,
    pub sets: Vec<TruthSet>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthSet {
    pub start_ms: u64,
    pub end_ms: u64,
    pub reps: Vec<TruthRep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthRep {
    pub ascent_start_ms: u64,
    pub top_ms: u64,
    pub descent_start_ms: u64,
    pub descent_end_ms: u64,
    pub descent_ms: u64,
    pub rushed: bool,
    pub arched: bool,
    pub perfect: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthArch {
    /// When the lumbar contact crossed half of the reference.
    pub onset_ms: u64,
    pub end_ms: u64,
    /// Peak fraction of the lumbar load lost (0..1).
    pub amax: f64,
    pub set: usize,
    pub rep: usize,
    pub session: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthWobble {
    pub onset_ms: u64,
    pub amax: f64,
}

impl Truth {
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("truth serialises")
    }

    /// Every true rep, in time order.
    pub fn reps(&self) -> impl Iterator<Item = &TruthRep> {
        self.sessions
            .iter()
            .flat_map(|s| s.sets.iter())
            .flat_map(|s| s.reps.iter())
    }
}
