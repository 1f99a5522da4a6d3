//! The shipped systemd unit passes `systemd-analyze verify` (when systemd-analyze exists),
//! and the example config next to it is valid.

use std::path::{Path, PathBuf};
use std::process::Command;

fn unit_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/audiencesync.service"
    ))
    .expect("read unit")
}

/// A copy of the unit whose ExecStart points at the binary under test, because `verify`
/// insists that the executable exists.
fn unit_copy(dir: &Path) -> PathBuf {
    let text = unit_text().replace(
        "ExecStart=/usr/local/bin/audiencesync ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_audiencesync")),
    );
    assert!(text.contains(env!("CARGO_BIN_EXE_audiencesync")));
    let path = dir.join("audiencesync.service");
    std::fs::write(&path, text).expect("write unit");
    path
}

fn systemd_analyze() -> Option<&'static str> {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found.then_some("systemd-analyze")
}

#[test]
fn unit_verifies() {
    let Some(tool) = systemd_analyze() else {
        eprintln!("SKIPPED: systemd-analyze not installed");
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let unit = unit_copy(tmp.path());
    let out = Command::new(tool)
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed:\n{stderr}");
    assert!(
        !stderr.contains("audiencesync.service"),
        "verify complained about the unit:\n{stderr}"
    );
}

#[test]
fn unit_keeps_its_promises() {
    let text = unit_text();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "DynamicUser=yes",
        "StateDirectory=audiencesync",
        "LoadCredential=ingest_token:",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=",
    ] {
        assert!(text.contains(line), "unit lacks {line:?}");
    }
    // No secrets in the unit: credentials come from files only.
    assert!(!text.to_lowercase().contains("token="));
}

#[test]
fn security_exposure_stays_low() {
    let Some(tool) = systemd_analyze() else {
        eprintln!("SKIPPED: systemd-analyze not installed");
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let unit = unit_copy(tmp.path());
    let out = Command::new(tool)
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze security");
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(score) = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for audiencesync.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
    else {
        eprintln!(
            "SKIPPED: this systemd-analyze cannot score offline:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    };
    assert!(
        score <= 2.0,
        "exposure {score} (documented as 1.1):\n{text}"
    );
}

#[test]
fn systemd_example_config_is_valid() {
    let out = Command::new(env!("CARGO_BIN_EXE_audiencesync"))
        .args(["check-config", "--config"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/systemd/audiencesync.toml"
        ))
        .output()
        .expect("run check-config");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
