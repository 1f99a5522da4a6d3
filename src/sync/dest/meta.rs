//! `meta`: Marketing API Custom Audiences (`../shared/adnet/meta.md`).
//!
//! Adds are `POST /{audience_id}/users`, removals the same with `method=DELETE` in the form
//! body (a DELETE with a large query string breaks), a full resync is a `/usersreplace` session.
//! One multi-key schema for every request, values SHA-256 hex, a missing value `""`. Requests
//! stay under 10,000 rows and ~60 KB. Meta signals throttling as HTTP 400: errors are classified
//! by `error.code`, and the wait comes from `x-business-use-case-usage`.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::{Accepted, Batch, Destination, ListRef, PushError, ReplaceStart};
use crate::ingest::identity::{hex_lower, meta_country, meta_postal, sha256};
use crate::sync::member::RemoteMember;

/// Most rows per request.
pub const MAX_ROWS: usize = 10_000;
/// Largest request body we send (Meta's observed limit is ~65 KB).
pub const MAX_BODY_BYTES: usize = 60_000;
/// The schema every audience uses, so an audience never sees two schemas (error 2650).
pub const SCHEMA: [&str; 6] = ["EMAIL", "PHONE", "FN", "LN", "ZIP", "COUNTRY"];

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
}

/// The Marketing API client.
pub struct MetaDestination {
    s: MetaSettings,
    token: Mutex<String>,
    http: reqwest::Client,
}

/// One member as a row in [`SCHEMA`] order.
pub fn row(m: &RemoteMember) -> [String; 6] {
    let h = |x: &Option<crate::ingest::identity::NetworkHashes>| {
        x.map(|n| hex_lower(&n.meta)).unwrap_or_default()
    };
    [
        h(&m.email),
        h(&m.phone),
        h(&m.first_name),
        h(&m.last_name),
        m.postal_code
            .as_deref()
            .map(|z| hex_lower(&sha256(&meta_postal(z, m.country.as_deref()))))
            .unwrap_or_default(),
        m.country
            .as_deref()
            .map(|c| hex_lower(&sha256(&meta_country(c))))
            .unwrap_or_default(),
    ]
}

/// Bytes one row adds to a form-encoded payload. Every value is 64 hex characters or empty,
/// so the size follows from which identifiers are present, without hashing anything.
fn row_bytes(m: &RemoteMember) -> usize {
    let present = [
        m.email.is_some(),
        m.phone.is_some(),
        m.first_name.is_some(),
        m.last_name.is_some(),
        m.postal_code.is_some(),
        m.country.is_some(),
    ];
    // Each value: its text plus "%22" twice, plus "%2C" between: percent-encoding triples
    // punctuation. A row is wrapped in %5B ... %5D and followed by %2C.
    present
        .iter()
        .map(|&p| if p { 64 } else { 0 } + 6 + 3)
        .sum::<usize>()
        + 9
}

impl MetaDestination {
    /// A client; no request is made until the first push.
    pub fn new(s: MetaSettings) -> Result<Self, reqwest::Error> {
        let http = super::http_client(s.timeout)?;
        Ok(Self {
            token: Mutex::new(s.access_token.clone()),
            s,
            http,
        })
    }

    fn auth_params(&self) -> Vec<(String, String)> {
        let token = self.token.lock().clone();
        let mut p = vec![("access_token".to_string(), token.clone())];
        if let Some(secret) = &self.s.app_secret {
            if let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
                mac.update(token.as_bytes());
                p.push((
                    "appsecret_proof".into(),
                    hex::encode(mac.finalize().into_bytes()),
                ));
            }
        }
        p
    }

    fn payload(members: &[RemoteMember]) -> String {
        let data: Vec<[String; 6]> = members.iter().map(row).collect();
        json!({"schema": SCHEMA, "is_raw": true, "data": data}).to_string()
    }

    /// Posts a form; after a 190 it re-reads the token file once (rotated credentials) and
    /// sends again, for every call alike.
    async fn send(&self, path: &str, form: Vec<(String, String)>) -> Result<Value, PushError> {
        match self.send_once(path, form.clone()).await {
            Err(PushError::TokenExpired) if self.reload_token() => self.send_once(path, form).await,
            r => r,
        }
    }

    async fn send_once(
        &self,
        path: &str,
        mut form: Vec<(String, String)>,
    ) -> Result<Value, PushError> {
        form.extend(self.auth_params());
        let resp = self
            .http
            .post(format!("{}/{path}", self.s.api_base))
            .form(&form)
            .send()
            .await
            .map_err(super::transport_error)?;
        let status = resp.status();
        let usage_wait = resp
            .headers()
            .get("x-business-use-case-usage")
            .and_then(|v| v.to_str().ok())
            .and_then(regain_wait);
        let text = resp.text().await.map_err(super::transport_error)?;
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
        Err(self.classify(status.as_u16(), &body["error"], usage_wait))
    }

    fn classify(&self, status: u16, err: &Value, usage_wait: Option<Duration>) -> PushError {
        let code = err["code"].as_i64().unwrap_or(0);
        let sub = err["error_subcode"].as_i64().unwrap_or(0);
        let msg = err["message"].as_str().unwrap_or("");
        let reason = format!("HTTP {status} code {code}/{sub}: {msg}");
        let permanent = |advice: &str| PushError::Permanent {
            reason: reason.clone(),
            advice: advice.into(),
        };
        match code {
            80003 | 80000 | 80004 | 80014 | 17 | 4 | 32 | 613 => PushError::Throttled {
                reason,
                wait: usage_wait,
                daily: false,
            },
            190 => PushError::TokenExpired,
            200 if sub == 1870047 => permanent(
                "Meta refuses removals that would make the audience too small; grow it or delete it, then resync",
            ),
            200 if sub == 1870090 || sub == 1870034 => permanent(
                "accept the Custom Audience terms of service for the ad account (Business Manager > Audiences)",
            ),
            10 | 200..=299 => permanent("give the system user access to the ad account and audience"),
            2650 if sub == 1870145 => PushError::Throttled {
                reason,
                wait: Some(Duration::from_secs(60)),
                daily: false,
            },
            100 | 2650 | 2654 | 2635 | 105 | 194 => {
                permanent("fix the audience id / schema in the destination config, then resync")
            }
            _ if err["is_transient"].as_bool() == Some(true) || code == 1 || code == 2 => {
                PushError::Transient { reason }
            }
            _ if status == 413 => PushError::TooLarge,
            _ if status >= 500 || status == 0 => PushError::Transient { reason },
            _ => permanent("unexpected answer from the Marketing API; see the log"),
        }
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

/// Minutes to wait from `x-business-use-case-usage` (the largest
/// `estimated_time_to_regain_access` across its entries).
fn regain_wait(header: &str) -> Option<Duration> {
    let v: Value = serde_json::from_str(header).ok()?;
    let minutes = v
        .as_object()?
        .values()
        .flat_map(|entries| entries.as_array().into_iter().flatten())
        .filter_map(|e| e["estimated_time_to_regain_access"].as_u64())
        .max()?;
    (minutes > 0).then(|| Duration::from_secs(minutes * 60))
}

#[async_trait::async_trait]
impl Destination for MetaDestination {
    fn max_batch(&self) -> usize {
        MAX_ROWS
    }

    fn fit(&self, members: &[RemoteMember]) -> usize {
        let mut bytes = 200; // schema, is_raw, auth parameters
        let mut n = 0;
        for m in members.iter().take(MAX_ROWS) {
            bytes += row_bytes(m);
            if bytes > MAX_BODY_BYTES && n > 0 {
                break;
            }
            n += 1;
        }
        n
    }

    fn default_quota_per_hour(&self, lists: usize) -> u32 {
        // The Custom Audience business-use-case budget at the default tier: 5,000 + 40 ×
        // active custom audiences calls an hour per ad account (`adnet/meta.md` §5.3). The
        // account's other audiences only raise it.
        5_000 + 40 * lists as u32
    }

    async fn add(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        _batch: Batch,
    ) -> Result<Accepted, PushError> {
        let form = vec![("payload".to_string(), Self::payload(members))];
        self.send(&format!("{}/users", list.list_id), form)
            .await
            .map(|_| Accepted::default())
    }

    async fn remove(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        _batch: Batch,
    ) -> Result<Accepted, PushError> {
        let form = vec![
            ("method".to_string(), "DELETE".to_string()),
            ("payload".to_string(), Self::payload(members)),
        ];
        self.send(&format!("{}/users", list.list_id), form)
            .await
            .map(|_| Accepted::default())
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
        Some(Duration::from_secs(90 * 60))
    }

    async fn replace_batch(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        batch: Batch,
    ) -> Result<Accepted, PushError> {
        let form = vec![
            (
                "session".to_string(),
                json!({"session_id": batch.session_id, "batch_seq": batch.seq,
                       "last_batch_flag": batch.last, "estimated_num_total": batch.estimated_total})
                .to_string(),
            ),
            ("payload".to_string(), Self::payload(members)),
        ];
        self.send(&format!("{}/usersreplace", list.list_id), form)
            .await?;
        Ok(Accepted::default())
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
        let mut q = self.auth_params();
        q.push(("fields".into(), "id,operation_status".into()));
        let resp = self
            .http
            .get(format!("{}/{}", self.s.api_base, list.list_id))
            .query(&q)
            .send()
            .await
            .map_err(super::transport_error)?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(super::transport_error)?;
        if body.get("error").is_some() || !status.is_success() {
            return Err(self.classify(status.as_u16(), &body["error"], None));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appsecret_proof_matches_the_documented_vector() {
        let d = MetaDestination::new(MetaSettings {
            api_base: String::new(),
            access_token: "access_token".into(),
            access_token_file: None,
            app_secret: Some("app_secret".into()),
            ad_account_id: None,
            timeout: Duration::from_secs(1),
        })
        .expect("client");
        let p = d.auth_params();
        assert_eq!(
            p[1].1,
            "d52ddf968d622d8af8677906b7fbae09ac1f89f7cd5c1584b27544624cc23e5a"
        );
    }

    #[test]
    fn row_size_is_known_without_hashing() {
        let full = RemoteMember {
            email: Some(crate::ingest::identity::NetworkHashes {
                google: [1; 32],
                meta: [2; 32],
            }),
            country: Some("US".into()),
            postal_code: Some("10001".into()),
            ..RemoteMember::default()
        };
        let by_hashing: usize = row(&full).iter().map(|v| v.len() + 6 + 3).sum::<usize>() + 9;
        assert_eq!(row_bytes(&full), by_hashing);
    }

    #[test]
    fn usage_header_gives_the_wait_in_minutes() {
        let h = r#"{"1234":[{"type":"custom_audience","call_count":100,"estimated_time_to_regain_access":3}]}"#;
        assert_eq!(regain_wait(h), Some(Duration::from_secs(180)));
        assert_eq!(regain_wait("{}"), None);
    }
}
