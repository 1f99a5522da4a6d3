//! End-to-end: the real daemon over real gRPC sockets, restarted on the same sled directory.

mod common;

use common::*;

use std::time::{Duration, Instant};

use audiencesync::proto::v1;

fn scenario(now: i64) -> Vec<v1::Event> {
    vec![
        ev(
            "e1",
            now - 400 * DAY,
            customer("c1", "Mary@Example.com", "+1 (212) 555-0134", true),
        ),
        ev("e2", now - 300 * DAY, order("o1", "c1", 10_000, "USD")),
        ev("e3", now - 20 * DAY, order("o2", "c1", 5_000, "USD")),
        ev("e4", now - 19 * DAY, refund("o2", 1_500, false)),
        ev("e5", now - 2 * DAY, cart("k1", "c1", 3)),
        ev(
            "e6",
            now - 50 * DAY,
            customer("c2", "dana@example.com", "+14155550123", false),
        ),
        ev("e7", now - 40 * DAY, order("o3", "c2", 2_500, "USD")),
        ev("e8", now - 39 * DAY, refund("o3", 0, true)),
        ev("e9", now - 3 * DAY, cart("k2", "c2", 1)),
        ev("e10", now - 2 * DAY, checkout("k2", "o4")),
    ]
}

fn ids() -> Vec<String> {
    vec!["c1".into(), "c2".into(), "c3".into()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_restart_and_kill9() {
    let tmp = tempfile::tempdir().expect("tmp");
    let now = now_secs();
    // A long checkpoint interval: after kill -9 everything must come back from the WAL.
    let cfg = "checkpoint_interval = \"1h\"\n";
    let d = Daemon::start(tmp.path(), cfg);
    let acks = stream(
        &d,
        vec![scenario(now)[..5].to_vec(), scenario(now)[5..].to_vec()],
    )
    .await;
    assert_eq!(acks[0].batch_id, 1);
    assert_eq!(acks[0].applied + acks[1].applied, 10);
    assert!(acks
        .iter()
        .all(|a| a.rejected.is_empty() && a.duplicates == 0));

    let before = facts_of(&d, &ids()).await;
    assert_eq!(before.len(), 2);
    let c1 = &before[0];
    assert!(c1.has_email && c1.has_phone && c1.has_first_name && c1.has_last_name);
    assert_eq!(c1.country, "US");
    assert_eq!(c1.order_count, 2);
    assert_eq!(c1.revenue_minor, 10_000 + 3_500);
    assert_eq!(c1.revenue_in_window_minor, 10_000 + 3_500);
    assert_eq!(c1.open_carts, 1);
    assert_eq!(c1.ad_user_data, v1::ConsentStatusView::Granted as i32);
    let c2 = &before[1];
    assert_eq!(c2.revenue_minor, 0, "full refund");
    assert_eq!(c2.open_carts, 0, "checked out");
    assert_eq!(c2.ad_personalization, v1::ConsentStatusView::Denied as i32);

    // kill -9: no final checkpoint; the acked batches must come back from the log.
    d.kill9();
    let d = Daemon::start(tmp.path(), cfg);
    assert_eq!(facts_of(&d, &ids()).await, before);
    assert!(d.log_text().contains("replayed_wal_records"));

    // A clean stop writes a checkpoint; the restart reads it back.
    let status = d.stop();
    assert!(status.success(), "clean exit: {status:?}");
    let d = Daemon::start(tmp.path(), cfg);
    assert_eq!(facts_of(&d, &ids()).await, before);
    let s = stats(&d).await;
    assert_eq!((s.customers, s.orders, s.carts), (2, 3, 2));
    assert!(s.checkpoint_seq >= s.wal_seq);

    // Replaying everything after the restart changes nothing and is reported as duplicates.
    let acks = stream(&d, vec![scenario(now)]).await;
    assert_eq!((acks[0].applied, acks[0].duplicates), (0, 10));
    assert_eq!(facts_of(&d, &ids()).await, before);
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_out_of_order_events_give_the_same_state() {
    let now = now_secs();
    let mut events = scenario(now);
    // Later facts of the same fields, and an erasure, to make order matter if it could.
    events.push(ev(
        "e11",
        now - 6 * DAY,
        customer("c3", "x@example.org", "+16175550111", true),
    ));
    events.push(ev(
        "e11b",
        now - 8 * DAY,
        customer("c3", "y@example.org", "+16175550112", false),
    ));
    events.push(ev("e12", now - 2 * DAY, consent("c3", false)));
    events.push(ev("e13", now - 5 * DAY, order("o5", "c3", 700, "USD")));
    events.push(ev("e14", now - 4 * DAY, erase("c3")));
    events.push(ev("e15", now - 3 * DAY, order("o6", "c3", 900, "USD")));
    events.push(ev("e16", now - 30 * DAY, order("o2", "c1", 99_999, "USD"))); // earlier duplicate order id
    events.push(ev("e17", now - DAY, cart("k2", "c2", 9))); // after checkout: ignored

    let tmp_a = tempfile::tempdir().expect("tmp");
    let a = Daemon::start(tmp_a.path(), "");
    let acks = stream(&a, vec![events.clone()]).await;
    assert_eq!(acks[0].applied as usize, events.len());
    let in_order = facts_of(&a, &ids()).await;
    a.stop();

    // Reversed, in small batches over two RPC kinds, with every event sent twice.
    let tmp_b = tempfile::tempdir().expect("tmp");
    let b = Daemon::start(tmp_b.path(), "");
    let mut reversed = events.clone();
    reversed.reverse();
    let mut client = b.ingest().await;
    let mut dup_total = 0;
    for (i, chunk) in reversed.chunks(3).enumerate() {
        let ack = client
            .ingest_batch(v1::EventBatch {
                batch_id: i as u64,
                events: chunk.to_vec(),
            })
            .await
            .expect("ingest_batch")
            .into_inner();
        assert_eq!(ack.applied as usize, chunk.len());
        dup_total += ack.duplicates;
    }
    assert_eq!(dup_total, 0);
    let acks = stream(&b, vec![events.clone(), events.clone()]).await;
    assert_eq!(acks[0].duplicates as usize, events.len());
    assert_eq!(acks[1].duplicates as usize, events.len());
    let shuffled = facts_of(&b, &ids()).await;
    assert_eq!(in_order, shuffled);

    // The facts themselves: c1's order o2 counts at its earliest placement (99,999 cents,
    // refunded 1,500), c3 was erased after o5 and came back with o6 only.
    let c1 = &in_order[0];
    assert_eq!(c1.revenue_minor, 10_000 + 99_999 - 1_500);
    let c3 = &in_order[2];
    assert_eq!(c3.order_count, 1);
    assert_eq!(c3.revenue_minor, 900);
    assert!(!c3.has_email, "profile before the erasure is gone");
    assert_eq!(
        c3.ad_user_data,
        v1::ConsentStatusView::Denied as i32,
        "consent after it stays"
    );
    assert!(c3.erased_at.is_some());
    let c2 = &in_order[1];
    assert_eq!(c2.open_carts, 0, "a checked-out cart stays gone");
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_rejected_by_field_and_nothing_else_is_lost() {
    let tmp = tempfile::tempdir().expect("tmp");
    let now = now_secs();
    let d = Daemon::start(tmp.path(), "");
    stream(&d, vec![scenario(now)]).await;
    let before = facts_of(&d, &ids()).await;

    let mut no_kind = ev("bad3", now, order("x", "c1", 1, "USD"));
    no_kind.kind = None;
    let mut bad_consent = ev("bad6", now, consent("c1", true));
    if let Some(v1::event::Kind::ConsentChanged(c)) = &mut bad_consent.kind {
        c.ad_user_data = Some(42);
    }
    let batch = vec![
        ev("ok1", now - DAY, order("o9", "c1", 1_000, "USD")),
        ev(
            "bad1",
            now - DAY,
            customer("c1", "not-an-email", "+12125550134", true),
        ),
        ev("bad2", now - DAY, order("o10", "c1", 1_000, "EUR")),
        no_kind,
        ev("", now, order("o11", "c1", 1, "USD")),
        ev("bad5", now + 3_600, order("o12", "c1", 1, "USD")),
        bad_consent,
        ev("bad7", now, order("o13", "c1", -5, "USD")),
        ev("ok2", now - DAY, cart("k9", "c1", 2)),
    ];
    let acks = stream(&d, vec![batch]).await;
    let ack = &acks[0];
    // The upsert with an email that cannot be read is applied without it (a warning).
    assert_eq!(ack.applied, 3);
    let warned: Vec<(u32, &str, &str)> = ack
        .warnings
        .iter()
        .map(|w| (w.index, w.field.as_str(), w.code.as_str()))
        .collect();
    assert_eq!(
        warned,
        vec![(1, "customer_upserted.email", "invalid_email")]
    );
    assert!(!ack.warnings[0].reason.contains("not-an-email"));
    let fields: Vec<(u32, &str)> = ack
        .rejected
        .iter()
        .map(|r| (r.index, r.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            (2, "order_placed.total.currency"),
            (3, "kind"),
            (4, "event_id"),
            (5, "occurred_at"),
            (6, "consent_changed.ad_user_data"),
            (7, "order_placed.total.amount_minor"),
        ]
    );
    assert!(ack
        .rejected
        .iter()
        .all(|r| r.code == tonic::Code::InvalidArgument as i32 && !r.reason.is_empty()));
    assert!(!ack
        .rejected
        .iter()
        .any(|r| r.reason.contains("not-an-email")));

    let after = facts_of(&d, &ids()).await;
    assert_eq!(after[0].order_count, before[0].order_count + 1);
    assert_eq!(after[0].open_carts, before[0].open_carts + 1);
    assert!(
        after[0].has_email,
        "the dropped email leaves the stored one"
    );
    assert_eq!(after[1], before[1]);

    // A batch over the limit is refused whole, with INVALID_ARGUMENT naming the field.
    let big: Vec<v1::Event> = (0..10_001)
        .map(|i| ev(&format!("big{i}"), now, order("ob", "c1", 1, "USD")))
        .collect();
    let err = d
        .ingest()
        .await
        .ingest_batch(v1::EventBatch {
            batch_id: 9,
            events: big,
        })
        .await
        .expect_err("too big");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().starts_with("events:"), "{}", err.message());
    assert_eq!(stats(&d).await.events_rejected, 6);
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_are_not_found_and_the_system_clock_cannot_be_set() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), "");
    let mut aud = d.audience().await;
    let err = aud
        .get_audience(v1::GetAudienceRequest {
            name: "lapsed_91".into(),
        })
        .await
        .expect_err("not found");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("lapsed_91"));
    let err = aud
        .get_customer(v1::GetCustomerRequest {
            customer_id: "nobody".into(),
        })
        .await
        .expect_err("not found");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("nobody"));
    let mut admin = d.admin().await;
    let err = admin
        .trigger_resync(v1::TriggerResyncRequest {
            destination: "nowhere".into(),
            ..Default::default()
        })
        .await
        .expect_err("no such destination");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("nowhere"));
    let err = admin
        .set_clock(v1::SetClockRequest {
            now: None,
            advance_seconds: 5,
        })
        .await
        .expect_err("system clock");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    d.stop();
}

#[test]
fn bad_config_is_a_startup_error_naming_the_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("bad.toml");
    std::fs::write(&path, "[storage]\ndata_dri = \"x\"\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_audiencesync"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("data_dri"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_command_streams_a_valid_shop_that_fills_the_audiences() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), "");
    let report = feed_report(&d, &["--seed", "3"]);
    assert_eq!(report["rejected"], 0, "{report}");
    assert!(report["applied"].as_u64().unwrap_or(0) > 5_000, "{report}");
    assert!(
        report["duplicates"].as_u64().unwrap_or(0) > 0,
        "the feed replays some events"
    );

    // The same seed again: every event is a duplicate, nothing changes.
    let before = stats(&d).await;
    let again = feed_report(&d, &["--seed", "3"]);
    assert_eq!(again["applied"], 0, "{again}");
    let after = stats(&d).await;
    assert_eq!(
        (before.customers, before.orders),
        (after.customers, after.orders)
    );

    let list = d
        .audience()
        .await
        .list_audiences(v1::ListAudiencesRequest {})
        .await
        .expect("list")
        .into_inner();
    let nonempty = list.audiences.iter().filter(|a| a.size > 0).count();
    assert!(nonempty >= 8, "{:?}", list.audiences);
    d.stop();
}

/// Runs `audiencesync feed` over 400 customers against `d` with `args`, and returns its JSON
/// report (the run must succeed).
fn feed_report(d: &Daemon, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_audiencesync"))
        .args(["feed", "--addr", &d.url(), "--customers", "400", "--json"])
        .args(args)
        .output()
        .expect("run feed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(out.stdout.trim_ascii()).expect("json report")
}

/// `feed --order time` sends the same shop in time order, every customer interleaved: the
/// daemon accepts it all, the read load is answered while it runs, and the grouped order of
/// the same seed afterwards brings nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_in_time_order_sends_the_same_shop_and_the_reads_are_answered() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), "");
    let run = |extra: &[&str]| {
        let args = [&["--seed", "5", "--batch-size", "100"], extra].concat();
        feed_report(&d, &args)
    };
    let timed = run(&[
        "--order",
        "time",
        "--rate",
        "4000",
        "--query-rate",
        "200",
        "--visibility-probes",
        "10",
    ]);
    assert_eq!(timed["order"], "time", "{timed}");
    assert_eq!(timed["rejected"], 0, "{timed}");
    assert!(timed["applied"].as_u64().unwrap_or(0) > 5_000, "{timed}");
    assert!(timed["duplicates"].as_u64().unwrap_or(0) > 0, "replays");
    let reads = &timed["reads"];
    assert!(reads["queries"].as_u64().unwrap_or(0) > 100, "{reads}");
    assert!(reads["probes"].as_u64().unwrap_or(0) > 5, "{reads}");
    assert_eq!(
        (&reads["query_errors"], &reads["probe_errors"]),
        (&0.into(), &0.into()),
        "{reads}"
    );

    let before = stats(&d).await;
    let grouped = run(&[]);
    assert_eq!(grouped["order"], "grouped", "{grouped}");
    assert_eq!(grouped["applied"], 0, "the same events: {grouped}");
    assert_eq!(
        grouped["events_sent"], timed["events_sent"],
        "the same replays"
    );
    let after = stats(&d).await;
    assert_eq!(
        (before.customers, before.orders),
        (after.customers, after.orders)
    );
    d.stop();
}

/// A customer whose phone cannot be read is applied without it: the ack says which field and
/// why (never the value), a metric counts it, the log does not hold it, and the customer is
/// matched by its email (in the pushed list, with the email's hash and no phone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_phone_is_dropped_and_the_customer_kept() {
    const BAD_PHONE: &str = "+1 212 555 01";
    let tmp = tempfile::tempdir().expect("tmp");
    let exports = tmp.path().join("exports");
    let d = Daemon::start(
        tmp.path(),
        &format!(
            "[[destinations]]\nname = \"csv\"\nkind = \"csv\"\ndir = \"{}\"\nlinger = \"100ms\"\nlists = [{{ audience = \"vip\" }}]\n",
            exports.display()
        ),
    );
    let now = now_secs();
    let ack = d
        .ingest()
        .await
        .ingest_batch(v1::EventBatch {
            batch_id: 1,
            events: vec![
                ev(
                    "w-e1",
                    now - 3 * DAY,
                    customer("w1", "Wendy@Example.com", BAD_PHONE, true),
                ),
                ev("w-e2", now - 2 * DAY, order("w-o1", "w1", 50_000, "USD")),
            ],
        })
        .await
        .expect("ingest")
        .into_inner();
    assert_eq!((ack.applied, ack.rejected.len()), (2, 0), "{ack:?}");
    assert_eq!(
        ack.warnings,
        vec![v1::FieldWarning {
            index: 0,
            event_id: "w-e1".into(),
            field: "customer_upserted.phone".into(),
            reason: "not a valid phone number: not a valid number for its region".into(),
            code: "phone_not_valid".into(),
        }]
    );

    // Stored with everything but the phone, and eligible for push through its email.
    let f = &facts_of(&d, &["w1".to_string()]).await[0];
    assert_eq!(
        (f.has_email, f.has_phone, f.has_first_name, f.order_count),
        (true, false, true, 1)
    );
    let members = d.members("vip", 100).await;
    assert!(
        members.iter().any(|m| m.customer_id == "w1" && m.eligible),
        "{members:?}"
    );
    // In the pushed list with the email's hash and an empty phone cell.
    let email_hash =
        audiencesync::hashing::hex_lower(&audiencesync::hashing::sha256("wendy@example.com"));
    let google = exports.join("vip/google.csv");
    let deadline = Instant::now() + Duration::from_secs(20);
    let row = loop {
        let text = std::fs::read_to_string(&google).unwrap_or_default();
        if let Some(row) = text.lines().find(|l| l.starts_with(&email_hash)) {
            break row.to_owned();
        }
        assert!(Instant::now() < deadline, "no row for w1 in {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(row.split(',').nth(1), Some(""), "no phone hash: {row}");

    // Streamed: a replay of the first upsert is a duplicate and warns no more; a later upsert
    // with a valid phone and an email that cannot be read keeps the stored email.
    let acks = stream(
        &d,
        vec![vec![
            ev(
                "w-e1",
                now - 3 * DAY,
                customer("w1", "Wendy@Example.com", BAD_PHONE, true),
            ),
            ev(
                "w-e3",
                now - DAY,
                customer("w1", "wendy@", "+1 212 555 0100", true),
            ),
        ]],
    )
    .await;
    assert_eq!(
        (acks[0].applied, acks[0].duplicates),
        (1, 1),
        "{:?}",
        acks[0]
    );
    let fields: Vec<(u32, &str, &str)> = acks[0]
        .warnings
        .iter()
        .map(|w| (w.index, w.field.as_str(), w.code.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![(1, "customer_upserted.email", "invalid_email")]
    );
    let f = &facts_of(&d, &["w1".to_string()]).await[0];
    assert_eq!(
        (f.has_email, f.has_phone),
        (true, true),
        "the older email stays"
    );

    // Counted by field and reason.
    let metrics = d.scrape();
    let count = |field: &str, reason: &str| -> Option<String> {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("audiencesync_ingest_identifier_dropped_total{")
                    && l.contains(&format!("field=\"{field}\""))
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .and_then(|l| l.rsplit(' ').next().map(str::to_owned))
    };
    assert_eq!(
        count("customer_upserted.phone", "phone_not_valid").as_deref(),
        Some("1"),
        "{metrics}"
    );
    assert_eq!(
        count("customer_upserted.email", "invalid_email").as_deref(),
        Some("1"),
        "{metrics}"
    );

    // The values reach neither the log nor the metrics.
    let log = d.log_text();
    assert!(log.contains("identifiers dropped"), "the drop is logged");
    for raw in [BAD_PHONE, "212 555 01", "wendy@", "Wendy@"] {
        assert!(!log.contains(raw), "{raw} in the log");
        assert!(!metrics.contains(raw), "{raw} in the metrics");
    }
    d.stop();
}
