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
use crate::hashing::{hex_lower, sha256};
use crate::sync::member::RemoteMember;

mod answer;
pub mod shape;
mod token;

use answer::error_counts;
use shape::members_json;

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

    fn accepted(v: &Value) -> Accepted {
        Accepted {
            request_id: v["requestId"].as_str().map(str::to_string),
            ..Accepted::default()
        }
    }
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
            "audienceMembers": members_json(members, true),
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
            "audienceMembers": members_json(members, false),
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
        let probe = hex_lower(&sha256("audiencesync-check@example.invalid"));
        let body = json!({
            "destinations": [self.destination(list)],
            "audienceMembers": [{"userData": {"userIdentifiers": [{"emailAddress": probe}]}}],
            "encoding": "HEX",
            "validateOnly": true,
        });
        self.post("audienceMembers:remove", &body).await.map(|_| ())
    }
}
