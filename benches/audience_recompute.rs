//! Audience engine benchmark (a plain program, `harness = false`):
//! `cargo bench --bench audience_recompute -- [customers]` (default 1,000,000).
//!
//! Generates a synthetic shop with the feed generator, applies it to the facts, and reports:
//! the incremental cost per event (apply + re-evaluate the touched customers), the full
//! recompute time over all customers, and the process's peak RSS.

use std::sync::Arc;
use std::time::Instant;

use audiencesync::audience::{Audience, Audiences};
use audiencesync::clock::NANOS_PER_SEC;
use audiencesync::config::Config;
use audiencesync::feed::Generator;
use audiencesync::ingest::currency::CurrencyTable;
use audiencesync::ingest::validate::Validator;
use audiencesync::ledger::facts::Fact;
use audiencesync::ledger::state::State;

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn main() {
    let customers: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let cfg = Config::default();
    let validator = Validator::new(&cfg).expect("validator");
    let now_secs = 1_900_000_000;
    let now = now_secs * NANOS_PER_SEC;

    let mk = || {
        Audiences::new(
            cfg.audiences.rules().expect("rules"),
            Arc::new(CurrencyTable::from_config(&cfg.revenue).expect("currencies")),
        )
    };
    // Generate and validate batch by batch (not timed), apply each batch at once (timed), so
    // memory holds what the daemon would hold: the facts and the memberships.
    let mut state = State::default();
    let mut inc = mk();
    let mut events = 0usize;
    let mut apply_ns = 0u128;
    let mut audience_ns = 0u128;
    let t = Instant::now();
    for batch in Generator::new(customers, 1, now_secs).batches(1_000) {
        let facts: Vec<Fact> = batch
            .iter()
            .filter_map(|e| validator.validate(e, now).ok())
            .collect();
        events += facts.len();
        let a = Instant::now();
        for f in &facts {
            state.apply(f);
        }
        apply_ns += a.elapsed().as_nanos();
        let a = Instant::now();
        for c in std::mem::take(&mut state.touched) {
            inc.update(&state, c, now);
        }
        audience_ns += a.elapsed().as_nanos();
    }
    let gen_s = t.elapsed().as_secs_f64() - (apply_ns + audience_ns) as f64 / 1e9;
    let rss_after_ingest = peak_rss_mib();
    let per_event_ns = (apply_ns + audience_ns) as f64 / events as f64;
    let audience_ns = audience_ns as f64 / events as f64;

    let mut full = mk();
    let t = Instant::now();
    full.recompute_all(&state, now);
    let recompute = t.elapsed();
    assert_eq!(
        Audience::ALL.map(|a| inc.members(a).len()),
        Audience::ALL.map(|a| full.members(a).len()),
        "incremental and full recompute must agree"
    );
    println!(
        "customers={} orders={} events={} generate+validate={:.1}s",
        state.customers.len(),
        state.orders.len(),
        events,
        gen_s
    );
    println!(
        "incremental: {:.0} ns/event (apply {:.0} + audiences {:.0}), {:.0} events/s on one core",
        per_event_ns,
        apply_ns as f64 / events as f64,
        audience_ns,
        1e9 / per_event_ns
    );
    println!(
        "full recompute: {:.3} s for {} customers; peak RSS {} MiB after ingest, {} MiB after a second engine's recompute",
        recompute.as_secs_f64(),
        state.customers.len(),
        rss_after_ingest,
        peak_rss_mib()
    );
    for a in Audience::ALL {
        print!("{}={} ", full.name(a), full.members(a).len());
    }
    println!();
}
