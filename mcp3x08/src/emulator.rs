//! A bit-level emulator of one MCP3004/3008/3204/3208, for tests,
//! benchmarks and simulated hardware (feature `emulator`; needs std).
//!
//! It decodes what the host clocks in the way the chip does (datasheets,
//! section 5): leading zeros are ignored until the first 1 (the start bit),
//! then SGL/DIFF and D2 D1 D0 select the input; one more clock completes the
//! sample; DOUT gives a low null bit and the result MSB first, then LSB first,
//! then zeros for as long as chip select stays low. Before the null bit DOUT
//! is high impedance, read as [`Emulator::set_floating_miso`]. A new
//! conversion needs chip select to rise: a second command in the same
//! chip-select-low period is ignored, as by the chip.
//!
//! So the emulator answers any framing the chip would accept (more leading
//! zeros, 4- or 5-byte frames) and the same garbage as the chip to framings
//! it would not. The driver is tested against the protocol, not itself.
//!
//! Inputs are voltages (0..=`vref`), shared through [`AnalogInputs`] so
//! another part of a test (a simulated mat, an emulated row driver) can set
//! them while the driver owns the emulator. Counters of chip-select periods
//! and conversions ([`BusCounters`]) are shared the same way.

use core::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use embedded_hal::spi::{ErrorKind, ErrorType, Operation, SpiDevice};

use crate::codec::{Chip, Input};
use crate::ScanBus;

/// The voltages on CH0..CH7 of one emulated chip, settable from any thread.
#[derive(Debug, Default)]
pub struct AnalogInputs {
    /// f32 bit patterns (atomics have no f32).
    volts: [AtomicU32; 8],
}

impl AnalogInputs {
    pub fn set(&self, channel: u8, volts: f32) {
        self.volts[usize::from(channel)].store(volts.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self, channel: u8) -> f32 {
        f32::from_bits(self.volts[usize::from(channel)].load(Ordering::Relaxed))
    }
}

/// What crossed the emulated bus, readable from any thread.
#[derive(Debug, Default)]
pub struct BusCounters {
    /// Chip-select-low periods (SPI transactions as the chip sees them).
    pub selects: AtomicU64,
    /// Conversions the chip sampled.
    pub conversions: AtomicU64,
    /// Calls into the emulator's bus interface: one per
    /// `SpiDevice::transaction` or per [`ScanBus::scan`] (what a system
    /// call costs on the real bus).
    pub bus_calls: AtomicU64,
    /// Chip-select periods that ended without a start bit (wrong framing,
    /// or a command sent while the chip was still busy).
    pub unframed: AtomicU64,
}

impl BusCounters {
    pub fn selects(&self) -> u64 {
        self.selects.load(Ordering::Relaxed)
    }
    pub fn conversions(&self) -> u64 {
        self.conversions.load(Ordering::Relaxed)
    }
    pub fn bus_calls(&self) -> u64 {
        self.bus_calls.load(Ordering::Relaxed)
    }
    pub fn unframed(&self) -> u64 {
        self.unframed.load(Ordering::Relaxed)
    }
}

/// The bus error the emulator reports when told to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmulatedBusFault;

impl fmt::Display for EmulatedBusFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("emulated SPI bus fault")
    }
}

impl core::error::Error for EmulatedBusFault {}

impl embedded_hal::spi::Error for EmulatedBusFault {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// Where the chip is within one chip-select-low period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Ignoring zeros until the start bit.
    AwaitStart,
    /// Clocking in SGL/DIFF, D2, D1, D0 (`seen` of the 4 so far).
    Config { seen: u8, bits: u8 },
    /// The clock after D0 that ends the sample.
    Sampling { input: Input },
    /// Shifting out: `shifted` bits of the answer after the null bit.
    Output { code: u16, shifted: u32 },
}

/// One emulated chip on its own chip select.
#[derive(Debug, Clone)]
pub struct Emulator {
    chip: Chip,
    vref: f32,
    inputs: Arc<AnalogInputs>,
    counters: Arc<BusCounters>,
    failing: Arc<AtomicBool>,
    floating_miso: bool,
    phase: Phase,
    /// DOUT for the coming clock; `None` is high impedance.
    dout: Option<bool>,
}

impl Emulator {
    /// A chip with all inputs at 0 V, reference `vref` volts, and MISO
    /// floating high when DOUT is high impedance.
    pub fn new(chip: Chip, vref: f32) -> Self {
        Emulator {
            chip,
            vref,
            inputs: Arc::default(),
            counters: Arc::default(),
            failing: Arc::default(),
            floating_miso: true,
            phase: Phase::AwaitStart,
            dout: None,
        }
    }

    pub fn chip(&self) -> Chip {
        self.chip
    }

    pub fn vref(&self) -> f32 {
        self.vref
    }

    /// Shared handle on the input voltages.
    pub fn inputs(&self) -> Arc<AnalogInputs> {
        Arc::clone(&self.inputs)
    }

    /// Shared handle on the bus counters.
    pub fn counters(&self) -> Arc<BusCounters> {
        Arc::clone(&self.counters)
    }

    /// Shared switch: while set, every bus call fails with
    /// [`EmulatedBusFault`] (for fault tests).
    pub fn fault_switch(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.failing)
    }

    /// The level MISO reads while DOUT is high impedance (a pull-up or
    /// pull-down on the line; on a bare Pi header it is undefined).
    pub fn set_floating_miso(&mut self, high: bool) {
        self.floating_miso = high;
    }

    pub fn set_voltage(&self, channel: u8, volts: f32) {
        self.inputs.set(channel, volts);
    }

    /// Sets CH`channel` to the middle of the voltage band that converts
    /// to `count`.
    pub fn set_count(&self, channel: u8, count: u16) {
        self.inputs.set(channel, volts_for_count(self.chip, self.vref, count));
    }

    /// The count the chip converts `input` to now: 2^bits * Vin / Vref,
    /// truncated and clamped (datasheet equation 4-1); pseudo-differential
    /// Vin is IN+ minus IN-, 0 when negative.
    pub fn expected_count(&self, input: Input) -> u16 {
        let vin = match input {
            Input::Single(ch) => self.inputs.get(ch),
            Input::PseudoDifferential { positive } => self.inputs.get(positive) - self.inputs.get(positive ^ 1),
        };
        let scale = f32::from(self.chip.full_scale()) + 1.0;
        (vin / self.vref * scale)
            .floor()
            .clamp(0.0, f32::from(self.chip.full_scale())) as u16
    }

    /// Chip select falls.
    fn select(&mut self) {
        self.phase = Phase::AwaitStart;
        self.dout = None;
        self.counters.selects.fetch_add(1, Ordering::Relaxed);
    }

    /// Chip select rises: the chip resets and DOUT floats.
    fn deselect(&mut self) {
        if self.phase == Phase::AwaitStart {
            self.counters.unframed.fetch_add(1, Ordering::Relaxed);
        }
        self.phase = Phase::AwaitStart;
        self.dout = None;
    }

    /// One SCLK period: returns MISO as the host samples it, having given
    /// the chip `din`.
    fn clock(&mut self, din: bool) -> bool {
        let miso = self.dout.unwrap_or(self.floating_miso);
        let bits = self.chip.bits();
        // Rising edge: the chip latches DIN; falling edge: DOUT changes.
        self.phase = match self.phase {
            Phase::AwaitStart if din => Phase::Config { seen: 0, bits: 0 },
            Phase::AwaitStart => Phase::AwaitStart,
            Phase::Config { seen, bits } => {
                let bits = bits << 1 | din as u8;
                if seen + 1 == 4 {
                    // SGL, then D2 D1 D0. The 4-input chips ignore D2.
                    let mut select = bits & 0x07;
                    if self.chip.channels() == 4 {
                        select &= 0x03;
                    }
                    Phase::Sampling {
                        input: Input::from_bits(bits & 0x08 != 0, select),
                    }
                } else {
                    Phase::Config { seen: seen + 1, bits }
                }
            }
            Phase::Sampling { input } => {
                self.counters.conversions.fetch_add(1, Ordering::Relaxed);
                self.dout = Some(false); // the null bit
                Phase::Output {
                    code: self.expected_count(input),
                    shifted: 0,
                }
            }
            Phase::Output { code, shifted } => {
                // After the null bit: B(n-1)..B0, then B1..B(n-1), then 0s.
                let n = bits;
                self.dout = Some(if shifted < n {
                    code >> (n - 1 - shifted) & 1 == 1
                } else if shifted < 2 * n - 1 {
                    code >> (shifted - n + 1) & 1 == 1
                } else {
                    false
                });
                Phase::Output {
                    code,
                    shifted: shifted.saturating_add(1),
                }
            }
        };
        miso
    }

    /// Clocks one byte MSB first (SPI mode 0,0 with 8-bit words).
    fn transfer_byte(&mut self, out: u8) -> u8 {
        (0..8)
            .rev()
            .fold(0u8, |acc, i| acc << 1 | self.clock(out >> i & 1 == 1) as u8)
    }

    fn check_fault(&self) -> Result<(), EmulatedBusFault> {
        self.counters.bus_calls.fetch_add(1, Ordering::Relaxed);
        if self.failing.load(Ordering::Relaxed) {
            Err(EmulatedBusFault)
        } else {
            Ok(())
        }
    }

    /// One chip-select-low period in which `write` is clocked out and the
    /// answer stored in `read` (the longer of the two sets the length;
    /// missing write bytes are zeros).
    fn exchange(&mut self, read: &mut [u8], write: &[u8]) {
        let n = read.len().max(write.len());
        for i in 0..n {
            let r = self.transfer_byte(write.get(i).copied().unwrap_or(0));
            if let Some(slot) = read.get_mut(i) {
                *slot = r;
            }
        }
    }
}

/// The voltage in the middle of the band that converts to `count`.
pub fn volts_for_count(chip: Chip, vref: f32, count: u16) -> f32 {
    let count = count.min(chip.full_scale());
    (f32::from(count) + 0.5) * vref / (f32::from(chip.full_scale()) + 1.0)
}

impl ErrorType for Emulator {
    type Error = EmulatedBusFault;
}

/// One `transaction` is one chip-select-low period, as `SpiDevice`
/// promises: all operations see the chip in the same conversion.
impl SpiDevice for Emulator {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Self::Error> {
        self.check_fault()?;
        self.select();
        for op in operations {
            match op {
                Operation::Read(buf) => self.exchange(buf, &[]),
                Operation::Write(buf) => self.exchange(&mut [], buf),
                Operation::Transfer(read, write) => self.exchange(read, write),
                Operation::TransferInPlace(buf) => {
                    for b in buf.iter_mut() {
                        *b = self.transfer_byte(*b);
                    }
                }
                Operation::DelayNs(_) => {}
            }
        }
        self.deselect();
        Ok(())
    }
}

/// Like the Linux spidev path with `cs_change` between transfers: each
/// command in its own chip-select period, all in one bus call.
impl ScanBus for Emulator {
    type Error = EmulatedBusFault;

    fn scan(&mut self, commands: &[[u8; 3]], results: &mut [[u8; 3]]) -> Result<(), Self::Error> {
        self.check_fault()?;
        for (cmd, res) in commands.iter().zip(results.iter_mut()) {
            self.select();
            self.exchange(res, cmd);
            self.deselect();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn bits_of(bytes: &[u8]) -> Vec<bool> {
        bytes
            .iter()
            .flat_map(|&b| (0..8).rev().map(move |i| b >> i & 1 == 1))
            .collect()
    }

    /// Runs one chip-select period with `write` and returns what came back.
    fn exchange(emu: &mut Emulator, write: &[u8]) -> Vec<u8> {
        let mut read = vec![0u8; write.len()];
        emu.transaction(&mut [Operation::Transfer(&mut read, write)]).unwrap();
        read
    }

    #[test]
    fn answers_after_the_null_bit_msb_then_lsb_first_then_zeros() {
        let mut emu = Emulator::new(Chip::Mcp3008, 3.3);
        emu.set_count(3, 0b10_0110_1101);
        // Start bit as the first clock: SGL=1, D=011, then 40 more clocks.
        let answer = bits_of(&exchange(&mut emu, &[0b1101_1000, 0, 0, 0, 0, 0]));
        // Clocks 0-5 high impedance (floating high), clock 6 the null bit.
        assert!(answer[..6].iter().all(|&b| b), "{answer:?}");
        assert!(!answer[6]);
        let msb: Vec<bool> = (0..10).rev().map(|i| 0b10_0110_1101u16 >> i & 1 == 1).collect();
        assert_eq!(&answer[7..17], &msb[..]);
        let lsb: Vec<bool> = (1..10).map(|i| 0b10_0110_1101u16 >> i & 1 == 1).collect();
        assert_eq!(&answer[17..26], &lsb[..]);
        assert!(answer[26..].iter().all(|&b| !b));
        assert_eq!(emu.counters().conversions(), 1);
    }

    #[test]
    fn any_number_of_leading_zeros_is_accepted() {
        for chip in Chip::ALL {
            let mut emu = Emulator::new(chip, 5.0);
            emu.set_count(1, chip.full_scale() / 3);
            for lead in 0..12u32 {
                // start, SGL=1, D=001, then the sample clock, null, data.
                let word: u64 = 0b1_1001 << (64 - 5 - lead);
                let bytes = word.to_be_bytes();
                let answer = bits_of(&exchange(&mut emu, &bytes));
                let null = lead as usize + 6;
                assert!(!answer[null], "{chip} lead {lead}");
                let n = chip.bits() as usize;
                let code = answer[null + 1..null + 1 + n]
                    .iter()
                    .fold(0u16, |acc, &b| acc << 1 | b as u16);
                assert_eq!(code, chip.full_scale() / 3, "{chip} lead {lead}");
            }
        }
    }

    #[test]
    fn four_input_chips_ignore_d2() {
        let mut emu = Emulator::new(Chip::Mcp3204, 4.096);
        emu.set_count(1, 1234);
        // D2 D1 D0 = 101: CH1 on a 4-input chip.
        let answer = exchange(&mut emu, &[0x07, 0x40, 0x00]);
        assert_eq!(
            crate::codec::decode(Chip::Mcp3204, [answer[0], answer[1], answer[2]]),
            Ok(1234)
        );
    }

    #[test]
    fn a_second_command_needs_chip_select_to_rise() {
        let mut emu = Emulator::new(Chip::Mcp3008, 3.3);
        emu.set_count(0, 700);
        emu.set_count(1, 300);
        let mut a = [0u8; 3];
        let mut b = [0u8; 3];
        emu.transaction(&mut [
            Operation::Transfer(&mut a, &[0x01, 0x80, 0x00]),
            Operation::Transfer(&mut b, &[0x01, 0x90, 0x00]),
        ])
        .unwrap();
        assert_eq!(crate::codec::decode(Chip::Mcp3008, a), Ok(700));
        // CH1 was never converted: the chip was shifting out CH0's LSB-first
        // copy, then zeros.
        assert_eq!(emu.counters().conversions(), 1);
        assert_ne!(crate::codec::decode(Chip::Mcp3008, b), Ok(300));
        // With chip select released in between, both convert.
        let mut res = [[0u8; 3]; 2];
        emu.scan(&[[0x01, 0x80, 0x00], [0x01, 0x90, 0x00]], &mut res).unwrap();
        assert_eq!(crate::codec::decode(Chip::Mcp3008, res[1]), Ok(300));
        assert_eq!(emu.counters().selects(), 3);
        assert_eq!(emu.counters().bus_calls(), 2);
    }

    #[test]
    fn pseudo_differential_is_in_plus_minus_in_minus_clamped() {
        let emu = Emulator::new(Chip::Mcp3208, 4.096);
        emu.set_voltage(4, 3.0005);
        emu.set_voltage(5, 1.0);
        assert_eq!(emu.expected_count(Input::PseudoDifferential { positive: 4 }), 2000);
        assert_eq!(emu.expected_count(Input::PseudoDifferential { positive: 5 }), 0);
        emu.set_voltage(5, 9.0);
        assert_eq!(emu.expected_count(Input::Single(5)), 4095);
    }

    #[test]
    fn the_fault_switch_fails_bus_calls() {
        let mut emu = Emulator::new(Chip::Mcp3008, 3.3);
        let switch = emu.fault_switch();
        switch.store(true, Ordering::Relaxed);
        let mut r = [[0u8; 3]];
        assert_eq!(emu.scan(&[[1, 0x80, 0]], &mut r), Err(EmulatedBusFault));
        assert!(emu.transaction(&mut []).is_err());
        switch.store(false, Ordering::Relaxed);
        assert!(emu.scan(&[[1, 0x80, 0]], &mut r).is_ok());
    }
}
