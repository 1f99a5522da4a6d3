//! Destination sync end to end: the real daemon pushes to local servers that speak the Data
//! Manager and Marketing API shapes (`tests/fakes`), and the remote lists must equal the
//! audiences' eligible hashed members through faults, throttling, consent withdrawal,
//! erasure, full resyncs and a kill -9.

mod common;
mod fakes;
mod shop;

use std::time::{Duration, Instant};

use audiencesync::proto::v1;
use audiencesync::sync::dest::meta;
use common::workload::{google_form, meta_form, person};
use common::*;
use fakes::{FakeGoogle, FakeMeta, Fault};
use shop::{config, fakes, vips_synced, wait_until, Shop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_converge_and_follow_consent_withdrawal_and_erasure() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let shop = Shop::vip_shape();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    let now = now_secs();
    stream(&d, vec![shop.events(now)]).await;

    let want_g = shop.expected(&["c0", "c1", "c2"], google_form);
    let want_m = shop.expected(&["c0", "c1", "c2"], meta_form);
    wait_until("google vip list", 30, || g.list("111") == want_g).await;
    wait_until("meta vip list", 30, || m.audience("222") == want_m).await;
    assert_eq!(
        m.schema("222"),
        Some(meta::SCHEMA.iter().map(|s| s.to_string()).collect())
    );

    // Consent withdrawn: removed everywhere. Erased: removed, and its hashes leave the ledger.
    stream(
        &d,
        vec![vec![
            ev("w1", now - 60, consent("c1", false)),
            ev("x2", now - 60, erase("c2")),
        ]],
    )
    .await;
    let want_g = shop.expected(&["c0"], google_form);
    let want_m = shop.expected(&["c0"], meta_form);
    wait_until("google removals", 30, || g.list("111") == want_g).await;
    wait_until("meta removals", 30, || m.audience("222") == want_m).await;
    let mut confirmed = Vec::new();
    wait_until_async(&d, &mut confirmed).await;
    assert!(
        confirmed
            .iter()
            .all(|s| s.confirmed_size == 1 && s.last_error.is_empty()),
        "{confirmed:?}"
    );

    // The metrics endpoint shows the pushes, the lists and the audience sizes.
    let text = d.scrape();
    for needle in [
        r#"audiencesync_sync_requests_total{destination="google",op="add",outcome="ok"}"#,
        r#"audiencesync_sync_members_sent_total{destination="meta",audience="vip",op="remove"} 2"#,
        r#"audiencesync_sync_confirmed_members{destination="google",audience="vip"} 1"#,
        r#"audiencesync_audience_members{audience="vip"}"#,
        "audiencesync_sync_rate_limit_wait_seconds_count",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    assert!(!text.contains("example.com"), "no PII in metrics");

    // A restart changes nothing remotely (the confirmed ledger survives).
    assert!(d.stop().success());
    let before = g.requests().len();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(g.list("111"), want_g);
    let mutations = g.requests()[before..]
        .iter()
        .filter(|r| r.path.contains("audienceMembers"))
        .count();
    assert_eq!(mutations, 0, "nothing to send after a restart");
    d.stop();
}

/// Polls until the sync status reports both lists settled.
async fn wait_until_async(d: &Daemon, out: &mut Vec<v1::SyncState>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        *out = d.sync_states().await;
        if out.len() == 2
            && out
                .iter()
                .all(|s| s.pending_adds == 0 && s.pending_removes == 0 && s.confirmed_size == 1)
        {
            return;
        }
        assert!(Instant::now() < deadline, "status never settled: {out:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_faults_still_converge_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    for f in [
        Fault::TooManyRequests {
            retry_after_secs: Some(1),
        },
        Fault::Status(500),
        Fault::Status(503),
        Fault::Status(413),
        Fault::Reset,
        Fault::MalformedJson,
        Fault::ExpireToken,
        Fault::RequestFailed,
    ] {
        g.inject(f);
    }
    let shop = Shop::vip_shape();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    stream(&d, vec![shop.events(now_secs())]).await;
    let want = shop.expected(&["c0", "c1", "c2"], google_form);
    wait_until("google list after faults", 60, || g.list("111") == want).await;
    let statuses: Vec<u16> = g.requests().iter().map(|r| r.status).collect();
    for code in [429, 500, 503, 0, 401] {
        assert!(
            statuses.contains(&code),
            "fault {code} was exercised: {statuses:?}"
        );
    }
    assert!(
        g.requests()
            .iter()
            .filter(|r| r.path.contains("token"))
            .count()
            >= 2,
        "the expired token was refreshed"
    );
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_fail_400_sets_one_member_aside_and_sends_the_rest() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    g.inject(Fault::FieldViolation { member_index: 0 });
    let shop = Shop::vip_shape();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    stream(&d, vec![shop.events(now_secs())]).await;
    wait_until("two of three vips", 30, || g.list("111").len() == 2).await;
    let all = shop.expected(&["c0", "c1", "c2"], google_form);
    assert!(g.list("111").is_subset(&all));
    let mut st = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !st
        .iter()
        .any(|s: &v1::SyncState| s.destination == "google" && s.last_error.contains("refused"))
    {
        assert!(
            Instant::now() < deadline,
            "refusal visible in status: {st:?}"
        );
        st = d.sync_states().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_throttling_transient_errors_and_a_parked_permanent_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    m.inject(Fault::MetaThrottle {
        code: 80003,
        regain_minutes: 0,
    });
    m.inject(Fault::MetaError {
        code: 2,
        subcode: None,
        transient: true,
    });
    m.inject(Fault::Status(500));
    m.inject(Fault::ExpireToken);
    let shop = Shop::vip_shape();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    stream(&d, vec![shop.events(now_secs())]).await;
    // The throttle is visible as rate-limit state while it lasts.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !d
        .sync_states()
        .await
        .iter()
        .any(|s| s.destination == "meta" && s.throttled_until.is_some())
    {
        assert!(
            Instant::now() < deadline,
            "throttling never visible in status"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let want = shop.expected(&["c0", "c1", "c2"], meta_form);
    wait_until("meta list after faults", 60, || m.audience("222") == want).await;
    // The audience's description is read once it holds members; the fault below is for the
    // next upload.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !d
        .sync_states()
        .await
        .iter()
        .any(|s| s.destination == "meta" && s.remote.as_ref().is_some_and(|r| r.read_at.is_some()))
    {
        assert!(Instant::now() < deadline, "the audience was never read");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Terms not accepted: parked with the fix shown, no retry loop; a resync resumes.
    m.inject(Fault::MetaError {
        code: 200,
        subcode: Some(1870090),
        transient: false,
    });
    stream(
        &d,
        vec![vec![ev("w0", now_secs() - 30, consent("c0", false))]],
    )
    .await;
    let mut parked = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while parked.is_none() {
        assert!(Instant::now() < deadline, "never parked");
        parked = d
            .sync_states()
            .await
            .into_iter()
            .find(|s| s.destination == "meta" && s.parked);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = parked.expect("parked");
    assert!(p.advice.contains("terms"), "{p:?}");
    let calls = m.requests().len();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(m.requests().len(), calls, "a parked list is not retried");
    d.admin()
        .await
        .trigger_resync(v1::TriggerResyncRequest {
            destination: "meta".into(),
            audience: "vip".into(),
            mode: v1::ResyncMode::Delta as i32,
        })
        .await
        .expect("resync");
    let want = shop.expected(&["c1", "c2"], meta_form);
    wait_until("meta list after resync", 30, || m.audience("222") == want).await;
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_resync_replaces_the_remote_lists() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let (d, _shop, want_g, want_m) = vips_synced(tmp.path(), &g, &m).await;
    let job = d
        .admin()
        .await
        .trigger_resync(v1::TriggerResyncRequest {
            destination: String::new(),
            audience: "vip".into(),
            mode: v1::ResyncMode::Full as i32,
        })
        .await
        .expect("resync")
        .into_inner()
        .job_id;
    assert!(job.starts_with("resync-"));
    wait_until("removeAll + usersreplace", 30, || {
        g.requests()
            .iter()
            .any(|r| r.path.ends_with(":removeAll") && r.status == 200)
            && m.requests()
                .iter()
                .any(|r| r.path.ends_with("/usersreplace") && r.status == 200)
    })
    .await;
    wait_until("google after replace", 30, || g.list("111") == want_g).await;
    wait_until("meta after replace", 30, || m.audience("222") == want_m).await;
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rate_never_exceeds_the_quota_and_batches_respect_meta_limits() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    // 600 lapsed buyers to one Meta list, at 120 requests/min (one per 500 ms).
    let cfg = config(tmp.path(), &g, &m, "", "quota_per_minute = 120").replace(
        r#"lists = [{ audience = "vip", list_id = "222" }]"#,
        r#"lists = [{ audience = "lapsed_90", list_id = "223" }]"#,
    );
    // A front end's 70 KB limit: the daemon shrinks its batches to fit, so several requests
    // carry the 600 rows and their spacing shows the quota.
    m.set_max_body_bytes(Some(70_000));
    let d = Daemon::start(tmp.path(), &cfg);
    let now = now_secs();
    let mut events = Vec::new();
    for i in 0..600 {
        let id = format!("l{i}");
        events.push(ev(
            &format!("u{i}"),
            now - 200 * DAY,
            person(
                &id,
                &format!("lapsed{i}@example.com"),
                &format!("+1415555{:04}", i % 10_000),
                true,
            ),
        ));
        events.push(ev(
            &format!("o{i}"),
            now - 100 * DAY,
            order(&format!("o{i}"), &id, 1_000, "USD"),
        ));
    }
    stream(&d, vec![events]).await;
    wait_until("600 rows at meta", 60, || m.audience("223").len() == 600).await;
    let adds: Vec<_> = m
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/users") && r.status == 200)
        .collect();
    assert!(
        adds.len() >= 4,
        "600 rows need several requests under 70 KB: {}",
        adds.len()
    );
    assert!(adds.iter().all(|r| r.members <= meta::MAX_ROWS));
    let all: Vec<_> = m.requests();
    for w in all.windows(2) {
        let gap = w[1].at.duration_since(w[0].at);
        assert!(
            gap >= Duration::from_millis(450),
            "requests {gap:?} apart exceed 120/min"
        );
    }
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_push_then_restart_converges_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    g.inject(Fault::Delay(Duration::from_secs(3)));
    let shop = Shop::vip_shape();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    stream(&d, vec![shop.events(now_secs())]).await;
    wait_until("a google push in flight", 20, || {
        g.requests()
            .iter()
            .any(|r| r.path.contains("audienceMembers"))
            || !g.list("111").is_empty()
    })
    .await;
    d.kill9();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    let want_g = shop.expected(&["c0", "c1", "c2"], google_form);
    let want_m = shop.expected(&["c0", "c1", "c2"], meta_form);
    wait_until("google after restart", 30, || g.list("111") == want_g).await;
    wait_until("meta after restart", 30, || m.audience("222") == want_m).await;
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_created_once_and_the_match_rate_is_reported() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let cfg = config(tmp.path(), &g, &m, "", r#"ad_account_id = "555000""#)
        .replace(
            r#"lists = [{ audience = "vip", list_id = "111" }]"#,
            r#"lists = [{ audience = "vip", create = true }]"#,
        )
        .replace(
            r#"lists = [{ audience = "vip", list_id = "222" }]"#,
            r#"lists = [{ audience = "vip", create = true }]"#,
        );
    let shop = Shop::vip_shape();
    let d = Daemon::start(tmp.path(), &cfg);
    stream(&d, vec![shop.events(now_secs())]).await;
    let want_g = shop.expected(&["c0", "c1", "c2"], google_form);
    let want_m = shop.expected(&["c0", "c1", "c2"], meta_form);
    let mut ids;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = d.sync_states().await;
        let id = |dest: &str| {
            st.iter()
                .find(|s| s.destination == dest)
                .map(|s| s.list_id.clone())
                .unwrap_or_default()
        };
        ids = (id("google"), id("meta"));
        let google_done = !ids.0.is_empty() && g.list(&ids.0) == want_g;
        let meta_done = !ids.1.is_empty() && m.audience(&ids.1) == want_m;
        let rate = st
            .iter()
            .find(|s| s.destination == "google")
            .map(|s| s.match_rate.clone())
            .unwrap_or_default();
        if google_done && meta_done && rate.starts_with("MATCH_RATE_RANGE_") {
            break;
        }
        assert!(Instant::now() < deadline, "lists never filled: {st:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let creations = |g: &FakeGoogle, m: &FakeMeta| {
        g.requests()
            .iter()
            .filter(|r| r.path.ends_with("/userLists"))
            .count()
            + m.requests()
                .iter()
                .filter(|r| r.path.ends_with("/customaudiences"))
                .count()
    };
    assert_eq!(creations(&g, &m), 2);
    assert!(d.stop().success());

    // A restart uses the stored ids: nothing is created again.
    let d = Daemon::start(tmp.path(), &cfg);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(creations(&g, &m), 2);
    let st = d.sync_states().await;
    assert!(
        st.iter()
            .any(|s| s.destination == "google" && s.list_id == ids.0),
        "{st:?}"
    );
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_check_verifies_credentials_and_lists_without_changing_anything() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let path = tmp.path().join("check.toml");
    let check = |cfg: &str| {
        std::fs::write(&path, cfg).expect("write");
        std::process::Command::new(env!("CARGO_BIN_EXE_audiencesync"))
            .args(["destinations", "check", "--config"])
            .arg(&path)
            .output()
            .expect("run")
    };
    let good = config(tmp.path(), &g, &m, "", "");
    let out = check(&good);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("ok ").count(), 2, "{stdout}");
    assert!(
        g.list("111").is_empty() && m.audience("222").is_empty(),
        "nothing changed"
    );

    // An unknown Meta audience and a wrong token: each named, with its fix, exit non-zero.
    let bad = good.replace(r#"list_id = "222""#, r#"list_id = "999""#);
    std::fs::write(tmp.path().join("meta-token"), "not-the-token").expect("token");
    let out = check(&bad);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("FAILED  meta / vip (999)"), "{stdout}");
    assert!(
        !stdout.contains("not-the-token"),
        "the token is never printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_key_signs_in_and_a_broken_one_stops_the_start() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let key = include_str!("fixtures/test-service-account-key.pem");
    let sa = serde_json::json!({
        "type": "service_account",
        "project_id": "test",
        "private_key_id": "k1",
        "private_key": key,
        "client_email": "sync@test.iam.gserviceaccount.com",
        "client_id": "123",
        "token_uri": g.token_url,
    });
    let cfg = config(tmp.path(), &g, &m, "", "");
    // Written after `config`, which writes the refresh-token file we replace here.
    std::fs::write(tmp.path().join("google-oauth.json"), sa.to_string()).expect("sa");
    let shop = Shop::vip_shape();
    let d = Daemon::start(tmp.path(), &cfg);
    stream(&d, vec![shop.events(now_secs())]).await;
    let want = shop.expected(&["c0", "c1", "c2"], google_form);
    wait_until("google via service account", 30, || g.list("111") == want).await;
    d.stop();

    let mut broken = sa.clone();
    broken["private_key"] =
        "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".into();
    std::fs::write(tmp.path().join("google-oauth.json"), broken.to_string()).expect("broken");
    let (status, log) = Daemon::start_failing(tmp.path(), &cfg);
    assert!(!status.success());
    assert!(
        log.contains("credentials_file") && log.contains("private_key"),
        "{log}"
    );
    assert!(
        !log.contains("not a key"),
        "key material is never echoed: {log}"
    );
}
