//! `[metrics]`, `[auth]`, `[tls]` and `[web]`: running as a service. `service::assemble`
//! checks them together with `[server]`, since their addresses and tokens depend on each other.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `[metrics]`: the Prometheus scrape endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// Address of the plain-HTTP scrape endpoint; port 0 picks a free port (printed at start).
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

/// `[auth]`: bearer tokens on the gRPC services (health and reflection stay open).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require a token on every audiencesync RPC.
    pub enabled: bool,
    /// File holding the token that may call `IngestService`.
    pub ingest_token_file: Option<PathBuf>,
    /// File holding the token that may call `AudienceService`.
    pub query_token_file: Option<PathBuf>,
    /// File holding the token that may call `AdminService` (and `AudienceService`).
    pub admin_token_file: Option<PathBuf>,
    /// Start even though auth is off and `server.listen` is not a loopback address.
    pub allow_unauthenticated_non_loopback: bool,
}

/// `[tls]`: optional TLS (and mutual TLS) on the gRPC listener.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; TLS is on when this is set.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// PEM CA bundle; when set, clients must present a certificate it signed (mTLS).
    pub client_ca_file: Option<PathBuf>,
}

/// `[web]`: the read-only status page (see `src/web`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Address of the plain-HTTP page; `""` disables it; port 0 picks a free port (printed
    /// at start).
    #[serde(deserialize_with = "optional_addr")]
    pub listen: Option<SocketAddr>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9466))),
        }
    }
}

/// `"host:port"`, or `""` for none.
fn optional_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Ok(None);
    }
    s.trim().parse().map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "{e} (expected \"host:port\" like \"127.0.0.1:9466\", or \"\" to disable)"
        ))
    })
}

/// Where a secret file really is: relative names live in systemd's `$CREDENTIALS_DIRECTORY`
/// (from `LoadCredential=`) when it is set, so secrets never need a path in the config.
pub fn credential_path(file: &Path) -> PathBuf {
    if file.is_relative() {
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            return Path::new(&dir).join(file);
        }
    }
    file.to_path_buf()
}
