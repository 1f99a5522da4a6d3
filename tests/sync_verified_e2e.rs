//! "In sync" means verified: a member counts as on a remote list only once the network reported
//! the outcome of the request that carried it, and status shows what is still in flight, what
//! the network refused and why, and every resync job's progress and result. The real daemon
//! against the fakes of `tests/fakes`, over real sockets.

mod common;
mod fakes;
mod shop;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use audiencesync::proto::v1;
use common::workload::{google_form, meta_form};
use common::*;
use fakes::Fault;
use shop::{config, fakes, vips_synced, wait_until, Shop};

fn state<'a>(states: &'a [v1::SyncState], destination: &str) -> Option<&'a v1::SyncState> {
    states.iter().find(|s| s.destination == destination)
}

/// Waits until the daemon counts `n` members of `destination`'s list as confirmed (a fake applies
/// a list before the daemon reads the outcome).
async fn confirmed(d: &Daemon, destination: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while state(&d.sync_states().await, destination).map(|s| s.confirmed_size) != Some(n) {
        assert!(
            Instant::now() < deadline,
            "{destination} never confirmed {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn full_resync(d: &Daemon, destination: &str) -> String {
    d.admin()
        .await
        .trigger_resync(v1::TriggerResyncRequest {
            destination: destination.into(),
            audience: "vip".into(),
            mode: v1::ResyncMode::Full as i32,
        })
        .await
        .expect("resync")
        .into_inner()
        .job_id
}

/// Waits until `destination`'s job `job` reads `done`, and returns its status.
async fn job_done(d: &Daemon, destination: &str, job: &str) -> v1::SyncState {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states = d.sync_states().await;
        if let Some(s) = state(&states, destination) {
            let j = s.job.clone().unwrap_or_default();
            if j.job_id == job && j.state == "done" && s.in_sync {
                return s.clone();
            }
            assert_ne!(j.state, "failed", "{s:?}");
        }
        assert!(
            Instant::now() < deadline,
            "job {job} never done: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The shop's config with a network's first status poll `after` acceptance instead of 200 ms.
fn config_first_poll(
    dir: &std::path::Path,
    g: &fakes::FakeGoogle,
    m: &fakes::FakeMeta,
    after: &str,
) -> String {
    config(dir, g, m, "", "").replace(
        "status_first_poll = \"200ms\"",
        &format!("status_first_poll = \"{after}\""),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_member_is_confirmed_only_once_its_request_reads_success() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let shop = Shop::vip_shape();
    // The first poll comes 3 s after the ingest was accepted.
    let cfg = config_first_poll(tmp.path(), &g, &m, "3s");
    let d = Daemon::start(tmp.path(), &cfg);
    stream(&d, vec![shop.events(now_secs())]).await;
    wait_until("the ingest accepted", 30, || {
        g.requests()
            .iter()
            .any(|r| r.path.ends_with(":ingest") && r.status == 200)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let states = d.sync_states().await;
    let s = state(&states, "google").expect("google");
    assert_eq!(
        (s.confirmed_size, s.in_flight, s.in_sync),
        (0, 3, false),
        "accepted is not applied: {s:?}"
    );
    assert_eq!(s.accepted, 3);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states = d.sync_states().await;
        let s = state(&states, "google").expect("google");
        if s.confirmed_size == 3 && s.in_flight == 0 && s.in_sync {
            assert_eq!(s.processed, 3, "{s:?}");
            break;
        }
        assert!(Instant::now() < deadline, "never confirmed: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        g.list("111"),
        shop.expected(&["c0", "c1", "c2"], google_form)
    );
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_is_never_counted_and_its_members_are_sent_again() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    g.inject(Fault::RequestFailed);
    let shop = Shop::vip_shape();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    stream(&d, vec![shop.events(now_secs())]).await;
    let want = shop.expected(&["c0", "c1", "c2"], google_form);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut saw_failure = false;
    loop {
        let states = d.sync_states().await;
        let on_list = g.list("111").len() as u64;
        if let Some(s) = state(&states, "google") {
            // Never more confirmed than the network holds.
            assert!(
                s.confirmed_size <= on_list,
                "{s:?} with {on_list} on the list"
            );
            saw_failure |= s.last_error.contains("FAILED");
            if s.in_sync && g.list("111") == want {
                break;
            }
        }
        assert!(Instant::now() < deadline, "never converged: {states:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        saw_failure || d.log_text().contains("request not applied by the network"),
        "the failure was shown"
    );
    let ingests = g
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(":ingest") && r.status == 200)
        .count();
    assert!(ingests >= 2, "the failed request's members were sent again");
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_resync_is_a_job_whose_progress_and_result_status_shows() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let (d, _shop, want_g, want_m) = vips_synced(tmp.path(), &g, &m).await;

    let job = full_resync(&d, "").await;
    for dest in ["google", "meta"] {
        let s = job_done(&d, dest, &job).await;
        let j = s.job.expect("job");
        assert_eq!((j.kind.as_str(), j.sent, j.total), ("full", 3, 3), "{dest}");
        assert!(j.finished_at.is_some());
        assert_eq!(s.confirmed_size, 3, "{dest}");
    }
    assert_eq!(g.list("111"), want_g);
    assert_eq!(m.audience("222"), want_m);
    // The removeAll names the job's start, so a resumed job never removes its own uploads.
    assert!(g
        .requests()
        .iter()
        .any(|r| r.path.ends_with(":removeAll") && r.status == 200));

    // Job ids stay unique across a restart.
    d.stop();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    let states = d.sync_states().await;
    let kept = state(&states, "google").and_then(|s| s.job.clone());
    assert_eq!(
        kept.map(|j| j.job_id),
        Some(job.clone()),
        "the job's result survives a restart"
    );
    let next = full_resync(&d, "google").await;
    assert_ne!(next, job);
    job_done(&d, "google", &next).await;
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_resync_killed_after_a_batch_resumes_and_completes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let shop = Shop::vip_shape();
    let cfg = config(tmp.path(), &g, &m, "", "");
    let d = Daemon::start(tmp.path(), &cfg);
    stream(&d, vec![shop.events(now_secs())]).await;
    let want_g = shop.expected(&["c0", "c1", "c2"], google_form);
    let want_m = shop.expected(&["c0", "c1", "c2"], meta_form);
    wait_until("google", 30, || g.list("111") == want_g).await;
    wait_until("meta", 30, || m.audience("222") == want_m).await;
    d.stop();

    let d = Daemon::start_env(
        tmp.path(),
        &cfg,
        &[("FAILPOINTS", "sync_replace_after_batch=return")],
    );
    let job = full_resync(&d, "google").await;
    assert!(
        d.wait_stdout("failpoint sync_replace_after_batch reached", 30)
            .await,
        "the job reached its first batch"
    );
    d.kill9();

    let d = Daemon::start(tmp.path(), &cfg);
    let s = job_done(&d, "google", &job).await;
    assert_eq!(s.confirmed_size, 3);
    assert_eq!(g.list("111"), want_g, "no hole after the resumed job");
    let remove_alls = g
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(":removeAll") && r.status == 200)
        .count();
    assert_eq!(remove_alls, 1, "the job resumed after its removeAll");
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_by_reason_and_what_the_networks_report_reach_status_and_metrics() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    g.set_match_rate(45);
    g.inject(Fault::PartialSuccess {
        refuse: 1,
        reason: "PROCESSING_ERROR_REASON_INVALID_FORMAT".into(),
    });
    m.inject(Fault::MetaInvalidEntries { count: 1 });
    let shop = Shop::vip_shape();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    stream(&d, vec![shop.events(now_secs())]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (google, meta) = loop {
        let states = d.sync_states().await;
        let (Some(g), Some(m)) = (state(&states, "google"), state(&states, "meta")) else {
            continue;
        };
        let read = |s: &v1::SyncState| s.remote.as_ref().is_some_and(|r| r.read_at.is_some());
        if g.in_sync && m.in_sync && read(g) && read(m) {
            break (g.clone(), m.clone());
        }
        assert!(Instant::now() < deadline, "never settled: {states:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Google: one row refused without a name; the list misses exactly that one, explained.
    assert_eq!(
        google.refused,
        vec![v1::RefusedCount {
            reason: "PROCESSING_ERROR_REASON_INVALID_FORMAT".into(),
            count: 1
        }]
    );
    assert_eq!(g.list("111").len(), 2);
    let remote = google.remote.expect("remote");
    assert_eq!(
        (remote.size_upper, remote.match_rate.as_str()),
        (Some(2), "45%")
    );
    // Meta: the refused row is named, set aside and not confirmed.
    assert_eq!(meta.set_aside, 1, "{meta:?}");
    assert_eq!(meta.confirmed_size, 2);
    assert_eq!(m.audience("222").len(), 2);
    let remote = meta.remote.expect("remote");
    assert!(remote.operation_status.starts_with("200"), "{remote:?}");
    assert!(remote.size_upper.is_some());
    // The same in metrics.
    let scrape = d.scrape();
    assert!(
        scrape
            .lines()
            .any(|l| l.starts_with("audiencesync_sync_members_refused_total")
                && l.contains("PROCESSING_ERROR_REASON_INVALID_FORMAT")
                && l.ends_with(" 1")),
        "{scrape}"
    );
    assert!(
        scrape.contains("audiencesync_sync_remote_size{"),
        "{scrape}"
    );
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_daily_quota_pauses_the_destination_visibly_without_retrying() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    g.set_daily_quota(Some(0));
    let shop = Shop::vip_shape();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    stream(&d, vec![shop.events(now_secs())]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let paused = loop {
        let states = d.sync_states().await;
        if let Some(s) = state(&states, "google").filter(|s| s.paused_daily) {
            break s.clone();
        }
        assert!(Instant::now() < deadline, "never paused: {states:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let until = paused.throttled_until.expect("until when").seconds;
    let wait = until - now_secs();
    assert!(
        (1..=25 * 3600).contains(&wait),
        "paused until Pacific midnight: {wait} s"
    );
    assert!(paused.last_error.contains("PerDay"), "{paused:?}");
    let calls = g.requests().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(g.requests().len(), calls, "nothing sent while paused");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_audiencesync"))
        .args(["status", "--addr", &d.url()])
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("per-day quota spent"), "{text}");
    assert!(d
        .scrape()
        .lines()
        .any(|l| l.starts_with("audiencesync_sync_paused{")
            && l.contains("destination=\"google\"")
            && l.ends_with(" 1")));
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replace_the_network_fails_is_started_over_then_failed_visibly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let shop = Shop::vip_shape();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    stream(&d, vec![shop.events(now_secs())]).await;
    let want = shop.expected(&["c0", "c1", "c2"], meta_form);
    wait_until("meta", 30, || m.audience("222") == want).await;

    // Failed once (415): the job starts over and completes.
    m.fail_next_replace();
    let job = full_resync(&d, "meta").await;
    let s = job_done(&d, "meta", &job).await;
    let j = s.job.expect("job");
    assert!(j.detail.is_empty(), "{j:?}");
    let sessions: BTreeSet<String> = m
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/usersreplace"))
        .map(|r| r.path.clone())
        .collect();
    assert!(!sessions.is_empty());
    assert_eq!(m.audience("222"), want);

    // Failed twice: the job fails and the list is parked with the fix.
    m.fail_next_replace();
    m.fail_next_replace();
    let job = full_resync(&d, "meta").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states = d.sync_states().await;
        let s = state(&states, "meta").expect("meta");
        let j = s.job.clone().unwrap_or_default();
        if j.job_id == job && j.state == "failed" {
            assert!(s.parked, "{s:?}");
            assert!(j.detail.contains("415"), "{j:?}");
            break;
        }
        assert!(Instant::now() < deadline, "never failed: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        m.audience("222"),
        want,
        "a failed replace leaves the list as it was"
    );
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replace_session_the_network_ends_stands_and_the_rest_is_added() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let shop = Shop::vip_shape();
    // One Meta request a second, batches of one row (a 1 KB front-end limit), and a replace
    // window of 1.5 s at the fake: the session ends after its first batches.
    let cfg = config(tmp.path(), &g, &m, "", "quota_per_minute = 60");
    let d = Daemon::start(tmp.path(), &cfg);
    stream(&d, vec![shop.events(now_secs())]).await;
    let want = shop.expected(&["c0", "c1", "c2"], meta_form);
    wait_until("meta", 30, || m.audience("222") == want).await;
    m.set_max_body_bytes(Some(1_500));
    m.set_replace_window(Duration::from_millis(1_500));
    let job = full_resync(&d, "meta").await;
    let s = job_done(&d, "meta", &job).await;
    let j = s.job.expect("job");
    assert!(
        j.detail.contains("ended the replace session"),
        "the session's end is shown: {j:?}"
    );
    assert!(
        j.sent < 3,
        "the session ended before the last member: {j:?}"
    );
    // What the session received stands; the members it did not carry are added after it.
    wait_until("meta after the job", 30, || m.audience("222") == want).await;
    let states = d.sync_states().await;
    let s = state(&states, "meta").expect("meta");
    assert!(s.in_sync && s.confirmed_size == 3, "{s:?}");
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_closes_a_replace_session_before_its_window_ends() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let shop = Shop::ranked(64);
    // One Meta request a second and batches of two rows; the daemon reckons with a 2 s window
    // and so closes the session from 1.78 s on, well before the sixteenth VIP. The fake keeps Meta's
    // 90 minutes: a session it had to time out would fail the test.
    let cfg = config(
        tmp.path(),
        &g,
        &m,
        "",
        "quota_per_minute = 60\nreplace_session_window = \"2s\"",
    );
    let d = Daemon::start(tmp.path(), &cfg);
    stream(&d, vec![shop.events(now_secs())]).await;
    let vips: Vec<String> = (0..16).map(|i| format!("c{i}")).collect();
    let vips: Vec<&str> = vips.iter().map(String::as_str).collect();
    let want = shop.expected(&vips, meta_form);
    wait_until("meta", 30, || m.audience("222") == want).await;
    m.set_max_body_bytes(Some(1_500));
    let job = full_resync(&d, "meta").await;
    let s = job_done(&d, "meta", &job).await;
    let j = s.job.expect("job");
    let replaced: Vec<_> = m
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/usersreplace"))
        .collect();
    assert!(
        j.detail.contains("closed before its window ended"),
        "the early close is shown: {j:?} {replaced:?}"
    );
    assert!(
        j.sent < 16,
        "the session closed before the last member: {j:?} {replaced:?}"
    );
    assert!(
        replaced.iter().all(|r| r.status == 200 || r.status == 413),
        "no batch met a closed or timed-out session: {replaced:?}"
    );
    assert_eq!(
        replaced
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.members as u64)
            .sum::<u64>(),
        j.sent,
        "the accepted batches carried what the job sent"
    );
    assert_eq!(
        m.operation_status("222"),
        Some(200),
        "the replace was applied"
    );
    // The members the session did not carry are added after it.
    wait_until("meta after the job", 30, || m.audience("222") == want).await;
    let states = d.sync_states().await;
    let s = state(&states, "meta").expect("meta");
    assert!(s.in_sync && s.confirmed_size == 16, "{s:?}");
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_after_a_restart_shows_what_is_durable_while_the_network_still_hangs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let (d, shop, _, _) = vips_synced(tmp.path(), &g, &m).await;
    // The list is applied at the fake before the daemon polls its outcome: wait for that.
    confirmed(&d, "google", 3).await;
    // c1 withdraws consent; Google holds the removal for a minute, and the daemon dies.
    g.inject(Fault::Delay(Duration::from_secs(60)));
    stream(&d, vec![vec![shop.consent(1, false, now_secs() - 60)]]).await;
    let cfg = config(tmp.path(), &g, &m, "", "");
    wait_until("the removal reaches google", 30, || {
        g.requests().iter().any(|r| r.path.ends_with(":remove")) || g.pending_faults() == 0
    })
    .await;
    d.kill9();
    // After the restart the removal goes again and hangs again: status must not wait for it.
    g.inject(Fault::Delay(Duration::from_secs(60)));
    let d = Daemon::start(tmp.path(), &cfg);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let states = d.sync_states().await;
        let s = state(&states, "google").expect("google");
        if s.confirmed_size == 3 && s.desired_size == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status still shows the start's blanks: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sent_just_before_a_crash_who_then_leaves_is_removed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let shop = Shop::vip_shape();
    let cfg = config(tmp.path(), &g, &m, "", "");
    // A network takes the VIPs and the daemon dies before it records the answer.
    let d = Daemon::start_env(
        tmp.path(),
        &cfg,
        &[("FAILPOINTS", "sync_after_accept=return")],
    );
    stream(&d, vec![shop.events(now_secs())]).await;
    assert!(
        d.wait_stdout("failpoint sync_after_accept reached", 30)
            .await,
        "a request was accepted"
    );
    d.kill9();
    // While no destination runs, c1 withdraws consent.
    let d = Daemon::start(tmp.path(), "");
    stream(&d, vec![vec![shop.consent(1, false, now_secs() - 60)]]).await;
    d.stop();
    // Whichever network applied that request, c1 leaves its list.
    let d = Daemon::start(tmp.path(), &cfg);
    let want_g = shop.expected(&["c0", "c2"], google_form);
    let want_m = shop.expected(&["c0", "c2"], meta_form);
    wait_until("google", 30, || g.list("111") == want_g).await;
    wait_until("meta", 30, || m.audience("222") == want_m).await;
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_a_partly_refused_removal_who_return_are_added_back() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let shop = Shop::vip_shape();
    // The first poll comes 2 s after acceptance: time for the members to return first.
    let cfg = config_first_poll(tmp.path(), &g, &m, "2s");
    let d = Daemon::start(tmp.path(), &cfg);
    stream(&d, vec![shop.events(now_secs())]).await;
    let want = shop.expected(&["c0", "c1", "c2"], google_form);
    wait_until("google", 30, || g.list("111") == want).await;
    confirmed(&d, "google", 3).await;
    // c1 and c2 withdraw consent; Google removes one of them and refuses the other.
    g.inject(Fault::PartialSuccess {
        refuse: 1,
        reason: "PROCESSING_ERROR_REASON_INTERNAL_ERROR".into(),
    });
    let t = now_secs();
    stream(
        &d,
        vec![vec![
            shop.consent(1, false, t - 60),
            shop.consent(2, false, t - 60),
        ]],
    )
    .await;
    wait_until("google applies the removal in part", 30, || {
        g.list("111").len() == 2
    })
    .await;
    // Both grant consent again before Google's answer is read: both belong on the list.
    stream(
        &d,
        vec![vec![
            shop.consent(1, true, t - 30),
            shop.consent(2, true, t - 30),
        ]],
    )
    .await;
    wait_until("google holds the three VIPs again", 30, || {
        g.list("111") == want
    })
    .await;
    d.stop();
}
