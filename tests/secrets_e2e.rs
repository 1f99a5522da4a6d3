//! No credential in any output: the real daemon and the real CLI against a Meta destination
//! that fails every way it can (connection refused, 500, 503, a reset, 400 errors, a 190 that
//! echoes the token), and every place an operator reads (the CLI's stdout and stderr, the
//! daemon's stdout and log, `status --json`, gRPC `GetSyncStatus`, `/metrics`, the status
//! page's `/api/status`) is searched for the access token, the app secret and the
//! `appsecret_proof`.

mod common;
mod fakes;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::workload::person;
use common::*;
use fakes::{FakeMeta, Fault};

/// Distinctive, so any echo of them is found.
const TOKEN: &str = "EAAB-secrets-e2e-token-7f3a9c51";
const SECRET: &str = "secrets-e2e-app-secret-4d2b8e60";

/// Every form of a credential that must never be printed.
fn needles() -> Vec<String> {
    vec![
        TOKEN.to_string(),
        SECRET.to_string(),
        fakes::meta::appsecret_proof(SECRET, TOKEN),
        "access_token=".to_string(),
        "appsecret_proof=".to_string(),
    ]
}

/// Panics naming the output and the credential when `text` holds one.
fn assert_clean(what: &str, text: &str) {
    for needle in needles() {
        assert!(
            !text.contains(&needle),
            "{what} shows a credential ({needle}):\n{text}"
        );
    }
}

/// An address nothing listens on: connections are refused.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/v26.0")
}

/// Two Meta destinations with token and app-secret files: `meta` at the fake, `meta_down` at
/// a closed port.
fn config(dir: &Path, m: &FakeMeta) -> String {
    std::fs::write(dir.join("meta-token"), TOKEN).expect("token");
    std::fs::write(dir.join("meta-secret"), SECRET).expect("secret");
    let creds = format!(
        "access_token_file = \"{}\"\napp_secret_file = \"{}\"\nlinger = \"100ms\"\ntimeout = \"2s\"",
        dir.join("meta-token").display(),
        dir.join("meta-secret").display()
    );
    format!(
        r#"
[[destinations]]
name = "meta"
kind = "meta"
api_base = "{}"
{creds}
lists = [{{ audience = "vip", list_id = "222" }}]

[[destinations]]
name = "meta_down"
kind = "meta"
api_base = "{}"
{creds}
lists = [{{ audience = "vip", list_id = "333" }}]
"#,
        m.base_url,
        closed_port()
    )
}

fn run(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_audiencesync"))
        .args(args)
        .output()
        .expect("run audiencesync")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_shows_a_meta_credential_whatever_fails() {
    let tmp = tempfile::tempdir().expect("tmp");
    let m = FakeMeta::start(TOKEN, Some(SECRET)).await;
    m.create_audience("222");
    let cfg_text = config(tmp.path(), &m);
    let cfg = write_config(tmp.path(), &cfg_text);
    let cfg_arg = cfg.to_str().expect("utf-8 path");

    // `destinations check`, once per way the fake fails; `meta_down` is refused every time.
    for fault in [
        Fault::Status(500),
        Fault::Status(503),
        Fault::Reset,
        Fault::MetaError {
            code: 100,
            subcode: Some(33),
            transient: false,
        },
        Fault::MetaMalformedToken,
    ] {
        m.inject(fault.clone());
        let out = run(&["destinations", "check", "--config", cfg_arg]);
        let shown = text(&out);
        assert!(!out.status.success(), "{fault:?}: {shown}");
        assert!(
            shown.contains("FAILED  meta / vip (222)"),
            "{fault:?}: {shown}"
        );
        assert!(shown.contains("FAILED  meta_down / vip (333)"), "{shown}");
        assert_clean(&format!("destinations check after {fault:?}"), &shown);
    }

    // The daemon's sync fails the same ways, then parks on a 400.
    for fault in [
        Fault::Status(500),
        Fault::Reset,
        Fault::MetaMalformedToken,
        Fault::Status(503),
        Fault::MetaError {
            code: 100,
            subcode: None,
            transient: false,
        },
    ] {
        m.inject(fault);
    }
    let d = Daemon::start(tmp.path(), &cfg_text);
    let now = now_secs();
    let mut events = Vec::new();
    for (i, revenue) in [10_000, 5_000, 1_000, 500].iter().enumerate() {
        let id = format!("c{i}");
        events.push(ev(
            &format!("u-{id}"),
            now - 30 * DAY,
            person(
                &id,
                &format!("p{i}@example.com"),
                &format!("+1212555{:04}", 100 + i),
                true,
            ),
        ));
        events.push(ev(
            &format!("o-{id}"),
            now - 10 * DAY,
            order(&format!("o-{id}"), &id, *revenue, "USD"),
        ));
    }
    stream(&d, vec![events]).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let states = loop {
        let states = d.sync_states().await;
        let parked = states.iter().any(|s| s.destination == "meta" && s.parked);
        let down_failed = states
            .iter()
            .any(|s| s.destination == "meta_down" && !s.last_error.is_empty());
        if parked && down_failed {
            break states;
        }
        assert!(
            Instant::now() < deadline,
            "the sync never failed: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        m.requests().iter().any(|r| r.status == 0) && m.requests().iter().any(|r| r.status == 500),
        "the reset and the 500 reached the sync"
    );
    assert_clean("GetSyncStatus", &format!("{states:?}"));

    let status = run(&["status", "--json", "--addr", &d.url()]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(text(&status).contains("meta_down"), "{}", text(&status));
    assert_clean("status --json", &text(&status));
    let status = run(&["status", "--addr", &d.url()]);
    assert_clean("status", &text(&status));

    let metrics = d.scrape();
    assert!(metrics.contains("meta_down"), "{metrics}");
    assert_clean("/metrics", &metrics);
    let (code, _, page) = d.http_get("/api/status", &[]);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("meta_down"), "{page}");
    assert_clean("/api/status", &page);
    let (_, _, html) = d.http_get("/", &[]);
    assert_clean("status page", &html);

    for needle in needles() {
        assert!(
            !d.stdout_has(&needle),
            "the daemon's stdout shows a credential ({needle})"
        );
    }
    let log_path = d.log.clone();
    d.stop();
    let log = std::fs::read_to_string(log_path).expect("daemon log");
    assert!(
        log.contains("meta_down"),
        "the log (RUST_LOG=debug) names the failing destination"
    );
    assert_clean("the daemon's log", &log);
}
