//! The MCP3x08 driver against the bit-level emulator (the protocol as the
//! chip decodes it) and against `embedded-hal-mock` (the exact bus
//! transactions), for every chip and input mode.

use embedded_hal::spi::{Operation, SpiDevice};
use embedded_hal_mock::eh1::spi::{Mock, Transaction};
use mcp3x08::codec::{self, encode_answer};
use mcp3x08::emulator::{volts_for_count, Emulator};
use mcp3x08::{Chip, Error, Input, Mcp3x08, ScanBus, ScanPlan, MAX_SCAN};
use proptest::prelude::*;

const VREF: f32 = 3.3;

/// Every input a chip has, in both modes.
fn all_inputs(chip: Chip) -> Vec<Input> {
    (0..chip.channels())
        .flat_map(|ch| [Input::Single(ch), Input::PseudoDifferential { positive: ch }])
        .collect()
}

/// A spread of distinct levels, one per channel, including 0 and full scale.
fn levels(chip: Chip) -> Vec<u16> {
    let full = chip.full_scale();
    (0..chip.channels() as u16)
        .map(|ch| match ch {
            0 => full,
            1 => 0,
            _ => (full / 7 * ch + 13) % full,
        })
        .collect()
}

/// The count the chip must give for `input` with channels at `levels`.
fn expected(chip: Chip, levels: &[u16], input: Input) -> u16 {
    match input {
        Input::Single(ch) => levels[ch as usize],
        Input::PseudoDifferential { positive } => {
            let v = volts_for_count(chip, VREF, levels[positive as usize])
                - volts_for_count(chip, VREF, levels[(positive ^ 1) as usize]);
            (v / VREF * (chip.full_scale() as f32 + 1.0))
                .floor()
                .clamp(0.0, chip.full_scale() as f32) as u16
        }
    }
}

fn emulator_at(chip: Chip, levels: &[u16]) -> Emulator {
    let emu = Emulator::new(chip, VREF);
    for (ch, &l) in levels.iter().enumerate() {
        emu.set_count(ch as u8, l);
    }
    emu
}

#[test]
fn every_chip_and_input_through_spi_device_against_the_emulator() {
    for chip in Chip::ALL {
        let lv = levels(chip);
        let emu = emulator_at(chip, &lv);
        let counters = emu.counters();
        let mut adc = Mcp3x08::new(emu, chip);
        for input in all_inputs(chip) {
            let got = adc.read(input).unwrap();
            assert_eq!(got, expected(chip, &lv, input), "{chip} {input}");
        }
        // Single-ended reads hit the levels exactly, full scale and zero too.
        assert_eq!(adc.read(Input::Single(0)).unwrap(), chip.full_scale());
        assert_eq!(adc.read(Input::Single(1)).unwrap(), 0);
        // One transaction (chip-select period) per conversion.
        let n = all_inputs(chip).len() as u64 + 2;
        assert_eq!(counters.selects(), n);
        assert_eq!(counters.conversions(), n);
        assert_eq!(counters.unframed(), 0);
    }
}

#[test]
fn every_chip_and_input_scanned_in_one_bus_call() {
    for chip in Chip::ALL {
        let lv = levels(chip);
        let emu = emulator_at(chip, &lv);
        let counters = emu.counters();
        let mut adc = Mcp3x08::with_scan_bus(emu, chip);
        for mode in [true, false] {
            let inputs: Vec<Input> = (0..chip.channels()).map(|ch| Input::from_bits(mode, ch)).collect();
            let plan = ScanPlan::new(chip, &inputs).unwrap();
            let mut counts = vec![0u16; inputs.len()];
            adc.scan_plan(&plan, &mut counts).unwrap();
            let want: Vec<u16> = inputs.iter().map(|&i| expected(chip, &lv, i)).collect();
            assert_eq!(counts, want, "{chip} single={mode}");
            let mut again = vec![0u16; inputs.len()];
            adc.scan(&inputs, &mut again).unwrap();
            assert_eq!(again, want);
        }
        assert_eq!(counters.bus_calls(), 4, "one bus call per scan");
        assert_eq!(counters.conversions(), 4 * chip.channels() as u64);
    }
}

#[test]
fn exact_transactions_on_the_mock_for_every_chip_and_mode() {
    for chip in Chip::ALL {
        for input in all_inputs(chip) {
            let count = (u16::from(input.select_bits()) * 97 + 5) & chip.full_scale();
            let cmd = codec::command(chip, input).unwrap();
            // The mock answers with high-impedance bits read high.
            let expectations = [
                Transaction::transaction_start(),
                Transaction::transfer(cmd.to_vec(), encode_answer(chip, count, true).to_vec()),
                Transaction::transaction_end(),
            ];
            let mut adc = Mcp3x08::new(Mock::new(&expectations), chip);
            assert_eq!(adc.read(input).unwrap(), count, "{chip} {input}");
            adc.release().done();
        }
    }
}

#[test]
fn the_mock_sees_one_transaction_per_conversion_of_a_scan() {
    let chip = Chip::Mcp3208;
    let inputs = [
        Input::Single(7),
        Input::PseudoDifferential { positive: 2 },
        Input::Single(0),
    ];
    let answers = [4095u16, 1, 2048];
    let mut expectations = Vec::new();
    for (&input, &count) in inputs.iter().zip(&answers) {
        expectations.push(Transaction::transaction_start());
        expectations.push(Transaction::transfer(
            codec::command(chip, input).unwrap().to_vec(),
            encode_answer(chip, count, false).to_vec(),
        ));
        expectations.push(Transaction::transaction_end());
    }
    let mut adc = Mcp3x08::new(Mock::new(&expectations), chip);
    let mut counts = [0u16; 3];
    adc.scan(&inputs, &mut counts).unwrap();
    assert_eq!(counts, answers);
    adc.release().done();
}

#[test]
fn a_high_null_bit_is_a_framing_error() {
    let chip = Chip::Mcp3008;
    let expectations = [
        Transaction::transaction_start(),
        // No chip on the bus: MISO floats high.
        Transaction::transfer(vec![0x01, 0x80, 0x00], vec![0xFF, 0xFF, 0xFF]),
        Transaction::transaction_end(),
    ];
    let mut adc = Mcp3x08::new(Mock::new(&expectations), chip);
    let err = adc.read(Input::Single(0)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadFrame {
                input: Input::Single(0),
                raw: [0xFF, 0xFF, 0xFF]
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("null bit"), "{err}");
    adc.release().done();
}

/// A bus that drops the start bit from every command, as a miswired or
/// misframed host would.
struct DropsStartBit(Emulator);

impl ScanBus for DropsStartBit {
    type Error = <Emulator as ScanBus>::Error;
    fn scan(&mut self, commands: &[[u8; 3]], results: &mut [[u8; 3]]) -> Result<(), Self::Error> {
        let broken: Vec<[u8; 3]> = commands
            .iter()
            .map(|c| {
                let bits = u32::from_be_bytes([0, c[0], c[1], c[2]]);
                let start = 31 - bits.leading_zeros();
                let b = (bits & !(1 << start)).to_be_bytes();
                [b[1], b[2], b[3]]
            })
            .collect();
        self.0.scan(&broken, results)
    }
}

#[test]
fn a_command_without_its_start_bit_is_caught_when_miso_floats_high() {
    for chip in Chip::ALL {
        let lv = levels(chip);
        let mut emu = emulator_at(chip, &lv);
        emu.set_floating_miso(true);
        let mut adc = Mcp3x08::with_scan_bus(DropsStartBit(emu), chip);
        for input in all_inputs(chip) {
            match adc.read(input) {
                Err(Error::BadFrame { .. }) => {}
                other => panic!("{chip} {input}: a misframed conversion must be caught, got {other:?}"),
            }
        }
    }
}

#[test]
fn what_the_null_bit_cannot_catch_with_miso_pulled_low() {
    // Documented limit of `codec::decode`: with MISO low while DOUT floats,
    // a chip that never framed the command reads as a plausible count.
    let chip = Chip::Mcp3008;
    let mut emu = emulator_at(chip, &levels(chip));
    emu.set_floating_miso(false);
    let mut adc = Mcp3x08::with_scan_bus(DropsStartBit(emu), chip);
    let got = adc.read(Input::Single(4)).unwrap();
    assert_ne!(
        got,
        levels(chip)[4],
        "the misframed value is wrong, and undetectable by bits"
    );
}

#[test]
fn several_conversions_in_one_spi_device_transaction_do_not_work() {
    // Why scans need `ScanBus`: chip select must rise between conversions.
    let chip = Chip::Mcp3008;
    let lv = levels(chip);
    let mut emu = emulator_at(chip, &lv);
    let mut a = [0u8; 3];
    let mut b = [0u8; 3];
    emu.transaction(&mut [
        Operation::Transfer(&mut a, &codec::command(chip, Input::Single(2)).unwrap()),
        Operation::Transfer(&mut b, &codec::command(chip, Input::Single(3)).unwrap()),
    ])
    .unwrap();
    assert_eq!(codec::decode(chip, a), Ok(lv[2]));
    assert_ne!(codec::decode(chip, b), Ok(lv[3]));
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let chip = Chip::Mcp3004;
    let mut adc = Mcp3x08::with_scan_bus(Emulator::new(chip, VREF), chip);
    assert!(matches!(adc.read(Input::Single(4)), Err(Error::NoSuchInput(_))));
    let inputs = vec![Input::Single(0); MAX_SCAN + 1];
    let mut out = vec![0; MAX_SCAN + 1];
    assert!(matches!(adc.scan(&inputs, &mut out), Err(Error::ScanSize { .. })));
    assert!(matches!(
        adc.scan(&inputs[..2], &mut out[..1]),
        Err(Error::ScanSize { .. })
    ));
    assert!(ScanPlan::new(chip, &[Input::PseudoDifferential { positive: 5 }]).is_err());
}

#[test]
fn bus_errors_are_passed_on() {
    let chip = Chip::Mcp3208;
    let emu = Emulator::new(chip, VREF);
    let fault = emu.fault_switch();
    let mut adc = Mcp3x08::new(emu, chip);
    fault.store(true, std::sync::atomic::Ordering::Relaxed);
    let err = adc.read(Input::Single(0)).unwrap_err();
    assert!(matches!(err, Error::Bus(_)));
    assert!(err.to_string().contains("SPI bus error"), "{err}");
}

fn any_chip() -> impl Strategy<Value = Chip> {
    prop::sample::select(Chip::ALL.to_vec())
}

proptest! {
    /// Any voltages, any input: the driver reads what the chip converts.
    #[test]
    fn reads_what_the_chip_converts(
        chip in any_chip(),
        volts in prop::collection::vec(-0.5f32..4.0, 8),
        ch in 0u8..8,
        single: bool,
        native: bool,
    ) {
        let ch = ch % chip.channels();
        let input = Input::from_bits(single, ch);
        let emu = Emulator::new(chip, VREF);
        for (c, &v) in volts.iter().enumerate() {
            emu.set_voltage(c as u8, v);
        }
        let want = emu.expected_count(input);
        let vin = volts[ch as usize] - input.negative().map_or(0.0, |n| volts[n as usize]);
        if vin <= 0.0 {
            prop_assert_eq!(want, 0);
        }
        let got = if native {
            Mcp3x08::with_scan_bus(emu, chip).read(input)
        } else {
            Mcp3x08::new(emu, chip).read(input)
        };
        prop_assert_eq!(got, Ok(want));
    }
}
