//! Fake Google Data Manager API (Customer Match) plus its OAuth2 token endpoint.
//!
//! Wire format per `adnet/google-data-manager.md`: proto3 JSON (camelCase or snake_case in,
//! camelCase out, int64 as strings), the `google.rpc.Status` error envelope, fast-fail
//! validation, per-member consent, and `requestStatus:retrieve` for the async outcome.
//!
//! Decisions a test author should know:
//! - **Requests are processed asynchronously** (§2.4, diagnostics guide): an accepted request
//!   reads `PROCESSING` (no `errorInfo`) for the processing time (`set_processing_time`,
//!   default 100 ms) and at least on its first poll; then it is applied, in acceptance order,
//!   and reads `SUCCESS`, `PARTIAL_SUCCESS` or `FAILED` with `errorInfo.errorCounts`. Lists
//!   change only when a request is processed (applied lazily whenever the fake is read or called).
//!   A `RequestFailed` fault applies nothing and reads `FAILED`; `PartialSuccess` leaves the
//!   request's last members out and counts them by its reason.
//! - `removeAll` removes the members added before its `removeAsOfTime` (§2.3; default the
//!   request's time; a future time is `INVALID_REMOVE_AS_OF_TIME`), whenever it is processed:
//!   members a later ingest added stay.
//! - A member whose effective consent (member overrides request) is not `CONSENT_GRANTED` for
//!   both `adUserData` and `adPersonalization` is not added; its request reads
//!   `PARTIAL_SUCCESS` (or `FAILED` if nothing was added) with `PROCESSING_ERROR_REASON_
//!   DENIED_CONSENT` / `_NO_CONSENT` counts, as the real API reports it asynchronously.
//! - A removal removes every stored member sharing an identifier (an email hash, a phone hash
//!   or a whole address) with a removed member: Google matches people, not rows.
//! - Numeric user list ids are created on first use; `userLists` create also creates one.
//! - Stricter than Google (project rules): hex hashes must be lowercase and the SHA-256 of the
//!   empty string is refused; `regionCode` must be two uppercase letters and `postalCode`
//!   must not look hashed. `BASE64` encoding is accepted; members are stored as lowercase hex.
//! - Quota (§3): 300 ingestion mutate and 300 read requests per rolling minute, then 429 with
//!   `quota_limit` `…PerMinutePerProject`; with `set_daily_quota(n)`, n mutate requests per
//!   fake day, then 429 with `IngestionMutateRequestsPerDayPerProject` until
//!   `reset_daily_quota`.
//! - With `require_login_account`, ingestion requests must name it in each destination
//!   (`loginAccount`) and the UserListService (`userLists` create and get) checks the `login-account` header
//!   (`accountTypes/GOOGLE_ADS/accounts/{id}`, reference of `userLists.create`) when
//!   `require_login_account` names one: without it, 403 `PERMISSION_DENIED`. A user list read
//!   reports `sizeInfo` = the stored members and `matchRatePercentage` (`set_match_rate`).
//! - `validateOnly: true` validates, returns `{}` and changes nothing.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use super::{
    fault_layer, form_pairs, json_response, serve, truncated_json, FakeApi, Fault, FaultAction,
    Injected, Journal, RecordedRequest, Server,
};

/// The refresh token the fake token endpoint accepts.
pub const REFRESH_TOKEN: &str = "fake-refresh-token";
const TOKEN_PATH: &str = "/token";
const DOMAIN: &str = "datamanager.googleapis.com";
const MAX_MEMBERS: usize = 10_000;
const MAX_IDENTIFIERS: usize = 10;
const MAX_DESTINATIONS: usize = 10;
const QUOTA_PER_MINUTE: usize = 300;
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ACCOUNT_TYPES: &[&str] = &[
    "ACCOUNT_TYPE_UNSPECIFIED",
    "GOOGLE_ADS",
    "DISPLAY_VIDEO_PARTNER",
    "DISPLAY_VIDEO_ADVERTISER",
    "DATA_PARTNER",
    "GOOGLE_ANALYTICS_PROPERTY",
    "GOOGLE_AD_MANAGER_AUDIENCE_LINK",
    "FLOODLIGHT_CONFIG",
];
const CONSENT_STATUSES: &[&str] = &[
    "CONSENT_STATUS_UNSPECIFIED",
    "CONSENT_GRANTED",
    "CONSENT_DENIED",
];

/// A running fake Data Manager API; stops when dropped.
pub struct FakeGoogle {
    /// API root to configure in the client, e.g. `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    /// OAuth2 token endpoint to configure in the client instead of Google's.
    pub token_url: String,
    state: Arc<GoogleState>,
    _server: Server,
}

impl FakeGoogle {
    /// Starts a fake on an ephemeral loopback port.
    pub async fn start() -> FakeGoogle {
        let state = Arc::new(GoogleState::default());
        let router = Router::new()
            .route(TOKEN_PATH, post(token))
            .route("/v1/audienceMembers:ingest", post(ingest))
            .route("/v1/audienceMembers:remove", post(remove))
            .route("/v1/audienceMembers:removeAll", post(remove_all))
            .route("/v1/requestStatus:retrieve", get(request_status))
            .route(
                "/v1/accountTypes/{account_type}/accounts/{account_id}/userLists",
                post(create_user_list),
            )
            .route(
                "/v1/accountTypes/{account_type}/accounts/{account_id}/userLists/{list_id}",
                get(get_user_list),
            )
            .fallback(not_found)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                fault_layer::<GoogleState>,
            ))
            .with_state(state.clone());
        let server = serve(router).await;
        FakeGoogle {
            base_url: format!("http://{}/v1", server.addr),
            token_url: format!("http://{}{TOKEN_PATH}", server.addr),
            state,
            _server: server,
        }
    }

    /// Members of a Customer Match list, each as its identifiers sorted, deduplicated and joined
    /// with `|`: `email:<hex>`, `phone:<hex>`, `address:<given hex>,<family hex>,<region>,<postal>`.
    pub fn list(&self, user_list_id: &str) -> BTreeSet<String> {
        self.state.process_due();
        self.state
            .lists
            .lock()
            .get(user_list_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Every request received, token endpoint included, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.journal.requests()
    }

    /// Queues a fault for the next API request it applies to (see the module docs of `fakes`).
    ///
    /// Panics on Meta-only faults: a test asking for one has a bug.
    pub fn inject(&self, fault: Fault) {
        assert!(
            !matches!(
                fault,
                Fault::MetaThrottle { .. }
                    | Fault::MetaError { .. }
                    | Fault::MetaInvalidEntries { .. }
                    | Fault::MetaMalformedToken
            ),
            "FakeGoogle cannot inject the Meta-only fault {fault:?}"
        );
        self.state.journal.push_fault(fault);
    }

    /// Injected faults no request has met yet.
    pub fn pending_faults(&self) -> usize {
        self.state.journal.pending_faults()
    }

    /// Lifetime (`expires_in`) of access tokens issued from now on; default 3600 s.
    pub fn set_access_token_ttl(&self, secs: u64) {
        self.state.token_ttl.store(secs, Ordering::SeqCst);
    }

    /// The refresh token the token endpoint accepts.
    pub fn valid_refresh_token(&self) -> &str {
        REFRESH_TOKEN
    }

    /// How long an accepted request stays `PROCESSING` before it is applied.
    pub fn set_processing_time(&self, d: Duration) {
        *self.state.processing.lock() = d;
    }

    /// Mutate requests allowed per fake day (`None`: no daily limit).
    pub fn set_daily_quota(&self, n: Option<u64>) {
        *self.state.daily.lock() = (n, 0);
    }

    /// A new fake day: the daily quota is whole again.
    pub fn reset_daily_quota(&self) {
        self.state.daily.lock().1 = 0;
    }

    /// The UserListService then requires `login-account: accountTypes/GOOGLE_ADS/accounts/{id}`.
    pub fn require_login_account(&self, id: &str) {
        *self.state.login_account.lock() = Some(id.to_string());
    }

    /// The `matchRatePercentage` user list reads report.
    pub fn set_match_rate(&self, percent: u64) {
        self.state.match_rate.store(percent, Ordering::SeqCst);
    }
}

struct GoogleState {
    journal: Journal,
    lists: Mutex<HashMap<String, BTreeSet<String>>>,
    /// Issued access tokens and when each expires.
    tokens: Mutex<HashMap<String, Instant>>,
    token_ttl: AtomicU64,
    operations: Mutex<HashMap<String, Operation>>,
    /// `(account id, display name)` of created user lists.
    list_names: Mutex<HashSet<(String, String)>>,
    next_id: AtomicU64,
    quota: Mutex<HashMap<&'static str, VecDeque<Instant>>>,
    /// Accepted requests not processed yet, in acceptance order.
    pending: Mutex<VecDeque<String>>,
    processing: Mutex<Duration>,
    /// list id → member → when the request that last added it was accepted.
    added_at: Mutex<HashMap<String, HashMap<String, std::time::SystemTime>>>,
    /// (mutate requests allowed per day, used today).
    daily: Mutex<(Option<u64>, u64)>,
    login_account: Mutex<Option<String>>,
    match_rate: AtomicU64,
}

impl Default for GoogleState {
    fn default() -> Self {
        GoogleState {
            journal: Journal::default(),
            lists: Mutex::default(),
            tokens: Mutex::default(),
            token_ttl: AtomicU64::new(3600),
            operations: Mutex::default(),
            list_names: Mutex::default(),
            next_id: AtomicU64::new(1),
            quota: Mutex::default(),
            pending: Mutex::default(),
            processing: Mutex::new(Duration::from_millis(100)),
            added_at: Mutex::default(),
            daily: Mutex::new((None, 0)),
            login_account: Mutex::default(),
            match_rate: AtomicU64::new(60),
        }
    }
}

impl FakeApi for GoogleState {
    fn journal(&self) -> &Journal {
        &self.journal
    }

    fn fault_applies(&self, fault: &Fault, _method: &Method, path: &str) -> bool {
        if path == TOKEN_PATH {
            return false;
        }
        match fault {
            Fault::FieldViolation { .. } => path.ends_with(":ingest") || path.ends_with(":remove"),
            Fault::RequestFailed => {
                path.ends_with(":ingest")
                    || path.ends_with(":remove")
                    || path.ends_with(":removeAll")
            }
            Fault::PartialSuccess { .. } => path.ends_with(":ingest") || path.ends_with(":remove"),
            Fault::MetaThrottle { .. }
            | Fault::MetaError { .. }
            | Fault::MetaInvalidEntries { .. }
            | Fault::MetaMalformedToken => false,
            _ => true,
        }
    }

    fn fault_action(&self, fault: &Fault, parts: &Parts) -> FaultAction {
        let respond = |e: ApiError| FaultAction::Respond(e.into_response());
        match fault {
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let (canonical, message) = canonical(status);
                respond(ApiError::rpc(status, canonical, message, vec![]))
            }
            Fault::TooManyRequests { retry_after_secs } => {
                let limit = quota_limit(parts.uri.path());
                respond(quota_error(limit, *retry_after_secs))
            }
            Fault::MalformedJson => {
                FaultAction::Respond(truncated_json("{\"requestId\": \"3f2a9c1e-"))
            }
            Fault::FieldViolation { member_index } => respond(ApiError::invalid(vec![violation(
                format!("audience_members.audience_members[{member_index}]"),
                "The value is not a valid SHA-256 hash.",
                "INVALID_SHA256_FORMAT",
            )])),
            Fault::ExpireToken => {
                if let Some(token) = bearer(&parts.headers) {
                    self.tokens.lock().insert(token.to_owned(), Instant::now());
                }
                FaultAction::Pass
            }
            _ => FaultAction::Pass,
        }
    }

    fn count_members(&self, parts: &Parts, body: &[u8]) -> usize {
        if parts.uri.path().starts_with("/v1/audienceMembers") {
            serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| {
                    let members = v.get("audienceMembers").or(v.get("audience_members"))?;
                    members.as_array().map(Vec::len)
                })
                .unwrap_or(0)
        } else {
            0
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An error response in the `google.rpc.Status` envelope.
struct ApiError {
    status: StatusCode,
    body: Value,
    headers: Vec<(header::HeaderName, String)>,
}

impl ApiError {
    fn rpc(status: StatusCode, canonical: &str, message: &str, details: Vec<Value>) -> Self {
        ApiError {
            status,
            body: json!({"error": {
                "code": status.as_u16(), "message": message, "status": canonical, "details": details,
            }}),
            headers: vec![],
        }
    }

    /// Fast-fail 400 with `ErrorInfo` + `RequestInfo` + `BadRequest`, as in the errors guide.
    fn invalid(violations: Vec<Value>) -> Self {
        let request_id = format!("t-{}", uuid());
        ApiError::rpc(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "There was a problem with the request.",
            vec![
                json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "INVALID_ARGUMENT",
                       "domain": DOMAIN, "metadata": {"requestId": request_id}}),
                json!({"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": request_id}),
                json!({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}),
            ],
        )
    }

    /// 400 for JSON that does not fit the proto (unknown field, bad enum, wrong type).
    fn payload(field: &str, description: String) -> Self {
        ApiError::rpc(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            &description,
            vec![json!({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": field, "description": description}]})],
        )
    }

    fn unauthenticated(reason: &str, message: &str) -> Self {
        let mut error = ApiError::rpc(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            message,
            vec![
                json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                        "domain": "googleapis.com", "metadata": {"service": DOMAIN}}),
            ],
        );
        error.headers.push((
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"".into(),
        ));
        error
    }

    fn into_response(self) -> Response {
        let mut response = json_response(self.status, &self.body);
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

fn violation(field: String, description: &str, reason: &str) -> Value {
    json!({"field": field, "description": description, "reason": reason})
}

fn canonical(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("INVALID_ARGUMENT", "There was a problem with the request."),
        401 => (
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        ),
        403 => ("PERMISSION_DENIED", "The caller does not have permission"),
        404 => ("NOT_FOUND", "Requested entity was not found."),
        409 => ("ABORTED", "The operation was aborted."),
        429 => (
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        ),
        499 => ("CANCELLED", "The operation was cancelled."),
        501 => ("UNIMPLEMENTED", "Operation is not implemented."),
        503 => ("UNAVAILABLE", "The service is currently unavailable."),
        504 => ("DEADLINE_EXCEEDED", "Deadline exceeded."),
        500 => ("INTERNAL", "Internal error encountered."),
        code if code >= 500 => ("UNKNOWN", "Unknown error."),
        _ => ("FAILED_PRECONDITION", "Precondition check failed."),
    }
}

/// The per-minute quota a request counts against, by path.
fn quota_limit(path: &str) -> &'static str {
    if path.starts_with("/v1/requestStatus") {
        "IngestionReadRequestsPerMinutePerProject"
    } else if path.starts_with("/v1/audienceMembers") {
        "IngestionMutateRequestsPerMinutePerProject"
    } else {
        "ManagementMutateRequestsPerMinutePerProject"
    }
}

fn quota_error(limit: &str, retry_after_secs: Option<u64>) -> ApiError {
    let message = format!(
        "Quota exceeded for quota metric 'Requests' and limit '{limit}' of service '{DOMAIN}' \
         for consumer 'project_number:123'."
    );
    let mut details = vec![json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
        "domain": "googleapis.com",
        "metadata": {"service": DOMAIN, "consumer": "projects/123", "quota_limit": limit,
                     "quota_limit_value": QUOTA_PER_MINUTE.to_string()},
    })];
    if let Some(secs) = retry_after_secs {
        details.push(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": format!("{secs}s")}));
    }
    let mut error = ApiError::rpc(
        StatusCode::TOO_MANY_REQUESTS,
        "RESOURCE_EXHAUSTED",
        &message,
        details,
    );
    if let Some(secs) = retry_after_secs {
        error.headers.push((header::RETRY_AFTER, secs.to_string()));
    }
    error
}

/// 403 `PERMISSION_DENIED` in the `google.rpc.Status` envelope.
fn permission_denied(details: Vec<Value>) -> ApiError {
    let (canonical, message) = canonical(StatusCode::FORBIDDEN);
    ApiError::rpc(StatusCode::FORBIDDEN, canonical, message, details)
}

fn uuid() -> String {
    let n: u128 = rand::random();
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

// ---------------------------------------------------------------------------------------------
// Auth and quota

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl GoogleState {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(token) = bearer(headers) else {
            return Err(ApiError::unauthenticated(
                "CREDENTIALS_MISSING",
                "Request is missing required authentication credential. Expected OAuth 2 access \
                 token, login cookie or other valid authentication credential.",
            ));
        };
        match self.tokens.lock().get(token) {
            Some(expires) if Instant::now() < *expires => Ok(()),
            Some(_) => Err(ApiError::unauthenticated(
                "ACCESS_TOKEN_EXPIRED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, \
                 login cookie or other valid authentication credential.",
            )),
            None => Err(ApiError::unauthenticated(
                "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, \
                 login cookie or other valid authentication credential.",
            )),
        }
    }

    /// Counts a request against its per-minute quota; 429 once 300 were counted in a minute.
    fn take_quota(&self, limit: &'static str) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut quota = self.quota.lock();
        let window = quota.entry(limit).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            window.pop_front();
        }
        if window.len() >= QUOTA_PER_MINUTE {
            return Err(quota_error(limit, None));
        }
        if limit == "IngestionMutateRequestsPerMinutePerProject" {
            let mut daily = self.daily.lock();
            if let (Some(allowed), used) = *daily {
                if used >= allowed {
                    return Err(quota_error("IngestionMutateRequestsPerDayPerProject", None));
                }
                daily.1 = used + 1;
            }
        }
        window.push_back(now);
        Ok(())
    }

    /// The ingestion service takes the login account in each destination (`loginAccount`).
    fn check_login_in_body(&self, destinations: &[Destination]) -> Result<(), ApiError> {
        let Some(id) = self.login_account.lock().clone() else {
            return Ok(());
        };
        let named = destinations
            .iter()
            .all(|d| d.echo["loginAccount"]["accountId"].as_str() == Some(id.as_str()));
        if named {
            return Ok(());
        }
        Err(permission_denied(vec![]))
    }

    /// The UserListService's `login-account` check (when the test requires one).
    fn check_login_account(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(id) = self.login_account.lock().clone() else {
            return Ok(());
        };
        let want = format!("accountTypes/GOOGLE_ADS/accounts/{id}");
        let got = headers.get("login-account").and_then(|v| v.to_str().ok());
        if got == Some(want.as_str()) {
            return Ok(());
        }
        Err(permission_denied(vec![
            json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                   "reason": "PERMISSION_DENIED", "domain": DOMAIN,
                   "metadata": {"login_account": got.unwrap_or("")}}),
        ]))
    }

    fn issue_token(&self) -> (String, u64) {
        let ttl = self.token_ttl.load(Ordering::SeqCst);
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        let token = format!("ya29.fake-{n}-{:016x}", rand::random::<u64>());
        let expires = Instant::now() + Duration::from_secs(ttl);
        self.tokens.lock().insert(token.clone(), expires);
        (token, ttl)
    }
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

async fn token(State(state): State<Arc<GoogleState>>, body: Bytes) -> Response {
    let params: HashMap<String, String> = form_pairs(&body).into_iter().collect();
    let param = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    match param("grant_type") {
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: grant_type",
        ),
        Some("refresh_token") => {
            if param("client_id").is_none() || param("client_secret").is_none() {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "The OAuth client was not found.",
                );
            }
            match param("refresh_token") {
                None => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Missing required parameter: refresh_token",
                ),
                Some(REFRESH_TOKEN) => issued(&state),
                Some(_) => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Token has been expired or revoked.",
                ),
            }
        }
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => match param("assertion") {
            None => oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: assertion",
            ),
            Some(jwt) if well_formed_jwt(jwt) => issued(&state),
            Some(_) => oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Invalid JWT Signature.",
            ),
        },
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {other}"),
        ),
    }
}

fn issued(state: &GoogleState) -> Response {
    let (token, ttl) = state.issue_token();
    json_response(
        StatusCode::OK,
        &json!({"access_token": token, "expires_in": ttl, "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/datamanager"}),
    )
}

/// A JWT with a JSON header naming `alg`, JSON claims with `iss`, `aud`, `iat` and `exp`, and a
/// signature segment. The signature itself is not checked.
fn well_formed_jwt(jwt: &str) -> bool {
    let segments: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = segments[..] else {
        return false;
    };
    let decode = |segment: &str| -> Option<Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let header_ok = decode(header).is_some_and(|h| h.get("alg").is_some_and(Value::is_string));
    let claims_ok = decode(claims).is_some_and(|c| {
        c.get("iss").is_some_and(Value::is_string)
            && c.get("aud").is_some()
            && c.get("iat").is_some_and(Value::is_number)
            && c.get("exp").is_some_and(Value::is_number)
    });
    header_ok && claims_ok && !signature.is_empty()
}

// ---------------------------------------------------------------------------------------------
// JSON access with proto3 JSON rules

fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON object at a proto field path (snake_case, as Google reports paths).
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn of(value: &'a Value, path: String) -> Result<Self, ApiError> {
        match value.as_object() {
            Some(map) => Ok(Obj { map, path }),
            None => Err(ApiError::payload(
                &path,
                format!("Invalid JSON payload received. Expected an object at '{path}': {value}."),
            )),
        }
    }

    fn field_path(&self, field: &str) -> String {
        if self.path.is_empty() {
            snake(field)
        } else {
            format!("{}.{}", self.path, snake(field))
        }
    }

    /// Refuses names outside `fields` (given in camelCase; snake_case is accepted too).
    fn known(&self, fields: &[&str]) -> Result<(), ApiError> {
        for name in self.map.keys() {
            if !fields.iter().any(|f| f == name || snake(f) == *name) {
                let at = if self.path.is_empty() { "" } else { &self.path };
                return Err(ApiError::payload(
                    at,
                    format!(
                        "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': \
                         Cannot find field."
                    ),
                ));
            }
        }
        Ok(())
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map
            .get(field)
            .or_else(|| self.map.get(&snake(field)))
            .filter(|v| !v.is_null())
    }

    fn wrong_type(&self, field: &str, expected: &str, value: &Value) -> ApiError {
        let path = self.field_path(field);
        ApiError::payload(
            &path,
            format!("Invalid value at '{path}' ({expected}), {value}"),
        )
    }

    fn string(&self, field: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(field, "TYPE_STRING", other)),
        }
    }

    fn boolean(&self, field: &str) -> Result<bool, ApiError> {
        match self.get(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.wrong_type(field, "TYPE_BOOL", other)),
        }
    }

    fn list(&self, field: &str) -> Result<&'a [Value], ApiError> {
        match self.get(field) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.wrong_type(field, "TYPE_MESSAGE", other)),
        }
    }

    fn object(&self, field: &str) -> Result<Option<Obj<'a>>, ApiError> {
        self.get(field)
            .map(|v| Obj::of(v, self.field_path(field)))
            .transpose()
    }

    /// An enum field; the empty string and absence both read as unspecified (`None`).
    fn enumeration(
        &self,
        field: &str,
        type_name: &str,
        allowed: &[&str],
    ) -> Result<Option<&'a str>, ApiError> {
        let Some(value) = self.string(field)? else {
            return Ok(None);
        };
        if !allowed.contains(&value) {
            let path = self.field_path(field);
            return Err(ApiError::payload(
                &path,
                format!(
                    "Invalid value at '{path}' (type.googleapis.com/google.ads.datamanager.v1.\
                     {type_name}), \"{value}\""
                ),
            ));
        }
        Ok(Some(value).filter(|v| !v.ends_with("_UNSPECIFIED")))
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::payload(
            "",
            format!("Invalid JSON payload received. Unexpected token. {e}"),
        )
    })
}

fn required(field: String) -> ApiError {
    ApiError::invalid(vec![violation(
        field,
        "Required field is missing.",
        "REQUIRED_FIELD_MISSING",
    )])
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------
// Requests

/// A parsed destination: its echo for requestStatus, its list, its reference.
struct Destination {
    echo: Value,
    list_id: String,
    reference: Option<String>,
}

fn product_account(
    obj: &Obj,
    field: &str,
    required_field: bool,
) -> Result<Option<Value>, ApiError> {
    let Some(account) = obj.object(field)? else {
        return if required_field {
            Err(required(obj.field_path(field)))
        } else {
            Ok(None)
        };
    };
    account.known(&["accountType", "accountId", "product"])?;
    let Some(account_type) =
        account.enumeration("accountType", "ProductAccount.AccountType", ACCOUNT_TYPES)?
    else {
        return Err(required(account.field_path("accountType")));
    };
    let account_id = account.string("accountId")?.unwrap_or("");
    if account_id.is_empty() {
        return Err(required(account.field_path("accountId")));
    }
    if !is_number(account_id) {
        return Err(ApiError::invalid(vec![violation(
            account.field_path("accountId"),
            "String is not a valid number.",
            "INVALID_NUMBER_FORMAT",
        )]));
    }
    Ok(Some(
        json!({"accountType": account_type, "accountId": account_id}),
    ))
}

fn destinations(root: &Obj) -> Result<Vec<Destination>, ApiError> {
    let items = root.list("destinations")?;
    if items.is_empty() {
        return Err(required("destinations".into()));
    }
    if items.len() > MAX_DESTINATIONS {
        return Err(ApiError::invalid(vec![violation(
            "destinations".into(),
            "The maximum number of destinations per request is 10.",
            "TOO_MANY_DESTINATIONS",
        )]));
    }
    let mut out: Vec<Destination> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let dest = Obj::of(item, format!("destinations[{i}]"))?;
        dest.known(&[
            "reference",
            "operatingAccount",
            "loginAccount",
            "linkedAccount",
            "productDestinationId",
        ])?;
        let mut echo = Map::new();
        echo.insert(
            "operatingAccount".into(),
            product_account(&dest, "operatingAccount", true)?.unwrap_or_default(),
        );
        for optional in ["loginAccount", "linkedAccount"] {
            if let Some(account) = product_account(&dest, optional, false)? {
                echo.insert(optional.into(), account);
            }
        }
        let list_id = dest.string("productDestinationId")?.unwrap_or("");
        if list_id.is_empty() {
            return Err(required(dest.field_path("productDestinationId")));
        }
        if !is_number(list_id) {
            return Err(ApiError::invalid(vec![violation(
                dest.field_path("productDestinationId"),
                "The user list ID is invalid.",
                "INVALID_USER_LIST_ID",
            )]));
        }
        echo.insert("productDestinationId".into(), list_id.into());
        let reference = dest.string("reference")?.map(str::to_owned);
        if let Some(reference) = &reference {
            if out.iter().any(|d| d.reference.as_ref() == Some(reference)) {
                return Err(ApiError::invalid(vec![violation(
                    dest.field_path("reference"),
                    "Destination references must be unique within a request.",
                    "DUPLICATE_DESTINATION_REFERENCE",
                )]));
            }
            echo.insert("reference".into(), reference.clone().into());
        }
        out.push(Destination {
            echo: Value::Object(echo),
            list_id: list_id.to_owned(),
            reference,
        });
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ingest,
    Remove,
}

/// A member ready to apply: its canonical identifiers and where it goes.
struct Member {
    identifiers: Vec<String>,
    /// `None` when accepted; else the processing error reason (consent).
    rejected: Option<&'static str>,
    references: Vec<String>,
}

struct Upload {
    destinations: Vec<Destination>,
    members: Vec<Member>,
    validate_only: bool,
    composite: bool,
    /// Identifier counts by `dataTypeCounts` type, and in total.
    type_counts: [usize; 3],
}

const DATA_FIELDS: &[&str] = &[
    "userData",
    "pairData",
    "mobileData",
    "userIdData",
    "ppidData",
    "compositeData",
    "googleUserIdData",
    "partnerProvidedIdData",
];

fn parse_upload(body: &[u8], kind: Kind) -> Result<Upload, ApiError> {
    let value = parse_body(body)?;
    let root = Obj::of(&value, String::new())?;
    let common = [
        "destinations",
        "audienceMembers",
        "validateOnly",
        "encoding",
        "encryptionInfo",
    ];
    match kind {
        Kind::Ingest => root.known(&[&common[..], &["consent", "termsOfService"]].concat())?,
        Kind::Remove => root.known(&common)?,
    }
    let destinations = destinations(&root)?;
    let items = root.list("audienceMembers")?;
    if items.is_empty() {
        return Err(required("audience_members".into()));
    }
    if items.len() > MAX_MEMBERS {
        return Err(ApiError::invalid(vec![violation(
            "audience_members".into(),
            "The maximum number of audience members per request is 10,000.",
            "TOO_MANY_AUDIENCE_MEMBERS",
        )]));
    }
    if root.get("encryptionInfo").is_some() {
        return Err(ApiError::invalid(vec![violation(
            "encryption_info".into(),
            "The fake server does not decrypt; send hashed identifiers without encryption.",
            "INVALID_ARGUMENT",
        )]));
    }
    let encoding = root.enumeration(
        "encoding",
        "Encoding",
        &["ENCODING_UNSPECIFIED", "HEX", "BASE64"],
    )?;
    let Some(encoding) = encoding else {
        return Err(required("encoding".into()));
    };
    let request_consent = match kind {
        Kind::Ingest => {
            let tos = root.object("termsOfService")?;
            let status = match &tos {
                Some(tos) => {
                    tos.known(&["customerMatchTermsOfServiceStatus"])?;
                    tos.enumeration(
                        "customerMatchTermsOfServiceStatus",
                        "TermsOfServiceStatus",
                        &[
                            "TERMS_OF_SERVICE_STATUS_UNSPECIFIED",
                            "ACCEPTED",
                            "REJECTED",
                        ],
                    )?
                }
                None => None,
            };
            if status != Some("ACCEPTED") {
                return Err(ApiError::invalid(vec![violation(
                    "terms_of_service.customer_match_terms_of_service_status".into(),
                    "The Customer Match terms of service must be accepted.",
                    "TERMS_AND_CONDITIONS_NOT_SIGNED",
                )]));
            }
            consent(&root)?
        }
        Kind::Remove => (None, None),
    };
    let mut upload = Upload {
        destinations,
        members: Vec::with_capacity(items.len()),
        validate_only: root.boolean("validateOnly")?,
        composite: false,
        type_counts: [0; 3],
    };
    let mut data_type: Option<&str> = None;
    for (i, item) in items.iter().enumerate() {
        let member = Obj::of(item, format!("audience_members[{i}]"))?;
        member.known(&[DATA_FIELDS, &["consent", "destinationReferences"]].concat())?;
        let present: Vec<&str> = DATA_FIELDS
            .iter()
            .copied()
            .filter(|f| member.get(f).is_some())
            .collect();
        let field = match present[..] {
            [field] => field,
            [] => {
                return Err(ApiError::invalid(vec![violation(
                    format!("audience_members.audience_members[{i}]"),
                    "The audience member has no data.",
                    "INVALID_AUDIENCE_MEMBER",
                )]))
            }
            _ => {
                return Err(ApiError::payload(
                    &member.path,
                    format!(
                        "Invalid JSON payload received. Oneof field 'data' is already set at '{}'.",
                        member.path
                    ),
                ))
            }
        };
        if data_type.is_some_and(|t| t != field) {
            return Err(ApiError::invalid(vec![violation(
                "audience_members".into(),
                "All audience members in a request must have the same data type.",
                "MULTIPLE_DATA_TYPES_NOT_ALLOWED",
            )]));
        }
        data_type = Some(field);
        let user_data = match field {
            "userData" => member.object("userData")?,
            "compositeData" => {
                upload.composite = true;
                let composite = member
                    .object("compositeData")?
                    .ok_or_else(|| required(member.field_path(field)))?;
                composite.known(&["userData", "ipData"])?;
                composite.object("userData")?
            }
            _ => {
                return Err(ApiError::invalid(vec![violation(
                    format!("audience_members.audience_members[{i}]"),
                    "The fake server supports only userData and compositeData members.",
                    "INVALID_AUDIENCE_MEMBER",
                )]))
            }
        };
        let identifiers = match user_data {
            Some(user_data) => identifiers(&user_data, i, encoding, &mut upload.type_counts)?,
            None => vec![],
        };
        let member_consent = match member.object("consent")? {
            Some(c) => consent_fields(&c)?,
            None => (None, None),
        };
        let references = member
            .list("destinationReferences")?
            .iter()
            .map(|r| r.as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>();
        for (k, reference) in references.iter().enumerate() {
            if !upload
                .destinations
                .iter()
                .any(|d| d.reference.as_ref() == Some(reference))
            {
                return Err(ApiError::invalid(vec![violation(
                    format!("audience_members.audience_members[{i}].destination_references[{k}]"),
                    "The destination reference does not match any destination.",
                    "INVALID_DESTINATION",
                )]));
            }
        }
        let rejected = match kind {
            Kind::Remove => None,
            Kind::Ingest => consent_rejection(
                member_consent.0.or(request_consent.0),
                member_consent.1.or(request_consent.1),
            ),
        };
        upload.members.push(Member {
            identifiers,
            rejected,
            references,
        });
    }
    Ok(upload)
}

fn consent_fields<'a>(c: &Obj<'a>) -> Result<(Option<&'a str>, Option<&'a str>), ApiError> {
    c.known(&["adUserData", "adPersonalization"])?;
    Ok((
        c.enumeration("adUserData", "ConsentStatus", CONSENT_STATUSES)?,
        c.enumeration("adPersonalization", "ConsentStatus", CONSENT_STATUSES)?,
    ))
}

fn consent<'a>(root: &Obj<'a>) -> Result<(Option<&'a str>, Option<&'a str>), ApiError> {
    match root.object("consent")? {
        Some(c) => consent_fields(&c),
        None => Ok((None, None)),
    }
}

fn consent_rejection(
    user_data: Option<&str>,
    personalization: Option<&str>,
) -> Option<&'static str> {
    match (user_data, personalization) {
        (Some("CONSENT_GRANTED"), Some("CONSENT_GRANTED")) => None,
        (Some("CONSENT_DENIED"), _) | (_, Some("CONSENT_DENIED")) => {
            Some("PROCESSING_ERROR_REASON_DENIED_CONSENT")
        }
        _ => Some("PROCESSING_ERROR_REASON_NO_CONSENT"),
    }
}

/// The member's identifiers as canonical strings (sorted, deduplicated), fast-failing on the
/// first malformed one.
fn identifiers(
    user_data: &Obj,
    i: usize,
    encoding: &str,
    type_counts: &mut [usize; 3],
) -> Result<Vec<String>, ApiError> {
    user_data.known(&["userIdentifiers"])?;
    let items = user_data.list("userIdentifiers")?;
    let field = format!("audience_members.audience_members[{i}].user_data.user_identifiers");
    if items.is_empty() {
        return Err(required(field));
    }
    if items.len() > MAX_IDENTIFIERS {
        return Err(ApiError::invalid(vec![violation(
            field,
            "The maximum number of user identifiers per audience member is 10.",
            "TOO_MANY_USER_IDENTIFIERS",
        )]));
    }
    let mut out = Vec::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        let field = format!("{field}[{j}]");
        let id = Obj::of(item, format!("{}.user_identifiers[{j}]", user_data.path))?;
        id.known(&["emailAddress", "phoneNumber", "address"])?;
        let set: Vec<&str> = ["emailAddress", "phoneNumber", "address"]
            .into_iter()
            .filter(|f| id.get(f).is_some())
            .collect();
        let canonical = match set[..] {
            ["emailAddress"] => {
                type_counts[0] += 1;
                format!("email:{}", hash(id.string("emailAddress")?.unwrap_or(""), encoding, &field)?)
            }
            ["phoneNumber"] => {
                type_counts[1] += 1;
                format!("phone:{}", hash(id.string("phoneNumber")?.unwrap_or(""), encoding, &field)?)
            }
            ["address"] => {
                type_counts[2] += 1;
                address(&id, encoding, &field)?
            }
            [] => return Err(required(field)),
            _ => {
                return Err(ApiError::payload(
                    &id.path,
                    format!(
                        "Invalid JSON payload received. Oneof field 'identifier' is already set at '{}'.",
                        id.path
                    ),
                ))
            }
        };
        out.push(canonical);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn address(id: &Obj, encoding: &str, field: &str) -> Result<String, ApiError> {
    let Some(address) = id.object("address")? else {
        return Err(required(field.to_owned()));
    };
    address.known(&[
        "givenName",
        "familyName",
        "regionCode",
        "postalCode",
        "addressLine",
        "city",
        "administrativeArea",
    ])?;
    let mut parts = Vec::with_capacity(4);
    for name in ["givenName", "familyName"] {
        let value = address.string(name)?.unwrap_or("");
        if value.is_empty() {
            return Err(required(format!("{field}.address.{}", snake(name))));
        }
        parts.push(hash(value, encoding, field)?);
    }
    let region = address.string("regionCode")?.unwrap_or("");
    if region.len() != 2 || !region.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid(vec![violation(
            format!("{field}.address.region_code"),
            "The region code must be an unhashed ISO 3166-1 alpha-2 code such as US.",
            "INVALID_REGION_CODE",
        )]));
    }
    let postal = address.string("postalCode")?.unwrap_or("").trim();
    let looks_hashed = postal.len() >= 40 && postal.bytes().all(|b| b.is_ascii_hexdigit());
    if postal.is_empty() || looks_hashed || postal.contains([',', '|']) {
        return Err(ApiError::invalid(vec![violation(
            format!("{field}.address.postal_code"),
            "The postal code must be present and not hashed.",
            "INVALID_POSTAL_CODE",
        )]));
    }
    parts.push(region.to_owned());
    parts.push(postal.to_owned());
    Ok(format!("address:{}", parts.join(",")))
}

/// A hashed identifier as lowercase hex, or the fast-fail violation naming `field`.
fn hash(value: &str, encoding: &str, field: &str) -> Result<String, ApiError> {
    let fail = |description: &str, reason: &str| {
        ApiError::invalid(vec![violation(field.to_owned(), description, reason)])
    };
    let hex = if encoding == "BASE64" {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| {
                fail(
                    "The BASE64 encoded value is malformed.",
                    "INVALID_BASE64_ENCODING",
                )
            })?;
        if bytes.len() != 32 {
            return Err(fail(
                "The value is not a valid SHA-256 hash.",
                "INVALID_SHA256_FORMAT",
            ));
        }
        hex::encode(bytes)
    } else {
        if !value.bytes().all(|b| b.is_ascii_hexdigit()) || value.is_empty() {
            return Err(fail(
                "The HEX encoded value is malformed.",
                "INVALID_HEX_ENCODING",
            ));
        }
        if value.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(fail(
                "The HEX encoded value must be lowercase (fake server rule).",
                "INVALID_HEX_ENCODING",
            ));
        }
        if value.len() != 64 {
            return Err(fail(
                "The value is not a valid SHA-256 hash.",
                "INVALID_SHA256_FORMAT",
            ));
        }
        value.to_owned()
    };
    if hex == EMPTY_SHA256 {
        return Err(fail(
            "The value is the SHA-256 of an empty string (fake server rule).",
            "INVALID_SHA256_FORMAT",
        ));
    }
    Ok(hex)
}

// ---------------------------------------------------------------------------------------------
// Operations and requestStatus

enum OpKind {
    Ingest,
    Remove,
    RemoveAll,
}

/// An accepted request, for `requestStatus:retrieve`.
struct Operation {
    kind: OpKind,
    destinations: Vec<Value>,
    composite: bool,
    records: usize,
    type_counts: [usize; 3],
    /// Processing error reason → record count.
    errors: Vec<(String, usize)>,
    failed: bool,
    polls: u32,
    /// What processing does to the lists; `None` once applied.
    effect: Option<Effect>,
    /// When it was accepted.
    accepted_at: Instant,
}

/// A request's change to the lists, applied when it is processed.
enum Effect {
    /// (list id, canonical members) per destination.
    Upload(Kind, Vec<(String, Vec<String>)>, std::time::SystemTime),
    /// Lists emptied of members added before the time.
    RemoveAll(Vec<String>, std::time::SystemTime),
}

impl Operation {
    fn status(&self) -> &'static str {
        let rejected: usize = self.errors.iter().map(|(_, n)| n).sum();
        if self.polls == 0 || self.effect.is_some() {
            "PROCESSING"
        } else if self.failed || (rejected > 0 && rejected == self.records) {
            "FAILED"
        } else if rejected > 0 {
            "PARTIAL_SUCCESS"
        } else {
            "SUCCESS"
        }
    }

    fn body(&self) -> Value {
        let status = self.status();
        let identifiers: usize = self.type_counts.iter().sum();
        let detail = match (&self.kind, self.composite) {
            (OpKind::RemoveAll, _) => ("removeAllAudienceMembersStatus", json!({})),
            (kind, true) => {
                let counts: Vec<Value> = ["EMAIL", "PHONE_NUMBER", "ADDRESS"]
                    .iter()
                    .zip(self.type_counts)
                    .filter(|(_, n)| *n > 0)
                    .map(|(t, n)| json!({"type": t, "count": n.to_string()}))
                    .collect();
                let mut inner =
                    json!({"recordCount": self.records.to_string(), "dataTypeCounts": counts});
                let outer = if matches!(kind, OpKind::Ingest) {
                    if status != "PROCESSING" {
                        inner["uploadMatchRateRange"] = "MATCH_RATE_RANGE_NOT_ELIGIBLE".into();
                    }
                    "audienceMembersIngestionStatus"
                } else {
                    "audienceMembersRemovalStatus"
                };
                let key = if outer.ends_with("IngestionStatus") {
                    "compositeDataIngestionStatus"
                } else {
                    "compositeDataRemovalStatus"
                };
                (outer, json!({ key: inner }))
            }
            (kind, false) => {
                let mut inner = json!({"recordCount": self.records.to_string(),
                                       "userIdentifierCount": identifiers.to_string()});
                if matches!(kind, OpKind::Ingest) {
                    if status != "PROCESSING" {
                        inner["uploadMatchRateRange"] = "MATCH_RATE_RANGE_NOT_ELIGIBLE".into();
                    }
                    (
                        "audienceMembersIngestionStatus",
                        json!({"userDataIngestionStatus": inner}),
                    )
                } else {
                    (
                        "audienceMembersRemovalStatus",
                        json!({"userDataRemovalStatus": inner}),
                    )
                }
            }
        };
        let per_destination: Vec<Value> = self
            .destinations
            .iter()
            .map(|destination| {
                let mut entry = json!({"destination": destination, "requestStatus": status});
                entry[detail.0] = detail.1.clone();
                if status == "FAILED" || status == "PARTIAL_SUCCESS" {
                    let counts: Vec<Value> = if self.failed {
                        vec![json!({"recordCount": self.records.to_string(),
                                    "reason": "PROCESSING_ERROR_REASON_INTERNAL_ERROR"})]
                    } else {
                        self.errors
                            .iter()
                            .map(|(reason, n)| json!({"recordCount": n.to_string(), "reason": reason.clone()}))
                            .collect()
                    };
                    entry["errorInfo"] = json!({"errorCounts": counts});
                }
                entry
            })
            .collect();
        json!({"requestStatusPerDestination": per_destination})
    }
}

impl GoogleState {
    fn accept(&self, operation: Operation) -> Response {
        let id = uuid();
        self.operations.lock().insert(id.clone(), operation);
        self.pending.lock().push_back(id.clone());
        self.process_due();
        json_response(StatusCode::OK, &json!({"requestId": id}))
    }

    /// Applies every request whose processing time is over, in acceptance order (a request
    /// still processing holds back the ones after it).
    fn process_due(&self) {
        let delay = *self.processing.lock();
        let mut pending = self.pending.lock();
        let mut operations = self.operations.lock();
        while let Some(id) = pending.front() {
            let Some(op) = operations.get_mut(id) else {
                pending.pop_front();
                continue;
            };
            if op.accepted_at.elapsed() < delay {
                break;
            }
            if let Some(effect) = op.effect.take() {
                if !op.failed {
                    self.apply(effect);
                }
            }
            pending.pop_front();
        }
    }

    fn apply(&self, effect: Effect) {
        let mut lists = self.lists.lock();
        let mut added_at = self.added_at.lock();
        match effect {
            Effect::Upload(Kind::Ingest, targets, at) => {
                for (list_id, members) in targets {
                    let list = lists.entry(list_id.clone()).or_default();
                    let times = added_at.entry(list_id).or_default();
                    for m in members {
                        times.insert(m.clone(), at);
                        list.insert(m);
                    }
                }
            }
            Effect::Upload(Kind::Remove, targets, _) => {
                for (list_id, members) in targets {
                    let removed: HashSet<&str> =
                        members.iter().flat_map(|m| m.split('|')).collect();
                    let list = lists.entry(list_id).or_default();
                    list.retain(|stored| !stored.split('|').any(|id| removed.contains(id)));
                }
            }
            Effect::RemoveAll(list_ids, as_of) => {
                for list_id in list_ids {
                    let times = added_at.entry(list_id.clone()).or_default();
                    let list = lists.entry(list_id).or_default();
                    list.retain(|m| times.get(m).is_some_and(|t| *t >= as_of));
                    times.retain(|m, _| list.contains(m));
                }
            }
        }
    }
}

/// The canonical members an upload brings to each of its destinations, the last `refuse`
/// members left out (a partial success).
fn targets(upload: &Upload, refuse: usize) -> Vec<(String, Vec<String>)> {
    let kept = upload.members.len().saturating_sub(refuse);
    upload
        .destinations
        .iter()
        .map(|destination| {
            let members = upload.members[..kept]
                .iter()
                .filter(|m| {
                    m.rejected.is_none()
                        && !m.identifiers.is_empty()
                        && (m.references.is_empty()
                            || destination
                                .reference
                                .as_ref()
                                .is_some_and(|r| m.references.contains(r)))
                })
                .map(|m| m.identifiers.join("|"))
                .collect();
            (destination.list_id.clone(), members)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Handlers

type Injection = Option<Extension<Injected>>;

fn injected_failure(injected: &Injection) -> bool {
    matches!(injected, Some(Extension(Injected(Fault::RequestFailed))))
}

/// Members a `PartialSuccess` fault refuses, and why.
fn injected_refusal(injected: &Injection) -> Option<(usize, String)> {
    match injected {
        Some(Extension(Injected(Fault::PartialSuccess { refuse, reason }))) => {
            Some((*refuse, reason.clone()))
        }
        _ => None,
    }
}

async fn ingest(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    injected: Injection,
    body: Bytes,
) -> Response {
    upload(&state, &headers, &injected, &body, Kind::Ingest).unwrap_or_else(ApiError::into_response)
}

async fn remove(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    injected: Injection,
    body: Bytes,
) -> Response {
    upload(&state, &headers, &injected, &body, Kind::Remove).unwrap_or_else(ApiError::into_response)
}

fn upload(
    state: &GoogleState,
    headers: &HeaderMap,
    injected: &Injection,
    body: &[u8],
    kind: Kind,
) -> Result<Response, ApiError> {
    state.process_due();
    state.authorize(headers)?;
    state.take_quota("IngestionMutateRequestsPerMinutePerProject")?;
    let upload = parse_upload(body, kind)?;
    state.check_login_in_body(&upload.destinations)?;
    if upload.validate_only {
        return Ok(json_response(StatusCode::OK, &json!({})));
    }
    let fail = injected_failure(injected);
    let refusal = injected_refusal(injected);
    let refuse = refusal
        .as_ref()
        .map_or(0, |(n, _)| (*n).min(upload.members.len()));
    let mut errors: Vec<(String, usize)> = vec![];
    for member in &upload.members {
        if let Some(reason) = member.rejected {
            match errors.iter_mut().find(|(r, _)| r == reason) {
                Some((_, n)) => *n += 1,
                None => errors.push((reason.to_string(), 1)),
            }
        }
    }
    if let Some((_, reason)) = refusal.filter(|_| refuse > 0) {
        errors.push((reason, refuse));
    }
    let effect = Effect::Upload(kind, targets(&upload, refuse), std::time::SystemTime::now());
    Ok(state.accept(Operation {
        kind: match kind {
            Kind::Ingest => OpKind::Ingest,
            Kind::Remove => OpKind::Remove,
        },
        destinations: upload.destinations.into_iter().map(|d| d.echo).collect(),
        composite: upload.composite,
        records: upload.members.len(),
        type_counts: upload.type_counts,
        errors,
        failed: fail,
        polls: 0,
        effect: Some(effect),
        accepted_at: Instant::now(),
    }))
}

async fn remove_all(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    injected: Injection,
    body: Bytes,
) -> Response {
    let result = (|| {
        state.process_due();
        state.authorize(&headers)?;
        state.take_quota("IngestionMutateRequestsPerMinutePerProject")?;
        let value = parse_body(&body)?;
        let root = Obj::of(&value, String::new())?;
        root.known(&["destinations", "removeAsOfTime", "validateOnly"])?;
        let now = std::time::SystemTime::now();
        let as_of = match root.string("removeAsOfTime")? {
            None => now,
            Some(t) => humantime::parse_rfc3339_weak(t).map_err(|_| {
                ApiError::invalid(vec![violation(
                    "remove_as_of_time".into(),
                    "Invalid value for a timestamp.",
                    "INVALID_ARGUMENT",
                )])
            })?,
        };
        // A future time is refused (§2.3).
        if as_of > now + Duration::from_secs(1) {
            return Err(ApiError::invalid(vec![violation(
                "remove_as_of_time".into(),
                "The remove as of time is in the future.",
                "INVALID_REMOVE_AS_OF_TIME",
            )]));
        }
        let destinations = destinations(&root)?;
        if root.boolean("validateOnly")? {
            return Ok(json_response(StatusCode::OK, &json!({})));
        }
        let failed = injected_failure(&injected);
        let effect = Effect::RemoveAll(
            destinations.iter().map(|d| d.list_id.clone()).collect(),
            as_of,
        );
        Ok(state.accept(Operation {
            kind: OpKind::RemoveAll,
            destinations: destinations.into_iter().map(|d| d.echo).collect(),
            composite: false,
            records: 0,
            type_counts: [0; 3],
            errors: vec![],
            failed,
            polls: 0,
            effect: Some(effect),
            accepted_at: Instant::now(),
        }))
    })();
    result.unwrap_or_else(ApiError::into_response)
}

async fn request_status(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let result = (|| {
        state.process_due();
        state.authorize(&headers)?;
        state.take_quota("IngestionReadRequestsPerMinutePerProject")?;
        let query = uri.query().unwrap_or("");
        let id = form_pairs(query.as_bytes())
            .into_iter()
            .find(|(k, _)| k == "requestId" || k == "request_id")
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| required("request_id".into()))?;
        let mut operations = state.operations.lock();
        let Some(operation) = operations.get_mut(&id) else {
            return Err(ApiError::invalid(vec![violation(
                "request_id".into(),
                "Request status can only be retrieved for requests that succeed and don't have \
                 validate_only=true.",
                "INVALID_REQUEST_ID",
            )]));
        };
        let body = operation.body();
        operation.polls += 1;
        Ok(json_response(StatusCode::OK, &body))
    })();
    result.unwrap_or_else(ApiError::into_response)
}

async fn create_user_list(
    State(state): State<Arc<GoogleState>>,
    Path((account_type, account_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let result = (|| {
        state.authorize(&headers)?;
        state.check_login_account(&headers)?;
        state.take_quota("ManagementMutateRequestsPerMinutePerProject")?;
        if !ACCOUNT_TYPES.contains(&account_type.as_str()) || account_type.ends_with("UNSPECIFIED")
        {
            return Err(ApiError::invalid(vec![violation(
                "parent".into(),
                "The account type is invalid.",
                "INVALID_RESOURCE_NAME",
            )]));
        }
        if !is_number(&account_id) {
            return Err(ApiError::invalid(vec![violation(
                "parent".into(),
                "String is not a valid number.",
                "INVALID_NUMBER_FORMAT",
            )]));
        }
        let value = parse_body(&body)?;
        let list = Obj::of(&value, "user_list".into())?;
        list.known(&[
            "name",
            "id",
            "readOnly",
            "displayName",
            "description",
            "membershipStatus",
            "integrationCode",
            "membershipDuration",
            "closingReason",
            "accessReason",
            "accountAccessStatus",
            "sizeInfo",
            "targetNetworkInfo",
            "ingestedUserListInfo",
        ])?;
        let display_name = list.string("displayName")?.unwrap_or("").to_owned();
        if display_name.is_empty() {
            return Err(required("user_list.display_name".into()));
        }
        let validate_only = form_pairs(uri.query().unwrap_or("").as_bytes())
            .iter()
            .any(|(k, v)| (k == "validateOnly" || k == "validate_only") && v == "true");
        let key = (account_id.clone(), display_name.clone());
        if state.list_names.lock().contains(&key) {
            return Err(ApiError::invalid(vec![violation(
                "user_list.display_name".into(),
                "The display name is already used by another user list of the account.",
                "DISPLAY_NAME_ALREADY_USED",
            )]));
        }
        let id = (900_000_000 + state.next_id.fetch_add(1, Ordering::SeqCst)).to_string();
        if !validate_only {
            state.list_names.lock().insert(key);
            state.lists.lock().entry(id.clone()).or_default();
        }
        let info = list
            .get("ingestedUserListInfo")
            .cloned()
            .unwrap_or_else(|| {
                json!({"uploadKeyTypes": ["CONTACT_ID"],
                   "contactIdInfo": {"dataSourceType": "DATA_SOURCE_TYPE_FIRST_PARTY"}})
            });
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "name": format!("accountTypes/{account_type}/accounts/{account_id}/userLists/{id}"),
                "id": id,
                "readOnly": false,
                "displayName": display_name,
                "description": list.string("description")?.unwrap_or(""),
                "membershipStatus": list.string("membershipStatus")?.unwrap_or("OPEN"),
                "membershipDuration": list.string("membershipDuration")?.unwrap_or("46656000s"),
                "accessReason": "OWNED",
                "sizeInfo": {"displayNetworkMembersCount": "0", "searchNetworkMembersCount": "0"},
                "targetNetworkInfo": {"eligibleForDisplay": true},
                "ingestedUserListInfo": info,
            }),
        ))
    })();
    result.unwrap_or_else(ApiError::into_response)
}

/// `userLists.get` (§2.5): the resource with `sizeInfo` from the stored members.
async fn get_user_list(
    State(state): State<Arc<GoogleState>>,
    Path((account_type, account_id, list_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        state.process_due();
        state.authorize(&headers)?;
        state.check_login_account(&headers)?;
        state.take_quota("ManagementReadRequestsPerMinutePerProject")?;
        // Numeric ids exist from their first use (as for uploads); others are not found.
        if !is_number(&list_id) {
            let (canonical, message) = canonical(StatusCode::NOT_FOUND);
            return Err(ApiError::rpc(
                StatusCode::NOT_FOUND,
                canonical,
                message,
                vec![],
            ));
        }
        let size = state
            .lists
            .lock()
            .get(&list_id)
            .map_or(0, BTreeSet::len)
            .to_string();
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "name": format!("accountTypes/{account_type}/accounts/{account_id}/userLists/{list_id}"),
                "id": list_id,
                "readOnly": false,
                "membershipStatus": "OPEN",
                "accessReason": "OWNED",
                "sizeInfo": {"displayNetworkMembersCount": size, "searchNetworkMembersCount": size},
                "targetNetworkInfo": {"eligibleForDisplay": true},
                "ingestedUserListInfo": {"uploadKeyTypes": ["CONTACT_ID"],
                    "contactIdInfo": {"dataSourceType": "DATA_SOURCE_TYPE_FIRST_PARTY",
                        "matchRatePercentage": state.match_rate.load(Ordering::SeqCst)}},
            }),
        ))
    })();
    result.unwrap_or_else(ApiError::into_response)
}

async fn not_found() -> Response {
    let (canonical, message) = canonical(StatusCode::NOT_FOUND);
    ApiError::rpc(StatusCode::NOT_FOUND, canonical, message, vec![]).into_response()
}
