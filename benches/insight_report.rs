//! Insight benchmark (a plain program, `harness = false`):
//! `cargo bench --bench insight_report -- [customers]` (default 1,000,000).
//!
//! Generates the feed generator's synthetic shop, applies it batch by batch the way the ledger
//! writer does (facts, audiences, then the insight engine's observe and flush), and reports:
//! the insight engine's cost per event on that path, a rebuild of every counter from scratch,
//! the latency of the reports `GetLift` and `GetRetention` answer from (they read counters, so
//! they must not grow with the population), and the process's peak RSS.

mod common;
use common::peak_rss_mib;

use std::sync::Arc;
use std::time::{Duration, Instant};

use audiencesync::audience::params::AudienceParams;
use audiencesync::audience::Audiences;
use audiencesync::clock::NANOS_PER_SEC;
use audiencesync::config::Config;
use audiencesync::feed::Generator;
use audiencesync::ingest::validate::Validator;
use audiencesync::insight::calendar::Unit;
use audiencesync::insight::Insights;
use audiencesync::ledger::facts::Fact;
use audiencesync::ledger::state::State;
use audiencesync::money::CurrencyTable;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let customers: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut cfg = Config::default();
    for a in [
        "vip",
        "lapsed_90",
        "lapsed_180",
        "lapsed_360",
        "cart_abandoners",
    ] {
        cfg.audiences.holdout.insert(a.into(), "0.1".into());
    }
    let validator = Validator::new(&cfg).expect("validator");
    let params = AudienceParams::from_config(&cfg.audiences).expect("rules");
    let currencies = Arc::new(CurrencyTable::from_config(&cfg.revenue).expect("currencies"));
    let now_secs = 1_900_000_000;
    let now = now_secs * NANOS_PER_SEC;

    let mut state = State::default();
    let mut audiences = Audiences::new(params.clone(), currencies.clone());
    audiences.set_holdout_salt([42; 16]);
    let mut insights = Insights::new(&params, currencies.clone());
    let mut events = 0usize;
    let mut insight_ns = 0u128;
    let mut batches = 0u64;
    for batch in Generator::new(customers, 1, now_secs).batches(1_000) {
        let facts: Vec<Fact> = batch
            .iter()
            .filter_map(|e| validator.validate(e, now).ok())
            .collect();
        events += facts.len();
        for f in &facts {
            state.apply(f);
        }
        let touched: Vec<u32> = std::mem::take(&mut state.touched).into_iter().collect();
        for &c in &touched {
            audiences.update(&state, c, now);
        }
        let t = Instant::now();
        insights.observe(&state, &audiences, &touched);
        audiences.pending.clear();
        // The writer flushes once per tick (1 s); at ~150k events/s that is every ~150 batches.
        batches += 1;
        if batches.is_multiple_of(150) {
            insights.flush(&state, &audiences, now);
        }
        insight_ns += t.elapsed().as_nanos();
    }
    let t = Instant::now();
    insights.flush(&state, &audiences, now);
    insight_ns += t.elapsed().as_nanos();
    let rss_after_ingest = peak_rss_mib();

    let t = Instant::now();
    insights.rebuild(&state, &audiences, now);
    let rebuild = t.elapsed();

    let published = insights.published();
    let mut lift_times = Vec::new();
    let mut retention_times = Vec::new();
    let mut audiences_reported = 0;
    let mut active = 0;
    for _ in 0..200 {
        let t = Instant::now();
        let lift = published.lift(None);
        lift_times.push(t.elapsed());
        audiences_reported = lift.len();
        let t = Instant::now();
        let r = published.retention(Unit::Month, 12, 12);
        retention_times.push(t.elapsed());
        active = r.active_customers;
    }
    lift_times.sort();
    retention_times.sort();

    println!("customers: {customers}, events applied: {events}");
    println!(
        "insight engine on the ingest path (observe + flush): {:.0} ns per event",
        insight_ns as f64 / events.max(1) as f64
    );
    println!(
        "rebuild of every counter from scratch: {:.3} s",
        rebuild.as_secs_f64()
    );
    println!(
        "GetLift report ({audiences_reported} audiences): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&lift_times, 0.5),
        percentile(&lift_times, 0.99),
        lift_times[lift_times.len() - 1]
    );
    println!(
        "GetRetention report (12 months, 12 cohorts; {active} active customers): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&retention_times, 0.5),
        percentile(&retention_times, 0.99),
        retention_times[retention_times.len() - 1]
    );
    println!(
        "peak RSS: {rss_after_ingest} MiB after ingest, {} MiB at the end",
        peak_rss_mib()
    );
}
