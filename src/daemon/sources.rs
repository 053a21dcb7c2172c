//! Where a mat's frames come from in the daemon, opened (and opened again
//! after a failure) from its `[[mats]]` entry.
//!
//! - `spi`: the mat's ADCs on the Pi, scanned by the real-time sampler;
//! - `sim`: the simulator, read through emulated ADCs wired like the mat
//!   (so the driver and the scanner run as on the Pi), paced to real time;
//!   its bus can be told to fail for a while (`bus_fault_at_s`);
//! - `replay`: a recording, paced to real time, played again when it ends.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mcp3x08::emulator::Emulator;

use crate::config::{Config, MatEntry, MatSourceKind};
use crate::frame::{Frame, FrameSource, Grid, SourceError};
use crate::hardware::{EmulatedMat, GridScanner};
use crate::pacing::Paced;
use crate::recording::RecordingReader;
use crate::sampler::{GridScan, Sampler, SamplerConfig};
use crate::sim::{Kind, Scenario, Simulator};

/// An open source, and the sampler behind it when there is one.
pub struct Opened {
    pub source: Box<dyn FrameSource + Send>,
    pub sampler: Option<Sampler>,
}

/// Opens `mat`'s source. `speed` paces `sim` and `replay` (1: real time).
pub fn open(config: &Config, mat: &MatEntry, speed: f64) -> Result<Opened, SourceError> {
    let grid = Grid::new(config.mat.rows, config.mat.cols);
    let hardware = config.hardware_of(mat);
    match mat.source {
        MatSourceKind::Spi => {
            let wiring = hardware.wiring(grid).map_err(|e| SourceError::Sampler(e.to_string()))?;
            let scanner = crate::hardware::open(&wiring, hardware.spi_clock_hz)
                .map_err(|e| SourceError::Sampler(e.to_string()))?;
            let mut sampler_config = SamplerConfig::at(hardware.rate_hz);
            sampler_config.realtime_priority = hardware.realtime_priority;
            let (sampler, frames) =
                Sampler::start(scanner, sampler_config).map_err(|e| SourceError::Sampler(e.to_string()))?;
            Ok(Opened {
                source: Box::new(frames),
                sampler: Some(sampler),
            })
        }
        MatSourceKind::Sim => {
            let kind: Kind = mat
                .kind
                .parse()
                .map_err(|e: crate::sim::UnknownKind| SourceError::Sampler(e.to_string()))?;
            let wiring = hardware.wiring(grid).map_err(|e| SourceError::Sampler(e.to_string()))?;
            let sim = EmulatedSim::new(&wiring, kind, mat.seed, mat.rate_hz, config.detector.adc_bits, grid)
                .with_bus_fault(mat.bus_fault_at_s.map(|at| (at, mat.bus_fault_for_s)), speed);
            Ok(Opened {
                source: Box::new(Paced::new(sim, speed)),
                sampler: None,
            })
        }
        MatSourceKind::Replay => {
            let file = mat
                .file
                .clone()
                .ok_or_else(|| SourceError::Recording("no file".into()))?;
            let replay = Replayed::open(file, mat.repeat)?;
            Ok(Opened {
                source: Box::new(Paced::new(replay, speed)),
                sampler: None,
            })
        }
    }
}

/// The simulator's frames read through emulated MCP3x08s over their byte
/// protocol, with the simulator's own timestamps. When a scenario ends the
/// next seed follows, so a simulated mat runs as long as the daemon.
pub struct EmulatedSim {
    scanner: GridScanner<Emulator>,
    mat: EmulatedMat,
    scenario: Scenario,
    sim: Simulator,
    /// Added to the simulator's timestamps: the end of the scenarios before.
    offset_us: u64,
    last_us: u64,
    /// The bus fails from `.0` to `.1` seconds of simulated time...
    fault: Option<(f64, f64)>,
    /// ...counted on the wall clock at `speed`, so a failed bus stays failed
    /// while nothing is read from it.
    started: Option<Instant>,
    speed: f64,
}

impl EmulatedSim {
    pub fn new(
        wiring: &crate::hardware::Wiring,
        kind: Kind,
        seed: u64,
        rate_hz: f64,
        adc_bits: u32,
        grid: Grid,
    ) -> EmulatedSim {
        let scenario = Scenario::new(kind, seed)
            .with_rate(rate_hz)
            .with_adc_bits(adc_bits)
            .with_grid(grid);
        let (scanner, mat) = EmulatedMat::new(wiring);
        EmulatedSim {
            scanner,
            mat,
            sim: Simulator::new(&scenario),
            scenario,
            offset_us: 0,
            last_us: 0,
            fault: None,
            started: None,
            speed: 1.0,
        }
    }

    /// The emulated bus fails `at_s` seconds into the run for `for_s`
    /// seconds (simulated time, at `speed` times the wall clock).
    pub fn with_bus_fault(mut self, fault: Option<(f64, f64)>, speed: f64) -> Self {
        self.fault = fault.map(|(at, d)| (at, at + d));
        self.speed = speed;
        self
    }

    fn bus_failing(&mut self) -> bool {
        let Some((from, to)) = self.fault else { return false };
        let t = self.started.get_or_insert_with(Instant::now).elapsed().as_secs_f64() * self.speed;
        (from..to).contains(&t)
    }
}

impl FrameSource for EmulatedSim {
    fn grid(&self) -> Grid {
        self.scenario.grid
    }

    fn next_into(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        let failing = self.bus_failing();
        for f in self.mat.fault_switches() {
            f.store(failing, Ordering::Relaxed);
        }
        loop {
            if self.sim.next_into(frame)? {
                break;
            }
            // The scenario ended: the next person comes.
            self.offset_us = self.last_us + 1_000_000;
            self.scenario.seed += 1;
            self.sim = Simulator::new(&self.scenario);
        }
        frame.t_us += self.offset_us;
        self.last_us = frame.t_us;
        self.mat.set_frame(&frame.counts);
        self.scanner
            .scan(&mut frame.counts)
            .map_err(|e| SourceError::Sampler(e.to_string()))?;
        Ok(true)
    }
}

/// A recording, played again from the start when it ends (`repeat`), with
/// timestamps that keep increasing.
pub struct Replayed {
    path: PathBuf,
    reader: RecordingReader,
    repeat: bool,
    offset_us: u64,
    last_us: u64,
}

impl Replayed {
    pub fn open(path: PathBuf, repeat: bool) -> Result<Replayed, SourceError> {
        let reader = RecordingReader::open(&path).map_err(|e| SourceError::Recording(e.to_string()))?;
        Ok(Replayed {
            path,
            reader,
            repeat,
            offset_us: 0,
            last_us: 0,
        })
    }
}

impl FrameSource for Replayed {
    fn grid(&self) -> Grid {
        self.reader.grid()
    }

    fn next_into(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        if !self.reader.next_into(frame)? {
            if !self.repeat {
                return Ok(false);
            }
            self.reader = RecordingReader::open(&self.path).map_err(|e| SourceError::Recording(e.to_string()))?;
            self.offset_us = self.last_us + 1_000_000;
            if !self.reader.next_into(frame)? {
                return Ok(false);
            }
        }
        frame.t_us += self.offset_us;
        self.last_us = frame.t_us;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wiring() -> crate::hardware::Wiring {
        crate::hardware::HardwareConfig::default()
            .wiring(Grid::REFERENCE)
            .unwrap()
    }

    #[test]
    fn the_emulated_sim_reads_the_simulator_through_the_chips() {
        let mut direct = Simulator::new(&Scenario::new(Kind::CleanSet, 3).with_rate(200.0));
        let mut emulated = EmulatedSim::new(&wiring(), Kind::CleanSet, 3, 200.0, 10, Grid::REFERENCE);
        let (mut a, mut b) = (Frame::zeroed(Grid::REFERENCE), Frame::zeroed(Grid::REFERENCE));
        for _ in 0..2000 {
            assert!(direct.next_into(&mut a).unwrap());
            assert!(emulated.next_into(&mut b).unwrap());
            assert_eq!(a.t_us, b.t_us);
            // Through a 10-bit converter and back: within a count.
            for (x, y) in a.counts.iter().zip(&b.counts) {
                assert!(x.abs_diff(*y) <= 1, "{:?} vs {:?}", a.counts, b.counts);
            }
        }
    }

    #[test]
    fn a_failed_bus_is_an_error_and_the_source_goes_on_after_it() {
        // The whole run is inside the fault window, then no window at all.
        let mut sim = EmulatedSim::new(&wiring(), Kind::Still, 1, 200.0, 10, Grid::REFERENCE)
            .with_bus_fault(Some((0.0, 1e9)), 1.0);
        let mut f = Frame::zeroed(Grid::REFERENCE);
        let e = sim.next_into(&mut f).unwrap_err();
        assert!(e.to_string().contains("SPI"), "the error names the bus: {e}");
        sim.fault = None;
        assert!(sim.next_into(&mut f).unwrap());
    }

    #[test]
    fn a_scenario_that_ends_is_followed_by_the_next_seed_with_increasing_time() {
        let mut sim = EmulatedSim::new(&wiring(), Kind::Still, 1, 200.0, 10, Grid::REFERENCE);
        sim.scenario.duration_s = Some(2.0);
        sim.sim = Simulator::new(&sim.scenario);
        let mut f = Frame::zeroed(Grid::REFERENCE);
        let mut last = None;
        for _ in 0..1000 {
            assert!(sim.next_into(&mut f).unwrap());
            assert!(last.is_none_or(|l| f.t_us > l));
            last = Some(f.t_us);
        }
        assert_eq!(
            sim.scenario.seed, 3,
            "two scenarios of 2 s at 200 Hz ended within 1000 frames"
        );
    }
}
