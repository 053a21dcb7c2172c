//! `flatback check` and `flatback record --source spi` from the command
//! line: the simulated mat through emulated chips, and the messages on a
//! machine without SPI.

mod common;

use std::path::Path;

#[test]
fn check_on_the_simulator_prints_snapshots_and_exits_0() {
    let out = common::run(&["check", "--source", "sim", "--seconds", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "no escapes when stdout is not a terminal");
    assert_eq!(text.matches("t = ").count(), 2, "a snapshot a second: {text}");
    assert!(
        text.contains("emulated mcp3008 x2 on SPI0 CE0, SPI0 CE1, 4x4 grid"),
        "{text}"
    );
    for row in ["r0 ", "r1 ", "r2 ", "r3 "] {
        assert!(text.lines().any(|l| l.starts_with(row)), "{row}: {text}");
    }
    assert!(text.contains("frames/s (target 200)"), "{text}");
    // The first person is on the mat: the grid reads loads, not zeros.
    let last_r2 = text.lines().rfind(|l| l.starts_with("r2 ")).unwrap();
    let loads: Vec<u32> = last_r2
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(loads.len(), 4, "{last_r2}");
    assert!(loads.iter().all(|&c| c > 30), "{last_r2}");
}

#[test]
fn check_on_a_simulated_matrix_from_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("matrix.toml");
    std::fs::write(
        &cfg,
        "[detector]\nadc_bits = 12\n\n[hardware]\nwiring = \"matrix\"\nchip = \"mcp3208\"\nrate_hz = 100.0\n\n\
         [[hardware.adc]]\nchannels = [\"c0\", \"c1\", \"c2\", \"c3\"]\n\n[hardware.matrix]\nrow_pins = [5, 6, 13, 26]\n",
    )
    .unwrap();
    let out = common::run(&[
        "check",
        "--source",
        "sim",
        "--seconds",
        "1",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("mcp3208 x1 on SPI0 CE0, 4x4 grid, row-scanned"), "{text}");
    assert!(text.contains("(target 100)"), "{text}");
}

#[test]
fn a_bad_wiring_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[hardware]\nchip = \"mcp3208\"\n").unwrap();
    let out = common::run(&["check", "--source", "sim", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[detector] adc_bits = 10: set adc_bits = 12"), "{err}");
}

#[test]
fn without_spi_check_and_record_say_how_to_enable_it() {
    if Path::new("/dev/spidev0.0").exists() {
        eprintln!("this machine has /dev/spidev0.0: nothing to test here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("mat.csv");
    for args in [vec!["check"], vec!["record", "--source", "spi", rec.to_str().unwrap()]] {
        let out = common::run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("/dev/spidev0.0 not found: add dtparam=spi=on to /boot/firmware/config.txt and reboot"),
            "{args:?}: {err}"
        );
        assert!(err.contains("sudo adduser $USER spi"), "{err}");
    }
    assert!(!rec.exists(), "no empty recording left behind");
}

#[test]
fn check_has_help() {
    let out = common::run(&["check", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--source") && text.contains("--seconds"), "{text}");
}

#[test]
fn recording_through_the_sampler_writes_the_contract_format() {
    use flatback::contract::frame::{Frame, FrameSource};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.csv.gz");
    let config = flatback::config::Config::default();
    let three_sets = flatback::sources::LiveInput::Sim {
        kind: flatback::sim::Kind::ThreeSets,
        seed: 1,
    };
    flatback::cmd::record::live(&config, &three_sets, Some(1.0), &file).unwrap();
    let mut r = flatback::sources::recording::RecordingReader::open(&file).unwrap();
    assert_eq!(r.grid(), flatback::contract::frame::Grid::REFERENCE);
    let mut f = Frame::zeroed(r.grid());
    let (mut n, mut last) = (0, None);
    while r.next_into(&mut f).unwrap() {
        assert!(last.is_none_or(|l| f.t_us > l));
        last = Some(f.t_us);
        n += 1;
    }
    // 1 s at the configured 200 Hz.
    assert!((195..=202).contains(&n), "{n} frames");
    assert!(last.unwrap() <= 1_000_000);
}
