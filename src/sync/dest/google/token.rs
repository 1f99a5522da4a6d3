//! The OAuth2 access token every Data Manager call carries: a refresh-token grant, or a JWT
//! bearer assertion signed with a service account's key (RFC 7523), kept until a minute before
//! it expires.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{GoogleCredentials, GoogleDestination, SCOPE};
use crate::sync::dest::{transport_error, PushError};

impl GoogleDestination {
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

    pub(super) async fn access_token(&self) -> Result<String, PushError> {
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
            .map_err(transport_error)?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(transport_error)?;
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
}
