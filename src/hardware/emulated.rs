//! A mat of emulated chips wired as the config says: the grid scanner, the
//! driver and the bit-level emulator all run, only the silicon is missing.
//! Tests and benchmarks set taxels directly through [`EmulatedMat`];
//! `sources::SimulatedMat` feeds it from the simulator.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use mcp3x08::emulator::{volts_for_count, AnalogInputs, BusCounters, Emulator};
use mcp3x08::Chip;

use crate::frame::Grid;

use super::scanner::{GridScanner, RowDriver};
use super::wiring::Wiring;

/// Reference voltage of the emulated chips (the reference mat runs at 3.3 V).
pub const VREF: f32 = 3.3;

/// Where a taxel's level goes: a chip input, or a row-scanned matrix.
#[derive(Clone)]
enum Levels {
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
    levels: Levels,
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
        let (levels, rows): (Levels, Option<Box<dyn RowDriver>>) = if wiring.matrix.is_some() {
            let levels = Arc::new(Mutex::new(vec![0u16; grid.len()]));
            let rows = EmulatedRows {
                cols: grid.cols,
                chip: wiring.chip,
                levels: Arc::clone(&levels),
                columns: routes,
            };
            (Levels::Matrix(levels), Some(Box::new(rows)))
        } else {
            (Levels::Direct(routes), None)
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
            Levels::Direct(routes) => {
                for ((inputs, ch), &count) in routes.iter().zip(counts) {
                    inputs.set(*ch, volts_for_count(self.chip, VREF, count));
                }
            }
            Levels::Matrix(levels) => {
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
}
