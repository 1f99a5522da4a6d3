//! Crash tests: the real daemon is kill -9ed at precise points of the ingest, checkpoint and
//! sync paths (crash points, `src/failpoint.rs`) and at arbitrary moments of a stream, then
//! restarted on the same data directory. After every crash:
//! - every acknowledged event is still there: resending its batch reports only duplicates;
//! - nothing is applied twice and nothing is missing: once every batch has been resent (as an
//!   at-least-once client does), facts, memberships and store counts equal those of a fresh
//!   daemon fed every event exactly once;
//! - the fake ad networks end up holding exactly the expected hashed members.
//!
//! See docs/RELIABILITY.md for the scenario table.

mod common;
mod fakes;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use audiencesync::proto::v1;
use common::workload::*;
use common::*;
use fakes::{FakeGoogle, FakeMeta, Fault};

const CUSTOMERS: usize = 40;
const BATCH: usize = 4;

/// Starts a daemon that freezes at the `skip + 1`-th pass of crash point `point`.
fn armed(dir: &Path, extra: &str, point: &str, skip: u32) -> Daemon {
    let actions = format!("{point}={skip}*off->return");
    Daemon::start_env(dir, extra, &[("FAILPOINTS", actions.as_str())])
}

/// Waits for the daemon to reach `point`, then kill -9s it.
async fn kill_at(d: Daemon, point: &str) {
    let line = format!("failpoint {point} reached");
    if !d.wait_stdout(&line, 90).await {
        panic!("crash point {point} never reached; log:\n{}", d.log_text());
    }
    d.kill9();
}

/// A fresh daemon fed every event once: the truth a crashed daemon must come back to.
async fn reference(shop: &Shop) -> common::workload::Observed {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), "");
    let acks = ingest_all(&d, &shop.batches).await;
    assert!(acks.iter().all(|a| a.rejected.is_empty()), "{acks:?}");
    let seen = observe(&d, &shop.ids()).await;
    d.stop();
    seen
}

/// Resends every batch to the restarted daemon and checks the acknowledged ones come back as
/// pure duplicates. Returns how many unacknowledged batches were durable all the same.
async fn resend_and_check(d: &Daemon, shop: &Shop, acked: &BTreeSet<usize>, what: &str) -> usize {
    let resent = ingest_all(d, &shop.batches).await;
    let mut durable_unacked = 0;
    for (i, (ack, batch)) in resent.iter().zip(&shop.batches).enumerate() {
        let n = batch.len() as u32;
        assert!(ack.rejected.is_empty(), "{what}: batch {i}: {ack:?}");
        assert_eq!(ack.applied + ack.duplicates, n, "{what}: batch {i}");
        if acked.contains(&i) {
            assert_eq!(
                ack.duplicates, n,
                "{what}: batch {i} was acknowledged before the crash but lost events"
            );
        } else if ack.duplicates == n {
            durable_unacked += 1;
        }
    }
    durable_unacked
}

/// Streams every batch over one `StreamEvents` call, pausing `gap` between sends, and
/// returns the batch indices acknowledged before the stream broke (the daemon was killed).
fn stream_until_broken(
    d: &Daemon,
    shop: &Shop,
    gap: Duration,
) -> tokio::task::JoinHandle<BTreeSet<usize>> {
    let url = d.url();
    let batches = shop.batches.clone();
    tokio::spawn(async move {
        let channel = tonic::transport::Channel::from_shared(url)
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let mut client =
            audiencesync::proto::v1::ingest_service_client::IngestServiceClient::new(channel);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            for (i, events) in batches.into_iter().enumerate() {
                let batch = v1::EventBatch {
                    batch_id: i as u64,
                    events,
                };
                if tx.send(batch).await.is_err() {
                    return;
                }
                tokio::time::sleep(gap).await;
            }
        });
        let mut acked = BTreeSet::new();
        let Ok(resp) = client
            .stream_events(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
        else {
            return acked;
        };
        let mut acks = resp.into_inner();
        while let Ok(Some(a)) = acks.message().await {
            assert!(a.rejected.is_empty(), "{a:?}");
            acked.insert(a.batch_id as usize);
        }
        acked
    })
}

/// One ingest-side crash: stream the shop, kill -9 at `point`, restart, check.
async fn crash_while_ingesting(point: &str, skip: u32, extra: &str, gap: Duration) {
    let now = now_secs();
    let shop = Shop::new(CUSTOMERS, 11, now, BATCH);
    let truth = reference(&shop).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let d = armed(tmp.path(), extra, point, skip);
    let sender = stream_until_broken(&d, &shop, gap);
    kill_at(d, point).await;
    let acked = sender.await.expect("sender");
    assert!(
        acked.len() < shop.batches.len(),
        "{point}: the crash came after the last ack ({} batches)",
        acked.len()
    );

    let d = Daemon::start(tmp.path(), extra);
    let durable_unacked = resend_and_check(&d, &shop, &acked, point).await;
    assert_eq!(observe(&d, &shop.ids()).await, truth, "{point}");
    d.stop();
    if point.starts_with("ledger_") {
        // The frozen group was in the WAL but never acknowledged: replay must bring it back.
        assert!(
            durable_unacked >= 1,
            "{point}: no unacknowledged batch was durable (acked {acked:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_after_wal_fsync_before_apply() {
    crash_while_ingesting("ledger_after_wal_sync", 2, "", Duration::from_millis(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_after_apply_before_ack() {
    crash_while_ingesting("ledger_before_ack", 1, "", Duration::from_millis(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_checkpoint_before_its_sequence_is_recorded() {
    // The second checkpoint: trees from the first plus newer entities, `checkpoint_seq` old.
    crash_while_ingesting(
        "checkpoint_before_seq",
        1,
        "checkpoint_interval = \"1s\"\n",
        Duration::from_millis(150),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_after_checkpoint_before_wal_trim() {
    crash_while_ingesting(
        "checkpoint_before_trim",
        0,
        "checkpoint_interval = \"1s\"\n",
        Duration::from_millis(150),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_arbitrary_moments_of_a_stream() {
    let now = now_secs();
    let shop = Shop::new(CUSTOMERS, 12, now, BATCH);
    let truth = reference(&shop).await;
    let tmp = tempfile::tempdir().expect("tmp");
    // Three kills after different numbers of acks, each restart on the same directory.
    for after_acks in [2usize, 5, 9] {
        let d = Daemon::start(tmp.path(), "checkpoint_interval = \"1s\"\n");
        let mut client = d.ingest().await;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let batches = shop.batches.clone();
        tokio::spawn(async move {
            for (i, events) in batches.into_iter().enumerate() {
                let b = v1::EventBatch {
                    batch_id: i as u64,
                    events,
                };
                if tx.send(b).await.is_err() {
                    return;
                }
            }
            // Keep the stream open so the kill, not the end of input, stops it.
            std::future::pending::<()>().await;
        });
        let mut acks = client
            .stream_events(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("stream")
            .into_inner();
        let mut acked = BTreeSet::new();
        while acked.len() < after_acks {
            let a = acks.message().await.expect("ack").expect("an ack");
            acked.insert(a.batch_id as usize);
        }
        // Other batches are in flight (queued, in a group commit, being acked) right now.
        d.kill9();
        let d = Daemon::start(tmp.path(), "checkpoint_interval = \"1s\"\n");
        let what = format!("kill after {after_acks} acks");
        resend_and_check(&d, &shop, &acked, &what).await;
        assert_eq!(observe(&d, &shop.ids()).await, truth, "{what}");
        d.kill9();
    }
}

// --- the sync path -------------------------------------------------------------------------

fn sync_config(dir: &Path, g: &FakeGoogle, m: &FakeMeta, linger: &str) -> String {
    fakes::destinations_toml(
        dir,
        g,
        m,
        &format!(
            r#"linger = "{linger}"
status_poll_interval = "200ms"
status_first_poll = "200ms"
lists = [{{ audience = "vip", list_id = "111" }}, {{ audience = "stage_active", list_id = "112" }}]"#
        ),
        &format!(
            r#"linger = "{linger}"
lists = [{{ audience = "vip", list_id = "222" }}]"#
        ),
    )
}

async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One sync-side crash: ingest everything, kill -9 at `point` of a push, restart, and wait
/// for both networks to hold exactly the expected members.
async fn crash_while_pushing(point: &str, faults: &[Fault]) {
    let now = now_secs();
    let shop = Shop::new(CUSTOMERS, 13, now, BATCH);
    let truth = reference(&shop).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes::fakes_pair().await;
    for f in faults {
        g.inject(f.clone());
    }
    // The armed run lingers until every event is in, so the push it dies in carries final
    // members (a later change of theirs would otherwise mask a lost confirmation).
    let d = armed(tmp.path(), &sync_config(tmp.path(), &g, &m, "2s"), point, 0);
    // The push starts while events still arrive; a frozen push can stall the whole daemon,
    // so the stream runs on its own and the kill ends it.
    let sender = stream_until_broken(&d, &shop, Duration::from_millis(20));
    kill_at(d, point).await;
    let acked = sender.await.expect("sender");

    let d = Daemon::start(tmp.path(), &sync_config(tmp.path(), &g, &m, "100ms"));
    resend_and_check(&d, &shop, &acked, point).await;
    assert_eq!(observe(&d, &shop.ids()).await, truth, "{point}");
    let vip = &truth.eligible_members["vip"];
    let active = &truth.eligible_members["stage_active"];
    assert!(vip.len() >= 3 && active.len() >= 3, "{vip:?} {active:?}");
    let want_g_vip = shop.expected(vip, google_form);
    let want_g_active = shop.expected(active, google_form);
    let want_m_vip = shop.expected(vip, meta_form);
    wait_until("google vip", 60, || g.list("111") == want_g_vip).await;
    wait_until("google stage_active", 60, || g.list("112") == want_g_active).await;
    wait_until("meta vip", 60, || m.audience("222") == want_m_vip).await;
    // Settled: every asynchronous request polled to its end, nothing pending.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = d.sync_states().await;
        if st.len() == 3
            && st
                .iter()
                .all(|s| s.pending_adds == 0 && s.pending_removes == 0 && !s.parked)
            && g.list("111") == want_g_vip
            && g.list("112") == want_g_active
        {
            break;
        }
        assert!(Instant::now() < deadline, "{point}: never settled: {st:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_after_the_network_accepted_before_the_confirmed_ledger() {
    crash_while_pushing("sync_after_accept", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_between_recording_a_google_request_and_confirming_it_which_later_fails() {
    // The accepted request reads FAILED when polled: after the restart the daemon must still
    // know to poll it and resend, or the list would silently miss its members.
    crash_while_pushing("sync_after_outstanding", &[Fault::RequestFailed]).await;
}
