//! Fake Meta Marketing API for customer-list Custom Audiences (`/users`, `/usersreplace`).
//!
//! Wire format per `adnet/meta.md`: parameters in the query string, urlencoded, multipart or
//! JSON bodies (`payload`/`session` are JSON strings inside form fields, objects in JSON),
//! `access_token` + optional `appsecret_proof`, the Graph error envelope with every error
//! (throttling included) as HTTP 400, and the documented `/users` response.
//!
//! Decisions a test author should know:
//! - Lists change at once: `/users` add/remove on acceptance, `/usersreplace` when the batch
//!   with `last_batch_flag: true` arrives (the audience becomes the session's rows).
//! - A row is stored as its values joined with `|` in the audience's schema order; the schema
//!   is fixed by the first upload, and a later add or replace with a different column set gets
//!   2650 (the same set in another order is accepted and stored in the recorded order).
//! - A removal removes stored rows equal to a removed row or sharing a non-empty identifying
//!   value (EMAIL, PHONE, EXTERN_ID, MADID and their single-key forms): Meta matches people.
//! - Hashed values must be 64 lowercase hex or `""`; rows with a bad value (or the SHA-256 of
//!   the empty string, or no value at all) are counted in `num_invalid_entries` and skipped.
//!   `invalid_entry_samples` is a map (one of the two shapes the guide allows, §2.4) from the
//!   entry as sent (its values joined with `,`) to the reason.
//! - `/users` requires `session` as the guide marks it (§2.2): without it, code 194 naming the
//!   parameter (the Users reference's error for a missing required parameter, §5.2).
//! - More than 10,000 rows gets error 100 naming the maximum (§3). Meta documents no byte
//!   limit; [`FakeMeta::set_max_body_bytes`] sets one, answered with HTTP 413 and no Graph
//!   envelope: a body limit is enforced by the HTTP front end before the Graph layer parses
//!   any parameter, and 413 is HTTP's answer for it (RFC 9110 §15.5.14).
//! - One hourly budget for the whole fake (one ad account): every call counts, reads and
//!   refused calls too, in a rolling hour; the default is 5,000 + 40 × audiences (§5.3, the
//!   Custom Audience business-use-case limit at the default tier). Every response carries
//!   `x-business-use-case-usage`, `x-ad-account-usage` and `x-app-usage` with the percentage
//!   of that one budget used (the fake models no separate ad-account score or app budget);
//!   past 100 % every call gets 80003/2446079 with `estimated_time_to_regain_access` in
//!   minutes (§5.2, §5.4).
//! - Replace (§3): `operation_status` is 414 while a session is open and 200 once it closed;
//!   [`FakeMeta::fail_next_replace`] makes the next closing session fail (415, the audience
//!   keeps its rows). A session still open when its window (90 minutes, settable) has passed
//!   is closed with what it received, and a later batch of it gets 1870158.
//! - Audience reads (§6) return the requested fields among `id`, `name`,
//!   `approximate_count_lower_bound`/`_upper_bound` (the stored row count ± 2 %, rounded
//!   towards it, like the docs' 4,900–5,100 example), `operation_status` and
//!   `delivery_status` (300 below 100 rows, a third-party figure §3, else 200).
//!   [`FakeMeta::flag_for_integrity`] sets 471, after which uploads get 100/1713230.
//! - The token is accepted as the `access_token` parameter (query or body) or in an
//!   `Authorization: Bearer|OAuth` header.
//! - `Fault::Status(n)` answers HTTP n with code 1 (code 2 for 503, 10 for 403), transient.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use hmac::{KeyInit, Mac};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use super::{
    fault_layer, form_pairs, json_response, serve, truncated_json, FakeApi, Fault, FaultAction,
    Injected, Journal, RecordedRequest, Server,
};

const VERSION: &str = "v26.0";
const MAX_ROWS: usize = 10_000;
/// §3: a replace session closes 90 minutes after its first batch.
const REPLACE_WINDOW: Duration = Duration::from_secs(90 * 60);
/// The rate-limit window (§5.3: calls per hour).
const HOUR: Duration = Duration::from_secs(3600);
/// The business-object id keyed in `x-business-use-case-usage`.
const BUSINESS_ID: &str = "1234567890";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SINGLE_KEYS: &[&str] = &[
    "EMAIL_SHA256",
    "PHONE_SHA256",
    "MOBILE_ADVERTISER_ID",
    "EXTERN_ID",
    "UID",
];
const MULTI_KEYS: &[&str] = &[
    "EXTERN_ID",
    "EMAIL",
    "PHONE",
    "GEN",
    "DOBY",
    "DOBM",
    "DOBD",
    "LN",
    "FN",
    "FI",
    "CT",
    "ST",
    "ZIP",
    "MADID",
    "COUNTRY",
    "LOOKALIKE_VALUE",
    "DATA_PROCESSING_OPTIONS",
    "DATA_PROCESSING_OPTIONS_COUNTRY",
    "DATA_PROCESSING_OPTIONS_STATE",
    "PAGEUID",
    "APPUID",
    "EMAIL_SHA256",
    "PHONE_SHA256",
];
/// Columns sent as is, not hashed.
const UNHASHED: &[&str] = &[
    "EXTERN_ID",
    "MADID",
    "MOBILE_ADVERTISER_ID",
    "UID",
    "PAGEUID",
    "APPUID",
    "LOOKALIKE_VALUE",
    "DATA_PROCESSING_OPTIONS",
    "DATA_PROCESSING_OPTIONS_COUNTRY",
    "DATA_PROCESSING_OPTIONS_STATE",
];

/// A running fake Graph API; stops when dropped.
pub struct FakeMeta {
    /// Graph root with version to configure in the client, e.g. `http://127.0.0.1:PORT/v26.0`.
    pub base_url: String,
    state: Arc<MetaState>,
    _server: Server,
}

impl FakeMeta {
    /// Starts a fake accepting only `access_token`, and requiring `appsecret_proof` when an app
    /// secret is given.
    pub async fn start(access_token: &str, app_secret: Option<&str>) -> FakeMeta {
        let state = Arc::new(MetaState {
            journal: Journal::default(),
            access_token: access_token.to_owned(),
            app_secret: app_secret.map(str::to_owned),
            audiences: Mutex::default(),
            user_sessions: Mutex::default(),
            next_id: AtomicU64::new(1),
            hourly_budget: Mutex::new(None),
            calls: Mutex::default(),
            max_body_bytes: Mutex::new(None),
            replace_window: Mutex::new(REPLACE_WINDOW),
            fail_next_replace: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/{version}/{node}/users", post(users).delete(users))
            .route("/{version}/{node}/usersreplace", post(users_replace))
            .route("/{version}/{node}/customaudiences", post(create))
            .route("/{version}/{node}", get(read_audience))
            .fallback(unknown_path)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                fault_layer::<MetaState>,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                usage_layer,
            ))
            .with_state(state.clone());
        let server = serve(router).await;
        FakeMeta {
            base_url: format!("http://{}/{VERSION}", server.addr),
            state,
            _server: server,
        }
    }

    /// The audience's rows, each as its values joined with `|` in [`FakeMeta::schema`] order.
    pub fn audience(&self, audience_id: &str) -> BTreeSet<String> {
        self.state
            .audiences
            .lock()
            .get(audience_id)
            .map(|a| a.rows.clone())
            .unwrap_or_default()
    }

    /// The schema the audience was first filled with (`["EMAIL_SHA256"]` for single-key).
    pub fn schema(&self, audience_id: &str) -> Option<Vec<String>> {
        self.state
            .audiences
            .lock()
            .get(audience_id)
            .and_then(|a| a.schema.clone())
    }

    /// Every request received, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.journal.requests()
    }

    /// Queues a fault for the next request it applies to (see the module docs of `fakes`).
    ///
    /// Panics on Google-only faults: a test asking for one has a bug.
    pub fn inject(&self, fault: Fault) {
        assert!(
            !matches!(
                fault,
                Fault::TooManyRequests { .. }
                    | Fault::FieldViolation { .. }
                    | Fault::RequestFailed
                    | Fault::PartialSuccess { .. }
            ),
            "FakeMeta cannot inject the Google-only fault {fault:?}"
        );
        self.state.journal.push_fault(fault);
    }

    /// Injected faults no request has met yet.
    pub fn pending_faults(&self) -> usize {
        self.state.journal.pending_faults()
    }

    /// Creates an empty audience; uploads to unknown ids get error 100/33 like the real API.
    pub fn create_audience(&self, audience_id: &str) {
        self.state
            .audiences
            .lock()
            .entry(audience_id.to_owned())
            .or_default();
    }

    /// Calls allowed in a rolling hour (default 5,000 + 40 × audiences, §5.3).
    pub fn set_hourly_budget(&self, calls: usize) {
        *self.state.hourly_budget.lock() = Some(calls);
    }

    /// Largest query plus body accepted, in bytes (`None`, the default: no limit); larger
    /// requests get HTTP 413 and are not processed.
    pub fn set_max_body_bytes(&self, limit: Option<usize>) {
        *self.state.max_body_bytes.lock() = limit;
    }

    /// How long a replace session stays open after its first batch (default 90 minutes).
    pub fn set_replace_window(&self, window: Duration) {
        *self.state.replace_window.lock() = window;
    }

    /// One more replace session to close fails (each call adds one): `operation_status` 415,
    /// and the audience keeps the rows it had before the session (§3, §6).
    pub fn fail_next_replace(&self) {
        self.state.fail_next_replace.fetch_add(1, Ordering::SeqCst);
    }

    /// Flags the audience for integrity (`operation_status` 471, §6): uploads then get
    /// 100/1713230.
    pub fn flag_for_integrity(&self, audience_id: &str) {
        if let Some(audience) = self.state.audiences.lock().get_mut(audience_id) {
            audience.flagged = true;
        }
    }

    /// The audience's `operation_status` code as a read would report it.
    pub fn operation_status(&self, audience_id: &str) -> Option<i64> {
        let window = *self.state.replace_window.lock();
        let mut audiences = self.state.audiences.lock();
        let audience = audiences.get_mut(audience_id)?;
        self.state.expire_replace(audience, window);
        Some(audience.operation_status().0)
    }
}

struct MetaState {
    journal: Journal,
    access_token: String,
    app_secret: Option<String>,
    audiences: Mutex<HashMap<String, Audience>>,
    /// Rows received per `/users` session id (`num_received` is cumulative).
    user_sessions: Mutex<HashMap<i64, usize>>,
    next_id: AtomicU64,
    /// `None`: 5,000 + 40 × audiences.
    hourly_budget: Mutex<Option<usize>>,
    /// When each call of the last hour arrived, oldest first.
    calls: Mutex<VecDeque<Instant>>,
    max_body_bytes: Mutex<Option<usize>>,
    replace_window: Mutex<Duration>,
    /// Replaces still to fail.
    fail_next_replace: AtomicU64,
}

#[derive(Default)]
struct Audience {
    schema: Option<Vec<String>>,
    rows: BTreeSet<String>,
    replace: Option<Replace>,
    /// Replace sessions that received their last batch.
    finished_sessions: HashSet<i64>,
    /// Replace sessions closed by their window.
    timed_out_sessions: HashSet<i64>,
    /// The last replace session failed (415) and no replace succeeded since.
    replace_failed: bool,
    /// Flagged for integrity (471).
    flagged: bool,
}

impl Audience {
    /// `operation_status` (§6): code and description (the descriptions other than "Normal"
    /// are not documented word for word).
    fn operation_status(&self) -> (i64, &'static str) {
        if self.flagged {
            (
                471,
                "This audience was flagged for integrity review; uploads are blocked",
            )
        } else if self.replace.is_some() {
            (414, "Replace in progress")
        } else if self.replace_failed {
            (
                415,
                "Replace failed; the audience keeps its previous members",
            )
        } else {
            (200, "Normal")
        }
    }
}

/// A replace session in progress.
struct Replace {
    session_id: i64,
    started: Instant,
    schema: Vec<String>,
    rows: BTreeSet<String>,
    received: usize,
}

impl FakeApi for MetaState {
    fn journal(&self) -> &Journal {
        &self.journal
    }

    fn fault_applies(&self, fault: &Fault, _method: &Method, path: &str) -> bool {
        match fault {
            Fault::TooManyRequests { .. }
            | Fault::FieldViolation { .. }
            | Fault::RequestFailed
            | Fault::PartialSuccess { .. } => false,
            Fault::MetaInvalidEntries { .. } => {
                path.ends_with("/users") || path.ends_with("/usersreplace")
            }
            _ => true,
        }
    }

    fn fault_action(&self, fault: &Fault, _parts: &Parts) -> FaultAction {
        let error = match fault {
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let code = match status.as_u16() {
                    503 => 2,
                    403 => 10,
                    _ => 1,
                };
                let mut error = MetaError::new(code, None, message(code, None));
                error.status = status;
                error.transient = Some(code != 10);
                error
            }
            Fault::MetaThrottle {
                code,
                regain_minutes,
            } => throttle(*code, *regain_minutes),
            Fault::MetaError {
                code,
                subcode,
                transient,
            } => {
                let mut error = MetaError::new(*code, *subcode, message(*code, *subcode));
                error.transient = Some(*transient);
                error.user_text(*subcode);
                error
            }
            Fault::MalformedJson => {
                return FaultAction::Respond(truncated_json("{\"audience_id\":\"2385"))
            }
            // Handled where the parameters are read (`prelude`, `payload`).
            Fault::MetaInvalidEntries { .. } | Fault::MetaMalformedToken => {
                return FaultAction::Pass
            }
            Fault::ExpireToken => MetaError::new(
                190,
                Some(463),
                "Error validating access token: Session has expired on Wednesday, 07-Sep-16 \
                 22:00:00 PDT. The current time is Wednesday, 07-Sep-16 22:05:47 PDT."
                    .into(),
            ),
            _ => return FaultAction::Pass,
        };
        FaultAction::Respond(error.into_response())
    }

    fn count_members(&self, parts: &Parts, body: &[u8]) -> usize {
        params(&parts.uri, &parts.headers, body)
            .ok()
            .and_then(|p| json_param(&p, "payload").ok().flatten())
            .and_then(|payload| payload.get("data").and_then(Value::as_array).map(Vec::len))
            .unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An error in the Graph envelope (boxed: it travels in every `Result` of the handlers).
struct MetaError(Box<ErrorData>);

struct ErrorData {
    status: StatusCode,
    code: i64,
    subcode: Option<i64>,
    message: String,
    kind: &'static str,
    transient: Option<bool>,
    user_title: Option<&'static str>,
    user_msg: Option<&'static str>,
    headers: Vec<(HeaderName, String)>,
    /// A plain-text body instead of the Graph envelope (a front end's answer).
    plain: Option<&'static str>,
}

impl std::ops::Deref for MetaError {
    type Target = ErrorData;
    fn deref(&self) -> &ErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for MetaError {
    fn deref_mut(&mut self) -> &mut ErrorData {
        &mut self.0
    }
}

impl MetaError {
    fn new(code: i64, subcode: Option<i64>, message: String) -> Self {
        MetaError(Box::new(ErrorData {
            status: StatusCode::BAD_REQUEST,
            code,
            subcode,
            message,
            kind: "OAuthException",
            transient: None,
            user_title: None,
            user_msg: None,
            headers: vec![],
            plain: None,
        }))
    }

    fn invalid(message: impl Into<String>) -> Self {
        MetaError::new(100, None, format!("(#100) {}", message.into()))
    }

    fn audience(subcode: Option<i64>, detail: &str) -> Self {
        let mut error = MetaError::new(
            2650,
            subcode,
            format!("(#2650) Failed to update the custom audience: {detail}"),
        );
        error.user_text(subcode);
        error
    }

    /// The user-facing title and message Meta adds for some subcodes.
    fn user_text(&mut self, subcode: Option<i64>) {
        let (title, msg) = match subcode {
            Some(1870047) => ("Audience Size too Low", "You cannot remove users from this audience because it will result in a low audience size."),
            Some(1870090) | Some(1870034) => ("Custom Audience Terms Not Accepted", "You need to accept the Custom Audience Terms before you can create or edit an audience."),
            Some(1870145) => ("Audience Update In Progress", "A replace operation is already in progress for this audience."),
            Some(1870147) => ("Invalid Upload Batch for Replace", "The first batch of a replace session must have batch_seq 1."),
            Some(1870158) => ("Replace Session Timed Out", "The replace session ran longer than 90 minutes."),
            Some(1870159) => ("Replace Session Finished", "The replace session already received its last batch."),
            Some(1713230) => ("Audience Upload Blocked", "Before updating user memberships, you must resolve integrity restrictions on this Data File Custom Audience."),
            _ => return,
        };
        self.user_title = Some(title);
        self.user_msg = Some(msg);
    }

    fn into_response(self) -> Response {
        let data = *self.0;
        if let Some(text) = data.plain {
            let mut response = Response::new(axum::body::Body::from(text));
            *response.status_mut() = data.status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return response;
        }
        let mut error = Map::new();
        error.insert("message".into(), data.message.into());
        error.insert("type".into(), data.kind.into());
        error.insert("code".into(), data.code.into());
        if let Some(subcode) = data.subcode {
            error.insert("error_subcode".into(), subcode.into());
        }
        if let Some(transient) = data.transient {
            error.insert("is_transient".into(), transient.into());
        }
        if let Some(title) = data.user_title {
            error.insert("error_user_title".into(), title.into());
        }
        if let Some(msg) = data.user_msg {
            error.insert("error_user_msg".into(), msg.into());
        }
        error.insert("fbtrace_id".into(), fbtrace_id().into());
        let mut response = json_response(data.status, &json!({ "error": error }));
        let headers = response.headers_mut();
        headers.insert("facebook-api-version", HeaderValue::from_static(VERSION));
        if data.code == 190 {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "OAuth \"Facebook Platform\" \"invalid_token\" \"Error validating access token\"",
                ),
            );
        }
        for (name, value) in data.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

fn message(code: i64, subcode: Option<i64>) -> String {
    match (code, subcode) {
        (1, _) => "An unknown error occurred".into(),
        (2, _) => "An unexpected error has occurred. Please retry your request later.".into(),
        (4, _) => "(#4) Application request limit reached".into(),
        (10, _) => "(#10) Application does not have permission for this action".into(),
        (17, _) => "(#17) User request limit reached".into(),
        (100, _) => "(#100) Invalid parameter".into(),
        (190, _) => "Invalid OAuth access token - Cannot parse access token".into(),
        (200, _) => "(#200) Permissions error".into(),
        (613, _) => "(#613) Calls to this api have exceeded the rate limit.".into(),
        (2650, _) => "(#2650) Failed to update the custom audience".into(),
        (2654, _) => "(#2654) Failed to create custom audience".into(),
        (80003, _) => "(#80003) There have been too many calls to this ad-account. Wait a bit \
                       and try again. For more info, please refer to https://developers.facebook.\
                       com/docs/graph-api/overview/rate-limiting#custom-audience."
            .into(),
        (code, _) => format!("(#{code}) Error"),
    }
}

/// HTTP 400 throttling error with the usage headers a client reads its wait time from.
fn throttle(code: i64, regain_minutes: u64) -> MetaError {
    let subcode = match code {
        80003 | 17 => Some(2446079),
        613 => Some(1487742),
        _ => None,
    };
    let mut error = MetaError::new(code, subcode, message(code, subcode));
    if code == 17 {
        error.transient = Some(true);
    }
    error.headers.push((
        HeaderName::from_static("x-business-use-case-usage"),
        usage_header(code, 100, regain_minutes),
    ));
    match code {
        4 => error.headers.push((
            HeaderName::from_static("x-app-usage"),
            json!({"call_count": 100, "total_time": 25, "total_cputime": 25}).to_string(),
        )),
        17 | 613 => error.headers.push((
            HeaderName::from_static("x-ad-account-usage"),
            json!({"acc_id_util_pct": 100, "reset_time_duration": regain_minutes * 60,
                   "ads_api_access_tier": "standard_access"})
            .to_string(),
        )),
        _ => {}
    }
    error
}

/// `x-business-use-case-usage` (§5.4): custom_audience usage for 80003 and every other
/// answer (`code` 0), else ads_management with its access tier.
fn usage_header(code: i64, percent: u64, regain_minutes: u64) -> String {
    let mut usage = json!({"type": "custom_audience", "call_count": percent, "total_cputime": percent / 4,
                           "total_time": percent / 3, "estimated_time_to_regain_access": regain_minutes});
    if code != 80003 && code != 0 {
        usage["type"] = "ads_management".into();
        usage["ads_api_access_tier"] = "standard_access".into();
    }
    json!({ BUSINESS_ID: [usage] }).to_string()
}

fn fbtrace_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..11)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Parameters

/// Request parameters from the query string and the body; form values are strings.
type Params = HashMap<String, Value>;

fn params(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Params, MetaError> {
    let mut params: Params = form_pairs(uri.query().unwrap_or("").as_bytes())
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.to_ascii_lowercase();
    if body.is_empty() {
        return Ok(params);
    }
    if mime.starts_with("application/json") {
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| MetaError::invalid("Invalid JSON in the request body"))?;
        let Value::Object(map) = value else {
            return Err(MetaError::invalid(
                "The JSON request body must be an object",
            ));
        };
        params.extend(map);
    } else if mime.starts_with("multipart/form-data") {
        // The boundary is case-sensitive: take it from the original header.
        let boundary = content_type
            .split(';')
            .map(str::trim)
            .find(|p| p.len() > 9 && p[..9].eq_ignore_ascii_case("boundary="))
            .map(|p| p[9..].trim_matches('"'))
            .ok_or_else(|| MetaError::invalid("Missing multipart boundary"))?;
        let fields = multipart(body, boundary)
            .ok_or_else(|| MetaError::invalid("Malformed multipart body"))?;
        params.extend(fields.into_iter().map(|(k, v)| (k, Value::String(v))));
    } else {
        params.extend(
            form_pairs(body)
                .into_iter()
                .map(|(k, v)| (k, Value::String(v))),
        );
    }
    Ok(params)
}

/// The text fields of a `multipart/form-data` body, or `None` if it is malformed.
fn multipart(body: &[u8], boundary: &str) -> Option<Vec<(String, String)>> {
    let delimiter = format!("--{boundary}");
    let text = std::str::from_utf8(body).ok()?;
    let mut fields = vec![];
    let mut sections = text.split(delimiter.as_str());
    sections.next()?; // preamble
    for section in sections {
        if section.starts_with("--") {
            return Some(fields);
        }
        let section = section.strip_prefix("\r\n")?;
        let (head, value) = section.split_once("\r\n\r\n")?;
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("name="))
            .next()?
            .trim_matches('"')
            .to_owned();
        fields.push((name, value.strip_suffix("\r\n")?.to_owned()));
    }
    None
}

/// A parameter that holds JSON: a JSON string in form encodings, a value in JSON bodies.
fn json_param(params: &Params, name: &str) -> Result<Option<Value>, MetaError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => serde_json::from_str(text)
            .map(Some)
            .map_err(|_| MetaError::invalid(format!("param {name} must be a JSON object"))),
        Some(value) => Ok(Some(value.clone())),
    }
}

fn string_param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).and_then(Value::as_str)
}

impl MetaState {
    /// Version, size, parameters and credentials: what every endpoint checks first.
    fn prelude(
        &self,
        version: &str,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        injected: Option<&Fault>,
    ) -> Result<Params, MetaError> {
        let valid_version = version
            .strip_prefix('v')
            .and_then(|v| v.split_once('.'))
            .is_some_and(|(major, minor)| {
                !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) && minor == "0"
            });
        if !valid_version {
            return Err(unknown_path_error(uri.path()));
        }
        let size = body.len() + uri.query().map_or(0, str::len);
        if self.max_body_bytes.lock().is_some_and(|limit| size > limit) {
            let mut error = MetaError::new(0, None, String::new());
            error.status = StatusCode::PAYLOAD_TOO_LARGE;
            error.plain = Some("Request Entity Too Large");
            return Err(error);
        }
        let params = params(uri, headers, body)?;
        // Graph API calls take the token as a parameter or in an `Authorization` header.
        let header_token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("OAuth "))
            })
            .map(str::trim);
        let token = string_param(&params, "access_token").or(header_token);
        if let (Some(Fault::MetaMalformedToken), Some(token)) = (injected, token) {
            // The Graph API echoes a token it cannot parse (react-native-fbsdk#220, 190).
            return Err(MetaError::new(
                190,
                None,
                format!("Malformed access token {token}"),
            ));
        }
        match token {
            Some(token) if token == self.access_token => {}
            Some(_) => {
                return Err(MetaError::new(190, None, message(190, None)));
            }
            None => return Err(MetaError::new(
                190,
                None,
                "An active access token must be used to query information about the current user."
                    .into(),
            )),
        }
        if let Some(secret) = &self.app_secret {
            let mut error = match string_param(&params, "appsecret_proof") {
                None => MetaError::invalid(
                    "API calls from the server require an appsecret_proof argument",
                ),
                Some(proof) if proof == appsecret_proof(secret, &self.access_token) => {
                    return self.within_budget().map(|()| params)
                }
                Some(_) => {
                    MetaError::invalid("Invalid appsecret_proof provided in the API argument")
                }
            };
            error.message = error.message.replace("(#100) ", "");
            error.kind = "GraphMethodException";
            return Err(error);
        }
        self.within_budget().map(|()| params)
    }

    /// Calls allowed in a rolling hour.
    fn budget(&self) -> usize {
        self.hourly_budget
            .lock()
            .unwrap_or_else(|| 5_000 + 40 * self.audiences.lock().len())
            .max(1)
    }

    /// Counts a call (every call, §5.3) and drops those older than an hour.
    fn count_call(&self) {
        let now = Instant::now();
        let mut calls = self.calls.lock();
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= HOUR)
        {
            calls.pop_front();
        }
        calls.push_back(now);
    }

    /// (percentage of the budget used, 0–100; minutes until a call fits again, 0 when one
    /// does; seconds until the oldest counted call leaves the window).
    fn usage(&self) -> (u64, u64, u64) {
        let budget = self.budget();
        let now = Instant::now();
        let calls = self.calls.lock();
        let in_window: Vec<Instant> = calls
            .iter()
            .copied()
            .filter(|t| now.duration_since(*t) < HOUR)
            .collect();
        let used = in_window.len();
        let percent = (used * 100 / budget).min(100) as u64;
        let left_in = |t: Instant| HOUR.saturating_sub(now.duration_since(t));
        let reset = in_window.first().map_or(0, |t| left_in(*t).as_secs());
        // Over budget: the next call fits once `used - budget + 1` calls left the window.
        let regain = if used > budget {
            in_window
                .get(used - budget)
                .map_or(0, |t| left_in(*t).as_secs().div_ceil(60).max(1))
        } else {
            0
        };
        (percent, regain, reset)
    }

    /// 80003/2446079 once the hour's calls exceed the budget (§5.2).
    fn within_budget(&self) -> Result<(), MetaError> {
        let used = {
            let now = Instant::now();
            let calls = self.calls.lock();
            calls
                .iter()
                .filter(|t| now.duration_since(**t) < HOUR)
                .count()
        };
        if used <= self.budget() {
            return Ok(());
        }
        let (_, regain, _) = self.usage();
        Err(throttle(80003, regain))
    }
}

/// Counts every call against the hourly budget and puts the usage headers (§5.4) on every
/// answer that does not carry its own.
async fn usage_layer(
    State(state): State<Arc<MetaState>>,
    request: Request,
    next: Next,
) -> Response {
    state.count_call();
    let mut response = next.run(request).await;
    let (percent, regain, reset) = state.usage();
    let headers = response.headers_mut();
    let values = [
        (
            "x-business-use-case-usage",
            usage_header(0, percent, regain),
        ),
        (
            "x-ad-account-usage",
            json!({"acc_id_util_pct": percent, "reset_time_duration": reset,
                   "ads_api_access_tier": "development_access"})
            .to_string(),
        ),
        (
            "x-app-usage",
            json!({"call_count": percent, "total_time": percent / 3, "total_cputime": percent / 4})
                .to_string(),
        ),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.entry(name).or_insert(value);
        }
    }
    response
}

/// Lowercase hex HMAC-SHA256 of the access token keyed by the app secret.
pub fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(access_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn unknown_path_error(path: &str) -> MetaError {
    MetaError::new(2500, None, format!("Unknown path components: {path}"))
}

fn unsupported_post(node: &str) -> MetaError {
    let mut error = MetaError::new(
        100,
        Some(33),
        format!(
            "Unsupported post request. Object with ID '{node}' does not exist, cannot be loaded due \
             to missing permissions, or does not support this operation. Please read the Graph API \
             documentation at https://developers.facebook.com/docs/graph-api"
        ),
    );
    error.kind = "GraphMethodException";
    error
}

// ---------------------------------------------------------------------------------------------
// Payload and session

struct Payload {
    schema: Vec<String>,
    multi_key: bool,
    /// Canonical rows (values joined with `|`) of the valid rows, in schema order.
    rows: Vec<String>,
    received: usize,
    invalid: usize,
    samples: Map<String, Value>,
}

/// The `payload` parameter; with `forced_invalid`, its last that many rows count as invalid
/// entries (`Fault::MetaInvalidEntries`).
fn payload(params: &Params, forced_invalid: usize) -> Result<Payload, MetaError> {
    let Some(payload) = json_param(params, "payload")? else {
        return Err(MetaError::invalid("The parameter payload is required"));
    };
    let (schema, multi_key) = match payload.get("schema") {
        Some(Value::String(key)) if SINGLE_KEYS.contains(&key.as_str()) => {
            (vec![key.clone()], false)
        }
        Some(Value::Array(keys)) if !keys.is_empty() => {
            let mut schema = Vec::with_capacity(keys.len());
            for key in keys {
                match key.as_str() {
                    Some(k) if MULTI_KEYS.contains(&k) && !schema.iter().any(|s| s == k) => {
                        schema.push(k.to_owned())
                    }
                    _ => return Err(MetaError::invalid(format!("Invalid schema key: {key}"))),
                }
            }
            (schema, true)
        }
        Some(other) => return Err(MetaError::invalid(format!("Invalid schema: {other}"))),
        None => return Err(MetaError::invalid("payload.schema is required")),
    };
    let Some(data) = payload.get("data").and_then(Value::as_array) else {
        return Err(MetaError::invalid("payload.data must be an array"));
    };
    if data.len() > MAX_ROWS {
        return Err(MetaError::invalid(format!(
            "payload.data has {} rows, more than the maximum of {MAX_ROWS} users per request",
            data.len()
        )));
    }
    let forced_from = data.len().saturating_sub(forced_invalid);
    let mut out = Payload {
        schema,
        multi_key,
        rows: Vec::with_capacity(data.len()),
        received: data.len(),
        invalid: 0,
        samples: Map::new(),
    };
    for (index, row) in data.iter().enumerate() {
        let values: Vec<&Value> = match row {
            Value::Array(values) => values.iter().collect(),
            value if !out.multi_key => vec![value],
            _ => {
                return Err(MetaError::invalid(format!(
                    "payload.data[{index}] must be an array"
                )))
            }
        };
        if values.len() != out.schema.len() {
            return Err(MetaError::invalid(format!(
                "payload.data[{index}] has {} values but the schema has {} keys",
                values.len(),
                out.schema.len()
            )));
        }
        let verdict = match row_text(&out.schema, &values) {
            Ok(_) if index >= forced_from => Err("Invalid entry: it could not be used".into()),
            verdict => verdict,
        };
        match verdict {
            Ok(text) => out.rows.push(text),
            Err(reason) => {
                out.invalid += 1;
                // "Up to 100 samples of invalid entries found in the current request" (§2.4).
                if out.samples.len() < 100 {
                    let entry = values
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(",");
                    out.samples.insert(entry, reason.into());
                }
            }
        }
    }
    Ok(out)
}

/// The row's canonical text, or why it is an invalid entry.
fn row_text(schema: &[String], values: &[&Value]) -> Result<String, String> {
    let mut texts = Vec::with_capacity(values.len());
    for (key, value) in schema.iter().zip(values) {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !UNHASHED.contains(&key.as_str()) && !text.is_empty() {
            let hex =
                text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !hex {
                return Err(format!("{key}: not a lowercase hex SHA-256: {text}"));
            }
            if text == EMPTY_SHA256 {
                return Err(format!(
                    "{key}: SHA-256 of an empty string; send \"\" instead"
                ));
            }
        }
        texts.push(text);
    }
    if texts.iter().all(String::is_empty) {
        return Err("every value is empty".into());
    }
    Ok(texts.join("|"))
}

struct Session {
    id: i64,
    batch_seq: i64,
    last: bool,
}

fn session(params: &Params) -> Result<Option<Session>, MetaError> {
    let Some(value) = json_param(params, "session")? else {
        return Ok(None);
    };
    let int = |name: &str| match value.get(name) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let id = int("session_id")
        .filter(|id| *id > 0)
        .ok_or_else(|| MetaError::invalid("session.session_id must be a positive integer"))?;
    let batch_seq = int("batch_seq")
        .filter(|seq| *seq > 0)
        .ok_or_else(|| MetaError::invalid("session.batch_seq must be a positive integer"))?;
    let last = match value.get("last_batch_flag") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(_) => {
            return Err(MetaError::invalid(
                "session.last_batch_flag must be a boolean",
            ))
        }
    };
    Ok(Some(Session {
        id,
        batch_seq,
        last,
    }))
}

/// The payload's rows in `schema` order; `None` when the column sets differ.
fn reorder(payload: &Payload, schema: &[String]) -> Option<Vec<String>> {
    if payload.schema == schema {
        return Some(payload.rows.clone());
    }
    let same_set =
        payload.schema.len() == schema.len() && schema.iter().all(|k| payload.schema.contains(k));
    if !same_set {
        return None;
    }
    let order: Vec<usize> = schema
        .iter()
        .filter_map(|k| payload.schema.iter().position(|p| p == k))
        .collect();
    Some(
        payload
            .rows
            .iter()
            .map(|row| {
                let values: Vec<&str> = row.split('|').collect();
                order
                    .iter()
                    .map(|&i| values.get(i).copied().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect(),
    )
}

fn schema_mismatch(recorded: &[String], payload: &Payload) -> MetaError {
    let source = |multi: bool| {
        if multi {
            "FILE_IMPORTED.MULTI_HASHES"
        } else {
            "FILE_IMPORTED.HASHES_OR_USER_IDS"
        }
    };
    let recorded_multi = recorded.len() > 1
        || recorded
            .first()
            .is_some_and(|k| !SINGLE_KEYS.contains(&k.as_str()));
    MetaError::audience(
        None,
        &format!(
            "This audience was created from data source {}, which does not support data source {} \
             (schema {:?} differs from {:?}).",
            source(recorded_multi),
            source(payload.multi_key),
            payload.schema,
            recorded
        ),
    )
}

/// Identifying `(column, value)` pairs of a row: what Meta matches people on.
fn identities<'a>(
    schema: &'a [String],
    row: &'a str,
) -> impl Iterator<Item = (&'static str, &'a str)> + 'a {
    schema
        .iter()
        .zip(row.split('|'))
        .filter_map(|(key, value)| {
            let key = match key.as_str() {
                "EMAIL" | "EMAIL_SHA256" => "EMAIL",
                "PHONE" | "PHONE_SHA256" => "PHONE",
                "MADID" | "MOBILE_ADVERTISER_ID" => "MADID",
                "EXTERN_ID" => "EXTERN_ID",
                "UID" => "UID",
                _ => return None,
            };
            (!value.is_empty()).then_some((key, value))
        })
}

// ---------------------------------------------------------------------------------------------
// Handlers

fn success(audience_id: &str, session_id: i64, received: usize, payload: &Payload) -> Response {
    let mut response = json_response(
        StatusCode::OK,
        &json!({
            "audience_id": audience_id,
            "session_id": session_id.to_string(),
            "num_received": received,
            "num_invalid_entries": payload.invalid,
            "invalid_entry_samples": payload.samples,
        }),
    );
    response
        .headers_mut()
        .insert("facebook-api-version", HeaderValue::from_static(VERSION));
    response
}

/// The fault the middleware handed on, if any.
type Injection = Option<Extension<Injected>>;

fn injected(injection: &Injection) -> Option<&Fault> {
    injection.as_ref().map(|Extension(Injected(fault))| fault)
}

/// Rows a `Fault::MetaInvalidEntries` marks invalid.
fn forced_invalid(fault: Option<&Fault>) -> usize {
    match fault {
        Some(Fault::MetaInvalidEntries { count }) => *count,
        _ => 0,
    }
}

async fn users(
    State(state): State<Arc<MetaState>>,
    Path((version, node)): Path<(String, String)>,
    injection: Injection,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Incoming {
        version: &version,
        node: &node,
        uri: &uri,
        headers: &headers,
        body: &body,
        fault: injected(&injection),
    };
    state
        .users(&request, &method)
        .unwrap_or_else(MetaError::into_response)
}

async fn users_replace(
    State(state): State<Arc<MetaState>>,
    Path((version, node)): Path<(String, String)>,
    injection: Injection,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Incoming {
        version: &version,
        node: &node,
        uri: &uri,
        headers: &headers,
        body: &body,
        fault: injected(&injection),
    };
    state
        .replace(&request)
        .unwrap_or_else(MetaError::into_response)
}

/// One request to an audience edge, as the handlers received it.
struct Incoming<'a> {
    version: &'a str,
    node: &'a str,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: &'a [u8],
    fault: Option<&'a Fault>,
}

impl MetaState {
    fn prelude_for(&self, r: &Incoming) -> Result<Params, MetaError> {
        self.prelude(r.version, r.uri, r.headers, r.body, r.fault)
    }

    /// Closes a replace session whose window has passed (§2.2: "we automatically terminate
    /// the session 90 minutes after we receive your first batch").
    fn expire_replace(&self, audience: &mut Audience, window: Duration) {
        let expired = audience
            .replace
            .as_ref()
            .is_some_and(|r| r.started.elapsed() > window);
        if expired {
            if let Some(id) = self.finish_replace(audience) {
                audience.timed_out_sessions.insert(id);
            }
        }
    }

    /// Ends the replace session: the audience becomes exactly the session's rows, unless
    /// [`FakeMeta::fail_next_replace`] asked for a failure (415: the audience keeps its rows).
    /// Returns the session's id.
    fn finish_replace(&self, audience: &mut Audience) -> Option<i64> {
        let replace = audience.replace.take()?;
        if self
            .fail_next_replace
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            audience.replace_failed = true;
        } else {
            audience.rows = replace.rows;
            audience.schema = Some(replace.schema);
            audience.replace_failed = false;
        }
        audience.finished_sessions.insert(replace.session_id);
        Some(replace.session_id)
    }

    fn users(&self, r: &Incoming, method: &Method) -> Result<Response, MetaError> {
        let params = self.prelude_for(r)?;
        let node = r.node;
        let remove = method == Method::DELETE
            || string_param(&params, "method").is_some_and(|m| m.eq_ignore_ascii_case("DELETE"));
        let window = *self.replace_window.lock();
        let mut audiences = self.audiences.lock();
        let audience = audiences
            .get_mut(node)
            .ok_or_else(|| unsupported_post(node))?;
        self.expire_replace(audience, window);
        let payload = payload(&params, forced_invalid(r.fault))?;
        // §2.2: the guide marks `session` Required for `/users`.
        let Some(session) = session(&params)? else {
            return Err(MetaError::new(
                194,
                None,
                "(#194) Missing at least one required parameter: session".into(),
            ));
        };
        if audience.flagged {
            return Err(flagged());
        }
        if audience.replace.is_some() {
            return Err(MetaError::audience(
                Some(1870145),
                "a replace operation is already in progress for this audience.",
            ));
        }
        if remove {
            if let Some(schema) = &audience.schema {
                remove_rows(&mut audience.rows, schema, &payload);
            }
        } else {
            let schema = audience
                .schema
                .get_or_insert_with(|| payload.schema.clone())
                .clone();
            let rows =
                reorder(&payload, &schema).ok_or_else(|| schema_mismatch(&schema, &payload))?;
            audience.rows.extend(rows);
        }
        let received = {
            let mut sessions = self.user_sessions.lock();
            let total = sessions.entry(session.id).or_default();
            *total += payload.received;
            *total
        };
        Ok(success(node, session.id, received, &payload))
    }

    fn replace(&self, r: &Incoming) -> Result<Response, MetaError> {
        let params = self.prelude_for(r)?;
        let node = r.node;
        let window = *self.replace_window.lock();
        let mut audiences = self.audiences.lock();
        let audience = audiences
            .get_mut(node)
            .ok_or_else(|| unsupported_post(node))?;
        let Some(session) = session(&params)? else {
            return Err(MetaError::invalid("The parameter session is required"));
        };
        let payload = payload(&params, forced_invalid(r.fault))?;
        if audience.flagged {
            return Err(flagged());
        }
        let timed_out = audience
            .replace
            .as_ref()
            .is_some_and(|r| r.session_id == session.id && r.started.elapsed() > window);
        self.expire_replace(audience, window);
        if timed_out || audience.timed_out_sessions.contains(&session.id) {
            // §3: "the audience is replaced with what was uploaded so far".
            return Err(MetaError::audience(
                Some(1870158),
                "the replace session timed out.",
            ));
        }
        if audience.finished_sessions.contains(&session.id) {
            return Err(MetaError::audience(
                Some(1870159),
                "the replace session has already finished.",
            ));
        }
        let active = audience.replace.as_ref().map(|r| r.session_id);
        match active {
            Some(id) if id != session.id => {
                return Err(MetaError::audience(
                    Some(1870145),
                    "a replace operation is already in progress for this audience.",
                ))
            }
            Some(_) => {}
            None if session.batch_seq != 1 => {
                return Err(MetaError::audience(
                    Some(1870147),
                    "the first batch of the replace session (batch_seq 1) was not detected.",
                ))
            }
            None => {
                if let Some(schema) = &audience.schema {
                    if reorder(&payload, schema).is_none() {
                        return Err(schema_mismatch(schema, &payload));
                    }
                }
                audience.replace = Some(Replace {
                    session_id: session.id,
                    started: Instant::now(),
                    schema: audience
                        .schema
                        .clone()
                        .unwrap_or_else(|| payload.schema.clone()),
                    rows: BTreeSet::new(),
                    received: 0,
                });
            }
        }
        let Some(replace) = audience.replace.as_mut() else {
            return Err(MetaError::new(1, None, message(1, None)));
        };
        let rows = reorder(&payload, &replace.schema).ok_or_else(|| {
            MetaError::audience(
                Some(1870148),
                "the schema defined in the first batch must be kept for the whole session.",
            )
        })?;
        replace.rows.extend(rows);
        replace.received += payload.received;
        let received = replace.received;
        if session.last {
            self.finish_replace(audience);
        }
        Ok(success(node, session.id, received, &payload))
    }
}

/// §2.4 (Users/Usersreplace reference): uploads to an audience flagged 471.
fn flagged() -> MetaError {
    let mut error = MetaError::new(100, Some(1713230), "Invalid parameter".into());
    error.user_text(Some(1713230));
    error
}

fn remove_rows(rows: &mut BTreeSet<String>, schema: &[String], payload: &Payload) {
    let exact: HashSet<String> = reorder(payload, schema)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let removed: HashSet<(&str, &str)> = payload
        .rows
        .iter()
        .flat_map(|row| identities(&payload.schema, row))
        .collect();
    rows.retain(|row| {
        !exact.contains(row) && !identities(schema, row).any(|id| removed.contains(&id))
    });
}

async fn create(
    State(state): State<Arc<MetaState>>,
    Path((version, node)): Path<(String, String)>,
    injection: Injection,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        let params = state.prelude(&version, &uri, &headers, &body, injected(&injection))?;
        if !node.starts_with("act_") {
            return Err(unsupported_post(&node));
        }
        if string_param(&params, "name").is_none_or(str::is_empty) {
            return Err(MetaError::invalid("The parameter name is required"));
        }
        let subtype = string_param(&params, "subtype").unwrap_or("CUSTOM");
        if subtype == "CUSTOM" && string_param(&params, "customer_file_source").is_none() {
            return Err(MetaError::invalid(
                "Missing parameter(s): customer_file_source",
            ));
        }
        let id =
            (23_851_234_567_000_000 + state.next_id.fetch_add(1, Ordering::SeqCst)).to_string();
        state.audiences.lock().entry(id.clone()).or_default();
        Ok(json_response(StatusCode::OK, &json!({ "id": id })))
    })();
    result.unwrap_or_else(MetaError::into_response)
}

/// `GET /{audience_id}?fields=…` (§6): the requested fields (`id` alone when none are named);
/// an unknown field gets 100 like the Graph API.
async fn read_audience(
    State(state): State<Arc<MetaState>>,
    Path((version, node)): Path<(String, String)>,
    injection: Injection,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        let params = state.prelude(&version, &uri, &headers, &[], injected(&injection))?;
        let window = *state.replace_window.lock();
        let mut audiences = state.audiences.lock();
        let Some(audience) = audiences.get_mut(&node) else {
            let mut error = unsupported_post(&node);
            error.message = error.message.replace("Unsupported post", "Unsupported get");
            return Err(error);
        };
        state.expire_replace(audience, window);
        let fields = string_param(&params, "fields").unwrap_or("id");
        let mut out = Map::new();
        out.insert("id".into(), node.clone().into());
        let n = audience.rows.len() as u64;
        for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let value = match field {
                "id" => continue,
                "name" => json!(format!("audience {node}")),
                // ± 2 %, like the reference's 4,900–5,100 example (§6).
                "approximate_count_lower_bound" => json!(n - n / 50),
                "approximate_count_upper_bound" => json!(n + n / 50),
                "operation_status" => {
                    let (code, description) = audience.operation_status();
                    json!({"code": code, "description": description})
                }
                "delivery_status" if n < 100 => json!({"code": 300,
                    "description": "This audience is too small to be used."}),
                "delivery_status" => {
                    json!({"code": 200, "description": "This audience is ready for use."})
                }
                other => {
                    return Err(MetaError::invalid(format!(
                        "Tried accessing nonexisting field ({other}) on node type (CustomAudience)"
                    )));
                }
            };
            out.insert(field.into(), value);
        }
        Ok(json_response(StatusCode::OK, &Value::Object(out)))
    })();
    result.unwrap_or_else(MetaError::into_response)
}

async fn unknown_path(uri: Uri) -> Response {
    unknown_path_error(uri.path()).into_response()
}
