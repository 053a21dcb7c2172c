//! `flatback plot`: the picture of every dev recording (needs
//! ../shared/data/dev), rep marks against the detector's reps, an events
//! file instead of the detector's, and the detector's probe.

mod common;

use std::path::Path;

use flatback::detector::{Detector, DetectorConfig};
use flatback::event::{Event, Phase};
use flatback::frame::{Frame, FrameSource};
use flatback::sources::recording::RecordingReader;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(PNG_SIGNATURE), "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

fn detected(recording: &Path) -> Vec<Event> {
    let mut source = RecordingReader::open(recording).unwrap();
    let mut detector = Detector::new(source.grid(), DetectorConfig::default()).unwrap();
    flatback::replay::collect(&mut source, &mut detector).unwrap()
}

fn count(svg: &str, needle: &str) -> usize {
    svg.matches(needle).count()
}

#[test]
fn plots_every_dev_recording_with_one_mark_per_rep() {
    let dir = tempfile::tempdir().unwrap();
    for rec in common::dev_recordings() {
        let name = rec.file_name().unwrap().to_string_lossy().replace(".csv.gz", "");
        let (svg_path, png_path) = (
            dir.path().join(format!("{name}.svg")),
            dir.path().join(format!("{name}.png")),
        );
        let out = common::flatback()
            .arg("plot")
            .arg(&rec)
            .arg("-o")
            .arg(&svg_path)
            .arg("-o")
            .arg(&png_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        let png = std::fs::read(&png_path).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{name}");
        // Small at any length: about 100 KB for these minutes at 200 Hz.
        assert!(svg.len() < 300_000, "{name}: {} bytes", svg.len());
        let (w, h) = png_size(&png);
        assert_eq!(w, 1200, "{name}");
        assert!(h > 400, "{name}: {h}");
        assert!(
            png.len() > 10_000,
            "{name}: a PNG of {} bytes is nearly empty",
            png.len()
        );

        let events = detected(&rec);
        let reps: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Rep(r) => Some(r),
                _ => None,
            })
            .collect();
        let perfect = reps.iter().filter(|r| r.perfect).count();
        assert_eq!(
            count(&svg, r#"class="rep perfect""#),
            perfect,
            "{name}: perfect rep marks"
        );
        assert_eq!(
            count(&svg, r#"class="rep""#),
            reps.len() - perfect,
            "{name}: flawed rep marks"
        );
        for r in &reps {
            assert!(
                svg.contains(&format!(r#"data-set="{}" data-rep="{}""#, r.set, r.rep)),
                "{name}: no mark for set {} rep {}",
                r.set,
                r.rep
            );
        }
        let sets = events.iter().filter(|e| matches!(e, Event::Set(_))).count();
        assert_eq!(count(&svg, r#"class="set""#), sets, "{name}: set brackets");
        let arches = events
            .iter()
            .filter(|e| matches!(e, Event::Arch(a) if a.phase == Phase::Start))
            .count();
        assert_eq!(count(&svg, r#"class="arch""#), arches, "{name}: shaded arches");
        if name == "still" {
            assert_eq!(reps.len(), 0);
        } else {
            assert!(!reps.is_empty(), "{name} has reps");
        }
    }
}

#[test]
fn plots_the_events_of_a_file_instead_of_the_detectors() {
    let rec = common::dev_recordings()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("clean_set.csv.gz"))
        .expect("clean_set.csv.gz in shared/data/dev");
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    // As the daemon publishes them (extra fields), a blank line in between.
    std::fs::write(
        &events,
        concat!(
            r#"{"type":"rep","t_ms":20000,"set":1,"rep":1,"perfect":true,"arched":false,"rushed":false,"descent_ms":3500,"bounce":false,"mat":"mat1","seq":1}"#,
            "\n\n",
            r#"{"type":"arch","t_ms":24000,"phase":"start","onset_ms":23950,"contact":0.4}"#,
            "\n",
            r#"{"type":"arch","t_ms":25000,"phase":"end","duration_ms":1050,"min_contact":0.3}"#,
            "\n",
            r#"{"type":"rep","t_ms":27000,"set":1,"rep":2,"perfect":false,"arched":true,"rushed":false,"descent_ms":3100,"bounce":false,"depth":0.5}"#,
            "\n",
            r#"{"type":"set","t_ms":40000,"set":1,"reps":2,"perfect":1,"arches":1}"#,
            "\n"
        ),
    )
    .unwrap();
    let svg_path = dir.path().join("clean.svg");
    let out = common::flatback()
        .arg("plot")
        .arg(&rec)
        .arg("--events")
        .arg(&events)
        .arg("-o")
        .arg(&svg_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_eq!(count(&svg, r#"class="rep perfect""#), 1);
    assert_eq!(count(&svg, r#"class="rep""#), 1);
    assert_eq!(count(&svg, r#"class="arch""#), 1);
    assert!(svg.contains("set 1: 2 reps, 1 perfect, 1 arch<"));
    assert!(detected(&rec).iter().filter(|e| matches!(e, Event::Rep(_))).count() > 2);

    // A line that is not an event: named, and nothing written.
    std::fs::write(&events, "{\"type\":\"rep\"}\n").unwrap();
    let bad_out = dir.path().join("bad.svg");
    let out = common::flatback()
        .arg("plot")
        .arg(&rec)
        .args(["--events"])
        .arg(&events)
        .arg("-o")
        .arg(&bad_out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("events.jsonl line 1"), "{err}");
    assert!(!bad_out.exists());
}

#[test]
fn plot_refuses_other_outputs_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::flatback()
        .args(["plot", "does-not-matter.csv.gz", "-o"])
        .arg(dir.path().join("x.jpg"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("must end in .svg or .png"),
        "{err}"
    );
    let out = common::flatback()
        .args(["plot", "missing.csv.gz", "-o"])
        .arg(dir.path().join("x.svg"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.csv.gz"));
}

/// The probe follows the detector: in an arch exactly between an arch's
/// start and end events, below the threshold when one starts.
#[test]
fn the_probe_agrees_with_the_events() {
    let rec = common::dev_recordings()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("fatigue.csv.gz"))
        .expect("fatigue.csv.gz in shared/data/dev");
    let config = DetectorConfig::default();
    let mut source = RecordingReader::open(&rec).unwrap();
    let mut detector = Detector::new(source.grid(), config.clone()).unwrap();
    let mut frame = Frame::zeroed(source.grid());
    let mut events = Vec::new();
    let (mut in_arch, mut starts, mut seesaw_range) = (false, 0, (f32::MAX, f32::MIN));
    while source.next_into(&mut frame).unwrap() {
        events.clear();
        detector.push(&frame, &mut events);
        let p = detector.probe();
        for e in &events {
            if let Event::Arch(a) = e {
                in_arch = a.phase == Phase::Start;
                if in_arch {
                    starts += 1;
                    assert!((p.contact as f64) < config.arch_contact, "{} at {}", p.contact, a.t_ms);
                }
            }
        }
        assert_eq!(p.in_arch, in_arch, "at {} ms", frame.t_ms());
        assert!(!p.settled || p.occupied);
        if p.occupied {
            seesaw_range = (seesaw_range.0.min(p.seesaw), seesaw_range.1.max(p.seesaw));
        }
    }
    assert!(starts > 0, "the fatigue recording has arches");
    assert!(
        seesaw_range.1 - seesaw_range.0 > 0.2,
        "the rep signal swings: {seesaw_range:?}"
    );
}
