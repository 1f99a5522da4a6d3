//! `google`: Customer Match through the Data Manager API (`../shared/adnet/google-data-manager.md`).
//!
//! `audienceMembers:ingest` / `:remove` / `:removeAll`, results polled with
//! `requestStatus:retrieve` (they are asynchronous), `encoding: HEX`, consent per member (only
//! members with both consents granted are ever sent), the Customer Match terms-of-service field,
//! and OAuth2 with a refresh token (token URL configurable). Fast-fail 400s name the refused
//! members (`audience_members[i]`), which the engine sets aside before resending the rest.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::{
    Accepted, Batch, Destination, ListInfo, ListRef, PushError, ReplaceStart, RequestState,
};
use crate::ingest::identity::{google_postal, hex_lower};
use crate::sync::member::RemoteMember;

/// Most members per request.
pub const MAX_MEMBERS: usize = 10_000;

/// The OAuth scope of the Data Manager API.
pub const SCOPE: &str = "https://www.googleapis.com/auth/datamanager";

/// The credentials file: a refresh token for an OAuth client, or a service-account key
/// (the JSON Google Cloud downloads), told apart by their fields.
#[derive(Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum GoogleCredentials {
    /// A service account's key (`"type": "service_account"`).
    ServiceAccount(ServiceAccountKey),
    /// An OAuth client with a user's refresh token.
    Refresh(RefreshCredentials),
}

impl std::fmt::Debug for GoogleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            Self::ServiceAccount(k) => write!(f, "ServiceAccount({})", k.client_email),
            Self::Refresh(_) => write!(f, "Refresh(..)"),
        }
    }
}

/// The fields of a service-account key file that the JWT bearer flow needs.
#[derive(Clone, serde::Deserialize)]
pub struct ServiceAccountKey {
    /// Must be `service_account`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The service account, e.g. `sync@project.iam.gserviceaccount.com`.
    pub client_email: String,
    /// PEM private key.
    pub private_key: String,
    /// Key id, sent as the JWT `kid`.
    #[serde(default)]
    pub private_key_id: Option<String>,
}

/// OAuth2 client credentials with a refresh token (the JSON file `LoadCredential=` provides).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RefreshCredentials {
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Long-lived refresh token for the datamanager scope.
    pub refresh_token: String,
}

/// Settings of one Google destination.
#[derive(Debug, Clone)]
pub struct GoogleSettings {
    /// e.g. `https://datamanager.googleapis.com/v1`.
    pub api_base: String,
    /// e.g. `https://oauth2.googleapis.com/token`.
    pub token_url: String,
    /// The Google Ads account that owns the lists.
    pub operating_account_id: String,
    /// A manager account with access, when the credentials belong to it.
    pub login_account_id: Option<String>,
    /// OAuth credentials.
    pub credentials: GoogleCredentials,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// The Data Manager API client.
pub struct GoogleDestination {
    s: GoogleSettings,
    http: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
    /// The service account's signing key, parsed once.
    signer: Option<(jsonwebtoken::EncodingKey, jsonwebtoken::Header, String)>,
}

/// Why Google credentials cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The service-account key file is not usable.
    #[error("service-account key: {0}")]
    Key(String),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

impl GoogleDestination {
    /// A client; no request is made until the first push. A service-account key is parsed
    /// here, so a bad one stops the daemon at start with a clear error.
    pub fn new(s: GoogleSettings) -> Result<Self, CredentialsError> {
        let http = super::http_client(s.timeout)?;
        let signer = match &s.credentials {
            GoogleCredentials::Refresh(_) => None,
            GoogleCredentials::ServiceAccount(k) => {
                if k.kind != "service_account" {
                    return Err(CredentialsError::Key(format!(
                        "\"type\" is \"{}\", expected \"service_account\"",
                        k.kind
                    )));
                }
                let key = jsonwebtoken::EncodingKey::from_rsa_pem(k.private_key.as_bytes())
                    .map_err(|e| CredentialsError::Key(format!("private_key: {e}")))?;
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                header.kid = k.private_key_id.clone();
                Some((key, header, k.client_email.clone()))
            }
        };
        Ok(Self {
            s,
            http,
            token: Mutex::new(None),
            signer,
        })
    }

    /// The token request's form: a refresh-token grant, or a signed JWT assertion
    /// (RFC 7523) for a service account.
    fn token_form(&self) -> Result<Vec<(&'static str, String)>, PushError> {
        match (&self.s.credentials, &self.signer) {
            (_, Some((key, header, email))) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let claims = json!({
                    "iss": email, "scope": SCOPE, "aud": self.s.token_url,
                    "iat": now, "exp": now + 3600,
                });
                let jwt = jsonwebtoken::encode(header, &claims, key).map_err(|e| {
                    PushError::Permanent {
                        reason: format!("cannot sign the service-account assertion: {e}"),
                        advice: "replace the service-account key file".into(),
                    }
                })?;
                Ok(vec![
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                    ),
                    ("assertion", jwt),
                ])
            }
            (GoogleCredentials::Refresh(c), None) => Ok(vec![
                ("grant_type", "refresh_token".into()),
                ("client_id", c.client_id.clone()),
                ("client_secret", c.client_secret.clone()),
                ("refresh_token", c.refresh_token.clone()),
            ]),
            (GoogleCredentials::ServiceAccount(_), None) => Err(PushError::Permanent {
                reason: "service-account key not loaded".into(),
                advice: "restart the daemon".into(),
            }),
        }
    }

    async fn access_token(&self) -> Result<String, PushError> {
        if let Some((t, exp)) = self.token.lock().as_ref() {
            if Instant::now() < *exp {
                return Ok(t.clone());
            }
        }
        let form = self.token_form()?;
        let resp = self
            .http
            .post(&self.s.token_url)
            .form(&form)
            .send()
            .await
            .map_err(super::transport_error)?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(super::transport_error)?;
        if !status.is_success() {
            let err = body["error"].as_str().unwrap_or("unknown").to_string();
            return Err(if status.is_server_error() {
                PushError::Transient {
                    reason: format!("token endpoint: HTTP {status}"),
                }
            } else {
                PushError::Permanent {
                    reason: format!("token endpoint refused the credentials: {err}"),
                    advice: "renew the OAuth refresh token or service-account key (scope https://www.googleapis.com/auth/datamanager) and update the credentials file".into(),
                }
            });
        }
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| PushError::Transient {
                reason: "token endpoint answer has no access_token".into(),
            })?
            .to_string();
        let ttl = body["expires_in"].as_u64().unwrap_or(3600);
        // Renew a minute early so a token never expires mid-request.
        let exp = Instant::now() + Duration::from_secs(ttl.saturating_sub(60).max(1));
        *self.token.lock() = Some((token.clone(), exp));
        Ok(token)
    }

    fn destination(&self, list: &ListRef) -> Value {
        let mut d = json!({
            "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": self.s.operating_account_id},
            "productDestinationId": list.list_id,
        });
        if let Some(login) = &self.s.login_account_id {
            d["loginAccount"] = json!({"accountType": "GOOGLE_ADS", "accountId": login});
        }
        d
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, PushError> {
        let token = self.access_token().await?;
        let resp = self
            .http
            .post(format!("{}/{path}", self.s.api_base))
            .bearer_auth(&token)
            .json(body)
            .send()
            .await
            .map_err(super::transport_error)?;
        self.read(resp).await
    }

    /// A UserListService call. It takes the manager account in a `login-account` header
    /// (`accountTypes/GOOGLE_ADS/accounts/{id}`; reference of `userLists.create` / `.get`),
    /// where the ingestion service takes it in each destination.
    async fn user_list_call(&self, req: reqwest::RequestBuilder) -> Result<Value, PushError> {
        let token = self.access_token().await?;
        let mut req = req.bearer_auth(&token);
        if let Some(login) = &self.s.login_account_id {
            req = req.header(
                "login-account",
                format!("accountTypes/GOOGLE_ADS/accounts/{login}"),
            );
        }
        let resp = req.send().await.map_err(super::transport_error)?;
        self.read(resp).await
    }

    fn user_lists_path(&self) -> String {
        format!(
            "{}/accountTypes/GOOGLE_ADS/accounts/{}/userLists",
            self.s.api_base, self.s.operating_account_id
        )
    }

    async fn read(&self, resp: reqwest::Response) -> Result<Value, PushError> {
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.text().await.map_err(super::transport_error)?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|_| PushError::Transient {
                reason: format!("HTTP {status} with a body that is not JSON"),
            });
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Err(self.classify(status.as_u16(), &body, retry_after))
    }

    fn classify(&self, status: u16, body: &Value, retry_after: Option<Duration>) -> PushError {
        let err = &body["error"];
        let message = err["message"].as_str().unwrap_or("").to_string();
        let canonical = err["status"].as_str().unwrap_or("").to_string();
        let reason = format!("HTTP {status} {canonical}: {message}");
        match status {
            401 => {
                *self.token.lock() = None;
                PushError::TokenExpired
            }
            429 => match quota_limit(err) {
                // A per-day quota: Google resets it at midnight Pacific time (§3, limits page:
                // "pause until the daily quota resets"; `ErrorInfo.metadata.quota_limit`).
                Some(limit) if limit.contains("PerDay") => PushError::Throttled {
                    reason,
                    wait: Some(until_pacific_midnight(jiff::Timestamp::now())),
                    daily: true,
                },
                _ => PushError::Throttled {
                    reason,
                    wait: retry_after.or_else(|| retry_info(err)),
                    daily: false,
                },
            },
            // A removeAsOfTime Google calls future: our clock is ahead of its own; the same
            // time is good once Google's clock passes it.
            400 if err.to_string().contains("INVALID_REMOVE_AS_OF_TIME") => {
                PushError::Transient { reason }
            }
            400 => {
                let indices = refused_members(err);
                if !indices.is_empty() {
                    PushError::MembersRefused { indices, reason }
                } else {
                    let advice = if message.to_ascii_lowercase().contains("terms") {
                        "accept the Customer Match terms of service in the Google Ads account"
                    } else {
                        "fix the destination configuration (account id, list id) and resync"
                    };
                    PushError::Permanent {
                        reason,
                        advice: advice.into(),
                    }
                }
            }
            403 => PushError::Permanent {
                reason,
                advice: "give the credentials' Google account access to the operating account (or set login_account_id), and enable the Data Manager API in the Cloud project".into(),
            },
            404 => PushError::Permanent {
                reason,
                advice: "the user list id does not exist in the operating account: fix list_id or let the daemon create the list".into(),
            },
            413 => PushError::TooLarge,
            // 409 ABORTED is one of the codes the errors guide says to retry (§6 Retryability).
            408 | 409 | 500..=599 => PushError::Transient { reason },
            _ => PushError::Permanent {
                reason,
                advice: "unexpected answer from the Data Manager API; see the log".into(),
            },
        }
    }

    fn members_json(members: &[RemoteMember], consent: bool) -> Vec<Value> {
        members
            .iter()
            .map(|m| {
                let mut ids = Vec::new();
                if let Some(e) = &m.email {
                    ids.push(json!({"emailAddress": hex_lower(&e.google)}));
                }
                if let Some(p) = &m.phone {
                    ids.push(json!({"phoneNumber": hex_lower(&p.google)}));
                }
                if let Some((f, l, country, postal)) = m.address() {
                    ids.push(json!({"address": {
                        "givenName": hex_lower(&f.google),
                        "familyName": hex_lower(&l.google),
                        "regionCode": country,
                        "postalCode": google_postal(postal, Some(country)),
                    }}));
                }
                let mut member = json!({"userData": {"userIdentifiers": ids}});
                if consent {
                    member["consent"] =
                        json!({"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"});
                }
                member
            })
            .collect()
    }

    fn accepted(v: &Value) -> Accepted {
        Accepted {
            request_id: v["requestId"].as_str().map(str::to_string),
            ..Accepted::default()
        }
    }
}

/// `ErrorInfo.metadata.quota_limit` of a 429, e.g. `IngestionMutateRequestsPerDayPerProject`.
fn quota_limit(err: &Value) -> Option<&str> {
    err["details"]
        .as_array()?
        .iter()
        .find_map(|d| d["metadata"]["quota_limit"].as_str())
}

/// How long until the next midnight in `America/Los_Angeles`, when Google's per-day quotas
/// reset.
fn until_pacific_midnight(now: jiff::Timestamp) -> Duration {
    let fallback = Duration::from_secs(3600);
    let Ok(tz) = jiff::tz::TimeZone::get("America/Los_Angeles") else {
        return fallback;
    };
    let local = now.to_zoned(tz);
    let next = local
        .date()
        .tomorrow()
        .and_then(|d| d.to_zoned(local.time_zone().clone()));
    match next {
        Ok(midnight) => {
            let secs = midnight.timestamp().as_second() - now.as_second();
            Duration::from_secs(secs.max(1) as u64)
        }
        Err(_) => fallback,
    }
}

/// Refused rows per reason from `errorInfo.errorCounts` (`recordCount` is an int64 string).
fn error_counts(status: &Value) -> super::Refused {
    let mut refused = super::Refused::default();
    for c in status["errorInfo"]["errorCounts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let n = match &c["recordCount"] {
            Value::String(s) => s.parse().unwrap_or(0),
            v => v.as_u64().unwrap_or(0),
        };
        let reason = c["reason"]
            .as_str()
            .unwrap_or("PROCESSING_ERROR_REASON_UNSPECIFIED");
        if n > 0 {
            *refused.by_reason.entry(reason.to_string()).or_default() += n;
        }
    }
    refused
}

/// `google.rpc.RetryInfo.retryDelay` ("12s"), when the error carries one.
fn retry_info(err: &Value) -> Option<Duration> {
    err["details"].as_array()?.iter().find_map(|d| {
        let delay = d["retryDelay"].as_str()?;
        let secs: f64 = delay.trim_end_matches('s').parse().ok()?;
        Some(Duration::from_secs_f64(secs.max(0.0)))
    })
}

/// Member indices named by `fieldViolations` (`audience_members[3]...`).
fn refused_members(err: &Value) -> Vec<usize> {
    let mut out: Vec<usize> = err["details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["fieldViolations"].as_array().into_iter().flatten())
        .filter_map(|v| {
            // "audience_members[3]", "audience_members.audience_members[3].user_data…" or
            // camelCase: the index follows the last `audience_members[` / `audienceMembers[`.
            let field = v["field"].as_str()?;
            let at = field
                .rfind("audience_members[")
                .map(|i| i + "audience_members[".len())
                .or_else(|| {
                    field
                        .rfind("audienceMembers[")
                        .map(|i| i + "audienceMembers[".len())
                })?;
            field[at..].split(']').next()?.parse().ok()
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[async_trait::async_trait]
impl Destination for GoogleDestination {
    fn max_batch(&self) -> usize {
        MAX_MEMBERS
    }

    fn separate_read_quota(&self) -> bool {
        true
    }

    fn default_quota_per_hour(&self, _lists: usize) -> u32 {
        // IngestionMutateRequestsPerMinutePerProject (and the read one): 300 a minute.
        300 * 60
    }

    async fn add(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        _batch: Batch,
    ) -> Result<Accepted, PushError> {
        let body = json!({
            "destinations": [self.destination(list)],
            "audienceMembers": Self::members_json(members, true),
            "encoding": "HEX",
            "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"},
        });
        self.post("audienceMembers:ingest", &body)
            .await
            .map(|v| Self::accepted(&v))
    }

    async fn remove(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        _batch: Batch,
    ) -> Result<Accepted, PushError> {
        let body = json!({
            "destinations": [self.destination(list)],
            "audienceMembers": Self::members_json(members, false),
            "encoding": "HEX",
        });
        self.post("audienceMembers:remove", &body)
            .await
            .map(|v| Self::accepted(&v))
    }

    async fn begin_replace(
        &self,
        list: &ListRef,
        as_of: std::time::SystemTime,
    ) -> Result<ReplaceStart, PushError> {
        // Milliseconds: whole seconds would spare members uploaded earlier in the same second.
        let as_of = humantime::format_rfc3339_millis(as_of).to_string();
        let body = json!({"destinations": [self.destination(list)], "removeAsOfTime": as_of});
        let v = self.post("audienceMembers:removeAll", &body).await?;
        Ok(ReplaceStart {
            request_id: v["requestId"].as_str().map(str::to_string),
        })
    }

    async fn replace_batch(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        batch: Batch,
    ) -> Result<Accepted, PushError> {
        if members.is_empty() {
            return Ok(Accepted::default());
        }
        self.add(list, members, batch).await
    }

    async fn poll(&self, request_id: &str) -> Result<RequestState, PushError> {
        let token = self.access_token().await?;
        let resp = self
            .http
            .get(format!("{}/requestStatus:retrieve", self.s.api_base))
            .query(&[("requestId", request_id)])
            .bearer_auth(&token)
            .send()
            .await
            .map_err(super::transport_error)?;
        let v = match self.read(resp).await {
            // The API no longer knows the id (or never did): the outcome cannot be read, which
            // retrying does not change (§2.4, INVALID_REQUEST_ID).
            Err(PushError::Permanent { reason, .. }) => {
                return Err(PushError::Permanent {
                    reason: format!("request {request_id} is unknown to the network ({reason})"),
                    advice: "the daemon will resend its members".into(),
                })
            }
            r => r?,
        };
        // One entry per destination of the request; we always send one.
        let per_dest: Vec<&Value> = v["requestStatusPerDestination"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let Some(d) = per_dest.first() else {
            return Ok(RequestState::Processing);
        };
        let match_rate = d["audienceMembersIngestionStatus"]["userDataIngestionStatus"]
            ["uploadMatchRateRange"]
            .as_str()
            .map(str::to_string);
        let refused = error_counts(d);
        Ok(match d["requestStatus"].as_str().unwrap_or_default() {
            "SUCCESS" | "PARTIAL_SUCCESS" => RequestState::Succeeded {
                match_rate,
                refused,
            },
            "FAILED" | "FAILURE" => RequestState::Failed {
                reason: format!(
                    "request {request_id} FAILED at the network ({})",
                    if refused.by_reason.is_empty() {
                        "no reason given".to_string()
                    } else {
                        refused
                            .by_reason
                            .iter()
                            .map(|(r, n)| format!("{n} × {r}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
                refused,
            },
            _ => RequestState::Processing,
        })
    }

    async fn list_info(&self, list: &ListRef) -> Result<Option<ListInfo>, PushError> {
        let url = format!("{}/{}", self.user_lists_path(), list.list_id);
        let v = self.user_list_call(self.http.get(url)).await?;
        let count = |k: &str| match &v["sizeInfo"][k] {
            Value::String(s) => s.parse::<u64>().ok(),
            n => n.as_u64(),
        };
        let size = count("displayNetworkMembersCount").max(count("searchNetworkMembersCount"));
        let rate = &v["ingestedUserListInfo"]["contactIdInfo"]["matchRatePercentage"];
        Ok(Some(ListInfo {
            size_lower: size,
            size_upper: size,
            match_rate: rate.as_u64().map(|p| format!("{p}%")),
            ..ListInfo::default()
        }))
    }

    async fn create_list(&self, audience: &str) -> Result<String, PushError> {
        let body = json!({
            "displayName": format!("audiencesync {audience}"),
            "description": format!("Customer Match list maintained by audiencesync (audience `{audience}`)"),
            "ingestedUserListInfo": {
                "uploadKeyTypes": ["CONTACT_ID"],
                "contactIdInfo": {"dataSourceType": "DATA_SOURCE_TYPE_FIRST_PARTY"}
            }
        });
        let req = self.http.post(self.user_lists_path()).json(&body);
        let v = self.user_list_call(req).await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| PushError::Transient {
                reason: "userLists create answered without an id".into(),
            })
    }

    async fn check(&self, list: &ListRef) -> Result<(), PushError> {
        // validateOnly changes nothing; the API wants at least one (well-formed) member.
        let probe = hex_lower(&crate::ingest::identity::sha256(
            "audiencesync-check@example.invalid",
        ));
        let body = json!({
            "destinations": [self.destination(list)],
            "audienceMembers": [{"userData": {"userIdentifiers": [{"emailAddress": probe}]}}],
            "encoding": "HEX",
            "validateOnly": true,
        });
        self.post("audienceMembers:remove", &body).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_quotas_reset_at_pacific_midnight_across_daylight_saving() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("time");
        // 23:00 PST (UTC-8) on 2026-03-07: one hour to midnight.
        assert_eq!(
            until_pacific_midnight(at("2026-03-08T07:00:00Z")),
            Duration::from_secs(3600)
        );
        // 2026-03-08 is 23 hours long (DST starts): from 00:00 PST to the next midnight PDT.
        assert_eq!(
            until_pacific_midnight(at("2026-03-08T08:00:00Z")),
            Duration::from_secs(23 * 3600)
        );
        // 2026-11-01 is 25 hours long (DST ends).
        assert_eq!(
            until_pacific_midnight(at("2026-11-01T07:00:00Z")),
            Duration::from_secs(25 * 3600)
        );
    }

    #[test]
    fn partial_success_counts_and_quota_limits_are_read() {
        let status = json!({"requestStatus": "PARTIAL_SUCCESS", "errorInfo": {"errorCounts": [
            {"recordCount": "3", "reason": "PROCESSING_ERROR_REASON_INVALID_FORMAT"},
            {"recordCount": "1", "reason": "PROCESSING_ERROR_REASON_NO_CONSENT"},
        ]}});
        let r = error_counts(&status);
        assert_eq!(r.total(), 4);
        assert_eq!(r.by_reason["PROCESSING_ERROR_REASON_INVALID_FORMAT"], 3);
        let err = json!({"details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "metadata": {"quota_limit": "IngestionMutateRequestsPerDayPerProject"}}]});
        assert_eq!(
            quota_limit(&err),
            Some("IngestionMutateRequestsPerDayPerProject")
        );
    }

    #[test]
    fn refused_member_indices_from_every_documented_field_path() {
        let err = json!({"details": [{"fieldViolations": [
            {"field": "audience_members.audience_members[3].user_data.user_identifiers[1]"},
            {"field": "audience_members[7]"},
            {"field": "audienceMembers[3]"},
            {"field": "destinations[0]"},
        ]}]});
        assert_eq!(refused_members(&err), vec![3, 7]);
    }
}
