//! "Did the remarketing work?" end to end, over real gRPC against the real daemon: holdout
//! members never reach the (fake) ad networks, across restarts and a rebalance; lift and its
//! intervals match a hand computation; every retention metric matches a hand-computed
//! population delivered out of order, with duplicates, a refund and an erasure.

mod common;
mod fakes;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use audiencesync::hashing::hex_lower;
use audiencesync::ingest::identity::Normalizer;
use audiencesync::proto::v1;
use audiencesync::proto::v1::insight_service_client::InsightServiceClient;
use audiencesync::sync::dest::meta;
use audiencesync::sync::member::RemoteMember;
use common::population::{self, expect};
use common::*;
use fakes::{FakeGoogle, FakeMeta};

const MANUAL: &str = "[clock]\nmode = \"manual\"\n";
const META_TOKEN: &str = "meta-system-user-token";

async fn insight(d: &Daemon) -> InsightServiceClient<tonic::transport::Channel> {
    InsightServiceClient::new(d.channel().await)
}

/// Moves the manual clock (0 just applies what is due and publishes fresh counters).
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

async fn set_clock(d: &Daemon, secs: i64) {
    d.admin()
        .await
        .set_clock(v1::SetClockRequest {
            now: ts(secs),
            advance_seconds: 0,
        })
        .await
        .expect("set_clock");
}

async fn members(d: &Daemon, audience: &str) -> Vec<v1::Member> {
    d.members(audience, 1_000).await
}

/// (pushed, held out) customer ids among the audience's members.
async fn split(d: &Daemon, audience: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut pushed = BTreeSet::new();
    let mut held = BTreeSet::new();
    for m in members(d, audience).await {
        if m.holdout {
            held.insert(m.customer_id);
        } else {
            pushed.insert(m.customer_id);
        }
    }
    (pushed, held)
}

async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Holdout and the ad networks.

fn person(id: &str, granted: bool) -> v1::event::Kind {
    let (first, last, zip) = (format!("Given{id}"), format!("Family{id}"), postal(id));
    customer_named(id, &email(id), &phone(id), granted, (&first, &last, &zip))
}

fn email(id: &str) -> String {
    format!("{id}@example.com")
}

fn phone(id: &str) -> String {
    let n: u32 = id.trim_start_matches('h').parse().unwrap_or(0);
    format!("+1212555{:04}", 3000 + n)
}

fn postal(id: &str) -> String {
    let n: u32 = id.trim_start_matches('h').parse().unwrap_or(0);
    format!("9{:04}", n)
}

/// What the networks must hold for a customer made by `person`.
fn member(id: &str) -> RemoteMember {
    let n = Normalizer::new("US").expect("normalizer");
    RemoteMember {
        email: Some(n.email(&email(id)).expect("email")),
        phone: Some(n.phone(&phone(id), Some("US")).expect("phone")),
        first_name: Some(n.first_name(&format!("Given{id}")).expect("fn")),
        last_name: Some(n.last_name(&format!("Family{id}")).expect("ln")),
        country: Some("US".into()),
        postal_code: Some(postal(id).into()),
    }
}

fn google_form(m: &RemoteMember) -> String {
    let mut ids = [
        format!("email:{}", hex_lower(&m.email.expect("e").google)),
        format!("phone:{}", hex_lower(&m.phone.expect("p").google)),
        format!(
            "address:{},{},US,{}",
            hex_lower(&m.first_name.expect("f").google),
            hex_lower(&m.last_name.expect("l").google),
            m.postal_code.as_deref().unwrap_or_default()
        ),
    ];
    ids.sort();
    ids.join("|")
}

fn meta_form(m: &RemoteMember) -> String {
    meta::shape::row(m).join("|")
}

fn forms(ids: &BTreeSet<String>, form: fn(&RemoteMember) -> String) -> BTreeSet<String> {
    ids.iter().map(|id| form(&member(id))).collect()
}

/// Config pushing `lapsed_90` to both fakes, with a holdout share.
fn sync_config(dir: &Path, g: &FakeGoogle, m: &FakeMeta, share: &str) -> String {
    let destinations = fakes::destinations_toml(
        dir,
        g,
        m,
        r#"linger = "100ms"
status_poll_interval = "200ms"
status_first_poll = "200ms"
lists = [{ audience = "lapsed_90", list_id = "111" }]"#,
        r#"linger = "100ms"
lists = [{ audience = "lapsed_90", list_id = "222" }]"#,
    );
    format!(
        r#"
[audiences]
holdout = {{ lapsed_90 = "{share}" }}
{destinations}"#
    )
}

/// Members (Google) or rows (Meta) sent in requests whose path ends with `suffix` and whose
/// method is `method`.
fn sent(reqs: &[fakes::RecordedRequest], method: &str, suffix: &str) -> usize {
    reqs.iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix) && r.status == 200)
        .map(|r| r.members)
        .sum()
}

/// Members the daemon had accepted by a destination since it started, from its metrics.
fn members_sent(text: &str, destination: &str, op: &str) -> usize {
    let key = format!(
        r#"audiencesync_sync_members_sent_total{{destination="{destination}",audience="lapsed_90",op="{op}"}}"#
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&key)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as usize)
}

fn hup(d: &Daemon) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "SIGHUP sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holdout_members_never_reach_the_networks_across_restarts_and_a_rebalance() {
    let tmp = tempfile::tempdir().expect("tmp");
    let g = FakeGoogle::start().await;
    let m = FakeMeta::start(META_TOKEN, None).await;
    m.create_audience("222");
    let d = Daemon::start(tmp.path(), &sync_config(tmp.path(), &g, &m, "0.3"));
    let now = now_secs();
    let ids: Vec<String> = (0..40).map(|i| format!("h{i}")).collect();
    let mut events = Vec::new();
    for id in &ids {
        events.push(ev(&format!("u-{id}"), now - 200 * DAY, person(id, true)));
        events.push(ev(
            &format!("o-{id}"),
            now - 100 * DAY,
            order(&format!("o-{id}"), id, 1_000, "USD"),
        ));
    }
    stream(&d, vec![events]).await;

    let (pushed, held) = split(&d, "lapsed_90").await;
    assert_eq!(pushed.len() + held.len(), ids.len());
    assert!(!held.is_empty() && !pushed.is_empty(), "{held:?}");
    let want_g = forms(&pushed, google_form);
    let want_m = forms(&pushed, meta_form);
    wait_until("google list = pushed members", 30, || {
        g.list("111") == want_g
    })
    .await;
    wait_until("meta audience = pushed members", 30, || {
        m.audience("222") == want_m
    })
    .await;
    // Exactly the pushed members were ever sent, each once; nothing was removed. (Meta
    // removals are POSTs too, told apart by the daemon's own counters.)
    assert_eq!(
        sent(&g.requests(), "POST", "audienceMembers:ingest"),
        pushed.len()
    );
    assert_eq!(sent(&g.requests(), "POST", "audienceMembers:remove"), 0);
    assert_eq!(sent(&m.requests(), "POST", "/users"), pushed.len());
    let text = d.scrape();
    assert_eq!(members_sent(&text, "meta", "add"), pushed.len());
    assert_eq!(members_sent(&text, "meta", "remove"), 0);

    // Queries show the holdout: flagged members, sizes, the customer's own view, sync status.
    let aud = d
        .audience()
        .await
        .get_audience(v1::GetAudienceRequest {
            name: "lapsed_90".into(),
        })
        .await
        .expect("audience")
        .into_inner();
    assert_eq!(
        (aud.size, aud.holdout_size, aud.holdout_fraction.as_str()),
        (ids.len() as u64, held.len() as u64, "0.3")
    );
    let one = held.iter().next().expect("a held-out member");
    let ca = d
        .audience()
        .await
        .get_customer_audiences(v1::GetCustomerAudiencesRequest {
            customer_id: one.clone(),
        })
        .await
        .expect("customer audiences")
        .into_inner();
    assert!(ca.audiences.contains(&"lapsed_90".to_string()) && ca.eligible);
    assert_eq!(ca.holdout, vec!["lapsed_90".to_string()]);
    let states = d.sync_states().await;
    assert_eq!(states.len(), 2);
    for s in &states {
        assert_eq!(s.desired_size, pushed.len() as u64, "{s:?}");
    }

    // A restart holds out exactly the same members and sends nothing.
    assert!(d.stop().success());
    let (g_before, m_before) = (g.requests().len(), m.requests().len());
    let d = Daemon::start(tmp.path(), &sync_config(tmp.path(), &g, &m, "0.3"));
    assert_eq!(split(&d, "lapsed_90").await, (pushed.clone(), held.clone()));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mutations = |reqs: Vec<fakes::RecordedRequest>, from: usize| {
        reqs[from..]
            .iter()
            .filter(|r| r.path.contains("audienceMembers") || r.path.ends_with("/users"))
            .count()
    };
    assert_eq!(mutations(g.requests(), g_before), 0);
    assert_eq!(mutations(m.requests(), m_before), 0);
    assert_eq!(g.list("111"), want_g);

    // Raising the share to 0.6 keeps everyone held out before and adds more, who are removed
    // from the networks (and only they).
    std::fs::write(
        tmp.path().join("audiencesync.toml"),
        std::fs::read_to_string(tmp.path().join("audiencesync.toml"))
            .expect("config")
            .replace("lapsed_90 = \"0.3\"", "lapsed_90 = \"0.6\""),
    )
    .expect("rewrite config");
    hup(&d);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (pushed2, held2) = loop {
        let (p, h) = split(&d, "lapsed_90").await;
        if h.len() > held.len() {
            break (p, h);
        }
        assert!(
            Instant::now() < deadline,
            "the holdout never grew:\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(held.is_subset(&held2), "the old holdout is kept");
    assert!(pushed2.is_subset(&pushed));
    let newly: usize = held2.len() - held.len();
    let want_g = forms(&pushed2, google_form);
    let want_m = forms(&pushed2, meta_form);
    wait_until("google list after rebalance", 30, || {
        g.list("111") == want_g
    })
    .await;
    wait_until("meta audience after rebalance", 30, || {
        m.audience("222") == want_m
    })
    .await;
    assert_eq!(sent(&g.requests(), "POST", "audienceMembers:remove"), newly);
    assert_eq!(
        sent(&g.requests(), "POST", "audienceMembers:ingest"),
        pushed.len()
    );
    assert_eq!(sent(&m.requests(), "POST", "/users"), pushed.len() + newly);
    let text = d.scrape();
    assert_eq!(members_sent(&text, "meta", "remove"), newly);
    assert_eq!(members_sent(&text, "meta", "add"), 0);
    d.stop();
}

// ---------------------------------------------------------------------------------------------
// Lift: a hand-computed example.

/// 2030-03-04 12:00 UTC, a Monday (ISO week 2030-W10), shifted like the population.
fn t0() -> i64 {
    population::at(2030, 3, 4)
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name_and_labels} in:\n{text}"))
}

fn close(got: Option<f64>, want: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what} is undefined"));
    assert!((got - want).abs() < 5e-6, "{what}: {got} vs {want}");
}

async fn lapsed_lift(d: &Daemon) -> v1::AudienceLift {
    advance(d, 0).await;
    let r = insight(d)
        .await
        .get_lift(v1::GetLiftRequest {
            audience: "lapsed_90".into(),
        })
        .await
        .expect("get_lift")
        .into_inner();
    assert_eq!(r.revenue_currency, "USD");
    assert!(r.method.contains("Newcombe"), "{}", r.method);
    assert_eq!(r.audiences.len(), 1);
    r.audiences[0].clone()
}

fn groups(a: &v1::AudienceLift) -> (v1::GroupOutcome, v1::GroupOutcome) {
    let t = a.total.clone().expect("total");
    (t.pushed.expect("pushed"), t.holdout.expect("holdout"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lift_and_intervals_match_a_hand_computed_example() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = format!("{MANUAL}[audiences]\nholdout = {{ lapsed_90 = \"0.5\" }}\n");
    let d = Daemon::start(tmp.path(), &cfg);
    set_clock(&d, t0()).await;
    // 150 eligible and 5 ineligible customers whose last order was 100 days ago: all enter
    // lapsed_90 now, half of them held out.
    let mut events = Vec::new();
    for i in 0..155 {
        let id = format!("l{i}");
        let granted = i < 150;
        events.push(ev(
            &format!("u-{id}"),
            t0() - 200 * DAY,
            customer(
                &id,
                &format!("{id}@example.com"),
                &format!("+1212555{:04}", 1000 + i),
                granted,
            ),
        ));
        events.push(ev(
            &format!("o-{id}"),
            t0() - 100 * DAY,
            order(&format!("o-{id}"), &id, 1_000, "USD"),
        ));
    }
    stream(&d, vec![events]).await;
    let mut pushed = Vec::new();
    let mut held = Vec::new();
    for m in members(&d, "lapsed_90").await {
        match (m.eligible, m.holdout) {
            (false, _) => {}
            (true, false) => pushed.push(m.customer_id),
            (true, true) => held.push(m.customer_id),
        }
    }
    assert!(
        pushed.len() >= 40 && held.len() >= 40,
        "{} {}",
        pushed.len(),
        held.len()
    );
    // Keep 40 + 40: erasing the others drops their entries.
    let erase_ids: Vec<String> = pushed
        .split_off(40)
        .into_iter()
        .chain(held.split_off(40))
        .collect();
    let erasures = erase_ids
        .iter()
        .map(|id| ev(&format!("x-{id}"), t0() - 60, erase(id)))
        .collect();
    stream(&d, vec![erasures]).await;

    // Every window is open: nothing counts yet, and the verdict says so.
    let a = lapsed_lift(&d).await;
    let (p, h) = groups(&a);
    assert_eq!(
        (p.members, p.open_members, h.members, h.open_members),
        (0, 40, 0, 40)
    );
    let ineligible = a.ineligible.expect("ineligible");
    assert_eq!(ineligible.open_members, 5);
    let total = a.total.clone().expect("total");
    assert_eq!(total.verdict, v1::LiftVerdict::TooSmall as i32, "{total:?}");
    assert!(
        total.conclusion.contains("too small"),
        "{}",
        total.conclusion
    );
    assert_eq!(a.holdout_fraction, "0.5");
    assert_eq!(a.outcome_window_seconds, 30 * DAY);

    // Day 10: 12 pushed and 4 held-out members buy (50.00 each); one refunds 20.00.
    let t10 = advance(&d, 10 * DAY).await;
    let mut buys = Vec::new();
    for id in pushed.iter().take(12).chain(held.iter().take(4)) {
        buys.push(ev(
            &format!("b-{id}"),
            t10,
            order(&format!("b-{id}"), id, 5_000, "USD"),
        ));
    }
    buys.push(ev(
        "r-refund",
        t10,
        refund(&format!("b-{}", pushed[0]), 2_000, false),
    ));
    stream(&d, vec![buys]).await;
    let (p, h) = groups(&lapsed_lift(&d).await);
    assert_eq!((p.open_converted, h.open_converted), (12, 4));
    assert_eq!(
        (p.open_revenue_minor, h.open_revenue_minor),
        (58_000, 20_000)
    );
    assert_eq!(
        (p.members, h.members),
        (0, 0),
        "open windows are not counted"
    );

    // Day 30: every window (entry, entry + 30 d] has closed.
    advance(&d, 20 * DAY).await;
    // Day 31: a purchase after the window changes nothing.
    let t31 = advance(&d, DAY).await;
    let late = &pushed[20];
    stream(
        &d,
        vec![vec![ev("late", t31, order("late", late, 9_900, "USD"))]],
    )
    .await;
    let a = lapsed_lift(&d).await;
    let (p, h) = groups(&a);
    assert_eq!(
        (p.members, p.converted, p.revenue_minor, p.open_members),
        (40, 12, 58_000, 0)
    );
    assert_eq!(
        (h.members, h.converted, h.revenue_minor, h.open_members),
        (40, 4, 20_000, 0)
    );
    close(p.conversion_rate, 0.3, "pushed rate");
    close(h.conversion_rate, 0.1, "holdout rate");
    // Wilson intervals of the hand example (insight::lift tests).
    close(p.conversion_rate_low, 0.180748, "pushed rate low");
    close(p.conversion_rate_high, 0.454300, "pushed rate high");
    close(h.conversion_rate_low, 0.039580, "holdout rate low");
    close(h.conversion_rate_high, 0.230518, "holdout rate high");
    close(
        p.revenue_per_member_minor,
        1_450.0,
        "pushed revenue per member",
    );
    close(
        h.revenue_per_member_minor,
        500.0,
        "holdout revenue per member",
    );
    let l = a.total.clone().expect("total");
    // Hand computation (see insight::lift tests): Newcombe [0.023207, 0.365708], Katz on
    // RR = 3 → [0.056902, 7.515455]; revenue per member 950 ± 1.959964 · 431.083905.
    close(l.absolute_lift, 0.2, "absolute lift");
    close(l.absolute_lift_low, 0.023207, "absolute low");
    close(l.absolute_lift_high, 0.365708, "absolute high");
    close(l.relative_lift, 2.0, "relative lift");
    close(l.relative_lift_low, 0.056902, "relative low");
    close(l.relative_lift_high, 7.515455, "relative high");
    close(l.revenue_per_member_lift_minor, 950.0, "revenue lift");
    close(
        l.revenue_per_member_lift_low_minor,
        105.091071,
        "revenue low",
    );
    close(
        l.revenue_per_member_lift_high_minor,
        1_794.908929,
        "revenue high",
    );
    assert_eq!(l.verdict, v1::LiftVerdict::Positive as i32);
    assert!(
        l.conclusion.contains("+20.0 points (95% CI 2.3 to 36.6)"),
        "{}",
        l.conclusion
    );
    // One entry cohort, the ISO week of T0.
    assert_eq!(a.cohorts.len(), 1);
    assert_eq!(a.cohorts[0].week, population::relabel("2030-W10"));
    assert_eq!(a.cohorts[0].week_start, ts(t0() - 12 * 3600));
    assert_eq!(
        a.cohorts[0].lift.as_ref().map(|x| x.verdict),
        Some(l.verdict)
    );

    // The headline gauges.
    let text = d.scrape();
    let lift = metric(
        &text,
        r#"audiencesync_insight_absolute_lift{audience="lapsed_90"}"#,
    );
    assert!((lift - 0.2).abs() < 1e-9, "{lift}");
    let low = metric(
        &text,
        r#"audiencesync_insight_absolute_lift_low{audience="lapsed_90"}"#,
    );
    assert!((low - 0.023207).abs() < 5e-6, "{low}");
    let rate = metric(
        &text,
        r#"audiencesync_insight_conversion_rate{audience="lapsed_90",group="holdout"}"#,
    );
    assert!((rate - 0.1).abs() < 1e-9, "{rate}");
    let n = metric(
        &text,
        r#"audiencesync_insight_outcome_members{audience="lapsed_90",group="pushed",window="closed"}"#,
    );
    assert_eq!(n, 40.0);
    assert!(
        text.contains("audiencesync_insight_active_customers"),
        "{text}"
    );
    assert!(
        !text.contains("example.com") && !text.contains("l1\""),
        "no PII"
    );

    // `audiencesync report`: JSON and tables.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_audiencesync"))
        .args([
            "report",
            "--addr",
            &d.addr.to_string(),
            "--audience",
            "lapsed_90",
            "--json",
        ])
        .output()
        .expect("run report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let total = &json["lift"]["audiences"][0]["total"];
    assert_eq!(total["pushed"]["converted"], "12", "{json}");
    assert_eq!(total["verdict"], "LIFT_VERDICT_POSITIVE", "{json}");
    assert!(json.get("retention").is_none());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_audiencesync"))
        .args(["report", "--addr", &d.addr.to_string()])
        .output()
        .expect("run report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let week = population::relabel("2030-W10");
    for needle in [
        "lapsed_90  (holdout 0.5, window 30d)",
        "pushed members converted more than held-out ones: +20.0 points (95% CI 2.3 to 36.6)",
        week.as_str(),
        "RETENTION",
        "repeat-purchase rate",
    ] {
        assert!(text.contains(needle), "report lacks {needle:?}:\n{text}");
    }

    // An unknown audience is named.
    let err = insight(&d)
        .await
        .get_lift(v1::GetLiftRequest {
            audience: "nope".into(),
        })
        .await
        .expect_err("unknown audience");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("nope"));
    d.stop();
}

// ---------------------------------------------------------------------------------------------
// Retention: the hand-computed population of tests/common/population.rs.

async fn retention(d: &Daemon, period: v1::PeriodUnit, periods: u32) -> v1::RetentionReport {
    insight(d)
        .await
        .get_retention(v1::GetRetentionRequest {
            period: period as i32,
            periods,
            cohort_months: 13,
        })
        .await
        .expect("get_retention")
        .into_inner()
}

fn check_row(r: &v1::RetentionReport, e: &expect::Row) {
    let p = r
        .periods
        .iter()
        .find(|p| p.label == population::relabel(e.0))
        .unwrap_or_else(|| panic!("no period {}", e.0));
    assert_eq!(
        (
            p.customers_at_start,
            p.customers_at_end,
            p.new_customers,
            p.retained_customers,
            p.returning_customers,
            p.buyers,
            p.revenue_minor
        ),
        (e.1, e.2, e.3, e.4, e.5, e.6, e.7),
        "period {}",
        e.0
    );
    assert_eq!(
        p.retention_rate,
        Some((e.2 - e.3) as f64 / e.1 as f64),
        "period {}",
        e.0
    );
}

async fn check_population(d: &Daemon) {
    advance(d, 0).await;
    let m = retention(d, v1::PeriodUnit::Unspecified, 0).await;
    assert_eq!(m.as_of, ts(population::now_secs()));
    assert_eq!(m.revenue_currency, "USD");
    assert_eq!(
        (
            m.active_customers,
            m.revenue_365d_minor,
            m.buyers,
            m.repeat_buyers
        ),
        (
            expect::ACTIVE,
            expect::REVENUE_365,
            expect::BUYERS,
            expect::REPEAT
        )
    );
    assert_eq!(m.repeat_purchase_rate, Some(0.5));
    assert_eq!(
        m.average_revenue_per_customer_minor,
        Some(expect::REVENUE_365 as f64 / expect::ACTIVE as f64)
    );
    assert_eq!(
        (m.vip_active_customers, m.vip_revenue_365d_minor),
        (expect::VIP_ACTIVE, expect::VIP_REVENUE)
    );
    assert_eq!(m.vip_revenue_share, Some(33_000.0 / 65_000.0));
    assert_eq!(m.periods.len(), 12);
    for e in &expect::MONTHS {
        check_row(&m, e);
    }
    let got: Vec<(String, u64, u64, u64, u64)> = m
        .reactivation
        .iter()
        .map(|r| {
            (
                r.audience.clone(),
                r.entered,
                r.reactivated,
                r.open,
                r.open_reactivated,
            )
        })
        .collect();
    let want: Vec<(String, u64, u64, u64, u64)> = expect::REACTIVATION
        .iter()
        .map(|e| (e.0.to_string(), e.1, e.2, e.3, e.4))
        .collect();
    assert_eq!(got, want);
    assert_eq!(m.cohorts.len(), 13);
    for c in &m.cohorts {
        let want = expect::COHORTS
            .iter()
            .find(|e| population::relabel(e.0) == c.first_purchase_month);
        assert_eq!(
            c.customers,
            want.map_or(0, |e| e.1),
            "{}",
            c.first_purchase_month
        );
        if let Some(e) = want {
            assert_eq!(c.months.len(), e.3, "{}", e.0);
            for x in &c.months {
                let n =
                    e.2.iter()
                        .find(|y| y.0 == x.months_after)
                        .map_or(0, |y| y.1);
                assert_eq!(x.customers, n, "{} +{}", e.0, x.months_after);
            }
        }
    }
    let q = retention(d, v1::PeriodUnit::Quarter, 0).await;
    assert_eq!(q.periods.len(), 4);
    for e in &expect::QUARTERS {
        check_row(&q, e);
    }
    let y = retention(d, v1::PeriodUnit::Year, 1).await;
    assert_eq!(y.periods.len(), 1);
    check_row(&y, &expect::YEAR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_metrics_match_the_hand_computed_population() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), MANUAL);
    set_clock(&d, population::now_secs()).await;
    // Out of order, in small batches, every event twice.
    let batches: Vec<Vec<v1::Event>> = population::events().chunks(5).map(|c| c.to_vec()).collect();
    let acks = stream(&d, batches).await;
    assert!(acks.iter().all(|a| a.rejected.is_empty()), "{acks:?}");
    check_population(&d).await;

    // Bad arguments are named.
    let err = insight(&d)
        .await
        .get_retention(v1::GetRetentionRequest {
            period: 9,
            periods: 0,
            cohort_months: 0,
        })
        .await
        .expect_err("bad period");
    assert!(err.message().starts_with("period"), "{}", err.message());
    let err = insight(&d)
        .await
        .get_retention(v1::GetRetentionRequest {
            period: 0,
            periods: 500,
            cohort_months: 0,
        })
        .await
        .expect_err("too many periods");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().starts_with("periods"), "{}", err.message());

    // After a restart (checkpoint + log replay, counters rebuilt), the same figures; the
    // manual clock starts at the system time again and is moved back to NOW.
    assert!(d.stop().success());
    let d = Daemon::start(tmp.path(), MANUAL);
    set_clock(&d, population::now_secs()).await;
    check_population(&d).await;
    // And after a kill -9 (no final checkpoint), too.
    d.kill9();
    let d = Daemon::start(tmp.path(), MANUAL);
    set_clock(&d, population::now_secs()).await;
    check_population(&d).await;
    d.stop();
}
