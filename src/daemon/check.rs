//! What the daemon needs of a configuration beyond each section's own
//! checks: every mat's wiring readable by the scanner with the detector's
//! resolution, every simulated scenario known. `flatback config check` and
//! every command that loads a configuration run it, so `run` never finds a
//! problem `config check` passed.

use crate::config::{Config, Invalid, MatSourceKind};
use crate::hardware::HardwareConfig;
use crate::sources::grid_of;

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
