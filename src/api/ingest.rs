//! `IngestService`: validate, hand to the writer, acknowledge once durable.

use std::pin::Pin;
use std::sync::atomic::Ordering;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::Context;
use crate::ingest::validate::Dropped;
use crate::metric_names;
use crate::proto::v1::{self, ingest_service_server::IngestService};
use crate::writer::{Outcome, WriteError};

/// Batches validated and queued but not yet acknowledged, per stream. Beyond this the stream
/// stops reading, and HTTP/2 flow control slows the client down.
const STREAM_IN_FLIGHT: usize = 8;

/// The ingest service.
pub struct IngestApi {
    ctx: Context,
}

impl IngestApi {
    /// A service over the shared context.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

/// A batch split into facts for the writer and refusals for the ack.
struct Checked {
    batch_id: u64,
    facts: Vec<(u32, crate::ledger::facts::Fact)>,
    rejected: Vec<v1::Rejection>,
    /// Identifiers dropped from accepted events: the event's index and id, what was dropped.
    dropped: Vec<(u32, String, Dropped)>,
}

fn check(ctx: &Context, batch: v1::EventBatch) -> Result<Checked, Status> {
    let settings = ctx.settings();
    if batch.events.len() > settings.max_batch_events {
        return Err(Status::invalid_argument(format!(
            "events: batch of {} events exceeds the limit of {}",
            batch.events.len(),
            settings.max_batch_events
        )));
    }
    let now = ctx.clock.now();
    let mut facts = Vec::with_capacity(batch.events.len());
    let mut rejected = Vec::new();
    let mut dropped = Vec::new();
    let mut noted = Vec::new();
    for (i, ev) in batch.events.iter().enumerate() {
        let idx = u32::try_from(i).unwrap_or(u32::MAX);
        noted.clear();
        match settings.validator.validate_noting(ev, now, &mut noted) {
            Ok(f) => {
                dropped.extend(noted.drain(..).map(|d| (idx, ev.event_id.clone(), d)));
                facts.push((idx, f));
            }
            Err(e) => rejected.push(v1::Rejection {
                index: idx,
                event_id: ev.event_id.chars().take(128).collect(),
                code: tonic::Code::InvalidArgument as i32,
                field: e.field,
                reason: e.reason,
            }),
        }
    }
    if !rejected.is_empty() {
        ctx.writer
            .stats()
            .rejected
            .fetch_add(rejected.len() as u64, Ordering::Relaxed);
        tracing::debug!(
            batch_id = batch.batch_id,
            rejected = rejected.len(),
            "events rejected"
        );
    }
    Ok(Checked {
        batch_id: batch.batch_id,
        facts,
        rejected,
        dropped,
    })
}

/// The ack of a durable batch. Dropped identifiers are reported (and counted) for the events
/// applied now, not for duplicates: those were not applied again.
fn ack(c: Checked, outcome: Outcome) -> v1::BatchAck {
    let duplicate = |i: &u32| outcome.duplicates.contains(i);
    let mut warnings = Vec::with_capacity(c.dropped.len());
    for (index, event_id, d) in c.dropped {
        if !outcome.duplicates.is_empty() && duplicate(&index) {
            continue;
        }
        let code = d.error.label();
        metrics::counter!(metric_names::IDENTIFIERS_DROPPED, "field" => d.field, "reason" => code)
            .increment(1);
        warnings.push(v1::FieldWarning {
            index,
            event_id,
            field: d.field.to_owned(),
            reason: d.error.to_string(),
            code: code.to_owned(),
        });
    }
    if let Some(first) = warnings.first() {
        // Field and reason only: the values never reach a log.
        tracing::debug!(
            batch_id = c.batch_id,
            dropped = warnings.len(),
            first_field = %first.field,
            first_reason = %first.code,
            "identifiers dropped from applied events"
        );
    }
    v1::BatchAck {
        batch_id: c.batch_id,
        applied: outcome.applied,
        duplicates: u32::try_from(outcome.duplicates.len()).unwrap_or(u32::MAX),
        rejected: c.rejected,
        warnings,
    }
}

fn ledger_status(e: WriteError) -> Status {
    match e {
        WriteError::Stopped => Status::unavailable("the daemon is shutting down; retry"),
        WriteError::Persist(msg) => Status::unavailable(format!("not persisted, retry: {msg}")),
    }
}

type AckStream = Pin<Box<dyn Stream<Item = Result<v1::BatchAck, Status>> + Send>>;

#[tonic::async_trait]
impl IngestService for IngestApi {
    async fn ingest_batch(
        &self,
        request: Request<v1::EventBatch>,
    ) -> Result<Response<v1::BatchAck>, Status> {
        let batch = request.into_inner();
        let span = tracing::info_span!(
            "ingest_batch",
            batch_id = batch.batch_id,
            events = batch.events.len()
        );
        async move {
            let mut checked = check(&self.ctx, batch)?;
            let facts = std::mem::take(&mut checked.facts);
            let outcome = if facts.is_empty() {
                Outcome::default()
            } else {
                self.ctx.writer.submit(facts).await.map_err(ledger_status)?
            };
            Ok(Response::new(ack(checked, outcome)))
        }
        .instrument(span)
        .await
    }

    type StreamEventsStream = AckStream;

    async fn stream_events(
        &self,
        request: Request<Streaming<v1::EventBatch>>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        let peer = request.remote_addr();
        let mut inbound = request.into_inner();
        let ctx = self.ctx.clone();
        let (ack_tx, ack_rx) = mpsc::channel::<Result<v1::BatchAck, Status>>(STREAM_IN_FLIGHT);
        type Pending = (
            Checked,
            Option<tokio::sync::oneshot::Receiver<Result<Outcome, WriteError>>>,
        );
        let (pending_tx, mut pending_rx) =
            mpsc::channel::<Result<Pending, Status>>(STREAM_IN_FLIGHT);
        let span = tracing::info_span!("ingest_stream", peer = ?peer);

        // Reader: validate each batch and queue it at the writer, keeping order.
        tokio::spawn(
            async move {
                loop {
                    let batch = match inbound.message().await {
                        Ok(Some(b)) => b,
                        Ok(None) => break,
                        Err(status) => {
                            let _ = pending_tx.send(Err(status)).await;
                            break;
                        }
                    };
                    let item = match check(&ctx, batch) {
                        Ok(mut c) => {
                            let facts = std::mem::take(&mut c.facts);
                            if facts.is_empty() {
                                Ok((c, None))
                            } else {
                                match ctx.writer.enqueue(facts).await {
                                    Ok(rx) => Ok((c, Some(rx))),
                                    Err(e) => Err(ledger_status(e)),
                                }
                            }
                        }
                        Err(status) => Err(status),
                    };
                    let stop = item.is_err();
                    if pending_tx.send(item).await.is_err() || stop {
                        break;
                    }
                }
            }
            .instrument(span.clone()),
        );

        // Acker: answer in order, each once its batch is durable.
        tokio::spawn(
            async move {
                while let Some(item) = pending_rx.recv().await {
                    let reply = match item {
                        Err(status) => Err(status),
                        Ok((c, None)) => Ok(ack(c, Outcome::default())),
                        Ok((c, Some(rx))) => match rx.await {
                            Ok(Ok(outcome)) => Ok(ack(c, outcome)),
                            Ok(Err(e)) => Err(ledger_status(e)),
                            Err(_) => Err(ledger_status(WriteError::Stopped)),
                        },
                    };
                    let stop = reply.is_err();
                    if ack_tx.send(reply).await.is_err() || stop {
                        break;
                    }
                }
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(ack_rx))))
    }
}
