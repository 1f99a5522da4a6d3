//! Local stand-ins for the ad networks audiencesync pushes to, for integration tests.
//!
//! Each fake speaks the documented wire format (see `/work/shared/adnet/*.md`), keeps the
//! resulting remote lists so a test can compare them with the expected hashed membership,
//! records every request, and injects faults from a queue.
//!
//! Fault rules shared by both fakes:
//! - `inject` queues a fault; each incoming request takes the *first* queued fault that can
//!   apply to it (faults that cannot apply, e.g. `FieldViolation` on a status poll, wait for a
//!   request they fit). The Google token endpoint never takes a fault.
//! - A fault that answers with an error (`Status`, `TooManyRequests`, `MetaThrottle`,
//!   `MetaError`, `MalformedJson`, `FieldViolation`, Meta `ExpireToken`) or `Reset` means the
//!   request was **not** processed; `Delay` sleeps and then processes the request normally.
//! - `Reset` closes the TCP connection without writing a response (recorded with status 0).
//! - `Pass` processes the request normally: queued before another fault it aims that fault at
//!   a later request. `SlowBody` processes the request and then dribbles the response body.
//! - Meta: `MetaMalformedToken` answers with an error (not processed); `MetaInvalidEntries`
//!   processes the request except its last rows.
// Each test crate uses only part of the fakes.
#![allow(dead_code)]

pub mod google;
pub mod meta;

pub use google::FakeGoogle;
pub use meta::FakeMeta;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A failure the next matching request meets, so tests can drive the client's error paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and the network's error envelope for it (not processed).
    Status(u16),
    /// Google: HTTP 429 `RESOURCE_EXHAUSTED` with `ErrorInfo.metadata.quota_limit`; with
    /// `Some(secs)` also a `Retry-After` header and a `RetryInfo` detail.
    TooManyRequests { retry_after_secs: Option<u64> },
    /// Meta throttling (80003, 17, 4, 613): HTTP 400 plus `x-business-use-case-usage` whose
    /// `estimated_time_to_regain_access` is `regain_minutes`.
    MetaThrottle { code: i64, regain_minutes: u64 },
    /// Meta: HTTP 400 with this `code`/`error_subcode`/`is_transient`.
    MetaError {
        code: i64,
        subcode: Option<i64>,
        transient: bool,
    },
    /// Close the connection without a response.
    Reset,
    /// Wait this long, then process the request normally (a slow network). Against a client
    /// timeout shorter than this, the request is processed although the client gave up.
    Delay(Duration),
    /// Process the request, then send the response body in `chunks` pieces `gap` apart (a
    /// slow or stalling body; processed whether or not the client waits for the end).
    SlowBody { chunks: usize, gap: Duration },
    /// Process the request normally; takes a place in the queue.
    Pass,
    /// HTTP 200 with a truncated JSON body (not processed).
    MalformedJson,
    /// The request's access token is treated as expired: Google 401 `UNAUTHENTICATED` (and the
    /// token stays expired, so the client must refresh), Meta 190/463 for this request only.
    ExpireToken,
    /// Google ingest/remove: fast-fail 400 whose `fieldViolations` names
    /// `audience_members[member_index]`; nothing is applied.
    FieldViolation { member_index: usize },
    /// Google ingest/remove/removeAll: accepted with a `requestId`, but `requestStatus` reads
    /// `FAILED` and nothing is applied.
    RequestFailed,
    /// Google ingest/remove: accepted, but the request's last `refuse` members are not applied
    /// and its status reads `PARTIAL_SUCCESS` (`FAILED` if that is all of them) with
    /// `errorInfo.errorCounts` `{recordCount: refuse, reason}`.
    PartialSuccess { refuse: usize, reason: String },
    // Meta
    /// Meta `/users` or `/usersreplace`: the request's last `count` rows are reported invalid
    /// (`num_invalid_entries`, `invalid_entry_samples`) and not stored; the rest is processed.
    MetaInvalidEntries { count: usize },
    /// Meta: HTTP 400 190 "Malformed access token <the token received>", as the Graph API
    /// answers a token it cannot parse (not processed).
    MetaMalformedToken,
}

/// One request as the fake saw it, so tests can assert on pacing, retries and batching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// When the request arrived.
    pub at: Instant,
    /// The HTTP status returned; 0 when the connection was reset without a response.
    pub status: u16,
    /// Audience members (Google) or payload rows (Meta) in the request, 0 if none or unreadable.
    pub members: usize,
}

/// Request log and fault queue shared by a fake's handlers and its owner.
#[derive(Default)]
pub(crate) struct Journal {
    requests: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<VecDeque<Fault>>,
}

impl Journal {
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().clone()
    }

    pub(crate) fn push_fault(&self, fault: Fault) {
        self.faults.lock().push_back(fault);
    }

    pub(crate) fn pending_faults(&self) -> usize {
        self.faults.lock().len()
    }

    fn take_fault(&self, applies: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let mut faults = self.faults.lock();
        let index = faults.iter().position(applies)?;
        faults.remove(index)
    }

    fn record(&self, request: RecordedRequest) {
        self.requests.lock().push(request);
    }
}

/// What a fake does with a fault taken for a request.
pub(crate) enum FaultAction {
    /// Answer with this response instead of processing the request.
    Respond(Response),
    /// Process the request; the handler finds the fault as an [`Injected`] extension.
    Pass,
}

/// The fault the middleware handed on to a handler.
#[derive(Debug, Clone)]
pub(crate) struct Injected(pub Fault);

/// The per-network parts of the shared fault/recording middleware.
pub(crate) trait FakeApi: Send + Sync + 'static {
    fn journal(&self) -> &Journal;
    /// Whether `fault` may be applied to a request for `method path`.
    fn fault_applies(&self, fault: &Fault, method: &Method, path: &str) -> bool;
    /// How to apply `fault` (never `Reset` or `Delay`, handled generically).
    fn fault_action(&self, fault: &Fault, parts: &Parts) -> FaultAction;
    /// Audience members (or rows) in a request, for [`RecordedRequest::members`].
    fn count_members(&self, parts: &Parts, body: &[u8]) -> usize;
}

/// Largest request body the fakes read (a worst-case Google request is ~9 MB).
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// Middleware in front of every route: takes a fault, applies it, records the request.
pub(crate) async fn fault_layer<A: FakeApi>(
    State(api): State<Arc<A>>,
    request: Request,
    next: Next,
) -> Response {
    let at = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (mut parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let members = api.count_members(&parts, &body);
    let fault = api
        .journal()
        .take_fault(|f| api.fault_applies(f, &method, &path));
    let response = match fault {
        Some(Fault::Reset) => {
            api.journal().record(RecordedRequest {
                method: method.to_string(),
                path,
                at,
                status: 0,
                members,
            });
            if let Some(kill) = parts.extensions.get::<ConnKill>() {
                kill.0.notify_one();
                // The connection task drops this future together with the connection.
                std::future::pending::<()>().await;
            }
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "reset unavailable");
        }
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Some(Fault::Pass) => next.run(Request::from_parts(parts, Body::from(body))).await,
        Some(Fault::SlowBody { chunks, gap }) => {
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            slow_body(response, chunks.max(1), gap).await
        }
        Some(fault) => match api.fault_action(&fault, &parts) {
            FaultAction::Respond(response) => response,
            FaultAction::Pass => {
                parts.extensions.insert(Injected(fault));
                next.run(Request::from_parts(parts, Body::from(body))).await
            }
        },
        None => next.run(Request::from_parts(parts, Body::from(body))).await,
    };
    api.journal().record(RecordedRequest {
        method: method.to_string(),
        path,
        at,
        status: response.status().as_u16(),
        members,
    });
    response
}

/// The same response with its body sent in `chunks` pieces, `gap` before each.
async fn slow_body(response: Response, chunks: usize, gap: Duration) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let size = bytes.len().div_ceil(chunks).max(1);
    let pieces: Vec<Bytes> = bytes.chunks(size).map(Bytes::copy_from_slice).collect();
    let stream = futures::stream::unfold(pieces.into_iter(), move |mut rest| async move {
        let piece = rest.next()?;
        tokio::time::sleep(gap).await;
        Some((Ok::<_, std::convert::Infallible>(piece), rest))
    });
    // The length is no longer known up front: the body is chunked.
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from_stream(stream))
}

/// A JSON response; `body` is serialized as is.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

/// A response whose body claims to be JSON but is cut off mid-value.
pub(crate) fn truncated_json(body: &'static str) -> Response {
    let mut response = plain(StatusCode::OK, body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut response = Response::new(Body::from(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Decoded `name=value` pairs of a query string or urlencoded body.
pub(crate) fn form_pairs(input: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(input).into_owned().collect()
}

/// Lets the fault middleware close the connection a request arrived on.
#[derive(Clone)]
struct ConnKill(Arc<Notify>);

/// A fake's listening socket; dropping it stops accepting connections.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `127.0.0.1:0` and serves `router`, one task per connection.
pub(crate) async fn serve(router: Router) -> Server {
    // A full Data Manager request (10,000 members, several identifiers each) is several MB of
    // JSON; the real API's byte limit is undocumented, so accept what the member limit allows.
    let router = router.layer(axum::extract::DefaultBodyLimit::max(32 * 1024 * 1024));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0 for a fake server");
    let addr = listener.local_addr().expect("fake server address");
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, router.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    Server { addr, task }
}

async fn serve_connection(stream: TcpStream, router: Router) {
    let kill = Arc::new(Notify::new());
    let conn_kill = ConnKill(kill.clone());
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        request.extensions_mut().insert(conn_kill.clone());
        let mut router = router.clone();
        tower_service::Service::call(&mut router, request)
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        // Dropping the connection closes the socket without a response.
        _ = kill.notified() => {}
    }
}

/// The access token `FakeMeta` is started with by [`fakes_pair`].
pub const META_TOKEN: &str = "meta-system-user-token";

/// A Google and a Meta fake; Meta audiences `222` and `223` exist.
pub async fn fakes_pair() -> (FakeGoogle, FakeMeta) {
    let g = FakeGoogle::start().await;
    let m = FakeMeta::start(META_TOKEN, None).await;
    m.create_audience("222");
    m.create_audience("223");
    (g, m)
}

/// `[[destinations]]` tables for the daemon: `google` and `meta` pointing at the fakes, with
/// credential files written to `dir`, then each destination's own keys (`lists = ...`,
/// `linger`, `timeout`, ...) as given.
pub fn destinations_toml(
    dir: &std::path::Path,
    g: &FakeGoogle,
    m: &FakeMeta,
    google_keys: &str,
    meta_keys: &str,
) -> String {
    let creds = dir.join("google-oauth.json");
    std::fs::write(
        &creds,
        format!(
            r#"{{"client_id":"cid","client_secret":"csecret","refresh_token":"{}"}}"#,
            g.valid_refresh_token()
        ),
    )
    .expect("google creds");
    std::fs::write(dir.join("meta-token"), META_TOKEN).expect("meta token");
    format!(
        r#"
[[destinations]]
name = "google"
kind = "google"
api_base = "{gb}"
token_url = "{gt}"
operating_account_id = "1234567890"
credentials_file = "{creds}"
{google_keys}

[[destinations]]
name = "meta"
kind = "meta"
api_base = "{mb}"
access_token_file = "{mt}"
{meta_keys}
"#,
        gb = g.base_url,
        gt = g.token_url,
        creds = creds.display(),
        mb = m.base_url,
        mt = dir.join("meta-token").display(),
    )
}
