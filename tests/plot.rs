//! `flatback plot`: the picture of every dev recording (needs
//! ../shared/data/dev), rep marks against the detector's reps, the picture
//! as a coach reads it (legs up at the top, a legend, every rep's flaws as
//! text, nothing drawn while getting up, brackets ending with their sets, the
//! mat and date in the title), an events file instead of the detector's, and
//! the detector's probe.

mod common;

use std::path::Path;

use flatback::contract::event::{Event, Phase, RepEvent};
use flatback::contract::frame::{Frame, FrameSource};
use flatback::detector::{Detector, DetectorConfig};
use flatback::plot::read::{attrs, points, section, texts, translate};
use flatback::plot::svg::{PLOT_W, REPS_H, REPS_Y, X0};
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
    flatback::tools::replay::collect(&mut source, &mut detector).unwrap()
}

fn count(svg: &str, needle: &str) -> usize {
    svg.matches(needle).count()
}

/// The recording's first and last frame, ms.
fn frame_span(recording: &Path) -> (u64, u64) {
    let mut source = RecordingReader::open(recording).unwrap();
    let mut frame = Frame::zeroed(source.grid());
    let mut span = None;
    while source.next_into(&mut frame).unwrap() {
        let t = frame.t_ms();
        span = Some(span.map_or((t, t), |(t0, _)| (t0, t)));
    }
    span.unwrap()
}

/// The x of `t_ms` on a plot of `span`, as the picture's axis has it.
fn x_at(t_ms: u64, (t0, t1): (u64, u64)) -> f64 {
    X0 + (t_ms.clamp(t0, t1) - t0) as f64 / (t1 - t0).max(1) as f64 * PLOT_W as f64
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

/// The day a file was last modified, as `date` tells it (local time).
fn file_day(path: &Path) -> String {
    let out = std::process::Command::new("date")
        .arg("-r")
        .arg(path)
        .arg("+%F")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// When each person got off the mat, from the recording's ground truth.
fn truth_offs(recording: &Path) -> Vec<u64> {
    let truth = recording.to_string_lossy().replace(".csv.gz", ".truth.json");
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(truth).unwrap()).unwrap();
    truth["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["off_ms"].as_u64().unwrap())
        .collect()
}

/// What a coach needs from the picture of `recording`, whose detector gave
/// `events`.
fn reads_as_a_coach_would(name: &str, recording: &Path, svg: &str, events: &[Event]) {
    let span = frame_span(recording);
    let x = |t_ms: u64| x_at(t_ms, span);
    let reps: Vec<(usize, &RepEvent)> = {
        let mut session = 0;
        events
            .iter()
            .filter_map(|e| match e {
                Event::Session {
                    phase: Phase::Start, ..
                } => {
                    session += 1;
                    None
                }
                Event::Rep(r) => Some((session, r)),
                _ => None,
            })
            .collect()
    };

    // The title: the mat (by default the file's name) and the day.
    let title = section(svg, r#"class="title""#, "</text>").unwrap();
    let day = file_day(recording);
    assert!(title.ends_with(&format!(">{name} · {day}")), "{name}: title {title}");

    // The legend: every mark, line and shade, and the heatmap's scale.
    let legend = svg.split(r#"<g class="legend""#).nth(1).unwrap();
    assert_eq!(
        attrs(legend, r#"<g class="key""#, "data-key"),
        [
            "perfect",
            "flawed",
            "arch",
            "threshold",
            "reference",
            "set",
            "off",
            "heat"
        ],
        "{name}"
    );
    assert!(legend.contains("counts: 0<"), "{name}: the heatmap's scale");

    // Legs up at the top, a rep over most of the lane: near each rep's top
    // the trace is high (SVG's y grows downward), near its end low.
    let legs = points(svg, "seesaw");
    let mut swings: Vec<f64> = reps
        .iter()
        .map(|(_, r)| {
            let top = r.t_ms - r.descent_ms;
            let within = |a: u64, b: u64| {
                let (xa, xb) = (x(a), x(b));
                legs.iter()
                    .filter(move |p| p.0 >= xa - 0.5 && p.0 <= xb + 0.5)
                    .map(|p| p.1)
            };
            let high = within(top.saturating_sub(700), top + 300).fold(f64::MAX, f64::min);
            let low = within(r.t_ms.saturating_sub(300), r.t_ms + 700).fold(f64::MIN, f64::max);
            low - high
        })
        .collect();
    if !swings.is_empty() {
        let up = swings.iter().filter(|&&s| s > 0.3 * REPS_H).count();
        assert!(
            up * 10 >= swings.len() * 9,
            "{name}: only {up} of {} reps drawn with legs up above legs down: {swings:?}",
            swings.len()
        );
        swings.sort_by(f64::total_cmp);
        let median = swings[swings.len() / 2];
        assert!(
            median >= 0.6 * REPS_H,
            "{name}: a rep swings over {:.0} % of its lane",
            median / REPS_H * 100.0
        );
    }
    assert!(legs.iter().all(|p| p.1 >= REPS_Y - 1.0 && p.1 <= REPS_Y + REPS_H + 1.0));

    // Each rep written out: its descent, and why it was not perfect, in
    // notes that do not overlap.
    let mut places = Vec::new();
    for (session, r) in &reps {
        let key = format!(
            r#"<g class="rep-note" data-session="{session}" data-set="{}" data-rep="{}""#,
            r.set, r.rep
        );
        let note = section(svg, &key, "</g>")
            .unwrap_or_else(|| panic!("{name}: no note for session {session} set {} rep {}", r.set, r.rep));
        assert!(
            note.contains(&format!(">{} · {:.1} s<", r.rep, r.descent_ms as f64 / 1000.0)),
            "{name}: {note}"
        );
        let flaws = texts(note, r#"class="flaw""#);
        if r.perfect {
            assert!(flaws.is_empty(), "{name}: {note}");
        } else {
            assert!(!flaws.is_empty(), "{name}: rep {} not perfect, but why?", r.rep);
            assert_eq!(flaws, r.flaws(), "{name}: rep {}", r.rep);
        }
        let (nx, ny) = translate(note);
        places.push((nx, ny, flaws.len()));
    }
    let height = num(&attrs(svg, "<svg", "height")[0]);
    for (i, a) in places.iter().enumerate() {
        assert!(
            a.1 + 15.0 + 12.0 * a.2 as f64 <= height,
            "{name}: a note below the picture"
        );
        for b in &places[i + 1..] {
            let (upper, lower) = if a.1 <= b.1 { (a, b) } else { (b, a) };
            assert!(
                (a.0 - b.0).abs() >= 70.0 || lower.1 - upper.1 >= 15.0 + 12.0 * upper.2 as f64,
                "{name}: notes overlap: {a:?} {b:?}"
            );
        }
    }

    // Nothing drawn off the mat: contact and arches only within sessions.
    let sessions: Vec<(u64, u64)> = {
        let mut open = None;
        let mut v = Vec::new();
        for e in events {
            match e {
                Event::Session {
                    t_ms,
                    phase: Phase::Start,
                } => open = Some(*t_ms),
                Event::Session {
                    t_ms,
                    phase: Phase::End,
                } => v.push((open.take().unwrap(), *t_ms)),
                _ => {}
            }
        }
        v
    };
    let on_mat = |px: f64| sessions.iter().any(|&(a, b)| px >= x(a) - 1.0 && px <= x(b) + 1.0);
    let contact = points(svg, "contact");
    assert!(!contact.is_empty(), "{name}");
    assert!(contact.iter().all(|p| on_mat(p.0)), "{name}: contact drawn off the mat");
    let arch_x = attrs(svg, r#"<rect class="arch""#, "x");
    let arch_w = attrs(svg, r#"<rect class="arch""#, "width");
    for (ax, aw) in arch_x.iter().zip(&arch_w) {
        let (a, b) = (num(ax), num(ax) + num(aw));
        assert!(
            sessions.iter().any(|&(s, e)| a >= x(s) - 1.0 && b <= x(e) + 1.0),
            "{name}: an arch shaded off the mat, {a:.1} .. {b:.1}"
        );
    }
    // Getting up (the last 2 s before the mat is empty) is not drawn as a
    // loss of contact.
    let threshold_y = num(&attrs(svg, r#"<line class="threshold""#, "y1")[0]);
    for off in truth_offs(recording) {
        let from = x(off.saturating_sub(2_000));
        let end = sessions
            .iter()
            .map(|s| s.1)
            .filter(|&e| e >= off)
            .min()
            .unwrap_or(span.1);
        let below: Vec<_> = contact
            .iter()
            .filter(|p| p.0 >= from && p.0 <= x(end) + 1.0 && p.1 > threshold_y)
            .collect();
        assert!(
            below.is_empty(),
            "{name}: getting up at {off} ms drawn as an arch: {below:?}"
        );
    }

    // Each bracket ends with its set: at its last rep (its `set` event
    // comes later, the last one when the person gets up).
    let brackets: Vec<f64> = svg
        .split(r#"<g class="set"><path d=""#)
        .skip(1)
        .map(|d| num(d.split('H').nth(1).unwrap().split('V').next().unwrap()))
        .collect();
    let sets: Vec<(u64, Option<u64>)> = {
        let mut last_rep = None;
        events
            .iter()
            .filter_map(|e| match e {
                Event::Rep(r) => {
                    last_rep = Some(r.t_ms);
                    None
                }
                Event::Set(s) => Some((s.t_ms, last_rep.take())),
                _ => None,
            })
            .collect()
    };
    assert_eq!(brackets.len(), sets.len(), "{name}");
    for (x1, (set_t, last_rep)) in brackets.iter().zip(&sets) {
        assert!(*x1 <= x(*set_t) + 0.1, "{name}: a bracket past its set's end");
        if let Some(t) = last_rep {
            assert!(
                *x1 <= x(*t) + 0.1,
                "{name}: a bracket past its last rep: {x1} > {}",
                x(*t)
            );
        }
    }
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
        reads_as_a_coach_would(&name, &rec, &svg, &events);
    }
}

#[test]
fn the_title_names_the_mat_and_the_day_given() {
    let rec = common::dev_recordings()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("clean_set.csv.gz"))
        .expect("clean_set.csv.gz in shared/data/dev");
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("clean.svg");
    let out = common::flatback()
        .arg("plot")
        .arg(&rec)
        .args(["--mat", "mat7", "--date", "2025-03-14", "-o"])
        .arg(&svg_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains(r#"font-weight="bold">mat7 · 2025-03-14</text>"#), "title");

    let out = common::flatback()
        .arg("plot")
        .arg(&rec)
        .args(["--date", "14/03/2025", "-o"])
        .arg(dir.path().join("bad.svg"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("YYYY-MM-DD"), "{err}");

    // --help says where the date comes from by default.
    let out = common::flatback().args(["plot", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--mat <ID>") && help.contains("--date <YYYY-MM-DD>"),
        "{help}"
    );
    assert!(help.contains("last modified"), "{help}");
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
