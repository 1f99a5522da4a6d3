//! `audiencesync import`: loads a shop's history (JSON Lines, Shopify order exports, a generic
//! CSV) into a running daemon over the same `StreamEvents` stream the live services use.
//!
//! A reader thread parses the files into events (one module per format) and cuts them into
//! batches; the async side keeps a bounded window of unacknowledged batches on one stream and
//! counts a batch only once its ack came back, so an interrupted import loses nothing that was
//! counted. Event ids are derived from the source rows, so a re-run (or a resume after an
//! interruption) applies every fact once: the daemon reports the replays as duplicates.

mod csv_mapped;
mod event_json;
mod jsonl;
mod progress;
mod read;
mod report;
mod shopify;
mod stream;
mod util;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::proto::v1::{Event, EventBatch};
use progress::Progress;
use read::{read_files, Batch, Batcher};
use stream::Shared;

pub use csv_mapped::Mapping;
/// Public for the `import/jsonl decode` benchmark.
pub use jsonl::decode as decode_jsonl_line;
pub use report::ImportReport;

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One `audiencesync.v1.Event` per line, in the proto's canonical JSON mapping.
    Jsonl,
    /// Shopify admin's orders CSV export (one line per line item).
    ShopifyOrders,
    /// Orders or customers CSV with columns named by `--mapping`.
    Csv,
}

/// Command-line arguments of `audiencesync import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The files to import, in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The files' format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// TOML file naming the CSV columns (required with `--format csv`; see docs/IMPORT.md).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// The daemon, and a token with the ingest scope when it requires one.
    #[command(flatten)]
    pub target: crate::client::Target,
    /// Stop at the first bad row (parse error or daemon rejection) with a non-zero exit. An
    /// identifier the daemon dropped from an applied row (a warning) is not a bad row.
    #[arg(long)]
    pub strict: bool,
    /// Events per batch (the daemon's limit is `ingest.max_batch_events`, 10,000 by default).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Batches sent but not yet acknowledged.
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// Lower the importer's CPU priority by this much (Unix nice, 0-19; 0 keeps it). A
    /// backfill is background work: niced, it gives way to the daemon it feeds and to live
    /// traffic on the same host, and on 2 cores the import itself ran faster (the daemon's
    /// writer, its bottleneck, waited less for a core; docs/BENCHMARKS.md).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub nice: i32,
    /// Testing aid: exit abruptly (status 3) once this many batches were acknowledged, with
    /// later batches possibly in flight, as an interrupted import would.
    #[arg(long, hide = true)]
    pub abort_after_acks: Option<u64>,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// An argument is out of range or missing.
    #[error("invalid argument: {0}")]
    Args(String),
    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is unusable as a whole (e.g. a CSV header lacks a required column).
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The mapping file is invalid.
    #[error("mapping {path}: {reason}")]
    Mapping {
        /// The mapping file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The daemon could not be reached.
    #[error("cannot connect to {addr}: {detail}")]
    Connect {
        /// The address dialled.
        addr: String,
        /// Transport error with its causes.
        detail: String,
    },
    /// The token file could not be used (never echoes the token).
    #[error("token file {path}: {reason}")]
    Token {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The stream failed; batches not acknowledged were not counted.
    #[error("StreamEvents failed: {code:?}: {message}")]
    Rpc {
        /// gRPC status code.
        code: tonic::Code,
        /// Status message.
        message: String,
    },
    /// The acks did not match the batches sent.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// `--strict` and a bad row.
    #[error("stopped at the first bad row (--strict): {0}")]
    Strict(String),
}

/// Where a row came from, for reporting (never its values: they may be PII).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Loc {
    file: u32,
    line: u64,
}

/// A row the importer itself could not turn into an event.
#[derive(Debug, Clone)]
pub(crate) struct BadRow {
    line: u64,
    /// The column or JSON field at fault.
    field: String,
    /// Why; never the value.
    reason: String,
}

impl BadRow {
    pub(crate) fn new(line: u64, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            line,
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// What a format parser hands the driver.
// Events are the common case and move straight into a batch; boxing them would cost an
// allocation per event for the rare bad row's sake.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Item {
    /// An event built from the row at `line`.
    Event(u64, Event),
    /// A row that produced nothing usable.
    Bad(BadRow),
}

/// Receives the parsed items of one file; returns false to stop reading (strict mode).
pub(crate) trait Sink {
    /// One item; `pos` is the byte offset reached in the file, for progress.
    fn push(&mut self, item: Item, pos: u64) -> bool;
    /// One source row read (a row may give several events, or none).
    fn row(&mut self);
}

/// Raises the calling thread's nice value by `by` (capped at 19); threads it starts later
/// inherit it, so the binary calls this before building its runtime. Linux keeps a nice
/// value per thread. Failing to lower it is not worth stopping an import for.
pub fn lower_priority(by: i32) {
    use rustix::process::{getpriority_process, setpriority_process};
    if by <= 0 {
        return;
    }
    let lowered = getpriority_process(None)
        .and_then(|now| setpriority_process(None, now.saturating_add(by).min(19)));
    if let Err(e) = lowered {
        tracing::warn!(error = %e, "could not lower the importer's CPU priority");
    }
}

/// Runs an import to the end and returns its totals.
pub async fn run(args: ImportArgs) -> Result<ImportReport, ImportError> {
    if args.batch_size == 0 || args.batch_size > 100_000 {
        return Err(ImportError::Args("--batch-size must be 1..=100000".into()));
    }
    if args.in_flight == 0 {
        return Err(ImportError::Args("--in-flight must be at least 1".into()));
    }
    let mapping = match (&args.mapping, args.format) {
        (Some(path), Format::Csv) => Some(Mapping::load(path)?),
        (None, Format::Csv) => {
            return Err(ImportError::Args(
                "--format csv needs --mapping FILE".into(),
            ))
        }
        (Some(_), _) => {
            return Err(ImportError::Args(
                "--mapping only applies to --format csv".into(),
            ))
        }
        (None, _) => None,
    };
    for path in &args.files {
        std::fs::metadata(path).map_err(|source| ImportError::Io {
            path: path.clone(),
            source,
        })?;
    }
    let total_bytes: u64 = args
        .files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let mut client = stream::connect(&args).await?;
    let started = Instant::now();

    let read = Arc::new(AtomicU64::new(0));
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(args.in_flight.max(2));
    let reader = {
        let args = args.clone();
        let read = read.clone();
        std::thread::Builder::new()
            .name("import-reader".into())
            .spawn(move || {
                let batcher = Batcher::new(batch_tx, &args, read);
                read_files(&args, mapping.as_ref(), batcher)
            })
            .map_err(|source| ImportError::Io {
                path: PathBuf::from("<reader thread>"),
                source,
            })?
    };

    let shared = Shared::new(&args);
    let (tx, rx) = mpsc::channel::<EventBatch>(args.in_flight);
    let progress = Progress::new(total_bytes);
    let streamed = {
        let send = stream::send_batches(tx, batch_rx, &shared);
        let acks = stream::read_acks(&mut client, rx, &shared);
        let show = async {
            loop {
                tokio::time::sleep(progress.period).await;
                let r = shared.report.lock().clone();
                progress.update(&r, read.load(Ordering::Relaxed), started.elapsed());
            }
        };
        tokio::select! {
            r = async { tokio::try_join!(send, acks) } => r,
            () = show => unreachable_show(),
        }
    };
    progress.finish();
    // The reader ends once its channel is closed (stream failure) or the files are done.
    let read_result = tokio::task::spawn_blocking(move || reader.join())
        .await
        .ok()
        .and_then(|r| r.ok());
    streamed?;
    if let Some(Err(e)) = read_result {
        return Err(e);
    }
    let mut report = shared.report.lock().clone();
    report.elapsed_secs = started.elapsed().as_secs_f64();
    if let Some(stop) = shared.strict_stop.lock().clone() {
        report.print();
        return Err(ImportError::Strict(stop));
    }
    let unacked = shared.window.unacked();
    if unacked > 0 {
        return Err(ImportError::Protocol(format!(
            "the daemon ended the stream with {unacked} batch(es) unacknowledged"
        )));
    }
    Ok(report)
}

/// The progress loop never ends by itself.
fn unreachable_show() -> Result<((), ()), ImportError> {
    Err(ImportError::Protocol("progress display ended".into()))
}

/// Reads a file for a parser, naming it in the error.
pub(crate) fn open(path: &Path) -> Result<std::fs::File, ImportError> {
    std::fs::File::open(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use rustix::process::getpriority_process;

    /// The importer's threads start after `lower_priority` and run niced.
    #[test]
    fn lowered_priority_is_inherited_by_threads_started_later() {
        let (before, after, child) = std::thread::spawn(|| {
            let before = getpriority_process(None).expect("nice");
            super::lower_priority(3);
            let after = getpriority_process(None).expect("nice");
            let child = std::thread::spawn(|| getpriority_process(None).expect("nice"))
                .join()
                .expect("child");
            (before, after, child)
        })
        .join()
        .expect("thread");
        assert_eq!(after, (before + 3).min(19));
        assert_eq!(child, after);
    }
}
