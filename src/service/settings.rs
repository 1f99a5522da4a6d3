//! Config sections for running as a service: `[metrics]`, `[auth]`, `[tls]`, `[web]`.
//!
//! Kept apart from `config.rs` so the core settings and the operational ones evolve
//! independently; `Config` only holds one field per section.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::ConfigError;

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

impl WebConfig {
    /// Off loopback the page is only served behind the admin token, so `[auth]` must be on;
    /// and it needs a port of its own.
    pub fn validate(
        &self,
        server_listen: SocketAddr,
        metrics: &MetricsConfig,
        auth: &AuthConfig,
    ) -> Result<(), ConfigError> {
        let Some(listen) = self.listen else {
            return Ok(());
        };
        if listen.port() != 0
            && (listen == server_listen || (metrics.enabled && listen == metrics.listen))
        {
            return Err(ConfigError::invalid(
                "web.listen",
                "is the same address as server.listen or metrics.listen",
            ));
        }
        if !listen.ip().is_loopback() && !auth.enabled {
            return Err(ConfigError::invalid(
                "web.listen",
                "is not a loopback address, and off loopback the page needs the admin token: \
                 enable [auth] (with admin_token_file), or keep the page on 127.0.0.1",
            ));
        }
        Ok(())
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

/// Checks the three sections for consistency (file contents are read at `serve` time).
pub fn validate(
    server_listen: SocketAddr,
    metrics: &MetricsConfig,
    auth: &AuthConfig,
    tls: &TlsConfig,
) -> Result<(), ConfigError> {
    if metrics.enabled && metrics.listen.port() != 0 && metrics.listen == server_listen {
        return Err(ConfigError::invalid(
            "metrics.listen",
            "is the same address as server.listen",
        ));
    }
    if auth.enabled {
        for (key, file) in [
            ("auth.ingest_token_file", &auth.ingest_token_file),
            ("auth.query_token_file", &auth.query_token_file),
            ("auth.admin_token_file", &auth.admin_token_file),
        ] {
            if file.as_ref().is_none_or(|f| f.as_os_str().is_empty()) {
                return Err(ConfigError::invalid(
                    key,
                    "required when auth.enabled = true",
                ));
            }
        }
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(_), None) => {
            return Err(ConfigError::invalid(
                "tls.key_file",
                "required with tls.cert_file",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::invalid(
                "tls.cert_file",
                "required with tls.key_file",
            ))
        }
        _ => {}
    }
    if tls.client_ca_file.is_some() && tls.cert_file.is_none() {
        return Err(ConfigError::invalid(
            "tls.client_ca_file",
            "mutual TLS needs tls.cert_file and tls.key_file too",
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn auth_needs_every_token_file() {
        let err = Config::parse("[auth]\nenabled = true\ningest_token_file = \"i\"\n").unwrap_err();
        assert!(err.to_string().contains("auth.query_token_file"), "{err}");
    }

    #[test]
    fn metrics_and_grpc_need_different_ports() {
        let err = Config::parse(
            "[server]\nlisten = \"127.0.0.1:9000\"\n[metrics]\nlisten = \"127.0.0.1:9000\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("metrics.listen"), "{err}");
    }

    #[test]
    fn tls_needs_cert_and_key() {
        let err = Config::parse("[tls]\ncert_file = \"c.pem\"\n").unwrap_err();
        assert!(err.to_string().contains("tls.key_file"), "{err}");
        let err = Config::parse("[tls]\nclient_ca_file = \"ca.pem\"\n").unwrap_err();
        assert!(err.to_string().contains("tls.client_ca_file"), "{err}");
    }

    #[test]
    fn web_page_defaults_to_loopback_and_can_be_disabled() {
        let cfg = Config::bundled().expect("bundled");
        let listen = cfg.web.listen.expect("page on by default");
        assert!(listen.ip().is_loopback());
        let cfg = Config::parse("[web]\nlisten = \"\"\n").expect("disabled");
        assert!(cfg.web.listen.is_none());
        let err = Config::parse("[web]\nlisten = \"nowhere\"\n").unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }

    #[test]
    fn web_page_off_loopback_needs_auth() {
        let err = Config::parse("[web]\nlisten = \"0.0.0.0:9466\"\n").unwrap_err();
        assert!(err.to_string().contains("web.listen"), "{err}");
        assert!(err.to_string().contains("admin"), "{err}");
        let cfg = Config::parse(
            "[web]\nlisten = \"0.0.0.0:9466\"\n[auth]\nenabled = true\n\
             ingest_token_file = \"i\"\nquery_token_file = \"q\"\nadmin_token_file = \"a\"\n",
        )
        .expect("with auth");
        assert!(cfg.web.listen.is_some());
        let err = Config::parse("[web]\nlisten = \"127.0.0.1:9464\"\n").unwrap_err();
        assert!(err.to_string().contains("web.listen"), "{err}");
    }

    #[test]
    fn size_history_keys_are_checked() {
        let err = Config::parse("[storage]\nsize_sample_interval = \"0s\"\n").unwrap_err();
        assert!(
            err.to_string().contains("storage.size_sample_interval"),
            "{err}"
        );
        let err = Config::parse(
            "[storage]\nsize_sample_interval = \"1h\"\nsize_history_retention = \"5m\"\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("storage.size_history_retention"),
            "{err}"
        );
    }

    #[test]
    fn defaults_are_metrics_on_loopback_and_no_auth() {
        let cfg = Config::bundled().expect("bundled");
        assert!(cfg.metrics.enabled);
        assert!(cfg.metrics.listen.ip().is_loopback());
        assert!(!cfg.auth.enabled);
        assert!(cfg.tls.cert_file.is_none());
    }
}
