//! The MCP3004/3008/3204/3208 wire protocol as pure functions: the command
//! bytes the host clocks out and the decoding of the bytes clocked back.
//!
//! Both families answer one conversion per chip-select-low period. The chip
//! ignores leading zeros on DIN; the first 1 is the start bit. Then come
//! SGL/DIFF, D2, D1, D0, one more clock to finish the sample, a low null bit
//! on DOUT, and the result MSB first (10 or 12 bits). Everything before the
//! null bit is high impedance on DOUT, so the host must mask it.
//!
//! The usual framing is three 8-bit words (datasheets, section 6.1):
//!
//! ```text
//! MCP3004/3008 (10 bit)            MCP3204/3208 (12 bit)
//! DIN  0000_0001                    DIN  0000_01 S D2
//!      S D2 D1 D0 x x x x                D1 D0 xx_xxxx
//!      xxxx_xxxx                         xxxx_xxxx
//! DOUT ???? ????                    DOUT ???? ????
//!      ???? ? 0 B9 B8                    ??? 0 B11 B10 B9 B8
//!      B7 .. B0                          B7 .. B0
//! ```
//!
//! `S` is SGL/DIFF (1 = single-ended), `?` is high impedance and `0` the
//! null bit, the only bit of the answer that is not data and is known: it is
//! what [`decode`] checks.

use core::fmt;
use core::str::FromStr;

/// The four members of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chip {
    /// 10 bit, 4 inputs.
    Mcp3004,
    /// 10 bit, 8 inputs.
    Mcp3008,
    /// 12 bit, 4 inputs.
    Mcp3204,
    /// 12 bit, 8 inputs.
    Mcp3208,
}

impl Chip {
    pub const ALL: [Chip; 4] = [Chip::Mcp3004, Chip::Mcp3008, Chip::Mcp3204, Chip::Mcp3208];

    /// Resolution in bits: 10 or 12.
    pub const fn bits(self) -> u32 {
        match self {
            Chip::Mcp3004 | Chip::Mcp3008 => 10,
            Chip::Mcp3204 | Chip::Mcp3208 => 12,
        }
    }

    /// Number of analog inputs (CH0..): 4 or 8.
    pub const fn channels(self) -> u8 {
        match self {
            Chip::Mcp3004 | Chip::Mcp3204 => 4,
            Chip::Mcp3008 | Chip::Mcp3208 => 8,
        }
    }

    /// Largest count: 1023 or 4095.
    pub const fn full_scale(self) -> u16 {
        (1u16 << self.bits()) - 1
    }

    pub const fn name(self) -> &'static str {
        match self {
            Chip::Mcp3004 => "mcp3004",
            Chip::Mcp3008 => "mcp3008",
            Chip::Mcp3204 => "mcp3204",
            Chip::Mcp3208 => "mcp3208",
        }
    }
}

impl fmt::Display for Chip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is none of [`Chip::name`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownChip;

impl fmt::Display for UnknownChip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown chip (one of mcp3004, mcp3008, mcp3204, mcp3208)")
    }
}

impl core::error::Error for UnknownChip {}

/// Parses a [`Chip::name`], in any case.
impl FromStr for Chip {
    type Err = UnknownChip;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Chip::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
            .ok_or(UnknownChip)
    }
}

/// What one conversion measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    /// CHn against ground.
    Single(u8),
    /// Pseudo-differential: CH`positive` (IN+) minus its pair partner
    /// CH`positive ^ 1` (IN-), e.g. CH0-CH1, CH1-CH0, CH2-CH3. The chip
    /// reads 0 when IN+ is below IN-.
    PseudoDifferential { positive: u8 },
}

impl Input {
    /// The D2 D1 D0 bits: in both modes the channel that is IN+ (datasheet
    /// tables 5-1 and 5-2).
    pub const fn select_bits(self) -> u8 {
        match self {
            Input::Single(ch) => ch,
            Input::PseudoDifferential { positive } => positive,
        }
    }

    pub const fn single_ended(self) -> bool {
        matches!(self, Input::Single(_))
    }

    /// The IN- channel of a pseudo-differential input.
    pub const fn negative(self) -> Option<u8> {
        match self {
            Input::Single(_) => None,
            Input::PseudoDifferential { positive } => Some(positive ^ 1),
        }
    }

    /// The input SGL/DIFF and D2..D0 select, as the chip decodes them.
    pub const fn from_bits(single_ended: bool, select: u8) -> Input {
        if single_ended {
            Input::Single(select & 7)
        } else {
            Input::PseudoDifferential { positive: select & 7 }
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Input::Single(ch) => write!(f, "CH{ch}"),
            Input::PseudoDifferential { positive } => write!(f, "CH{positive}-CH{}", positive ^ 1),
        }
    }
}

/// An input the chip does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSuchInput {
    pub chip: Chip,
    pub input: Input,
}

impl fmt::Display for NoSuchInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} has no input {} (channels 0..{})",
            self.chip,
            self.input,
            self.chip.channels()
        )
    }
}

impl core::error::Error for NoSuchInput {}

/// The null bit came back high: the chip did not see a start bit where the
/// host put one (no chip, wrong framing, chip select not released), so the
/// data bits are not a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadFrame {
    pub chip: Chip,
    pub raw: [u8; 3],
}

impl fmt::Display for BadFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: null bit not low in answer {:02x?}: the chip did not frame this conversion",
            self.chip, self.raw
        )
    }
}

impl core::error::Error for BadFrame {}

/// The three command bytes of one conversion of `input` on `chip`.
pub fn command(chip: Chip, input: Input) -> Result<[u8; 3], NoSuchInput> {
    if input.select_bits() >= chip.channels() {
        return Err(NoSuchInput { chip, input });
    }
    let sgl = input.single_ended() as u8;
    let d = input.select_bits();
    Ok(match chip.bits() {
        // Seven leading zeros, the start bit ending byte 0.
        10 => [0x01, (sgl << 7) | (d << 4), 0x00],
        // Five leading zeros, start, SGL, D2; then D1 D0.
        _ => [0x04 | (sgl << 1) | (d >> 2), (d & 0x03) << 6, 0x00],
    })
}

/// Position of the null bit in byte 1 of the answer, and the mask of the
/// data bits that byte carries.
const fn null_bit_and_mask(chip: Chip) -> (u8, u8) {
    match chip.bits() {
        10 => (1 << 2, 0x03),
        _ => (1 << 4, 0x0F),
    }
}

/// The count in the three bytes clocked back during [`command`]'s bytes.
///
/// Checks the null bit, the only fixed bit of the answer. What this cannot
/// catch: with MISO pulled low (or floating low), a chip that never saw a
/// start bit answers all zeros, which reads as a valid 0; the `check`
/// command's dead-channel flag is what finds that.
pub fn decode(chip: Chip, raw: [u8; 3]) -> Result<u16, BadFrame> {
    let (null, mask) = null_bit_and_mask(chip);
    if raw[1] & null != 0 {
        return Err(BadFrame { chip, raw });
    }
    Ok((u16::from(raw[1] & mask) << 8) | u16::from(raw[2]))
}

/// The bytes a chip would answer with `count` for [`command`]'s framing,
/// with high-impedance bits read as `hi_z` (the inverse of [`decode`]; for
/// tests and mocks).
pub fn encode_answer(chip: Chip, count: u16, hi_z: bool) -> [u8; 3] {
    let (null, mask) = null_bit_and_mask(chip);
    let count = count & chip.full_scale();
    // Bits above the null bit in byte 1, and all of byte 0, are high impedance.
    let floating = if hi_z { !(null | mask | (null - 1)) } else { 0 };
    let b0 = if hi_z { 0xFF } else { 0x00 };
    [b0, floating | (count >> 8) as u8, count as u8]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::ToString;

    #[test]
    fn command_bytes_match_the_datasheets() {
        // MCP3008 section 6.1: 0x01, then SGL D2 D1 D0 in the high nibble.
        assert_eq!(command(Chip::Mcp3008, Input::Single(0)).unwrap(), [0x01, 0x80, 0x00]);
        assert_eq!(command(Chip::Mcp3008, Input::Single(5)).unwrap(), [0x01, 0xD0, 0x00]);
        assert_eq!(command(Chip::Mcp3008, Input::Single(7)).unwrap(), [0x01, 0xF0, 0x00]);
        assert_eq!(
            command(Chip::Mcp3008, Input::PseudoDifferential { positive: 3 }).unwrap(),
            [0x01, 0x30, 0x00]
        );
        // MCP3208 section 6.1: 0000 01 SGL D2, then D1 D0 in the top bits.
        assert_eq!(command(Chip::Mcp3208, Input::Single(0)).unwrap(), [0x06, 0x00, 0x00]);
        assert_eq!(command(Chip::Mcp3208, Input::Single(7)).unwrap(), [0x07, 0xC0, 0x00]);
        assert_eq!(command(Chip::Mcp3208, Input::Single(5)).unwrap(), [0x07, 0x40, 0x00]);
        assert_eq!(
            command(Chip::Mcp3208, Input::PseudoDifferential { positive: 6 }).unwrap(),
            [0x05, 0x80, 0x00]
        );
        assert_eq!(command(Chip::Mcp3204, Input::Single(3)).unwrap(), [0x06, 0xC0, 0x00]);
        assert_eq!(command(Chip::Mcp3004, Input::Single(3)).unwrap(), [0x01, 0xB0, 0x00]);
    }

    #[test]
    fn inputs_beyond_the_chip_are_refused() {
        for chip in [Chip::Mcp3004, Chip::Mcp3204] {
            assert!(command(chip, Input::Single(4)).is_err());
            assert!(command(chip, Input::PseudoDifferential { positive: 4 }).is_err());
            assert!(command(chip, Input::Single(3)).is_ok());
        }
        for chip in [Chip::Mcp3008, Chip::Mcp3208] {
            let err = command(chip, Input::Single(8)).unwrap_err();
            assert!(err.to_string().contains("no input CH8"), "{err}");
        }
    }

    #[test]
    fn decoding_masks_high_impedance_bits_and_checks_the_null_bit() {
        assert_eq!(decode(Chip::Mcp3008, [0xFF, 0xFB, 0xFF]), Ok(1023));
        assert_eq!(decode(Chip::Mcp3008, [0xFF, 0xF8, 0x00]), Ok(0));
        assert_eq!(decode(Chip::Mcp3008, [0x00, 0x02, 0x01]), Ok(513));
        assert!(decode(Chip::Mcp3008, [0xFF, 0xFF, 0xFF]).is_err());
        assert_eq!(decode(Chip::Mcp3208, [0xFF, 0xEF, 0xFF]), Ok(4095));
        assert_eq!(decode(Chip::Mcp3208, [0x00, 0x08, 0x00]), Ok(2048));
        assert!(decode(Chip::Mcp3208, [0x00, 0x10, 0x00]).is_err());
    }

    #[test]
    fn pseudo_differential_pairs() {
        assert_eq!(Input::PseudoDifferential { positive: 0 }.negative(), Some(1));
        assert_eq!(Input::PseudoDifferential { positive: 5 }.negative(), Some(4));
        assert_eq!(Input::Single(5).negative(), None);
        assert_eq!(Input::PseudoDifferential { positive: 5 }.to_string(), "CH5-CH4");
    }

    #[test]
    fn chip_names_parse() {
        for chip in Chip::ALL {
            assert_eq!(chip.name().parse::<Chip>(), Ok(chip));
        }
        assert_eq!("MCP3208".parse::<Chip>(), Ok(Chip::Mcp3208));
        assert_eq!("mcp3201".parse::<Chip>(), Err(UnknownChip));
        assert_eq!(Chip::Mcp3004.full_scale(), 1023);
        assert_eq!(Chip::Mcp3208.full_scale(), 4095);
    }

    fn any_chip() -> impl Strategy<Value = Chip> {
        prop::sample::select(Chip::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn answers_decode_to_their_count(chip in any_chip(), count in 0u16..4096, hi_z: bool) {
            let count = count & chip.full_scale();
            prop_assert_eq!(decode(chip, encode_answer(chip, count, hi_z)), Ok(count));
        }

        /// The command has exactly one start bit, at the bit position the
        /// framing puts it, and the SGL and select bits right after it.
        #[test]
        fn commands_carry_start_sgl_and_select_bits(chip in any_chip(), ch in 0u8..8, single: bool) {
            let input = Input::from_bits(single, ch);
            let cmd = command(chip, input);
            prop_assume!(ch < chip.channels());
            let cmd = cmd.unwrap();
            let bits = u32::from(cmd[0]) << 16 | u32::from(cmd[1]) << 8 | u32::from(cmd[2]);
            // The start bit: clock 8 (10 bit) or 6 (12 bit), from 1.
            let start = if chip.bits() == 10 { 8 } else { 6 };
            prop_assert_eq!(bits.leading_zeros() - 8, start - 1);
            let after = |k: u32| (bits >> (24 - start - k)) & 1;
            prop_assert_eq!(after(1) == 1, single);
            prop_assert_eq!((after(2) << 2 | after(3) << 1 | after(4)) as u8, ch);
        }
    }
}
