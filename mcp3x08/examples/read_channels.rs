//! Reads every channel of an MCP3004/3008/3204/3208 through Linux spidev
//! (a Raspberry Pi, or any board with `/dev/spidev*`), once a second.
//!
//! ```text
//! cargo run -p mcp3x08 --example read_channels -- [/dev/spidev0.0] [mcp3008] [clock_hz]
//! ```
//!
//! On a Pi: enable SPI (`dtparam=spi=on` in `/boot/firmware/config.txt`,
//! or `sudo raspi-config`, Interface Options, SPI), wire the chip to SPI0
//! (pin 19 MOSI to DIN, 21 MISO to DOUT, 23 SCLK to CLK, 24 CE0 to CS/SHDN,
//! VDD and VREF to 3.3 V), and run as a user in the `spi` group.

use std::error::Error;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::SpidevDevice;
use mcp3x08::{Chip, Input, Mcp3x08, MAX_SCAN};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("read_channels: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let device = args.next().unwrap_or_else(|| "/dev/spidev0.0".into());
    let name = args.next().unwrap_or_else(|| "mcp3008".into());
    let chip: Chip = name.parse().map_err(|e| format!("{name:?}: {e}"))?;
    // 1 MHz: inputs with up to ~10 kOhm source impedance settle in the
    // chip's 1.5-clock sampling window (the chip itself goes to 3.6 MHz at 5 V).
    let clock = args.next().unwrap_or_else(|| "1000000".into());
    let clock_hz: u32 = clock.parse().map_err(|e| format!("clock {clock:?}: {e}"))?;

    let mut spi = SpidevDevice::open(&device).map_err(|e| format!("{device}: {e}"))?;
    // Mode 0,0: the chip latches DIN on rising clock edges, shifts DOUT on falling ones.
    let options = SpidevOptions::new()
        .bits_per_word(8)
        .max_speed_hz(clock_hz)
        .mode(SpiModeFlags::SPI_MODE_0)
        .build();
    spi.configure(&options).map_err(|e| format!("{device}: {e}"))?;

    let mut adc = Mcp3x08::new(spi, chip);
    let inputs: Vec<Input> = (0..chip.channels()).map(Input::Single).collect();
    let mut counts = [0u16; MAX_SCAN];
    println!(
        "{chip} on {device} at {clock_hz} Hz, counts 0..={}; Ctrl-C stops",
        chip.full_scale()
    );
    loop {
        // Through `SpiDevice`, one transaction (chip-select period) per channel.
        adc.scan(&inputs, &mut counts)?;
        let line: Vec<String> = inputs
            .iter()
            .zip(&counts)
            .map(|(input, count)| format!("{input} {count:4}"))
            .collect();
        println!("{}", line.join("  "));
        sleep(Duration::from_secs(1));
    }
}
