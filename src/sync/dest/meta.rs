//! `meta`: Marketing API Custom Audiences (`../shared/adnet/meta.md`).
//!
//! Adds are `POST /{audience_id}/users`, removals the same with `method=DELETE` in the form
//! body (a DELETE with a large query string breaks, §1.1), a full resync is a `/usersreplace`
//! session (§2.6, §3). One multi-key schema for every request, values SHA-256 hex, a missing
//! value `""` (§2.1). Requests carry up to Meta's documented 10,000 rows (§3); a request the
//! network finds too large is reported as [`PushError::TooLarge`] so the engine can shrink.
//!
//! Every answer is final (§2.4): what Meta received, and which rows it found invalid. Meta
//! signals throttling as HTTP 400, so errors are classified by `error.code`/`error_subcode`
//! (§5.1–5.2), and the budget headers are read on every answer (§5.4) for
//! [`Destination::usage`].
//!
//! Credentials never travel in a URL, where every HTTP error and proxy log would show them:
//! `access_token` and `appsecret_proof` go in the form body of every POST (the guide's own
//! examples send them as form fields, §1.3); reads send the token in an `Authorization:
//! Bearer` header (how Meta's WhatsApp Cloud API docs call graph.facebook.com; the Marketing
//! API pages only show the parameter) and only the proof, a keyed hash worthless without the
//! token, in the query. Error text from the network is scrubbed of the token, the app secret
//! and the proof before it reaches any error (the Graph API echoes a malformed token in its
//! 190 message).

use std::collections::VecDeque;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use serde_json::{json, Value};

use super::{Accepted, Batch, Destination, ListInfo, ListRef, PushError, ReplaceStart, Usage};
use crate::sync::member::RemoteMember;

mod answer;
pub mod shape;

use answer::*;
use shape::row;

/// Most rows per request (`adnet/meta.md` §3: "10,000 records per request").
pub const MAX_ROWS: usize = 10_000;
/// The schema every audience uses, so an audience never sees two schemas (error 2650, §2.1).
pub const SCHEMA: [&str; 6] = ["EMAIL", "PHONE", "FN", "LN", "ZIP", "COUNTRY"];
/// Parameter bytes from which a connection broken while sending counts as a request too large
/// rather than a passing failure: large bodies are what breaks (a 10,000-row DELETE, §1.1
/// S20), and ~65 KB is where a third party found requests start to fail (§1.1 S17).
const LARGE_BODY_BYTES: usize = 64 * 1024;
/// Sessions whose cumulative `num_received` is remembered (one per push in flight; pushes
/// that end without their last batch are forgotten oldest first).
const SESSIONS_KEPT: usize = 64;
/// What a refused row is counted under when Meta gives no reason.
const INVALID_ENTRY: &str = "invalid entry";
/// Stands in for a credential in any text from the network.
const REDACTED: &str = "[redacted]";

/// Settings of one Meta destination.
#[derive(Debug, Clone)]
pub struct MetaSettings {
    /// e.g. `https://graph.facebook.com/v26.0`.
    pub api_base: String,
    /// System-user access token (read from a credential file).
    pub access_token: String,
    /// Where the token came from, re-read once after a 190 (rotated credentials).
    pub access_token_file: Option<std::path::PathBuf>,
    /// App secret, for `appsecret_proof`.
    pub app_secret: Option<String>,
    /// Ad account (digits) where audiences are created.
    pub ad_account_id: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How long a replace session stays open after its first batch (§3: 90 minutes).
    pub replace_window: Duration,
}

/// The Marketing API client.
pub struct MetaDestination {
    s: MetaSettings,
    token: Mutex<String>,
    http: reqwest::Client,
    /// Budget use from the latest answer that carried usage headers.
    usage: Mutex<Option<Usage>>,
    /// `num_received` seen so far per session id: Meta counts per session (§2.4), the engine
    /// wants each request's own count.
    sessions: Mutex<VecDeque<(u64, u64)>>,
}

/// A request's form parameters, without credentials.
type Form = Vec<(String, String)>;

impl MetaDestination {
    /// A client; no request is made until the first push.
    pub fn new(s: MetaSettings) -> Result<Self, reqwest::Error> {
        let http = super::http_client(s.timeout)?;
        Ok(Self {
            token: Mutex::new(s.access_token.clone()),
            s,
            http,
            usage: Mutex::new(None),
            sessions: Mutex::new(VecDeque::new()),
        })
    }

    /// `appsecret_proof` for the current token (§1.2), when an app secret is configured.
    fn proof(&self, token: &str) -> Option<String> {
        let secret = self.s.app_secret.as_ref()?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).ok()?;
        mac.update(token.as_bytes());
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// `text` with every credential this client holds replaced.
    fn redact(&self, text: &str) -> String {
        let token = self.token.lock().clone();
        let mut out = text.to_string();
        let secrets = [
            Some(token.clone()),
            Some(self.s.access_token.clone()),
            self.s.app_secret.clone(),
            self.proof(&token),
        ];
        for secret in secrets.into_iter().flatten() {
            if !secret.is_empty() {
                out = out.replace(&secret, REDACTED);
            }
        }
        out
    }

    fn payload(members: &[RemoteMember]) -> String {
        let data: Vec<[String; 6]> = members.iter().map(row).collect();
        json!({"schema": SCHEMA, "is_raw": true, "data": data}).to_string()
    }

    /// The `session` parameter (§2.2) for one batch.
    fn session(batch: Batch) -> String {
        json!({"session_id": batch.session_id, "batch_seq": batch.seq,
               "last_batch_flag": batch.last, "estimated_num_total": batch.estimated_total})
        .to_string()
    }

    /// Posts a form; after a 190 it re-reads the token file once (rotated credentials) and
    /// sends again, for every call alike.
    async fn send(&self, path: &str, form: Form) -> Result<Value, PushError> {
        match self.send_once(path, form.clone()).await {
            Err(PushError::TokenExpired) if self.reload_token() => self.send_once(path, form).await,
            r => r,
        }
    }

    async fn send_once(&self, path: &str, mut form: Form) -> Result<Value, PushError> {
        let size: usize = form.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let token = self.token.lock().clone();
        if let Some(proof) = self.proof(&token) {
            form.push(("appsecret_proof".into(), proof));
        }
        form.push(("access_token".into(), token));
        let request = self
            .http
            .post(format!("{}/{path}", self.s.api_base))
            .form(&form);
        self.exchange(request, size).await
    }

    /// Reads a node's fields with the token in a header, re-reading the token file once after
    /// a 190 like [`Self::send`].
    async fn read(&self, node: &str, fields: &str) -> Result<Value, PushError> {
        match self.read_once(node, fields).await {
            Err(PushError::TokenExpired) if self.reload_token() => {
                self.read_once(node, fields).await
            }
            r => r,
        }
    }

    async fn read_once(&self, node: &str, fields: &str) -> Result<Value, PushError> {
        let token = self.token.lock().clone();
        let mut query = vec![("fields", fields.to_string())];
        if let Some(proof) = self.proof(&token) {
            query.push(("appsecret_proof", proof));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            PushError::Permanent {
                reason: "the Meta access token holds characters an HTTP header cannot carry".into(),
                advice: "check the access token file (one line, the token only)".into(),
            }
        })?;
        auth.set_sensitive(true);
        let request = self
            .http
            .get(format!("{}/{node}", self.s.api_base))
            .query(&query)
            .header(AUTHORIZATION, auth);
        self.exchange(request, 0).await
    }

    /// Sends a request and reads its answer: usage headers on every answer, success or not;
    /// the error envelope classified; every failure free of URLs and credentials.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        size: usize,
    ) -> Result<Value, PushError> {
        let resp = request.send().await.map_err(|e| send_error(e, size))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if let Some(usage) = usage(&headers) {
            *self.usage.lock() = Some(usage);
        }
        let text = resp.text().await.map_err(super::transport_error)?;
        // A front end refusing the body answers before the Graph layer, with or without an
        // error envelope.
        if status == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
            return Err(PushError::TooLarge);
        }
        let body: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(_) => {
                return Err(PushError::Transient {
                    reason: format!("HTTP {status} with a body that is not JSON"),
                })
            }
        };
        if body.get("error").is_none() && status.is_success() {
            return Ok(body);
        }
        Err(self.classify(status.as_u16(), &body["error"], throttle_wait(&headers)))
    }

    fn classify(&self, status: u16, err: &Value, wait: Option<Duration>) -> PushError {
        if status == 413 {
            return PushError::TooLarge;
        }
        let code = err["code"].as_i64().unwrap_or(0);
        let sub = err["error_subcode"].as_i64().unwrap_or(0);
        let msg = self.redact(err["message"].as_str().unwrap_or(""));
        let reason = format!("HTTP {status} code {code}/{sub}: {msg}");
        let permanent = |advice: &str| PushError::Permanent {
            reason: reason.clone(),
            advice: advice.into(),
        };
        // §5.2: the codes that matter and what a client does about each.
        match code {
            80003 | 80000 | 80004 | 80014 | 17 | 4 | 32 | 613 => PushError::Throttled {
                reason,
                wait,
                daily: false,
            },
            190 => PushError::TokenExpired,
            // §6 flagging: operation_status 471 blocks uploads until a person appeals.
            100 if sub == 1713230 => permanent(
                "Meta flagged the audience for integrity (operation_status 471): appeal the \
                 restriction in Audience Manager, or create a new audience and name it in the config",
            ),
            // 105 "too many parameters" (§5.2), or an invalid-parameter error naming the
            // request's size.
            105 => PushError::TooLarge,
            100 if names_size(&msg) => PushError::TooLarge,
            200 if sub == 1870047 => permanent(
                "Meta refuses removals that would make the audience too small; grow it or delete it, then resync",
            ),
            200 if sub == 1870090 || sub == 1870034 => permanent(
                "accept the Custom Audience terms of service for the ad account (Business Manager > Audiences)",
            ),
            10 | 200..=299 => permanent("give the system user access to the ad account and audience"),
            // §3: one replace at a time; during one, adds and removals are refused too. Wait
            // for Normal (200) and resend.
            2650 if sub == 1870145 => PushError::Throttled {
                reason,
                wait: wait.or(Some(Duration::from_secs(60))),
                daily: false,
            },
            // §3/§5.2: the session timed out (what arrived within 90 minutes replaced the
            // audience), already received its last batch, never started (no batch_seq 1
            // arrived: nothing of it stands), or broke part-way. The engine starts a new
            // session or goes on by adds.
            2650 if matches!(sub, 1870158 | 1870159 | 1870147 | 1870148) => {
                PushError::SessionEnded { reason }
            }
            2650 if sub == 1870144 => permanent(
                "Meta replaces only audiences under 100 million people; keep this one by adds and \
                 removals, or create a new audience",
            ),
            100 | 2650 | 2654 | 2635 | 194 => {
                permanent("fix the audience id / schema in the destination config, then resync")
            }
            _ if err["is_transient"].as_bool() == Some(true) || code == 1 || code == 2 => {
                PushError::Transient { reason }
            }
            _ if status >= 500 || status == 0 => PushError::Transient { reason },
            _ => permanent("unexpected answer from the Marketing API; see the log"),
        }
    }

    /// What a `/users` or `/usersreplace` answer says about the request (§2.4).
    fn accepted(&self, body: &Value, members: &[RemoteMember], batch: Batch) -> Accepted {
        let received = count(&body["num_received"]).map(|total| {
            let before = self.session_received(batch, total);
            // Cumulative per session; an answer counting less than before counted this
            // request alone. More than was sent means an earlier request of the session
            // arrived although its answer was lost: that belongs to none of these rows.
            total
                .checked_sub(before)
                .unwrap_or(total)
                .min(members.len() as u64)
        });
        let invalid = count(&body["num_invalid_entries"]).unwrap_or(0);
        Accepted {
            request_id: None,
            refused: refused(members, invalid, &body["invalid_entry_samples"]),
            received,
        }
    }

    /// The session's `num_received` before this answer; records `total` as the new figure
    /// (or forgets the session after its last batch).
    fn session_received(&self, batch: Batch, total: u64) -> u64 {
        let mut sessions = self.sessions.lock();
        let at = sessions.iter().position(|(id, _)| *id == batch.session_id);
        let before = at.map_or(0, |i| sessions[i].1);
        if let Some(i) = at {
            sessions.remove(i);
        }
        if !batch.last {
            if sessions.len() >= SESSIONS_KEPT {
                sessions.pop_front();
            }
            sessions.push_back((batch.session_id, total.max(before)));
        }
        before
    }

    /// A batch to `/users` (with `method`, e.g. `DELETE`) or `/usersreplace`, in its session.
    async fn upload(
        &self,
        list: &ListRef,
        edge: &str,
        members: &[RemoteMember],
        batch: Batch,
        method: Option<&str>,
    ) -> Result<Accepted, PushError> {
        let mut form = vec![
            ("session".to_string(), Self::session(batch)),
            ("payload".to_string(), Self::payload(members)),
        ];
        if let Some(m) = method {
            form.insert(0, ("method".to_string(), m.to_string()));
        }
        let body = self.send(&format!("{}/{edge}", list.list_id), form).await?;
        Ok(self.accepted(&body, members, batch))
    }

    /// Re-reads the token file (credentials may have been rotated) after a 190.
    pub fn reload_token(&self) -> bool {
        let Some(path) = &self.s.access_token_file else {
            return false;
        };
        match std::fs::read_to_string(path) {
            Ok(t) if !t.trim().is_empty() && t.trim() != *self.token.lock() => {
                *self.token.lock() = t.trim().to_string();
                true
            }
            _ => false,
        }
    }
}

#[async_trait::async_trait]
impl Destination for MetaDestination {
    fn max_batch(&self) -> usize {
        MAX_ROWS
    }

    fn default_quota_per_hour(&self, lists: usize) -> u32 {
        // The Custom Audience business-use-case budget at the default tier: 5,000 + 40 ×
        // active custom audiences calls an hour per ad account (`adnet/meta.md` §5.3). The
        // account's other audiences only raise it.
        5_000 + 40 * lists as u32
    }

    fn usage(&self) -> Option<Usage> {
        *self.usage.lock()
    }

    async fn add(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        batch: Batch,
    ) -> Result<Accepted, PushError> {
        self.upload(list, "users", members, batch, None).await
    }

    async fn remove(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        batch: Batch,
    ) -> Result<Accepted, PushError> {
        self.upload(list, "users", members, batch, Some("DELETE"))
            .await
    }

    async fn begin_replace(
        &self,
        _list: &ListRef,
        _as_of: std::time::SystemTime,
    ) -> Result<ReplaceStart, PushError> {
        // The session starts with its first batch.
        Ok(ReplaceStart::default())
    }

    fn replace_window(&self) -> Option<Duration> {
        // §3: the session closes 90 minutes after its first batch.
        Some(self.s.replace_window)
    }

    async fn replace_batch(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        batch: Batch,
    ) -> Result<Accepted, PushError> {
        self.upload(list, "usersreplace", members, batch, None)
            .await
    }

    async fn list_info(&self, list: &ListRef) -> Result<Option<ListInfo>, PushError> {
        let v = self
            .read(
                &list.list_id,
                "approximate_count_lower_bound,approximate_count_upper_bound,operation_status,delivery_status",
            )
            .await?;
        Ok(Some(list_info(&v)))
    }

    async fn create_list(&self, audience: &str) -> Result<String, PushError> {
        let account = self.s.ad_account_id.as_deref().unwrap_or_default();
        let form = vec![
            ("name".to_string(), format!("audiencesync {audience}")),
            ("subtype".to_string(), "CUSTOM".to_string()),
            (
                "customer_file_source".to_string(),
                "USER_PROVIDED_ONLY".to_string(),
            ),
            (
                "description".to_string(),
                format!("Customer list maintained by audiencesync (audience `{audience}`)"),
            ),
        ];
        let v = self
            .send(&format!("act_{account}/customaudiences"), form)
            .await?;
        match &v["id"] {
            Value::String(id) => Ok(id.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(PushError::Transient {
                reason: "customaudiences create answered without an id".into(),
            }),
        }
    }

    async fn check(&self, list: &ListRef) -> Result<(), PushError> {
        self.read(&list.list_id, "id,operation_status")
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::NetworkHashes;
    use crate::sync::dest::Refused;
    use reqwest::header::HeaderMap;

    fn dest(secret: Option<&str>) -> MetaDestination {
        MetaDestination::new(MetaSettings {
            api_base: String::new(),
            access_token: "access_token".into(),
            access_token_file: None,
            app_secret: secret.map(str::to_string),
            ad_account_id: None,
            timeout: Duration::from_secs(1),
            replace_window: Duration::from_secs(90 * 60),
        })
        .expect("client")
    }

    fn member(email: u8, phone: Option<u8>) -> RemoteMember {
        let h = |b: u8| NetworkHashes {
            google: [b; 32],
            meta: [b; 32],
        };
        RemoteMember {
            email: Some(h(email)),
            phone: phone.map(h),
            country: Some("US".into()),
            postal_code: Some("10001".into()),
            ..RemoteMember::default()
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn appsecret_proof_matches_the_documented_vector() {
        assert_eq!(
            dest(Some("app_secret")).proof("access_token").as_deref(),
            Some("d52ddf968d622d8af8677906b7fbae09ac1f89f7cd5c1584b27544624cc23e5a")
        );
        assert_eq!(dest(None).proof("access_token"), None);
    }

    #[test]
    fn usage_is_the_highest_percentage_of_every_budget_header() {
        let buc = r#"{"1234":[{"type":"custom_audience","call_count":42,"total_cputime":5,"total_time":61,"estimated_time_to_regain_access":3},{"type":"ads_management","call_count":99,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":0}]}"#;
        let u = usage(&headers(&[("x-business-use-case-usage", buc)])).expect("usage");
        assert_eq!(u.percent, 61, "only custom_audience entries count");
        assert_eq!(u.regain, Some(Duration::from_secs(180)), "minutes");
        let u = usage(&headers(&[
            ("x-business-use-case-usage", buc),
            (
                "x-ad-account-usage",
                r#"{"acc_id_util_pct":72.5,"reset_time_duration":400}"#,
            ),
            (
                "x-app-usage",
                r#"{"call_count":28,"total_time":25,"total_cputime":25}"#,
            ),
        ]))
        .expect("usage");
        assert_eq!(u.percent, 73);
        assert_eq!(u.regain, Some(Duration::from_secs(400)), "seconds");
        let u = usage(&headers(&[(
            "x-app-usage",
            r#"{"call_count":128,"total_time":25,"total_cputime":25}"#,
        )]))
        .expect("usage");
        assert_eq!(u.percent, 100, "clamped");
        assert_eq!(usage(&headers(&[])), None);
        assert_eq!(
            usage(&headers(&[("x-business-use-case-usage", "{}")])),
            None,
            "an empty header says nothing"
        );
    }

    #[test]
    fn throttle_wait_takes_the_longest_hint() {
        let h = r#"{"1234":[{"type":"ads_management","call_count":100,"estimated_time_to_regain_access":3}]}"#;
        assert_eq!(
            throttle_wait(&headers(&[("x-business-use-case-usage", h)])),
            Some(Duration::from_secs(180))
        );
        let spent = r#"{"acc_id_util_pct":100,"reset_time_duration":300}"#;
        let room = r#"{"acc_id_util_pct":40,"reset_time_duration":300}"#;
        assert_eq!(
            throttle_wait(&headers(&[
                ("x-business-use-case-usage", h),
                ("x-ad-account-usage", spent)
            ])),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            throttle_wait(&headers(&[("x-ad-account-usage", room)])),
            None
        );
    }

    #[test]
    fn samples_name_the_rows_they_carry_in_either_shape() {
        let members = [member(1, Some(9)), member(2, None), member(3, None)];
        let rows: Vec<[String; 6]> = members.iter().map(row).collect();
        // A map of whole entries to reasons.
        let samples = json!({ rows[1].join(","): "Invalid hash for EMAIL" });
        let r = refused(&members, 3, &samples);
        assert_eq!(r.indices, [1]);
        assert_eq!(r.by_reason["Invalid hash for EMAIL"], 1);
        assert_eq!(r.by_reason[INVALID_ENTRY], 2, "unnamed entries still count");
        assert_eq!(r.total(), 3);
        // An array of single values: the phone names row 0; a shared country hash names none.
        let samples = json!([rows[0][1].clone(), rows[2][5].clone()]);
        let r = refused(&members, 2, &samples);
        assert_eq!(r.indices, [0]);
        assert_eq!(r.by_reason[INVALID_ENTRY], 2);
        // A map keyed by position with reasons only: counted, nobody named.
        let r = refused(&members, 1, &json!({"0": "EMAIL: not a SHA-256"}));
        assert!(r.indices.is_empty());
        assert_eq!(r.by_reason["EMAIL: not a SHA-256"], 1);
        // Nothing invalid.
        assert_eq!(refused(&members, 0, &json!({})), Refused::default());
    }

    #[test]
    fn received_is_per_request_although_meta_counts_per_session() {
        let d = dest(None);
        let members = [member(1, None), member(2, None), member(3, None)];
        let batch = |seq, last| Batch {
            session_id: 77,
            seq,
            last,
            estimated_total: 7,
        };
        let answer = |n: u64| json!({"num_received": n, "num_invalid_entries": 0});
        assert_eq!(
            d.accepted(&answer(3), &members, batch(1, false)).received,
            Some(3)
        );
        assert_eq!(
            d.accepted(&answer(6), &members, batch(2, false)).received,
            Some(3)
        );
        assert_eq!(
            d.accepted(&json!({"num_received": "7"}), &members[..1], batch(3, true))
                .received,
            Some(1)
        );
        // The session is forgotten after its last batch: the same id counts from zero.
        assert_eq!(
            d.accepted(&answer(2), &members, batch(1, false)).received,
            Some(2)
        );
        assert_eq!(
            d.accepted(&json!({}), &members, batch(2, false)).received,
            None
        );
    }

    #[test]
    fn errors_are_classified_by_code_and_scrubbed_of_credentials() {
        let d = dest(Some("app_secret"));
        let err = |code: i64, sub: Option<i64>, msg: &str| json!({"code": code, "error_subcode": sub, "message": msg});
        let c = |code, sub, msg| d.classify(400, &err(code, sub, msg), None);
        assert_eq!(
            c(105, None, "(#105) Too many parameters"),
            PushError::TooLarge
        );
        assert_eq!(
            c(100, None, "(#100) Request too large: 70000 bytes"),
            PushError::TooLarge
        );
        assert!(matches!(
            c(100, None, "(#100) The parameter payload is required"),
            PushError::Permanent { .. }
        ));
        for sub in [1870158, 1870159, 1870147, 1870148] {
            assert!(
                matches!(c(2650, Some(sub), "x"), PushError::SessionEnded { .. }),
                "{sub}"
            );
        }
        assert!(matches!(
            c(2650, Some(1870145), "x"),
            PushError::Throttled { wait: Some(_), .. }
        ));
        match c(100, Some(1713230), "Invalid parameter") {
            PushError::Permanent { advice, .. } => assert!(advice.contains("Audience Manager")),
            other => panic!("{other:?}"),
        }
        assert_eq!(d.classify(413, &Value::Null, None), PushError::TooLarge);
        let proof = d.proof("access_token").expect("proof");
        let e = c(
            100,
            None,
            &format!("(#100) Malformed access token access_token; app_secret; {proof}"),
        );
        let text = format!("{e:?}");
        assert!(
            text.contains("Malformed access token [redacted]; [redacted]; [redacted]"),
            "{text}"
        );
    }

    #[test]
    fn list_info_reads_counts_and_status() {
        let info = list_info(&json!({
            "approximate_count_lower_bound": 4900, "approximate_count_upper_bound": 5100,
            "operation_status": {"code": 414, "description": "Replace in progress"},
            "delivery_status": {"code": 200, "description": "ready"}}));
        assert_eq!((info.size_lower, info.size_upper), (Some(4900), Some(5100)));
        assert!(info.replace_in_progress);
        assert_eq!(
            info.operation_status.as_deref(),
            Some("414 Replace in progress")
        );
        let info = list_info(&json!({"approximate_count_lower_bound": -1,
            "operation_status": {"code": 471, "description": "Flagged"}}));
        assert_eq!(info.size_lower, None);
        assert!(info
            .blocked
            .as_deref()
            .is_some_and(|b| b.contains("appeal")));
        let info =
            list_info(&json!({"operation_status": {"code": 415, "description": "Replace failed"}}));
        assert_eq!(info.replace_failed.as_deref(), Some("415 Replace failed"));
        let info = list_info(
            &json!({"operation_status": {"code": 412, "description": "Many invalid entries"}}),
        );
        assert_eq!(
            info.operation_status.as_deref(),
            Some("412 Many invalid entries")
        );
        assert!(info.blocked.is_none() && !info.replace_in_progress);
    }
}
