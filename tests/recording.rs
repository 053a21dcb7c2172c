//! Recordings: round trips, and every kind of malformed file giving an error
//! that names the file and the line, with a non-zero exit.

mod common;

use std::io::Write;
use std::path::Path;

use flatback::contract::frame::{Frame, FrameSource, Grid};
use flatback::sim::{Kind, Scenario, Simulator};
use flatback::sources::recording::{RecordingReader, RecordingWriter};

fn sim_frames(n: usize) -> (Grid, Vec<Frame>) {
    let mut sim = Simulator::new(&Scenario::new(Kind::Faulty, 7));
    let mut f = Frame::zeroed(sim.grid());
    let mut out = Vec::new();
    while out.len() < n && sim.next_into(&mut f).unwrap() {
        out.push(f.clone());
    }
    (sim.grid(), out)
}

fn read_all(path: &Path) -> Vec<Frame> {
    let mut r = RecordingReader::open(path).unwrap();
    let mut f = Frame::zeroed(r.grid());
    let mut out = Vec::new();
    while r.next_into(&mut f).unwrap() {
        out.push(f.clone());
    }
    out
}

#[test]
fn round_trip_csv_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let (grid, frames) = sim_frames(5000);
    assert_eq!(frames.len(), 5000);
    for name in ["r.csv", "r.csv.gz"] {
        let path = dir.path().join(name);
        let mut w = RecordingWriter::create(&path, grid).unwrap();
        for f in &frames {
            w.write_frame(f).unwrap();
        }
        w.close().unwrap();
        let back = read_all(&path);
        assert_eq!(back, frames, "{name} reads back identical");
        assert_eq!(RecordingReader::open(&path).unwrap().grid(), grid);
    }
    let plain = std::fs::metadata(dir.path().join("r.csv")).unwrap().len();
    let gz = std::fs::metadata(dir.path().join("r.csv.gz")).unwrap().len();
    assert!(gz * 2 < plain, "gzip by file name: {gz} vs {plain} bytes");
}

#[test]
fn other_grid_shapes_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.csv");
    let grid = Grid::new(2, 3);
    let frames: Vec<Frame> = (0..10)
        .map(|i| Frame {
            t_us: 100 + i * 997,
            counts: vec![i as u16, 1, 2, 3, 4, 4095],
        })
        .collect();
    let mut w = RecordingWriter::create(&path, grid).unwrap();
    for f in &frames {
        w.write_frame(f).unwrap();
    }
    w.close().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("t_us,r0c0,r0c1,r0c2,r1c0,r1c1,r1c2\n100,0,1,2,3,4,4095\n"),
        "{text}"
    );
    assert_eq!(read_all(&path), frames);
}

const HEADER: &str = "t_us,r0c0,r0c1,r1c0,r1c1";

/// Writes `text` as a recording and replays it: returns (exit ok, stdout, stderr).
fn replay_text(name: &str, text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    if name.ends_with(".gz") {
        let mut gz =
            flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap();
    } else {
        std::fs::write(&path, text).unwrap();
    }
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[detector]\nupper_rows = [0]\nlumbar_rows = [0, 1]\nsacral_rows = [1]\n",
    )
    .unwrap();
    let out = common::run(&["replay", "--config", cfg.to_str().unwrap(), path.to_str().unwrap()]);
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn assert_error(name: &str, text: &str, line: usize, what: &str) {
    let (ok, _, err) = replay_text(name, text);
    assert!(!ok, "{name}: malformed input must exit non-zero");
    assert!(err.contains(name), "{name}: error names the file: {err}");
    assert!(
        err.contains(&format!("line {line}:")),
        "{name}: error names line {line}: {err}"
    );
    assert!(err.contains(what), "{name}: error says {what:?}: {err}");
}

#[test]
fn malformed_files_name_the_line() {
    let good = format!("{HEADER}\n10,1,2,3,4\n20,1,2,3,4\n");
    assert!(replay_text("ok.csv", &good).0, "the well-formed base case passes");
    assert_error("empty.csv", "", 1, "empty file");
    assert_error("hdr1.csv", "time,r0c0\n1,2\n", 1, "first column must be t_us");
    assert_error("hdr2.csv", "t_us,r0c0,x\n1,2,3\n", 1, "\"x\" is not of the form rRcC");
    assert_error("hdr3.csv", "t_us,r0c0,r0c1,r1c1,r1c0\n", 1, "row-major");
    assert_error("hdr4.csv", "t_us,r0c0,r1c1\n", 1, "do not fill");
    assert_error(
        "fields.csv",
        &format!("{HEADER}\n10,1,2,3,4\n20,1,2,3\n"),
        3,
        "expected 5 fields, found 4",
    );
    assert_error(
        "extra.csv",
        &format!("{HEADER}\n10,1,2,3,4,5\n"),
        2,
        "expected 5 fields, found 6",
    );
    assert_error(
        "blank.csv",
        &format!("{HEADER}\n10,1,2,3,4\n\n20,1,2,3,4\n"),
        3,
        "expected 5 fields, found 1",
    );
    assert_error(
        "nan.csv",
        &format!("{HEADER}\n10,1,2,3,4\n20,1,x2,3,4\n"),
        3,
        "column r0c1: \"x2\"",
    );
    assert_error("neg.csv", &format!("{HEADER}\n10,1,2,-3,4\n"), 2, "column r1c0: \"-3\"");
    assert_error(
        "big.csv",
        &format!("{HEADER}\n10,1,2,3,70000\n"),
        2,
        "column r1c1: \"70000\"",
    );
    assert_error(
        "time.csv",
        &format!("{HEADER}\n10,1,2,3,4\nabc,1,2,3,4\n"),
        3,
        "column t_us",
    );
    assert_error(
        "back.csv",
        &format!("{HEADER}\n10,1,2,3,4\n20,1,2,3,4\n15,1,2,3,4\n"),
        4,
        "t_us 15 does not increase",
    );
    assert_error(
        "same.csv.gz",
        &format!("{HEADER}\n10,1,2,3,4\n10,1,2,3,4\n"),
        3,
        "t_us 10 does not increase",
    );
}

#[test]
fn events_before_a_bad_line_are_not_lost() {
    // Someone lies on the mat for a second (a session starts), then line
    // 300 is broken: the session start must still come out.
    let mut text = format!("{HEADER}\n");
    for i in 0..297 {
        text.push_str(&format!("{},400,410,420,430\n", 1000 + i * 5000));
    }
    text.push_str("999999999,1,2\n");
    let (ok, out, err) = replay_text("late.csv", &text);
    assert!(!ok);
    assert!(err.contains("line 299:"), "{err}");
    assert!(
        out.contains(r#""type":"session""#) && out.contains(r#""phase":"start""#),
        "stdout: {out}"
    );
}

#[test]
fn missing_and_truncated_files_are_errors() {
    let out = common::run(&["replay", "/nonexistent/x.csv"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.csv"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.csv.gz");
    let (grid, frames) = sim_frames(20000);
    let mut w = RecordingWriter::create(&path, grid).unwrap();
    for f in &frames {
        w.write_frame(f).unwrap();
    }
    w.close().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let out = common::run(&["replay", path.to_str().unwrap()]);
    assert!(!out.status.success(), "a truncated gzip file is an error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.csv.gz") && err.contains("line "), "{err}");
}
