//! `[storage]`: where the store lives and how often it is flushed, checkpointed and trimmed.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{invalid, ConfigError};

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// sled directory; relative paths are relative to the working directory.
    pub data_dir: PathBuf,
    /// How often derived state is checkpointed and the write-ahead log trimmed.
    #[serde(with = "super::humantime_serde_compat")]
    pub checkpoint_interval: Duration,
    /// How long a seen `event_id` is remembered for deduplication.
    #[serde(with = "super::humantime_serde_compat")]
    pub dedup_retention: Duration,
    /// How long membership-change records are kept in the `changes` log.
    #[serde(with = "super::humantime_serde_compat")]
    pub change_log_retention: Duration,
    /// Most events the writer commits in one group (one flush + fdatasync).
    pub group_commit_max_events: usize,
    /// How often every audience's size is recorded (the status page's chart).
    #[serde(with = "super::humantime_serde_compat")]
    pub size_sample_interval: Duration,
    /// How long size samples are kept.
    #[serde(with = "super::humantime_serde_compat")]
    pub size_history_retention: Duration,
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
            change_log_retention: Duration::from_secs(90 * 86_400),
            group_commit_max_events: 20_000,
            size_sample_interval: Duration::from_secs(300),
            size_history_retention: Duration::from_secs(90 * 86_400),
            fsync: true,
            cache_capacity_bytes: 256 * 1024 * 1024,
        }
    }
}

impl StorageConfig {
    /// Checks the intervals and sizes, which need nothing outside this section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("storage.data_dir", "must not be empty"));
        }
        if self.checkpoint_interval.is_zero() {
            return Err(invalid("storage.checkpoint_interval", "must be positive"));
        }
        if self.group_commit_max_events == 0 {
            return Err(invalid(
                "storage.group_commit_max_events",
                "must be at least 1",
            ));
        }
        if self.size_sample_interval < Duration::from_secs(1) {
            return Err(invalid(
                "storage.size_sample_interval",
                "must be at least 1s",
            ));
        }
        if self.size_history_retention < self.size_sample_interval {
            return Err(invalid(
                "storage.size_history_retention",
                "must be at least storage.size_sample_interval",
            ));
        }
        Ok(())
    }
}
