//! Bad input over real gRPC against the real daemon: random batches of valid and invalid
//! events (tests/common/arbitrary.rs), duplicates, refunds larger than their orders, unknown
//! customers and orders, and bytes that are not even UTF-8 where the protocol says string.
//! The daemon must never fall over, every refusal must name its field, and everything it
//! accepted must still be there afterwards.

mod common;

use std::collections::BTreeMap;

use audiencesync::proto::v1;
use common::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as PropConfig, TestRunner};
use prost::bytes::{Buf, BufMut};
use prost::Message;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_batches_are_answered_per_event_and_lose_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), "");
    let mut client = d.ingest().await;
    let now = now_secs();
    let mut runner = TestRunner::new(PropConfig {
        failure_persistence: None,
        ..PropConfig::default()
    });
    let strategy = proptest::collection::vec(common::arbitrary::event(now), 1..40);
    // Every accepted event id → the event, to replay at the end.
    let mut accepted: BTreeMap<String, v1::Event> = BTreeMap::new();
    let mut rejected_total = 0u64;
    for case in 0..40u64 {
        let mut events = strategy.new_tree(&mut runner).expect("tree").current();
        // Duplicates inside the batch, and of events accepted earlier.
        if let Some(first) = events.first().cloned() {
            events.push(first);
        }
        if let Some((_, old)) = accepted.iter().nth(case as usize % accepted.len().max(1)) {
            events.push(old.clone());
        }
        let n = events.len() as u32;
        let ack = client
            .ingest_batch(v1::EventBatch {
                batch_id: case,
                events: events.clone(),
            })
            .await
            .unwrap_or_else(|s| panic!("case {case}: the batch was refused whole: {s}"))
            .into_inner();
        assert_eq!(
            ack.applied + ack.duplicates + ack.rejected.len() as u32,
            n,
            "case {case}: every event answered once: {ack:?}"
        );
        for r in &ack.rejected {
            let root = r.field.split('.').next().unwrap_or_default();
            assert!(FIELD_ROOTS.contains(&root), "case {case}: {r:?}");
            assert_eq!(r.code, tonic::Code::InvalidArgument as i32, "{r:?}");
            assert!(!r.reason.is_empty() && (r.index as usize) < events.len());
        }
        rejected_total += ack.rejected.len() as u64;
        let refused: Vec<u32> = ack.rejected.iter().map(|r| r.index).collect();
        for (i, e) in events.into_iter().enumerate() {
            if !refused.contains(&(i as u32)) {
                accepted.entry(e.event_id.clone()).or_insert(e);
            }
        }
    }
    assert!(
        !accepted.is_empty() && rejected_total > 0,
        "the generator made both kinds"
    );
    assert_eq!(stats(&d).await.events_rejected, rejected_total);

    // Nothing accepted was lost: replayed (after a restart, from the WAL and checkpoint),
    // every accepted event is a duplicate.
    assert!(d.stop().success());
    let d = Daemon::start(tmp.path(), "");
    let replay: Vec<v1::Event> = accepted.into_values().collect();
    for (i, chunk) in replay.chunks(500).enumerate() {
        let ack = d
            .ingest()
            .await
            .ingest_batch(v1::EventBatch {
                batch_id: i as u64,
                events: chunk.to_vec(),
            })
            .await
            .expect("replay")
            .into_inner();
        assert_eq!(
            (ack.duplicates as usize, ack.applied, ack.rejected.len()),
            (chunk.len(), 0, 0),
            "an accepted event went missing: {ack:?}"
        );
    }
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_beyond_orders_unknown_ids_and_far_future_times() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), "");
    let now = now_secs();
    let acks = stream(
        &d,
        vec![vec![
            ev(
                "u1",
                now - 30 * DAY,
                customer("c1", "a@example.com", "+12125550100", true),
            ),
            ev("o1", now - 20 * DAY, order("o1", "c1", 1_000, "USD")),
            // Refunds adding up to 30 times the order.
            ev("r1", now - 19 * DAY, refund("o1", 20_000, false)),
            ev("r2", now - 18 * DAY, refund("o1", 10_000, false)),
            // An order of a customer never upserted, a refund of an unknown order, a cart
            // of an unknown customer, a checkout of an unknown cart, consent and erasure of
            // nobody: all stored as facts, none an error.
            ev("o2", now - 10 * DAY, order("o2", "ghost", 500, "USD")),
            ev("r3", now - 9 * DAY, refund("no-such-order", 100, false)),
            ev("k1", now - 2 * DAY, cart("k1", "ghost2", 1)),
            ev("k2", now - DAY, checkout("no-such-cart", "")),
            ev("cc", now - DAY, consent("nobody", false)),
            ev("x", now - DAY, erase("nobody-either")),
            // Far future: refused by field, the rest of the batch unaffected.
            ev("f1", now + 400 * DAY, order("o3", "c1", 1, "USD")),
            ev("f2", i64::MAX / 2, order("o4", "c1", 1, "USD")),
        ]],
    )
    .await;
    let ack = &acks[0];
    assert_eq!(ack.applied, 10, "{ack:?}");
    let fields: Vec<&str> = ack.rejected.iter().map(|r| r.field.as_str()).collect();
    assert_eq!(fields, ["occurred_at", "occurred_at"]);
    let c1 = &facts_of(&d, &["c1".into()]).await[0];
    assert_eq!(c1.revenue_minor, 0, "net revenue floors at zero");
    assert_eq!(c1.order_count, 1);
    let ghost = &facts_of(&d, &["ghost".into()]).await[0];
    assert_eq!(ghost.order_count, 1);
    d.stop();
}

/// Passes bytes through unchanged, so a test can send what no well-behaved client would.
#[derive(Clone, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// An encoded batch whose first event id is not valid UTF-8.
fn batch_with_invalid_utf8(now: i64) -> Vec<u8> {
    let marker = "MARKERMARKER";
    let batch = v1::EventBatch {
        batch_id: 2,
        events: vec![
            ev(marker, now - DAY, order("o-bad", "c1", 100, "USD")),
            ev("fine", now - DAY, order("o-fine", "c1", 100, "USD")),
        ],
    };
    let mut bytes = batch.encode_to_vec();
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
        .expect("marker");
    bytes[at..at + 4].copy_from_slice(&[0xff, 0xfe, 0xc0, 0x80]);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_utf8_get_an_error_naming_the_field_and_nothing_else_changes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), "");
    let now = now_secs();
    stream(
        &d,
        vec![vec![
            ev(
                "u1",
                now - 30 * DAY,
                customer("c1", "a@example.com", "+12125550100", true),
            ),
            ev("o1", now - 20 * DAY, order("o1", "c1", 1_000, "USD")),
        ]],
    )
    .await;
    let before = facts_of(&d, &["c1".into()]).await;

    // Unary: the whole message is refused by the protobuf decoder, naming the field.
    let mut grpc = tonic::client::Grpc::new(d.channel().await);
    grpc.ready().await.expect("ready");
    let err = grpc
        .unary(
            tonic::Request::new(batch_with_invalid_utf8(now)),
            http::uri::PathAndQuery::from_static("/audiencesync.v1.IngestService/IngestBatch"),
            RawCodec,
        )
        .await
        .expect_err("invalid UTF-8 accepted");
    assert!(
        err.message().contains("event_id") && err.message().contains("UTF-8"),
        "{err:?}"
    );

    // Streaming: the batch before it is acknowledged and kept; the stream ends with the error.
    let good = v1::EventBatch {
        batch_id: 1,
        events: vec![ev("o5", now - DAY, order("o5", "c1", 700, "USD"))],
    }
    .encode_to_vec();
    let mut grpc = tonic::client::Grpc::new(d.channel().await);
    grpc.ready().await.expect("ready");
    let reqs = tokio_stream::iter(vec![good, batch_with_invalid_utf8(now)]);
    let mut acks = grpc
        .streaming(
            tonic::Request::new(reqs),
            http::uri::PathAndQuery::from_static("/audiencesync.v1.IngestService/StreamEvents"),
            RawCodec,
        )
        .await
        .expect("stream opened")
        .into_inner();
    let first = acks.message().await.expect("first ack").expect("an ack");
    let first = v1::BatchAck::decode(first.as_slice()).expect("ack decodes");
    assert_eq!((first.batch_id, first.applied), (1, 1));
    let end = acks.message().await;
    assert!(
        matches!(&end, Err(s) if s.message().contains("event_id")),
        "{end:?}"
    );

    // Alive, and exactly the good events are in.
    let after = facts_of(&d, &["c1".into()]).await;
    assert_eq!(after[0].order_count, before[0].order_count + 1);
    assert_eq!(after[0].revenue_minor, before[0].revenue_minor + 700);
    d.stop();
}
