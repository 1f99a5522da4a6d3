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
use tokio::net::{TcpListener, TcpStream};

use std::sync::Arc;

use crate::audience::Audience;
use crate::config::MetricsConfig;
use crate::ledger::{heartbeat, Ledger};
use crate::service::http;
use crate::sync::engine::StatusBoard;

/// Metric names, in one place so dashboards and `docs/OPERATIONS.md` stay in step.
pub mod names {
    /// Counter: events newly applied to the ledger.
    pub const EVENTS_INGESTED: &str = "audiencesync_events_ingested_total";
    /// Counter: events refused by validation.
    pub const EVENTS_REJECTED: &str = "audiencesync_events_rejected_total";
    /// Counter: identifiers dropped from applied events because they could not be normalized,
    /// by `field` (e.g. `customer_upserted.phone`) and `reason` (a fixed word, e.g.
    /// `phone_not_valid`; `IdentityError::label`).
    pub const IDENTIFIERS_DROPPED: &str = "audiencesync_ingest_identifier_dropped_total";
    /// Counter: events whose `event_id` was seen before.
    pub const EVENTS_DUPLICATE: &str = "audiencesync_events_duplicate_total";
    /// Gauge: last durable write-ahead-log sequence.
    pub const WAL_SEQUENCE: &str = "audiencesync_wal_sequence";
    /// Gauge: WAL sequence covered by the last checkpoint.
    pub const CHECKPOINT_SEQUENCE: &str = "audiencesync_checkpoint_sequence";
    /// Counter: group commits (one WAL write + fsync each).
    pub const GROUP_COMMITS: &str = "audiencesync_group_commits_total";
    /// Histogram: one group's write-ahead append, write plus fdatasync (the disk's share of
    /// every ack's latency).
    pub const WAL_APPEND_DURATION: &str = "audiencesync_wal_append_duration_seconds";
    /// Gauge: members per audience (label `audience`).
    pub const AUDIENCE_MEMBERS: &str = "audiencesync_audience_members";
    /// Gauge: members eligible for push per audience.
    pub const AUDIENCE_ELIGIBLE: &str = "audiencesync_audience_eligible_members";
    /// Counter: membership changes (entries and exits) since start.
    pub const MEMBERSHIP_CHANGES: &str = "audiencesync_membership_changes_total";
    /// Counter: requests to ad networks by `destination`, `op` and `outcome`.
    pub const SYNC_REQUESTS: &str = "audiencesync_sync_requests_total";
    /// Histogram: ad-network request duration by `destination`.
    pub const SYNC_REQUEST_DURATION: &str = "audiencesync_sync_request_duration_seconds";
    /// Counter: members confirmed sent, by `destination`, `audience`, `op` (`add`, `remove`).
    pub const SYNC_MEMBERS_SENT: &str = "audiencesync_sync_members_sent_total";
    /// Counter: rows a network refused, by `destination`, `audience`, `reason` (the network's
    /// own reason, e.g. `PROCESSING_ERROR_REASON_INVALID_FORMAT`).
    pub const SYNC_MEMBERS_REFUSED: &str = "audiencesync_sync_members_refused_total";
    /// Histogram: members per request sent to a network, by `destination` (batch fill).
    pub const SYNC_BATCH_MEMBERS: &str = "audiencesync_sync_batch_members";
    /// Gauge: members sent whose outcome the network has not reported yet.
    pub const SYNC_IN_FLIGHT: &str = "audiencesync_sync_in_flight_members";
    /// Gauge: the size range the network reports for a list (`bound` = `lower`/`upper`).
    pub const SYNC_REMOTE_SIZE: &str = "audiencesync_sync_remote_size";
    /// Gauge: 1 while a destination × audience is in sync as the network confirmed it.
    pub const SYNC_IN_SYNC: &str = "audiencesync_sync_in_sync";
    /// Gauge: 1 while a destination is paused on a spent per-day quota.
    pub const SYNC_PAUSED: &str = "audiencesync_sync_paused";
    /// Histogram: each wait for the quota or a network's throttle, by `destination`
    /// (`_sum` is the total time waited).
    pub const SYNC_RATE_LIMIT_WAIT: &str = "audiencesync_sync_rate_limit_wait_seconds";
    /// Gauge: adds / removes found and not yet confirmed (`destination`, `audience`, `op`).
    pub const SYNC_PENDING: &str = "audiencesync_sync_pending_members";
    /// Gauge: confirmed members per remote list.
    pub const SYNC_CONFIRMED: &str = "audiencesync_sync_confirmed_members";
    /// Gauge: 1 while a destination × audience is parked on a permanent error.
    pub const SYNC_PARKED: &str = "audiencesync_sync_parked";
    /// Gauge: Unix time of the last confirmed push.
    pub const SYNC_LAST_SUCCESS: &str = "audiencesync_sync_last_success_timestamp_seconds";
    /// Gauge: seconds since the ledger writer last went round its loop.
    pub const WRITER_HEARTBEAT_AGE: &str = "audiencesync_ledger_heartbeat_age_seconds";
    /// Counter: finished gRPC calls, labels `method` and `code`.
    pub const GRPC_REQUESTS: &str = "audiencesync_grpc_requests_total";
    /// Histogram: gRPC call duration in seconds (a whole stream for streaming calls),
    /// labels `method` and `code`.
    pub const GRPC_DURATION: &str = "audiencesync_grpc_request_duration_seconds";
    /// Gauge: always 1, label `version`.
    pub const BUILD_INFO: &str = "audiencesync_build_info";
    /// Gauge: customers with a purchase in the trailing 365 days.
    pub const INSIGHT_ACTIVE_CUSTOMERS: &str = "audiencesync_insight_active_customers";
    /// Gauge: trailing-365-day net revenue per active customer, major units (`currency`).
    pub const INSIGHT_REVENUE_PER_CUSTOMER: &str = "audiencesync_insight_revenue_per_customer";
    /// Gauge: share of buyers with two purchases or more.
    pub const INSIGHT_REPEAT_PURCHASE_RATE: &str = "audiencesync_insight_repeat_purchase_rate";
    /// Gauge: share of trailing-365-day revenue from VIP members.
    pub const INSIGHT_VIP_REVENUE_SHARE: &str = "audiencesync_insight_vip_revenue_share";
    /// Gauge: customer retention rate of the last complete calendar month.
    pub const INSIGHT_RETENTION_RATE: &str = "audiencesync_insight_retention_rate";
    /// Gauge: share of lapsed-tier entries (last 12 complete months, closed windows) followed
    /// by an order within 90 days, by `audience`.
    pub const INSIGHT_REACTIVATION_RATE: &str = "audiencesync_insight_reactivation_rate";
    /// Gauge: conversion rate after entering an audience, closed windows, by `audience` and
    /// `group` (`pushed`, `holdout`).
    pub const INSIGHT_CONVERSION_RATE: &str = "audiencesync_insight_conversion_rate";
    /// Gauge: audience entries by `audience`, `group` and `window` (`closed`, `open`).
    pub const INSIGHT_OUTCOME_MEMBERS: &str = "audiencesync_insight_outcome_members";
    /// Gauge: pushed minus holdout conversion rate, by `audience`.
    pub const INSIGHT_LIFT: &str = "audiencesync_insight_absolute_lift";
    /// Gauge: lower bound of its 95 % interval.
    pub const INSIGHT_LIFT_LOW: &str = "audiencesync_insight_absolute_lift_low";
    /// Gauge: upper bound of its 95 % interval.
    pub const INSIGHT_LIFT_HIGH: &str = "audiencesync_insight_absolute_lift_high";
}

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
    ledger: Ledger,
    sync: Option<Arc<StatusBoard>>,
) -> Result<Option<SocketAddr>, MetricsError> {
    if !cfg.enabled {
        return Ok(None);
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::GRPC_DURATION.into()), DURATION_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(names::SYNC_REQUEST_DURATION.into()),
            DURATION_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(names::WAL_APPEND_DURATION.into()),
            DURATION_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(names::SYNC_BATCH_MEMBERS.into()),
            BATCH_BUCKETS,
        )?
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
    tokio::spawn(accept_loop(listener, handle, Sources { ledger, sync }));
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
        names::IDENTIFIERS_DROPPED,
        "Identifiers dropped from applied events (could not be normalized), by field and reason."
    );
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
        names::WAL_APPEND_DURATION,
        Unit::Seconds,
        "Write-ahead append of one group commit: write plus fdatasync."
    );
    describe_histogram!(
        names::GRPC_DURATION,
        Unit::Seconds,
        "gRPC call duration by method and status code (whole stream for streaming calls)."
    );
    describe_gauge!(names::AUDIENCE_MEMBERS, "Members per audience.");
    describe_gauge!(
        names::AUDIENCE_ELIGIBLE,
        "Members eligible for push per audience."
    );
    describe_counter!(names::MEMBERSHIP_CHANGES, "Audience entries and exits.");
    describe_counter!(
        names::SYNC_REQUESTS,
        "Ad-network requests by destination, op and outcome."
    );
    describe_histogram!(
        names::SYNC_REQUEST_DURATION,
        Unit::Seconds,
        "Ad-network request duration by destination."
    );
    describe_counter!(
        names::SYNC_MEMBERS_SENT,
        "Members in requests the network accepted, by destination, audience and op."
    );
    describe_histogram!(
        names::SYNC_RATE_LIMIT_WAIT,
        Unit::Seconds,
        "Waits for the request quota or a network's throttling, by destination."
    );
    describe_gauge!(
        names::SYNC_PENDING,
        "Adds and removes found and not yet confirmed."
    );
    describe_gauge!(
        names::SYNC_CONFIRMED,
        "Members the network confirmed as applied, per list."
    );
    describe_counter!(
        names::SYNC_MEMBERS_REFUSED,
        "Rows a network refused, by destination, audience and the network's reason."
    );
    describe_histogram!(
        names::SYNC_BATCH_MEMBERS,
        "Members per request sent to a network, by destination."
    );
    describe_gauge!(
        names::SYNC_IN_FLIGHT,
        "Members sent whose outcome the network has not reported yet, per list."
    );
    describe_gauge!(
        names::SYNC_REMOTE_SIZE,
        "The list's size as the network reports it (bound lower/upper)."
    );
    describe_gauge!(
        names::SYNC_IN_SYNC,
        "1 while the list is in sync as the network confirmed it."
    );
    describe_gauge!(
        names::SYNC_PAUSED,
        "1 while the destination is paused on a spent per-day quota."
    );
    describe_gauge!(
        names::SYNC_PARKED,
        "1 while a destination x audience is parked on a permanent error."
    );
    describe_gauge!(
        names::SYNC_LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the last confirmed push."
    );
    describe_gauge!(
        names::INSIGHT_ACTIVE_CUSTOMERS,
        "Customers with a purchase in the trailing 365 days."
    );
    describe_gauge!(
        names::INSIGHT_REVENUE_PER_CUSTOMER,
        "Trailing-365-day net revenue per active customer, in major units of `currency`."
    );
    describe_gauge!(
        names::INSIGHT_REPEAT_PURCHASE_RATE,
        "Share of buyers with at least two purchases."
    );
    describe_gauge!(
        names::INSIGHT_VIP_REVENUE_SHARE,
        "Share of trailing-365-day revenue from VIP members."
    );
    describe_gauge!(
        names::INSIGHT_RETENTION_RATE,
        "Customer retention rate of the last complete calendar month."
    );
    describe_gauge!(
        names::INSIGHT_REACTIVATION_RATE,
        "Share of lapsed-tier entries (last 12 complete months) followed by an order within 90 days."
    );
    describe_gauge!(
        names::INSIGHT_CONVERSION_RATE,
        "Conversion rate after entering an audience (closed windows), pushed vs holdout."
    );
    describe_gauge!(
        names::INSIGHT_OUTCOME_MEMBERS,
        "Audience entries counted for outcomes, by group and window state."
    );
    describe_gauge!(
        names::INSIGHT_LIFT,
        "Pushed minus holdout conversion rate after entering an audience."
    );
    describe_gauge!(
        names::INSIGHT_LIFT_LOW,
        "Lower bound of the 95% Newcombe interval of the absolute lift."
    );
    describe_gauge!(
        names::INSIGHT_LIFT_HIGH,
        "Upper bound of the 95% Newcombe interval of the absolute lift."
    );
}

/// Sets the headline insight gauges from the counters the writer published last (undefined
/// figures read NaN).
fn refresh_insights(ledger: &Ledger) {
    use crate::insight::calendar::Unit;
    let published = ledger.read().insights.published();
    let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let r = published.retention(Unit::Month, 12, 1);
    metrics::gauge!(names::INSIGHT_ACTIVE_CUSTOMERS).set(r.active_customers as f64);
    let exp = crate::ingest::currency::parse_code(&published.currency).map_or(2, |(_, e)| e);
    metrics::gauge!(names::INSIGHT_REVENUE_PER_CUSTOMER, "currency" => published.currency.clone())
        .set(nan(r.revenue_per_active_customer) / 10f64.powi(exp as i32));
    metrics::gauge!(names::INSIGHT_REPEAT_PURCHASE_RATE).set(nan(r.repeat_purchase_rate));
    metrics::gauge!(names::INSIGHT_VIP_REVENUE_SHARE).set(nan(r.vip_revenue_share));
    metrics::gauge!(names::INSIGHT_RETENTION_RATE)
        .set(nan(r.periods.last().and_then(|p| p.retention_rate)));
    for t in &r.reactivation {
        metrics::gauge!(names::INSIGHT_REACTIVATION_RATE, "audience" => t.audience.clone())
            .set(nan(t.rate));
    }
    for a in published.lift(None) {
        let total = &a.total;
        for (group, g) in [("pushed", &total.pushed), ("holdout", &total.holdout)] {
            let labels = [
                ("audience", a.audience.clone()),
                ("group", group.to_string()),
            ];
            metrics::gauge!(names::INSIGHT_CONVERSION_RATE, &labels).set(nan(g.rate()));
            for (window, n) in [("closed", g.members), ("open", g.open_members)] {
                let labels = [
                    ("audience", a.audience.clone()),
                    ("group", group.to_string()),
                    ("window", window.to_string()),
                ];
                metrics::gauge!(names::INSIGHT_OUTCOME_MEMBERS, &labels).set(n as f64);
            }
        }
        let e = total.absolute;
        let audience = a.audience.clone();
        metrics::gauge!(names::INSIGHT_LIFT, "audience" => audience.clone())
            .set(nan(e.map(|e| e.value)));
        metrics::gauge!(names::INSIGHT_LIFT_LOW, "audience" => audience.clone())
            .set(nan(e.and_then(|e| e.low)));
        metrics::gauge!(names::INSIGHT_LIFT_HIGH, "audience" => audience)
            .set(nan(e.and_then(|e| e.high)));
    }
}

/// What a scrape reads.
#[derive(Clone)]
struct Sources {
    ledger: Ledger,
    sync: Option<Arc<StatusBoard>>,
}

/// Copies the ledger's counters, audience sizes and sync state into the registry right
/// before a scrape.
fn refresh(src: &Sources) {
    let ledger = &src.ledger;
    let s = ledger.stats();
    metrics::counter!(names::MEMBERSHIP_CHANGES)
        .absolute(s.membership_changes.load(Ordering::Relaxed));
    {
        let db = ledger.read();
        for a in Audience::ALL {
            let members = db.audiences.members(a);
            let name = db.audiences.name(a);
            metrics::gauge!(names::AUDIENCE_MEMBERS, "audience" => name.clone())
                .set(members.len() as f64);
            metrics::gauge!(names::AUDIENCE_ELIGIBLE, "audience" => name)
                .set(members.intersection_len(db.audiences.eligible()) as f64);
        }
    }
    if let Some(board) = &src.sync {
        for ((d, a), st) in board.snapshot() {
            let labels = [("destination", d.clone()), ("audience", a.clone())];
            metrics::gauge!(names::SYNC_CONFIRMED, &labels).set(st.confirmed as f64);
            metrics::gauge!(names::SYNC_PARKED, &labels).set(f64::from(u8::from(st.parked)));
            metrics::gauge!(names::SYNC_IN_FLIGHT, &labels).set(st.in_flight as f64);
            metrics::gauge!(names::SYNC_IN_SYNC, &labels).set(f64::from(u8::from(st.in_sync())));
            metrics::gauge!(names::SYNC_PAUSED, &labels).set(f64::from(u8::from(st.paused_daily)));
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
                    metrics::gauge!(names::SYNC_REMOTE_SIZE, &l).set(size as f64);
                }
            }
            let add = [
                ("destination", d.clone()),
                ("audience", a.clone()),
                ("op", "add".to_string()),
            ];
            metrics::gauge!(names::SYNC_PENDING, &add).set(st.pending_adds as f64);
            let remove = [
                ("destination", d),
                ("audience", a),
                ("op", "remove".to_string()),
            ];
            metrics::gauge!(names::SYNC_PENDING, &remove).set(st.pending_removes as f64);
            if let Some(t) = st.last_success_at {
                metrics::gauge!(names::SYNC_LAST_SUCCESS, &labels)
                    .set(t as f64 / crate::clock::NANOS_PER_SEC as f64);
            }
        }
    }
    metrics::counter!(names::EVENTS_INGESTED).absolute(s.applied.load(Ordering::Relaxed));
    metrics::counter!(names::EVENTS_REJECTED).absolute(s.rejected.load(Ordering::Relaxed));
    metrics::counter!(names::EVENTS_DUPLICATE).absolute(s.duplicates.load(Ordering::Relaxed));
    metrics::counter!(names::GROUP_COMMITS).absolute(s.groups.load(Ordering::Relaxed));
    metrics::gauge!(names::WAL_SEQUENCE).set(s.wal_seq.load(Ordering::Relaxed) as f64);
    metrics::gauge!(names::CHECKPOINT_SEQUENCE)
        .set(s.checkpoint_seq.load(Ordering::Relaxed) as f64);
    metrics::gauge!(names::WRITER_HEARTBEAT_AGE).set(heartbeat::age(&s.last_beat).as_secs_f64());
    refresh_insights(ledger);
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
