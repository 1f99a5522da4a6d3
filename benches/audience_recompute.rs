//! Audience engine benchmark (a plain program, `harness = false`):
//! `cargo bench --bench audience_recompute -- [customers]` (default 1,000,000).
//!
//! Generates a synthetic shop with the feed generator, applies it to the facts, and reports:
//! the incremental cost per event (apply + re-evaluate the touched customers), the full
//! recompute time over all customers, and the process's peak RSS.

mod common;
use common::peak_rss_mib;

use std::sync::Arc;
use std::time::Instant;

use audiencesync::audience::params::AudienceParams;
use audiencesync::audience::{Audience, Audiences};
use audiencesync::clock::NANOS_PER_SEC;
use audiencesync::config::Config;
use audiencesync::feed::Generator;
use audiencesync::ingest::validate::Validator;
use audiencesync::ledger::facts::Fact;
use audiencesync::ledger::state::{key_of, Cart, Customer, Key, State};
use audiencesync::money::CurrencyTable;

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
            AudienceParams::from_config(&cfg.audiences).expect("rules"),
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
        // The daemon also remembers every event id (dedup); untimed, for the memory figures.
        for f in &facts {
            state.remember(key_of(&f.event_id), 0);
        }
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
    drop(full);
    print_memory(&state, rss_after_ingest);
}

/// glibc malloc's chunk for a request of `len` bytes (16-byte steps, 32 at least).
fn chunk(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len + 8).div_ceil(16).max(2) * 16
    }
}

/// Where the facts' memory goes, from the structures' capacities and their heap strings
/// (an estimate: allocator overhead by glibc's rules, no fragmentation).
fn print_memory(state: &State, rss_mib: u64) {
    use std::mem::size_of;
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    let slot = |cap: usize, entry: usize| cap * (entry + 1); // hashbrown: entry + control byte
    let mut profile_eids = 0;
    let mut lists = 0;
    let mut ids = 0;
    for c in &state.customers {
        ids += chunk(c.id.len());
        lists += chunk(c.orders.capacity() * 4) + chunk(c.carts.capacity() * 16);
        let p = &c.profile;
        // Registers set by one event share one `Arc<str>` of its id: count each once.
        let mut eids: Vec<&std::sync::Arc<str>> = [
            p.email.as_ref().map(|l| &l.eid),
            p.phone.as_ref().map(|l| &l.eid),
            p.first_name.as_ref().map(|l| &l.eid),
            p.last_name.as_ref().map(|l| &l.eid),
            p.country.as_ref().map(|l| &l.eid),
            p.postal_code.as_ref().map(|l| &l.eid),
            p.registered_at.as_ref().map(|l| &l.eid),
            p.ad_user_data.as_ref().map(|l| &l.eid),
            p.ad_personalization.as_ref().map(|l| &l.eid),
        ]
        .into_iter()
        .flatten()
        .collect();
        eids.sort_by_key(|e| e.as_ptr());
        eids.dedup_by(|a, b| std::sync::Arc::ptr_eq(a, b));
        // An `Arc<str>`'s allocation: two counters, then the bytes.
        profile_eids += eids.iter().map(|e| chunk(16 + e.len())).sum::<usize>();
        // Country and postal code strings.
        for v in [&p.country, &p.postal_code].into_iter().flatten() {
            profile_eids += v.value.as_ref().map_or(0, |s| chunk(s.len()));
        }
    }
    let customers = state.customers.capacity() * size_of::<Customer>();
    let by_id = state.id_index_bytes();
    let (order_slots, order_index, order_chains, order_eids) = state.orders.heap_bytes();
    let mut cart_heap = 0;
    for k in state.carts.values() {
        cart_heap += k.updates.iter().map(|u| chunk(u.eid.len())).sum::<usize>();
    }
    let carts = slot(state.carts.capacity(), size_of::<(Key, Cart)>());
    let dedup = state.dedup.heap_bytes();
    let rows = [
        (
            "customers: Vec<Customer> (profile registers inline)",
            customers,
        ),
        (
            "customers: ids, profile event ids, country/postal strings",
            ids + profile_eids,
        ),
        ("customers: order and cart key lists", lists),
        ("customers: id index", by_id),
        ("orders: slots (key + first placement)", order_slots),
        ("orders: id index", order_index),
        ("orders: further placements, refunds", order_chains),
        ("orders: placement event-id arena", order_eids),
        ("carts: map entries", carts),
        ("carts: update event ids", cart_heap),
        ("dedup: event-id keys", dedup),
    ];
    let total: usize = rows.iter().map(|(_, b)| b).sum();
    println!("memory estimate (MiB) of the facts; RSS after ingest {rss_mib} MiB:");
    for (what, bytes) in rows {
        println!("  {:>8.1}  {what}", mib(bytes));
    }
    println!(
        "  {:>8.1}  total; the rest of RSS ({:.1}) is memberships, allocator slack and the binary",
        mib(total),
        rss_mib as f64 - mib(total)
    );
}
