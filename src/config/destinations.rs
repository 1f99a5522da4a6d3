//! `[[destinations]]` as written in the file; `sync::validate` checks them against the
//! audiences and the needs of each kind.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[[destinations]]`: one ad network account (or CSV directory) and the audiences pushed to it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Unique name, used in status and the admin API.
    pub name: String,
    /// `csv`, `google` or `meta`.
    pub kind: DestinationKind,
    /// Which audiences go to which remote lists.
    pub lists: Vec<ListConfig>,
    /// Requests per minute, never exceeded (default: the network's documented budget:
    /// Google 300 a minute, Meta 5,000 + 40 × lists an hour, CSV 6,000 a minute).
    pub quota_per_minute: Option<u32>,
    /// google: status polls and list reads per minute, a budget of their own (default: as
    /// many as `quota_per_minute`, Google's read quota being the same size).
    pub read_quota_per_minute: Option<u32>,
    /// How long changes gather before a push (a full batch goes at once).
    #[serde(default = "default_linger", with = "super::humantime_serde_compat")]
    pub linger: Duration,
    /// Per-request timeout.
    #[serde(default = "default_timeout", with = "super::humantime_serde_compat")]
    pub timeout: Duration,
    /// Full comparison of every list with the audience, to repair drift.
    #[serde(default = "default_reconcile", with = "super::humantime_serde_compat")]
    pub reconcile_every: Duration,
    /// google: wait before the first poll of an asynchronous request's result (the
    /// diagnostics guide's 30 minutes).
    #[serde(default = "default_first_poll", with = "super::humantime_serde_compat")]
    pub status_first_poll: Duration,
    /// google: base of the exponential backoff between later polls (doubling, at most an
    /// hour); also how often a replacement being applied is checked.
    #[serde(default = "default_poll", with = "super::humantime_serde_compat")]
    pub status_poll_interval: Duration,
    /// csv: output directory.
    pub dir: Option<PathBuf>,
    /// google/meta: API base URL (default the real one; tests point it at a fake).
    pub api_base: Option<String>,
    /// google: OAuth token endpoint.
    pub token_url: Option<String>,
    /// google: the Google Ads account owning the lists (digits only).
    pub operating_account_id: Option<String>,
    /// google: manager account the credentials belong to, if not the operating account.
    pub login_account_id: Option<String>,
    /// google: JSON file with `client_id`, `client_secret`, `refresh_token`; a relative path
    /// is looked up in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
    pub credentials_file: Option<PathBuf>,
    /// meta: the ad account (digits, without `act_`) in which audiences are created.
    pub ad_account_id: Option<String>,
    /// meta: file holding the system-user access token (relative: `$CREDENTIALS_DIRECTORY`).
    pub access_token_file: Option<PathBuf>,
    /// meta: file holding the app secret, for `appsecret_proof` (optional).
    pub app_secret_file: Option<PathBuf>,
    /// meta: how long a replace session stays open after its first batch (Meta's 90
    /// minutes). The daemon closes a session in its last ninth; a shorter value suits a
    /// network that closes sooner, or a test server.
    #[serde(
        default = "default_replace_window",
        with = "super::humantime_serde_compat"
    )]
    pub replace_session_window: Duration,
}

fn default_linger() -> Duration {
    Duration::from_secs(5)
}
fn default_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_reconcile() -> Duration {
    Duration::from_secs(86_400)
}
fn default_poll() -> Duration {
    Duration::from_secs(60)
}
fn default_replace_window() -> Duration {
    Duration::from_secs(90 * 60)
}
fn default_first_poll() -> Duration {
    Duration::from_secs(30 * 60)
}

/// The kind of destination.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// Upload-ready files.
    Csv,
    /// Google Data Manager API.
    Google,
    /// Meta Marketing API.
    Meta,
}

/// One audience → remote list mapping.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    /// Audience name (`vip`, `lapsed_90`, …).
    pub audience: String,
    /// Google user list id / Meta custom audience id; not used by csv.
    #[serde(default)]
    pub list_id: String,
    /// Let the daemon create the remote list on first start (instead of naming `list_id`);
    /// the new id is kept in the data directory, so it is created once.
    #[serde(default)]
    pub create: bool,
}

impl DestinationConfig {
    /// The configured request budget per hour; `None`: the network's documented default.
    pub fn quota_per_hour(&self) -> Option<u32> {
        self.quota_per_minute.map(|q| q.saturating_mul(60))
    }
}
