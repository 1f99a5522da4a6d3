//! What a feed run reports: the totals of the streams' acks with their latency percentiles,
//! the read side's latencies, and the summary printed at the end.

use super::probe;
use super::stream::StreamOutcome;

/// Totals of one feed run, summed from the daemon's acks.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FeedReport {
    /// The order the shop was sent in (`grouped` or `time`, as `--order`).
    pub order: String,
    /// Events sent (replays included).
    pub events_sent: u64,
    /// Batches sent, each acknowledged.
    pub batches: u64,
    /// Events the daemon newly applied.
    pub applied: u64,
    /// Events the daemon recognised as already seen.
    pub duplicates: u64,
    /// Events the daemon refused.
    pub rejected: u64,
    /// Identifiers the daemon dropped from applied events (one per field; ack warnings).
    pub warnings: u64,
    /// From the first send to the last ack (connecting excluded).
    pub elapsed_secs: f64,
    /// `events_sent / elapsed_secs`.
    pub events_per_sec: f64,
    /// Median send→ack latency of a batch.
    pub ack_latency_ms_p50: f64,
    /// 90th percentile send→ack latency.
    pub ack_latency_ms_p90: f64,
    /// 99th percentile send→ack latency.
    pub ack_latency_ms_p99: f64,
    /// Slowest send→ack latency.
    pub ack_latency_ms_max: f64,
    /// The first few rejections (a handful per stream), for diagnosis.
    pub rejection_samples: Vec<String>,
    /// The first few warnings (a handful per stream), for diagnosis.
    pub warning_samples: Vec<String>,
    /// Read load (`--query-rate`, `--visibility-probes`), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads: Option<ReadReport>,
}

/// Latency of the read side measured during a feed run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReadReport {
    /// Membership checks answered (found or NOT_FOUND).
    pub queries: u64,
    /// Membership checks that failed otherwise.
    pub query_errors: u64,
    /// Check latency from the instant it was due: median.
    pub query_latency_ms_p50: f64,
    /// 99th percentile.
    pub query_latency_ms_p99: f64,
    /// 99.9th percentile.
    pub query_latency_ms_p999: f64,
    /// Slowest check.
    pub query_latency_ms_max: f64,
    /// Check latency from its send to its answer (no client timer lag): median.
    pub query_service_ms_p50: f64,
    /// 99th percentile.
    pub query_service_ms_p99: f64,
    /// Probe events that became visible.
    pub probes: u64,
    /// Probes not sent or not visible within 30 s.
    pub probe_errors: u64,
    /// Event sent → visible in a query: median.
    pub visible_ms_p50: f64,
    /// 99th percentile.
    pub visible_ms_p99: f64,
    /// Slowest probe.
    pub visible_ms_max: f64,
    /// The first few errors of each kind.
    pub error_samples: Vec<String>,
}

/// The read side's totals from the samples of the membership checks (`true`) and the
/// visibility probes (`false`).
pub(super) fn read_totals(samples: Vec<(bool, probe::Samples)>) -> ReadReport {
    let mut r = ReadReport::default();
    for (is_query, mut s) in samples {
        r.error_samples.append(&mut s.error_samples);
        s.latencies_ms.sort_unstable_by(f64::total_cmp);
        let l = &s.latencies_ms;
        let max = l.last().copied().unwrap_or(0.0);
        if is_query {
            r.queries = l.len() as u64;
            r.query_errors = s.errors;
            r.query_latency_ms_p50 = percentile(l, 0.50);
            r.query_latency_ms_p99 = percentile(l, 0.99);
            r.query_latency_ms_p999 = percentile(l, 0.999);
            r.query_latency_ms_max = max;
            s.service_ms.sort_unstable_by(f64::total_cmp);
            r.query_service_ms_p50 = percentile(&s.service_ms, 0.50);
            r.query_service_ms_p99 = percentile(&s.service_ms, 0.99);
        } else {
            r.probes = l.len() as u64;
            r.probe_errors = s.errors;
            r.visible_ms_p50 = percentile(l, 0.50);
            r.visible_ms_p99 = percentile(l, 0.99);
            r.visible_ms_max = max;
        }
    }
    r
}

/// The run's totals from every stream's outcome.
pub(super) fn totals(outcomes: Vec<StreamOutcome>, elapsed_secs: f64) -> FeedReport {
    let mut r = FeedReport {
        elapsed_secs,
        ..FeedReport::default()
    };
    let mut latencies = Vec::new();
    for o in outcomes {
        r.events_sent += o.events;
        r.batches += o.batches;
        r.applied += o.applied;
        r.duplicates += o.duplicates;
        r.rejected += o.rejected;
        r.warnings += o.warnings;
        latencies.extend(o.latencies_ms);
        r.rejection_samples.extend(o.rejection_samples);
        r.warning_samples.extend(o.warning_samples);
    }
    r.events_per_sec = if elapsed_secs > 0.0 {
        r.events_sent as f64 / elapsed_secs
    } else {
        0.0
    };
    latencies.sort_unstable_by(f64::total_cmp);
    r.ack_latency_ms_p50 = percentile(&latencies, 0.50);
    r.ack_latency_ms_p90 = percentile(&latencies, 0.90);
    r.ack_latency_ms_p99 = percentile(&latencies, 0.99);
    r.ack_latency_ms_max = latencies.last().copied().unwrap_or(0.0);
    r
}

/// Nearest-rank percentile of sorted values; 0 when there are none.
pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Prints the report to stdout: a short summary, or one JSON line for scripts and benchmarks.
pub fn print_report(r: &FeedReport, json: bool) {
    if json {
        match serde_json::to_string(r) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("cannot encode the report as JSON: {e}"),
        }
        return;
    }
    println!(
        "sent {} events ({} order) in {} batches in {:.2} s ({:.0} events/s)",
        r.events_sent, r.order, r.batches, r.elapsed_secs, r.events_per_sec
    );
    println!(
        "acks: {} applied, {} duplicates, {} rejected, {} identifiers dropped",
        r.applied, r.duplicates, r.rejected, r.warnings
    );
    println!(
        "ack latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        r.ack_latency_ms_p50, r.ack_latency_ms_p90, r.ack_latency_ms_p99, r.ack_latency_ms_max
    );
    for s in &r.rejection_samples {
        println!("  rejected: {s}");
    }
    for s in &r.warning_samples {
        println!("  warning: {s}");
    }
    if let Some(q) = &r.reads {
        println!(
            "membership checks: {} ok, {} failed; latency ms p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            q.queries,
            q.query_errors,
            q.query_latency_ms_p50,
            q.query_latency_ms_p99,
            q.query_latency_ms_p999,
            q.query_latency_ms_max
        );
        println!(
            "  from send to answer (no client timer lag): ms p50 {:.2}  p99 {:.2}",
            q.query_service_ms_p50, q.query_service_ms_p99
        );
        println!(
            "event → visible in a query: {} probes, {} failed; ms p50 {:.1}  p99 {:.1}  max {:.1}",
            q.probes, q.probe_errors, q.visible_ms_p50, q.visible_ms_p99, q.visible_ms_max
        );
        for e in &q.error_samples {
            println!("  read error: {e}");
        }
    }
}
