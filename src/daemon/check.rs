//! What a configuration must hold beyond each section's own checks.
//!
//! - [`config`]: every mat's wiring readable by the scanner with the
//!   detector's resolution, every simulated scenario known (every command
//!   that loads a configuration runs it);
//! - [`for_run`]: that, and everything `run` needs from the file system and
//!   the environment: the password file or variable, the TLS files, a
//!   writable outbox directory, each replayed recording readable and of the
//!   mat's grid. `flatback config check` and `flatback run` run it, so `run`
//!   never fails on what `config check` passed, and a problem is exit 78
//!   with its key (systemd does not restart on it) rather than a failure.

use std::path::Path;

use crate::config::{Config, Invalid, MatSourceKind};
use crate::frame::FrameSource;
use crate::hardware::HardwareConfig;
use crate::sources::{grid_of, RecordingReader};

/// Checks `config` as a whole; the error names the key.
pub fn config(config: &Config) -> Result<(), Invalid> {
    if config.mats.is_empty() {
        wiring(config, &config.hardware, "hardware")?;
    }
    for (i, m) in config.mats.iter().enumerate() {
        if m.source != MatSourceKind::Replay {
            let key = if m.hardware.is_some() {
                format!("mats[{i}].hardware")
            } else {
                "hardware".to_string()
            };
            wiring(config, config.hardware_of(m), &key)?;
        }
        if m.source == MatSourceKind::Sim && m.case.is_none() {
            m.kind
                .parse::<crate::sim::Kind>()
                .map_err(|e| Invalid::new(format!("mats[{i}].kind"), e.to_string()))?;
        }
    }
    Ok(())
}

/// [`config`], and what `run` needs from the file system and environment.
pub fn for_run(config: &Config) -> Result<(), Invalid> {
    self::config(config)?;
    crate::mqtt::Options::from_config(&config.mqtt)?;
    outbox_dir(&config.mqtt.outbox_dir)?;
    for (i, m) in config.mats.iter().enumerate() {
        if let (MatSourceKind::Replay, Some(file)) = (m.source, &m.file) {
            let key = format!("mats[{i}].file");
            let reader = RecordingReader::open(file).map_err(|e| Invalid::new(&key, e.to_string()))?;
            let (grid, mat) = (reader.grid(), grid_of(config));
            if grid != mat {
                return Err(Invalid::new(
                    key,
                    format!(
                        "{} is a {grid} recording, but the mats are {mat} ([mat] rows and cols)",
                        file.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The outbox directory is one, or can be made, and is writable.
fn outbox_dir(dir: &Path) -> Result<(), Invalid> {
    let bad = |m: String| Err(Invalid::new("mqtt.outbox_dir", format!("{}: {m}", dir.display())));
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => existing = p,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return if existing == dir {
            bad("is a file, not a directory".into())
        } else {
            bad(format!("{} is a file, not a directory", existing.display()))
        };
    }
    if !writable(existing) {
        return bad(format!(
            "{} is not writable by this user",
            if existing == dir { "it" } else { "its parent" }
        ));
    }
    Ok(())
}

/// Whether this process may create files in `dir` (`access(2)`, W_OK).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path; access only reads it.
    unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// The wiring is valid for the grid and its chip converts with the
/// detector's resolution.
fn wiring(config: &Config, hardware: &HardwareConfig, key: &str) -> Result<(), Invalid> {
    let wiring = hardware
        .wiring(grid_of(config))
        .map_err(|e| Invalid::new(key, e.0.clone()))?;
    let bits = wiring.chip.bits();
    if config.detector.adc_bits != bits {
        return Err(Invalid::new(
            key,
            format!(
                "chip = \"{}\" is {bits}-bit but [detector] adc_bits = {}: set adc_bits = {bits}",
                wiring.chip, config.detector.adc_bits
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_dir_that_is_a_file_or_under_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let e = outbox_dir(&file).unwrap_err();
        assert_eq!(e.key, "mqtt.outbox_dir");
        assert!(e.message.contains("is a file"), "{e}");
        assert!(outbox_dir(&file.join("sub")).unwrap_err().message.contains("is a file"));
        assert!(outbox_dir(&dir.path().join("new/deeper")).is_ok(), "made when needed");
        assert!(outbox_dir(dir.path()).is_ok());
    }
}
