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
mod shopify;
mod util;

use std::collections::{BTreeMap, VecDeque};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::proto::v1::ingest_service_client::IngestServiceClient;
use crate::proto::v1::{Event, EventBatch};

pub use csv_mapped::Mapping;
/// Public for the `import/jsonl decode` benchmark.
pub use jsonl::decode as decode_jsonl_line;

/// Bad rows printed in the summary; the counts by reason cover all of them.
const BAD_ROWS_SHOWN: usize = 20;

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
    pub target: crate::cli::Target,
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

/// A batch on its way from the reader thread to the stream.
struct Batch {
    events: Vec<Event>,
    locs: Vec<Loc>,
    /// Parse errors met while filling the batch (they come before its remaining events in
    /// strict mode, where reading stops at the first one).
    bad: Vec<(Loc, BadRow)>,
    rows: u64,
}

/// Totals of one import, from the daemon's acks and the importer's own parse errors.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImportReport {
    /// Rows (JSON lines, CSV records) read.
    pub rows: u64,
    /// Events sent and acknowledged.
    pub events: u64,
    /// Events the daemon newly applied.
    pub applied: u64,
    /// Events the daemon had seen before (already imported).
    pub duplicates: u64,
    /// Events the daemon refused plus rows the importer could not parse.
    pub rejected: u64,
    /// Rejections and parse errors by "field: reason".
    pub by_reason: BTreeMap<String, u64>,
    /// The first bad rows, as "file:line: field: reason".
    pub bad_rows: Vec<String>,
    /// Identifiers the daemon dropped from applied events (ack warnings: the row was
    /// imported without that field).
    pub warnings: u64,
    /// Warnings by "field: code".
    pub warnings_by_reason: BTreeMap<String, u64>,
    /// The first rows with a dropped identifier, as "file:line: field: reason".
    pub warned_rows: Vec<String>,
    /// Wall time.
    pub elapsed_secs: f64,
}

impl ImportReport {
    fn bad(&mut self, files: &[PathBuf], loc: Loc, field: &str, reason: &str) -> String {
        let key = format!("{field}: {reason}");
        let line = format!("{}:{}: {key}", file_name(files, loc.file), loc.line);
        *self.by_reason.entry(key).or_default() += 1;
        self.rejected += 1;
        if self.bad_rows.len() < BAD_ROWS_SHOWN {
            self.bad_rows.push(line.clone());
        }
        line
    }

    fn warned(&mut self, files: &[PathBuf], loc: Loc, field: &str, code: &str, reason: &str) {
        *self
            .warnings_by_reason
            .entry(format!("{field}: {code}"))
            .or_default() += 1;
        self.warnings += 1;
        if self.warned_rows.len() < BAD_ROWS_SHOWN {
            self.warned_rows.push(format!(
                "{}:{}: {field}: {reason}",
                file_name(files, loc.file),
                loc.line
            ));
        }
    }

    /// Prints the summary to stdout (the progress display is on stderr).
    pub fn print(&self) {
        let rate = if self.elapsed_secs > 0.0 {
            self.events as f64 / self.elapsed_secs
        } else {
            0.0
        };
        println!(
            "imported: applied={} duplicates={} rejected={} warnings={} (events={} rows={} in {:.1}s, {:.0} events/s)",
            self.applied, self.duplicates, self.rejected, self.warnings, self.events, self.rows, self.elapsed_secs, rate
        );
        if !self.by_reason.is_empty() {
            println!("rejected by reason:");
            for (reason, n) in &self.by_reason {
                println!("  {n:>8}  {reason}");
            }
            println!(
                "bad rows (first {} of {}):",
                self.bad_rows.len(),
                self.rejected
            );
            for row in &self.bad_rows {
                println!("  {row}");
            }
        }
        if !self.warnings_by_reason.is_empty() {
            println!("identifiers dropped (rows imported without them) by reason:");
            for (reason, n) in &self.warnings_by_reason {
                println!("  {n:>8}  {reason}");
            }
            println!(
                "rows with a dropped identifier (first {} of {}):",
                self.warned_rows.len(),
                self.warnings
            );
            for row in &self.warned_rows {
                println!("  {row}");
            }
        }
    }
}

fn file_name(files: &[PathBuf], idx: u32) -> String {
    files
        .get(idx as usize)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "?".into())
}

type Client = IngestServiceClient<InterceptedService<Channel, crate::cli::Auth>>;

async fn connect(args: &ImportArgs) -> Result<Client, ImportError> {
    let auth =
        crate::cli::Auth::from_file(args.target.token_file.as_deref()).map_err(|reason| {
            ImportError::Token {
                path: args.target.token_file.clone().unwrap_or_default(),
                reason,
            }
        })?;
    let addr = crate::cli::normalize_addr(&args.target.addr);
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

/// Feeds batches to the channel from the reader thread.
struct Batcher {
    tx: mpsc::Sender<Batch>,
    batch_size: usize,
    strict: bool,
    file: u32,
    cur: Batch,
    /// Bytes of the files before the current one plus the position in it.
    done_before: u64,
    read: Arc<AtomicU64>,
    /// Set once the stream side went away or strict mode hit a bad row.
    stopped: bool,
}

impl Batcher {
    fn empty(&self) -> Batch {
        Batch {
            events: Vec::with_capacity(self.batch_size),
            locs: Vec::with_capacity(self.batch_size),
            bad: Vec::new(),
            rows: 0,
        }
    }

    fn flush(&mut self) {
        if self.cur.events.is_empty() && self.cur.bad.is_empty() && self.cur.rows == 0 {
            return;
        }
        let next = self.empty();
        let batch = std::mem::replace(&mut self.cur, next);
        if self.tx.blocking_send(batch).is_err() {
            self.stopped = true;
        }
    }
}

impl Sink for Batcher {
    fn push(&mut self, item: Item, pos: u64) -> bool {
        self.read.store(self.done_before + pos, Ordering::Relaxed);
        let file = self.file;
        match item {
            Item::Event(line, event) => {
                self.cur.events.push(event);
                self.cur.locs.push(Loc { file, line });
            }
            Item::Bad(bad) => {
                self.cur.bad.push((
                    Loc {
                        file,
                        line: bad.line,
                    },
                    bad,
                ));
                if self.strict {
                    self.flush();
                    self.stopped = true;
                }
            }
        }
        if self.cur.events.len() >= self.batch_size {
            self.flush();
        }
        !self.stopped
    }

    fn row(&mut self) {
        self.cur.rows += 1;
    }
}

/// The reader thread: every file in turn through its format's parser.
fn read_files(
    args: &ImportArgs,
    mapping: Option<&Mapping>,
    mut batcher: Batcher,
) -> Result<(), ImportError> {
    for (idx, path) in args.files.iter().enumerate() {
        batcher.file = u32::try_from(idx).unwrap_or(u32::MAX);
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        match args.format {
            Format::Jsonl => jsonl::read(path, &mut batcher)?,
            Format::ShopifyOrders => shopify::read(path, &mut batcher)?,
            Format::Csv => {
                let mapping = mapping
                    .ok_or_else(|| ImportError::Args("--format csv needs --mapping FILE".into()))?;
                csv_mapped::read(path, mapping, &mut batcher)?
            }
        }
        if batcher.stopped {
            break;
        }
        batcher.done_before += size;
    }
    batcher.flush();
    Ok(())
}

struct Pending {
    batch_id: u64,
    locs: Vec<Loc>,
}

/// Shared state of the sending half, the ack half and the progress display.
struct Shared {
    permits: Semaphore,
    pending: parking_lot::Mutex<VecDeque<Pending>>,
    report: parking_lot::Mutex<ImportReport>,
    /// A strict-mode stop: the first bad row.
    strict_stop: parking_lot::Mutex<Option<String>>,
    files: Vec<PathBuf>,
    strict: bool,
    abort_after_acks: Option<u64>,
    acks: AtomicU64,
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
    let mut client = connect(&args).await?;
    let started = Instant::now();

    let read = Arc::new(AtomicU64::new(0));
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(args.in_flight.max(2));
    let reader = {
        let args = args.clone();
        let read = read.clone();
        std::thread::Builder::new()
            .name("import-reader".into())
            .spawn(move || {
                let batcher = Batcher {
                    tx: batch_tx,
                    batch_size: args.batch_size,
                    strict: args.strict,
                    file: 0,
                    cur: Batch {
                        events: Vec::new(),
                        locs: Vec::new(),
                        bad: Vec::new(),
                        rows: 0,
                    },
                    done_before: 0,
                    read,
                    stopped: false,
                };
                read_files(&args, mapping.as_ref(), batcher)
            })
            .map_err(|source| ImportError::Io {
                path: PathBuf::from("<reader thread>"),
                source,
            })?
    };

    let shared = Shared {
        permits: Semaphore::new(args.in_flight),
        pending: parking_lot::Mutex::new(VecDeque::new()),
        report: parking_lot::Mutex::new(ImportReport::default()),
        strict_stop: parking_lot::Mutex::new(None),
        files: args.files.clone(),
        strict: args.strict,
        abort_after_acks: args.abort_after_acks,
        acks: AtomicU64::new(0),
    };
    let (tx, rx) = mpsc::channel::<EventBatch>(args.in_flight);
    let progress = Progress::new(total_bytes);
    let streamed = {
        let send = send_batches(tx, batch_rx, &shared);
        let acks = read_acks(&mut client, rx, &shared);
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
    let unacked = shared.pending.lock().len();
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

/// Sends batches while the window allows; records parse errors as they pass.
async fn send_batches(
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
            let Ok(permit) = shared.permits.acquire().await else {
                break;
            };
            permit.forget();
            let batch_id = next_id;
            next_id += 1;
            shared.pending.lock().push_back(Pending {
                batch_id,
                locs: batch.locs,
            });
            if tx
                .send(EventBatch {
                    batch_id,
                    events: batch.events,
                })
                .await
                .is_err()
            {
                shared.pending.lock().pop_back();
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

/// Opens the call and consumes acks until the daemon ends the response stream.
async fn read_acks(
    client: &mut Client,
    rx: mpsc::Receiver<EventBatch>,
    shared: &Shared,
) -> Result<(), ImportError> {
    let rpc = |s: tonic::Status| ImportError::Rpc {
        code: s.code(),
        message: s.message().to_string(),
    };
    let result = async {
        let mut acks = client
            .stream_events(ReceiverStream::new(rx))
            .await
            .map_err(rpc)?
            .into_inner();
        while let Some(ack) = acks.message().await.map_err(rpc)? {
            let Some(sent) = shared.pending.lock().pop_front() else {
                return Err(ImportError::Protocol(format!(
                    "ack for batch {} with no batch outstanding",
                    ack.batch_id
                )));
            };
            if ack.batch_id != sent.batch_id {
                return Err(ImportError::Protocol(format!(
                    "acks out of order: expected batch {}, got {}",
                    sent.batch_id, ack.batch_id
                )));
            }
            {
                let mut report = shared.report.lock();
                report.events += sent.locs.len() as u64;
                report.applied += u64::from(ack.applied);
                report.duplicates += u64::from(ack.duplicates);
                for r in &ack.rejected {
                    let loc = sent.locs.get(r.index as usize).copied().unwrap_or(Loc {
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
                    let loc = sent.locs.get(w.index as usize).copied().unwrap_or(Loc {
                        file: u32::MAX,
                        line: 0,
                    });
                    report.warned(&shared.files, loc, &w.field, &w.code, &w.reason);
                }
            }
            let acked = shared.acks.fetch_add(1, Ordering::Relaxed) + 1;
            if shared.abort_after_acks.is_some_and(|n| acked >= n) {
                eprintln!(
                    "import: aborting after {acked} acknowledged batches (--abort-after-acks)"
                );
                std::process::exit(3);
            }
            shared.permits.add_permits(1);
        }
        Ok(())
    }
    .await;
    // Wakes the sender if it waits for a permit that will never come.
    shared.permits.close();
    result
}

/// Progress on stderr: a bar on a terminal, a plain line every few seconds otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    period: Duration,
    total_bytes: u64,
}

impl Progress {
    fn new(total_bytes: u64) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total_bytes);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:30} {percent:>3}% {msg} ETA {eta}")
            {
                bar.set_style(style);
            }
            Self {
                bar: Some(bar),
                period: Duration::from_millis(200),
                total_bytes,
            }
        } else {
            Self {
                bar: None,
                period: Duration::from_secs(5),
                total_bytes,
            }
        }
    }

    fn update(&self, r: &ImportReport, read: u64, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let rate = r.events as f64 / secs;
        let msg = format!(
            "rows {} events {} ({:.0}/s) applied {} dup {} rejected {} warnings {}",
            r.rows, r.events, rate, r.applied, r.duplicates, r.rejected, r.warnings
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(read);
                bar.set_message(msg);
            }
            None => {
                let eta = if read > 0 && self.total_bytes > read {
                    let left = secs * (self.total_bytes - read) as f64 / read as f64;
                    format!("{left:.0}s")
                } else {
                    "-".into()
                };
                let pct = if self.total_bytes > 0 {
                    100.0 * read as f64 / self.total_bytes as f64
                } else {
                    100.0
                };
                eprintln!("import: {pct:.0}% {msg} ETA {eta}");
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
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
