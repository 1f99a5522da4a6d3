//! Prometheus metrics: the recorder, the descriptions of the names in [`crate::metric_names`],
//! and a small plain-HTTP `/metrics` endpoint.
//!
//! We bind the listener ourselves (rather than the exporter's built-in one) so port 0 works
//! and the bound address can be printed for scripts and tests. Writer counters are copied
//! from [`Stats`](crate::writer::Stats) at scrape time, so the hot path pays nothing extra.
//! Labels never carry PII: only method names, status codes and (later) audience and
//! destination names chosen by the operator.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::{TcpListener, TcpStream};

use std::sync::Arc;

use crate::audience::Audience;
use crate::config::MetricsConfig;
use crate::metric_names;
use crate::service::http;
use crate::sync::handle::StatusBoard;
use crate::writer::{heartbeat, Writer};

/// Latency buckets in seconds: sub-millisecond reads up to long-lived streams.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
    300.0,
];

/// Members per request: single changes up to the networks' 10,000-member maximum.
const BATCH_BUCKETS: &[f64] = &[1.0, 10.0, 100.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0];

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
    writer: Writer,
    sync: Option<Arc<StatusBoard>>,
) -> Result<Option<SocketAddr>, MetricsError> {
    if !cfg.enabled {
        return Ok(None);
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(metric_names::GRPC_DURATION.into()),
            DURATION_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(metric_names::SYNC_REQUEST_DURATION.into()),
            DURATION_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(metric_names::WAL_APPEND_DURATION.into()),
            DURATION_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(metric_names::SYNC_BATCH_MEMBERS.into()),
            BATCH_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    metrics::gauge!(metric_names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
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
    tokio::spawn(accept_loop(listener, handle, Sources { writer, sync }));
    Ok(Some(addr))
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        metric_names::EVENTS_INGESTED,
        "Events newly applied to the ledger."
    );
    describe_counter!(
        metric_names::EVENTS_REJECTED,
        "Events refused by validation."
    );
    describe_counter!(
        metric_names::IDENTIFIERS_DROPPED,
        "Identifiers dropped from applied events (could not be normalized), by field and reason."
    );
    describe_counter!(
        metric_names::EVENTS_DUPLICATE,
        "Events whose event_id was seen before."
    );
    describe_gauge!(
        metric_names::WAL_SEQUENCE,
        "Last durable write-ahead-log sequence."
    );
    describe_gauge!(
        metric_names::CHECKPOINT_SEQUENCE,
        "WAL sequence covered by the last checkpoint."
    );
    describe_counter!(
        metric_names::CHECKPOINT_BYTES,
        "Bytes of keys and values checkpoints wrote (over events ingested: write amplification)."
    );
    describe_counter!(
        metric_names::GROUP_COMMITS,
        "Group commits (one WAL write and fsync each)."
    );
    describe_gauge!(
        metric_names::WRITER_HEARTBEAT_AGE,
        Unit::Seconds,
        "Seconds since the ledger writer last went round its loop."
    );
    describe_counter!(
        metric_names::GRPC_REQUESTS,
        "Finished gRPC calls by method and status code."
    );
    describe_histogram!(
        metric_names::WAL_APPEND_DURATION,
        Unit::Seconds,
        "Write-ahead append of one group commit: write plus fdatasync."
    );
    describe_histogram!(
        metric_names::GRPC_DURATION,
        Unit::Seconds,
        "gRPC call duration by method and status code (whole stream for streaming calls)."
    );
    describe_gauge!(metric_names::AUDIENCE_MEMBERS, "Members per audience.");
    describe_gauge!(
        metric_names::AUDIENCE_ELIGIBLE,
        "Members eligible for push per audience."
    );
    describe_counter!(
        metric_names::MEMBERSHIP_CHANGES,
        "Audience entries and exits."
    );
    describe_counter!(
        metric_names::SYNC_REQUESTS,
        "Ad-network requests by destination, op and outcome."
    );
    describe_histogram!(
        metric_names::SYNC_REQUEST_DURATION,
        Unit::Seconds,
        "Ad-network request duration by destination."
    );
    describe_counter!(
        metric_names::SYNC_MEMBERS_SENT,
        "Members in requests the network accepted, by destination, audience and op."
    );
    describe_histogram!(
        metric_names::SYNC_RATE_LIMIT_WAIT,
        Unit::Seconds,
        "Waits for the request quota or a network's throttling, by destination."
    );
    describe_gauge!(
        metric_names::SYNC_PENDING,
        "Adds and removes found and not yet confirmed."
    );
    describe_gauge!(
        metric_names::SYNC_CONFIRMED,
        "Members the network confirmed as applied, per list."
    );
    describe_counter!(
        metric_names::SYNC_MEMBERS_REFUSED,
        "Rows a network refused, by destination, audience and the network's reason."
    );
    describe_histogram!(
        metric_names::SYNC_BATCH_MEMBERS,
        "Members per request sent to a network, by destination."
    );
    describe_gauge!(
        metric_names::SYNC_IN_FLIGHT,
        "Members sent whose outcome the network has not reported yet, per list."
    );
    describe_gauge!(
        metric_names::SYNC_REMOTE_SIZE,
        "The list's size as the network reports it (bound lower/upper)."
    );
    describe_gauge!(
        metric_names::SYNC_IN_SYNC,
        "1 while the list is in sync as the network confirmed it."
    );
    describe_gauge!(
        metric_names::SYNC_PAUSED,
        "1 while the destination is paused on a spent per-day quota."
    );
    describe_gauge!(
        metric_names::SYNC_PARKED,
        "1 while a destination x audience is parked on a permanent error."
    );
    describe_gauge!(
        metric_names::SYNC_LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the last confirmed push."
    );
    describe_gauge!(
        metric_names::INSIGHT_ACTIVE_CUSTOMERS,
        "Customers with a purchase in the trailing 365 days."
    );
    describe_gauge!(
        metric_names::INSIGHT_REVENUE_PER_CUSTOMER,
        "Trailing-365-day net revenue per active customer, in major units of `currency`."
    );
    describe_gauge!(
        metric_names::INSIGHT_REPEAT_PURCHASE_RATE,
        "Share of buyers with at least two purchases."
    );
    describe_gauge!(
        metric_names::INSIGHT_VIP_REVENUE_SHARE,
        "Share of trailing-365-day revenue from VIP members."
    );
    describe_gauge!(
        metric_names::INSIGHT_RETENTION_RATE,
        "Customer retention rate of the last complete calendar month."
    );
    describe_gauge!(
        metric_names::INSIGHT_REACTIVATION_RATE,
        "Share of lapsed-tier entries (last 12 complete months) followed by an order within 90 days."
    );
    describe_gauge!(
        metric_names::INSIGHT_CONVERSION_RATE,
        "Conversion rate after entering an audience (closed windows), pushed vs holdout."
    );
    describe_gauge!(
        metric_names::INSIGHT_OUTCOME_MEMBERS,
        "Audience entries counted for outcomes, by group and window state."
    );
    describe_gauge!(
        metric_names::INSIGHT_LIFT,
        "Pushed minus holdout conversion rate after entering an audience."
    );
    describe_gauge!(
        metric_names::INSIGHT_LIFT_LOW,
        "Lower bound of the 95% Newcombe interval of the absolute lift."
    );
    describe_gauge!(
        metric_names::INSIGHT_LIFT_HIGH,
        "Upper bound of the 95% Newcombe interval of the absolute lift."
    );
}

/// Sets the headline insight gauges from the counters the writer published last (undefined
/// figures read NaN).
fn refresh_insights(writer: &Writer) {
    use crate::insight::calendar::Unit;
    let published = writer.published_insights();
    let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let r = published.retention(Unit::Month, 12, 1);
    metrics::gauge!(metric_names::INSIGHT_ACTIVE_CUSTOMERS).set(r.active_customers as f64);
    let exp = crate::money::parse_code(&published.currency).map_or(2, |(_, e)| e);
    metrics::gauge!(metric_names::INSIGHT_REVENUE_PER_CUSTOMER, "currency" => published.currency.clone())
        .set(nan(r.revenue_per_active_customer) / 10f64.powi(exp as i32));
    metrics::gauge!(metric_names::INSIGHT_REPEAT_PURCHASE_RATE).set(nan(r.repeat_purchase_rate));
    metrics::gauge!(metric_names::INSIGHT_VIP_REVENUE_SHARE).set(nan(r.vip_revenue_share));
    metrics::gauge!(metric_names::INSIGHT_RETENTION_RATE)
        .set(nan(r.periods.last().and_then(|p| p.retention_rate)));
    for t in &r.reactivation {
        metrics::gauge!(metric_names::INSIGHT_REACTIVATION_RATE, "audience" => t.audience.clone())
            .set(nan(t.rate));
    }
    for a in published.lift(None) {
        let total = &a.total;
        for (group, g) in [("pushed", &total.pushed), ("holdout", &total.holdout)] {
            let labels = [
                ("audience", a.audience.clone()),
                ("group", group.to_string()),
            ];
            metrics::gauge!(metric_names::INSIGHT_CONVERSION_RATE, &labels).set(nan(g.rate()));
            for (window, n) in [("closed", g.members), ("open", g.open_members)] {
                let labels = [
                    ("audience", a.audience.clone()),
                    ("group", group.to_string()),
                    ("window", window.to_string()),
                ];
                metrics::gauge!(metric_names::INSIGHT_OUTCOME_MEMBERS, &labels).set(n as f64);
            }
        }
        let e = total.absolute;
        let audience = a.audience.clone();
        metrics::gauge!(metric_names::INSIGHT_LIFT, "audience" => audience.clone())
            .set(nan(e.map(|e| e.value)));
        metrics::gauge!(metric_names::INSIGHT_LIFT_LOW, "audience" => audience.clone())
            .set(nan(e.and_then(|e| e.low)));
        metrics::gauge!(metric_names::INSIGHT_LIFT_HIGH, "audience" => audience)
            .set(nan(e.and_then(|e| e.high)));
    }
}

/// What a scrape reads.
#[derive(Clone)]
struct Sources {
    writer: Writer,
    sync: Option<Arc<StatusBoard>>,
}

/// Copies the writer's counters, audience sizes and sync state into the registry right
/// before a scrape.
fn refresh(src: &Sources) {
    let writer = &src.writer;
    let s = writer.stats();
    metrics::counter!(metric_names::MEMBERSHIP_CHANGES)
        .absolute(s.membership_changes.load(Ordering::Relaxed));
    {
        let db = writer.read();
        for a in Audience::ALL {
            let members = db.audiences().members(a);
            let name = db.audiences().name(a);
            metrics::gauge!(metric_names::AUDIENCE_MEMBERS, "audience" => name.clone())
                .set(members.len() as f64);
            metrics::gauge!(metric_names::AUDIENCE_ELIGIBLE, "audience" => name)
                .set(members.intersection_len(db.audiences().eligible()) as f64);
        }
    }
    if let Some(board) = &src.sync {
        for ((d, a), st) in board.snapshot() {
            let labels = [("destination", d.clone()), ("audience", a.clone())];
            metrics::gauge!(metric_names::SYNC_CONFIRMED, &labels).set(st.confirmed as f64);
            metrics::gauge!(metric_names::SYNC_PARKED, &labels).set(f64::from(u8::from(st.parked)));
            metrics::gauge!(metric_names::SYNC_IN_FLIGHT, &labels).set(st.in_flight as f64);
            metrics::gauge!(metric_names::SYNC_IN_SYNC, &labels)
                .set(f64::from(u8::from(st.in_sync())));
            metrics::gauge!(metric_names::SYNC_PAUSED, &labels)
                .set(f64::from(u8::from(st.paused_daily)));
            let bounds = [
                ("lower", st.report.network.size_lower),
                ("upper", st.report.network.size_upper),
            ];
            for (bound, size) in bounds {
                if let Some(size) = size {
                    let l = [
                        ("destination", d.clone()),
                        ("audience", a.clone()),
                        ("bound", bound.to_string()),
                    ];
                    metrics::gauge!(metric_names::SYNC_REMOTE_SIZE, &l).set(size as f64);
                }
            }
            let add = [
                ("destination", d.clone()),
                ("audience", a.clone()),
                ("op", "add".to_string()),
            ];
            metrics::gauge!(metric_names::SYNC_PENDING, &add).set(st.pending_adds as f64);
            let remove = [
                ("destination", d),
                ("audience", a),
                ("op", "remove".to_string()),
            ];
            metrics::gauge!(metric_names::SYNC_PENDING, &remove).set(st.pending_removes as f64);
            if let Some(t) = st.last_success_at {
                metrics::gauge!(metric_names::SYNC_LAST_SUCCESS, &labels)
                    .set(t as f64 / crate::clock::NANOS_PER_SEC as f64);
            }
        }
    }
    metrics::counter!(metric_names::EVENTS_INGESTED).absolute(s.applied.load(Ordering::Relaxed));
    metrics::counter!(metric_names::EVENTS_REJECTED).absolute(s.rejected.load(Ordering::Relaxed));
    metrics::counter!(metric_names::EVENTS_DUPLICATE)
        .absolute(s.duplicates.load(Ordering::Relaxed));
    metrics::counter!(metric_names::GROUP_COMMITS).absolute(s.groups.load(Ordering::Relaxed));
    metrics::counter!(metric_names::CHECKPOINT_BYTES)
        .absolute(s.checkpoint_bytes.load(Ordering::Relaxed));
    metrics::gauge!(metric_names::WAL_SEQUENCE).set(s.wal_seq.load(Ordering::Relaxed) as f64);
    metrics::gauge!(metric_names::CHECKPOINT_SEQUENCE)
        .set(s.checkpoint_seq.load(Ordering::Relaxed) as f64);
    metrics::gauge!(metric_names::WRITER_HEARTBEAT_AGE)
        .set(heartbeat::age(&s.last_beat).as_secs_f64());
    refresh_insights(writer);
}

async fn accept_loop(listener: TcpListener, handle: PrometheusHandle, src: Sources) {
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
        let src = src.clone();
        tokio::spawn(async move {
            // A scraper that stalls cannot hold a task forever.
            let _ =
                tokio::time::timeout(http::CONNECTION_TIMEOUT, answer(conn, &handle, &src)).await;
        });
    }
}

/// One request per connection: `GET /metrics` gets the text format, anything else 404.
async fn answer(mut conn: TcpStream, handle: &PrometheusHandle, src: &Sources) {
    let Some(req) = http::read_request(&mut conn).await else {
        return;
    };
    let reply = if req.method == "GET" && (req.path() == "/metrics" || req.path() == "/") {
        refresh(src);
        handle.run_upkeep();
        http::Response::new(
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            handle.render(),
        )
    } else {
        http::Response::text("404 Not Found", "not found")
    };
    reply.send(&mut conn, false).await;
}
