//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod history;
pub mod mosquitto;
pub mod mqtt;
pub mod postgres;
pub mod server;
pub mod tls;
pub mod web;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `flatback` binary built for these tests.
pub fn flatback() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flatback"))
}

/// `flatback ARGS --config CONFIG`, which must succeed: its standard output.
pub fn cli(args: &[&str], config: &std::path::Path) -> String {
    let out = flatback()
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("flatback runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard output of one JSON object per line.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

pub fn run(args: &[&str]) -> Output {
    flatback().args(args).output().expect("flatback runs")
}

/// `../shared`, beside the checkout. Tests that need it fail with a clear
/// message when it is missing.
pub fn shared() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared");
    assert!(
        p.join("data/dev").is_dir(),
        "this test needs the shared material at {} (shared/data/dev with the dev recordings); it is missing",
        p.display()
    );
    p
}

/// The dev recordings, sorted.
pub fn dev_recordings() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(shared().join("data/dev"))
        .expect("read shared/data/dev")
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".csv.gz") || p.to_string_lossy().ends_with(".csv"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no recordings in shared/data/dev");
    v
}
