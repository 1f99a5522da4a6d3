//! Read-side load while the feed runs: membership checks at a fixed rate, and probes that time
//! how long an ingested event takes to show in an `AudienceService` answer.
//!
//! Both are open-loop: a check's latency runs from the instant it was *due*, not from when a
//! busy client got round to sending it, so a stalled daemon cannot hide its stall by slowing
//! the load down (no coordinated omission).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;
use tokio::time::MissedTickBehavior;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::client::stream::IngestClient;
use crate::client::Auth;
use crate::proto::v1::audience_service_client::AudienceServiceClient;
use crate::proto::v1::event::Kind;
use crate::proto::v1::{Event, EventBatch, GetCustomerAudiencesRequest, Money, OrderPlaced};

/// The query client with the optional bearer token attached.
pub(super) type Queries = AudienceServiceClient<InterceptedService<Channel, Auth>>;
/// The ingest client the probes send their events with.
pub(super) type Ingest = IngestClient;

/// How often a probe asks whether its event is visible yet.
const POLL_EVERY: Duration = Duration::from_millis(1);
/// A probe that has not seen its event by then counts as failed.
const PROBE_DEADLINE: Duration = Duration::from_secs(30);

/// Latencies and failures of one side of the read load.
#[derive(Debug, Default)]
pub(super) struct Samples {
    pub latencies_ms: Vec<f64>,
    /// Membership checks only: from the request's send to its answer (the daemon's and the
    /// transport's share, without the client's timer lag: tokio's timer fires ticks due
    /// every 200 µs in bursts once per millisecond).
    pub service_ms: Vec<f64>,
    pub errors: u64,
    /// The first few errors, for diagnosis.
    pub error_samples: Vec<String>,
}

impl Samples {
    fn error(&mut self, what: impl std::fmt::Display) {
        self.errors += 1;
        if self.error_samples.len() < 3 {
            self.error_samples.push(what.to_string());
        }
    }
}

/// Sends `rate` membership checks per second (GetCustomerAudiences on customers of the
/// synthetic shop, found or not yet) until `stop` is set.
pub(super) async fn membership_checks(
    client: Queries,
    rate: u64,
    customers: u64,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Samples {
    let samples = Arc::new(Mutex::new(Samples::default()));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut n: u64 = 0;
    let mut inflight = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        let due = tick.tick().await;
        n = n.wrapping_add(1);
        // A fixed stride through the population, so the checks spread over all customers.
        let index = n.wrapping_mul(7_919) % customers.max(1);
        let mut client = client.clone();
        let samples = Arc::clone(&samples);
        inflight.spawn(async move {
            let request = GetCustomerAudiencesRequest {
                customer_id: format!("cus{seed}-{index:07}"),
            };
            let sent = Instant::now();
            let outcome = client.get_customer_audiences(request).await;
            let ms = due.elapsed().as_secs_f64() * 1e3;
            let service = sent.elapsed().as_secs_f64() * 1e3;
            let mut s = samples.lock().await;
            match outcome {
                Err(status) if status.code() != tonic::Code::NotFound => {
                    s.error(format!("{:?}: {}", status.code(), status.message()))
                }
                _ => {
                    s.latencies_ms.push(ms);
                    s.service_ms.push(service);
                }
            }
        });
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
    let mut s = samples.lock().await;
    std::mem::take(&mut *s)
}

/// Every `1 / per_sec` seconds, places a first order for a fresh probe customer and polls
/// until the daemon reports the customer with a lifecycle stage: the time from sending the
/// event to the first answer that shows the change.
pub(super) async fn visibility_probes(
    mut ingest: Ingest,
    queries: Queries,
    per_sec: u64,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Samples {
    let mut samples = Samples::default();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec as f64));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        n += 1;
        let customer_id = format!("probe{seed}-{nonce}-{n}");
        let started = Instant::now();
        let batch = EventBatch {
            batch_id: n,
            events: vec![probe_order(&customer_id)],
        };
        if let Err(status) = ingest.ingest_batch(batch).await {
            samples.error(format!("{:?}: {}", status.code(), status.message()));
            continue;
        }
        match visible(queries.clone(), &customer_id, started).await {
            Some(ms) => samples.latencies_ms.push(ms),
            None => samples.error("not visible within 30 s"),
        }
    }
    samples
}

/// Polls until `customer_id` is known with a lifecycle stage; milliseconds since `started`.
async fn visible(mut queries: Queries, customer_id: &str, started: Instant) -> Option<f64> {
    while started.elapsed() < PROBE_DEADLINE {
        let request = GetCustomerAudiencesRequest {
            customer_id: customer_id.to_owned(),
        };
        if let Ok(answer) = queries.get_customer_audiences(request).await {
            if !answer.into_inner().lifecycle_stage.is_empty() {
                return Some(started.elapsed().as_secs_f64() * 1e3);
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    None
}

/// A first order, placed now, for a customer nobody else writes to.
fn probe_order(customer_id: &str) -> Event {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Event {
        event_id: format!("{customer_id}-order"),
        occurred_at: Some(prost_types::Timestamp {
            seconds: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            nanos: 0,
        }),
        kind: Some(Kind::OrderPlaced(OrderPlaced {
            order_id: format!("{customer_id}-o1"),
            customer_id: customer_id.to_owned(),
            total: Some(Money {
                amount_minor: 1_000,
                currency: "USD".into(),
            }),
            item_count: 1,
        })),
    }
}
