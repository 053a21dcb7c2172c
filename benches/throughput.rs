//! Throughput of the detector and of `flatback replay`: `cargo bench`.
//!
//! A plain `main` timed with `std::time::Instant` (no benchmark framework, to
//! keep the build light on the Pi and on small CI machines). Every loop is
//! bounded both in repetitions and in time.
//!
//! - detector: frames of a few representative simulated scenarios (500 Hz
//!   to 1 kHz, several minutes in all) are generated into memory first; only
//!   `Detector::push` (and `finish`) is timed.
//! - replay: a simulated recording is written with `RecordingWriter` as
//!   `.csv.gz` and `.csv`, then replayed along the path of `flatback replay`:
//!   `RecordingReader` (gunzip + CSV parse) -> `replay::run` -> detector ->
//!   one JSON line per event into a buffered sink (`io::sink()`).
//!
//! - sampler: the sampler thread scanning the emulated reference mat (two
//!   bit-level MCP3008 emulators, the real driver and grid scanner) unpaced,
//!   as fast as it can, into the ring, with a consumer thread draining it;
//!   SPI bus calls and conversions per frame counted in the emulators. Once
//!   with the native scan bus (one call per chip per frame, like the rppal
//!   backend's one ioctl), once through `embedded-hal`'s `SpiDevice` (one
//!   transaction per conversion).
//!
//! Aims (from the issues): detector >= 4 M frames/s on one core, replay of a
//! `.csv.gz` >= 500 k frames/s, and `flatback replay` of it no slower than
//! `zcat` of the same file (both processes, timed side by side: `replay /
//! zcat`).
//!
//! An optional argument filters the sections by name (`cargo bench --
//! replay`).

use std::hint::black_box;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use flatback::config::Config;
use flatback::contract::event::Event;
use flatback::contract::frame::{Frame, FrameSource, Grid};
use flatback::detector::Detector;
use flatback::sim::{Kind, Scenario, Simulator};
use flatback::sources::recording::{RecordingReader, RecordingWriter};
use flatback::tools::replay;

const DETECTOR_AIM: f64 = 4e6;
const REPLAY_GZ_AIM: f64 = 500e3;
/// `flatback replay` of a `.csv.gz` within this many times `zcat` of it.
const REPLAY_ZCAT_AIM: f64 = 1.0;

/// Repetitions of each timed loop: at most this many, and no new one
/// started after the section's time budget (at least one always runs).
const MAX_REPEATS: usize = 7;
const BUDGET: Duration = Duration::from_secs(20);

/// Scenarios the detector is timed on, each with seeds `SEEDS`: sets,
/// fatigue arches, a fast bouncing set, two people with an empty mat between
/// them, a faulty mat (glitches, stuck taxels, gaps) and a still person.
const DETECTOR_CASES: &[(Kind, f64)] = &[
    (Kind::ThreeSets, 1000.0),
    (Kind::Fatigue, 1000.0),
    (Kind::Bouncing, 800.0),
    (Kind::TwoPeople, 500.0),
    (Kind::Faulty, 500.0),
    (Kind::Still, 1000.0),
];
const SEEDS: std::ops::Range<u64> = 1..5;

/// The replayed recording: four people in turn, three sets each, at 1 kHz.
const REPLAY_CASE: (Kind, u64, usize, f64) = (Kind::ThreeSets, 11, 4, 1000.0);

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters sections.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    println!(
        "flatback throughput ({} profile, {} cores available)",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if wanted("detector") {
        detector_bench();
    }
    if wanted("replay") {
        replay_bench();
    }
    if wanted("sampler") {
        sampler_bench();
    }
}

/// How long each sampler run lasts.
const SAMPLER_RUN: Duration = Duration::from_secs(2);

fn sampler_bench() {
    use flatback::hardware::{EmulatedMat, GridScanner, HardwareConfig};
    use mcp3x08::emulator::Emulator;
    use mcp3x08::PerTransaction;

    let wiring = HardwareConfig::default()
        .wiring(Grid::REFERENCE)
        .expect("reference wiring");
    let pattern: Vec<u16> = (0..16).map(|i| i * 61 + 5).collect();

    // Native scans: the emulated mat as `flatback check --source sim` uses it.
    let (scanner, mat) = EmulatedMat::new(&wiring);
    mat.set_frame(&pattern);
    let counters: Vec<_> = mat.counters().to_vec();
    sampler_run(
        "sampler, native scan (1 bus call per chip)",
        scanner,
        &pattern,
        &counters,
    );

    // The same chips through `SpiDevice`, one transaction per conversion.
    let chips: Vec<Emulator> = wiring.adcs.iter().map(|_| Emulator::new(wiring.chip, 3.3)).collect();
    for chip in &chips {
        for (ch, &c) in pattern[..8].iter().enumerate() {
            chip.set_count(ch as u8, c);
        }
    }
    let counters: Vec<_> = chips.iter().map(Emulator::counters).collect();
    let scanner = GridScanner::new(&wiring, chips.into_iter().map(PerTransaction).collect(), None);
    let repeated: Vec<u16> = pattern[..8].iter().chain(&pattern[..8]).copied().collect();
    sampler_run(
        "sampler, SpiDevice (1 transaction per conversion)",
        scanner,
        &repeated,
        &counters,
    );
}

fn sampler_run<S: flatback::sampler::GridScan>(
    what: &str,
    scanner: S,
    expected: &[u16],
    counters: &[std::sync::Arc<mcp3x08::emulator::BusCounters>],
) {
    use flatback::sampler::{Sampler, SamplerConfig};
    let config = SamplerConfig {
        ring_frames: 4096,
        ..SamplerConfig::unpaced()
    };
    let (sampler, mut rx) = Sampler::start(scanner, config).expect("sampler starts");
    let expected = expected.to_vec();
    let consumer = std::thread::spawn(move || {
        let mut frame = Frame::zeroed(rx.grid());
        let mut n = 0u64;
        while rx.next_into(&mut frame).expect("emulated scans never fail") {
            assert_eq!(frame.counts, expected, "frames carry the emulated counts");
            n += 1;
        }
        n
    });
    std::thread::sleep(SAMPLER_RUN);
    let stats = sampler.stop();
    let received = consumer.join().expect("consumer");
    let frames = stats.frames.max(1) as f64;
    let calls: u64 = counters.iter().map(|c| c.bus_calls()).sum();
    let selects: u64 = counters.iter().map(|c| c.selects()).sum();
    let conversions: u64 = counters.iter().map(|c| c.conversions()).sum();
    println!(
        "{what}: {} frames/s ({:.2} us/frame) over {} frames in {:.1} s; {} received, {} overruns; per frame: {:.2} bus calls \
         ({:.2} per chip), {:.2} chip selects, {:.2} conversions",
        human(stats.rate_hz),
        1e6 / stats.rate_hz.max(1e-9),
        stats.frames,
        stats.elapsed_s,
        received,
        stats.overruns,
        calls as f64 / frames,
        calls as f64 / frames / counters.len() as f64,
        selects as f64 / frames,
        conversions as f64 / frames,
    );
}

fn generate(sc: &Scenario) -> (Grid, Vec<Frame>) {
    let mut sim = Simulator::new(sc);
    let grid = sim.grid();
    let mut frame = Frame::zeroed(grid);
    let mut frames = Vec::new();
    while sim.next_into(&mut frame).expect("the simulator never fails") {
        frames.push(frame.clone());
    }
    (grid, frames)
}

fn detector_bench() {
    let start = Instant::now();
    let cases: Vec<(Scenario, Grid, Vec<Frame>)> = DETECTOR_CASES
        .iter()
        .flat_map(|&(kind, rate)| SEEDS.map(move |seed| (kind, seed, rate)))
        .map(|(kind, seed, rate)| {
            let sc = Scenario::new(kind, seed).with_rate(rate);
            let (grid, frames) = generate(&sc);
            (sc, grid, frames)
        })
        .collect();
    let total: usize = cases.iter().map(|c| c.2.len()).sum();
    let seconds: f64 = cases
        .iter()
        .map(|(_, _, f)| f.last().map_or(0.0, |l| l.t_us as f64 * 1e-6))
        .sum();
    println!(
        "detector: {} scenarios, {total} frames ({:.1} min of data) generated in {:.1} s",
        cases.len(),
        seconds / 60.0,
        start.elapsed().as_secs_f64()
    );
    for &(kind, rate) in DETECTOR_CASES {
        let n: usize = cases.iter().filter(|c| c.0.kind == kind).map(|c| c.2.len()).sum();
        println!(
            "  {:<11} at {:>4} Hz, seeds {:?}: {:>8} frames",
            kind.name(),
            rate,
            SEEDS,
            n
        );
    }

    let config = Config::default().detector;
    let mut runs = Vec::new();
    let mut events_seen = 0;
    let budget_start = Instant::now();
    while runs.len() < MAX_REPEATS && (runs.is_empty() || budget_start.elapsed() < BUDGET) {
        let mut busy = Duration::ZERO;
        let mut events_total = 0;
        for (_, grid, frames) in &cases {
            let mut detector = Detector::new(*grid, config.clone()).expect("default config fits the grid");
            let mut events: Vec<Event> = Vec::with_capacity(16);
            let t = Instant::now();
            for f in frames {
                detector.push(black_box(f), &mut events);
                // As in `replay::run`: events are handed on every frame.
                events_total += events.len();
                events.clear();
            }
            detector.finish(&mut events);
            busy += t.elapsed();
            events_total += events.len();
            black_box(&events);
        }
        events_seen = events_total;
        runs.push(busy);
    }
    report("detector", total as u64, &runs, Some(DETECTOR_AIM));
    println!("  ({events_seen} events per pass)");
}

fn replay_bench() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (kind, seed, people, rate) = REPLAY_CASE;
    let sc = Scenario::new(kind, seed).with_people(people).with_rate(rate);
    let (grid, frames) = generate(&sc);
    for name in ["replay.csv.gz", "replay.csv"] {
        let path = dir.path().join(name);
        let t = Instant::now();
        write_recording(&path, grid, &frames);
        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        println!(
            "replay: {name}: {} seed {seed}, {people} people, at {rate} Hz, {} frames, {:.1} MB, written in {:.1} s",
            kind.name(),
            frames.len(),
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );

        // Reading alone (decompression + CSV parse), for the breakdown.
        let runs = repeat(|| {
            let mut reader = RecordingReader::open(&path).expect("open recording");
            let mut frame = Frame::zeroed(reader.grid());
            let mut n = 0u64;
            while reader.next_into(&mut frame).expect("valid recording") {
                n += 1;
            }
            black_box(&frame);
            n
        });
        check_frames(&runs, frames.len());
        report(
            &format!("  read only ({name})"),
            frames.len() as u64,
            &times(&runs),
            None,
        );

        // The whole replay path.
        let aim = name.ends_with(".gz").then_some(REPLAY_GZ_AIM);
        let runs = repeat(|| replay_file(&path));
        check_frames(&runs, frames.len());
        report(&format!("replay ({name})"), frames.len() as u64, &times(&runs), aim);
        if name.ends_with(".gz") {
            against_zcat(&path);
        }
    }
}

/// The decompression floor: `flatback replay FILE > /dev/null` against
/// `zcat FILE > /dev/null` on the same file, both as processes, run in
/// turn (so that a busy machine slows both alike); the best of each.
fn against_zcat(path: &Path) {
    let run = |cmd: &str, args: &[&std::ffi::OsStr]| -> Option<Duration> {
        let t = Instant::now();
        let status = std::process::Command::new(cmd)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| t.elapsed())
    };
    let flatback = env!("CARGO_BIN_EXE_flatback");
    let (mut zcat, mut replay) = (Vec::new(), Vec::new());
    let start = Instant::now();
    while zcat.len() < 2 * MAX_REPEATS && (zcat.is_empty() || start.elapsed() < BUDGET) {
        let Some(z) = run("zcat", &[path.as_os_str()]) else {
            println!("replay / zcat: no zcat on this machine");
            return;
        };
        zcat.push(z);
        replay.push(run(flatback, &["replay".as_ref(), path.as_os_str()]).expect("flatback replay runs"));
    }
    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let (z, r) = (best(&zcat), best(&replay));
    println!(
        "replay / zcat: {:.2} (flatback replay {:.1} ms, zcat {:.1} ms, best of {} each, side by side; aim <= {REPLAY_ZCAT_AIM})",
        r.as_secs_f64() / z.as_secs_f64().max(1e-9),
        r.as_secs_f64() * 1e3,
        z.as_secs_f64() * 1e3,
        zcat.len()
    );
}

fn write_recording(path: &Path, grid: Grid, frames: &[Frame]) {
    let mut writer = RecordingWriter::create(path, grid).expect("create recording");
    for f in frames {
        writer.write_frame(f).expect("write frame");
    }
    writer.close().expect("close recording");
}

/// What `flatback replay FILE` does (src/cmd/replay.rs `run`), with a sink
/// for stdout: open, detect, one JSON line per event, buffered.
fn replay_file(path: &Path) -> u64 {
    let mut source = RecordingReader::open(path).expect("open recording");
    let mut detector = Detector::new(source.grid(), Config::default().detector).expect("default config fits");
    let mut out = BufWriter::new(io::sink());
    let stats = replay::run(&mut source, &mut detector, |e| {
        writeln!(out, "{}", e.to_json()).expect("write to sink");
    })
    .expect("valid recording");
    out.flush().expect("flush sink");
    assert!(stats.events > 0, "the replayed recording has events");
    stats.frames
}

/// Runs `f` (which returns the frames it processed) at most `MAX_REPEATS`
/// times within the time budget.
fn repeat(mut f: impl FnMut() -> u64) -> Vec<(Duration, u64)> {
    let mut runs = Vec::new();
    let start = Instant::now();
    while runs.len() < MAX_REPEATS && (runs.is_empty() || start.elapsed() < BUDGET) {
        let t = Instant::now();
        let n = f();
        runs.push((t.elapsed(), n));
    }
    runs
}

fn check_frames(runs: &[(Duration, u64)], expected: usize) {
    for &(_, n) in runs {
        assert_eq!(n, expected as u64, "every frame written is read back");
    }
}

fn times(runs: &[(Duration, u64)]) -> Vec<Duration> {
    runs.iter().map(|r| r.0).collect()
}

/// Prints best and median rates of `runs` (each over `frames` frames).
fn report(what: &str, frames: u64, runs: &[Duration], aim: Option<f64>) {
    let mut sorted = runs.to_vec();
    sorted.sort();
    let best = sorted[0];
    let median = sorted[sorted.len() / 2];
    let rate = |d: Duration| frames as f64 / d.as_secs_f64().max(1e-9);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / frames.max(1) as f64;
    let verdict = match aim {
        Some(a) if rate(best) >= a => format!(", aim >= {} met", human(a)),
        Some(a) => format!(", aim >= {} NOT met", human(a)),
        None => String::new(),
    };
    println!(
        "{what}: {} frames/s ({:.3} us/frame) over {frames} frames, best of {}; median {} frames/s ({:.3} us/frame){verdict}",
        human(rate(best)),
        per(best),
        runs.len(),
        human(rate(median)),
        per(median),
    );
}

fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else {
        format!("{:.0} k", rate / 1e3)
    }
}
