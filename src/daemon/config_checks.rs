//! What a configuration must hold beyond each section's own checks.
//!
//! - [`config`]: every mat's wiring readable by the scanner with the
//!   detector's resolution, every simulated scenario known, every cue pin
//!   free of the wiring and of other cues (every command that loads a
//!   configuration runs it);
//! - [`for_run`]: that, and everything `run` needs from the file system and
//!   the environment: the password file or variable, the TLS files, a
//!   writable outbox directory, each replayed recording readable and of the
//!   mat's grid. `flatback config check` and `flatback run` run it, so `run`
//!   never fails on what `config check` passed, and a problem is exit 78
//!   with its key (systemd does not restart on it) rather than a failure.

use std::path::Path;

use crate::config::{Config, Invalid, MatSourceKind};
use crate::contract::frame::FrameSource;
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
    cue_pins(config)
}

/// Every cue pin (`[mats.cue]`) is free: not a pin of its mat's wiring (SPI,
/// matrix rows), of another SPI mat's wiring, or of another mat's cue.
fn cue_pins(config: &Config) -> Result<(), Invalid> {
    let mats = config.mats();
    let at = |i: usize| {
        if config.mats.is_empty() {
            "mat.cue".to_string()
        } else {
            format!("mats[{i}].cue")
        }
    };
    for (i, m) in mats.iter().enumerate() {
        let Some(cue) = &m.cue else { continue };
        for (role, pin) in cue.pins() {
            let key = format!("{}.{}", at(i), role.key());
            for (j, other) in mats.iter().enumerate() {
                let wired = match other.source {
                    MatSourceKind::Spi => true,
                    MatSourceKind::Sim => j == i,
                    MatSourceKind::Replay => false,
                };
                if !wired {
                    continue;
                }
                let hardware_key = if other.hardware.is_some() {
                    format!("mats[{j}].hardware")
                } else {
                    "[hardware]".to_string()
                };
                if let Some((_, what)) = config
                    .hardware_of(other)
                    .gpio_in_use()
                    .into_iter()
                    .find(|(p, _)| *p == pin)
                {
                    let whose = if j == i {
                        format!("this mat's wiring ({hardware_key})")
                    } else {
                        format!("the wiring of mats[{j}] (\"{}\", {hardware_key})", other.id)
                    };
                    return Err(Invalid::new(
                        key,
                        format!("GPIO{pin} is {what} in {whose}: choose a free BCM pin"),
                    ));
                }
            }
            for (j, other) in mats[..i].iter().enumerate() {
                if let Some((r, _)) = other.cue.iter().flat_map(|c| c.pins()).find(|&(_, p)| p == pin) {
                    return Err(Invalid::new(
                        key,
                        format!(
                            "GPIO{pin} is also the {} of mats[{j}] (\"{}\", {}.{}): each mat's cue needs pins of its own",
                            r.what(),
                            other.id,
                            at(j),
                            r.key()
                        ),
                    ));
                }
            }
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

    fn cue_error(text: &str) -> String {
        Config::parse_with(text, "f.toml", config).unwrap_err().0
    }

    #[test]
    fn a_cue_pin_of_the_wiring_or_of_another_cue_is_refused() {
        let ok = "[[mats]]\nid = \"a\"\n[mats.cue]\nbuzzer = 18\nled_green = 23\nled_red = 24\n";
        assert!(Config::parse_with(ok, "f.toml", config).is_ok());
        let e = cue_error("[[mats]]\nid = \"a\"\n[mats.cue]\nbuzzer = 18\nled_red = 10\n");
        assert!(
            e.contains("f.toml: line 5: mats[0].cue.led_red: GPIO10 is SPI0 MOSI"),
            "{e}"
        );
        let e = cue_error(
            "[[mats]]\nid = \"a\"\nsource = \"sim\"\n[mats.cue]\nbuzzer = 18\n\
             [[mats]]\nid = \"b\"\nsource = \"sim\"\n[mats.cue]\nled_green = 18\n",
        );
        assert!(
            e.contains("line 10: mats[1].cue.led_green: GPIO18 is also the buzzer of mats[0]"),
            "{e}"
        );
        let e = cue_error("[mat.cue]\nbuzzer = 5\n[hardware]\nwiring = \"matrix\"\n[[hardware.adc]]\nchannels = [\"c0\", \"c1\", \"c2\", \"c3\"]\n");
        assert!(e.contains("line 2: mat.cue.buzzer: GPIO5 is matrix row 0"), "{e}");
    }

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
