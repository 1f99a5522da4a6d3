//! The daemon as a service: systemd notifications, Prometheus metrics, and a SIGTERM in the
//! middle of continuous ingest. Real binary, real sockets.

mod common;

use std::collections::BTreeSet;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audiencesync::proto::v1;
use audiencesync::proto::v1::ingest_service_client::IngestServiceClient;
use common::*;

/// Reads notify datagrams until `want` returns true for the collected set, or times out.
fn read_until(sock: &UnixDatagram, seen: &mut Vec<String>, want: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 4096];
    while !want(seen) {
        assert!(
            Instant::now() < deadline,
            "notify messages so far: {seen:?}"
        );
        if let Ok(n) = sock.recv(&mut buf) {
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                seen.push(line.to_string());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifies_ready_watchdog_and_stopping() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let d = Daemon::start_env(
        tmp.path(),
        "",
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().expect("utf-8 path")),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut seen = Vec::new();
    read_until(&sock, &mut seen, |s| {
        s.iter().any(|l| l == "READY=1") && s.iter().filter(|l| *l == "WATCHDOG=1").count() >= 2
    });
    // READY only after the port is bound: the harness already saw the listen line, and the
    // first message is READY.
    assert_eq!(
        seen.iter().find(|l| l.contains('=')).map(String::as_str),
        Some("READY=1")
    );
    assert!(d.log_text().contains("systemd watchdog enabled"));
    let status = d.stop();
    assert!(status.success(), "{status:?}");
    read_until(&sock, &mut seen, |s| s.iter().any(|l| l == "STOPPING=1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_reports_ingest_and_grpc_calls_without_pii() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), "");
    let now = now_secs();
    let mut ingest = d.ingest().await;
    ingest
        .ingest_batch(v1::EventBatch {
            batch_id: 1,
            events: vec![
                ev(
                    "m1",
                    now - DAY,
                    customer("c-m", "Secret.Person@example.com", "+12125550134", true),
                ),
                ev("m2", now - DAY, order("o-m", "c-m", 1_000, "USD")),
                ev("m3", now - DAY, order("o-bad", "c-m", 1_000, "EUR")),
            ],
        })
        .await
        .expect("ingest");
    ingest
        .ingest_batch(v1::EventBatch {
            batch_id: 2,
            events: vec![ev("m2", now - DAY, order("o-m", "c-m", 1_000, "USD"))],
        })
        .await
        .expect("replay");
    let err = d
        .audience()
        .await
        .get_customer(v1::GetCustomerRequest {
            customer_id: "nobody@example.com".into(),
        })
        .await
        .expect_err("not found");
    assert_eq!(err.code(), tonic::Code::NotFound);

    let text = d.scrape();
    let value = |name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.split([' ', '{']).next() == Some(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    assert_eq!(
        value("audiencesync_events_ingested_total"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(value("audiencesync_events_rejected_total"), Some(1.0));
    assert_eq!(value("audiencesync_events_duplicate_total"), Some(1.0));
    assert!(value("audiencesync_wal_sequence").is_some_and(|v| v >= 1.0));
    assert!(value("audiencesync_checkpoint_sequence").is_some());
    assert!(value("audiencesync_group_commits_total").is_some_and(|v| v >= 2.0));
    assert!(value("audiencesync_ledger_heartbeat_age_seconds").is_some());
    let calls = |method: &str, code: &str| {
        text.lines().any(|l| {
            l.starts_with("audiencesync_grpc_requests_total{")
                && l.contains(&format!("method=\"{method}\""))
                && l.contains(&format!("code=\"{code}\""))
        })
    };
    assert!(
        calls("audiencesync.v1.IngestService/IngestBatch", "OK"),
        "{text}"
    );
    assert!(
        calls("audiencesync.v1.AudienceService/GetCustomer", "NOT_FOUND"),
        "{text}"
    );
    assert!(text.contains("audiencesync_grpc_request_duration_seconds_bucket{"));
    assert!(
        !text.to_lowercase().contains("example.com"),
        "no PII in metrics"
    );
    assert!(!text.contains("c-m") && !text.contains("nobody"));
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_disabled() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), "[metrics]\nenabled = false\n");
    assert!(d.metrics.is_none());
    d.stop();
}

const ORDERS_PER_BATCH: usize = 20;

fn numbered_batch(b: u64, now: i64) -> v1::EventBatch {
    let cust = format!("c-{b}");
    let mut events = vec![ev(
        &format!("u-{b}"),
        now - DAY,
        customer(&cust, &format!("p{b}@example.com"), "+12125550134", true),
    )];
    for i in 0..ORDERS_PER_BATCH {
        events.push(ev(
            &format!("e-{b}-{i}"),
            now - DAY,
            order(&format!("o-{b}-{i}"), &cust, 1_000, "USD"),
        ));
    }
    v1::EventBatch {
        batch_id: b,
        events,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_ingest_loses_no_acked_event() {
    let tmp = tempfile::tempdir().expect("tmp");
    let now = now_secs();
    let d = Daemon::start(tmp.path(), "");
    let acked = Arc::new(Mutex::new(BTreeSet::<u64>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let url = d.url();
    let (acked_w, count_w) = (acked.clone(), count.clone());
    let streamer = tokio::spawn(async move {
        let mut client = IngestServiceClient::connect(url).await.expect("connect");
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let producer = tokio::spawn(async move {
            for b in 1u64.. {
                if tx.send(numbered_batch(b, now)).await.is_err() {
                    break;
                }
            }
        });
        let mut errors = 0;
        if let Ok(resp) = client
            .stream_events(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
        {
            let mut acks = resp.into_inner();
            loop {
                match acks.message().await {
                    Ok(Some(ack)) => {
                        assert!(ack.rejected.is_empty(), "{:?}", ack.rejected);
                        assert_eq!(ack.applied as usize, ORDERS_PER_BATCH + 1);
                        if let Ok(mut a) = acked_w.lock() {
                            a.insert(ack.batch_id);
                        }
                        count_w.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
        }
        producer.abort();
        errors
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::Relaxed) < 30 {
        assert!(Instant::now() < deadline, "ingest too slow");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    d.sigterm();
    let status = tokio::task::spawn_blocking(move || d.wait_exit())
        .await
        .expect("join");
    assert!(status.success(), "exit code 0 after SIGTERM: {status:?}");
    let _ = tokio::time::timeout(Duration::from_secs(30), streamer).await;
    let acked: Vec<u64> = acked.lock().expect("lock").iter().copied().collect();
    assert!(acked.len() >= 30);

    let d = Daemon::start(tmp.path(), "");
    let s = stats(&d).await;
    assert!(
        s.orders as usize >= acked.len() * ORDERS_PER_BATCH,
        "{} orders for {} acked batches",
        s.orders,
        acked.len()
    );
    let ids: Vec<String> = acked.iter().map(|b| format!("c-{b}")).collect();
    let facts = facts_of(&d, &ids).await;
    assert_eq!(
        facts.len(),
        acked.len(),
        "every acked batch's customer is back"
    );
    for f in &facts {
        assert_eq!(f.order_count as usize, ORDERS_PER_BATCH);
    }
    d.stop();
}
