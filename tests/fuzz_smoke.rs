//! The fuzz targets' checks (`fuzz/checks.rs`) as a CI smoke run on stable: each target over
//! its committed seeds (`fuzz/seeds/<target>/`) and a few thousand generated inputs: valid
//! and invalid events of every kind (empty, huge and non-ASCII strings, unknown enum values,
//! far-future and out-of-range timestamps, negative money), their encodings with bytes
//! flipped or cut, arbitrary text for the normalizers, and damaged write-ahead records.
//! The real coverage-guided runs are `scripts/fuzz.sh` (docs/RELIABILITY.md).

#[path = "../fuzz/checks.rs"]
mod checks;
mod common;

use std::path::Path;

use audiencesync::proto::v1;
use proptest::prelude::*;
use prost::Message;

use common::arbitrary;

const SECS: i64 = checks::NOW / 1_000_000_000;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("seed").path();
        out.push(std::fs::read(&path).expect("read seed"));
    }
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

#[test]
fn every_committed_seed_passes_its_target() {
    for s in seeds("event_validate") {
        checks::event_validate(&s);
    }
    for s in seeds("identity_normalize") {
        checks::identity_normalize(&s);
    }
    for s in seeds("record_decode") {
        checks::record_decode(&s);
    }
}

/// Damage to a byte string: flip, cut, splice.
fn damage() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    proptest::collection::vec((0u8..3, any::<usize>(), any::<u8>()), 1..6)
}

fn apply_damage(mut bytes: Vec<u8>, damage: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(op, at, b) in damage {
        if bytes.is_empty() {
            bytes.push(b);
            continue;
        }
        let i = at % bytes.len();
        match op {
            0 => bytes[i] ^= b | 1,
            1 => bytes.truncate(i),
            _ => bytes.insert(i, b),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn generated_events_are_refused_by_field_or_survive_the_wal(events in proptest::collection::vec(arbitrary::event(SECS), 1..8)) {
        for ev in &events {
            checks::check_event(ev);
        }
        let batch = v1::EventBatch { batch_id: 1, events }.encode_to_vec();
        checks::event_validate(&batch);
    }

    #[test]
    fn damaged_batch_encodings_never_panic(events in proptest::collection::vec(arbitrary::event(SECS), 1..4), d in damage()) {
        let batch = v1::EventBatch { batch_id: 7, events }.encode_to_vec();
        checks::event_validate(&apply_damage(batch, &d));
    }

    #[test]
    fn any_text_normalizes_or_is_refused(s in arbitrary::text(), bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        checks::identity_normalize(s.as_bytes());
        checks::identity_normalize(&bytes);
    }

    #[test]
    fn damaged_records_are_errors_not_panics(events in proptest::collection::vec(arbitrary::event(SECS), 1..6), d in damage()) {
        let facts: Vec<_> = events
            .iter()
            .filter_map(checks::validate)
            .collect();
        for record in audiencesync::ledger::records::encode_wal(&facts) {
            checks::record_decode(&record);
            checks::record_decode(&apply_damage(record, &d));
        }
    }
}

/// Writes the seed corpora (run once by hand: `cargo test --test fuzz_smoke -- --ignored`).
#[test]
#[ignore]
fn write_seed_corpora() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut runner = TestRunner::deterministic();
    let write = |target: &str, name: String, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    };
    let now = checks::NOW / 1_000_000_000;
    let shop = common_shop(now);
    for (i, batch) in shop.iter().enumerate() {
        let bytes = v1::EventBatch {
            batch_id: i as u64,
            events: batch.clone(),
        }
        .encode_to_vec();
        write("event_validate", format!("shop-{i:02}"), &bytes);
        let facts: Vec<_> = batch.iter().filter_map(checks::validate).collect();
        for (j, r) in audiencesync::ledger::records::encode_wal(&facts)
            .iter()
            .enumerate()
        {
            write("record_decode", format!("wal-{i:02}-{j}"), r);
        }
    }
    for i in 0..16 {
        let events = proptest::collection::vec(arbitrary::event(SECS), 1..4)
            .new_tree(&mut runner)
            .expect("tree")
            .current();
        let bytes = v1::EventBatch {
            batch_id: i,
            events,
        }
        .encode_to_vec();
        write("event_validate", format!("odd-{i:02}"), &bytes);
    }
    for (i, s) in [
        "Mary.Jane+promo@GoogleMail.com",
        "  USER@example.COM ",
        "+1 (212) 555-0134",
        "020 7946 0958",
        "José-María O'Connor",
        "ÅSA Ödegård",
        "SW1A 1AA",
        "94105-1234",
        "us",
        "",
        "@",
        "a@b",
        "\u{202e}evil@example.com",
    ]
    .iter()
    .enumerate()
    {
        write("identity_normalize", format!("text-{i:02}"), s.as_bytes());
    }
}

/// A few batches of every event kind (the crash suites' shop, without the harness).
fn common_shop(now: i64) -> Vec<Vec<v1::Event>> {
    let ts = |s: i64| {
        Some(prost_types::Timestamp {
            seconds: s,
            nanos: 0,
        })
    };
    let ev = |id: &str, at: i64, kind: v1::event::Kind| v1::Event {
        event_id: id.into(),
        occurred_at: ts(at),
        kind: Some(kind),
    };
    use v1::event::Kind;
    let day = 86_400;
    vec![
        vec![
            ev(
                "u1",
                now - 400 * day,
                Kind::CustomerUpserted(v1::CustomerUpserted {
                    customer_id: "c1".into(),
                    email: Some("Mary@Example.com".into()),
                    phone: Some("+1 (212) 555-0134".into()),
                    first_name: Some("Mary-Jane".into()),
                    last_name: Some("O'Connor".into()),
                    country: Some("US".into()),
                    postal_code: Some("94105".into()),
                    registered_at: ts(now - 500 * day),
                    ad_user_data: Some(1),
                    ad_personalization: Some(1),
                }),
            ),
            ev(
                "o1",
                now - 20 * day,
                Kind::OrderPlaced(v1::OrderPlaced {
                    order_id: "o1".into(),
                    customer_id: "c1".into(),
                    total: Some(v1::Money {
                        amount_minor: 10_000,
                        currency: "USD".into(),
                    }),
                    item_count: 2,
                }),
            ),
        ],
        vec![
            ev(
                "r1",
                now - 19 * day,
                Kind::OrderRefunded(v1::OrderRefunded {
                    order_id: "o1".into(),
                    amount_minor: 50_000,
                    full: false,
                }),
            ),
            ev(
                "k1",
                now - 2 * day,
                Kind::CartUpdated(v1::CartUpdated {
                    cart_id: "k1".into(),
                    customer_id: "c1".into(),
                    item_count: 3,
                    value: Some(v1::Money {
                        amount_minor: 1_999,
                        currency: "USD".into(),
                    }),
                }),
            ),
            ev(
                "k2",
                now - day,
                Kind::CartCheckedOut(v1::CartCheckedOut {
                    cart_id: "k1".into(),
                    order_id: "o2".into(),
                }),
            ),
            ev(
                "cc1",
                now - day,
                Kind::ConsentChanged(v1::ConsentChanged {
                    customer_id: "c1".into(),
                    ad_user_data: Some(2),
                    ad_personalization: None,
                }),
            ),
            ev(
                "x1",
                now - 3_600,
                Kind::CustomerErased(v1::CustomerErased {
                    customer_id: "c1".into(),
                }),
            ),
        ],
    ]
}
