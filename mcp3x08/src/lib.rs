//! Driver for the Microchip MCP3004/3008 (10 bit) and MCP3204/3208 (12 bit)
//! SPI ADCs, on `embedded-hal` 1.0. `no_std`, no allocation.
//!
//! - [`codec`]: the command bytes and the decoding of the answer, pure;
//! - [`Mcp3x08`]: the driver: one conversion, or a scan of several inputs;
//! - [`ScanBus`]: the bus a scan runs on, and why it is not `SpiDevice`;
//! - `emulator` (feature `emulator`, needs std): a bit-level emulator of the
//!   chips, for tests.
//!
//! ```
//! use embedded_hal_mock::eh1::spi::{Mock, Transaction};
//! use mcp3x08::{Chip, Input, Mcp3x08};
//!
//! // What an MCP3008 with 1.66 V on CH2 (3.3 V reference) answers:
//! // 1.66 / 3.3 * 1024 = 515.
//! let spi = Mock::new(&[
//!     Transaction::transaction_start(),
//!     Transaction::transfer(vec![0x01, 0xA0, 0x00], vec![0xFF, 0xFA, 0x03]),
//!     Transaction::transaction_end(),
//! ]);
//! let mut adc = Mcp3x08::new(spi, Chip::Mcp3008); // any embedded-hal SpiDevice
//! assert_eq!(adc.read(Input::Single(2)).unwrap(), 515);
//! adc.release().done(); // the SPI device back
//! ```
//!
//! # Why scans go through [`ScanBus`]
//!
//! The chip converts once per chip-select-low period: after the result it
//! shifts out zeros until chip select rises, and only then looks for a new
//! start bit. An `embedded_hal::spi::SpiDevice` transaction keeps chip
//! select asserted from its first operation to its last, so N conversions
//! cannot share one transaction; through `SpiDevice` a scan of N inputs costs
//! N transactions. Linux spidev can do better: one `SPI_IOC_MESSAGE` ioctl
//! carries N transfers, each with `cs_change` set so that chip select rises
//! between them. [`ScanBus`] is that operation, "these commands, each in its
//! own chip-select period", so the driver states what it needs and each
//! backend does it the cheapest way it can: [`PerTransaction`] over any
//! `SpiDevice`, a spidev backend in one ioctl per scan, the emulator
//! natively.

#![no_std]
#![forbid(unsafe_code)]

// The emulator shares its inputs and counters across threads (Arc).
#[cfg(any(test, feature = "emulator"))]
extern crate std;

pub mod codec;
#[cfg(feature = "emulator")]
pub mod emulator;

/// The README's usage snippet, compiled by `cargo test` so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

use core::fmt;

use embedded_hal::spi::{Operation, SpiDevice};

pub use codec::{BadFrame, Chip, Input, NoSuchInput, UnknownChip};

/// Most conversions one [`Mcp3x08::scan`] does: the buffers live on the
/// stack so a scan allocates nothing.
pub const MAX_SCAN: usize = 16;

/// Runs 3-byte conversions, each in its own chip-select-low period.
pub trait ScanBus {
    type Error: fmt::Debug;

    /// Clocks `commands[i]` out while reading `results[i]`, with chip
    /// select released between conversions. The slices have equal length.
    fn scan(&mut self, commands: &[[u8; 3]], results: &mut [[u8; 3]]) -> Result<(), Self::Error>;
}

/// [`ScanBus`] over any `SpiDevice`: one transaction per conversion.
#[derive(Debug)]
pub struct PerTransaction<SPI>(pub SPI);

impl<SPI: SpiDevice> ScanBus for PerTransaction<SPI> {
    type Error = SPI::Error;

    fn scan(&mut self, commands: &[[u8; 3]], results: &mut [[u8; 3]]) -> Result<(), Self::Error> {
        for (cmd, res) in commands.iter().zip(results.iter_mut()) {
            self.0.transaction(&mut [Operation::Transfer(res, cmd)])?;
        }
        Ok(())
    }
}

/// What can go wrong talking to the chip; `E` is the bus's own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error<E> {
    /// The SPI bus failed.
    Bus(E),
    /// The answer was not a conversion (see [`codec::decode`]).
    BadFrame { input: Input, raw: [u8; 3] },
    /// The chip has no such input.
    NoSuchInput(NoSuchInput),
    /// More than [`MAX_SCAN`] inputs, or fewer output slots than inputs.
    ScanSize { inputs: usize, outputs: usize },
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bus(e) => write!(f, "SPI bus error: {e:?}"),
            Error::BadFrame { input, raw } => write!(
                f,
                "{input}: answer {raw:02x?} has no low null bit (no chip answering, wrong chip type or SPI mode?)"
            ),
            Error::NoSuchInput(e) => write!(f, "{e}"),
            Error::ScanSize { inputs, outputs } => write!(
                f,
                "scan of {inputs} inputs into {outputs} slots (at most {MAX_SCAN}, one slot each)"
            ),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// Why a [`ScanPlan`] cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanError {
    /// The chip has no such input.
    NoSuchInput(NoSuchInput),
    /// More than [`MAX_SCAN`] inputs.
    TooManyInputs(usize),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::NoSuchInput(e) => write!(f, "{e}"),
            PlanError::TooManyInputs(n) => write!(f, "a scan of {n} inputs (at most {MAX_SCAN})"),
        }
    }
}

impl core::error::Error for PlanError {}

/// A list of inputs with their command bytes worked out once, for scanning
/// the same inputs every frame. Fixed arrays: no allocator needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPlan {
    len: usize,
    /// Only the first `len` are used; the rest stay at their initial value
    /// so that the derived equality compares plans, not leftovers.
    inputs: [Input; MAX_SCAN],
    commands: [[u8; 3]; MAX_SCAN],
}

impl ScanPlan {
    pub fn new(chip: Chip, inputs: &[Input]) -> Result<Self, PlanError> {
        if inputs.len() > MAX_SCAN {
            return Err(PlanError::TooManyInputs(inputs.len()));
        }
        let mut plan = ScanPlan {
            len: inputs.len(),
            inputs: [Input::Single(0); MAX_SCAN],
            commands: [[0; 3]; MAX_SCAN],
        };
        for ((slot, cmd), &input) in plan.inputs.iter_mut().zip(&mut plan.commands).zip(inputs) {
            *slot = input;
            *cmd = codec::command(chip, input).map_err(PlanError::NoSuchInput)?;
        }
        Ok(plan)
    }

    pub fn inputs(&self) -> &[Input] {
        &self.inputs[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One MCP3004/3008/3204/3208 on its own chip select.
#[derive(Debug)]
pub struct Mcp3x08<B> {
    bus: B,
    chip: Chip,
}

impl<SPI: SpiDevice> Mcp3x08<PerTransaction<SPI>> {
    /// The driver on an `embedded-hal` SPI device (mode 0,0 or 1,1, at most
    /// 3.6 MHz at 5 V; see the README for the clock to use with a
    /// high-impedance source). Each conversion is one transaction.
    pub fn new(spi: SPI, chip: Chip) -> Self {
        Mcp3x08 {
            bus: PerTransaction(spi),
            chip,
        }
    }

    /// Ends the driver and gives the SPI device back.
    pub fn release(self) -> SPI {
        self.bus.0
    }
}

impl<B: ScanBus> Mcp3x08<B> {
    /// The driver on a bus that scans natively (a spidev backend, the
    /// emulator).
    pub fn with_scan_bus(bus: B, chip: Chip) -> Self {
        Mcp3x08 { bus, chip }
    }

    pub fn chip(&self) -> Chip {
        self.chip
    }

    pub fn bus(&self) -> &B {
        &self.bus
    }

    pub fn bus_mut(&mut self) -> &mut B {
        &mut self.bus
    }

    /// Ends the driver and gives the bus back (for [`Mcp3x08::new`]'s
    /// driver, [`Mcp3x08::release`] gives the `SpiDevice` itself).
    pub fn destroy(self) -> B {
        self.bus
    }

    /// One conversion of `input`: the count, 0 to 1023 or 4095.
    pub fn read(&mut self, input: Input) -> Result<u16, Error<B::Error>> {
        let mut out = [0u16];
        self.scan(&[input], &mut out)?;
        Ok(out[0])
    }

    /// Converts each of `inputs` in turn into `counts`, in one call to the
    /// bus. At most [`MAX_SCAN`] inputs.
    pub fn scan(&mut self, inputs: &[Input], counts: &mut [u16]) -> Result<(), Error<B::Error>> {
        let n = inputs.len();
        if n > MAX_SCAN || counts.len() < n {
            return Err(Error::ScanSize {
                inputs: n,
                outputs: counts.len(),
            });
        }
        let mut commands = [[0u8; 3]; MAX_SCAN];
        for (cmd, &input) in commands.iter_mut().zip(inputs) {
            *cmd = codec::command(self.chip, input).map_err(Error::NoSuchInput)?;
        }
        self.exchange(inputs, &commands[..n], counts)
    }

    /// [`Mcp3x08::scan`] with the commands worked out in advance.
    pub fn scan_plan(&mut self, plan: &ScanPlan, counts: &mut [u16]) -> Result<(), Error<B::Error>> {
        if counts.len() < plan.len() {
            return Err(Error::ScanSize {
                inputs: plan.len(),
                outputs: counts.len(),
            });
        }
        self.exchange(plan.inputs(), &plan.commands[..plan.len], counts)
    }

    fn exchange(&mut self, inputs: &[Input], commands: &[[u8; 3]], counts: &mut [u16]) -> Result<(), Error<B::Error>> {
        let mut answers = [[0u8; 3]; MAX_SCAN];
        let answers = &mut answers[..commands.len()];
        self.bus.scan(commands, answers).map_err(Error::Bus)?;
        for ((count, raw), &input) in counts.iter_mut().zip(answers.iter()).zip(inputs) {
            *count = codec::decode(self.chip, *raw).map_err(|e| Error::BadFrame { input, raw: e.raw })?;
        }
        Ok(())
    }
}
