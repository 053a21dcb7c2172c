//! The simulator's mat read through emulated MCP3x08s wired as the config
//! says: the grid scanner, the driver and the bit-level chip emulator all
//! run, only the silicon is missing.
//!
//! One type, two ways to read it:
//! - as a [`GridScan`] under the real sampler thread (`flatback check --source
//!   sim`): the sampler stamps the frames;
//! - as a [`FrameSource`] with the simulator's own timestamps (the daemon's
//!   `sim` mats, paced to real time).
//!
//! When a scenario ends the next seed follows (a simulated mat runs as long
//! as the daemon), unless it was made to run [`SimulatedMat::once`]. Its bus
//! can be made to fail for a while, as a broken cable would.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::contract::frame::{Frame, FrameSource, Grid, SourceError};
use crate::hardware::{EmulatedMat, GridScanner, Wiring};
use crate::sampler::{GridScan, ScanError};
use crate::sim::{Scenario, Simulator};
use mcp3x08::emulator::Emulator;

pub struct SimulatedMat {
    scanner: GridScanner<Emulator>,
    mat: EmulatedMat,
    scenario: Scenario,
    sim: Simulator,
    /// The simulator's frame: the taxels' levels and its time stamp.
    levels: Frame,
    /// Added to the simulator's timestamps: the end of the scenarios before.
    offset_us: u64,
    last_us: u64,
    /// The next seed follows when a scenario ends.
    repeat: bool,
    /// The bus fails from `.0` to `.1` seconds of simulated time...
    fault: Option<(f64, f64)>,
    /// ...counted on the wall clock at `speed`, so a failed bus stays failed
    /// while nothing is read from it.
    started: Option<Instant>,
    speed: f64,
}

impl SimulatedMat {
    /// # Panics
    /// If the scenario's grid or resolution differ from the wiring's.
    pub fn new(wiring: &Wiring, scenario: Scenario) -> SimulatedMat {
        assert_eq!(scenario.grid, wiring.grid, "the simulated grid is the wired grid");
        assert_eq!(
            scenario.adc_bits,
            wiring.chip.bits(),
            "the simulated ADC is the wired chip"
        );
        let (scanner, mat) = EmulatedMat::new(wiring);
        SimulatedMat {
            scanner,
            mat,
            sim: Simulator::new(&scenario),
            levels: Frame::zeroed(wiring.grid),
            scenario,
            offset_us: 0,
            last_us: 0,
            repeat: true,
            fault: None,
            started: None,
            speed: 1.0,
        }
    }

    /// Ends with its scenario instead of going on with the next seed (as a
    /// [`FrameSource`]; under the sampler a mat never ends).
    pub fn once(mut self) -> Self {
        self.repeat = false;
        self
    }

    /// The emulated bus fails `at_s` seconds into the run for `for_s`
    /// seconds (simulated time, at `speed` times the wall clock).
    pub fn with_bus_fault(mut self, fault: Option<(f64, f64)>, speed: f64) -> Self {
        self.fault = fault.map(|(at, d)| (at, at + d));
        self.speed = speed;
        self
    }

    /// Skips the simulated time before the first person has lain down and
    /// settled (a couple of seconds after `on_ms`), so a short look at the
    /// mat shows someone on it.
    pub fn from_first_person(mut self) -> Self {
        let Some(on_ms) = self.sim.truth().sessions.first().map(|s| s.on_ms) else {
            return self;
        };
        let from_us = (on_ms + 2000) * 1000;
        while self.levels.t_us < from_us {
            match self.sim.next_into(&mut self.levels) {
                Ok(true) => {}
                _ => break,
            }
        }
        self
    }

    pub fn emulated(&self) -> &EmulatedMat {
        &self.mat
    }

    fn bus_failing(&mut self) -> bool {
        let Some((from, to)) = self.fault else { return false };
        let t = self.started.get_or_insert_with(Instant::now).elapsed().as_secs_f64() * self.speed;
        (from..to).contains(&t)
    }

    /// The simulator's next frame into `levels` (time stamps continued
    /// across scenarios); `false` when the scenario ended and no other
    /// follows.
    fn advance(&mut self, repeat: bool) -> Result<bool, SourceError> {
        while !self.sim.next_into(&mut self.levels)? {
            if !repeat {
                return Ok(false);
            }
            // The scenario ended: the next person comes.
            self.offset_us = self.last_us + 1_000_000;
            self.scenario.seed += 1;
            self.sim = Simulator::new(&self.scenario);
        }
        self.levels.t_us += self.offset_us;
        self.last_us = self.levels.t_us;
        Ok(true)
    }

    /// Scans the current levels over the emulated chips.
    fn scan_levels(&mut self, counts: &mut [u16]) -> Result<(), ScanError> {
        let failing = self.bus_failing();
        for f in self.mat.fault_switches() {
            f.store(failing, Ordering::Relaxed);
        }
        self.mat.set_frame(&self.levels.counts);
        self.scanner.scan(counts)
    }
}

impl GridScan for SimulatedMat {
    fn grid(&self) -> Grid {
        self.mat.grid()
    }

    fn full_scale(&self) -> u16 {
        self.mat.chip().full_scale()
    }

    fn scan(&mut self, counts: &mut [u16]) -> Result<(), ScanError> {
        self.advance(true).map_err(|e| ScanError {
            what: "simulator".into(),
            message: e.to_string(),
        })?;
        self.scan_levels(counts)
    }
}

impl FrameSource for SimulatedMat {
    fn grid(&self) -> Grid {
        self.mat.grid()
    }

    fn next_into(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        if !self.advance(self.repeat)? {
            return Ok(false);
        }
        frame.t_us = self.levels.t_us;
        self.scan_levels(&mut frame.counts)
            .map_err(|e| SourceError::Sampler(e.to_string()))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::HardwareConfig;
    use crate::sim::Kind;

    fn wiring() -> Wiring {
        HardwareConfig::default().wiring(Grid::REFERENCE).unwrap()
    }

    #[test]
    fn as_a_scan_it_reads_the_simulator_through_the_chips_and_goes_on_with_the_next_seed() {
        let scenario = Scenario::new(Kind::Still, 3).with_duration(30.0).with_rate(50.0);
        let mut reference = Simulator::new(&scenario);
        let mut mat = SimulatedMat::new(&wiring(), scenario);
        let mut frame = Frame::zeroed(Grid::REFERENCE);
        let mut counts = vec![0u16; 16];
        let (mut loaded, mut frames) = (0, 0);
        // The whole scenario, then the first frame of the next seed.
        while reference.next_into(&mut frame).unwrap() {
            frames += 1;
            mat.scan(&mut counts).unwrap();
            assert_eq!(counts, frame.counts);
            loaded += frame.counts.iter().any(|&c| c > 50) as usize;
        }
        assert!(loaded > 0, "someone lies on the simulated mat");
        mat.scan(&mut counts).unwrap();
        let calls: u64 = mat.emulated().counters().iter().map(|c| c.bus_calls()).sum();
        assert_eq!(calls, 2 * (frames + 1));
    }

    #[test]
    fn as_a_source_it_keeps_the_simulators_time_and_counts() {
        let scenario = Scenario::new(Kind::CleanSet, 3).with_rate(200.0);
        let mut direct = Simulator::new(&scenario);
        let mut emulated = SimulatedMat::new(&wiring(), scenario);
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
        let scenario = Scenario::new(Kind::Still, 1).with_rate(200.0);
        let mut sim = SimulatedMat::new(&wiring(), scenario).with_bus_fault(Some((0.0, 1e9)), 1.0);
        let mut f = Frame::zeroed(Grid::REFERENCE);
        let e = sim.next_into(&mut f).unwrap_err();
        assert!(e.to_string().contains("SPI"), "the error names the bus: {e}");
        sim.fault = None;
        assert!(sim.next_into(&mut f).unwrap());
    }

    #[test]
    fn a_scenario_that_ends_is_followed_by_the_next_seed_with_increasing_time() {
        let scenario = Scenario::new(Kind::Still, 1).with_rate(200.0).with_duration(2.0);
        let mut sim = SimulatedMat::new(&wiring(), scenario);
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

    #[test]
    fn once_ends_with_its_scenario() {
        let scenario = Scenario::new(Kind::Still, 1).with_rate(200.0).with_duration(2.0);
        let mut sim = SimulatedMat::new(&wiring(), scenario).once();
        let mut f = Frame::zeroed(Grid::REFERENCE);
        let mut frames = 0;
        while sim.next_into(&mut f).unwrap() {
            frames += 1;
        }
        assert!((390..=410).contains(&frames), "{frames} frames in 2 s at 200 Hz");
        assert_eq!(sim.scenario.seed, 1);
    }
}
