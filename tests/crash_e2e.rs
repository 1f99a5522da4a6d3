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

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use audiencesync::proto::v1;
use common::workload::*;
use common::*;

const CUSTOMERS: usize = 40;
const BATCH: usize = 6;

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
    crash_while_ingesting("ledger_after_wal_sync", 3, "", Duration::from_millis(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_after_apply_before_ack() {
    crash_while_ingesting("ledger_before_ack", 2, "", Duration::from_millis(20)).await;
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
