//! The stream side of an import: the connection, and the batches sent through the shared
//! windowed client ([`crate::client::stream`]), each counted only once its ack came back.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::transport::Endpoint;

use super::read::Batch;
use super::{ImportArgs, ImportError, ImportReport, Loc};
use crate::client::stream::{AckError, IngestClient, Window};
use crate::client::{normalize_addr, Auth};
use crate::proto::v1::ingest_service_client::IngestServiceClient;
use crate::proto::v1::{BatchAck, EventBatch};

/// Connects to the daemon of `args.target` with its token.
pub(super) async fn connect(args: &ImportArgs) -> Result<IngestClient, ImportError> {
    let auth = Auth::from_file(args.target.token_file.as_deref()).map_err(|reason| {
        ImportError::Token {
            path: args.target.token_file.clone().unwrap_or_default(),
            reason,
        }
    })?;
    let addr = normalize_addr(&args.target.addr);
    let endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|e| ImportError::Args(format!("invalid address {addr:?}: {e}")))?
        .connect_timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|e| ImportError::Connect {
        addr: addr.clone(),
        detail: error_chain(&e),
    })?;
    Ok(IngestServiceClient::with_interceptor(channel, auth)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}

/// `err: cause: cause…`, since tonic's transport errors say little at the top level.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Shared state of the sending half, the ack half and the progress display.
pub(super) struct Shared {
    /// Batches sent and not yet acknowledged, with where their events came from.
    pub(super) window: Window<Vec<Loc>>,
    pub(super) report: parking_lot::Mutex<ImportReport>,
    /// A strict-mode stop: the first bad row.
    pub(super) strict_stop: parking_lot::Mutex<Option<String>>,
    files: Vec<PathBuf>,
    strict: bool,
    abort_after_acks: Option<u64>,
    acks: AtomicU64,
}

impl Shared {
    pub(super) fn new(args: &ImportArgs) -> Self {
        Self {
            window: Window::new(args.in_flight),
            report: parking_lot::Mutex::new(ImportReport::default()),
            strict_stop: parking_lot::Mutex::new(None),
            files: args.files.clone(),
            strict: args.strict,
            abort_after_acks: args.abort_after_acks,
            acks: AtomicU64::new(0),
        }
    }
}

/// Sends batches while the window allows; records parse errors as they pass.
pub(super) async fn send_batches(
    tx: mpsc::Sender<EventBatch>,
    mut batches: mpsc::Receiver<Batch>,
    shared: &Shared,
) -> Result<(), ImportError> {
    let mut next_id = 1u64;
    while let Some(batch) = batches.recv().await {
        if shared.strict_stop.lock().is_some() {
            break;
        }
        shared.report.lock().rows += batch.rows;
        let mut strict_bad = None;
        for (loc, bad) in &batch.bad {
            let line = shared
                .report
                .lock()
                .bad(&shared.files, *loc, &bad.field, &bad.reason);
            if shared.strict && strict_bad.is_none() {
                strict_bad = Some(line);
            }
        }
        if !batch.events.is_empty() {
            // Closed by the ack reader when the response stream is over.
            if !shared.window.reserve().await {
                break;
            }
            let batch_id = next_id;
            next_id += 1;
            if !shared
                .window
                .send(&tx, batch_id, batch.events, batch.locs)
                .await
            {
                break;
            }
        }
        if let Some(line) = strict_bad {
            // The events before the bad row are sent; their acks still count.
            let mut stop = shared.strict_stop.lock();
            if stop.is_none() {
                *stop = Some(line);
            }
            break;
        }
    }
    // Dropping `tx` ends the request stream: the daemon finishes after the last ack.
    Ok(())
}

/// Opens the call and counts each ack against the rows of its batch until the daemon ends
/// the response stream.
pub(super) async fn read_acks(
    client: &mut IngestClient,
    rx: mpsc::Receiver<EventBatch>,
    shared: &Shared,
) -> Result<(), ImportError> {
    shared
        .window
        .read_acks(client, rx, |ack, locs| {
            count_ack(shared, ack, &locs);
            Ok::<(), ImportError>(())
        })
        .await
}

/// Adds one ack to the report; `locs` are where its batch's events came from.
fn count_ack(shared: &Shared, ack: &BatchAck, locs: &[Loc]) {
    {
        let mut report = shared.report.lock();
        report.events += locs.len() as u64;
        report.applied += u64::from(ack.applied);
        report.duplicates += u64::from(ack.duplicates);
        for r in &ack.rejected {
            let loc = locs.get(r.index as usize).copied().unwrap_or(Loc {
                file: u32::MAX,
                line: 0,
            });
            let line = report.bad(&shared.files, loc, &r.field, &r.reason);
            if shared.strict {
                let mut stop = shared.strict_stop.lock();
                if stop.is_none() {
                    *stop = Some(line);
                }
            }
        }
        // A warning is not a bad row: the event was applied, only the field is
        // missing, so `--strict` goes on.
        for w in &ack.warnings {
            let loc = locs.get(w.index as usize).copied().unwrap_or(Loc {
                file: u32::MAX,
                line: 0,
            });
            report.warned(&shared.files, loc, &w.field, &w.code, &w.reason);
        }
    }
    let acked = shared.acks.fetch_add(1, Ordering::Relaxed) + 1;
    if shared.abort_after_acks.is_some_and(|n| acked >= n) {
        eprintln!("import: aborting after {acked} acknowledged batches (--abort-after-acks)");
        std::process::exit(3);
    }
}

impl From<AckError> for ImportError {
    fn from(e: AckError) -> Self {
        match e {
            AckError::Rpc(s) => ImportError::Rpc {
                code: s.code(),
                message: s.message().to_string(),
            },
            AckError::Unexpected { .. } | AckError::OutOfOrder { .. } => {
                ImportError::Protocol(e.to_string())
            }
        }
    }
}
