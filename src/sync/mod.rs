//! Destination sync: make each remote list equal the audience's eligible members.
//!
//! The writer publishes the customers whose facts or memberships changed on its
//! [`ChangeFeed`]; one worker per destination subscribes to it and derives adds and removes as
//! desired − confirmed and confirmed − desired (`push`), sends every
//! request through one call path (`call`: governor pacing, the network's own budget, retry and
//! backoff), and counts a member as on the remote list ([`confirmed`]) only once the network's
//! outcome is known: a final answer, or a polled result of an asynchronous request (`inflight`).
//! Full resyncs are durable jobs (`job`, `replace`). [`handle`] is the handle over the
//! workers, [`status`] what operators see. The networks themselves are one file each under
//! [`dest`].

mod call;
pub mod confirmed;
pub mod dest;
pub mod handle;
mod inflight;
mod job;
pub mod member;
mod member_key;
mod outcome;
mod push;
mod replace;
mod sending;
pub mod status;
pub mod validate;
mod worker;

use crate::writer::ChangeFeed;

/// A destination that cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A credential file could not be read.
    #[error("destinations[{index}].{key}: cannot read {path}: {source}")]
    Credential {
        /// Position in the config.
        index: usize,
        /// The key naming the file.
        key: &'static str,
        /// The resolved path.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A credential file with the wrong content.
    #[error("destinations[{index}].{key}: {reason}")]
    BadCredential {
        /// Position in the config.
        index: usize,
        /// The key naming the file.
        key: &'static str,
        /// What is wrong (never the secret itself).
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("destinations[{index}]: HTTP client: {source}")]
    Http {
        /// Position in the config.
        index: usize,
        /// Why.
        source: reqwest::Error,
    },
    /// The confirmed list could not be opened.
    #[error("destinations[{index}]: {source}")]
    Store {
        /// Position in the config.
        index: usize,
        /// Why.
        source: crate::ledger::store::StoreError,
    },
}

fn read_secret(index: usize, key: &'static str, p: &std::path::Path) -> Result<String, SetupError> {
    let path = crate::config::credential_path(p);
    let text = std::fs::read_to_string(&path).map_err(|source| SetupError::Credential {
        index,
        key,
        path: path.clone(),
        source,
    })?;
    Ok(text.trim().to_string())
}

/// Reads destination `index`'s credential files and builds its client, as `serve` does,
/// without opening the store: the start-up check `check-config` shares with `serve`.
pub fn check_destination(cfg: &crate::config::Config, index: usize) -> Result<(), SetupError> {
    if let Some(d) = cfg.destinations.get(index) {
        destination(cfg, index, d)?;
    }
    Ok(())
}

/// The client of destination `index`, its credentials read from their files.
fn destination(
    cfg: &crate::config::Config,
    index: usize,
    d: &crate::config::DestinationConfig,
) -> Result<std::sync::Arc<dyn dest::Destination>, SetupError> {
    use crate::config::DestinationKind;
    let http = |source| SetupError::Http { index, source };
    Ok(match d.kind {
        DestinationKind::Csv => std::sync::Arc::new(dest::csv::CsvDestination::new(
            d.dir
                .clone()
                .unwrap_or_else(|| cfg.storage.data_dir.join("exports")),
        )),
        DestinationKind::Google => {
            let file = d.credentials_file.clone().unwrap_or_default();
            let text = read_secret(index, "credentials_file", &file)?;
            let credentials =
                serde_json::from_str(&text).map_err(|e| SetupError::BadCredential {
                    index,
                    key: "credentials_file",
                    reason: format!(
                        "expected JSON with client_id, client_secret, refresh_token ({})",
                        e.classify_name()
                    ),
                })?;
            std::sync::Arc::new(
                dest::google::GoogleDestination::new(dest::google::GoogleSettings {
                    api_base: d
                        .api_base
                        .clone()
                        .unwrap_or_else(|| "https://datamanager.googleapis.com/v1".into()),
                    token_url: d
                        .token_url
                        .clone()
                        .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
                    operating_account_id: d.operating_account_id.clone().unwrap_or_default(),
                    login_account_id: d.login_account_id.clone(),
                    credentials,
                    timeout: d.timeout,
                })
                .map_err(|e| match e {
                    dest::google::CredentialsError::Http(source) => {
                        SetupError::Http { index, source }
                    }
                    dest::google::CredentialsError::Key(reason) => SetupError::BadCredential {
                        index,
                        key: "credentials_file",
                        reason,
                    },
                })?,
            )
        }
        DestinationKind::Meta => {
            let token_file = d.access_token_file.clone().unwrap_or_default();
            let access_token = read_secret(index, "access_token_file", &token_file)?;
            let app_secret = match &d.app_secret_file {
                Some(f) => Some(read_secret(index, "app_secret_file", f)?),
                None => None,
            };
            std::sync::Arc::new(
                dest::meta::MetaDestination::new(dest::meta::MetaSettings {
                    api_base: d
                        .api_base
                        .clone()
                        .unwrap_or_else(|| "https://graph.facebook.com/v26.0".into()),
                    access_token,
                    access_token_file: Some(crate::config::credential_path(&token_file)),
                    app_secret,
                    ad_account_id: d.ad_account_id.clone(),
                    timeout: d.timeout,
                    replace_window: d.replace_session_window,
                })
                .map_err(http)?,
            )
        }
    })
}

/// Builds one worker spec per configured destination, reading credentials from files.
pub fn build_workers(
    cfg: &crate::config::Config,
    store: &crate::ledger::store::Store,
    feed: &ChangeFeed,
) -> Result<Vec<handle::WorkerSpec>, SetupError> {
    let mut specs = Vec::new();
    for (index, d) in cfg.destinations.iter().enumerate() {
        let dest = destination(cfg, index, d)?;
        let tree = |kind: &str| {
            store
                .open_tree(&format!("{kind}.{}", d.name))
                .map_err(|source| SetupError::Store { index, source })
        };
        specs.push(handle::WorkerSpec {
            name: d.name.clone(),
            dest,
            lists: d
                .lists
                .iter()
                .map(|l| dest::ListRef {
                    audience: l.audience.clone(),
                    list_id: l.list_id.clone(),
                })
                .collect(),
            quota_per_hour: d.quota_per_hour(),
            read_quota_per_hour: d.read_quota_per_minute.map(|q| q.saturating_mul(60)),
            linger: d.linger,
            reconcile_every: d.reconcile_every,
            first_poll: d.status_first_poll,
            poll_interval: d.status_poll_interval,
            confirmed: tree("confirmed")?,
            dirty: feed.subscribe(index),
            outstanding: tree("outstanding")?,
            sending: tree("sending")?,
            list_ids: tree("lists")?,
            jobs: tree("jobs")?,
            staged: tree("staged")?,
            reports: tree("report")?,
        });
    }
    Ok(specs)
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Data => "missing or mistyped field",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}
