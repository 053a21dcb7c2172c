//! Issue 13: fuzzing of what reads outside input, bounded in time, from
//! seeds kept in the repository (`tests/fuzz/<target>/`).
//!
//! A coverage-blind mutation loop (stable Rust; `cargo fuzz` needs a
//! nightly toolchain) over the real parsers:
//!
//! - the recording reader: the dev recordings (their first lines), small
//!   generated ones and the seeds, mutated, read as text and gzipped: never
//!   a panic; an error names the file and, for a line, the line;
//! - the configuration loader (with the whole-config check): the default
//!   configuration and the seeds, mutated: `Ok` or an error naming the file
//!   and a line or a key, never a panic;
//! - the MQTT command parser and the topic parser: never a panic, only the
//!   three commands accepted.
//!
//! Each target runs from fixed seeds for at most 4 s or its number of
//! iterations (a few seconds in all), so CI time stays bounded and a
//! failure fails every run. `FUZZ_SEED=n` explores other mutations,
//! `FUZZ_SECONDS=s` runs each target for s seconds, however many inputs
//! that is (25 s with seed 7: 2.8 million commands, 157,000 configurations,
//! 93,000 recordings, no failure). A failing input is written to
//! `fuzz-failures/` in Cargo's temporary directory for tests
//! (`CARGO_TARGET_TMPDIR`) and its path printed: add it to the seeds once
//! fixed (`recording/huge-grid.csv` is the one it found).

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flatback::config::Config;
use flatback::contract::frame::{Frame, FrameSource, Grid};
use flatback::sources::recording::RecordingReader;
use flatback::wire::commands::{self, MatCommand};

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Tokens that parsers get wrong: separators, numbers at and past the
/// limits of their types, TOML's syntax.
const DICTIONARY: &[&str] = &[
    ",",
    "\n",
    "\r\n",
    "\"",
    "=",
    "[",
    "]",
    "[[",
    "]]",
    ".",
    "-",
    "+",
    " ",
    "\t",
    "#",
    "0",
    "-1",
    "1e309",
    "nan",
    "inf",
    "-0",
    "65535",
    "65536",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "r0c0",
    "r4294967295c4294967295",
    "r18446744073709551615c0",
    "r99999999999c99999999999",
    "t_us",
    "true",
    "'",
    "'''",
    "\"\"\"",
    "\\u0000",
    "\u{feff}",
    "\u{0}",
    "\u{10ffff}",
    "é",
    "{",
    "}",
    "command",
    "reset_counters",
    "new_set",
    "rereference",
    "[[mats]]",
    "[mqtt]",
    "[mat]",
    "[detector]",
    "[hardware]",
    "source = \"replay\"",
    "source = \"sim\"",
    "file = \"/dev/null\"",
    "rows = 0",
    "cols = 65",
    "id = \"\"",
];

/// One random change to `input`; `others` for splices.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, others: &[Vec<u8>]) {
    let len = input.len();
    match rng.below(9) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = rng.next() as u8;
        }
        2 => {
            let i = rng.below(len + 1);
            let t = DICTIONARY[rng.below(DICTIONARY.len())].as_bytes();
            input.splice(i..i, t.iter().copied());
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            input.drain(i..i + n);
        }
        4 if len > 0 => {
            // A range repeated: long lines, many fields.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(256));
            let piece: Vec<u8> = input[i..i + n].to_vec();
            let at = rng.below(len + 1);
            for _ in 0..1 + rng.below(4) {
                input.splice(at..at, piece.iter().copied());
            }
        }
        5 if !others.is_empty() => {
            let other = &others[rng.below(others.len())];
            if !other.is_empty() {
                let i = rng.below(other.len());
                let n = 1 + rng.below((other.len() - i).min(512));
                let at = rng.below(len + 1);
                input.splice(at..at, other[i..i + n].iter().copied());
            }
        }
        6 if len > 0 => input.truncate(rng.below(len)),
        7 if len > 0 => {
            // A digit changed into another: numbers out of order or range.
            let digits: Vec<usize> = (0..len).filter(|&i| input[i].is_ascii_digit()).collect();
            if !digits.is_empty() {
                let i = digits[rng.below(digits.len())];
                input[i] = b'0' + rng.below(10) as u8;
            }
        }
        _ => {
            let i = rng.below(len + 1);
            input.insert(i, rng.next() as u8);
        }
    }
}

fn seconds() -> Duration {
    let s = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(4.0);
    Duration::from_secs_f64(s)
}

fn base_seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(13)
}

/// The seeds kept for `target`: every file of `tests/fuzz/<target>/`.
fn kept_seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz").join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no seeds in {}", dir.display());
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Writes a failing input where it can be found again.
fn keep_failure(target: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{target}-{:016x}", fnv(input)));
    std::fs::write(&path, input).unwrap();
    path
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Runs `check` on the seeds, then on mutations of them (1 to 8 changes
/// each) until the time or `max` inputs; a panic or an `Err` fails with
/// the input kept.
fn fuzz(target: &str, seeds: Vec<Vec<u8>>, max: usize, check: impl Fn(&[u8]) -> Result<(), String>) {
    let run = |input: &[u8]| match catch_unwind(AssertUnwindSafe(|| check(input))) {
        Ok(Ok(())) => {}
        Ok(Err(why)) => {
            let path = keep_failure(target, input);
            panic!("{target}: {why}\n(the input: {})", path.display());
        }
        Err(_) => {
            let path = keep_failure(target, input);
            panic!("{target}: a panic on the input kept in {}", path.display());
        }
    };
    for s in &seeds {
        run(s);
    }
    let mut rng = Rng::new(base_seed() ^ fnv(target.as_bytes()));
    let until = Instant::now() + seconds();
    // A run asked for by time (FUZZ_SECONDS) is not capped by a count.
    let max = if std::env::var_os("FUZZ_SECONDS").is_some() {
        usize::MAX
    } else {
        max
    };
    let mut n = 0;
    while n < max && Instant::now() < until {
        let mut input = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(8) {
            mutate(&mut rng, &mut input, &seeds);
        }
        run(&input);
        n += 1;
    }
    eprintln!("{target}: {} seeds and {n} mutations, no failure", seeds.len());
}

/// Reads a whole recording; an error must name the file, and the line
/// when it is about one.
fn read_recording(
    name: &str,
    reader: Result<RecordingReader, flatback::sources::recording::RecordingError>,
) -> Result<(), String> {
    let check_error = |e: &flatback::sources::recording::RecordingError| {
        use flatback::sources::recording::ErrorKind;
        let text = e.to_string();
        if !text.starts_with(name) {
            return Err(format!("the error does not name the file: {text}"));
        }
        let about_a_line = !matches!(e.kind, ErrorKind::Io(_) | ErrorKind::Empty);
        if about_a_line && (e.line == 0 || !text.contains(&format!("line {}", e.line))) {
            return Err(format!("the error does not name the line: {text}"));
        }
        Ok(())
    };
    let mut r = match reader {
        Ok(r) => r,
        Err(e) => return check_error(&e),
    };
    let grid = r.grid();
    if grid.rows == 0 || grid.cols == 0 {
        return Err(format!("an empty grid {grid} accepted"));
    }
    let mut frame = Frame::zeroed(grid);
    let mut last = None;
    for _ in 0..100_000 {
        match r.read_frame(&mut frame) {
            Ok(true) => {
                if frame.counts.len() != grid.len() {
                    return Err(format!("{} counts for a {grid} grid", frame.counts.len()));
                }
                if last.is_some_and(|l| frame.t_us <= l) {
                    return Err(format!("t_us {} after {last:?} accepted", frame.t_us));
                }
                last = Some(frame.t_us);
            }
            Ok(false) => return Ok(()),
            Err(e) => return check_error(&e),
        }
    }
    Ok(())
}

/// A small recording of `grid`: a header and `n` frames.
fn generated_recording(grid: Grid, n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut s = grid.taxel_names().fold("t_us".to_string(), |s, n| s + "," + &n);
    s.push('\n');
    let mut t = rng.below(1000) as u64;
    for _ in 0..n {
        s.push_str(&t.to_string());
        for _ in 0..grid.len() {
            s.push_str(&format!(",{}", rng.below(1024)));
        }
        s.push('\n');
        t += 1 + rng.below(10_000) as u64;
    }
    s.into_bytes()
}

/// The first `lines` lines of a dev recording.
fn head_of(path: &Path, lines: usize) -> Vec<u8> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).unwrap();
    let input: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut out = Vec::new();
    for line in std::io::BufReader::new(input).lines().take(lines) {
        out.extend_from_slice(line.unwrap().as_bytes());
        out.push(b'\n');
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn the_recording_reader_never_panics_and_its_errors_name_the_line() {
    let mut seeds = kept_seeds("recording");
    let dev = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/dev");
    if dev.is_dir() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dev)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".csv.gz"))
            .collect();
        paths.sort();
        seeds.extend(paths.iter().map(|p| head_of(p, 40)));
    } else {
        eprintln!("no ../shared/data/dev: fuzzing from the kept and generated seeds only");
    }
    for (i, (r, c)) in [(4, 4), (1, 1), (2, 3), (8, 8)].into_iter().enumerate() {
        seeds.push(generated_recording(Grid::new(r, c), 5, i as u64));
    }
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("fuzz.csv.gz");
    let counter = std::cell::Cell::new(0u64);
    fuzz("recording", seeds, 20_000, |input| {
        counter.set(counter.get() + 1);
        read_recording(
            "fuzz.csv",
            RecordingReader::from_reader("fuzz.csv", std::io::Cursor::new(input.to_vec())),
        )?;
        // One in 16 through a file, gzipped, its end sometimes cut off.
        if counter.get() % 16 == 0 {
            let mut z = gzip(input);
            if counter.get() % 32 == 0 {
                z.truncate(z.len() * 2 / 3);
            }
            std::fs::write(&gz, z).unwrap();
            read_recording(&gz.display().to_string(), RecordingReader::open(&gz))?;
        }
        Ok(())
    });
}

/// `origin: [line N:] key: message` or TOML's own `origin: TOML parse
/// error at line N`: the file, and a line or a key.
fn names_where(e: &str, origin: &str) -> bool {
    let Some(rest) = e.strip_prefix(origin).and_then(|r| r.strip_prefix(':')) else {
        return false;
    };
    if rest.contains("line ") {
        return true;
    }
    // A key left to its default has no line: then the key, before a colon.
    rest.trim_start()
        .split_once(": ")
        .is_some_and(|(key, _)| !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c)))
}

#[test]
fn the_config_loader_never_panics_and_its_errors_name_the_line_or_key() {
    let mut seeds = kept_seeds("config");
    seeds.push(flatback::config::DEFAULT_TOML.as_bytes().to_vec());
    fuzz("config", seeds, 5_000, |input| {
        let text = String::from_utf8_lossy(input);
        match Config::parse_with(&text, "fuzz.toml", flatback::daemon::config_checks::config) {
            Ok(c) => {
                // What passed the checks is usable: the mats have ids.
                let mats = c.mats();
                if mats.is_empty() {
                    return Err("a configuration without a mat".into());
                }
                Ok(())
            }
            Err(e) if names_where(&e.0, "fuzz.toml") => Ok(()),
            Err(e) => Err(format!("the error names neither a line nor a key: {}", e.0)),
        }
    });
}

#[test]
fn the_command_and_topic_parsers_never_panic_and_accept_only_the_commands() {
    let seeds = kept_seeds("command");
    fuzz("command", seeds, 200_000, |input| {
        for retained in [false, true] {
            match commands::parse_message(input, retained) {
                Ok(c) => {
                    if retained {
                        return Err("a retained command accepted".into());
                    }
                    let text = std::str::from_utf8(input).map_err(|_| "not UTF-8 accepted")?.trim();
                    let json = format!("\"{}\"", c.name());
                    if text != c.name() && !(text.starts_with('{') && text.contains(&json)) {
                        return Err(format!("{text:?} accepted as {}", c.name()));
                    }
                    if !MatCommand::ALL.contains(&c) {
                        return Err(format!("{c:?} is not one of the commands"));
                    }
                }
                Err(e) => {
                    if e.to_string().is_empty() || e.kind().is_empty() {
                        return Err(format!("{e:?} says nothing"));
                    }
                }
            }
        }
        // The same bytes as a topic.
        let topic = String::from_utf8_lossy(input);
        let _ = flatback::wire::topics::parse("flatback", &topic);
        let _ = flatback::wire::topics::matches("flatback/+/m1/#", &topic);
        Ok(())
    });
}
