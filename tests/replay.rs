//! `flatback replay` on the dev recordings: contract-shaped JSON lines, exit
//! 0, and output that `shared/eval/score.py` accepts and scores.

mod common;

use serde_json::Value;

fn check_event(e: &Value, line: &str) {
    let obj = e.as_object().unwrap_or_else(|| panic!("not an object: {line}"));
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no type: {line}"));
    assert!(
        obj.get("t_ms").and_then(Value::as_u64).is_some(),
        "t_ms must be an integer: {line}"
    );
    let has = |k: &str| obj.contains_key(k);
    match ty {
        "session" => assert!(matches!(obj["phase"].as_str(), Some("start" | "end")), "{line}"),
        "arch" => match obj["phase"].as_str() {
            Some("start") => assert!(obj["onset_ms"].is_u64() && obj["contact"].is_number(), "{line}"),
            Some("end") => assert!(obj["duration_ms"].is_u64() && obj["min_contact"].is_number(), "{line}"),
            _ => panic!("bad arch phase: {line}"),
        },
        "rep" => {
            for k in ["set", "rep", "descent_ms"] {
                assert!(obj[k].is_u64(), "{k}: {line}");
            }
            for k in ["perfect", "arched", "rushed"] {
                assert!(obj[k].is_boolean(), "{k}: {line}");
            }
            let perfect = obj["perfect"].as_bool().unwrap();
            let flawed = obj["arched"].as_bool().unwrap()
                || obj["rushed"].as_bool().unwrap()
                || obj.get("bounce").and_then(Value::as_bool).unwrap_or(false);
            assert_eq!(
                perfect, !flawed,
                "perfect means neither arched, rushed nor bouncing: {line}"
            );
            assert_eq!(
                has("depth"),
                obj["arched"].as_bool().unwrap(),
                "depth comes with an arched rep: {line}"
            );
        }
        "set" => {
            for k in ["set", "reps", "perfect", "arches"] {
                assert!(obj[k].is_u64(), "{k}: {line}");
            }
        }
        "progress" | "health" => {}
        other => panic!("unknown event type {other}: {line}"),
    }
}

#[test]
fn replay_prints_contract_events_for_every_dev_recording() {
    for rec in common::dev_recordings() {
        let out = common::run(&["replay", rec.to_str().unwrap()]);
        let name = rec.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            out.status.success(),
            "{name}: exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let mut last_t = 0;
        let mut sessions = 0;
        for line in stdout.lines() {
            let e: Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("{name}: not JSON ({err}): {line}"));
            check_event(&e, line);
            let t = e["t_ms"].as_u64().unwrap();
            assert!(t >= last_t, "{name}: events in emission order: {line}");
            last_t = t;
            if e["type"] == "session" && e["phase"] == "start" {
                sessions += 1;
            }
        }
        assert!(sessions >= 1, "{name}: someone lies on every dev mat");
    }
}

#[test]
fn score_py_accepts_and_scores_the_output() {
    let shared = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let rec = shared.join("data/dev/three_sets.csv.gz");
    let out = common::run(&["replay", rec.to_str().unwrap()]);
    assert!(out.status.success());
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, &out.stdout).unwrap();
    let py = std::process::Command::new("python3")
        .arg(shared.join("eval/score.py"))
        .arg("case")
        .arg(&events)
        .arg(shared.join("data/dev/three_sets.truth.json"))
        .output()
        .expect("python3 runs score.py");
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let score: Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(score["reps_true"], 31);
    // The detector finds the reps score.py counts (figures in the README).
    assert!(score["reps_matched"].as_u64().unwrap() >= 28, "{score}");
    assert!(score["arches_matched"].as_u64().unwrap() >= 7, "{score}");
}

/// Every recording with ground truth in `shared/data/{dev,reference}`.
fn recordings_with_truth() -> Vec<(std::path::PathBuf, flatback::sim::Truth)> {
    let shared = common::shared();
    let mut out = Vec::new();
    for set in ["dev", "reference"] {
        let dir = shared.join("data").join(set);
        let mut recs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".csv.gz"))
            .collect();
        recs.sort();
        for rec in recs {
            let name = rec.to_string_lossy().trim_end_matches(".csv.gz").to_string();
            let text = std::fs::read_to_string(format!("{name}.truth.json")).expect("truth beside the recording");
            out.push((rec, flatback::sim::Truth::from_json(&text).expect("truth parses")));
        }
    }
    assert!(out.len() >= 40, "dev and reference recordings: {}", out.len());
    out
}

/// An arched rep is a rep all the same: it ends when the legs reach the
/// bottom (contract: "the arched `rep` is still emitted when the legs reach
/// the bottom"), not when the arch moves the lever. On every arched rep of
/// the dev and reference recordings, the rep event matched to it (with the
/// rules of score.py) comes no earlier than the legs' true bottom minus
/// 0.3 s.
#[test]
fn arched_reps_are_emitted_at_the_bottom() {
    use flatback::config::Config;
    use flatback::contract::event::Event;
    use flatback::contract::frame::FrameSource;
    use flatback::detector::Detector;
    use flatback::sources::recording::RecordingReader;
    use flatback::tools::score::{align, REP_WINDOW};

    let (mut arched, mut early) = (0, Vec::new());
    for (rec, truth) in recordings_with_truth() {
        let mut source = RecordingReader::open(&rec).unwrap();
        let mut det = Detector::new(source.grid(), Config::default().detector).unwrap();
        let events = flatback::tools::replay::collect(&mut source, &mut det).unwrap();
        let reps: Vec<_> = truth.reps().collect();
        let emitted: Vec<i64> = events
            .iter()
            .filter_map(|e| match e {
                Event::Rep(r) => Some(r.t_ms as i64),
                _ => None,
            })
            .collect();
        let bottoms: Vec<i64> = reps.iter().map(|r| r.descent_end_ms as i64).collect();
        for (i, j) in align(&bottoms, &emitted, REP_WINDOW) {
            if !reps[i].arched {
                continue;
            }
            arched += 1;
            if emitted[j] < bottoms[i] - 300 {
                let name = rec.file_name().unwrap().to_string_lossy().into_owned();
                early.push(format!("{name}: bottom {} ms, rep at {} ms", bottoms[i], emitted[j]));
            }
        }
    }
    assert!(arched >= 150, "arched reps matched: {arched}");
    assert!(
        early.is_empty(),
        "{} arched reps emitted early: {early:#?}",
        early.len()
    );
}
