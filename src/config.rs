//! The configuration file (TOML). Every section and key has a default, so an
//! empty file, or none, is a valid configuration for the reference mat.
//!
//! Errors name the file, the line and the key: unknown keys and wrong types
//! come from the TOML parser, values out of range from [`Config::validate`],
//! located in the text afterwards.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::detector::DetectorConfig;
use crate::hardware::HardwareConfig;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub mat: MatConfig,
    pub detector: DetectorConfig,
    /// How the mat is wired to the Pi (SPI ADCs, GPIO rows).
    pub hardware: HardwareConfig,
    pub mqtt: crate::mqtt::MqttConfig,
    pub log: LogConfig,
    /// The mats of this gateway (`[[mats]]`). None: one mat, `[mat] id`,
    /// read through `[hardware]`.
    pub mats: Vec<MatEntry>,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// error, warn, info, debug or trace (`RUST_LOG` wins when set).
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into() }
    }
}

/// Where a mat's frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatSourceKind {
    /// The mat's ADCs on the Pi's SPI.
    Spi,
    /// The simulator, read through emulated ADCs wired like `hardware`.
    Sim,
    /// A recording, replayed in real time.
    Replay,
}

/// One `[[mats]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatEntry {
    /// Mat id: names the mat in topics and Home Assistant (letters, digits,
    /// `_`, `-`).
    pub id: String,
    pub source: MatSourceKind,
    /// This mat's wiring (`[mats.hardware]`, `[[mats.hardware.adc]]`); unset:
    /// `[hardware]`. Two SPI mats never share a chip select.
    pub hardware: Option<HardwareConfig>,
    /// `sim`: the scenario (clean_set, fatigue, rushed, bouncing, bent_knee,
    /// single_leg, faulty, still, three_sets, two_people, mixed) and seed;
    /// when it ends the next seed follows.
    pub kind: String,
    pub seed: u64,
    /// `sim`: frames per second, 50..=2000.
    pub rate_hz: f64,
    /// `sim`: the random case `flatback eval` runs with this seed instead
    /// of `kind`, `seed` and `rate_hz` (its people, faults and rate).
    pub case: Option<u64>,
    /// `sim`: each scenario lasts this many seconds (default: its own length).
    pub seconds: Option<f64>,
    /// `sim`: the emulated SPI bus fails this many seconds (simulated time)
    /// into the run, for `bus_fault_for_s`, as a broken cable would: to try
    /// the health path.
    pub bus_fault_at_s: Option<f64>,
    pub bus_fault_for_s: f64,
    /// `replay`: the recording.
    pub file: Option<PathBuf>,
    /// `replay`: played again from the start when it ends; `sim`: the next
    /// seed follows when a scenario ends. Off: the mat ends with its source.
    pub repeat: bool,
}

impl Default for MatEntry {
    fn default() -> Self {
        MatEntry {
            id: String::new(),
            source: MatSourceKind::Spi,
            hardware: None,
            kind: "mixed".into(),
            seed: 1,
            rate_hz: 200.0,
            case: None,
            seconds: None,
            bus_fault_at_s: None,
            bus_fault_for_s: 10.0,
            file: None,
            repeat: true,
        }
    }
}

/// The mat's grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatConfig {
    /// Mat id, used in MQTT topics and events.
    pub id: String,
    pub rows: usize,
    pub cols: usize,
}

impl Default for MatConfig {
    fn default() -> Self {
        MatConfig {
            id: "mat1".into(),
            rows: 4,
            cols: 4,
        }
    }
}

/// A configuration that cannot be used: the message names the file, and
/// where it can, the line, the column and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// One step of a key's path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Name(String),
    Index(usize),
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::Name(s.to_string())
    }
}

impl From<usize> for Key {
    fn from(i: usize) -> Key {
        Key::Index(i)
    }
}

/// A value the parser accepted but that cannot be used, and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: Vec<Key>,
    pub message: String,
}

impl Problem {
    fn new(key: Vec<Key>, message: impl Into<String>) -> Problem {
        Problem {
            key,
            message: message.into(),
        }
    }

    /// `mats[1].hardware`
    pub fn key_name(&self) -> String {
        let mut s = String::new();
        for k in &self.key {
            match k {
                Key::Name(n) if s.is_empty() => s.push_str(n),
                Key::Name(n) => {
                    s.push('.');
                    s.push_str(n);
                }
                Key::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }
}

/// The 1-based line where `key` is written in `text`, or where the nearest
/// written table above it is (a key left to its default has no line).
pub fn line_of(text: &str, key: &[Key]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut span = None;
    let mut value: Option<&DeValue> = None;
    let mut table = Some(doc.get_ref());
    for k in key {
        let next = match (k, table, value) {
            (Key::Name(n), Some(t), _) => t.iter().find(|(name, _)| name.get_ref() == n).map(|(name, v)| {
                span = Some(name.span());
                v
            }),
            (Key::Index(i), _, Some(DeValue::Array(a))) => a.get(*i).inspect(|v| span = Some(v.span())),
            _ => None,
        };
        let Some(v) = next else { break };
        value = Some(v.get_ref());
        table = match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    let start = span?.start;
    Some(text[..start].matches('\n').count() + 1)
}

/// The default configuration, commented: what `flatback config default` prints.
pub const DEFAULT_TOML: &str = include_str!("../config/flatback.toml");

impl Config {
    /// Parses TOML text; `origin` names the file in errors, which also give
    /// the line, column and key.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError(format!("{origin}: {e}")))?;
        config.validate().map_err(|mut p| {
            // A problem found for a whole section: the first of its keys
            // that the message names and the file sets is the one to show.
            if p.key.len() == 1 {
                let named = p
                    .message
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| !w.is_empty())
                    .map(|w| vec![p.key[0].clone(), Key::from(w)])
                    .find(|k| line_of(text, k).is_some_and(|l| Some(l) != line_of(text, &k[..1])));
                if let Some(k) = named {
                    p.key = k;
                }
            }
            let at = line_of(text, &p.key).map_or(String::new(), |l| format!(" line {l}:"));
            ConfigError(format!("{origin}:{at} {}: {}", p.key_name(), p.message))
        })?;
        Ok(config)
    }

    /// The mats of this gateway: `[[mats]]`, or the one mat of `[mat]` on
    /// `[hardware]`.
    pub fn mats(&self) -> Vec<MatEntry> {
        if self.mats.is_empty() {
            vec![MatEntry {
                id: self.mat.id.clone(),
                ..MatEntry::default()
            }]
        } else {
            self.mats.clone()
        }
    }

    /// The wiring of an SPI or simulated mat.
    pub fn hardware_of<'a>(&'a self, mat: &'a MatEntry) -> &'a HardwareConfig {
        mat.hardware.as_ref().unwrap_or(&self.hardware)
    }

    /// Checks what the parser cannot: ranges, references between keys,
    /// duplicate mat ids, two mats on one chip select.
    pub fn validate(&self) -> Result<(), Problem> {
        let grid = crate::frame::Grid::new(self.mat.rows, self.mat.cols);
        if !(1..=64).contains(&self.mat.rows) || !(1..=64).contains(&self.mat.cols) {
            return Err(Problem::new(
                vec!["mat".into(), "rows".into()],
                format!(
                    "a {}x{} grid: rows and cols must be 1..=64",
                    self.mat.rows, self.mat.cols
                ),
            ));
        }
        self.detector.validate(self.mat.rows).map_err(|m| {
            let key = m.split([' ', ',']).next().unwrap_or("").to_string();
            let mut path = vec![Key::from("detector")];
            if !key.is_empty() && DEFAULT_TOML.contains(&format!("\n{key} =")) {
                path.push(Key::Name(key));
            }
            Problem::new(path, m)
        })?;
        self.mqtt.validate().map_err(|m| {
            let key = m.strip_prefix("mqtt.").and_then(|r| r.split([' ', ',', ':']).next());
            let mut path = vec![Key::from("mqtt")];
            path.extend(key.map(Key::from));
            Problem::new(path, m)
        })?;
        if !matches!(self.log.level.as_str(), "error" | "warn" | "info" | "debug" | "trace") {
            return Err(Problem::new(
                vec!["log".into(), "level".into()],
                format!("\"{}\": one of error, warn, info, debug, trace", self.log.level),
            ));
        }
        let wiring_problem = |key: Vec<Key>, e: crate::hardware::WiringError| Problem::new(key, e.to_string());
        if self.mats.is_empty() {
            crate::wire::topics::check_id("mat id", &self.mat.id)
                .map_err(|e| Problem::new(vec!["mat".into(), "id".into()], e))?;
            let wiring = self
                .hardware
                .wiring(grid)
                .map_err(|e| wiring_problem(vec!["hardware".into()], e))?;
            check_bits(&wiring, self.detector.adc_bits, vec!["hardware".into()])?;
        }
        let mut selects: Vec<(usize, u8, u8)> = Vec::new();
        for (i, m) in self.mats.iter().enumerate() {
            let at = |k: &str| vec![Key::from("mats"), Key::Index(i), Key::from(k)];
            crate::wire::topics::check_id("mat id", &m.id).map_err(|e| Problem::new(at("id"), e))?;
            if let Some(j) = self.mats[..i].iter().position(|o| o.id == m.id) {
                return Err(Problem::new(
                    at("id"),
                    format!(
                        "mat id \"{}\" is also the id of mats[{j}]: each mat needs its own",
                        m.id
                    ),
                ));
            }
            if m.source != MatSourceKind::Replay {
                let hw = self.hardware_of(m);
                let key = if m.hardware.is_some() {
                    at("hardware")
                } else {
                    vec![Key::from("hardware")]
                };
                let wiring = hw.wiring(grid).map_err(|e| wiring_problem(key.clone(), e))?;
                check_bits(&wiring, self.detector.adc_bits, key)?;
                if m.source == MatSourceKind::Spi {
                    for a in &hw.adc {
                        if let Some(&(j, _, _)) = selects.iter().find(|&&(_, b, c)| (b, c) == (a.bus, a.cs)) {
                            return Err(Problem::new(
                                at("source"),
                                format!(
                                    "mats[{j}] ({}) and mats[{i}] ({}) both read SPI{} CE{}: two mats cannot \
                                     share a chip select; give this mat its own [mats.hardware] chips",
                                    self.mats[j].id, m.id, a.bus, a.cs
                                ),
                            ));
                        }
                        selects.push((i, a.bus, a.cs));
                    }
                }
            }
            match m.source {
                MatSourceKind::Sim => {
                    m.kind
                        .parse::<crate::sim::Kind>()
                        .map_err(|e| Problem::new(at("kind"), e.to_string()))?;
                    if !(50.0..=2000.0).contains(&m.rate_hz) {
                        return Err(Problem::new(at("rate_hz"), format!("{}: must be 50..=2000", m.rate_hz)));
                    }
                    if m.seconds.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
                        return Err(Problem::new(at("seconds"), "must be a positive number of seconds"));
                    }
                    if m.bus_fault_at_s.is_some_and(|t| !(t.is_finite() && t >= 0.0))
                        || !(m.bus_fault_for_s.is_finite() && m.bus_fault_for_s > 0.0)
                    {
                        return Err(Problem::new(
                            at("bus_fault_at_s"),
                            "bus_fault_at_s must be 0 or more and bus_fault_for_s positive",
                        ));
                    }
                }
                MatSourceKind::Replay if m.file.is_none() => {
                    return Err(Problem::new(at("source"), "source = \"replay\" needs file = \"...\""));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }
}

/// The wired chip converts with the detector's resolution.
fn check_bits(wiring: &crate::hardware::Wiring, adc_bits: u32, key: Vec<Key>) -> Result<(), Problem> {
    if adc_bits == wiring.chip.bits() {
        return Ok(());
    }
    Err(Problem::new(
        key,
        format!(
            "chip = \"{}\" is {}-bit but [detector] adc_bits = {}: set adc_bits = {}",
            wiring.chip,
            wiring.chip.bits(),
            adc_bits,
            wiring.chip.bits()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commented_default_file_is_the_default() {
        assert_eq!(Config::parse(DEFAULT_TOML, "default").unwrap(), Config::default());
    }

    #[test]
    fn an_empty_file_is_valid() {
        assert_eq!(Config::parse("", "x").unwrap(), Config::default());
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let err = Config::parse("[detector]\narch_contact = 0.5\nmin_descent = 3\n", "f.toml")
            .unwrap_err()
            .0;
        assert!(err.contains("f.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("min_descent"), "{err}");
        let err = Config::parse("[detector]\nmin_descent_s = \"slow\"\n", "f.toml")
            .unwrap_err()
            .0;
        assert!(err.contains("line 2") && err.contains("min_descent_s"), "{err}");
    }
}
