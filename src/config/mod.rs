//! The configuration file (TOML): every section's structs, with serde
//! defaults, so an empty file, or none, is a valid configuration for the
//! reference mat. This module imports nothing else of the application:
//! everyone else imports their section from here.
//!
//! Errors name the file, the line and the key: unknown keys and wrong types
//! come from the TOML parser, values that cannot be used from each section's
//! `validate` (an [`Invalid`] with its key), located in the text afterwards.
//! Checks that need the rest of the application (the wiring, the scenarios)
//! come through [`Config::load_with`].

pub mod cue;
pub mod detector;
pub mod hardware;
pub mod history;
pub mod mqtt;
pub mod web;

pub use cue::CueConfig;
pub use detector::DetectorConfig;
pub use history::{AthletesConfig, HistoryConfig};
pub use mqtt::{BrokerUrl, MqttConfig, SyncMode};
pub use web::WebConfig;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use hardware::HardwareConfig;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub mat: MatConfig,
    pub detector: DetectorConfig,
    /// How the mat is wired to the Pi (SPI ADCs, GPIO rows).
    pub hardware: HardwareConfig,
    pub mqtt: MqttConfig,
    pub log: LogConfig,
    /// The gateway's web view, `/metrics` and `/health`.
    pub web: WebConfig,
    /// Where the athletes' history is kept.
    pub history: HistoryConfig,
    /// Who is on the mat, and the training plan's figures.
    pub athletes: AthletesConfig,
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
    /// `sim`: unset, one made from the mat's id ([`MatEntry::sim_seed`]), so
    /// that two simulated mats are two people.
    pub seed: Option<u64>,
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
    /// A buzzer and LED at the mat (`[mats.cue]`); unset: no pin is touched.
    pub cue: Option<CueConfig>,
}

impl Default for MatEntry {
    fn default() -> Self {
        MatEntry {
            id: String::new(),
            source: MatSourceKind::Spi,
            hardware: None,
            kind: "mixed".into(),
            seed: None,
            rate_hz: 200.0,
            case: None,
            seconds: None,
            bus_fault_at_s: None,
            bus_fault_for_s: 10.0,
            file: None,
            repeat: true,
            cue: None,
        }
    }
}

impl MatEntry {
    /// The simulator's seed: `seed`, or else one made from the id (FNV-1a,
    /// stable across builds and platforms, so a mat is the same person on
    /// every run).
    pub fn sim_seed(&self) -> u64 {
        self.seed.unwrap_or_else(|| {
            self.id.bytes().fold(0xcbf2_9ce4_8422_2325, |h: u64, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            })
        })
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
    /// The one mat's buzzer and LED (`[mat.cue]`), when there is no
    /// `[[mats]]`; unset: no pin is touched.
    pub cue: Option<CueConfig>,
}

impl Default for MatConfig {
    fn default() -> Self {
        MatConfig {
            id: "mat1".into(),
            rows: 4,
            cols: 4,
            cue: None,
        }
    }
}

/// A configuration that cannot be used: the message names the file, and
/// where it can, the line, the column and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl From<Invalid> for ConfigError {
    /// Not located in a file: a configuration built or resolved at run time.
    fn from(e: Invalid) -> ConfigError {
        ConfigError(e.to_string())
    }
}

/// A value the parser accepted but that cannot be used: its key, as the
/// file writes it (`mqtt.keep_alive_s`, `mats[1].hardware`), and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Located in `text` (the file `origin`): the file, the line where the
    /// key is written (or the nearest table above it), the key, the message.
    pub fn locate(&self, origin: &str, text: &str) -> ConfigError {
        let at = line_of(text, &self.key).map_or(String::new(), |l| format!(" line {l}:"));
        ConfigError(format!("{origin}:{at} {self}"))
    }
}

/// An id usable in topics, client ids and Home Assistant's `unique_id`s: 1
/// to 64 of `A-Z a-z 0-9 _ -`.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!("\"{id}\": must be 1 to 64 characters"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "\"{id}\": character {c:?} not allowed (only letters, digits, _ and -)"
        ));
    }
    Ok(())
}

/// One step of a key's path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step<'a> {
    Name(&'a str),
    Index(usize),
}

/// `mats[1].hardware` -> `mats`, `1`, `hardware`.
fn steps(key: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            out.push(Step::Name(&rest[..open]));
            rest = &rest[open..];
            while let Some(inner) = rest.strip_prefix('[') {
                let Some((n, after)) = inner.split_once(']') else { break };
                if let Ok(i) = n.parse() {
                    out.push(Step::Index(i));
                }
                rest = after;
            }
        } else {
            out.push(Step::Name(rest));
        }
    }
    out
}

/// The 1-based line where `key` is written in `text`, or where the nearest
/// written table above it is (a key left to its default has no line).
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut span = None;
    let mut value: Option<&DeValue> = None;
    let mut table = Some(doc.get_ref());
    for k in steps(key) {
        let next = match (k, table, value) {
            (Step::Name(n), Some(t), _) => t.iter().find(|(name, _)| name.get_ref() == n).map(|(name, v)| {
                span = Some(name.span());
                v
            }),
            (Step::Index(i), _, Some(DeValue::Array(a))) => a.get(i).inspect(|v| span = Some(v.span())),
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
pub const DEFAULT_TOML: &str = include_str!("../../config/flatback.toml");

impl Config {
    /// Parses TOML text and checks each section; `origin` names the file
    /// in errors, which also give the line, column and key.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Config::parse_with(text, origin, |_| Ok(()))
    }

    /// As [`Config::parse`], then `check` (what needs the rest of the
    /// application), its error located too.
    pub fn parse_with(
        text: &str,
        origin: &str,
        check: impl FnOnce(&Config) -> Result<(), Invalid>,
    ) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError(format!("{origin}: {e}")))?;
        config
            .validate()
            .and_then(|()| check(&config))
            .map_err(|e| e.locate(origin, text))?;
        Ok(config)
    }

    /// The mats of this gateway: `[[mats]]`, or the one mat of `[mat]` on
    /// `[hardware]`.
    pub fn mats(&self) -> Vec<MatEntry> {
        if self.mats.is_empty() {
            vec![MatEntry {
                id: self.mat.id.clone(),
                cue: self.mat.cue.clone(),
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

    /// Checks what the parser cannot, section by section: ranges, ids,
    /// references between keys, two mats on one chip select.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !(1..=64).contains(&self.mat.rows) || !(1..=64).contains(&self.mat.cols) {
            return Err(Invalid::new(
                "mat.rows",
                format!(
                    "a {}x{} grid: rows and cols must be 1..=64",
                    self.mat.rows, self.mat.cols
                ),
            ));
        }
        self.detector.validate(self.mat.rows)?;
        self.mqtt.validate()?;
        self.web.validate()?;
        self.history.validate()?;
        self.athletes.validate()?;
        if !matches!(self.log.level.as_str(), "error" | "warn" | "info" | "debug" | "trace") {
            return Err(Invalid::new(
                "log.level",
                format!("\"{}\": one of error, warn, info, debug, trace", self.log.level),
            ));
        }
        if self.mats.is_empty() {
            check_id(&self.mat.id).map_err(|e| Invalid::new("mat.id", e))?;
        }
        if let Some(cue) = &self.mat.cue {
            if !self.mats.is_empty() {
                return Err(Invalid::new(
                    "mat.cue",
                    "with [[mats]], each mat has its own cue: move it to that mat's [mats.cue]",
                ));
            }
            cue.validate("mat.cue")?;
        }
        let mut selects: Vec<(usize, u8, u8)> = Vec::new();
        for (i, m) in self.mats.iter().enumerate() {
            let at = |k: &str| format!("mats[{i}].{k}");
            check_id(&m.id).map_err(|e| Invalid::new(at("id"), e))?;
            if let Some(cue) = &m.cue {
                cue.validate(&at("cue"))?;
            }
            if let Some(j) = self.mats[..i].iter().position(|o| o.id == m.id) {
                return Err(Invalid::new(
                    at("id"),
                    format!(
                        "mat id \"{}\" is also the id of mats[{j}]: each mat needs its own",
                        m.id
                    ),
                ));
            }
            if m.source == MatSourceKind::Spi {
                for a in &self.hardware_of(m).adc {
                    if let Some(&(j, _, _)) = selects.iter().find(|&&(_, b, c)| (b, c) == (a.bus, a.cs)) {
                        return Err(Invalid::new(
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
            match m.source {
                MatSourceKind::Sim => {
                    if !(50.0..=2000.0).contains(&m.rate_hz) {
                        return Err(Invalid::new(at("rate_hz"), format!("{}: must be 50..=2000", m.rate_hz)));
                    }
                    if m.seconds.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
                        return Err(Invalid::new(at("seconds"), "must be a positive number of seconds"));
                    }
                    if m.bus_fault_at_s.is_some_and(|t| !(t.is_finite() && t >= 0.0))
                        || !(m.bus_fault_for_s.is_finite() && m.bus_fault_for_s > 0.0)
                    {
                        return Err(Invalid::new(
                            at("bus_fault_at_s"),
                            "bus_fault_at_s must be 0 or more and bus_fault_for_s positive",
                        ));
                    }
                }
                MatSourceKind::Replay if m.file.is_none() => {
                    return Err(Invalid::new(at("source"), "source = \"replay\" needs file = \"...\""));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Config::load_with(path, |_| Ok(()))
    }

    /// Reads the file at `path`, checks each section, then `check`.
    pub fn load_with(path: &Path, check: impl FnOnce(&Config) -> Result<(), Invalid>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Config::parse_with(&text, &path.display().to_string(), check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commented_default_file_is_the_default() {
        assert_eq!(Config::parse(DEFAULT_TOML, "default").unwrap(), Config::default());
    }

    #[test]
    fn simulated_mats_without_a_seed_are_two_people() {
        let c = Config::parse(
            "[[mats]]\nid = \"left\"\nsource = \"sim\"\n\n[[mats]]\nid = \"right\"\nsource = \"sim\"\n\n\
             [[mats]]\nid = \"fixed\"\nsource = \"sim\"\nseed = 7\n",
            "f.toml",
        )
        .unwrap();
        let seeds: Vec<u64> = c.mats().iter().map(MatEntry::sim_seed).collect();
        // Stable: FNV-1a of the id, the same on every build and machine.
        assert_eq!(seeds[0], 2_643_736_872_316_312_752);
        assert_ne!(seeds[0], seeds[1]);
        assert_eq!(seeds[2], 7, "an explicit seed is kept");
        // Two different people: the simulator's plans differ.
        let plan = |seed| {
            let s = crate::sim::Scenario::new("mixed".parse().unwrap(), seed);
            let t = crate::sim::Simulator::new(&s).truth().clone();
            (t.duration_ms, t.sessions, t.arches)
        };
        assert_ne!(plan(seeds[0]), plan(seeds[1]));
        // The file format is unchanged: a config with the seed written out
        // reads back the same.
        let text = toml::to_string(&c).unwrap();
        assert_eq!(Config::parse(&text, "again").unwrap(), c);
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
