//! What each fuzz target checks, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and
//! their CI smoke run (`tests/fuzz_smoke.rs`). Each function takes arbitrary bytes and panics
//! only on a real bug: a panic inside the daemon's code, a refusal that names no field or
//! echoes a raw identifier, or an accepted fact that does not survive the write-ahead log.

use std::sync::LazyLock;

use audiencesync::ingest::identity::{self, IdentityError, Normalizer};
use audiencesync::ingest::validate::{Dropped, Validator};
use audiencesync::ledger::customer_record::{CartRecord, CustomerRecord, OrderRecord};
use audiencesync::ledger::records::{decode, decode_wal, encode_wal, ChangeRecord};
use audiencesync::proto::v1;
use audiencesync::service::assemble;
use audiencesync::sync::dest::{google, meta};
use audiencesync::sync::member::RemoteMember;
use prost::Message;

/// The instant events are validated against: 2033-05-18.
pub const NOW: i64 = 2_000_000_000 * 1_000_000_000;

/// The top-level names a refusal's field path starts with.
const FIELD_ROOTS: &[&str] = &[
    "event_id",
    "occurred_at",
    "kind",
    "customer_upserted",
    "order_placed",
    "order_refunded",
    "cart_updated",
    "cart_checked_out",
    "consent_changed",
    "customer_erased",
];

static VALIDATOR: LazyLock<Validator> = LazyLock::new(|| {
    let cfg = assemble::bundled().expect("bundled config");
    Validator::new(&cfg).expect("validator")
});

static NORMALIZER: LazyLock<Normalizer> =
    LazyLock::new(|| Normalizer::new("US").expect("normalizer"));

/// Target `event_validate`: bytes → `EventBatch` (as the gRPC layer decodes it) → each event
/// validated. A refusal names a known field and never echoes an identifier; an accepted fact
/// comes back unchanged from a write-ahead record.
pub fn event_validate(data: &[u8]) {
    let Ok(batch) = v1::EventBatch::decode(data) else {
        return;
    };
    for ev in &batch.events {
        check_event(ev);
    }
}

/// An event validated as the daemon would at [`NOW`].
pub fn validate(ev: &v1::Event) -> Option<audiencesync::ledger::facts::Fact> {
    VALIDATOR.validate(ev, NOW).ok()
}

/// The per-event half of [`event_validate`] (also driven by generated events).
pub fn check_event(ev: &v1::Event) {
    let mut dropped = Vec::new();
    match VALIDATOR.validate_noting(ev, NOW, &mut dropped) {
        Ok(fact) => {
            // A dropped identifier is named by a known field and a fixed reason word (the
            // metric's labels stay bounded; no value can be in them).
            for d in &dropped {
                assert!(Dropped::FIELDS.contains(&d.field), "unknown field {d:?}");
                assert!(
                    IdentityError::LABELS.contains(&d.error.label()),
                    "unknown reason {d:?}"
                );
            }
            let records = encode_wal(std::slice::from_ref(&fact));
            assert_eq!(records.len(), 1, "one fact, one record");
            let back = decode_wal(&records[0]).expect("a fresh WAL record decodes");
            assert_eq!(back, vec![fact], "the WAL round trip changed a fact");
        }
        Err(e) => {
            let root = e.field.split('.').next().unwrap_or_default();
            assert!(
                FIELD_ROOTS.contains(&root),
                "refusal names an unknown field {:?}: {e}",
                e.field
            );
            assert!(!e.reason.is_empty(), "refusal without a reason: {e}");
            for field in 0..4 {
                let Some(raw) = raw_identifier(ev, field) else {
                    continue;
                };
                if !e.reason.contains(raw) {
                    continue;
                }
                // Seen in the reason: an echo, or the value happens to be reason text (the
                // fuzzer finds "t a valid phone n"). An echo follows the value when it changes.
                let mut other = ev.clone();
                let changed = rot(raw);
                set_identifier(&mut other, field, changed.clone());
                if let Err(e2) = VALIDATOR.validate(&other, NOW) {
                    assert!(
                        !e2.reason.contains(&changed),
                        "refusal echoes a raw identifier: {e2}"
                    );
                }
            }
        }
    }
}

/// Raw identifier number `field` (email, phone, first, last name) of an upsert, when long
/// enough that seeing it in a reason is not a plain coincidence.
fn raw_identifier(ev: &v1::Event, field: usize) -> Option<&str> {
    let Some(v1::event::Kind::CustomerUpserted(c)) = &ev.kind else {
        return None;
    };
    let v = [&c.email, &c.phone, &c.first_name, &c.last_name][field].as_deref()?;
    (v.trim().len() >= 12).then_some(v)
}

fn set_identifier(ev: &mut v1::Event, field: usize, value: String) {
    if let Some(v1::event::Kind::CustomerUpserted(c)) = &mut ev.kind {
        *[
            &mut c.email,
            &mut c.phone,
            &mut c.first_name,
            &mut c.last_name,
        ][field] = Some(value);
    }
}

/// The same shape of text with other letters and digits (ROT13, digits + 5).
fn rot(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
            'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
            '0'..='9' => (((c as u8 - b'0') + 5) % 10 + b'0') as char,
            c => c,
        })
        .collect()
}

/// Target `identity_normalize`: any text through every normalizer. Never panics; the
/// per-network normal forms are fixed points (normalizing twice changes nothing).
pub fn identity_normalize(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let n = &*NORMALIZER;
    let _ = n.email(s);
    let _ = n.phone(s, None);
    let _ = n.phone(s, Some("GB"));
    let _ = n.first_name(s);
    let _ = n.last_name(s);
    let _ = n.country(s);
    let _ = n.postal_code(s);
    let _ = google::shape::google_postal(s, Some("US"));
    let _ = meta::shape::meta_postal(s, None);
    let _ = meta::shape::meta_country(s);
    type Norm = fn(&str) -> Result<String, identity::IdentityError>;
    let forms: [(&str, Norm); 4] = [
        ("google_email", identity::email::google_email),
        ("meta_email", identity::email::meta_email),
        ("google_name", identity::name::google_name),
        ("meta_name", identity::name::meta_name),
    ];
    for (name, f) in forms {
        if let Ok(once) = f(s) {
            assert_eq!(
                f(&once).as_deref(),
                Ok(once.as_str()),
                "{name} is not idempotent on {s:?}"
            );
        }
    }
}

/// Target `record_decode`: bytes read back from sled as any record kind. Damage must be an
/// error, never a panic; a WAL record that decodes re-encodes to the same facts.
pub fn record_decode(data: &[u8]) {
    if let Ok(facts) = decode_wal(data) {
        for r in encode_wal(&facts) {
            decode_wal(&r).expect("re-encoded WAL record decodes");
        }
    }
    let _ = decode::<CustomerRecord>(data);
    let _ = decode::<OrderRecord>(data);
    let _ = decode::<CartRecord>(data);
    let _ = decode::<Vec<ChangeRecord>>(data);
    let _ = decode::<RemoteMember>(data);
}
