//! End-to-end: `audiencesync import` (the real binary) into a real daemon over gRPC.
//!
//! The fixtures are dated in 2099 and the daemons run on a manual clock set to 2099-09-01, so
//! the audiences they land in do not drift as the calendar moves on.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

use audiencesync::proto::v1;
use sha2::{Digest, Sha256};

/// 2099-09-01T00:00:00Z.
const NOW_2099: i64 = 4_091_904_000;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

async fn start(dir: &Path) -> Daemon {
    let d = Daemon::start(dir, "[clock]\nmode = \"manual\"\n");
    d.admin()
        .await
        .set_clock(v1::SetClockRequest {
            now: ts(NOW_2099),
            advance_seconds: 0,
        })
        .await
        .expect("set_clock");
    d
}

fn import(d: &Daemon, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_audiencesync"))
        .arg("import")
        .arg("--addr")
        .arg(d.url())
        .args(args)
        .output()
        .expect("run import")
}

/// (applied, duplicates, rejected) from the summary line.
fn summary(out: &Output) -> (u64, u64, u64) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "import failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("imported:"))
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {line}"))
    };
    (field("applied"), field("duplicates"), field("rejected"))
}

fn hashed_id(prefix: &str, value: &str) -> String {
    format!(
        "{prefix}{}",
        &hex::encode(Sha256::digest(value.as_bytes()))[..32]
    )
}

fn all_ids() -> Vec<String> {
    vec![
        "J-1".into(),
        "J-2".into(),
        "CUST-1".into(),
        "CUST-2".into(),
        hashed_id("shopify:e:", "mary@example.com"),
        hashed_id("shopify:p:", "+14155550123"),
    ]
}

async fn audiences(d: &Daemon, id: &str) -> Vec<String> {
    d.audience()
        .await
        .get_customer_audiences(v1::GetCustomerAudiencesRequest {
            customer_id: id.into(),
        })
        .await
        .expect("get_customer_audiences")
        .into_inner()
        .audiences
}

const GRANTED: i32 = v1::ConsentStatusView::Granted as i32;
const DENIED: i32 = v1::ConsentStatusView::Denied as i32;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_each_format_and_a_second_import_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = start(tmp.path()).await;
    let jsonl = fixture("events.jsonl");
    let shopify = fixture("shopify_orders.csv");
    let mapping = fixture("mapping.toml");
    let orders = fixture("orders.csv");
    let customers = fixture("customers.csv");

    let j = import(&d, &["--format", "jsonl", s(&jsonl)]);
    assert_eq!(summary(&j), (6, 0, 0));
    let sh = import(&d, &["--format", "shopify-orders", s(&shopify)]);
    // #1001 and #1002: upsert + order (+ full refund); #1003: upsert + order + refund;
    // #1004 has neither email nor phone and is reported, not sent.
    assert_eq!(summary(&sh), (8, 0, 1));
    let sh_out = String::from_utf8_lossy(&sh.stdout);
    assert!(
        sh_out.contains("shopify_orders.csv:6: Email: no email or phone"),
        "{sh_out}"
    );
    assert!(!sh_out.contains("@example.com") && !sh_out.contains("555"));
    let c = import(
        &d,
        &[
            "--format",
            "csv",
            "--mapping",
            s(&mapping),
            s(&customers),
            s(&orders),
        ],
    );
    // 2 customers, 4 orders (B-2 in EUR has no rate: refused by the daemon), 1 refund.
    assert_eq!(summary(&c), (6, 0, 1));
    let c_out = String::from_utf8_lossy(&c.stdout);
    assert!(
        c_out.contains("orders.csv:5: order_placed.total.currency"),
        "{c_out}"
    );

    let facts = facts_of(&d, &all_ids()).await;
    assert_eq!(facts.len(), 6, "{facts:#?}");
    let by_id = |id: &str| {
        facts
            .iter()
            .find(|f| f.customer_id == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    // JSONL: two orders, a 2.50 partial refund (the refund line had no eventId).
    let j1 = by_id("J-1");
    assert_eq!((j1.order_count, j1.revenue_minor), (2, 4999 + 750));
    assert!(j1.has_email && j1.has_phone && j1.open_carts == 1);
    assert_eq!(j1.ad_user_data, GRANTED);
    assert_eq!(by_id("J-2").ad_user_data, DENIED);
    // Shopify: Mary's second order fully refunded; Dana identified by phone, 30.00 refunded.
    let mary = by_id(&hashed_id("shopify:e:", "mary@example.com"));
    assert_eq!((mary.order_count, mary.revenue_minor), (2, 5998));
    assert!(mary.has_email && mary.has_phone && mary.has_first_name && mary.has_last_name);
    assert!(mary.has_postal_code && mary.country == "US");
    assert_eq!(
        (mary.ad_user_data, mary.ad_personalization),
        (GRANTED, GRANTED)
    );
    let dana = by_id(&hashed_id("shopify:p:", "+14155550123"));
    assert_eq!((dana.order_count, dana.revenue_minor), (1, 7000));
    assert!(!dana.has_email && dana.has_phone);
    assert_eq!(dana.ad_user_data, DENIED);
    // Mapped CSV.
    let ann = by_id("CUST-1");
    assert_eq!((ann.order_count, ann.revenue_minor), (2, 12050 + 2000));
    assert!(ann.has_email && ann.has_phone && ann.registered_at.is_some());
    assert_eq!(ann.ad_personalization, GRANTED);
    let bob = by_id("CUST-2");
    assert_eq!((bob.order_count, bob.revenue_minor), (1, 1500));

    // Last orders 2099-06-01 (92 days before the clock) and 2099-05-10 (114 days): lapsed_90;
    // 2099-02-20 (193 days): lapsed_180.
    assert!(audiences(&d, "CUST-1")
        .await
        .contains(&"lapsed_90".to_string()));
    assert!(audiences(&d, &mary.customer_id)
        .await
        .contains(&"lapsed_90".to_string()));
    assert!(audiences(&d, "J-1")
        .await
        .contains(&"lapsed_180".to_string()));

    let stats_before = stats(&d).await;
    assert_eq!(stats_before.customers, 6);
    // Everything again: all duplicates, nothing changes.
    assert_eq!(
        summary(&import(&d, &["--format", "jsonl", s(&jsonl)])),
        (0, 6, 0)
    );
    assert_eq!(
        summary(&import(&d, &["--format", "shopify-orders", s(&shopify)])),
        (0, 8, 1)
    );
    assert_eq!(
        summary(&import(
            &d,
            &[
                "--format",
                "csv",
                "--mapping",
                s(&mapping),
                s(&customers),
                s(&orders)
            ]
        )),
        (0, 6, 1)
    );
    assert_eq!(facts_of(&d, &all_ids()).await, facts);
    let stats_after = stats(&d).await;
    assert_eq!(
        (
            stats_after.customers,
            stats_after.orders,
            stats_after.dedup_ids
        ),
        (
            stats_before.customers,
            stats_before.orders,
            stats_before.dedup_ids
        )
    );
    d.stop();
}

/// A JSONL history of `customers` customers, three orders and a refund each.
fn generate(path: &Path, customers: usize) -> Vec<String> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let base = NOW_2099 - 400 * DAY;
    let mut ids = Vec::new();
    for c in 0..customers {
        let id = format!("G-{c}");
        let t = base + (c as i64 % 300) * DAY;
        let iso = |secs: i64| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64),
            )
            .to_string()
        };
        writeln!(
            f,
            r#"{{"eventId":"g-{c}-c","occurredAt":"{}","customerUpserted":{{"customerId":"{id}","email":"g{c}@example.com","adUserData":"CONSENT_STATUS_GRANTED","adPersonalization":"CONSENT_STATUS_GRANTED"}}}}"#,
            iso(t)
        )
        .expect("write");
        for o in 0..3 {
            writeln!(
                f,
                r#"{{"eventId":"g-{c}-o{o}","occurredAt":"{}","orderPlaced":{{"orderId":"GO-{c}-{o}","customerId":"{id}","total":{{"amountMinor":"{}","currency":"USD"}},"itemCount":1}}}}"#,
                iso(t + o * 20 * DAY),
                1000 + c * 7 + o as usize
            )
            .expect("write");
        }
        writeln!(
            f,
            r#"{{"eventId":"g-{c}-r","occurredAt":"{}","orderRefunded":{{"orderId":"GO-{c}-1","amountMinor":"500"}}}}"#,
            iso(t + 21 * DAY)
        )
        .expect("write");
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_rerun_ends_like_one_clean_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("history.jsonl");
    let ids = generate(&file, 4000); // 20,000 events
    let total = 4000 * 5;

    let clean = start(&tmp.path().join("clean")).await;
    let out = import(
        &clean,
        &["--format", "jsonl", "--batch-size", "500", s(&file)],
    );
    assert_eq!(summary(&out), (total, 0, 0));

    let resumed = start(&tmp.path().join("resumed")).await;
    // Interrupted after 5 acks with more batches in flight.
    let out = import(
        &resumed,
        &[
            "--format",
            "jsonl",
            "--batch-size",
            "500",
            "--abort-after-acks",
            "5",
            s(&file),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let partial = stats(&resumed).await;
    assert!(partial.events_applied >= 2500 && partial.events_applied < total);
    // And a real kill, mid-stream, of the second attempt.
    let mut child = Command::new(env!("CARGO_BIN_EXE_audiencesync"))
        .args(["import", "--addr", &resumed.url(), "--format", "jsonl"])
        .args(["--batch-size", "200", s(&file)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn import");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();

    let out = import(&resumed, &["--format", "jsonl", s(&file)]);
    let (applied, duplicates, rejected) = summary(&out);
    assert_eq!(rejected, 0);
    assert_eq!(applied + duplicates, total);
    assert!(
        duplicates >= 2500,
        "the interrupted part is not applied again"
    );

    assert_eq!(facts_of(&resumed, &ids).await, facts_of(&clean, &ids).await);
    let (a, b) = (stats(&clean).await, stats(&resumed).await);
    assert_eq!(
        (a.customers, a.orders, a.carts, a.dedup_ids),
        (b.customers, b.orders, b.carts, b.dedup_ids)
    );
    assert_eq!(a.customers, 4000);
    clean.stop();
    resumed.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_stops_at_the_first_bad_row() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = start(tmp.path()).await;
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        concat!(
            r#"{"eventId":"s-1","occurredAt":"2099-01-10T08:00:00Z","customerUpserted":{"customerId":"S-1","email":"sam@example.com"}}"#,
            "\n",
            r#"{"eventId":"s-2","occurredAt":"2099-01-11T08:00:00Z","orderPlaced":{"orderId":"S-O1","customerId":"S-1","total":{"amountMinor":"100","currency":"USD"}}}"#,
            "\n",
            r#"{"eventId":"s-3","occurredAt":"yesterday","orderPlaced":{}}"#,
            "\n",
            r#"{"eventId":"s-4","occurredAt":"2099-01-12T08:00:00Z","orderPlaced":{"orderId":"S-O2","customerId":"S-1","total":{"amountMinor":"100","currency":"USD"}}}"#,
            "\n",
        ),
    )
    .expect("write");
    let out = import(&d, &["--format", "jsonl", "--strict", s(&bad)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.jsonl:3"), "{stderr}");
    // The rows before the bad one were imported; the one after was not.
    let f = facts_of(&d, &["S-1".to_string()]).await;
    assert_eq!(f[0].order_count, 1);

    // A daemon rejection stops it too (a customer id longer than the daemon takes).
    let long_id = "T".repeat(129);
    let bad2 = tmp.path().join("bad2.csv");
    std::fs::write(
        &bad2,
        format!("CustomerRef,Email,Since\nT-1,tom@example.com,2099-01-01\n{long_id},tim@example.com,2099-01-01\n"),
    )
    .expect("write");
    let mapping = tmp.path().join("m.toml");
    std::fs::write(
        &mapping,
        "[customers]\ncustomer_id = \"CustomerRef\"\nemail = \"Email\"\nregistered_at = \"Since\"\n",
    )
    .expect("write");
    let out = import(
        &d,
        &[
            "--format",
            "csv",
            "--strict",
            "--mapping",
            s(&mapping),
            s(&bad2),
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad2.csv:3: customer_upserted.customer_id"),
        "{stderr}"
    );
    assert!(!stderr.contains(&long_id), "{stderr}");
    let out = import(&d, &["--format", "csv", "--mapping", s(&mapping), s(&bad2)]);
    assert_eq!(summary(&out), (0, 1, 1));
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_identifier_is_a_warning_and_the_row_is_imported() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = start(tmp.path()).await;
    let file = tmp.path().join("people.csv");
    std::fs::write(
        &file,
        "Ref,Email,Phone,Since\n\
         W-1,wendy@example.com,+1 212 555 01,2099-01-01\n\
         W-2,not-an-email,+1 212 555 0100,2099-01-01\n",
    )
    .expect("write");
    let mapping = tmp.path().join("m.toml");
    std::fs::write(
        &mapping,
        "[customers]\ncustomer_id = \"Ref\"\nemail = \"Email\"\nphone = \"Phone\"\nregistered_at = \"Since\"\n",
    )
    .expect("write");
    // Not a bad row, so `--strict` goes on: both rows are imported.
    let out = import(
        &d,
        &[
            "--format",
            "csv",
            "--strict",
            "--mapping",
            s(&mapping),
            s(&file),
        ],
    );
    assert_eq!(summary(&out), (2, 0, 0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains(" warnings=2 "), "{stdout}");
    for line in [
        "customer_upserted.email: invalid_email",
        "customer_upserted.phone: phone_not_valid",
        "people.csv:2: customer_upserted.phone: not a valid phone number",
        "people.csv:3: customer_upserted.email: not a valid email address",
    ] {
        assert!(stdout.contains(line), "{line} in {stdout}");
    }
    for raw in ["212 555 01", "not-an-email"] {
        assert!(
            !stdout.contains(raw) && !stderr.contains(raw),
            "{raw} echoed"
        );
    }
    // Each customer is there with what was valid.
    let f = facts_of(&d, &["W-1".to_string(), "W-2".to_string()]).await;
    assert_eq!(
        f.iter()
            .map(|c| (c.has_email, c.has_phone))
            .collect::<Vec<_>>(),
        vec![(true, false), (false, true)]
    );
    d.stop();
}
