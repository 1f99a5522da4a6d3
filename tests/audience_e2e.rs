//! Audience boundaries over real gRPC, with the daemon's manual clock moved by the admin API.

mod common;

use common::*;

use audiencesync::proto::v1;

const MANUAL: &str = "[clock]\nmode = \"manual\"\n";

async fn audiences_of(d: &Daemon, id: &str) -> v1::CustomerAudiences {
    d.audience()
        .await
        .get_customer_audiences(v1::GetCustomerAudiencesRequest {
            customer_id: id.into(),
        })
        .await
        .expect("get_customer_audiences")
        .into_inner()
}

async fn advance(d: &Daemon, secs: i64) -> i64 {
    let r = d
        .admin()
        .await
        .set_clock(v1::SetClockRequest {
            now: None,
            advance_seconds: secs,
        })
        .await
        .expect("set_clock")
        .into_inner();
    r.now.map(|t| t.seconds).unwrap_or(0)
}

/// The daemon's current time (advancing by zero just reads it).
async fn daemon_now(d: &Daemon) -> i64 {
    advance(d, 0).await
}

async fn members(d: &Daemon, audience: &str) -> Vec<v1::Member> {
    d.members(audience, 2).await
}

fn ids(m: &[v1::Member]) -> Vec<String> {
    let mut v: Vec<String> = m.iter().map(|m| m.customer_id.clone()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapsed_tiers_and_stages_move_with_time_to_the_second() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), MANUAL);
    let now = daemon_now(&d).await;
    stream(
        &d,
        vec![vec![
            ev(
                "u1",
                now - 200 * DAY,
                customer("c1", "a@example.com", "+12125550134", true),
            ),
            ev("o1", now - (90 * DAY - 10), order("o1", "c1", 1_000, "USD")),
        ]],
    )
    .await;
    let a = audiences_of(&d, "c1").await;
    assert_eq!(a.lifecycle_stage, "new");
    assert!(!a.audiences.contains(&"lapsed_90".to_string()));
    assert!(a.eligible);

    advance(&d, 9).await; // 89 d 23:59:59
    assert!(!audiences_of(&d, "c1")
        .await
        .audiences
        .contains(&"lapsed_90".to_string()));
    advance(&d, 1).await; // exactly 90 d: no event, only time
    let a = audiences_of(&d, "c1").await;
    assert!(a.audiences.contains(&"lapsed_90".to_string()), "{a:?}");
    assert_eq!(a.lifecycle_stage, "lapsed");

    advance(&d, 90 * DAY - 1).await;
    assert!(audiences_of(&d, "c1")
        .await
        .audiences
        .contains(&"lapsed_90".to_string()));
    advance(&d, 1).await; // 180 d: tiers are exclusive
    let a = audiences_of(&d, "c1").await;
    assert!(a.audiences.contains(&"lapsed_180".to_string()));
    assert!(!a.audiences.contains(&"lapsed_90".to_string()));

    // A new order reactivates (gap >= 90 d) for 30 days.
    let now = daemon_now(&d).await;
    stream(
        &d,
        vec![vec![ev("o2", now - 5, order("o2", "c1", 1_000, "USD"))]],
    )
    .await;
    let a = audiences_of(&d, "c1").await;
    assert_eq!(a.lifecycle_stage, "reactivated");
    assert!(!a.audiences.iter().any(|x| x.starts_with("lapsed_")));
    advance(&d, 30 * DAY - 6).await;
    assert_eq!(audiences_of(&d, "c1").await.lifecycle_stage, "reactivated");
    advance(&d, 1).await;
    assert_eq!(audiences_of(&d, "c1").await.lifecycle_stage, "active");

    // History records every entry and exit in order, and survives a restart.
    let history = d
        .audience()
        .await
        .get_customer_history(v1::GetCustomerHistoryRequest {
            customer_id: "c1".into(),
        })
        .await
        .expect("history")
        .into_inner();
    let trail: Vec<(String, bool)> = history
        .changes
        .iter()
        .map(|c| (c.audience.clone(), c.added))
        .collect();
    assert!(trail.contains(&("lapsed_90".into(), true)));
    assert!(trail.contains(&("lapsed_90".into(), false)));
    assert!(trail.contains(&("stage_reactivated".into(), false)));
    let stage_before = audiences_of(&d, "c1").await;
    assert!(d.stop().success());
    let d = Daemon::start(tmp.path(), "");
    let again = d
        .audience()
        .await
        .get_customer_history(v1::GetCustomerHistoryRequest {
            customer_id: "c1".into(),
        })
        .await
        .expect("history")
        .into_inner();
    assert!(again.changes.len() >= history.changes.len());
    assert_eq!(again.changes[..history.changes.len()], history.changes[..]);
    // Memberships are recomputed at start-up under the real clock, which is behind the
    // manual one here; the stage must still be a valid one.
    assert!(!audiences_of(&d, "c1").await.lifecycle_stage.is_empty());
    let _ = stage_before;
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vip_cut_with_ties_and_a_refund() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), MANUAL);
    let now = daemon_now(&d).await;
    let revenues = [10_000, 5_000, 5_000, 5_000, 1_000, 1_000, 500, 100]; // cents
    let mut events = Vec::new();
    for (i, r) in revenues.iter().enumerate() {
        events.push(ev(
            &format!("o{i}"),
            now - 10 * DAY,
            order(&format!("o{i}"), &format!("v{i}"), *r, "USD"),
        ));
    }
    // An order older than the 365-day window does not count.
    events.push(ev(
        "old",
        now - 366 * DAY,
        order("old", "v7", 1_000_000, "USD"),
    ));
    stream(&d, vec![events]).await;
    // N = 8, k = ceil(2) = 2, T = 50.00: the three tied at 50 are all in.
    assert_eq!(ids(&members(&d, "vip").await), vec!["v0", "v1", "v2", "v3"]);
    let vip = d
        .audience()
        .await
        .get_audience(v1::GetAudienceRequest { name: "vip".into() })
        .await
        .expect("vip")
        .into_inner();
    assert_eq!(vip.size, 4);

    // A full refund drops v0 out of the buyers: N = 7, k = 2, T = 50.00.
    let now = daemon_now(&d).await;
    stream(&d, vec![vec![ev("r0", now - 60, refund("o0", 0, true))]]).await;
    assert_eq!(ids(&members(&d, "vip").await), vec!["v1", "v2", "v3"]);

    // Partial refunds: v1 and v2 drop to 49.99, T is now 49.99 ... ties again.
    stream(
        &d,
        vec![vec![
            ev("r1", now - 50, refund("o1", 1, false)),
            ev("r2", now - 50, refund("o2", 1, false)),
        ]],
    )
    .await;
    assert_eq!(ids(&members(&d, "vip").await), vec!["v1", "v2", "v3"]);
    // ... and a third one leaves v3 alone on top with 50.00, v1/v2 at 49.99 = T (k = 2).
    stream(&d, vec![vec![ev("r3", now - 40, refund("o3", 2, false))]]).await;
    // v3 at 49.98 now; sorted: 49.99, 49.99, 49.98 … k = 2 -> T = 49.99.
    assert_eq!(ids(&members(&d, "vip").await), vec!["v1", "v2"]);
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cart_abandoners_at_59_and_60_minutes_and_checkout() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), MANUAL);
    let now = daemon_now(&d).await;
    stream(
        &d,
        vec![vec![
            ev(
                "u1",
                now - DAY,
                customer("c1", "a@example.com", "+12125550134", true),
            ),
            ev("k1", now - 59 * 60, cart("k1", "c1", 2)),
            ev(
                "u2",
                now - DAY,
                customer("c2", "b@example.com", "+12125550135", true),
            ),
            ev("k2", now - 3 * 3600, cart("k2", "c2", 1)),
        ]],
    )
    .await;
    assert_eq!(ids(&members(&d, "cart_abandoners").await), vec!["c2"]);
    advance(&d, 60).await;
    assert_eq!(ids(&members(&d, "cart_abandoners").await), vec!["c1", "c2"]);
    let now = daemon_now(&d).await;
    stream(&d, vec![vec![ev("co", now - 1, checkout("k1", "o1"))]]).await;
    assert_eq!(ids(&members(&d, "cart_abandoners").await), vec!["c2"]);
    // An order after the cart's last update also ends the abandonment.
    stream(&d, vec![vec![ev("o2", now, order("o2", "c2", 500, "USD"))]]).await;
    assert!(members(&d, "cart_abandoners").await.is_empty());
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_and_erasure() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), MANUAL);
    let now = daemon_now(&d).await;
    stream(
        &d,
        vec![vec![
            ev(
                "u1",
                now - 10 * DAY,
                customer("c1", "a@example.com", "+12125550134", false),
            ),
            ev("o1", now - 5 * DAY, order("o1", "c1", 500, "USD")),
        ]],
    )
    .await;
    let a = audiences_of(&d, "c1").await;
    assert_eq!(a.lifecycle_stage, "new");
    assert!(!a.eligible, "consent denied: a member, not pushable");
    let m = members(&d, "stage_new").await;
    assert_eq!((m.len(), m[0].eligible), (1, false));

    stream(&d, vec![vec![ev("g1", now - DAY, consent("c1", true))]]).await;
    assert!(audiences_of(&d, "c1").await.eligible);
    let aud = d
        .audience()
        .await
        .get_audience(v1::GetAudienceRequest {
            name: "stage_new".into(),
        })
        .await
        .expect("aud")
        .into_inner();
    assert_eq!((aud.size, aud.eligible_size), (1, 1));

    stream(&d, vec![vec![ev("x1", now - 60, erase("c1"))]]).await;
    let a = audiences_of(&d, "c1").await;
    assert!(
        a.audiences.is_empty() && !a.eligible && a.lifecycle_stage.is_empty(),
        "{a:?}"
    );
    // A fact from before the erasure that arrives late changes nothing.
    stream(
        &d,
        vec![vec![ev(
            "o0",
            now - 20 * DAY,
            order("o0", "c1", 900, "USD"),
        )]],
    )
    .await;
    assert!(audiences_of(&d, "c1").await.audiences.is_empty());
    d.stop();
}
