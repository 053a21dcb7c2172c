//! The configuration file (TOML). Every section and key has a default, so an
//! empty file, or none, is a valid configuration for the reference mat.

use std::path::Path;

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

/// The default configuration, commented: what `flatback configfile` prints.
pub const DEFAULT_TOML: &str = include_str!("../config/flatback.toml");

impl Config {
    /// Parses TOML text; `origin` names the file in errors, which also give
    /// the line, column and key.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(format!("{origin}: {e}")))
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
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
