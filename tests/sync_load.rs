//! Sync benchmark (a load generator, not a timed test: ignored by default). Prints the figures
//! recorded in docs/BENCHMARKS.md:
//!
//! `cargo test --release --test sync_load -- --ignored --nocapture`
//!
//! - share of the quota used while a backlog drains (Google at a configured 600/min; Meta at
//!   its default-tier Custom Audience budget, 5,000 + 40 × lists calls an hour),
//! - batch fill (members per request against each API's limit),
//! - event → accepted and event → processed latency with the default 5 s linger (Google: the
//!   fake processes each request for 100 ms; the daemon polls after 1 s, then every 1 s
//!   doubling).

mod common;
mod fakes;

use std::time::{Duration, Instant};

use common::*;
use fakes::{FakeGoogle, FakeMeta};

const QUOTA_PER_MIN: u32 = 600;

fn config(dir: &std::path::Path, g: &FakeGoogle, m: &FakeMeta, linger: &str) -> String {
    std::fs::write(
        dir.join("google-oauth.json"),
        format!(
            r#"{{"client_id":"c","client_secret":"s","refresh_token":"{}"}}"#,
            g.valid_refresh_token()
        ),
    )
    .expect("creds");
    std::fs::write(dir.join("meta-token"), "meta-token").expect("token");
    format!(
        r#"
[[destinations]]
name = "google"
kind = "google"
api_base = "{}"
token_url = "{}"
operating_account_id = "1234567890"
credentials_file = "{}"
quota_per_minute = {QUOTA_PER_MIN}
linger = "{linger}"
status_first_poll = "1s"
status_poll_interval = "1s"
lists = [{{ audience = "lapsed_90", list_id = "111" }}]

[[destinations]]
name = "meta"
kind = "meta"
api_base = "{}"
access_token_file = "{}"
linger = "{linger}"
lists = [{{ audience = "lapsed_90", list_id = "222" }}]
"#,
        g.base_url,
        g.token_url,
        dir.join("google-oauth.json").display(),
        m.base_url,
        dir.join("meta-token").display(),
    )
}

fn lapsed(i: usize, now: i64) -> Vec<audiencesync::proto::v1::Event> {
    let id = format!("l{i}");
    vec![
        ev(
            &format!("u{i}"),
            now - 200 * DAY,
            customer_named(
                &id,
                &format!("buyer{i}@example.com"),
                // 555-0100..0199: the fictional range the phone library accepts.
                &format!("+12125550{:03}", 100 + i % 100),
                true,
                (&format!("Given{i}"), &format!("Family{i}"), "10001"),
            ),
        ),
        ev(
            &format!("o{i}"),
            now - 100 * DAY,
            order(&format!("o{i}"), &id, 1_000, "USD"),
        ),
    ]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn quota_share_batch_fill_and_latency() {
    let tmp = tempfile::tempdir().expect("tmp");
    let g = FakeGoogle::start().await;
    let m = FakeMeta::start("meta-token", None).await;
    m.create_audience("222");
    let now = now_secs();

    // 1. Backlog: 25,000 lapsed buyers at once.
    let d = Daemon::start(tmp.path(), &config(tmp.path(), &g, &m, "5s"));
    let n: usize = std::env::var("SYNC_LOAD_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25_000);
    let events: Vec<_> = (0..n).flat_map(|i| lapsed(i, now)).collect();
    for chunk in events.chunks(10_000) {
        let acks = stream(&d, vec![chunk.to_vec()]).await;
        assert!(
            acks.iter().all(|a| a.rejected.is_empty()),
            "{:?}",
            acks[0].rejected.first()
        );
    }
    let started = Instant::now();
    while g.list("111").len() < n || m.audience("222").len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "backlog never drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (name, reqs) in [
        (
            "google",
            g.requests()
                .into_iter()
                .filter(|r| r.path.ends_with(":ingest"))
                .collect::<Vec<_>>(),
        ),
        (
            "meta",
            m.requests()
                .into_iter()
                .filter(|r| r.path.ends_with("/users"))
                .collect::<Vec<_>>(),
        ),
    ] {
        let span = reqs
            .last()
            .map(|l| l.at.duration_since(reqs[0].at))
            .unwrap_or_default();
        let rate = (reqs.len().saturating_sub(1)) as f64 / span.as_secs_f64().max(1e-9);
        let quota = if name == "meta" {
            // The default-tier budget of one list.
            f64::from(5_000 + 40) / 3600.0
        } else {
            f64::from(QUOTA_PER_MIN) / 60.0
        };
        let sizes: Vec<usize> = reqs.iter().map(|r| r.members).collect();
        let full = sizes.iter().take(sizes.len().saturating_sub(1));
        let mean_full = full.clone().sum::<usize>() as f64 / full.count().max(1) as f64;
        println!(
            "{name}: {} requests for {n} members in {:.2} s: {:.2} req/s = {:.1} % of its quota; members per request: first {} / mean of all but the last {:.0} / last {}",
            reqs.len(),
            span.as_secs_f64(),
            rate,
            100.0 * rate / quota,
            sizes.first().copied().unwrap_or(0),
            mean_full,
            sizes.last().copied().unwrap_or(0),
        );
    }

    // 2. Latency: single customers, 300 ms apart, default linger (5 s).
    let mut acked = Vec::new();
    for k in 0..20 {
        stream(&d, vec![lapsed(n + k, now)]).await;
        acked.push(Instant::now());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut seen = vec![None; acked.len()];
    let mut accepted = vec![None; acked.len()];
    let mut processed = vec![None; acked.len()];
    let deadline = Instant::now() + Duration::from_secs(120);
    while processed.iter().any(Option::is_none) && Instant::now() < deadline {
        let size = g.list("111").len();
        let states = d.sync_states().await;
        let google = states.iter().find(|s| s.destination == "google");
        let (acc, conf) = google.map_or((0, 0), |s| (s.accepted, s.confirmed_size));
        let now = Instant::now();
        for k in 0..acked.len() {
            let want = (n + k + 1) as u64;
            if seen[k].is_none() && size as u64 >= want {
                seen[k] = Some(now);
            }
            if accepted[k].is_none() && acc >= want {
                accepted[k] = Some(now);
            }
            if processed[k].is_none() && conf >= want {
                processed[k] = Some(now);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (what, at) in [
        ("accepted", &accepted),
        ("processed (confirmed)", &processed),
    ] {
        let mut l: Vec<f64> = acked
            .iter()
            .zip(at)
            .filter_map(|(a, s)| s.map(|s| s.duration_since(*a).as_secs_f64()))
            .collect();
        l.sort_by(|a, b| a.total_cmp(b));
        println!(
            "event acked → {what} by Google (linger 5 s): p50 {:.2} s, p99 {:.2} s, max {:.2} s over {} events",
            percentile(&l, 50.0),
            percentile(&l, 99.0),
            l.last().copied().unwrap_or(0.0),
            l.len()
        );
    }
    let mut lat: Vec<f64> = acked
        .iter()
        .zip(&seen)
        .filter_map(|(a, s)| s.map(|s| s.duration_since(*a).as_secs_f64()))
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "event acked → on the Google list (linger 5 s): p50 {:.2} s, p99 {:.2} s, max {:.2} s over {} events",
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(0.0),
        lat.len()
    );
    assert_eq!(lat.len(), acked.len(), "every event reached the network");
    d.stop();
}
