//! The service unit passes `systemd-analyze verify` (installed by
//! `tests/setup.sh` where missing).

use std::process::Command;

#[test]
fn the_service_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/flatback.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/flatback run"),
        "the unit runs the daemon"
    );
    for key in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "StateDirectory=flatback",
        "RestartPreventExitStatus=78",
    ] {
        assert!(unit.contains(key), "the unit has {key}");
    }
    // verify checks that ExecStart's binary exists: point it at ours.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flatback.service");
    std::fs::write(&path, unit.replace("/usr/bin/flatback", env!("CARGO_BIN_EXE_flatback"))).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs (tests/setup.sh installs systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed: {stderr}");
    // verify also warns without failing: none allowed about our unit.
    assert!(
        !stderr.contains("flatback.service"),
        "systemd-analyze verify warned: {stderr}"
    );
}
