//! How the taxels are wired to the ADCs: the `[hardware]` section of the
//! configuration (`config::hardware`) validated into a [`Wiring`] the
//! scanner follows.
//!
//! Two layouts:
//! - **direct**: one FSR divider per ADC channel; each `[[hardware.adc]]`
//!   lists, channel by channel, the taxel (`"rRcC"`) it reads;
//! - **matrix**: rows of FSRs driven one at a time by GPIO pins, columns read
//!   on ADC channels; each `[[hardware.adc]]` lists the column (`"cC"`) on
//!   each channel, and `[hardware.matrix]` gives the row pins.
//!
//! Pure: no I/O here, so every rule is unit-tested.

use std::collections::HashMap;
use std::fmt;

use mcp3x08::{Chip, Input, ScanPlan, MAX_SCAN};

pub use crate::config::hardware::{AdcConfig, HardwareConfig, InputMode, Layout, MatrixConfig};
use crate::contract::frame::Grid;

/// What is wrong with the `[hardware]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WiringError(pub String);

impl fmt::Display for WiringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config [hardware]: {}", self.0)
    }
}

impl std::error::Error for WiringError {}

/// One chip and what its scan fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdcWiring {
    pub bus: u8,
    pub cs: u8,
    pub plan: ScanPlan,
    /// For each input of `plan`: the row-major taxel (direct) or the column
    /// (matrix) it reads.
    pub targets: Vec<usize>,
}

impl AdcWiring {
    /// `/dev/spidevBUS.CS`.
    pub fn device(&self) -> String {
        format!("/dev/spidev{}.{}", self.bus, self.cs)
    }
}

/// A validated wiring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wiring {
    pub chip: Chip,
    pub grid: Grid,
    pub adcs: Vec<AdcWiring>,
    /// Row pins and settle time, for the matrix layout.
    pub matrix: Option<MatrixConfig>,
}

/// GPIOs the SPI buses use (BCM): a row pin must not be one of them.
const SPI0_PINS: [(u8, &str); 5] = [
    (7, "SPI0 CE1"),
    (8, "SPI0 CE0"),
    (9, "SPI0 MISO"),
    (10, "SPI0 MOSI"),
    (11, "SPI0 SCLK"),
];
const SPI1_PINS: [(u8, &str); 6] = [
    (16, "SPI1 CE2"),
    (17, "SPI1 CE1"),
    (18, "SPI1 CE0"),
    (19, "SPI1 MISO"),
    (20, "SPI1 MOSI"),
    (21, "SPI1 SCLK"),
];

/// The pins of SPI3 to SPI6 (a Pi 4 or 5, with their `-2cs` overlays).
const SPI3_6_PINS: [(u8, [(u8, &str); 5]); 4] = [
    (
        3,
        [
            (0, "SPI3 CE0"),
            (24, "SPI3 CE1"),
            (1, "SPI3 MISO"),
            (2, "SPI3 MOSI"),
            (3, "SPI3 SCLK"),
        ],
    ),
    (
        4,
        [
            (4, "SPI4 CE0"),
            (25, "SPI4 CE1"),
            (5, "SPI4 MISO"),
            (6, "SPI4 MOSI"),
            (7, "SPI4 SCLK"),
        ],
    ),
    (
        5,
        [
            (12, "SPI5 CE0"),
            (26, "SPI5 CE1"),
            (13, "SPI5 MISO"),
            (14, "SPI5 MOSI"),
            (15, "SPI5 SCLK"),
        ],
    ),
    (
        6,
        [
            (18, "SPI6 CE0"),
            (27, "SPI6 CE1"),
            (19, "SPI6 MISO"),
            (20, "SPI6 MOSI"),
            (21, "SPI6 SCLK"),
        ],
    ),
];

fn parse_taxel(name: &str) -> Option<(usize, usize)> {
    let (r, c) = name.strip_prefix('r')?.split_once('c')?;
    Some((r.parse().ok()?, c.parse().ok()?))
}

impl HardwareConfig {
    /// The BCM GPIOs this wiring takes, and what for: the pins of every SPI
    /// bus a chip is on, and the row pins of a matrix. Another use of one
    /// (a cue's buzzer or LED) would fight the bus.
    pub fn gpio_in_use(&self) -> Vec<(u8, String)> {
        let mut out: Vec<(u8, String)> = Vec::new();
        let mut buses: Vec<u8> = self.adc.iter().map(|a| a.bus).collect();
        buses.sort_unstable();
        buses.dedup();
        for bus in buses {
            let pins: &[(u8, &str)] = match bus {
                0 => &SPI0_PINS,
                1 => &SPI1_PINS,
                _ => SPI3_6_PINS
                    .iter()
                    .find(|(b, _)| *b == bus)
                    .map_or(&[][..], |(_, p)| &p[..]),
            };
            out.extend(pins.iter().map(|&(p, what)| (p, what.to_string())));
        }
        if self.wiring == Layout::Matrix {
            for (r, &p) in self.matrix.row_pins.iter().enumerate() {
                out.push((p, format!("matrix row {r} (matrix.row_pins)")));
            }
        }
        out
    }

    /// Checks the section against the grid and works out the scan plan.
    pub fn wiring(&self, grid: Grid) -> Result<Wiring, WiringError> {
        let err = |msg: String| Err(WiringError(msg));
        if self.adc.is_empty() {
            return err("no [[hardware.adc]]: at least one chip is needed".into());
        }
        if !(self.rate_hz.is_finite() && self.rate_hz > 0.0 && self.rate_hz <= 10_000.0) {
            return err(format!("rate_hz = {}: must be within 0..10000", self.rate_hz));
        }
        if !(10_000..=3_600_000).contains(&self.spi_clock_hz) {
            return err(format!(
                "spi_clock_hz = {}: the chips need 10 kHz to 3.6 MHz",
                self.spi_clock_hz
            ));
        }
        if self.realtime_priority > 99 {
            return err(format!(
                "realtime_priority = {}: SCHED_FIFO priorities are 1-99 (0: don't try)",
                self.realtime_priority
            ));
        }
        let matrix = self.wiring == Layout::Matrix;
        // What each target (taxel or column) is read by: (adc, channel).
        let targets_len = if matrix { grid.cols } else { grid.len() };
        let mut seen: HashMap<usize, (usize, u8)> = HashMap::new();
        let mut selects: HashMap<(u8, u8), usize> = HashMap::new();
        let mut adcs = Vec::new();
        for (k, adc) in self.adc.iter().enumerate() {
            let here = format!("adc {k} (SPI{} CE{})", adc.bus, adc.cs);
            let max_cs = match adc.bus {
                0 => 1,
                1 => 2,
                2..=6 => 3,
                _ => return err(format!("{here}: no SPI bus {} (0 to 6)", adc.bus)),
            };
            if adc.cs > max_cs {
                return err(format!("{here}: SPI{} has chip selects CE0 to CE{max_cs}", adc.bus));
            }
            if let Some(other) = selects.insert((adc.bus, adc.cs), k) {
                return err(format!(
                    "adc {other} and adc {k} are both on SPI{} CE{}: two chips on one chip select would answer \
                     together; give each its own `cs`",
                    adc.bus, adc.cs
                ));
            }
            if adc.channels.len() > usize::from(self.chip.channels()) {
                return err(format!(
                    "{here}: {} channels listed, a {} has {} (CH0-CH{})",
                    adc.channels.len(),
                    self.chip,
                    self.chip.channels(),
                    self.chip.channels() - 1
                ));
            }
            let mut inputs = Vec::new();
            let mut targets = Vec::new();
            for (ch, name) in adc.channels.iter().enumerate() {
                let ch = ch as u8;
                let name = name.trim();
                if name.is_empty() {
                    continue;
                }
                let target = if matrix {
                    match name.strip_prefix('c').and_then(|c| c.parse::<usize>().ok()) {
                        Some(c) if c < grid.cols => c,
                        Some(c) => return err(format!("{here} CH{ch}: column {c} is outside the {grid} grid")),
                        None => {
                            return err(format!(
                                "{here} CH{ch}: {name:?} is not a column \"cC\" (wiring = \"matrix\")"
                            ))
                        }
                    }
                } else {
                    match parse_taxel(name) {
                        Some((r, c)) if r < grid.rows && c < grid.cols => grid.index(r, c),
                        Some(_) => return err(format!("{here} CH{ch}: taxel {name} is outside the {grid} grid")),
                        None => return err(format!("{here} CH{ch}: {name:?} is not a taxel \"rRcC\"")),
                    }
                };
                let input = match adc.input {
                    InputMode::Single => Input::Single(ch),
                    InputMode::PseudoDifferential => {
                        let partner = ch ^ 1;
                        if adc
                            .channels
                            .get(usize::from(partner))
                            .is_some_and(|n| !n.trim().is_empty())
                        {
                            return err(format!(
                                "{here}: CH{partner} is the IN- of CH{ch} (pseudo_differential): leave it \"\""
                            ));
                        }
                        Input::PseudoDifferential { positive: ch }
                    }
                };
                if let Some((other, och)) = seen.insert(target, (k, ch)) {
                    return err(format!(
                        "{name} is wired to two channels: adc {other} CH{och} and adc {k} CH{ch}"
                    ));
                }
                inputs.push(input);
                targets.push(target);
            }
            if inputs.len() > MAX_SCAN {
                return err(format!("{here}: more than {MAX_SCAN} inputs"));
            }
            let plan = ScanPlan::new(self.chip, &inputs).map_err(|e| WiringError(format!("{here}: {e}")))?;
            adcs.push(AdcWiring {
                bus: adc.bus,
                cs: adc.cs,
                plan,
                targets,
            });
        }
        let missing: Vec<String> = (0..targets_len)
            .filter(|t| !seen.contains_key(t))
            .map(|t| {
                if matrix {
                    format!("c{t}")
                } else {
                    let (r, c) = grid.position(t);
                    format!("r{r}c{c}")
                }
            })
            .collect();
        if !missing.is_empty() {
            let what = if matrix { "column" } else { "taxel" };
            return err(format!(
                "{} of the {grid} grid {} no channel: {} (list each in some adc's `channels`)",
                if missing.len() == 1 {
                    what.to_string()
                } else {
                    format!("{what}s")
                },
                if missing.len() == 1 { "has" } else { "have" },
                missing.join(", ")
            ));
        }
        let matrix = if matrix {
            let m = &self.matrix;
            if m.row_pins.len() != grid.rows {
                return err(format!(
                    "matrix.row_pins lists {} pins for the {} rows of the {grid} grid",
                    m.row_pins.len(),
                    grid.rows
                ));
            }
            let uses_spi1 = self.adc.iter().any(|a| a.bus == 1);
            for (r, &pin) in m.row_pins.iter().enumerate() {
                if pin > 27 {
                    return err(format!(
                        "matrix.row_pins: GPIO{pin} (row {r}) is not on the header (0-27)"
                    ));
                }
                if m.row_pins[..r].contains(&pin) {
                    return err(format!("matrix.row_pins: GPIO{pin} drives two rows"));
                }
                let spi = SPI0_PINS.iter().chain(if uses_spi1 { &SPI1_PINS[..] } else { &[] });
                if let Some((_, what)) = spi.into_iter().find(|(p, _)| *p == pin) {
                    return err(format!("matrix.row_pins: GPIO{pin} (row {r}) is {what}"));
                }
            }
            if m.settle_us > 100_000 {
                return err(format!("matrix.settle_us = {}: at most 100000", m.settle_us));
            }
            Some(m.clone())
        } else {
            None
        };
        Ok(Wiring {
            chip: self.chip,
            grid,
            adcs,
            matrix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Wiring {
        HardwareConfig::default().wiring(Grid::REFERENCE).unwrap()
    }

    fn err_of(cfg: &HardwareConfig, grid: Grid) -> String {
        cfg.wiring(grid).unwrap_err().to_string()
    }

    #[test]
    fn the_default_is_the_reference_mat() {
        let w = reference();
        assert_eq!(w.chip, Chip::Mcp3008);
        assert_eq!(w.adcs.len(), 2);
        assert_eq!((w.adcs[0].bus, w.adcs[0].cs), (0, 0));
        assert_eq!((w.adcs[1].bus, w.adcs[1].cs), (0, 1));
        assert_eq!(w.adcs[0].device(), "/dev/spidev0.0");
        // Chip 0: rows 0-1, chip 1: rows 2-3, row-major, CH0 first.
        assert_eq!(w.adcs[0].targets, (0..8).collect::<Vec<_>>());
        assert_eq!(w.adcs[1].targets, (8..16).collect::<Vec<_>>());
        assert_eq!(w.adcs[1].plan.inputs()[3], Input::Single(3));
        assert!(w.matrix.is_none());
    }

    #[test]
    fn one_channel_cannot_read_two_taxels() {
        let mut cfg = HardwareConfig::default();
        cfg.adc[1].cs = 0;
        let e = err_of(&cfg, Grid::REFERENCE);
        assert!(e.contains("adc 0 and adc 1 are both on SPI0 CE0"), "{e}");
    }

    #[test]
    fn one_taxel_cannot_be_on_two_channels() {
        let mut cfg = HardwareConfig::default();
        cfg.adc[1].channels[5] = "r0c2".into();
        let e = err_of(&cfg, Grid::REFERENCE);
        assert!(
            e.contains("r0c2 is wired to two channels: adc 0 CH2 and adc 1 CH5"),
            "{e}"
        );
    }

    #[test]
    fn channels_beyond_the_chip_are_refused() {
        let mut cfg = HardwareConfig::default();
        cfg.adc[0].channels.push("r3c3".into());
        let e = err_of(&cfg, Grid::REFERENCE);
        assert!(e.contains("9 channels listed, a mcp3008 has 8"), "{e}");
        let cfg = HardwareConfig {
            chip: Chip::Mcp3204,
            ..HardwareConfig::default()
        };
        let e = err_of(&cfg, Grid::REFERENCE);
        assert!(e.contains("a mcp3204 has 4"), "{e}");
    }

    #[test]
    fn every_taxel_needs_a_channel() {
        let mut cfg = HardwareConfig::default();
        cfg.adc[1].channels[7] = String::new();
        let e = err_of(&cfg, Grid::REFERENCE);
        assert!(e.contains("taxel of the 4x4 grid has no channel: r3c3"), "{e}");
        let e = err_of(&HardwareConfig::default(), Grid::new(5, 4));
        assert!(
            e.contains("taxels of the 5x4 grid have no channel: r4c0, r4c1, r4c2, r4c3"),
            "{e}"
        );
    }

    #[test]
    fn names_must_be_taxels_of_the_grid() {
        let mut cfg = HardwareConfig::default();
        cfg.adc[0].channels[1] = "r9c0".into();
        assert!(err_of(&cfg, Grid::REFERENCE).contains("r9c0 is outside the 4x4 grid"));
        cfg.adc[0].channels[1] = "left".into();
        assert!(err_of(&cfg, Grid::REFERENCE).contains("\"left\" is not a taxel"));
    }

    #[test]
    fn bus_and_chip_select_must_exist() {
        let mut cfg = HardwareConfig::default();
        cfg.adc[1].cs = 2;
        assert!(err_of(&cfg, Grid::REFERENCE).contains("SPI0 has chip selects CE0 to CE1"));
        cfg.adc[1] = AdcConfig {
            bus: 1,
            cs: 2,
            ..cfg.adc[1].clone()
        };
        assert_eq!(cfg.wiring(Grid::REFERENCE).unwrap().adcs[1].device(), "/dev/spidev1.2");
        cfg.adc[1].bus = 9;
        assert!(err_of(&cfg, Grid::REFERENCE).contains("no SPI bus 9"));
    }

    #[test]
    fn pseudo_differential_needs_the_partner_free() {
        let mut cfg = HardwareConfig {
            adc: vec![AdcConfig {
                input: InputMode::PseudoDifferential,
                channels: vec!["r0c0".into(), "".into(), "".into(), "r0c1".into()],
                ..AdcConfig::default()
            }],
            ..HardwareConfig::default()
        };
        let w = cfg.wiring(Grid::new(1, 2)).unwrap();
        assert_eq!(
            w.adcs[0].plan.inputs(),
            &[
                Input::PseudoDifferential { positive: 0 },
                Input::PseudoDifferential { positive: 3 }
            ]
        );
        cfg.adc[0].channels[2] = "r0c1".into();
        cfg.adc[0].channels[3] = "".into();
        cfg.adc[0].channels[1] = "x".into();
        assert!(err_of(&cfg, Grid::new(1, 2)).contains("CH1 is the IN- of CH0"));
    }

    fn matrix_cfg() -> HardwareConfig {
        HardwareConfig {
            wiring: Layout::Matrix,
            adc: vec![AdcConfig {
                channels: vec!["c0".into(), "c1".into(), "c2".into(), "c3".into()],
                ..AdcConfig::default()
            }],
            ..HardwareConfig::default()
        }
    }

    #[test]
    fn a_matrix_reads_columns_on_channels_and_drives_rows() {
        let w = matrix_cfg().wiring(Grid::REFERENCE).unwrap();
        assert_eq!(w.adcs[0].targets, vec![0, 1, 2, 3]);
        assert_eq!(w.matrix.as_ref().unwrap().row_pins, vec![5, 6, 13, 26]);
        let mut cfg = matrix_cfg();
        cfg.matrix.row_pins = vec![5, 6, 13];
        assert!(err_of(&cfg, Grid::REFERENCE).contains("3 pins for the 4 rows"));
        cfg.matrix.row_pins = vec![5, 6, 6, 13];
        assert!(err_of(&cfg, Grid::REFERENCE).contains("GPIO6 drives two rows"));
        cfg.matrix.row_pins = vec![5, 6, 8, 13];
        assert!(err_of(&cfg, Grid::REFERENCE).contains("GPIO8 (row 2) is SPI0 CE0"));
        cfg.matrix.row_pins = vec![5, 6, 13, 26];
        cfg.adc[0].channels[3] = "".into();
        assert!(err_of(&cfg, Grid::REFERENCE).contains("column of the 4x4 grid has no channel: c3"));
        cfg.adc[0].channels[3] = "r0c3".into();
        assert!(err_of(&cfg, Grid::REFERENCE).contains("is not a column"));
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let cfg = HardwareConfig {
            spi_clock_hz: 10_000_000,
            ..HardwareConfig::default()
        };
        assert!(err_of(&cfg, Grid::REFERENCE).contains("spi_clock_hz"));
        let cfg = HardwareConfig {
            rate_hz: 0.0,
            ..HardwareConfig::default()
        };
        assert!(err_of(&cfg, Grid::REFERENCE).contains("rate_hz"));
        let cfg = HardwareConfig {
            adc: vec![],
            ..HardwareConfig::default()
        };
        assert!(err_of(&cfg, Grid::REFERENCE).starts_with("config [hardware]: no [[hardware.adc]]"));
    }

    #[test]
    fn the_gpios_a_wiring_takes() {
        let pins = |cfg: &HardwareConfig| cfg.gpio_in_use().into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        // The reference mat: SPI0 only; its matrix pins are not used.
        assert_eq!(pins(&HardwareConfig::default()), vec![7, 8, 9, 10, 11]);
        let mut cfg = HardwareConfig::default();
        cfg.adc[1].bus = 1;
        assert_eq!(pins(&cfg), vec![7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21]);
        cfg.adc[1].bus = 6;
        assert!(pins(&cfg).contains(&27));
        cfg.wiring = Layout::Matrix;
        let used = cfg.gpio_in_use();
        assert!(
            used.contains(&(13, "matrix row 2 (matrix.row_pins)".to_string())),
            "{used:?}"
        );
    }
}
