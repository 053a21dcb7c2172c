//! The `[hardware]` section: how the taxels are wired to the ADCs. Plain
//! data with serde defaults; `hardware::wiring` validates it into the scan
//! the sampler follows.

use mcp3x08::Chip;
use serde::{Deserialize, Serialize};

/// The `[hardware]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HardwareConfig {
    /// `direct` or `matrix`.
    pub wiring: Layout,
    /// The ADC type, the same for every chip.
    #[serde(with = "ChipName")]
    pub chip: Chip,
    /// SPI clock in Hz (see the README: input settling with 10 kOhm).
    pub spi_clock_hz: u32,
    /// Frames per second the sampler aims at.
    pub rate_hz: f64,
    /// Run the sampler thread with SCHED_FIFO at this priority (1-99) and
    /// lock memory, where the process is allowed to; 0 never tries.
    pub realtime_priority: u8,
    /// The chips, each on its own chip select.
    pub adc: Vec<AdcConfig>,
    /// Row drive of the matrix layout (ignored when `wiring = "direct"`).
    pub matrix: MatrixConfig,
}

/// The driver's [`Chip`] in the config, by its lowercase name: the driver
/// crate is `no_std` without serde, so the app says how to (de)serialise it.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Chip", rename_all = "lowercase")]
enum ChipName {
    Mcp3004,
    Mcp3008,
    Mcp3204,
    Mcp3208,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    Direct,
    Matrix,
}

/// How a chip's channels are converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputMode {
    /// Each channel against ground.
    Single,
    /// Each listed channel CHn (IN+) against its partner CH(n^1) (IN-),
    /// which must be left empty.
    PseudoDifferential,
}

/// One `[[hardware.adc]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdcConfig {
    /// SPI bus: 0 (SPI0) or 1 (SPI1; SPI3-6 on a Pi 4 or 5 with their
    /// overlays).
    pub bus: u8,
    /// Chip select on that bus: CE0, CE1 (CE2 on SPI1): `/dev/spidevBUS.CS`.
    pub cs: u8,
    pub input: InputMode,
    /// What each channel reads, CH0 first: `"rRcC"` (direct) or `"cC"`
    /// (matrix); `""` for an unused channel.
    pub channels: Vec<String>,
}

impl Default for AdcConfig {
    fn default() -> Self {
        AdcConfig {
            bus: 0,
            cs: 0,
            input: InputMode::Single,
            channels: Vec::new(),
        }
    }
}

/// `[hardware.matrix]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatrixConfig {
    /// BCM GPIO number driving each row, row 0 first. The selected row is
    /// driven high, the others are inputs (high impedance).
    pub row_pins: Vec<u8>,
    /// Microseconds to wait after switching rows before converting.
    pub settle_us: u32,
}

impl Default for MatrixConfig {
    fn default() -> Self {
        MatrixConfig {
            row_pins: vec![5, 6, 13, 26],
            settle_us: 20,
        }
    }
}

/// The reference mat: row-major taxels, `per_chip` to a chip.
fn reference_channels(first: usize, per_chip: usize, cols: usize) -> Vec<String> {
    (first..first + per_chip)
        .map(|i| format!("r{}c{}", i / cols, i % cols))
        .collect()
}

impl Default for HardwareConfig {
    /// The reference mat: two MCP3008 on SPI0 CE0 and CE1, 16 dividers,
    /// chip 0 reading rows 0-1 and chip 1 rows 2-3, row-major.
    fn default() -> Self {
        HardwareConfig {
            wiring: Layout::Direct,
            chip: Chip::Mcp3008,
            spi_clock_hz: 1_000_000,
            rate_hz: 200.0,
            realtime_priority: 50,
            adc: vec![
                AdcConfig {
                    bus: 0,
                    cs: 0,
                    input: InputMode::Single,
                    channels: reference_channels(0, 8, 4),
                },
                AdcConfig {
                    bus: 0,
                    cs: 1,
                    input: InputMode::Single,
                    channels: reference_channels(8, 8, 4),
                },
            ],
            matrix: MatrixConfig::default(),
        }
    }
}
