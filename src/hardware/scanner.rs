//! Turns a [`Wiring`] and its buses into frames: one scan call per chip per
//! frame (per chip and row for a matrix).

use std::time::{Duration, Instant};

use mcp3x08::{Chip, Mcp3x08, ScanBus, MAX_SCAN};

use crate::contract::frame::Grid;
use crate::sampler::{GridScan, ScanError};

use super::wiring::{AdcWiring, Wiring};

/// Drives the rows of a matrix: one row driven, the others high impedance.
pub trait RowDriver: Send {
    /// Drives `row` and releases the row driven before.
    fn select(&mut self, row: usize) -> Result<(), String>;
}

/// One frame of the grid from the wired chips.
pub struct GridScanner<B> {
    grid: Grid,
    chip: Chip,
    adcs: Vec<(AdcWiring, Mcp3x08<B>)>,
    rows: Option<(Box<dyn RowDriver>, Duration)>,
}

impl<B: ScanBus> GridScanner<B> {
    /// `buses[i]` is the bus of `wiring.adcs[i]`; `rows` drives the rows
    /// of a matrix wiring (unused for direct wiring).
    ///
    /// # Panics
    /// If the number of buses differs from the wiring's chips, or a matrix
    /// wiring comes without a row driver.
    pub fn new(wiring: &Wiring, buses: Vec<B>, rows: Option<Box<dyn RowDriver>>) -> Self {
        assert_eq!(buses.len(), wiring.adcs.len(), "one bus per wired chip");
        let rows = match (&wiring.matrix, rows) {
            (Some(m), Some(r)) => Some((r, Duration::from_micros(u64::from(m.settle_us)))),
            (Some(_), None) => panic!("a matrix wiring needs a row driver"),
            (None, _) => None,
        };
        GridScanner {
            grid: wiring.grid,
            chip: wiring.chip,
            adcs: wiring
                .adcs
                .iter()
                .cloned()
                .zip(buses)
                .map(|(w, bus)| (w, Mcp3x08::with_scan_bus(bus, wiring.chip)))
                .collect(),
            rows,
        }
    }

    pub fn chip(&self) -> Chip {
        self.chip
    }

    /// The chips' buses, in wiring order.
    pub fn buses(&self) -> impl Iterator<Item = &B> {
        self.adcs.iter().map(|(_, adc)| adc.bus())
    }

    fn scan_chips(&mut self, counts: &mut [u16], row_base: usize) -> Result<(), ScanError> {
        let mut scratch = [0u16; MAX_SCAN];
        for (wiring, adc) in &mut self.adcs {
            adc.scan_plan(&wiring.plan, &mut scratch).map_err(|e| ScanError {
                what: wiring.device(),
                message: e.to_string(),
            })?;
            for (&target, &count) in wiring.targets.iter().zip(&scratch) {
                counts[row_base + target] = count;
            }
        }
        Ok(())
    }
}

impl<B: ScanBus + Send + 'static> GridScan for GridScanner<B> {
    fn grid(&self) -> Grid {
        self.grid
    }

    fn full_scale(&self) -> u16 {
        self.chip.full_scale()
    }

    fn scan(&mut self, counts: &mut [u16]) -> Result<(), ScanError> {
        debug_assert_eq!(counts.len(), self.grid.len());
        match self.rows.take() {
            None => self.scan_chips(counts, 0),
            Some((mut rows, settle)) => {
                let mut result = Ok(());
                for row in 0..self.grid.rows {
                    if let Err(message) = rows.select(row) {
                        result = Err(ScanError {
                            what: format!("row {row}"),
                            message,
                        });
                        break;
                    }
                    // A few microseconds: sleeping would overshoot by far more.
                    let until = Instant::now() + settle;
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    result = self.scan_chips(counts, row * self.grid.cols);
                    if result.is_err() {
                        break;
                    }
                }
                self.rows = Some((rows, settle));
                result
            }
        }
    }
}
