//! Detector settings: mat geometry and thresholds, each with its default.

use serde::{Deserialize, Serialize};

use super::Invalid;

/// The `[detector]` section of the config file. Every field has a default
/// that fits the reference mat (4 x 4, 10-bit), so an empty section works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// ADC resolution: 10 (MCP3008) or 12 (MCP3208). Full scale is 2^bits - 1.
    pub adc_bits: u32,
    /// Rows toward the head whose load the legs' lever takes away (row 0).
    pub upper_rows: Vec<usize>,
    /// Rows under the small of the back: where the bill is.
    pub lumbar_rows: Vec<usize>,
    /// Rows under the sacrum, which the legs' weight presses down (row 3).
    pub sacral_rows: Vec<usize>,
    /// Arch starts when lumbar contact falls below this fraction of the
    /// person's pressed-flat reference. It is measured on the lumbar row that
    /// shows the loss best; each row also carries some of its neighbours'
    /// load, so a row reads about 0.55-0.6 when the lumbar region itself has
    /// lost half its load.
    pub arch_contact: f64,
    /// Arch ends when contact is back above this fraction.
    pub arch_release: f64,
    /// A descent shorter than this is `rushed`, in seconds.
    pub min_descent_s: f64,
    /// Legs resting this long end the set, in seconds.
    pub set_rest_s: f64,
    /// Perfect reps in a set that earn a `progress` event.
    pub progress_reps: u32,
    /// A taxel reading this share of full scale or more counts as loaded
    /// when deciding whether someone lies on the mat.
    pub presence_level: f64,
    /// Seconds a taxel must read stuck at 0 (while its row is loaded) or at
    /// full scale before it is declared faulty.
    pub stuck_s: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            adc_bits: 10,
            upper_rows: vec![0],
            lumbar_rows: vec![1, 2],
            sacral_rows: vec![3],
            arch_contact: 0.6,
            arch_release: 0.75,
            min_descent_s: 3.0,
            set_rest_s: 10.0,
            progress_reps: 15,
            presence_level: 0.04,
            stuck_s: 20.0,
        }
    }
}

impl DetectorConfig {
    pub fn full_scale(&self) -> u16 {
        ((1u32 << self.adc_bits) - 1) as u16
    }

    /// Checks the settings against a grid of `rows` rows; errors name the
    /// key (`detector.KEY`).
    pub fn validate(&self, rows: usize) -> Result<(), Invalid> {
        let bad = |key: &str, message: String| Err(Invalid::new(format!("detector.{key}"), message));
        if !(8..=16).contains(&self.adc_bits) {
            return bad("adc_bits", format!("{}: must be 8..=16", self.adc_bits));
        }
        for (name, list) in [
            ("upper_rows", &self.upper_rows),
            ("lumbar_rows", &self.lumbar_rows),
            ("sacral_rows", &self.sacral_rows),
        ] {
            if list.is_empty() {
                return bad(name, "is empty".into());
            }
            if let Some(r) = list.iter().find(|&&r| r >= rows) {
                return bad(name, format!("names row {r}, but the grid has {rows} rows"));
            }
        }
        if !(0.0 < self.arch_contact && self.arch_contact < self.arch_release && self.arch_release < 1.0) {
            let key = if self.arch_contact > 0.0 && self.arch_contact < 1.0 {
                "arch_release"
            } else {
                "arch_contact"
            };
            return bad(
                key,
                format!(
                    "need 0 < arch_contact ({}) < arch_release ({}) < 1",
                    self.arch_contact, self.arch_release
                ),
            );
        }
        for (key, v) in [
            ("min_descent_s", self.min_descent_s),
            ("set_rest_s", self.set_rest_s),
            ("stuck_s", self.stuck_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(key, format!("{v}: must be a positive number of seconds"));
            }
        }
        Ok(())
    }
}
