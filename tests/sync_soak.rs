//! Randomized sync soak: a shop's events (upserts, orders, refunds, carts, consent withdrawals,
//! erasures) stream into the real daemon in rounds while both fake networks inject the faults
//! that decide what a remote list holds (requests that fail asynchronously, partial successes,
//! invalid rows, throttling, 409s, 5xx, resets, slow answers), and the daemon is killed -9 at random moments
//! and restarted on the same data directory. At the end every fake list must equal the desired
//! eligible members of its audience, or differ from it by exactly the members whose refusal
//! `status` reports with its reason (at most that many once a refusal the network does not
//! attribute to a member happened: Google's partial successes).
//!
//! `scripts/sync_soak.sh` runs the long version; CI runs `sync_soak_smoke`. The seed is printed
//! (`SYNC_SOAK_SEED` replays it).

mod common;
mod fakes;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use audiencesync::proto::v1;
use common::workload::{google_form, ingest_all, members, meta_form, Shop};
use common::*;
use fakes::{FakeGoogle, FakeMeta, Fault};
use rand::{Rng, SeedableRng};

struct Settings {
    customers: usize,
    rounds: usize,
    kills: usize,
    /// Most faults queued per network per round (consecutive faults on one request back off
    /// exponentially, so this bounds the run's length more than anything else).
    faults: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: scripts/sync_soak.sh"]
async fn sync_soak() {
    let var = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    run(Settings {
        customers: var("SYNC_SOAK_CUSTOMERS", 3_000),
        rounds: var("SYNC_SOAK_ROUNDS", 40),
        kills: var("SYNC_SOAK_KILLS", 10),
        faults: var("SYNC_SOAK_FAULTS", 3),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_soak_smoke() {
    run(Settings {
        customers: 240,
        rounds: 8,
        kills: 2,
        faults: 1,
    })
    .await;
}

fn config(dir: &std::path::Path, g: &FakeGoogle, m: &FakeMeta) -> String {
    fakes::destinations_toml(
        dir,
        g,
        m,
        r#"linger = "100ms"
status_first_poll = "100ms"
status_poll_interval = "100ms"
lists = [{ audience = "vip", list_id = "111" }, { audience = "stage_active", list_id = "112" }]"#,
        r#"linger = "100ms"
lists = [{ audience = "vip", list_id = "222" }, { audience = "stage_active", list_id = "223" }]"#,
    )
}

/// Faults the networks may answer a request with, drawn at random.
fn google_fault(rng: &mut impl Rng) -> Fault {
    match rng.random_range(0..7) {
        6 => Fault::PartialSuccess {
            refuse: rng.random_range(1..3),
            reason: "PROCESSING_ERROR_REASON_INVALID_FORMAT".into(),
        },
        0 => Fault::RequestFailed,
        1 => Fault::Status(409),
        2 => Fault::Status(503),
        3 => Fault::TooManyRequests {
            retry_after_secs: Some(1),
        },
        4 => Fault::Reset,
        _ => Fault::Delay(Duration::from_millis(300)),
    }
}

fn meta_fault(rng: &mut impl Rng) -> Fault {
    match rng.random_range(0..6) {
        5 => Fault::MetaInvalidEntries {
            count: rng.random_range(1..3),
        },
        0 => Fault::MetaError {
            code: 2,
            subcode: None,
            transient: true,
        },
        1 => Fault::Status(500),
        2 => Fault::Reset,
        3 => Fault::MetaThrottle {
            code: 80003,
            regain_minutes: 0,
        },
        _ => Fault::Delay(Duration::from_millis(300)),
    }
}

async fn run(s: Settings) {
    let seed: u64 = std::env::var("SYNC_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("sync soak seed {seed} (SYNC_SOAK_SEED={seed} replays it)");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let started = Instant::now();
    let now = now_secs();
    let shop = Shop::new(s.customers, seed, now, 40);
    let tmp = tempfile::tempdir().expect("tmp");
    let (g, m) = fakes::fakes_pair().await;
    let cfg = config(tmp.path(), &g, &m);
    let mut d = Daemon::start(tmp.path(), &cfg);

    // Rounds of batches; a kill -9 lands in some of them, at a random moment.
    let per_round = shop.batches.len().div_ceil(s.rounds.max(1));
    let kill_rounds: BTreeSet<usize> = (0..s.kills)
        .map(|_| rng.random_range(0..s.rounds.max(1)))
        .collect();
    let mut sent = 0;
    // Google does not say which rows of a partial success it refused, only how many, and a
    // member Meta refused stays set aside after it leaves the audience: once either happened,
    // the refusals counted are an upper bound of the members a list misses (until the next
    // full resync).
    let mut partial = false;
    for (round, batches) in shop.batches.chunks(per_round.max(1)).enumerate() {
        // Faults land at random moments but never pile up: a queue of dozens would be met one
        // after another by a single request's retries, far more than a network ever throws.
        for _ in 0..rng.random_range(0..=s.faults.saturating_sub(g.pending_faults())) {
            let f = google_fault(&mut rng);
            partial |= matches!(f, Fault::PartialSuccess { .. });
            g.inject(f);
        }
        for _ in 0..rng.random_range(0..=s.faults.saturating_sub(m.pending_faults())) {
            let f = meta_fault(&mut rng);
            partial |= matches!(f, Fault::MetaInvalidEntries { .. });
            m.inject(f);
        }
        let acks = ingest_all(&d, batches).await;
        assert!(acks.iter().all(|a| a.rejected.is_empty()), "{acks:?}");
        sent += batches.len();
        if kill_rounds.contains(&round) {
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..1_500))).await;
            d.kill9();
            d = Daemon::start(tmp.path(), &cfg);
        } else {
            tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
        }
    }
    assert_eq!(sent, shop.batches.len());

    // Everything in: wait for every list to settle, then compare with the truth.
    let lists = [
        ("google", "vip", "111"),
        ("google", "stage_active", "112"),
        ("meta", "vip", "222"),
        ("meta", "stage_active", "223"),
    ];
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let states = d.sync_states().await;
        let mut settled = states.len() == lists.len();
        let mut report = Vec::new();
        for (dest, audience, id) in lists {
            let want_ids = members(&d, audience, true).await;
            let form = if dest == "google" {
                google_form
            } else {
                meta_form
            };
            let want = shop.expected(&want_ids, form);
            let have = if dest == "google" {
                g.list(id)
            } else {
                m.audience(id)
            };
            let extra: Vec<&String> = have.difference(&want).collect();
            let missing = want.difference(&have).count() as u64;
            let st = states
                .iter()
                .find(|x| x.destination == dest && x.audience == audience);
            let explained = st.map_or(0, explained);
            let in_sync = st.is_some_and(|x| x.in_sync);
            let explained_ok = if partial {
                missing + extra.len() as u64 <= explained
            } else {
                missing == explained && extra.is_empty()
            };
            settled &= explained_ok && in_sync;
            report.push(format!(
                "{dest}/{audience}: want {} have {} extra {} missing {missing} explained {explained} in_sync {in_sync} {st:?}",
                want.len(),
                have.len(),
                extra.len()
            ));
        }
        if settled {
            println!("sync soak settled:\n{}", report.join("\n"));
            break;
        }
        if Instant::now() >= deadline {
            let log = d.log_text();
            let tail: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("audiencesync"))
                .rev()
                .take(80)
                .collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "seed {seed}: lists never settled:\n{}\nthe daemon's log ends:\n{}",
                report.join("\n"),
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let google_calls = g.requests().len();
    let meta_calls = m.requests().len();
    println!(
        "requests: google {google_calls}, meta {meta_calls}; {:.1} s",
        started.elapsed().as_secs_f64()
    );
    d.stop();
}

/// Members a list may miss because the network refused them, as status reports it.
fn explained(s: &v1::SyncState) -> u64 {
    s.set_aside + s.refused.iter().map(|r| r.count).sum::<u64>()
}
