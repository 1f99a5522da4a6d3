//! `audiencesync feed`: streams a synthetic shop's events into a running daemon.
//!
//! It is the demo data source and the ingest load generator in one. Events come from a seeded
//! [`Generator`] on its own thread, so generation overlaps sending (in `--order time` the shop
//! is generated and sorted before the clock starts, and only decoding overlaps); each of
//! `streams` gRPC streams keeps up to `in_flight` batches unacknowledged, so the daemon always
//! has work queued while the client measures each batch's send→ack latency.

mod generate;
mod probe;
mod report;
mod stream;

pub use generate::{Generator, Order, TimeOrdered};
pub use report::{print_report, FeedReport, ReadReport};

use std::error::Error as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, Mutex};
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;

use crate::client::stream::IngestClient;
use crate::client::{normalize_addr, Auth};
use crate::proto::v1::audience_service_client::AudienceServiceClient;
use crate::proto::v1::ingest_service_client::IngestServiceClient;

/// Command-line arguments of `audiencesync feed`.
#[derive(Debug, Clone, clap::Args)]
pub struct FeedArgs {
    /// gRPC address of the daemon (`http://` is assumed when no scheme is given).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// Number of synthetic customers; the event count follows (about 18 per customer).
    #[arg(long, default_value_t = 1000)]
    pub customers: u64,
    /// Seed of the synthetic shop: the same seed sends the same events (and ids).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// `grouped`: each customer's events together; `time`: the same events in time order,
    /// every customer interleaved, delivered up to 2 minutes late, as a live shop sends them
    /// (generated and sorted before the clock starts).
    #[arg(long, value_enum, default_value_t = Order::Grouped)]
    pub order: Order,
    /// Events per batch.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Batches sent but not yet acknowledged, per stream.
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// Concurrent `StreamEvents` streams, each on its own connection.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Target events per second over all streams; unset sends as fast as acks allow.
    #[arg(long)]
    pub rate: Option<u64>,
    /// File holding a bearer token, sent as `authorization: Bearer <token>`.
    #[arg(long)]
    pub bearer_token_file: Option<std::path::PathBuf>,
    /// Print the final report as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// While the feed runs, also send this many membership checks per second
    /// (GetCustomerAudiences, open loop) and report their latency.
    #[arg(long)]
    pub query_rate: Option<u64>,
    /// While the feed runs, this many times per second place a first order for a fresh probe
    /// customer and time until an AudienceService answer shows it.
    #[arg(long)]
    pub visibility_probes: Option<u64>,
}

/// Why a feed run failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgs(String),
    /// `--addr` is not a URI.
    #[error("invalid address {addr:?}: {detail}")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// Parser error with its causes.
        detail: String,
    },
    /// The TCP/HTTP2 connection could not be established.
    #[error("cannot connect to {addr}: {detail}")]
    Connect {
        /// The address dialled.
        addr: String,
        /// Transport error with its causes.
        detail: String,
    },
    /// The token file could not be read.
    #[error("cannot read bearer token file {path}: {source}")]
    TokenFile {
        /// The file given.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The token cannot be sent as a header (never echoes the token).
    #[error("bearer token unusable: {0}")]
    InvalidToken(&'static str),
    /// The daemon (or the transport under it) ended the call with an error status.
    #[error("StreamEvents failed: {code:?}: {message}{hint}")]
    Rpc {
        /// gRPC status code.
        code: tonic::Code,
        /// Status message with transport causes, if any.
        message: String,
        /// What to check, for the codes whose cause is usually on the caller's side.
        hint: &'static str,
    },
    /// An ack arrived with no batch outstanding.
    #[error("daemon acknowledged batch {batch_id}, but no batch was outstanding")]
    UnexpectedAck {
        /// The `batch_id` in the ack.
        batch_id: u64,
    },
    /// Acks must come in order, one per batch.
    #[error("acks out of order: expected batch {expected}, got {got}")]
    AckMismatch {
        /// The oldest unacknowledged batch.
        expected: u64,
        /// The `batch_id` in the ack.
        got: u64,
    },
    /// The daemon ended the stream before the feed was done.
    #[error("daemon closed the stream early ({unacked} batch(es) sent but unacknowledged)")]
    StreamClosed {
        /// Batches sent but never acknowledged.
        unacked: usize,
    },
    /// The generator thread or a stream task died.
    #[error("feed task failed: {0}")]
    Task(String),
}

impl FeedError {
    fn rpc(status: tonic::Status) -> Self {
        let mut message = status.message().to_owned();
        if let Some(source) = status.source() {
            message.push_str(": ");
            message.push_str(&error_chain(source));
        }
        let hint = match status.code() {
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                " (check --bearer-token-file)"
            }
            tonic::Code::Unavailable => " (is the daemon running at --addr?)",
            tonic::Code::ResourceExhausted => " (try a smaller --batch-size)",
            _ => "",
        };
        FeedError::Rpc {
            code: status.code(),
            message,
            hint,
        }
    }
}

/// `err: cause: cause…`, since tonic's transport errors say little at the top level.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let part = e.to_string();
        // hyper repeats some causes verbatim one level down.
        if !out.ends_with(&part) {
            out.push_str(": ");
            out.push_str(&part);
        }
        cur = e.source();
    }
    out
}

/// Streams the synthetic shop to the daemon at `args.addr` and sums its acks.
///
/// All connections are made before the first event is sent, so a wrong address fails fast.
pub async fn run(args: FeedArgs) -> Result<FeedReport, FeedError> {
    validate(&args)?;
    let auth = Auth(read_token(args.bearer_token_file.as_deref())?);
    let addr = normalize_addr(&args.addr);
    let endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|e| FeedError::InvalidAddress {
            addr: args.addr.clone(),
            detail: error_chain(&e),
        })?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);

    let mut clients: Vec<IngestClient> = Vec::with_capacity(args.streams);
    for _ in 0..args.streams {
        let channel = endpoint.connect().await.map_err(|e| FeedError::Connect {
            addr: addr.clone(),
            detail: error_chain(&e),
        })?;
        clients.push(IngestServiceClient::with_interceptor(channel, auth.clone()));
    }

    // Time order sorts the whole shop up front: before the reads and the clock start.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let (customers, seed, order, batch_size) =
        (args.customers, args.seed, args.order, args.batch_size);
    let batches = tokio::task::spawn_blocking(move || {
        Generator::new(customers, seed, now).into_batches(order, batch_size)
    })
    .await
    .map_err(|e| FeedError::Task(format!("generator: {e}")))?;

    let stop_reads = Arc::new(AtomicBool::new(false));
    let mut reads = tokio::task::JoinSet::new();
    if args.query_rate.is_some() || args.visibility_probes.is_some() {
        // Reads get their own connection, as another service's client would.
        let channel = endpoint.connect().await.map_err(|e| FeedError::Connect {
            addr: addr.clone(),
            detail: error_chain(&e),
        })?;
        let queries = AudienceServiceClient::with_interceptor(channel.clone(), auth.clone());
        if let Some(rate) = args.query_rate {
            let stop = Arc::clone(&stop_reads);
            let (queries, customers, seed) = (queries.clone(), args.customers, args.seed);
            reads.spawn(async move {
                let s = probe::membership_checks(queries, rate, customers, seed, stop).await;
                (true, s)
            });
        }
        if let Some(per_sec) = args.visibility_probes {
            let stop = Arc::clone(&stop_reads);
            let ingest = IngestServiceClient::with_interceptor(channel, auth.clone());
            let seed = args.seed;
            reads.spawn(async move {
                let s = probe::visibility_probes(ingest, queries, per_sec, seed, stop).await;
                (false, s)
            });
        }
    }

    // A few batches ready per stream beyond its window, so sending never waits on generation.
    let (tx, rx) = mpsc::channel(
        args.streams
            .saturating_mul(args.in_flight.saturating_add(2)),
    );
    let generator = tokio::task::spawn_blocking(move || {
        for batch in batches {
            if tx.blocking_send(batch).is_err() {
                break; // the feed stopped early
            }
        }
    });
    let source = Arc::new(Mutex::new(rx));

    // Per-stream period between batches, so that all streams together approach `rate`.
    let pace = args.rate.map(|rate| {
        Duration::from_secs_f64(args.batch_size as f64 * args.streams as f64 / rate as f64)
    });
    let batch_ids = Arc::new(AtomicU64::new(1));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        tasks.spawn(stream::run_stream(
            client,
            Arc::clone(&source),
            args.in_flight,
            pace,
            Arc::clone(&batch_ids),
        ));
    }
    drop(source);

    let mut outcomes = Vec::with_capacity(args.streams);
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.map_err(|e| FeedError::Task(format!("stream task: {e}")))??;
        outcomes.push(outcome);
    }
    let elapsed = started.elapsed().as_secs_f64();
    generator
        .await
        .map_err(|e| FeedError::Task(format!("generator: {e}")))?;
    stop_reads.store(true, Ordering::Relaxed);
    let mut read_samples = Vec::new();
    while let Some(joined) = reads.join_next().await {
        read_samples.push(joined.map_err(|e| FeedError::Task(format!("read load: {e}")))?);
    }
    let mut r = report::totals(outcomes, elapsed);
    r.order = match args.order {
        Order::Grouped => "grouped",
        Order::Time => "time",
    }
    .to_owned();
    if !read_samples.is_empty() {
        r.reads = Some(report::read_totals(read_samples));
    }
    Ok(r)
}

fn validate(args: &FeedArgs) -> Result<(), FeedError> {
    let bad = |what: &str| Err(FeedError::InvalidArgs(what.to_owned()));
    if args.batch_size == 0 {
        return bad("--batch-size must be at least 1");
    }
    if args.in_flight == 0 {
        return bad("--in-flight must be at least 1");
    }
    if args.streams == 0 {
        return bad("--streams must be at least 1");
    }
    if args.rate == Some(0) {
        return bad("--rate must be at least 1 (leave it unset for no limit)");
    }
    if args.query_rate == Some(0) || args.visibility_probes == Some(0) {
        return bad("--query-rate and --visibility-probes must be at least 1 (or unset)");
    }
    Ok(())
}

fn read_token(
    path: Option<&std::path::Path>,
) -> Result<Option<MetadataValue<tonic::metadata::Ascii>>, FeedError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let raw = std::fs::read_to_string(path).map_err(|source| FeedError::TokenFile {
        path: path.to_owned(),
        source,
    })?;
    let token = raw.trim();
    if token.is_empty() {
        return Err(FeedError::InvalidToken("the file is empty"));
    }
    let mut value = MetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| FeedError::InvalidToken("it contains characters not allowed in a header"))?;
    value.set_sensitive(true);
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::report::percentile;
    use super::stream::StreamOutcome;
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.50), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.9), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn report_sums_streams() {
        let a = StreamOutcome {
            events: 10,
            batches: 2,
            applied: 9,
            duplicates: 1,
            latencies_ms: vec![1.0, 3.0],
            ..Default::default()
        };
        let b = StreamOutcome {
            events: 5,
            batches: 1,
            applied: 4,
            rejected: 1,
            warnings: 2,
            latencies_ms: vec![2.0],
            rejection_samples: vec!["x".into()],
            warning_samples: vec!["y".into()],
            ..Default::default()
        };
        let r = report::totals(vec![a, b], 0.5);
        assert_eq!((r.events_sent, r.batches, r.applied), (15, 3, 13));
        assert_eq!((r.duplicates, r.rejected, r.warnings), (1, 1, 2));
        assert_eq!(r.warning_samples, vec!["y".to_string()]);
        assert_eq!(r.events_per_sec, 30.0);
        assert_eq!((r.ack_latency_ms_p50, r.ack_latency_ms_max), (2.0, 3.0));
        assert_eq!(r.rejection_samples.len(), 1);
    }

    fn args() -> FeedArgs {
        FeedArgs {
            addr: "http://127.0.0.1:1".into(),
            customers: 10,
            seed: 1,
            order: Order::Grouped,
            batch_size: 10,
            in_flight: 1,
            streams: 1,
            rate: None,
            bearer_token_file: None,
            json: false,
            query_rate: None,
            visibility_probes: None,
        }
    }

    #[test]
    fn rejects_zero_arguments() {
        for f in [
            |a: &mut FeedArgs| a.batch_size = 0,
            |a: &mut FeedArgs| a.in_flight = 0,
            |a: &mut FeedArgs| a.streams = 0,
            |a: &mut FeedArgs| a.rate = Some(0),
        ] {
            let mut a = args();
            f(&mut a);
            assert!(matches!(validate(&a), Err(FeedError::InvalidArgs(_))));
        }
        assert!(validate(&args()).is_ok());
    }

    #[test]
    fn token_file_is_trimmed_and_checked() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n")?;
        let value = read_token(Some(&path))?.ok_or("no token")?;
        assert_eq!(value.to_str()?, "Bearer s3cret");
        std::fs::write(&path, "  \n")?;
        assert!(matches!(
            read_token(Some(&path)),
            Err(FeedError::InvalidToken(_))
        ));
        assert!(matches!(
            read_token(Some(&dir.path().join("missing"))),
            Err(FeedError::TokenFile { .. })
        ));
        Ok(())
    }

    #[tokio::test]
    async fn unreachable_daemon_is_a_connect_error() {
        // Port 1 on loopback refuses connections.
        let err = run(args()).await.err();
        assert!(
            matches!(err, Some(FeedError::Connect { .. })),
            "got {err:?}"
        );
    }

    /// A stand-in daemon: dedups by event id, acks in order, and can misbehave on request.
    mod fake {
        use std::collections::HashSet;
        use std::pin::Pin;
        use std::sync::Arc;

        use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
        use tokio_stream::Stream;
        use tonic::{Request, Response, Status, Streaming};

        use crate::proto::v1::ingest_service_server::{IngestService, IngestServiceServer};
        use crate::proto::v1::{BatchAck, EventBatch};

        #[derive(Clone, Copy, PartialEq)]
        pub enum Mode {
            Normal,
            WrongBatchId,
            CloseAfterFirstAck,
        }

        #[derive(Clone)]
        pub struct Fake {
            pub mode: Mode,
            pub token: Option<&'static str>,
            pub seen: Arc<parking_lot::Mutex<HashSet<String>>>,
        }

        type Acks = Pin<Box<dyn Stream<Item = Result<BatchAck, Status>> + Send>>;

        #[tonic::async_trait]
        impl IngestService for Fake {
            type StreamEventsStream = Acks;

            async fn stream_events(
                &self,
                req: Request<Streaming<EventBatch>>,
            ) -> Result<Response<Acks>, Status> {
                if let Some(token) = self.token {
                    let got = req
                        .metadata()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok());
                    if got != Some(&format!("Bearer {token}")) {
                        return Err(Status::unauthenticated("missing or wrong token"));
                    }
                }
                let mut inbound = req.into_inner();
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                let (mode, seen) = (self.mode, Arc::clone(&self.seen));
                tokio::spawn(async move {
                    while let Ok(Some(batch)) = inbound.message().await {
                        let mut ack = BatchAck {
                            batch_id: batch.batch_id,
                            ..Default::default()
                        };
                        for ev in batch.events {
                            if seen.lock().insert(ev.event_id) {
                                ack.applied += 1;
                            } else {
                                ack.duplicates += 1;
                            }
                        }
                        if mode == Mode::WrongBatchId {
                            ack.batch_id += 1000;
                        }
                        if tx.send(Ok(ack)).await.is_err() || mode == Mode::CloseAfterFirstAck {
                            break;
                        }
                    }
                });
                Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
            }

            async fn ingest_batch(
                &self,
                _req: Request<EventBatch>,
            ) -> Result<Response<BatchAck>, Status> {
                Err(Status::unimplemented("not in the fake"))
            }
        }

        /// Serves `fake` on a free loopback port; returns its address.
        pub async fn serve(fake: Fake) -> std::io::Result<String> {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(IngestServiceServer::new(fake))
                    .serve_with_incoming(TcpListenerStream::new(listener)),
            );
            Ok(format!("http://{addr}"))
        }
    }

    fn fake(mode: fake::Mode, token: Option<&'static str>) -> fake::Fake {
        fake::Fake {
            mode,
            token,
            seen: Default::default(),
        }
    }

    #[tokio::test]
    async fn feeds_everything_over_several_streams() -> Result<(), Box<dyn std::error::Error>> {
        let server = fake(fake::Mode::Normal, Some("s3cret"));
        let seen = Arc::clone(&server.seen);
        let dir = tempfile::tempdir()?;
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n")?;
        let args = FeedArgs {
            addr: fake::serve(server).await?,
            customers: 300,
            batch_size: 128,
            in_flight: 3,
            streams: 2,
            bearer_token_file: Some(token),
            ..args()
        };

        // The event count does not depend on `now` (see the generator's tests).
        let events: Vec<_> = Generator::new(300, args.seed, 0)
            .batches(1)
            .flatten()
            .collect();
        let total = events.len() as u64;
        let r = run(args).await?;
        let unique = seen.lock().len() as u64;
        assert_eq!(r.events_sent, total);
        assert_eq!(r.batches, total.div_ceil(128));
        assert_eq!(
            (r.applied, r.duplicates, r.rejected, r.warnings),
            (unique, total - unique, 0, 0),
            "{:?}",
            r.warning_samples
        );
        assert!(r.duplicates > 0, "replays reach the daemon as duplicates");
        assert!(r.ack_latency_ms_max >= r.ack_latency_ms_p50 && r.events_per_sec > 0.0);
        Ok(())
    }

    #[tokio::test]
    async fn rate_paces_the_feed() -> Result<(), Box<dyn std::error::Error>> {
        let args = FeedArgs {
            addr: fake::serve(fake(fake::Mode::Normal, None)).await?,
            customers: 30,
            batch_size: 50,
            rate: Some(2_000),
            ..args()
        };
        let r = run(args).await?;
        // The first batch goes at once, each later one 25 ms after the previous.
        let floor = (r.batches - 1) as f64 * 0.025 * 0.9;
        assert!(r.batches > 5 && r.elapsed_secs >= floor, "{r:?}");
        Ok(())
    }

    #[tokio::test]
    async fn daemon_errors_become_feed_errors() -> Result<(), Box<dyn std::error::Error>> {
        let addr = fake::serve(fake(fake::Mode::Normal, Some("s3cret"))).await?;
        let err = run(FeedArgs { addr, ..args() }).await.err();
        assert!(
            matches!(
                err,
                Some(FeedError::Rpc {
                    code: tonic::Code::Unauthenticated,
                    ..
                })
            ),
            "{err:?}"
        );

        let addr = fake::serve(fake(fake::Mode::WrongBatchId, None)).await?;
        let err = run(FeedArgs { addr, ..args() }).await.err();
        assert!(
            matches!(err, Some(FeedError::AckMismatch { .. })),
            "{err:?}"
        );

        let addr = fake::serve(fake(fake::Mode::CloseAfterFirstAck, None)).await?;
        let err = run(FeedArgs {
            addr,
            customers: 100,
            ..args()
        })
        .await
        .err();
        assert!(
            matches!(err, Some(FeedError::StreamClosed { .. })),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn json_report_has_the_documented_fields() -> Result<(), serde_json::Error> {
        let v = serde_json::to_value(FeedReport::default())?;
        for key in [
            "order",
            "events_sent",
            "batches",
            "applied",
            "duplicates",
            "rejected",
            "warnings",
            "elapsed_secs",
            "events_per_sec",
            "ack_latency_ms_p50",
            "ack_latency_ms_p90",
            "ack_latency_ms_p99",
            "ack_latency_ms_max",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        Ok(())
    }
}
