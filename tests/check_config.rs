//! `check-config` runs every start-up check `serve` runs that binds no port and opens no store,
//! and `serve` refuses a bad config before it writes anything: the CLI as a child process.

mod common;

use std::process::{Command, Output};

use common::write_config;

fn run(args: &[&str], config: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_audiencesync"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run audiencesync")
}

/// Both commands refuse the config with `expected` in their error, and no data directory
/// appears.
fn refused(extra_toml: &str, expected: &[&str]) {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = write_config(tmp.path(), extra_toml);
    for args in [&["check-config"][..], &["serve"][..]] {
        let out = run(args, &cfg);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted it:\n{err}");
        for e in expected {
            assert!(err.contains(e), "{args:?} error lacks {e:?}:\n{err}");
        }
        assert!(
            !tmp.path().join("data").exists(),
            "{args:?} created the data directory before refusing"
        );
    }
}

#[test]
fn a_good_config_is_ok() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = write_config(tmp.path(), "[log]\nlevel = \"info,audiencesync=debug\"\n");
    let out = run(&["check-config"], &cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
}

#[test]
fn a_misspelt_log_level_is_refused() {
    refused(
        "[log]\nlevel = \"warning\"\n",
        &["log.level", "`warning` names no level", "warn"],
    );
}

#[test]
fn serving_off_loopback_without_auth_is_refused() {
    refused("[server]\nlisten = \"0.0.0.0:0\"\n", &["loopback"]);
}

#[test]
fn a_missing_credential_file_is_refused() {
    refused(
        "[[destinations]]\nname = \"meta\"\nkind = \"meta\"\naccess_token_file = \"/nonexistent/meta-token\"\nlists = [{ audience = \"vip\", list_id = \"222\" }]\n",
        &["access_token_file"],
    );
}

const SYSTEMD_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/audiencesync.toml");

fn check_systemd_config(credentials_dir: Option<&std::path::Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_audiencesync"));
    cmd.args(["check-config", "--config", SYSTEMD_CONFIG])
        .env_remove("CREDENTIALS_DIRECTORY");
    if let Some(dir) = credentials_dir {
        cmd.arg("--credentials-dir").arg(dir);
    }
    cmd.output().expect("run check-config")
}

#[test]
fn files_only_the_unit_can_see_are_named_as_not_checked() {
    let out = check_systemd_config(None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(
            "not checked: auth.ingest_token_file, auth.query_token_file, auth.admin_token_file"
        ) && text.contains("--credentials-dir"),
        "{text}"
    );
}

#[test]
fn the_credentials_dir_is_checked_when_given() {
    let tmp = tempfile::tempdir().expect("tmp");
    // The README's install: one token per scope in /etc/audiencesync/credentials.
    std::fs::write(
        tmp.path().join("ingest_token"),
        "ingest-token-0123456789abcdef",
    )
    .expect("token");
    std::fs::write(
        tmp.path().join("query_token"),
        "query-token-0123456789abcdef",
    )
    .expect("token");
    let out = check_systemd_config(Some(tmp.path()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("auth.admin_token_file"),
        "a missing admin token passed:\n{err}"
    );
    std::fs::write(
        tmp.path().join("admin_token"),
        "admin-token-0123456789abcdef",
    )
    .expect("token");
    let out = check_systemd_config(Some(tmp.path()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !text.contains("not checked"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
