//! Daemon configuration: TOML, every key documented in `config/audiencesync.toml`.
//!
//! Plain data at the bottom of the crate: the serde types of the file, one submodule per
//! section, and nothing of the parts that use them. Unknown keys and values of the wrong type
//! fail when parsing; limits that need nothing outside their section (`[server]`,
//! `[storage]`) are checked by that section's `validate`; values that only make sense against
//! a part's own rules (audience names, phone regions, currencies, destination kinds,
//! addresses) are checked by that part. `service::assemble` runs all of them in one pass.
//! Either way the error names the key, so a typo never silently falls back to a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

mod audiences;
mod daemon;
mod destinations;
mod ingest;
mod service;
mod storage;

pub use audiences::{AudiencesConfig, VipMetric};
pub use daemon::{ClockConfig, ClockMode, LogConfig, LogFormat, ServerConfig};
pub use destinations::{DestinationConfig, DestinationKind, ListConfig};
pub use ingest::{IngestConfig, RevenueConfig};
pub use service::{credential_path, AuthConfig, MetricsConfig, TlsConfig, WebConfig};
pub use storage::StorageConfig;

/// The bundled configuration, used when `serve` gets no `--config`.
pub const BUNDLED: &str = include_str!("../../config/audiencesync.toml");

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
    /// Audience definitions.
    pub audiences: AudiencesConfig,
    /// Time source.
    pub clock: ClockConfig,
    /// Where audiences are pushed (`[[destinations]]`, one table each).
    pub destinations: Vec<DestinationConfig>,
    /// Log output.
    pub log: LogConfig,
    /// Prometheus scrape endpoint.
    pub metrics: MetricsConfig,
    /// Bearer-token auth on gRPC.
    pub auth: AuthConfig,
    /// TLS / mTLS on the gRPC listener.
    pub tls: TlsConfig,
    /// The read-only status page.
    pub web: WebConfig,
}

impl Config {
    /// Parses TOML text into the sections, without the checks of the parts that own them
    /// (`service::assemble::parse` runs those too).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// Reads and parses a file, without the checks of the parts that own its sections
    /// (`service::assemble::load` runs those too).
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }
}

impl ConfigError {
    /// An `Invalid` error; for the parts that validate their own sections.
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
    fn bundled_file_parses() {
        let cfg = Config::from_toml(BUNDLED).expect("bundled config parses");
        assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(cfg.storage.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[storage]\ndata_dri = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("data_dri"), "{err}");
    }

    #[test]
    fn bad_duration_is_named() {
        let err = Config::from_toml("[storage]\ncheckpoint_interval = \"soon\"\n").unwrap_err();
        assert!(err.to_string().contains("checkpoint_interval"), "{err}");
    }
}
