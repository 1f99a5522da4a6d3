//! Prometheus metrics: the recorder, the names, and a small plain-HTTP `/metrics` endpoint.
//!
//! We bind the listener ourselves (rather than the exporter's built-in one) so port 0 works
//! and the bound address can be printed for scripts and tests. Ledger counters are copied
//! from [`Stats`](crate::ledger::Stats) at scrape time, so the hot path pays nothing extra.
//! Labels never carry PII: only method names, status codes and (later) audience and
//! destination names chosen by the operator.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::ledger::{heartbeat, Ledger};
use crate::service::settings::MetricsConfig;

/// Metric names, in one place so dashboards and `docs/OPERATIONS.md` stay in step.
pub mod names {
    /// Counter: events newly applied to the ledger.
    pub const EVENTS_INGESTED: &str = "audiencesync_events_ingested_total";
    /// Counter: events refused by validation.
    pub const EVENTS_REJECTED: &str = "audiencesync_events_rejected_total";
    /// Counter: events whose `event_id` was seen before.
    pub const EVENTS_DUPLICATE: &str = "audiencesync_events_duplicate_total";
    /// Gauge: last durable write-ahead-log sequence.
    pub const WAL_SEQUENCE: &str = "audiencesync_wal_sequence";
    /// Gauge: WAL sequence covered by the last checkpoint.
    pub const CHECKPOINT_SEQUENCE: &str = "audiencesync_checkpoint_sequence";
    /// Counter: group commits (one WAL write + fsync each).
    pub const GROUP_COMMITS: &str = "audiencesync_group_commits_total";
    /// Gauge: seconds since the ledger writer last went round its loop.
    pub const WRITER_HEARTBEAT_AGE: &str = "audiencesync_ledger_heartbeat_age_seconds";
    /// Counter: finished gRPC calls, labels `method` and `code`.
    pub const GRPC_REQUESTS: &str = "audiencesync_grpc_requests_total";
    /// Histogram: gRPC call duration in seconds (a whole stream for streaming calls),
    /// labels `method` and `code`.
    pub const GRPC_DURATION: &str = "audiencesync_grpc_request_duration_seconds";
    /// Gauge: always 1, label `version`.
    pub const BUILD_INFO: &str = "audiencesync_build_info";
}

/// Latency buckets in seconds: sub-millisecond reads up to long-lived streams.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
    300.0,
];

/// Why metrics could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Building or installing the Prometheus recorder failed.
    #[error("metrics recorder: {0}")]
    Recorder(#[from] metrics_exporter_prometheus::BuildError),
    /// The scrape endpoint could not bind.
    #[error("binding the metrics endpoint {addr} (`metrics.listen`): {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Installs the global recorder and serves `/metrics`; returns the bound address, or `None`
/// when `metrics.enabled = false`.
pub async fn start(
    cfg: &MetricsConfig,
    ledger: Ledger,
) -> Result<Option<SocketAddr>, MetricsError> {
    if !cfg.enabled {
        return Ok(None);
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::GRPC_DURATION.into()), DURATION_BUCKETS)?
        .install_recorder()?;
    describe();
    metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| MetricsError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| MetricsError::Bind {
        addr: cfg.listen,
        source,
    })?;
    tokio::spawn(accept_loop(listener, handle, ledger));
    Ok(Some(addr))
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        names::EVENTS_INGESTED,
        "Events newly applied to the ledger."
    );
    describe_counter!(names::EVENTS_REJECTED, "Events refused by validation.");
    describe_counter!(
        names::EVENTS_DUPLICATE,
        "Events whose event_id was seen before."
    );
    describe_gauge!(
        names::WAL_SEQUENCE,
        "Last durable write-ahead-log sequence."
    );
    describe_gauge!(
        names::CHECKPOINT_SEQUENCE,
        "WAL sequence covered by the last checkpoint."
    );
    describe_counter!(
        names::GROUP_COMMITS,
        "Group commits (one WAL write and fsync each)."
    );
    describe_gauge!(
        names::WRITER_HEARTBEAT_AGE,
        Unit::Seconds,
        "Seconds since the ledger writer last went round its loop."
    );
    describe_counter!(
        names::GRPC_REQUESTS,
        "Finished gRPC calls by method and status code."
    );
    describe_histogram!(
        names::GRPC_DURATION,
        Unit::Seconds,
        "gRPC call duration by method and status code (whole stream for streaming calls)."
    );
}

/// Copies the ledger's counters into the registry right before a scrape.
fn refresh(ledger: &Ledger) {
    let s = ledger.stats();
    metrics::counter!(names::EVENTS_INGESTED).absolute(s.applied.load(Ordering::Relaxed));
    metrics::counter!(names::EVENTS_REJECTED).absolute(s.rejected.load(Ordering::Relaxed));
    metrics::counter!(names::EVENTS_DUPLICATE).absolute(s.duplicates.load(Ordering::Relaxed));
    metrics::counter!(names::GROUP_COMMITS).absolute(s.groups.load(Ordering::Relaxed));
    metrics::gauge!(names::WAL_SEQUENCE).set(s.wal_seq.load(Ordering::Relaxed) as f64);
    metrics::gauge!(names::CHECKPOINT_SEQUENCE)
        .set(s.checkpoint_seq.load(Ordering::Relaxed) as f64);
    metrics::gauge!(names::WRITER_HEARTBEAT_AGE).set(heartbeat::age(&s.last_beat).as_secs_f64());
}

async fn accept_loop(listener: TcpListener, handle: PrometheusHandle, ledger: Ledger) {
    loop {
        let (conn, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handle = handle.clone();
        let ledger = ledger.clone();
        tokio::spawn(async move {
            // A scraper that stalls cannot hold a task forever.
            let _ =
                tokio::time::timeout(Duration::from_secs(10), answer(conn, &handle, &ledger)).await;
        });
    }
}

/// Largest request head we read; scrapers send a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;

/// One HTTP/1.x request per connection: `GET /metrics` gets the text format, anything else 404.
async fn answer(mut conn: TcpStream, handle: &PrometheusHandle, ledger: &Ledger) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_HEAD {
            return;
        }
    }
    let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut parts = first.split(|b| *b == b' ');
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let (status, ctype, body) = if method == b"GET" && (path == b"/metrics" || path == b"/") {
        refresh(ledger);
        handle.run_upkeep();
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            handle.render(),
        )
    } else {
        ("404 Not Found", "text/plain", "not found\n".to_string())
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(reply.as_bytes()).await;
    let _ = conn.write_all(body.as_bytes()).await;
    let _ = conn.shutdown().await;
}
