//! The cue at the mat on emulated pins, through the daemon's own per-frame
//! path (`Pipeline`, with the cue `cue::for_mat` builds for a replayed mat):
//! over every dev recording, the buzzer's on-edge is on the frame whose event
//! was the `arch` start (the events of `flatback replay`), for every arch; the
//! red LED is lit exactly while arching, the green one exactly while someone
//! lies flat; with tempo, the other on-edges are ticks during descents; and
//! with no `[mats.cue]` no pin is claimed or written. `flatback check --cue`
//! from the command line, and bad cue pins in a configuration file.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use flatback::config::{Config, MatEntry, MatSourceKind};
use flatback::contract::event::{Event, Phase};
use flatback::contract::frame::{Frame, FrameSource};
use flatback::daemon::cue;
use flatback::daemon::pipeline::Pipeline;
use flatback::detector::Detector;
use flatback::hardware::{EmulatedGpio, PinEdge};
use flatback::outbox::{Journal, Outbox};
use flatback::sources::RecordingReader;

const BUZZER: u8 = 22;
const GREEN: u8 = 23;
const RED: u8 = 24;

/// What the detector saw on each frame, found apart from the pipeline.
struct Reference {
    /// Each frame's time.
    t_us: Vec<u64>,
    /// Arching after each frame (the detector's flag).
    in_arch: Vec<bool>,
    /// Someone flat on the mat with the reference taken.
    flat: Vec<bool>,
    /// The legs being lowered (the detector's descent under way).
    descending: Vec<bool>,
    /// Frames whose events held an `arch` start / end.
    arch_starts: Vec<usize>,
    arch_ends: Vec<usize>,
}

fn reference(file: &Path, config: &Config) -> Reference {
    let mut source = RecordingReader::open(file).unwrap();
    let mut det = Detector::new(source.grid(), config.detector.clone()).unwrap();
    let mut frame = Frame::zeroed(source.grid());
    let mut events = Vec::new();
    let mut r = Reference {
        t_us: vec![],
        in_arch: vec![],
        flat: vec![],
        descending: vec![],
        arch_starts: vec![],
        arch_ends: vec![],
    };
    let mut all = Vec::new();
    while source.next_into(&mut frame).unwrap() {
        det.push(&frame, &mut events);
        let probe = det.probe();
        let k = r.t_us.len();
        for e in events.drain(..) {
            if let Event::Arch(a) = &e {
                assert_eq!(a.t_ms, frame.t_us / 1000, "an event's t_ms is its frame's");
                match a.phase {
                    Phase::Start => r.arch_starts.push(k),
                    Phase::End => r.arch_ends.push(k),
                }
            }
            all.push(e);
        }
        r.t_us.push(frame.t_us);
        r.in_arch.push(probe.in_arch);
        r.flat.push(probe.occupied && probe.settled && !probe.in_arch);
        r.descending.push(det.descent_ms().is_some());
    }
    det.finish(&mut all);
    // The same events as `flatback replay`.
    let mut source = RecordingReader::open(file).unwrap();
    let mut det = Detector::new(source.grid(), config.detector.clone()).unwrap();
    let replayed = flatback::tools::replay::collect(&mut source, &mut det).unwrap();
    assert_eq!(all, replayed, "{}", file.display());
    let starts = replayed
        .iter()
        .filter(|e| matches!(e, Event::Arch(a) if a.phase == Phase::Start))
        .count();
    assert_eq!(starts, r.arch_starts.len());
    r
}

/// A replayed mat of `text`'s configuration (its first `[[mats]]`).
fn mat_of(text: &str, file: &Path) -> (Config, MatEntry) {
    let config = Config::parse(text, "test.toml").unwrap();
    let mut mat = config.mats()[0].clone();
    assert_eq!(mat.source, MatSourceKind::Replay);
    mat.file = Some(file.to_path_buf());
    (config, mat)
}

/// Runs `file` through the daemon's pipeline with the cue `cue::for_mat`
/// makes for `mat` on `gpio`; the pins all off at the end.
fn run_pipeline(file: &Path, config: &Config, mat: &MatEntry, gpio: &EmulatedGpio) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Journal::open(dir.path(), 1 << 20).unwrap();
    let (_outbox, mut links) = Outbox::new(store, std::slice::from_ref(&mat.id));
    let link = links.remove(0);
    let mut source = RecordingReader::open(file).unwrap();
    let mut pipeline = Pipeline::new(source.grid(), &config.detector).unwrap();
    pipeline.set_cue(cue::for_mat(mat, gpio).unwrap());
    let stop = AtomicBool::new(false);
    let stopped = pipeline.feed(&mut source, &link, &stop, |_| {}).unwrap();
    assert!(!stopped, "the recording ends");
    pipeline.finish(&link);
}

/// The frames (indices) where `pin` went high, and where low.
fn edges_at(edges: &[PinEdge], pin: u8, r: &Reference) -> (Vec<usize>, Vec<usize>) {
    let (mut up, mut down) = (vec![], vec![]);
    for e in edges.iter().filter(|e| e.pin == pin) {
        // (The pins go off when the mat stops, stamped with its last frame.)
        let k = r
            .t_us
            .binary_search(&e.t_us)
            .unwrap_or_else(|_| panic!("GPIO{pin}: an edge at {} us, on no frame", e.t_us));
        if e.high {
            up.push(k);
        } else {
            down.push(k);
        }
    }
    (up, down)
}

/// The frames where `level` turns on and off.
fn changes(level: &[bool]) -> (Vec<usize>, Vec<usize>) {
    let (mut on, mut off) = (vec![], vec![]);
    let mut was = false;
    for (k, &l) in level.iter().enumerate() {
        if l && !was {
            on.push(k);
        } else if !l && was {
            off.push(k);
        }
        was = l;
    }
    (on, off)
}

/// The pin's level after each frame, from its edges.
fn levels(edges: &[PinEdge], pin: u8, r: &Reference) -> Vec<bool> {
    let mut out = Vec::with_capacity(r.t_us.len());
    let mut it = edges.iter().filter(|e| e.pin == pin).peekable();
    let mut level = false;
    for &t in &r.t_us {
        while let Some(e) = it.next_if(|e| e.t_us <= t) {
            level = e.high;
        }
        out.push(level);
    }
    out
}

fn cue_config(tempo: bool) -> String {
    format!(
        "[[mats]]\nid = \"mat1\"\nsource = \"replay\"\nfile = \"x.csv.gz\"\nrepeat = false\n\n\
         [mats.cue]\nbuzzer = {BUZZER}\nled_green = {GREEN}\nled_red = {RED}\ntempo = {tempo}\n"
    )
}

#[test]
fn the_buzzer_sounds_on_the_arch_start_frame_and_the_led_follows_every_dev_recording() {
    let mut arches = 0;
    let mut summary = Vec::new();
    for file in common::dev_recordings() {
        let (config, mat) = mat_of(&cue_config(false), &file);
        let r = reference(&file, &config);
        let gpio = EmulatedGpio::new();
        run_pipeline(&file, &config, &mat, &gpio);
        let edges = gpio.edges();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(gpio.opened(), vec![BUZZER, GREEN, RED], "{name}");

        // The buzzer: an on-edge on every arch start's frame, and no other.
        let (buzz_on, _) = edges_at(&edges, BUZZER, &r);
        assert_eq!(buzz_on, r.arch_starts, "{name}: buzzer on-edges vs arch start frames");
        arches += r.arch_starts.len();
        // ...sounding 300 ms from it (60 frames at 200 Hz), give or take a frame.
        let buzzer = levels(&edges, BUZZER, &r);
        for &k in &r.arch_starts {
            let on_until = (k..r.t_us.len()).find(|&j| !buzzer[j]).unwrap_or(r.t_us.len());
            let lasted_ms = (r.t_us[on_until.min(r.t_us.len() - 1)] - r.t_us[k]) / 1000;
            assert!(
                (300..=350).contains(&lasted_ms) || on_until == r.t_us.len(),
                "{name}: {lasted_ms} ms"
            );
        }

        // The red LED: lit exactly while the detector says arching, turned
        // on by the arch start's frame and off by the arch end's.
        // (The last frame left out: the pins go off after it, stamped with
        // its time.)
        let n = r.t_us.len() - 1;
        assert_eq!(levels(&edges, RED, &r)[..n], r.in_arch[..n], "{name}: red vs arching");
        let (red_on, red_off) = changes(&r.in_arch);
        assert_eq!(red_on, r.arch_starts, "{name}: red on at the arch starts");
        let ends: BTreeSet<usize> = r.arch_ends.iter().copied().collect();
        let unexplained: Vec<usize> = red_off.iter().filter(|k| !ends.contains(k)).copied().collect();
        assert!(
            unexplained.is_empty(),
            "{name}: red off with no arch end at frames {unexplained:?}"
        );
        // The green one: exactly while someone lies flat.
        assert_eq!(levels(&edges, GREEN, &r)[..n], r.flat[..n], "{name}: green vs flat");
        assert!(
            r.flat.iter().any(|&f| f) || name.starts_with("still"),
            "{name}: never flat?"
        );

        // Everything off once the mat stops.
        for pin in [BUZZER, GREEN, RED] {
            let last = edges.iter().rfind(|e| e.pin == pin);
            assert!(last.is_none_or(|e| !e.high), "{name}: GPIO{pin} left on");
        }
        // Each write a change: as many writes as edges (plus two for each
        // new sound over one still on: none without tempo).
        assert_eq!(gpio.writes(), edges.len() as u64, "{name}: writes only on change");
        summary.push(format!(
            "{name}: {} arches, {} red, {} green edges",
            r.arch_starts.len(),
            red_on.len() + red_off.len(),
            edges.iter().filter(|e| e.pin == GREEN).count()
        ));
    }
    eprintln!("{}", summary.join("\n"));
    eprintln!("{arches} arches, each with the buzzer's on-edge on its frame");
    assert!(arches >= 10, "the dev recordings hold arches: {arches}");
}

#[test]
fn tempo_ticks_only_while_the_legs_are_lowered_and_arches_still_beep_on_their_frame() {
    let (mut ticks, mut arches) = (0, 0);
    for file in common::dev_recordings() {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if !["clean_set", "rushed", "three_sets", "fatigue"]
            .iter()
            .any(|k| name.starts_with(k))
        {
            continue;
        }
        let (config, mat) = mat_of(&cue_config(true), &file);
        let r = reference(&file, &config);
        let gpio = EmulatedGpio::new();
        run_pipeline(&file, &config, &mat, &gpio);
        let (buzz_on, _) = edges_at(&gpio.edges(), BUZZER, &r);
        let on: BTreeSet<usize> = buzz_on.iter().copied().collect();
        for &k in &r.arch_starts {
            assert!(on.contains(&k), "{name}: no on-edge on the arch start frame {k}");
        }
        let starts: BTreeSet<usize> = r.arch_starts.iter().copied().collect();
        let tick_frames: Vec<usize> = buzz_on.iter().filter(|k| !starts.contains(k)).copied().collect();
        // A tick when a descent is seen (it began a little earlier), then
        // one a second of it: after the first, ticks in one descent are a
        // second apart (two over a beep that silenced one).
        let mut first_of_descent = true;
        for w in tick_frames.windows(2) {
            let gap_ms = (r.t_us[w[1]] - r.t_us[w[0]]) / 1000;
            let same_descent = (w[0]..=w[1]).all(|j| r.descending[j]);
            if same_descent {
                assert!(gap_ms <= 2010, "{name}: ticks {gap_ms} ms apart in one descent");
                assert!(
                    first_of_descent || gap_ms >= 980,
                    "{name}: ticks {gap_ms} ms apart in one descent"
                );
            }
            first_of_descent = !same_descent;
        }
        for &k in &tick_frames {
            assert!(r.descending[k], "{name}: a tick at frame {k}, not in a descent");
        }
        ticks += tick_frames.len();
        arches += r.arch_starts.len();
    }
    eprintln!("tempo: {ticks} ticks, {arches} arches");
    assert!(ticks > 20, "{ticks} ticks");
}

#[test]
fn without_a_cue_section_no_pin_is_claimed_or_written() {
    let file = &common::dev_recordings()[0];
    let text = "[[mats]]\nid = \"mat1\"\nsource = \"replay\"\nfile = \"x.csv.gz\"\nrepeat = false\n";
    let (config, mat) = mat_of(text, file);
    assert!(mat.cue.is_none());
    let gpio = EmulatedGpio::new();
    assert!(cue::for_mat(&mat, &gpio).unwrap().is_none());
    run_pipeline(file, &config, &mat, &gpio);
    assert!(gpio.opened().is_empty(), "pins claimed: {:?}", gpio.opened());
    assert_eq!(gpio.writes(), 0);
    assert!(gpio.edges().is_empty());
    // The one mat of [mat] has none either, unless [mat.cue] says so.
    assert!(Config::default().mats()[0].cue.is_none());
    let one = Config::parse("[mat.cue]\nled_red = 24\n", "t").unwrap();
    assert_eq!(one.mats()[0].cue.as_ref().and_then(|c| c.led_red), Some(24));
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("flatback.toml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn check_cue_drives_each_pin_in_turn_on_emulated_pins() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[[mats]]\nid = \"a\"\nsource = \"sim\"\n\n[[mats]]\nid = \"b\"\nsource = \"sim\"\n\n\
         [mats.cue]\nbuzzer = 22\nled_green = 23\nled_red = 24\n",
    );
    let out = common::run(&[
        "check",
        "--cue",
        "--source",
        "sim",
        "--mat",
        "b",
        "--seconds",
        "0.05",
        "--config",
        &cfg,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("mat \"b\": buzzer GPIO22, green LED GPIO23, red LED GPIO24 (emulated GPIO)"),
        "{text}"
    );
    let said: Vec<&str> = text.lines().filter(|l| l.contains(" on for ")).collect();
    assert_eq!(
        said,
        [
            "buzzer: GPIO22 on for 0.05 s",
            "green LED: GPIO23 on for 0.05 s",
            "red LED: GPIO24 on for 0.05 s"
        ],
        "{text}"
    );
    // Each pin high then low, in turn, never two at once.
    let edges: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  GPIO"))
        .map(|l| l.trim().split(" at ").next().unwrap())
        .collect();
    assert_eq!(
        edges,
        [
            "GPIO22 high",
            "GPIO22 low",
            "GPIO23 high",
            "GPIO23 low",
            "GPIO24 high",
            "GPIO24 low"
        ],
        "{text}"
    );
    assert!(text.contains("done: 3 pins driven in turn"), "{text}");
}

#[test]
fn check_cue_refuses_a_mat_without_a_cue_and_asks_which_mat() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[[mats]]\nid = \"a\"\nsource = \"sim\"\n\n[[mats]]\nid = \"b\"\nsource = \"sim\"\n\n\
         [mats.cue]\nled_red = 24\n",
    );
    let run = |args: &[&str]| {
        let mut all = vec!["check", "--cue", "--source", "sim", "--seconds", "0", "--config", &cfg];
        all.extend_from_slice(args);
        let out = common::run(&all);
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (status, stdout, stderr) = run(&["--mat", "a"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "nothing driven: {stdout}");
    assert!(
        stderr.contains("mat \"a\" has no [mats.cue]: no buzzer or LED to test"),
        "{stderr}"
    );
    assert!(stderr.contains("[mats.cue]\n  buzzer = 22"), "an example: {stderr}");
    let (status, _, stderr) = run(&[]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("2 mats (a, b): choose one with --mat ID"), "{stderr}");
    let (status, _, stderr) = run(&["--mat", "c"]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("--mat c: no such mat (the mats: a, b)"), "{stderr}");
    let (status, stdout, _) = run(&["--mat", "b"]);
    assert!(status.success());
    assert!(stdout.contains("red LED: GPIO24 on"), "{stdout}");
    // The one mat of [mat], with no cue.
    let out = common::run(&["check", "--cue", "--source", "sim"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mat \"mat1\" has no [mat.cue]"), "{err}");
}

#[test]
fn bad_cue_pins_exit_78_naming_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // Off the header.
        (
            "[[mats]]\nid = \"a\"\nsource = \"sim\"\n[mats.cue]\nbuzzer = 28\n",
            "line 5: mats[0].cue.buzzer: GPIO28 is not on the header",
        ),
        // The same pin twice.
        (
            "[[mats]]\nid = \"a\"\nsource = \"sim\"\n[mats.cue]\nbuzzer = 22\nled_green = 23\nled_red = 22\n",
            "line 7: mats[0].cue.led_red: GPIO22 is also the buzzer (buzzer)",
        ),
        // A pin of the mat's SPI bus.
        (
            "[[mats]]\nid = \"a\"\nsource = \"sim\"\n[mats.cue]\nled_green = 8\n",
            "line 5: mats[0].cue.led_green: GPIO8 is SPI0 CE0 in this mat's wiring ([hardware])",
        ),
        // Another mat's cue pin.
        (
            "[[mats]]\nid = \"a\"\nsource = \"sim\"\n[mats.cue]\nbuzzer = 22\n\n\
             [[mats]]\nid = \"b\"\nsource = \"sim\"\n[mats.cue]\nled_red = 22\n",
            "line 11: mats[1].cue.led_red: GPIO22 is also the buzzer of mats[0] (\"a\", mats[0].cue.buzzer)",
        ),
        // A key that does not exist.
        ("[[mats]]\nid = \"a\"\n[mats.cue]\nbuzer = 22\n", "buzer"),
    ];
    for (text, want) in cases {
        let cfg = write_config(dir.path(), text);
        for args in [
            vec!["config", "check", cfg.as_str()],
            vec!["check", "--cue", "--source", "sim", "--config", &cfg],
        ] {
            let out = common::run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(78), "{args:?} {text}: {err}");
            assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
        }
    }
}
