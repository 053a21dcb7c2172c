//! The sampler at 1 kHz on the emulated reference mat (driver, scanner and
//! bit-level chips all running): rate, timestamps, overruns, with a consumer
//! that keeps up and with one that stalls.

use std::time::Duration;

use flatback::contract::frame::{Frame, FrameSource, Grid};
use flatback::hardware::{EmulatedMat, HardwareConfig};
use flatback::sampler::{Sampler, SamplerConfig, SamplerStats};

const RATE: f64 = 1000.0;
/// How long each run lasts: the test's length, not a synchronisation.
const RUN: Duration = Duration::from_secs(3);

fn pattern() -> Vec<u16> {
    (0..16).map(|i| i * 60 + 3).collect()
}

fn emulated_reference() -> (
    flatback::hardware::GridScanner<mcp3x08::emulator::Emulator>,
    EmulatedMat,
) {
    let wiring = HardwareConfig::default().wiring(Grid::REFERENCE).unwrap();
    let (scanner, mat) = EmulatedMat::new(&wiring);
    mat.set_frame(&pattern());
    (scanner, mat)
}

fn assert_rate(stats: &SamplerStats) {
    assert!(
        (stats.rate_hz - RATE).abs() <= 0.02 * RATE,
        "achieved {:.1} Hz, target {RATE}: {}",
        stats.rate_hz,
        stats.summary()
    );
    // About RUN's worth of frames (3000 at 1 kHz).
    let expected = RUN.as_secs_f64() * RATE;
    assert!(stats.frames as f64 >= 0.9 * expected, "{}", stats.summary());
}

#[test]
fn at_1_khz_with_a_consumer_that_keeps_up() {
    let (scanner, mat) = emulated_reference();
    let (sampler, mut rx) = Sampler::start(scanner, SamplerConfig::at(RATE)).unwrap();
    let consumer = std::thread::spawn(move || {
        let mut frame = Frame::zeroed(rx.grid());
        let mut last = None;
        let mut n = 0u64;
        let mut backwards = 0;
        let mut wrong = 0;
        while rx.next_into(&mut frame).unwrap() {
            if last.is_some_and(|l| frame.t_us <= l) {
                backwards += 1;
            }
            if frame.counts != pattern() {
                wrong += 1;
            }
            last = Some(frame.t_us);
            n += 1;
        }
        (n, backwards, wrong, last)
    });
    std::thread::sleep(RUN);
    let stats = sampler.stop();
    let (received, backwards, wrong, last) = consumer.join().unwrap();
    eprintln!("keeps up: {}", stats.summary());
    assert_eq!(backwards, 0, "timestamps strictly increase");
    assert_eq!(wrong, 0, "every frame reads the emulated taxels");
    assert_eq!(stats.overruns, 0, "{}", stats.summary());
    assert_eq!(received, stats.frames, "every frame scanned reached the consumer");
    assert_rate(&stats);
    // Timestamps span the run at the sampler's rate.
    let span_s = last.unwrap() as f64 * 1e-6;
    assert!(
        (span_s - stats.elapsed_s).abs() < 0.01,
        "{span_s} vs {}",
        stats.elapsed_s
    );
    // One bus call (one ioctl on the Pi) per chip per frame.
    for c in mat.counters() {
        assert_eq!(c.bus_calls(), stats.frames);
        assert_eq!(c.conversions(), 8 * stats.frames);
    }
    assert!(stats.jitter_p50_us <= stats.jitter_p99_us && stats.jitter_p99_us <= stats.jitter_max_us);
}

#[test]
fn at_1_khz_with_a_stalled_consumer_overruns_are_counted_and_the_rate_holds() {
    let (scanner, _mat) = emulated_reference();
    let ring = 256;
    let config = SamplerConfig {
        ring_frames: ring,
        ..SamplerConfig::at(RATE)
    };
    let (sampler, mut rx) = Sampler::start(scanner, config).unwrap();
    std::thread::sleep(RUN);
    let stats = sampler.stop();
    eprintln!("stalled: {}", stats.summary());
    assert_rate(&stats);
    assert_eq!(stats.overruns, stats.frames - ring as u64, "{}", stats.summary());
    // The ring holds the first frames, in order; then the stream ends.
    let mut frame = Frame::zeroed(Grid::REFERENCE);
    let mut n = 0;
    let mut last = None;
    while rx.next_into(&mut frame).unwrap() {
        assert!(last.is_none_or(|l| frame.t_us > l));
        assert_eq!(frame.counts, pattern());
        last = Some(frame.t_us);
        n += 1;
    }
    assert_eq!(n, ring);
}
