//! One `StreamEvents` stream: sends batches with a bounded window of unacknowledged ones and
//! matches the in-order acks back to them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Mutex, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::FeedError;
use crate::proto::v1::ingest_service_client::IngestServiceClient;
use crate::proto::v1::{Event, EventBatch};

/// Rejections (and, apart, warnings) kept per stream for the report; the counts cover all.
const REJECTION_SAMPLES: usize = 10;

/// The ingest client with the optional bearer token attached to every call.
pub(super) type Client = IngestServiceClient<InterceptedService<Channel, crate::cli::Auth>>;

/// Batches come from the one generator thread; every stream pulls the next one when it may send.
pub(super) type Source = Arc<Mutex<mpsc::Receiver<Vec<Event>>>>;

/// What one stream did.
#[derive(Debug, Default)]
pub(super) struct StreamOutcome {
    pub events: u64,
    pub batches: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Identifiers the daemon dropped from applied events (ack warnings).
    pub warnings: u64,
    pub latencies_ms: Vec<f64>,
    pub rejection_samples: Vec<String>,
    pub warning_samples: Vec<String>,
}

struct Pending {
    batch_id: u64,
    sent: Instant,
}

/// Shared between the sending and the ack-reading halves of one stream.
struct Window {
    /// One permit per batch that may still be sent before an ack comes back.
    permits: Semaphore,
    /// Batches sent and not yet acknowledged, oldest first (acks come in order).
    pending: parking_lot::Mutex<VecDeque<Pending>>,
}

/// Runs one stream until the source is drained and every batch is acknowledged.
pub(super) async fn run_stream(
    mut client: Client,
    source: Source,
    in_flight: usize,
    pace: Option<Duration>,
    batch_ids: Arc<AtomicU64>,
) -> Result<StreamOutcome, FeedError> {
    let window = Window {
        permits: Semaphore::new(in_flight),
        pending: parking_lot::Mutex::new(VecDeque::with_capacity(in_flight)),
    };
    let (tx, rx) = mpsc::channel::<EventBatch>(in_flight);
    let mut outcome = StreamOutcome::default();

    // Sending and reading run concurrently in this task: the server may hold the response
    // headers until it has seen the first batch.
    let send = send_batches(tx, &source, &window, pace, &batch_ids);
    let acks = read_acks(&mut client, rx, &window, &mut outcome);
    let (sent, ()) = tokio::try_join!(send, acks)?;

    // A clean end of the response stream is only right once everything was sent and acked.
    let unacked = window.pending.lock().len();
    if unacked > 0 || !sent.drained {
        return Err(FeedError::StreamClosed { unacked });
    }
    outcome.events = sent.events;
    outcome.batches = sent.batches;
    Ok(outcome)
}

/// What the sending half did.
struct Sent {
    events: u64,
    batches: u64,
    /// The source ran dry (rather than the call ending first).
    drained: bool,
}

/// Sends batches while the window allows.
async fn send_batches(
    tx: mpsc::Sender<EventBatch>,
    source: &Source,
    window: &Window,
    pace: Option<Duration>,
    batch_ids: &AtomicU64,
) -> Result<Sent, FeedError> {
    let mut ticker = pace.map(|period| {
        let mut t = tokio::time::interval(period);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut sent = Sent {
        events: 0,
        batches: 0,
        drained: false,
    };
    loop {
        // Closed by the ack reader when the response stream is over.
        let Ok(permit) = window.permits.acquire().await else {
            break;
        };
        permit.forget();
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        let Some(batch) = source.lock().await.recv().await else {
            sent.drained = true;
            break;
        };
        let batch_id = batch_ids.fetch_add(1, Ordering::Relaxed);
        let len = batch.len() as u64;
        window.pending.lock().push_back(Pending {
            batch_id,
            sent: Instant::now(),
        });
        if tx
            .send(EventBatch {
                batch_id,
                events: batch,
            })
            .await
            .is_err()
        {
            // tonic dropped the request stream: the call failed and the ack reader says why.
            window.pending.lock().pop_back();
            break;
        }
        sent.events += len;
        sent.batches += 1;
    }
    // Dropping `tx` here ends the request stream, so the server finishes after the last ack.
    Ok(sent)
}

/// Opens the call and consumes acks until the server ends the response stream.
async fn read_acks(
    client: &mut Client,
    rx: mpsc::Receiver<EventBatch>,
    window: &Window,
    outcome: &mut StreamOutcome,
) -> Result<(), FeedError> {
    let result = async {
        let mut acks = client
            .stream_events(ReceiverStream::new(rx))
            .await
            .map_err(FeedError::rpc)?
            .into_inner();
        while let Some(ack) = acks.message().await.map_err(FeedError::rpc)? {
            let Some(sent) = window.pending.lock().pop_front() else {
                return Err(FeedError::UnexpectedAck {
                    batch_id: ack.batch_id,
                });
            };
            if ack.batch_id != sent.batch_id {
                return Err(FeedError::AckMismatch {
                    expected: sent.batch_id,
                    got: ack.batch_id,
                });
            }
            outcome
                .latencies_ms
                .push(sent.sent.elapsed().as_secs_f64() * 1e3);
            outcome.applied += u64::from(ack.applied);
            outcome.duplicates += u64::from(ack.duplicates);
            outcome.rejected += ack.rejected.len() as u64;
            for r in &ack.rejected {
                if outcome.rejection_samples.len() >= REJECTION_SAMPLES {
                    break;
                }
                outcome.rejection_samples.push(format!(
                    "batch {} event #{} ({}): {}: {} (code {})",
                    ack.batch_id, r.index, r.event_id, r.field, r.reason, r.code
                ));
            }
            outcome.warnings += ack.warnings.len() as u64;
            for w in &ack.warnings {
                if outcome.warning_samples.len() >= REJECTION_SAMPLES {
                    break;
                }
                outcome.warning_samples.push(format!(
                    "batch {} event #{} ({}): {} dropped: {} ({})",
                    ack.batch_id, w.index, w.event_id, w.field, w.reason, w.code
                ));
            }
            window.permits.add_permits(1);
        }
        Ok(())
    }
    .await;
    // Wakes the sender if it waits for a permit that will never come.
    window.permits.close();
    result
}
