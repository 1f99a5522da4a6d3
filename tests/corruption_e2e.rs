//! A damaged data directory: the daemon must refuse to start with an error naming the
//! directory and the recovery steps (never start empty or with fewer facts than it
//! acknowledged), and the documented recovery (move aside, start fresh, replay the history)
//! must rebuild exactly the same state. See docs/RELIABILITY.md.

mod common;

use std::path::Path;

use audiencesync::proto::v1;

use common::workload::*;
use common::*;

/// A store holding the shop, stopped cleanly; returns what it held.
async fn built(dir: &Path, shop: &Shop) -> Observed {
    let d = Daemon::start(dir, "");
    ingest_all(&d, &shop.batches).await;
    let seen = observe(&d, &shop.ids()).await;
    assert!(d.stop().success());
    seen
}

/// Starts on `dir` expecting a refusal that names the directory and the way out.
fn assert_refused(dir: &Path, what: &str) -> String {
    let (status, stderr) = Daemon::start_failing(dir, "");
    assert!(!status.success(), "{what}: started on a damaged store");
    let data = dir.join("data");
    assert!(
        stderr.contains(&data.display().to_string()),
        "{what}: error does not name {}: {stderr}",
        data.display()
    );
    assert!(
        stderr.contains("docs/RELIABILITY.md"),
        "{what}: error gives no recovery pointer: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: a panic: {stderr}");
    stderr
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_emptied_database_file_is_refused_and_the_replay_rebuilds_it() {
    let shop = Shop::new(30, 21, now_secs(), 10);
    let tmp = tempfile::tempdir().expect("tmp");
    let before = built(tmp.path(), &shop).await;
    let data = tmp.path().join("data");

    // sled would open an empty database here; the store marker says one existed.
    std::fs::remove_file(data.join("db")).expect("rm db");
    let err = assert_refused(tmp.path(), "db deleted");
    assert!(err.contains("audiencesync.store"), "{err}");
    // The refused start changed nothing: it still refuses.
    assert_refused(tmp.path(), "db deleted, second start");

    // The documented recovery: move the directory aside, start empty, replay the history.
    std::fs::rename(&data, tmp.path().join("data.damaged")).expect("move aside");
    let d = Daemon::start(tmp.path(), "");
    let acks = ingest_all(&d, &shop.batches).await;
    assert!(acks
        .iter()
        .all(|a| a.rejected.is_empty() && a.duplicates == 0));
    assert_eq!(observe(&d, &shop.ids()).await, before);
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_or_overwritten_database_files_never_start_with_fewer_facts() {
    let shop = Shop::new(30, 22, now_secs(), 10);
    let pristine = tempfile::tempdir().expect("tmp");
    let before = built(pristine.path(), &shop).await;
    let db_len = std::fs::metadata(pristine.path().join("data/db"))
        .expect("db")
        .len();
    type Damage = Box<dyn Fn(&Path)>;
    let truncate = |keep: u64| -> Damage {
        Box::new(move |db: &Path| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(db)
                .expect("open");
            f.set_len(keep).expect("truncate");
        })
    };
    let overwrite = |at: u64, len: usize| -> Damage {
        Box::new(move |db: &Path| {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(db)
                .expect("open");
            f.seek(SeekFrom::Start(at)).expect("seek");
            let junk: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
            f.write_all(&junk).expect("write");
        })
    };
    let cases: Vec<(String, Damage)> = vec![
        ("truncated to 0 bytes".into(), truncate(0)),
        ("truncated to 1/4".into(), truncate(db_len / 4)),
        ("truncated to 1/2".into(), truncate(db_len / 2)),
        ("truncated to 3/4".into(), truncate(db_len * 3 / 4)),
        (
            "last 100 bytes cut".into(),
            truncate(db_len.saturating_sub(100)),
        ),
        ("header overwritten".into(), overwrite(0, 4096)),
        (
            "middle overwritten".into(),
            overwrite(db_len / 2, 64 * 1024),
        ),
        (
            "tail overwritten".into(),
            overwrite(db_len.saturating_sub(8192), 8192),
        ),
    ];
    let mut refused = 0;
    for (what, damage) in cases {
        let tmp = tempfile::tempdir().expect("tmp");
        copy_dir(&pristine.path().join("data"), &tmp.path().join("data"));
        damage(&tmp.path().join("data/db"));
        let (status, stderr) = Daemon::start_failing_or_running(tmp.path(), "");
        match status {
            StartOutcome::Refused(code) => {
                assert!(code != 0, "{what}");
                assert!(
                    stderr.contains("docs/RELIABILITY.md") && !stderr.contains("panicked"),
                    "{what}: unclear refusal: {stderr}"
                );
                refused += 1;
                eprintln!(
                    "{what}: refused: {}",
                    stderr
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or_default()
                        .trim()
                );
            }
            StartOutcome::Running(d) => {
                // sled read around the damage: then every fact must still be there.
                assert_eq!(observe(&d, &shop.ids()).await, before, "{what}");
                eprintln!("{what}: started with every fact");
                d.stop();
            }
        }
    }
    assert!(refused >= 1, "no damage was ever detected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_wal_record_a_damaged_log_or_a_garbled_marker_stops_the_start() {
    let shop = Shop::new(10, 23, now_secs(), 10);
    let tmp = tempfile::tempdir().expect("tmp");
    built(tmp.path(), &shop).await;
    let data = tmp.path().join("data");

    // A write-ahead record past the checkpoint whose bytes are not facts.
    {
        let db = sled::open(&data).expect("sled");
        let meta = db.open_tree("meta").expect("meta");
        let cp = meta
            .get("checkpoint_seq")
            .expect("get")
            .map(|v| u64::from_be_bytes(v.as_ref().try_into().expect("u64")))
            .unwrap_or(0);
        drop(db);
        // Framed and checksummed like any record: only its contents are wrong.
        let mut wal = audiencesync::ledger::wal::Wal::open(&data.join("wal"), false).expect("wal");
        let next = wal.last_seq().max(cp) + 1;
        wal.append(next, &[vec![1u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]])
            .expect("append");
    }
    let err = assert_refused(tmp.path(), "undecodable WAL record");
    assert!(err.contains("corrupt write-ahead record"), "{err}");

    // A flipped byte in the log's first record, with intact records after it: damage,
    // not the torn tail of an interrupted append.
    let tmp = tempfile::tempdir().expect("tmp");
    built(tmp.path(), &shop).await;
    let segment = std::fs::read_dir(tmp.path().join("data/wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .max()
        .expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    let frames = bytes.len();
    bytes[20] ^= 0x40;
    std::fs::write(&segment, &bytes).expect("write");
    let err = assert_refused(tmp.path(), "flipped byte in the log");
    assert!(
        err.contains("write-ahead log") && err.contains("damaged"),
        "{frames} bytes: {err}"
    );

    // The marker itself unreadable.
    let tmp = tempfile::tempdir().expect("tmp");
    built(tmp.path(), &shop).await;
    std::fs::write(
        tmp.path().join("data/audiencesync.store"),
        b"\xff\xfegarbage",
    )
    .expect("w");
    let err = assert_refused(tmp.path(), "garbled marker");
    assert!(err.contains("marker"), "{err}");

    // The database file replaced by a directory (unreadable as a file).
    let tmp = tempfile::tempdir().expect("tmp");
    built(tmp.path(), &shop).await;
    std::fs::remove_file(tmp.path().join("data/db")).expect("rm");
    std::fs::create_dir(tmp.path().join("data/db")).expect("mkdir");
    assert_refused(tmp.path(), "db is a directory");
}

/// A write-ahead append that fails (here: the log's first segment cannot be created) refuses
/// the whole batch with UNAVAILABLE and changes nothing: the ids are not remembered as seen,
/// so the client's retry applies every event, and the store ends as one clean run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_log_append_refuses_the_batch_and_the_retry_applies_all_of_it() {
    let shop = Shop::new(20, 29, now_secs(), 10);
    let clean = tempfile::tempdir().expect("tmp");
    let expected = built(clean.path(), &shop).await;

    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), "");
    let blocker = tmp.path().join("data/wal/00000000000000000001.wal");
    std::fs::create_dir(&blocker).expect("block the first segment");
    let mut client = d.ingest().await;
    let batch = |i: usize| v1::EventBatch {
        batch_id: i as u64,
        events: shop.batches[i].clone(),
    };
    let err = client.ingest_batch(batch(0)).await.expect_err("refused");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains("not persisted"), "{err:?}");
    std::fs::remove_dir(&blocker).expect("unblock");
    for i in 0..shop.batches.len() {
        let ack = client
            .ingest_batch(batch(i))
            .await
            .expect("ingest")
            .into_inner();
        assert!(
            ack.rejected.is_empty() && ack.duplicates == 0,
            "batch {i} after the failure: {ack:?}"
        );
    }
    assert_eq!(observe(&d, &shop.ids()).await, expected);
    assert!(d.stop().success());
}
