//! A mat of emulated chips wired as the config says: the grid scanner, the
//! driver and the bit-level emulator all run, only the silicon is missing.
//! Tests and benchmarks set taxels directly through [`EmulatedMat`];
//! `sources::SimulatedMat` feeds it from the simulator.
//!
//! Emulated GPIO outputs too ([`EmulatedGpio`]): pins that record each edge
//! with the time they were told, for the cue's tests and simulated mats.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use mcp3x08::emulator::{volts_for_count, AnalogInputs, BusCounters, Emulator};
use mcp3x08::Chip;

use crate::contract::frame::Grid;

use super::scanner::{GridScanner, RowDriver};
use super::wiring::Wiring;
use super::{HardwareError, OutputPins};

/// Reference voltage of the emulated chips (the reference mat runs at 3.3 V).
pub const VREF: f32 = 3.3;

/// Where a taxel's level goes: a chip input, or a row-scanned matrix.
#[derive(Clone)]
enum TaxelRoute {
    /// Taxel -> (chip inputs, channel).
    Direct(Vec<(Arc<AnalogInputs>, u8)>),
    /// The grid's counts, applied to the column inputs as rows are driven.
    Matrix(Arc<Mutex<Vec<u16>>>),
}

/// Handles on an emulated mat: set taxels, read bus counters, inject faults.
#[derive(Clone)]
pub struct EmulatedMat {
    chip: Chip,
    grid: Grid,
    levels: TaxelRoute,
    counters: Vec<Arc<BusCounters>>,
    faults: Vec<Arc<AtomicBool>>,
}

/// Drives emulated rows: on each row switch the column channels take that
/// row's levels (an ideal matrix: no ghosting through other rows).
struct EmulatedRows {
    cols: usize,
    chip: Chip,
    levels: Arc<Mutex<Vec<u16>>>,
    /// Column -> (chip inputs, channel).
    columns: Vec<(Arc<AnalogInputs>, u8)>,
}

impl RowDriver for EmulatedRows {
    fn select(&mut self, row: usize) -> Result<(), String> {
        let levels = self.levels.lock().map_err(|_| "emulated rows: poisoned".to_string())?;
        for (c, (inputs, ch)) in self.columns.iter().enumerate() {
            let count = levels.get(row * self.cols + c).copied().ok_or("no such row")?;
            inputs.set(*ch, volts_for_count(self.chip, VREF, count));
        }
        Ok(())
    }
}

impl EmulatedMat {
    /// Emulated chips for `wiring`, with a scanner over them. All taxels
    /// start at 0.
    pub fn new(wiring: &Wiring) -> (GridScanner<Emulator>, EmulatedMat) {
        let chips: Vec<Emulator> = wiring.adcs.iter().map(|_| Emulator::new(wiring.chip, VREF)).collect();
        let grid = wiring.grid;
        let mut routes: Vec<Option<(Arc<AnalogInputs>, u8)>> =
            vec![None; if wiring.matrix.is_some() { grid.cols } else { grid.len() }];
        for (adc, chip) in wiring.adcs.iter().zip(&chips) {
            for (input, &target) in adc.plan.inputs().iter().zip(&adc.targets) {
                routes[target] = Some((chip.inputs(), input.select_bits()));
            }
        }
        let routes: Vec<(Arc<AnalogInputs>, u8)> = routes
            .into_iter()
            .map(|r| r.expect("a validated wiring reads every target"))
            .collect();
        let (levels, rows): (TaxelRoute, Option<Box<dyn RowDriver>>) = if wiring.matrix.is_some() {
            let levels = Arc::new(Mutex::new(vec![0u16; grid.len()]));
            let rows = EmulatedRows {
                cols: grid.cols,
                chip: wiring.chip,
                levels: Arc::clone(&levels),
                columns: routes,
            };
            (TaxelRoute::Matrix(levels), Some(Box::new(rows)))
        } else {
            (TaxelRoute::Direct(routes), None)
        };
        let mat = EmulatedMat {
            chip: wiring.chip,
            grid,
            levels,
            counters: chips.iter().map(Emulator::counters).collect(),
            faults: chips.iter().map(Emulator::fault_switch).collect(),
        };
        (GridScanner::new(wiring, chips, rows), mat)
    }

    pub fn grid(&self) -> Grid {
        self.grid
    }

    pub fn chip(&self) -> Chip {
        self.chip
    }

    /// Sets every taxel (row-major counts) for the next scans.
    pub fn set_frame(&self, counts: &[u16]) {
        match &self.levels {
            TaxelRoute::Direct(routes) => {
                for ((inputs, ch), &count) in routes.iter().zip(counts) {
                    inputs.set(*ch, volts_for_count(self.chip, VREF, count));
                }
            }
            TaxelRoute::Matrix(levels) => {
                let mut levels = levels.lock().unwrap_or_else(|p| p.into_inner());
                let n = levels.len();
                levels.copy_from_slice(&counts[..n]);
            }
        }
    }

    /// Each chip's bus counters, in wiring order.
    pub fn counters(&self) -> &[Arc<BusCounters>] {
        &self.counters
    }

    /// Each chip's fault switch, in wiring order (set: its bus fails).
    pub fn fault_switches(&self) -> &[Arc<AtomicBool>] {
        &self.faults
    }
}

/// One level change of an emulated output pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinEdge {
    /// BCM GPIO.
    pub pin: u8,
    /// The time the GPIO was told last ([`EmulatedGpio::set_time`]): the
    /// frame being shown.
    pub t_us: u64,
    pub high: bool,
}

#[derive(Debug, Default)]
struct GpioState {
    now_us: u64,
    /// Every pin ever claimed, in order.
    opened: Vec<u8>,
    /// The pins claimed now.
    held: Vec<u8>,
    edges: VecDeque<PinEdge>,
    /// At most this many edges kept (the oldest go).
    keep: usize,
    /// Every write (`set_high`, `set_low`), changing the level or not.
    writes: u64,
}

/// Emulated GPIO outputs: the pins it hands out record their edges here.
/// Clones share the pins and the record.
#[derive(Debug, Clone)]
pub struct EmulatedGpio {
    state: Arc<Mutex<GpioState>>,
}

impl Default for EmulatedGpio {
    fn default() -> Self {
        EmulatedGpio::keeping(usize::MAX)
    }
}

impl EmulatedGpio {
    /// Keeps every edge (tests).
    pub fn new() -> Self {
        EmulatedGpio::default()
    }

    /// Keeps the last `edges` edges (a long-running simulated mat).
    pub fn keeping(edges: usize) -> Self {
        EmulatedGpio {
            state: Arc::new(Mutex::new(GpioState {
                keep: edges,
                ..GpioState::default()
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, GpioState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The time stamped on the edges that follow.
    pub fn set_time(&self, t_us: u64) {
        self.lock().now_us = t_us;
    }

    /// Every pin ever claimed, in order.
    pub fn opened(&self) -> Vec<u8> {
        self.lock().opened.clone()
    }

    /// The edges kept, oldest first.
    pub fn edges(&self) -> Vec<PinEdge> {
        self.lock().edges.iter().copied().collect()
    }

    /// Writes to any pin, changing its level or not.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }
}

impl OutputPins for EmulatedGpio {
    type Pin = EmulatedPin;

    fn output(&mut self, bcm: u8) -> Result<EmulatedPin, HardwareError> {
        let mut s = self.lock();
        if s.held.contains(&bcm) {
            return Err(HardwareError(format!("GPIO{bcm} is already in use")));
        }
        s.held.push(bcm);
        s.opened.push(bcm);
        Ok(EmulatedPin {
            gpio: self.clone(),
            pin: bcm,
            high: false,
        })
    }
}

/// An emulated output pin: starts low, records each change of level.
#[derive(Debug)]
pub struct EmulatedPin {
    gpio: EmulatedGpio,
    pin: u8,
    high: bool,
}

impl EmulatedPin {
    pub fn pin(&self) -> u8 {
        self.pin
    }

    fn set(&mut self, high: bool) {
        let mut s = self.gpio.lock();
        s.writes += 1;
        if high != self.high {
            self.high = high;
            if s.edges.len() >= s.keep {
                s.edges.pop_front();
            }
            let t_us = s.now_us;
            s.edges.push_back(PinEdge {
                pin: self.pin,
                t_us,
                high,
            });
        }
    }
}

impl Drop for EmulatedPin {
    fn drop(&mut self) {
        let pin = self.pin;
        self.gpio.lock().held.retain(|&p| p != pin);
    }
}

impl embedded_hal::digital::ErrorType for EmulatedPin {
    type Error = Infallible;
}

impl embedded_hal::digital::OutputPin for EmulatedPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.set(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.set(true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::wiring::{AdcConfig, HardwareConfig, Layout};
    use crate::sampler::GridScan;

    fn pattern(grid: Grid, full: u16) -> Vec<u16> {
        (0..grid.len()).map(|i| (i as u16 * 61 + 7) % (full + 1)).collect()
    }

    #[test]
    fn the_reference_mat_scans_back_what_was_set_one_bus_call_per_chip() {
        let wiring = HardwareConfig::default().wiring(Grid::REFERENCE).unwrap();
        let (mut scanner, mat) = EmulatedMat::new(&wiring);
        let want = pattern(wiring.grid, 1023);
        mat.set_frame(&want);
        let mut got = vec![0u16; 16];
        scanner.scan(&mut got).unwrap();
        assert_eq!(got, want);
        for c in mat.counters() {
            assert_eq!((c.bus_calls(), c.selects(), c.conversions()), (1, 8, 8));
        }
    }

    #[test]
    fn a_matrix_scans_row_by_row() {
        let cfg = HardwareConfig {
            wiring: Layout::Matrix,
            chip: Chip::Mcp3208,
            adc: vec![AdcConfig {
                // Columns on CH2, CH0, CH1 (any order works).
                channels: vec!["c1".into(), "c2".into(), "c0".into()],
                ..AdcConfig::default()
            }],
            ..HardwareConfig::default()
        };
        let grid = Grid::new(4, 3);
        let wiring = cfg.wiring(grid).unwrap();
        let (mut scanner, mat) = EmulatedMat::new(&wiring);
        let want = pattern(grid, 4095);
        mat.set_frame(&want);
        let mut got = vec![0u16; grid.len()];
        scanner.scan(&mut got).unwrap();
        assert_eq!(got, want);
        // One scan call per row.
        assert_eq!(mat.counters()[0].bus_calls(), 4);
        assert_eq!(mat.counters()[0].conversions(), 12);
    }

    #[test]
    fn a_failing_chip_names_its_device() {
        let wiring = HardwareConfig::default().wiring(Grid::REFERENCE).unwrap();
        let (mut scanner, mat) = EmulatedMat::new(&wiring);
        mat.fault_switches()[1].store(true, std::sync::atomic::Ordering::Relaxed);
        let err = scanner.scan(&mut [0u16; 16]).unwrap_err();
        assert_eq!(err.what, "/dev/spidev0.1");
        assert!(err.to_string().contains("SPI bus error: EmulatedBusFault"), "{err}");
    }

    #[test]
    fn emulated_pins_record_their_edges_at_the_time_told() {
        use embedded_hal::digital::OutputPin;
        let mut gpio = EmulatedGpio::new();
        let mut a = gpio.output(18).unwrap();
        let mut b = gpio.output(23).unwrap();
        assert!(gpio.output(18).unwrap_err().0.contains("GPIO18 is already in use"));
        gpio.set_time(5_000);
        a.set_high().unwrap();
        a.set_high().unwrap();
        b.set_low().unwrap();
        gpio.set_time(10_000);
        a.set_low().unwrap();
        assert_eq!(
            gpio.edges(),
            vec![
                PinEdge {
                    pin: 18,
                    t_us: 5_000,
                    high: true
                },
                PinEdge {
                    pin: 18,
                    t_us: 10_000,
                    high: false
                },
            ]
        );
        assert_eq!(gpio.writes(), 4);
        drop(a);
        assert!(gpio.output(18).is_ok(), "free again once dropped");
        assert_eq!(gpio.opened(), vec![18, 23, 18]);
        let mut small = EmulatedGpio::keeping(1);
        let mut p = small.output(4).unwrap();
        p.set_high().unwrap();
        p.set_low().unwrap();
        assert_eq!(small.edges().len(), 1);
    }
}
