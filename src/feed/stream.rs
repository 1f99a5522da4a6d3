//! One feed stream: pulls batches from the generator, paces them when `--rate` is set, sends
//! them through the shared windowed client ([`crate::client::stream`]) and sums the acks, with
//! each batch's send→ack latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Mutex};

use super::FeedError;
use crate::client::stream::{AckError, IngestClient, Window};
use crate::proto::v1::{BatchAck, Event, EventBatch};

/// Rejections (and, apart, warnings) kept per stream for the report; the counts cover all.
const REJECTION_SAMPLES: usize = 10;

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

/// Runs one stream until the source is drained and every batch is acknowledged.
pub(super) async fn run_stream(
    mut client: IngestClient,
    source: Source,
    in_flight: usize,
    pace: Option<Duration>,
    batch_ids: Arc<AtomicU64>,
) -> Result<StreamOutcome, FeedError> {
    let window = Window::new(in_flight);
    let (tx, rx) = mpsc::channel::<EventBatch>(in_flight);
    let mut outcome = StreamOutcome::default();

    // Sending and reading run concurrently in this task: the server may hold the response
    // headers until it has seen the first batch.
    let send = send_batches(tx, &source, &window, pace, &batch_ids);
    let acks = window.read_acks(&mut client, rx, |ack, sent: Instant| {
        count_ack(&mut outcome, ack, sent);
        Ok::<(), FeedError>(())
    });
    let (sent, ()) = tokio::try_join!(send, acks)?;

    // A clean end of the response stream is only right once everything was sent and acked.
    let unacked = window.unacked();
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
    window: &Window<Instant>,
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
        if !window.reserve().await {
            break;
        }
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        let Some(batch) = source.lock().await.recv().await else {
            sent.drained = true;
            break;
        };
        let batch_id = batch_ids.fetch_add(1, Ordering::Relaxed);
        let len = batch.len() as u64;
        if !window.send(&tx, batch_id, batch, Instant::now()).await {
            // tonic dropped the request stream: the call failed and the ack reader says why.
            break;
        }
        sent.events += len;
        sent.batches += 1;
    }
    // Dropping `tx` here ends the request stream, so the server finishes after the last ack.
    Ok(sent)
}

/// Adds one ack to the stream's totals; `sent` is when its batch went out.
fn count_ack(outcome: &mut StreamOutcome, ack: &BatchAck, sent: Instant) {
    outcome
        .latencies_ms
        .push(sent.elapsed().as_secs_f64() * 1e3);
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
}

impl From<AckError> for FeedError {
    fn from(e: AckError) -> Self {
        match e {
            AckError::Rpc(status) => FeedError::rpc(status),
            AckError::Unexpected { batch_id } => FeedError::UnexpectedAck { batch_id },
            AckError::OutOfOrder { expected, got } => FeedError::AckMismatch { expected, got },
        }
    }
}
