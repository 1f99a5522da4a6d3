//! "In sync" means verified: a member counts as on a remote list only once the network reported
//! the outcome of the request that carried it, and status shows what is still in flight, what
//! the network refused and why, and every resync job's progress and result. The real daemon
//! against the fakes of `tests/fakes`, over real sockets.

mod common;
mod fakes;
mod shop;

use std::time::{Duration, Instant};

use audiencesync::proto::v1;
use common::workload::{google_form, meta_form};
use common::*;
use fakes::Fault;
use shop::{config, fakes, wait_until, Shop};

fn state<'a>(states: &'a [v1::SyncState], destination: &str) -> Option<&'a v1::SyncState> {
    states.iter().find(|s| s.destination == destination)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_member_is_confirmed_only_once_its_request_reads_success() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes().await;
    let shop = Shop::vip_shape();
    // The first poll comes 3 s after the ingest was accepted.
    let cfg = config(tmp.path(), &g, &m, "", "").replace(
        "status_first_poll = \"200ms\"",
        "status_first_poll = \"3s\"",
    );
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
    assert!(saw_failure, "the failure was shown in status");
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
    let shop = Shop::vip_shape();
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "", ""));
    stream(&d, vec![shop.events(now_secs())]).await;
    let want_g = shop.expected(&["c0", "c1", "c2"], google_form);
    let want_m = shop.expected(&["c0", "c1", "c2"], meta_form);
    wait_until("google", 30, || g.list("111") == want_g).await;
    wait_until("meta", 30, || m.audience("222") == want_m).await;

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
