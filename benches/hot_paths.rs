//! Criterion benchmarks of the hot paths: `cargo bench --bench hot_paths` (figures and their
//! reading in docs/BENCHMARKS.md).
//!
//! - `identity`: normalize + SHA-256 of emails and phones (US numbers with `+`, and 10 other
//!   countries' numbers written both ways), next to raw `sha2` on the same strings in the same
//!   run, so the ratio survives a noisy machine.
//! - `ingest`: one batch of 1,000 events from protobuf bytes to memberships: decode, validate
//!   (which normalizes and hashes), apply to the facts, re-evaluate the touched customers.
//! - `vip`: one step of the VIP threshold maintenance among 1M buyers.
//! - `delta`: desired − confirmed for 10,000 customers, then cutting the adds into Meta
//!   requests and encoding their rows.
//! - `import`: decoding ~1,000 JSON Lines rows of `audiencesync import --format jsonl` as
//!   `scripts/gen10m.py` writes them, and the same rows through `prost-reflect` (the earlier
//!   decoder) in the same run, for the ratio.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message;
use sha2::{Digest, Sha256};

use audiencesync::audience::params::AudienceParams;
use audiencesync::audience::vip::VipIndex;
use audiencesync::audience::Audiences;
use audiencesync::clock::NANOS_PER_SEC;
use audiencesync::config::Config;
use audiencesync::feed::Generator;
use audiencesync::import::decode_jsonl_line;
use audiencesync::ingest::identity::Normalizer;
use audiencesync::ingest::validate::Validator;
use audiencesync::ledger::profile::{Lww, Profile};
use audiencesync::ledger::state::State;
use audiencesync::money::CurrencyTable;
use audiencesync::proto::v1::{Event, EventBatch};
use audiencesync::sync::dest::meta::{self, MetaDestination, MetaSettings};
use audiencesync::sync::dest::Destination;
use audiencesync::sync::member::RemoteMember;
use phonenumber::metadata::DATABASE;

const NOW_SECS: i64 = 1_900_000_000;

fn identity(c: &mut Criterion) {
    let n = Normalizer::new("US").expect("region");
    let emails: Vec<String> = (0..1_000)
        .map(|i| format!("  Jane.Doe{i}+news@Example.com "))
        .collect();
    let phones: Vec<String> = (0..1_000)
        .map(|i| format!("+1 (212) 555-{:04}", i % 10_000))
        .collect();
    let mut g = c.benchmark_group("identity");
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("email normalize+sha256 (google and meta)", |b| {
        b.iter(|| {
            for e in &emails {
                let _ = black_box(n.email(black_box(e)));
            }
        })
    });
    g.bench_function("email raw sha256 once", |b| {
        b.iter(|| {
            for e in &emails {
                black_box(Sha256::digest(black_box(e).as_bytes()));
            }
        })
    });
    g.bench_function("phone normalize+sha256 (google and meta)", |b| {
        b.iter(|| {
            for p in &phones {
                let _ = black_box(n.phone(black_box(p), None));
            }
        })
    });
    g.bench_function("phone raw sha256 once", |b| {
        b.iter(|| {
            for p in &phones {
                black_box(Sha256::digest(black_box(p).as_bytes()));
            }
        })
    });
    let mixed = mixed_phones();
    let invalid: Vec<_> = mixed
        .iter()
        .filter(|(p, country)| n.phone(p, *country).is_err())
        .collect();
    assert!(invalid.is_empty(), "not valid: {invalid:?}");
    g.bench_function(
        "phone normalize+sha256, 10 countries, national and +",
        |b| {
            b.iter(|| {
                for (p, country) in &mixed {
                    let _ = black_box(n.phone(black_box(p), *country));
                }
            })
        },
    );
    g.bench_function("phone raw sha256 once, 10 countries", |b| {
        b.iter(|| {
            for (p, _) in &mixed {
                black_box(Sha256::digest(black_box(p).as_bytes()));
            }
        })
    });
    g.finish();
}

/// 1,000 valid phones of 10 countries from the metadata's own examples (fixed line and mobile),
/// half written with `+` and spaces, half national with the national prefix and the customer's
/// country: regions other than the default one, and the national-prefix rules.
fn mixed_phones() -> Vec<(String, Option<&'static str>)> {
    const COUNTRIES: [&str; 10] = ["GB", "DE", "FR", "IT", "ES", "AU", "BR", "IN", "JP", "MX"];
    let mut forms = Vec::new();
    for id in COUNTRIES {
        let meta = DATABASE.by_id(id).expect("region");
        let d = meta.descriptors();
        for ex in [d.fixed_line(), d.mobile()]
            .into_iter()
            .flatten()
            .filter_map(|d| d.example())
        {
            let (head, tail) = ex.split_at(ex.len() / 2);
            forms.push((format!("+{} {head} {tail}", meta.country_code()), None));
            let np = meta.national_prefix().unwrap_or("");
            forms.push((format!("{np}{head} {tail}"), Some(id)));
        }
    }
    forms.iter().cycle().take(1_000).cloned().collect()
}

/// The synthetic shop as encoded batches of 1,000 events, as a client sends them.
fn encoded_batches(customers: u64) -> Vec<Vec<u8>> {
    Generator::new(customers, 1, NOW_SECS)
        .batches(1_000)
        .enumerate()
        .map(|(i, events)| {
            EventBatch {
                batch_id: i as u64,
                events,
            }
            .encode_to_vec()
        })
        .collect()
}

fn ingest(c: &mut Criterion) {
    let cfg = Config::default();
    let validator = Validator::new(&cfg).expect("validator");
    let rules = AudienceParams::from_config(&cfg.audiences).expect("rules");
    let currencies = Arc::new(CurrencyTable::from_config(&cfg.revenue).expect("currencies"));
    let now = NOW_SECS * NANOS_PER_SEC;
    // 20,000 customers ≈ 360 batches; the state starts empty again when they run out, so
    // every timed batch is new to the state it meets.
    let batches = encoded_batches(20_000);
    let events_per_batch = 1_000;
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(events_per_batch));
    g.bench_function("decode+validate+apply+audiences, batch of 1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut state = State::default();
            let mut audiences = Audiences::new(rules.clone(), currencies.clone());
            let mut next = 0;
            for _ in 0..iters {
                if next == batches.len() {
                    state = State::default();
                    audiences = Audiences::new(rules.clone(), currencies.clone());
                    next = 0;
                }
                let bytes = &batches[next];
                next += 1;
                let t = Instant::now();
                let batch = EventBatch::decode(bytes.as_slice()).expect("decodes");
                for e in &batch.events {
                    if let Ok(f) = validator.validate(e, now) {
                        state.apply(&f);
                    }
                }
                let touched: Vec<u32> = std::mem::take(&mut state.touched).into_iter().collect();
                for c in touched {
                    audiences.update(&state, c, now);
                }
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn vip(c: &mut Criterion) {
    const BUYERS: u32 = 1_000_000;
    // A deterministic spread of revenues (minor units), some ties.
    let value = |i: u32| i64::from(i.wrapping_mul(2_654_435_761) % 500_000);
    let values: Vec<(i64, u32)> = (0..BUYERS).map(|i| (value(i), i)).collect();
    let mut index = VipIndex::from_values(1, 4, values);
    let mut current: Vec<i64> = (0..BUYERS).map(value).collect();
    let mut step: u32 = 0;
    let mut g = c.benchmark_group("vip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("threshold update among 1M buyers", |b| {
        b.iter(|| {
            step = step.wrapping_add(1);
            let c = step.wrapping_mul(40_503) % BUYERS;
            let old = current[c as usize];
            let new = (old + 7_919) % 500_000;
            current[c as usize] = new;
            black_box(index.update(c, old, new))
        })
    });
    g.finish();
}

fn delta(c: &mut Criterion) {
    let n = Normalizer::new("US").expect("region");
    fn lww<T>(v: T) -> Option<Lww<Option<T>>> {
        Some(Lww {
            value: Some(v),
            at: 1,
            eid: "e".into(),
        })
    }
    let profiles: Vec<(Box<str>, Profile)> = (0..10_000)
        .map(|i| {
            let profile = Profile {
                email: n
                    .email(&format!("member{i}@example.com"))
                    .ok()
                    .and_then(lww),
                phone: n
                    .phone(&format!("+1212555{:04}", i % 10_000), None)
                    .ok()
                    .and_then(lww),
                country: lww(Box::<str>::from("US")),
                ..Profile::default()
            };
            (format!("cus-{i}").into_boxed_str(), profile)
        })
        .collect();
    // Nine in ten already confirmed as they are; the rest new.
    let confirmed: HashMap<Box<str>, RemoteMember> = profiles
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 0)
        .filter_map(|(_, (id, p))| Some((id.clone(), RemoteMember::from_profile(p)?)))
        .collect();
    let meta = MetaDestination::new(MetaSettings {
        api_base: "http://127.0.0.1:9".into(),
        access_token: "t".into(),
        access_token_file: None,
        app_secret: None,
        ad_account_id: None,
        timeout: Duration::from_secs(1),
        replace_window: Duration::from_secs(90 * 60),
    })
    .expect("client");
    let mut g = c.benchmark_group("delta");
    g.throughput(Throughput::Elements(profiles.len() as u64));
    g.bench_function("desired-confirmed of 10k, Meta batches and rows", |b| {
        b.iter(|| {
            let adds: Vec<RemoteMember> = profiles
                .iter()
                .filter_map(|(id, p)| {
                    let desired = RemoteMember::from_profile(p)?;
                    (confirmed.get(id) != Some(&desired)).then_some(desired)
                })
                .collect();
            let mut rest = adds.as_slice();
            let mut rows = 0;
            while !rest.is_empty() {
                let k = meta.fit(rest);
                for m in &rest[..k] {
                    rows += black_box(meta::shape::row(m)).len();
                }
                rest = &rest[k..];
            }
            rows
        })
    });
    g.finish();
}

/// 90 customers as `scripts/gen10m.py 90 10` writes them: an upsert and ten orders each, a
/// partial refund for every tenth (999 lines).
fn history_lines() -> Vec<String> {
    const BASE: i64 = 1_725_148_800; // 2024-09-01T00:00:00Z
    const DAY: i64 = 86_400;
    let mut lines = Vec::new();
    for c in 0..90i64 {
        let iso = |days: i64| {
            prost_types::Timestamp {
                seconds: BASE + c * 7 + days * DAY,
                nanos: 0,
            }
            .to_string()
        };
        lines.push(format!(
            r#"{{"eventId":"h-{c}-c","occurredAt":"{}","customerUpserted":{{"customerId":"H-{c}","email":"h{c}@example.com","country":"US","adUserData":"CONSENT_STATUS_GRANTED","adPersonalization":"CONSENT_STATUS_GRANTED"}}}}"#,
            iso(0)
        ));
        for o in 0..10i64 {
            lines.push(format!(
                r#"{{"eventId":"h-{c}-o{o}","occurredAt":"{}","orderPlaced":{{"orderId":"HO-{c}-{o}","customerId":"H-{c}","total":{{"amountMinor":"{}","currency":"USD"}},"itemCount":1}}}}"#,
                iso((c + o * 61) % 700),
                1000 + (c * 31 + o * 17) % 9000
            ));
        }
        if c % 10 == 0 {
            lines.push(format!(
                r#"{{"eventId":"h-{c}-r","occurredAt":"{}","orderRefunded":{{"orderId":"HO-{c}-1","amountMinor":"500"}}}}"#,
                iso((c + 61) % 700 + 1)
            ));
        }
    }
    lines
}

/// The importer's decoder before issue 11: serde_json into a `DynamicMessage` through the
/// descriptor, re-encoded and decoded as the prost type.
fn decode_via_prost_reflect(desc: &prost_reflect::MessageDescriptor, line: &str) -> Option<Event> {
    let mut de = serde_json::Deserializer::from_str(line);
    let dynamic = prost_reflect::DynamicMessage::deserialize(desc.clone(), &mut de).ok()?;
    de.end().ok()?;
    Event::decode(dynamic.encode_to_vec().as_slice()).ok()
}

fn import(c: &mut Criterion) {
    let lines = history_lines();
    let desc = prost_reflect::DescriptorPool::decode(audiencesync::proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set")
        .get_message_by_name("audiencesync.v1.Event")
        .expect("Event");
    for line in &lines {
        let event = decode_jsonl_line(line).expect("decodes");
        assert_eq!(Some(event), decode_via_prost_reflect(&desc, line), "{line}");
    }
    let mut g = c.benchmark_group("import");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("jsonl decode", |b| {
        b.iter(|| {
            for line in &lines {
                let _ = black_box(decode_jsonl_line(black_box(line)));
            }
        })
    });
    g.bench_function("jsonl decode via prost-reflect (before)", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(decode_via_prost_reflect(&desc, black_box(line)));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, identity, ingest, vip, delta, import);
criterion_main!(benches);
