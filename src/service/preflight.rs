//! Start-up checks that read files but bind no port and open no store: the token files and the
//! exposure rule of `[auth]`, the certificate and key of `[tls]`, every destination's
//! credentials, and the log level. `check-config` runs them, and `serve` runs them before it
//! creates the data directory, so a config `serve` would refuse is refused by both, and before
//! anything is written.
//!
//! A relative credential file names a file in `$CREDENTIALS_DIRECTORY`, which systemd sets only
//! inside the unit (`LoadCredential=`). Where it is unset, such files cannot be found, so their
//! checks are skipped and named ([`Preflight::unchecked`]); `check-config --credentials-dir`
//! sets the directory to check them too.

use std::path::Path;

use crate::config::{Config, DestinationKind};

/// Why a config cannot start a daemon.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// `[log] level` is no level or filter `tracing` reads the way it was meant.
    #[error("log.level: {0}")]
    LogLevel(String),
    /// `[auth]`: a token file, or serving off loopback without auth.
    #[error(transparent)]
    Auth(#[from] crate::api::auth::AuthError),
    /// `[tls]`: the certificate or key.
    #[error(transparent)]
    Tls(#[from] crate::api::tls::TlsError),
    /// A destination's credentials.
    #[error(transparent)]
    Destination(#[from] crate::sync::SetupError),
}

/// What the checks could not look at.
#[derive(Debug, Default)]
pub struct Preflight {
    /// Config keys naming relative credential files, unchecked because
    /// `$CREDENTIALS_DIRECTORY` is unset.
    pub unchecked: Vec<String>,
}

/// Whether `file` can be found from here: absolute, or relative with a credentials directory.
fn resolvable(file: Option<&Path>) -> bool {
    file.is_none_or(|f| f.is_absolute() || std::env::var_os("CREDENTIALS_DIRECTORY").is_some())
}

/// Runs every check it can; see [`Preflight::unchecked`] for the rest.
pub fn run(cfg: &Config) -> Result<Preflight, PreflightError> {
    let mut out = Preflight::default();
    crate::telemetry::check_level(&cfg.log.level).map_err(PreflightError::LogLevel)?;

    let auth = &cfg.auth;
    let tokens = [
        ("auth.ingest_token_file", &auth.ingest_token_file),
        ("auth.query_token_file", &auth.query_token_file),
        ("auth.admin_token_file", &auth.admin_token_file),
    ];
    let hidden: Vec<&str> = tokens
        .iter()
        .filter(|(_, f)| auth.enabled && !resolvable(f.as_deref()))
        .map(|(k, _)| *k)
        .collect();
    if hidden.is_empty() {
        crate::api::auth::Guard::from_config(auth, cfg.server.listen)?;
    } else {
        out.unchecked.extend(hidden.iter().map(|k| k.to_string()));
    }

    let tls = &cfg.tls;
    let tls_files = [
        ("tls.cert_file", &tls.cert_file),
        ("tls.key_file", &tls.key_file),
        ("tls.client_ca_file", &tls.client_ca_file),
    ];
    let hidden: Vec<&str> = tls_files
        .iter()
        .filter(|(_, f)| !resolvable(f.as_deref()))
        .map(|(k, _)| *k)
        .collect();
    if hidden.is_empty() {
        crate::api::tls::server_config(tls)?;
    } else {
        out.unchecked.extend(hidden.iter().map(|k| k.to_string()));
    }

    for (i, d) in cfg.destinations.iter().enumerate() {
        let files = match d.kind {
            DestinationKind::Csv => vec![],
            DestinationKind::Google => vec![("credentials_file", &d.credentials_file)],
            DestinationKind::Meta => vec![
                ("access_token_file", &d.access_token_file),
                ("app_secret_file", &d.app_secret_file),
            ],
        };
        let hidden: Vec<String> = files
            .iter()
            .filter(|(_, f)| !resolvable(f.as_deref()))
            .map(|(k, _)| format!("destinations[{i}].{k}"))
            .collect();
        if hidden.is_empty() {
            crate::sync::check_destination(cfg, i)?;
        } else {
            out.unchecked.extend(hidden);
        }
    }
    Ok(out)
}
