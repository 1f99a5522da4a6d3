//! Daemon configuration: TOML, every key documented in `config/audiencesync.toml`.
//!
//! Unknown keys and bad values are startup errors naming the key, so a typo never silently
//! falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The bundled configuration, used when `serve` gets no `--config`.
pub const BUNDLED: &str = include_str!("../config/audiencesync.toml");

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a value of the wrong type.
    #[error("invalid config: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value of the right type that makes no sense.
    #[error("invalid config: `{key}`: {reason}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC listener.
    pub server: ServerConfig,
    /// sled location and durability.
    pub storage: StorageConfig,
    /// Event validation and identifier normalization.
    pub ingest: IngestConfig,
    /// How order values become revenue.
    pub revenue: RevenueConfig,
    /// Log output.
    pub log: LogConfig,
    /// Prometheus scrape endpoint.
    pub metrics: crate::service::settings::MetricsConfig,
    /// Bearer-token auth on gRPC.
    pub auth: crate::service::settings::AuthConfig,
    /// TLS / mTLS on the gRPC listener.
    pub tls: crate::service::settings::TlsConfig,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the gRPC server binds.
    pub listen: SocketAddr,
    /// Most events one batch may carry.
    pub max_batch_events: usize,
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_batch_events: 10_000,
            max_message_bytes: 16 * 1024 * 1024,
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// sled directory; relative paths are relative to the working directory.
    pub data_dir: PathBuf,
    /// How often derived state is checkpointed and the write-ahead log trimmed.
    #[serde(with = "humantime_serde_compat")]
    pub checkpoint_interval: Duration,
    /// How long a seen `event_id` is remembered for deduplication.
    #[serde(with = "humantime_serde_compat")]
    pub dedup_retention: Duration,
    /// Most events the writer commits in one group (one flush + fdatasync).
    pub group_commit_max_events: usize,
    /// fdatasync after every group commit (survives power loss, not only a crash).
    pub fsync: bool,
    /// sled page cache size in bytes.
    pub cache_capacity_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            checkpoint_interval: Duration::from_secs(5),
            dedup_retention: Duration::from_secs(30 * 86_400),
            group_commit_max_events: 20_000,
            fsync: true,
            cache_capacity_bytes: 256 * 1024 * 1024,
        }
    }
}

/// `[ingest]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Region used to parse phone numbers without a country code when the event has no country.
    pub default_phone_region: String,
    /// Events whose `occurred_at` is further ahead of the daemon's clock are rejected.
    #[serde(with = "humantime_serde_compat")]
    pub max_future_skew: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            default_phone_region: "US".to_string(),
            max_future_skew: Duration::from_secs(300),
        }
    }
}

/// `[revenue]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevenueConfig {
    /// ISO 4217 code all revenue is converted to.
    pub currency: String,
    /// Trailing window for "revenue in window".
    #[serde(with = "humantime_serde_compat")]
    pub window: Duration,
    /// Fixed rates: units of `currency` per one major unit of the keyed currency, as decimal
    /// strings (e.g. `EUR = "1.08"`) so no binary float rounding creeps in.
    pub rates: BTreeMap<String, String>,
}

impl Default for RevenueConfig {
    fn default() -> Self {
        Self {
            currency: "USD".to_string(),
            window: Duration::from_secs(365 * 86_400),
            rates: BTreeMap::new(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `auto` (JSON under systemd, text on a terminal), `text` or `json`.
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `audiencesync=debug`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            level: "info".to_string(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when started by systemd (`JOURNAL_STREAM` set), text otherwise.
    Auto,
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The bundled default configuration.
    pub fn bundled() -> Result<Self, ConfigError> {
        Self::parse(BUNDLED)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.max_batch_events == 0 {
            return Err(invalid("server.max_batch_events", "must be at least 1"));
        }
        if self.server.max_message_bytes < 1024 {
            return Err(invalid("server.max_message_bytes", "must be at least 1024"));
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(invalid("storage.data_dir", "must not be empty"));
        }
        if self.storage.checkpoint_interval.is_zero() {
            return Err(invalid("storage.checkpoint_interval", "must be positive"));
        }
        if self.storage.group_commit_max_events == 0 {
            return Err(invalid(
                "storage.group_commit_max_events",
                "must be at least 1",
            ));
        }
        crate::ingest::identity::Normalizer::new(&self.ingest.default_phone_region)
            .map_err(|e| invalid("ingest.default_phone_region", e.to_string()))?;
        if self.revenue.window.is_zero() {
            return Err(invalid("revenue.window", "must be positive"));
        }
        crate::ingest::currency::CurrencyTable::from_config(&self.revenue)?;
        crate::service::settings::validate(
            self.server.listen,
            &self.metrics,
            &self.auth,
            &self.tls,
        )?;
        Ok(())
    }
}

impl ConfigError {
    /// An `Invalid` error; for modules that validate their own part of the config.
    pub fn invalid(key: &str, reason: impl Into<String>) -> Self {
        invalid(key, reason)
    }
}

/// Durations as human strings ("5s", "30d") via `humantime`.
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!("{e} (expected a duration like \"5s\" or \"30d\")"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_config_is_valid() {
        let cfg = Config::bundled().expect("bundled config parses");
        assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(cfg.storage.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[storage]\ndata_dri = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("data_dri"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let err = Config::parse("[revenue]\ncurrency = \"XYZ\"\n").unwrap_err();
        assert!(err.to_string().contains("revenue.currency"), "{err}");
        let err = Config::parse("[revenue.rates]\nEUR = \"abc\"\n").unwrap_err();
        assert!(err.to_string().contains("revenue.rates.EUR"), "{err}");
        let err = Config::parse("[storage]\ncheckpoint_interval = \"soon\"\n").unwrap_err();
        assert!(err.to_string().contains("checkpoint_interval"), "{err}");
        let err = Config::parse("[ingest]\ndefault_phone_region = \"ZZ\"\n").unwrap_err();
        assert!(
            err.to_string().contains("ingest.default_phone_region"),
            "{err}"
        );
    }
}
