//! The mat's hardware: wiring from the config, the grid scanner, the
//! Raspberry Pi backend, and an emulated mat built from the same wiring.
//!
//! - [`wiring`]: the `[hardware]` config section and its validation (pure);
//! - [`scanner`]: [`GridScanner`], wiring + buses -> one frame;
//! - [`rppal_bus`]: [`RppalBus`] (one ioctl per chip scan), [`GpioRows`],
//!   and [`RppalGpio`]'s output pins (the cue's buzzer and LED);
//! - [`emulated`]: the same wiring on emulated chips, optionally fed by the
//!   simulator ([`SimulatedMat`]), and [`EmulatedGpio`]'s output pins, which
//!   record their edges.
//!
//! [`SimulatedMat`]: crate::sources::SimulatedMat

pub mod emulated;
pub mod rppal_bus;
pub mod scanner;
pub mod wiring;

pub use emulated::{EmulatedGpio, EmulatedMat, EmulatedPin, PinEdge};
pub use rppal_bus::{GpioRows, HardwareError, RppalBus, RppalGpio, RppalPin};
pub use scanner::{GridScanner, RowDriver};
pub use wiring::{HardwareConfig, Wiring, WiringError};

/// Claims BCM GPIOs as outputs: the Pi's ([`RppalGpio`]) or emulated ones
/// ([`EmulatedGpio`]). Each pin starts low.
pub trait OutputPins {
    type Pin: embedded_hal::digital::OutputPin + Send + 'static;

    /// GPIO `bcm` as an output, driven low; the error says what to do.
    fn output(&mut self, bcm: u8) -> Result<Self::Pin, HardwareError>;
}

/// Opens every chip of `wiring` on the Pi's SPI (and the row pins of a
/// matrix). Errors name the missing device and how to enable it.
pub fn open(wiring: &Wiring, spi_clock_hz: u32) -> Result<GridScanner<RppalBus>, HardwareError> {
    let buses = wiring
        .adcs
        .iter()
        .map(|a| RppalBus::open(a.bus, a.cs, spi_clock_hz))
        .collect::<Result<Vec<_>, _>>()?;
    let rows: Option<Box<dyn RowDriver>> = match &wiring.matrix {
        Some(m) => Some(Box::new(GpioRows::open(&m.row_pins)?)),
        None => None,
    };
    Ok(GridScanner::new(wiring, buses, rows))
}
