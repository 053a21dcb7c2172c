//! The Raspberry Pi backend, through `rppal`: SPI through Linux spidev, GPIO
//! for the rows of a matrix, and GPIO outputs for the cue at the mat (its
//! buzzer and LED, as `embedded_hal::digital::OutputPin`s).
//!
//! Kept thin: opening devices (with errors that say how to fix them), one
//! ioctl per chip scan, and row switching. Everything above it (driver,
//! scanner, sampler) only sees [`ScanBus`] and [`RowDriver`], so another
//! backend (linux-embedded-hal's spidev, for one) could replace this file.

use std::io;
use std::path::Path;

use mcp3x08::{ScanBus, MAX_SCAN};
use rppal::gpio::{Bias, Gpio, IoPin, Mode};

use super::OutputPins;
use rppal::spi::{self, Bus, Segment, SlaveSelect, Spi};

use super::scanner::RowDriver;

/// Opening the hardware failed; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HardwareError(pub String);

/// One chip on `/dev/spidevB.C`.
#[derive(Debug)]
pub struct RppalBus {
    spi: Spi,
}

/// What to do about a spidev device that is missing.
pub fn missing_device_help(bus: u8, cs: u8) -> String {
    let device = format!("/dev/spidev{bus}.{cs}");
    match bus {
        0 => format!(
            "{device} not found: add dtparam=spi=on to /boot/firmware/config.txt and reboot \
             (or: sudo raspi-config, Interface Options, SPI); your user must be in the spi group \
             (sudo adduser $USER spi)"
        ),
        1 => format!(
            "{device} not found: SPI1 is off by default; add dtoverlay=spi1-3cs to /boot/firmware/config.txt \
             and reboot"
        ),
        _ => format!(
            "{device} not found: add dtoverlay=spi{bus}-2cs to /boot/firmware/config.txt and reboot \
             (SPI{bus} exists on a Pi 4 or 5)"
        ),
    }
}

/// A readable message for an error opening `/dev/spidevB.C`.
pub fn explain_spi_open_error(bus: u8, cs: u8, kind: io::ErrorKind, detail: &str) -> String {
    let device = format!("/dev/spidev{bus}.{cs}");
    match kind {
        io::ErrorKind::NotFound => missing_device_help(bus, cs),
        io::ErrorKind::PermissionDenied => format!(
            "{device}: permission denied: add user to the spi group (sudo adduser $USER spi), then log out and in"
        ),
        _ => format!("{device}: {detail}"),
    }
}

impl RppalBus {
    /// Opens `/dev/spidevBUS.CS` in SPI mode 0 at `clock_hz`.
    pub fn open(bus: u8, cs: u8, clock_hz: u32) -> Result<Self, HardwareError> {
        let device = format!("/dev/spidev{bus}.{cs}");
        if !Path::new(&device).exists() {
            return Err(HardwareError(missing_device_help(bus, cs)));
        }
        let rbus = match bus {
            0 => Bus::Spi0,
            1 => Bus::Spi1,
            2 => Bus::Spi2,
            3 => Bus::Spi3,
            4 => Bus::Spi4,
            5 => Bus::Spi5,
            6 => Bus::Spi6,
            _ => return Err(HardwareError(format!("{device}: no such SPI bus"))),
        };
        let ss = match cs {
            0 => SlaveSelect::Ss0,
            1 => SlaveSelect::Ss1,
            2 => SlaveSelect::Ss2,
            3 => SlaveSelect::Ss3,
            _ => return Err(HardwareError(format!("{device}: no such chip select"))),
        };
        // Mode 0,0: the chips latch DIN on rising edges and shift DOUT on
        // falling ones (mode 1,1 works too).
        let spi = Spi::new(rbus, ss, clock_hz, spi::Mode::Mode0).map_err(|e| match e {
            spi::Error::Io(io) => HardwareError(explain_spi_open_error(bus, cs, io.kind(), &io.to_string())),
            other => HardwareError(format!("{device}: {other}")),
        })?;
        Ok(RppalBus { spi })
    }
}

/// One `SPI_IOC_MESSAGE` ioctl per call (per [`MAX_SCAN`] conversions):
/// each conversion a segment, with `cs_change` on all but the last so that
/// chip select rises between conversions and stays released at the end.
impl ScanBus for RppalBus {
    type Error = spi::Error;

    fn scan(&mut self, commands: &[[u8; 3]], results: &mut [[u8; 3]]) -> Result<(), Self::Error> {
        for (cmds, res) in commands.chunks(MAX_SCAN).zip(results.chunks_mut(MAX_SCAN)) {
            let n = cmds.len().min(res.len());
            let mut pairs = res.iter_mut().zip(cmds);
            // A fixed array on the stack: no allocation per scan. The
            // padding segments past `n` are never handed to the kernel.
            let segments: [Segment<'_, '_>; MAX_SCAN] = std::array::from_fn(|i| match pairs.next() {
                Some((read, write)) => {
                    let mut s = Segment::new(&mut read[..], &write[..]);
                    s.set_ss_change(i + 1 < n);
                    s
                }
                None => Segment::with_write(&[]),
            });
            self.spi.transfer_segments(&segments[..n])?;
        }
        Ok(())
    }
}

/// The rows of a matrix on GPIO pins: the selected row is an output driven
/// high, every other row an input with no pull (high impedance), so current
/// flows through the selected row's FSRs only.
pub struct GpioRows {
    pins: Vec<IoPin>,
    current: Option<usize>,
}

impl GpioRows {
    /// Claims the BCM GPIO `pins` (row 0 first), all released.
    pub fn open(pins: &[u8]) -> Result<Self, HardwareError> {
        let gpio = Gpio::new().map_err(explain_gpio_error)?;
        let pins = pins
            .iter()
            .map(|&p| {
                let mut pin = gpio.get(p).map_err(explain_gpio_error)?.into_io(Mode::Input);
                pin.set_bias(Bias::Off);
                Ok(pin)
            })
            .collect::<Result<Vec<_>, HardwareError>>()?;
        Ok(GpioRows { pins, current: None })
    }
}

fn explain_gpio_error(e: rppal::gpio::Error) -> HardwareError {
    HardwareError(match e {
        rppal::gpio::Error::PermissionDenied(path) => {
            format!(
                "{path}: permission denied: add user to the gpio group (sudo adduser $USER gpio), then log out and in"
            )
        }
        rppal::gpio::Error::UnknownModel => {
            "GPIO: this is not a Raspberry Pi (unknown model); a matrix's rows and the cue's buzzer and LED are \
             on the Pi's GPIO"
                .into()
        }
        rppal::gpio::Error::PinUsed(p) => format!("GPIO{p} is already in use by another program"),
        other => format!("GPIO: {other}"),
    })
}

/// The Pi's GPIO as output pins (opened on the first pin claimed).
#[derive(Default)]
pub struct RppalGpio {
    gpio: Option<Gpio>,
}

impl RppalGpio {
    pub fn new() -> Self {
        RppalGpio::default()
    }
}

impl OutputPins for RppalGpio {
    type Pin = RppalPin;

    fn output(&mut self, bcm: u8) -> Result<RppalPin, HardwareError> {
        let gpio = match self.gpio.take() {
            Some(g) => g,
            None => Gpio::new().map_err(explain_gpio_error)?,
        };
        let pin = gpio.get(bcm).map_err(explain_gpio_error);
        self.gpio = Some(gpio);
        // rppal puts the pin back as it found it when dropped.
        Ok(RppalPin(pin?.into_output_low()))
    }
}

/// A GPIO output of the Pi, as an embedded-hal pin.
pub struct RppalPin(rppal::gpio::OutputPin);

impl embedded_hal::digital::ErrorType for RppalPin {
    type Error = std::convert::Infallible;
}

impl embedded_hal::digital::OutputPin for RppalPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.0.set_low();
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.0.set_high();
        Ok(())
    }
}

impl RowDriver for GpioRows {
    fn select(&mut self, row: usize) -> Result<(), String> {
        if let Some(prev) = self.current.take() {
            self.pins[prev].set_mode(Mode::Input);
        }
        let pin = self
            .pins
            .get_mut(row)
            .ok_or_else(|| format!("no row {row} (matrix.row_pins)"))?;
        // Level first, then direction: no glitch low on the way.
        pin.set_high();
        pin.set_mode(Mode::Output);
        self.current = Some(row);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_say_what_to_do() {
        let e = explain_spi_open_error(0, 0, io::ErrorKind::NotFound, "");
        assert!(
            e.starts_with("/dev/spidev0.0 not found: add dtparam=spi=on to /boot/firmware/config.txt and reboot"),
            "{e}"
        );
        let e = explain_spi_open_error(0, 1, io::ErrorKind::PermissionDenied, "");
        assert!(e.contains("/dev/spidev0.1: permission denied"), "{e}");
        assert!(e.contains("add user to the spi group (sudo adduser $USER spi)"), "{e}");
        assert!(missing_device_help(1, 2).contains("dtoverlay=spi1-3cs"));
        let e = explain_gpio_error(rppal::gpio::Error::PermissionDenied("/dev/gpiomem".into())).0;
        assert!(e.contains("sudo adduser $USER gpio"), "{e}");
    }

    #[test]
    fn opening_a_missing_device_explains_itself() {
        // Devices 6.3 exist on no machine this runs on.
        let e = RppalBus::open(6, 3, 1_000_000).unwrap_err();
        assert!(e.0.starts_with("/dev/spidev6.3 not found"), "{e}");
    }
}
