//! Fault injection against the fake ad networks, beyond `sync_e2e.rs` (which covers 429 with
//! Retry-After, 500, 503, 413, resets, malformed JSON, expired tokens, FAILED requests, Meta
//! error codes and a parked terms error): 429 without Retry-After, client timeouts on requests
//! the network still processed, slow response bodies, partial failures across the requests
//! and lists of one sync, and permanent errors that must be parked and visible in status.
//! Every scenario ends in the exact expected lists, or a parked list an operator can see.

mod common;
mod fakes;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use audiencesync::proto::v1;
use common::workload::*;
use common::*;
use fakes::{destinations_toml, fakes_pair, FakeGoogle, FakeMeta, Fault};

async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every list reports nothing pending and no error, and returns the states.
async fn settled(d: &Daemon, lists: usize) -> Vec<v1::SyncState> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = d.sync_states().await;
        if st.len() == lists
            && st.iter().all(|s| {
                s.pending_adds == 0
                    && s.pending_removes == 0
                    && !s.parked
                    && s.last_error.is_empty()
            })
        {
            return st;
        }
        assert!(Instant::now() < deadline, "never settled: {st:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Ingests the shop and returns the eligible members of `audience` the lists must equal.
async fn fill(d: &Daemon, shop: &Shop, audience: &str) -> BTreeSet<String> {
    let acks = ingest_all(d, &shop.batches).await;
    assert!(acks.iter().all(|a| a.rejected.is_empty()));
    let m = members(d, audience, true).await;
    assert!(m.len() >= 3, "{audience}: {m:?}");
    m
}

fn statuses(requests: &[fakes::RecordedRequest]) -> Vec<u16> {
    requests.iter().map(|r| r.status).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_429_without_retry_after_timeouts_and_slow_bodies_converge_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes_pair().await;
    for f in [
        // Throttled with no hint: the daemon's own backoff.
        Fault::TooManyRequests {
            retry_after_secs: None,
        },
        // Longer than the client's 2 s timeout, and applied anyway after 3 s: the daemon
        // cannot know, resends, and the idempotent add leaves one copy.
        Fault::Delay(Duration::from_secs(3)),
        // A body trickling in well within the timeout: success.
        Fault::SlowBody {
            chunks: 3,
            gap: Duration::from_millis(200),
        },
        // A body stalling past the timeout (the request was applied): resent.
        Fault::SlowBody {
            chunks: 4,
            gap: Duration::from_secs(1),
        },
        Fault::Reset,
        Fault::Status(503),
    ] {
        g.inject(f);
    }
    let cfg = destinations_toml(
        tmp.path(),
        &g,
        &m,
        r#"linger = "100ms"
timeout = "2s"
status_poll_interval = "200ms"
status_first_poll = "200ms"
lists = [{ audience = "vip", list_id = "111" }, { audience = "stage_active", list_id = "112" }]"#,
        r#"linger = "100ms"
lists = []"#,
    );
    let d = Daemon::start(tmp.path(), &cfg);
    let shop = Shop::new(40, 31, now_secs(), 20);
    let vip = fill(&d, &shop, "vip").await;
    let active = members(&d, "stage_active", true).await;
    let want_vip = shop.expected(&vip, google_form);
    let want_active = shop.expected(&active, google_form);
    wait_until("google vip", 90, || g.list("111") == want_vip).await;
    wait_until("google stage_active", 90, || g.list("112") == want_active).await;
    settled(&d, 2).await;
    let seen = statuses(&g.requests());
    for code in [429, 503, 0] {
        assert!(seen.contains(&code), "fault {code} exercised: {seen:?}");
    }
    let timeouts = d.log_text().matches("request timed out").count();
    assert!(timeouts >= 2, "two client timeouts, found {timeouts}");
    assert_eq!(
        g.list("111"),
        want_vip,
        "still exact after everything settled"
    );
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_throttle_without_a_hint_timeouts_and_slow_bodies_converge_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes_pair().await;
    for f in [
        Fault::MetaThrottle {
            code: 17,
            regain_minutes: 0,
        },
        Fault::Delay(Duration::from_secs(3)),
        Fault::SlowBody {
            chunks: 4,
            gap: Duration::from_secs(1),
        },
        Fault::SlowBody {
            chunks: 2,
            gap: Duration::from_millis(100),
        },
        Fault::Status(429),
        Fault::MalformedJson,
    ] {
        m.inject(f);
    }
    let cfg = destinations_toml(
        tmp.path(),
        &g,
        &m,
        r#"linger = "100ms"
lists = []"#,
        r#"linger = "100ms"
timeout = "2s"
lists = [{ audience = "vip", list_id = "222" }, { audience = "stage_active", list_id = "223" }]"#,
    );
    let d = Daemon::start(tmp.path(), &cfg);
    let shop = Shop::new(40, 32, now_secs(), 20);
    let vip = fill(&d, &shop, "vip").await;
    let active = members(&d, "stage_active", true).await;
    let want_vip = shop.expected(&vip, meta_form);
    let want_active = shop.expected(&active, meta_form);
    wait_until("meta vip", 90, || m.audience("222") == want_vip).await;
    wait_until("meta stage_active", 90, || m.audience("223") == want_active).await;
    settled(&d, 2).await;
    let seen = statuses(&m.requests());
    assert!(seen.contains(&429) && seen.contains(&400), "{seen:?}");
    assert!(d.log_text().contains("request timed out"));
    d.stop();
}

/// A lapsed-buyer shop big enough that one Meta sync takes several requests.
fn lapsed_events(n: usize, now: i64) -> Vec<v1::Event> {
    let mut events = Vec::new();
    for i in 0..n {
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
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failures_within_one_sync_converge_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes_pair().await;
    // Meta: 600 rows behind a 70 KB front-end limit: the first request is too large (413),
    // the daemon halves its batches until they fit (150 rows), and the requests after it fail
    // in turn (500, reset, 503) while the others are applied.
    m.set_max_body_bytes(Some(70_000));
    for f in [
        Fault::Pass,
        Fault::Status(500),
        Fault::Pass,
        Fault::Reset,
        Fault::Pass,
        Fault::Status(503),
    ] {
        m.inject(f);
    }
    // Google: of two lists synced in one cycle, the first request goes through and the
    // second fails.
    g.inject(Fault::Pass);
    g.inject(Fault::Status(500));
    let cfg = destinations_toml(
        tmp.path(),
        &g,
        &m,
        r#"linger = "100ms"
status_poll_interval = "200ms"
status_first_poll = "200ms"
lists = [{ audience = "lapsed_90", list_id = "111" }, { audience = "stage_lapsed", list_id = "112" }]"#,
        r#"linger = "100ms"
lists = [{ audience = "lapsed_90", list_id = "223" }]"#,
    );
    let d = Daemon::start(tmp.path(), &cfg);
    let now = now_secs();
    stream(&d, vec![lapsed_events(600, now)]).await;
    let ids: BTreeSet<String> = (0..600).map(|i| format!("l{i}")).collect();
    assert_eq!(members(&d, "lapsed_90", true).await, ids);
    let form = |f: fn(&audiencesync::sync::member::RemoteMember) -> String| -> BTreeSet<String> {
        (0..600)
            .map(|i| {
                f(&member(
                    &format!("l{i}"),
                    &format!("lapsed{i}@example.com"),
                    &format!("+1415555{:04}", i % 10_000),
                ))
            })
            .collect()
    };
    let (want_g, want_m) = (form(google_form), form(meta_form));
    wait_until("meta 600 rows", 120, || m.audience("223") == want_m).await;
    wait_until("google lapsed_90", 60, || g.list("111") == want_g).await;
    wait_until("google stage_lapsed", 60, || g.list("112") == want_g).await;
    settled(&d, 3).await;
    let meta_adds = m
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/users"))
        .count();
    assert!(
        meta_adds >= 7,
        "several requests plus three resends: {meta_adds}"
    );
    d.stop();
}

/// Config where Google's refresh token has been revoked.
fn revoked(dir: &std::path::Path, g: &FakeGoogle, m: &FakeMeta) -> String {
    let cfg = destinations_toml(
        dir,
        g,
        m,
        r#"linger = "100ms"
lists = [{ audience = "vip", list_id = "111" }]"#,
        r#"linger = "100ms"
lists = [{ audience = "vip", list_id = "222" }, { audience = "stage_active", list_id = "223" }]"#,
    );
    std::fs::write(
        dir.join("google-oauth.json"),
        r#"{"client_id":"cid","client_secret":"csecret","refresh_token":"revoked-token"}"#,
    )
    .expect("creds");
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_are_parked_visible_in_status_and_not_retried() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes_pair().await;
    // Meta: no access to the first list's audience (code 10, permanent).
    m.inject(Fault::Status(403));
    let d = Daemon::start(tmp.path(), &revoked(tmp.path(), &g, &m));
    let shop = Shop::new(40, 33, now_secs(), 20);
    fill(&d, &shop, "vip").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let parked = loop {
        let st = d.sync_states().await;
        let parked: Vec<_> = st.iter().filter(|s| s.parked).cloned().collect();
        if parked.len() == 2 {
            break parked;
        }
        assert!(Instant::now() < deadline, "never parked: {st:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let google = parked
        .iter()
        .find(|s| s.destination == "google")
        .expect("google parked");
    assert!(
        google.last_error.contains("token endpoint") && google.advice.contains("refresh token"),
        "{google:?}"
    );
    assert!(
        !google.last_error.contains("revoked-token"),
        "secret echoed"
    );
    let meta = parked
        .iter()
        .find(|s| s.destination == "meta")
        .expect("meta parked");
    assert!(meta.advice.contains("access"), "{meta:?}");

    // The other Meta list is not held up by its parked sibling. (Which of the two met the
    // error depends on which had members first.)
    let list_of = |a: &str| if a == "vip" { "222" } else { "223" };
    let parked_audience = meta.audience.clone();
    let other = if parked_audience == "vip" {
        "stage_active"
    } else {
        "vip"
    };
    let want = shop.expected(&members(&d, other, true).await, meta_form);
    wait_until("the other meta list", 60, || {
        m.audience(list_of(other)) == want
    })
    .await;

    // No retry loop: nothing more is sent for the parked lists (the other Meta list may
    // still be read).
    let parked_path = format!("/{}", list_of(&parked_audience));
    let to_parked = || {
        m.requests()
            .iter()
            .filter(|r| r.path.contains(&parked_path))
            .count()
    };
    let (g_calls, m_calls) = (g.requests().len(), to_parked());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(g.requests().len(), g_calls, "google retried a parked list");
    assert_eq!(to_parked(), m_calls, "meta retried a parked list");

    // What an operator sees.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_audiencesync"))
        .args(["status", "--addr", &d.url()])
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("PARKED").count(), 2, "{text}");
    assert!(text.contains("renew the OAuth refresh token"), "{text}");

    // Fixed (access granted): a resync unparks and the list converges.
    d.admin()
        .await
        .trigger_resync(v1::TriggerResyncRequest {
            destination: "meta".into(),
            audience: parked_audience.clone(),
            mode: v1::ResyncMode::Delta as i32,
        })
        .await
        .expect("resync");
    let want = shop.expected(&members(&d, &parked_audience, true).await, meta_form);
    wait_until("the parked meta list after resync", 60, || {
        m.audience(list_of(&parked_audience)) == want
    })
    .await;
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_one_of_two_people_sharing_a_phone_keeps_the_other_on_the_lists() {
    // Both networks match people, not rows: a removal drops every member sharing an
    // identifier with the removed one. The daemon must put the other one back.
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes_pair().await;
    let cfg = destinations_toml(
        tmp.path(),
        &g,
        &m,
        r#"linger = "100ms"
status_poll_interval = "200ms"
status_first_poll = "200ms"
lists = [{ audience = "vip", list_id = "111" }]"#,
        r#"linger = "100ms"
lists = [{ audience = "vip", list_id = "222" }]"#,
    );
    let d = Daemon::start(tmp.path(), &cfg);
    let now = now_secs();
    let shared_phone = "+12125550199";
    let mut events = Vec::new();
    for (i, cents) in [50_000, 40_000, 100, 100, 100, 100, 100, 100]
        .iter()
        .enumerate()
    {
        let id = format!("h{i}");
        let phone = if i < 2 {
            shared_phone.to_string()
        } else {
            format!("+1212555{:04}", 3000 + i)
        };
        events.push(ev(
            &format!("u-{id}"),
            now - 30 * DAY,
            person(&id, &format!("h{i}@example.com"), &phone, true),
        ));
        events.push(ev(
            &format!("o-{id}"),
            now - 10 * DAY,
            order(&format!("o-{id}"), &id, *cents, "USD"),
        ));
    }
    stream(&d, vec![events]).await;
    let both = BTreeSet::from(["h0".to_string(), "h1".to_string()]);
    assert_eq!(members(&d, "vip", true).await, both);
    let forms = |ids: &[&str], f: fn(&audiencesync::sync::member::RemoteMember) -> String| {
        ids.iter()
            .map(|id| f(&member(id, &format!("{id}@example.com"), shared_phone)))
            .collect::<BTreeSet<_>>()
    };
    wait_until("google both", 30, || {
        g.list("111") == forms(&["h0", "h1"], google_form)
    })
    .await;
    wait_until("meta both", 30, || {
        m.audience("222") == forms(&["h0", "h1"], meta_form)
    })
    .await;

    // h0 withdraws consent: removed with the shared phone, which takes h1 along remotely.
    stream(&d, vec![vec![ev("w-h0", now - 60, consent("h0", false))]]).await;
    let want_g = forms(&["h1"], google_form);
    let want_m = forms(&["h1"], meta_form);
    wait_until("google keeps h1", 30, || g.list("111") == want_g).await;
    wait_until("meta keeps h1", 30, || m.audience("222") == want_m).await;
    settled(&d, 2).await;
    assert_eq!(g.list("111"), want_g);
    assert_eq!(m.audience("222"), want_m);
    d.stop();
}
