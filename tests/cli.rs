//! The command line: help, version, errors to stderr with a non-zero exit,
//! record, config default; and that CI runs the README's test command verbatim.

mod common;

use flatback::config::Config;

#[test]
fn version_and_help_for_every_subcommand() {
    let v = common::run(&["--version"]);
    assert!(v.status.success());
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        format!("flatback {}", env!("CARGO_PKG_VERSION"))
    );
    for sub in [
        "replay", "record", "demo", "eval", "publish", "purge", "run", "config", "watch", "plot", "check",
    ] {
        let h = common::run(&[sub, "--help"]);
        assert!(h.status.success(), "{sub} --help");
        assert!(
            String::from_utf8_lossy(&h.stdout).contains("Usage: flatback"),
            "{sub} --help prints usage"
        );
    }
}

#[test]
fn usage_errors_go_to_stderr_with_non_zero_exit() {
    for args in [
        &["frobnicate"][..],
        &["replay"],
        &["record", "--kind", "yoga", "/tmp/x.csv"],
        &["demo", "--rate", "5"],
    ] {
        let out = common::run(args);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(!out.stderr.is_empty(), "{args:?}: an error on stderr");
    }
    let out = common::run(&["record", "--kind", "yoga", "/tmp/x.csv"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scenario kind \"yoga\""));
}

#[test]
fn bad_config_names_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[mat]\nid = \"m\"\n\n[detector]\narch_contact = \"half\"\n").unwrap();
    let rec = dir.path().join("r.csv");
    std::fs::write(&rec, "t_us,r0c0\n1,2\n").unwrap();
    let out = common::run(&["replay", "--config", cfg.to_str().unwrap(), rec.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("line 5") && err.contains("arch_contact"),
        "{err}"
    );
}

#[test]
fn record_writes_a_recording_and_its_truth() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sim.csv.gz");
    let out = common::run(&[
        "record",
        "--source",
        "sim",
        "--seconds",
        "20",
        "--kind",
        "clean_set",
        "--rate",
        "100",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let truth: flatback::sim::Truth =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("sim.truth.json")).unwrap()).unwrap();
    assert!(truth.duration_ms <= 20_000);
    let mut r = flatback::sources::recording::RecordingReader::open(&file).unwrap();
    let mut f = flatback::contract::frame::Frame::zeroed(r.grid());
    let mut n = 0;
    let mut last = 0;
    use flatback::contract::frame::FrameSource;
    while r.next_into(&mut f).unwrap() {
        n += 1;
        last = f.t_us;
    }
    assert!((1900..=2100).contains(&n), "about 100 Hz for 20 s: {n} frames");
    assert!(last <= 20_000_000);
}

#[test]
fn config_default_prints_the_commented_defaults() {
    let out = common::run(&["config", "default"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().filter(|l| l.starts_with('#')).count() > 10, "commented");
    assert_eq!(Config::parse(&text, "config default").unwrap(), Config::default());
}

/// Issue 6's acceptance: on a machine with no broker (none answers on
/// localhost:1883 here; the tests start theirs on free ports), the demo
/// embeds one, and the coach's view shows events from every mat.
#[test]
fn demo_for_20_s_at_10x_shows_events_from_all_mats_and_exits_0() {
    let out = common::run(&["demo", "--duration", "20", "--speed", "10"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("mqtt://127.0.0.1:"), "it says which broker: {stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    for mat in ["mat1", "mat2", "mat3"] {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("demo/{mat} ")))
            .collect();
        assert!(lines.iter().any(|l| l.contains(" session start")), "{mat}: {text}");
        assert!(lines.iter().any(|l| l.contains(" rep set=")), "{mat} has reps: {text}");
    }
}

#[test]
fn ci_runs_the_readme_test_command_verbatim() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    // The README's second command block line is the test command.
    let cmd = readme
        .lines()
        .find(|l| l.contains("cargo test"))
        .expect("README shows the test command")
        .trim();
    assert!(ci.lines().any(|l| l.trim() == cmd), ".ci/run runs `{cmd}` verbatim");
}
