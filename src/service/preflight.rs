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

/// The keys of the files among `files` that cannot be found from here: relative, with no
/// credentials directory to resolve them in.
fn hidden<'a>(files: impl IntoIterator<Item = (String, Option<&'a Path>)>) -> Vec<String> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY").is_some();
    files
        .into_iter()
        .filter(|(_, f)| f.is_some_and(|f| f.is_relative() && !dir))
        .map(|(k, _)| k)
        .collect()
}

/// Runs every check it can; see [`Preflight::unchecked`] for the rest.
pub fn run(cfg: &Config) -> Result<Preflight, PreflightError> {
    let mut out = Preflight::default();
    crate::telemetry::check_level(&cfg.log.level).map_err(PreflightError::LogLevel)?;

    let auth = &cfg.auth;
    let tokens = if auth.enabled {
        hidden([
            (
                "auth.ingest_token_file".into(),
                auth.ingest_token_file.as_deref(),
            ),
            (
                "auth.query_token_file".into(),
                auth.query_token_file.as_deref(),
            ),
            (
                "auth.admin_token_file".into(),
                auth.admin_token_file.as_deref(),
            ),
        ])
    } else {
        Vec::new()
    };
    if tokens.is_empty() {
        crate::api::auth::Guard::from_config(auth, cfg.server.listen)?;
    }
    out.unchecked.extend(tokens);

    let tls = &cfg.tls;
    let tls_files = hidden([
        ("tls.cert_file".into(), tls.cert_file.as_deref()),
        ("tls.key_file".into(), tls.key_file.as_deref()),
        ("tls.client_ca_file".into(), tls.client_ca_file.as_deref()),
    ]);
    if tls_files.is_empty() {
        crate::api::tls::server_config(tls)?;
    }
    out.unchecked.extend(tls_files);

    for (i, d) in cfg.destinations.iter().enumerate() {
        let files = match d.kind {
            DestinationKind::Csv => vec![],
            DestinationKind::Google => vec![("credentials_file", &d.credentials_file)],
            DestinationKind::Meta => vec![
                ("access_token_file", &d.access_token_file),
                ("app_secret_file", &d.app_secret_file),
            ],
        };
        let files = hidden(
            files
                .into_iter()
                .map(|(k, f)| (format!("destinations[{i}].{k}"), f.as_deref())),
        );
        if files.is_empty() {
            crate::sync::check_destination(cfg, i)?;
        }
        out.unchecked.extend(files);
    }
    Ok(out)
}
