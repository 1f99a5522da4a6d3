//! SIGHUP: re-read the config file and put in force what can change without a restart
//! (ingest rules, revenue rates, audience definitions, destinations and their quotas and
//! credentials, auth tokens) — or refuse the new file whole, keep running on the old one, and
//! say why in the log. Keys that need a restart (listen addresses, storage, TLS, metrics,
//! the status page, clock) keep their running values and are named in the log.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::api::auth::Guard;
use crate::api::{Context, Settings};
use crate::audience::params::AudienceParams;
use crate::config::{Config, ConfigError};
use crate::ledger::store::Store;
use crate::money::CurrencyTable;
use crate::service::assemble;
use crate::sync::handle::SyncEngine;
use crate::writer::ChangeFeed;

/// Why a new config was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file does not parse or validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Auth tokens could not be read.
    #[error(transparent)]
    Auth(#[from] crate::api::auth::AuthError),
    /// A destination could not be set up (credential files).
    #[error(transparent)]
    Setup(#[from] crate::sync::SetupError),
    /// The writer stopped.
    #[error(transparent)]
    Writer(#[from] crate::writer::WriteError),
}

/// What a reload can reach.
pub struct Reloader {
    /// The config file (`None`: the bundled config).
    pub path: Option<PathBuf>,
    /// `--listen` given on the command line.
    pub listen_override: Option<SocketAddr>,
    /// `--data-dir` given on the command line.
    pub data_dir_override: Option<PathBuf>,
    /// The config in force.
    pub running: Mutex<Config>,
    /// Shared service state.
    pub ctx: Context,
    /// The auth guard every interceptor shares.
    pub guard: Guard,
    /// The destination workers.
    pub sync: Arc<SyncEngine>,
    /// The store (confirmed lists of new destinations).
    pub store: Store,
    /// The writer's change feed, which the workers subscribe to.
    pub feed: ChangeFeed,
}

impl Reloader {
    /// Loads the file again and applies it. Returns the restart-only keys whose change was
    /// not applied.
    pub async fn reload(&self) -> Result<Vec<&'static str>, ReloadError> {
        let mut new = match &self.path {
            Some(p) => assemble::load(p)?,
            None => assemble::bundled()?,
        };
        if let Some(l) = self.listen_override {
            new.server.listen = l;
        }
        if let Some(d) = &self.data_dir_override {
            new.storage.data_dir = d.clone();
        }
        let old = self.running.lock().clone();
        let mut kept = Vec::new();
        macro_rules! restart_only {
            ($name:literal, $($field:tt)+) => {
                if format!("{:?}", new.$($field)+) != format!("{:?}", old.$($field)+) {
                    kept.push($name);
                    new.$($field)+ = old.$($field)+.clone();
                }
            };
        }
        restart_only!("server.listen", server.listen);
        restart_only!("server.max_message_bytes", server.max_message_bytes);
        restart_only!("storage", storage);
        restart_only!("tls", tls);
        restart_only!("metrics", metrics);
        restart_only!("web", web);
        restart_only!("clock", clock);
        restart_only!("log", log);

        // Build everything before changing anything: a bad part refuses the whole file.
        // The page keeps its address, so it must still be allowed under the new [auth].
        assemble::check_web(&new.web, new.server.listen, &new.metrics, &new.auth)?;
        let settings = Settings::from_config(&new)?;
        let params = AudienceParams::from_config(&new.audiences)?;
        let currencies = Arc::new(CurrencyTable::from_config(&new.revenue)?);
        let guard = Guard::from_config(&new.auth, new.server.listen)?;
        let feed = ChangeFeed::new(new.destinations.len());
        let specs = crate::sync::build_workers(&new, &self.store, &feed)?;

        self.ctx.replace_settings(settings);
        self.guard.replace_with(&guard);
        if new.audiences != old.audiences || new.revenue != old.revenue {
            self.ctx.writer.reconfigure(params, currencies).await?;
        }
        // Always restart the workers: credential files may have been rotated.
        self.feed.adopt(&feed);
        self.sync.reload(specs).await;
        *self.running.lock() = new;
        Ok(kept)
    }

    /// Reloads on every SIGHUP until the process ends. `hup` is registered by the caller
    /// before the daemon reports ready, so an early `systemctl reload` cannot kill it.
    pub async fn run_on_sighup(self, mut hup: tokio::signal::unix::Signal) {
        while hup.recv().await.is_some() {
            match self.reload().await {
                Ok(kept) if kept.is_empty() => tracing::info!("config reloaded"),
                Ok(kept) => tracing::warn!(
                    needs_restart = ?kept,
                    "config reloaded; these keys changed but only take effect after a restart"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "config reload refused; still running on the previous config"
                ),
            }
        }
    }
}
