//! Where frames come from. Every source yields the same [`Frame`]s through
//! [`FrameSource`], so the detector never knows which it reads:
//!
//! - [`recording`]: the recording format (`.csv`, `.csv.gz`), read and written;
//! - [`replayed`]: a recording as a mat, played again when it ends;
//! - [`simulated`]: the simulator read through emulated ADCs wired as the
//!   config says (one type, under the sampler or with its own clock);
//! - the mat's SPI ADCs, scanned by the real-time [`crate::sampler`], whose
//!   [`FrameReceiver`] is a source;
//! - [`pacing`]: any source paced to real time (or a multiple of it).
//!
//! [`open`] opens a daemon's mat from its `[[mats]]` entry (and again after a
//! failure); [`sample`] starts the sampler for `flatback check` and `flatback
//! record`.

pub mod pacing;
pub mod recording;
pub mod replayed;
pub mod simulated;

pub use pacing::Paced;
pub use recording::{RecordingError, RecordingReader, RecordingWriter};
pub use replayed::Replayed;
pub use simulated::SimulatedMat;

use crate::config::{Config, MatEntry, MatSourceKind};
use crate::contract::frame::{FrameSource, Grid};
use crate::hardware::{HardwareConfig, HardwareError, Wiring, WiringError};
use crate::sampler::{FrameReceiver, Sampler, SamplerConfig, StartError};
use crate::sim::{Kind, Scenario, UnknownKind};

/// Why a source could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Wiring(#[from] WiringError),
    #[error(transparent)]
    Hardware(#[from] HardwareError),
    #[error("sampler: {0}")]
    Sampler(#[from] StartError),
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error(transparent)]
    Kind(#[from] UnknownKind),
    #[error("source = \"replay\" needs file = \"...\"")]
    NoFile,
}

/// An open source, and the sampler behind it when there is one.
pub struct Opened {
    pub source: Box<dyn FrameSource + Send>,
    pub sampler: Option<Sampler>,
}

/// The sampler settings of a mat's wiring.
pub fn sampler_config(hardware: &HardwareConfig) -> SamplerConfig {
    SamplerConfig {
        realtime_priority: hardware.realtime_priority,
        ..SamplerConfig::at(hardware.rate_hz)
    }
}

/// The grid of the config's mats.
pub fn grid_of(config: &Config) -> Grid {
    Grid::new(config.mat.rows, config.mat.cols)
}

/// Opens `mat`'s source. `speed` paces `sim` and `replay` (1: real time).
pub fn open(config: &Config, mat: &MatEntry, speed: f64) -> Result<Opened, OpenError> {
    let hardware = config.hardware_of(mat);
    match mat.source {
        MatSourceKind::Spi => {
            let wiring = hardware.wiring(grid_of(config))?;
            let scanner = crate::hardware::open(&wiring, hardware.spi_clock_hz)?;
            let (sampler, frames) = Sampler::start(scanner, sampler_config(hardware))?;
            Ok(Opened {
                source: Box::new(frames),
                sampler: Some(sampler),
            })
        }
        MatSourceKind::Sim => {
            let wiring = hardware.wiring(grid_of(config))?;
            let kind: Kind = mat.kind.parse()?;
            let mut scenario = Scenario::new(kind, mat.sim_seed())
                .with_rate(mat.rate_hz)
                .with_adc_bits(wiring.chip.bits())
                .with_grid(wiring.grid);
            scenario.duration_s = mat.seconds.or(scenario.duration_s);
            let mut sim = SimulatedMat::new(&wiring, scenario)
                .with_bus_fault(mat.bus_fault_at_s.map(|at| (at, mat.bus_fault_for_s)), speed);
            if !mat.repeat {
                sim = sim.once();
            }
            Ok(Opened {
                source: Box::new(Paced::new(sim, speed)),
                sampler: None,
            })
        }
        MatSourceKind::Replay => {
            let file = mat.file.clone().ok_or(OpenError::NoFile)?;
            Ok(Opened {
                source: Box::new(Paced::new(Replayed::open(file, mat.repeat)?, speed)),
                sampler: None,
            })
        }
    }
}

/// What the sampler scans for `flatback check` and `flatback record`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveInput {
    /// The mat's SPI ADCs, wired as `[hardware]` says.
    Spi,
    /// The simulator's scenario, read through emulated chips wired the same
    /// way, from the moment its first person has settled.
    Sim { kind: Kind, seed: u64 },
}

/// Starts the sampler on the configured mat, or on the simulator read through
/// emulated chips wired the same way; returns the wiring too.
pub fn sample(config: &Config, live: &LiveInput) -> Result<(Sampler, FrameReceiver, Wiring), OpenError> {
    let wiring = config.hardware.wiring(grid_of(config))?;
    let settings = sampler_config(&config.hardware);
    let (sampler, rx) = match live {
        LiveInput::Spi => Sampler::start(crate::hardware::open(&wiring, config.hardware.spi_clock_hz)?, settings)?,
        LiveInput::Sim { kind, seed } => {
            let scenario = Scenario::new(*kind, *seed)
                .with_rate(config.hardware.rate_hz.clamp(50.0, 2000.0))
                .with_grid(wiring.grid)
                .with_adc_bits(wiring.chip.bits());
            Sampler::start(SimulatedMat::new(&wiring, scenario).from_first_person(), settings)?
        }
    };
    Ok((sampler, rx, wiring))
}
