//! `[server]`, `[clock]` and `[log]`: how the daemon process listens, tells time and logs.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{invalid, ConfigError};

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

impl ServerConfig {
    /// Checks the limits, which need nothing outside this section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_batch_events == 0 {
            return Err(invalid("server.max_batch_events", "must be at least 1"));
        }
        if self.max_message_bytes < 1024 {
            return Err(invalid("server.max_message_bytes", "must be at least 1024"));
        }
        Ok(())
    }
}

/// `[clock]`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClockConfig {
    /// `system`, or `manual` (starts at the system time and moves only through
    /// `AdminService.SetClock`; for tests and demos).
    pub mode: ClockMode,
}

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// The wall clock.
    #[default]
    System,
    /// Moved by the admin API only.
    Manual,
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
