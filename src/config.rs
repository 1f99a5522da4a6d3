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
    /// Audience definitions.
    pub audiences: AudiencesConfig,
    /// Time source.
    pub clock: ClockConfig,
    /// Where audiences are pushed (`[[destinations]]`, one table each).
    pub destinations: Vec<DestinationConfig>,
    /// Log output.
    pub log: LogConfig,
    /// Prometheus scrape endpoint.
    pub metrics: crate::service::settings::MetricsConfig,
    /// Bearer-token auth on gRPC.
    pub auth: crate::service::settings::AuthConfig,
    /// TLS / mTLS on the gRPC listener.
    pub tls: crate::service::settings::TlsConfig,
    /// The read-only status page.
    pub web: crate::service::settings::WebConfig,
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
    /// How long membership-change records are kept in the `changes` log.
    #[serde(with = "humantime_serde_compat")]
    pub change_log_retention: Duration,
    /// Most events the writer commits in one group (one flush + fdatasync).
    pub group_commit_max_events: usize,
    /// How often every audience's size is recorded (the status page's chart).
    #[serde(with = "humantime_serde_compat")]
    pub size_sample_interval: Duration,
    /// How long size samples are kept.
    #[serde(with = "humantime_serde_compat")]
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
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RevenueConfig {
    /// ISO 4217 code all revenue is converted to.
    pub currency: String,
    /// Fixed rates: units of `currency` per one major unit of the keyed currency, as decimal
    /// strings (e.g. `EUR = "1.08"`) so no binary float rounding creeps in.
    pub rates: BTreeMap<String, String>,
}

impl Default for RevenueConfig {
    fn default() -> Self {
        Self {
            currency: "USD".to_string(),
            rates: BTreeMap::new(),
        }
    }
}

/// `[audiences]`: the parameters of `../shared/AUDIENCES.md`; the rules themselves are fixed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AudiencesConfig {
    /// Lower bounds of the three exclusive lapsed tiers; names follow (`lapsed_90` …).
    pub lapsed_tiers: Vec<String>,
    /// Share of buyers that are VIPs, as a decimal string.
    pub vip_fraction: String,
    /// Trailing window of the VIP metric.
    #[serde(with = "humantime_serde_compat")]
    pub vip_window: Duration,
    /// `net_revenue` (net of refunds, converted) or `order_count`, both within the window.
    pub vip_metric: VipMetric,
    /// A cart counts as abandoned this long after its last update.
    #[serde(with = "humantime_serde_compat")]
    pub cart_abandon_after: Duration,
    /// ... until this long after its last update.
    #[serde(with = "humantime_serde_compat")]
    pub cart_lookback: Duration,
    /// Stage `lapsed` from this long after the last order.
    #[serde(with = "humantime_serde_compat")]
    pub stage_lapsed_after: Duration,
    /// An order this long after the previous one is a reactivation.
    #[serde(with = "humantime_serde_compat")]
    pub reactivation_gap: Duration,
    /// How long a customer stays `reactivated`.
    #[serde(with = "humantime_serde_compat")]
    pub reactivated_for: Duration,
    /// `at_risk` never before this long after the last order.
    #[serde(with = "humantime_serde_compat")]
    pub at_risk_min: Duration,
    /// `at_risk` after this multiple of the customer's mean repurchase interval (decimal string).
    pub at_risk_factor: String,
    /// How often due memberships (time-driven changes) are applied.
    #[serde(with = "humantime_serde_compat")]
    pub tick: Duration,
    /// Holdout groups: audience name → share of its members never pushed (decimal string).
    pub holdout: BTreeMap<String, String>,
    /// How long after entering an audience a purchase counts as its outcome.
    #[serde(with = "humantime_serde_compat")]
    pub outcome_window: Duration,
    /// Per-audience overrides of `outcome_window` (audience name → duration string).
    pub outcome_windows: BTreeMap<String, String>,
    /// How long audience entries are kept for outcome reports.
    #[serde(with = "humantime_serde_compat")]
    pub outcome_retention: Duration,
}

/// The VIP ranking metric.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum VipMetric {
    /// Net revenue in the window.
    NetRevenue,
    /// Orders in the window.
    OrderCount,
}

impl Default for AudiencesConfig {
    fn default() -> Self {
        Self {
            lapsed_tiers: vec!["90d".into(), "180d".into(), "360d".into()],
            vip_fraction: "0.25".into(),
            vip_window: Duration::from_secs(365 * 86_400),
            vip_metric: VipMetric::NetRevenue,
            cart_abandon_after: Duration::from_secs(3_600),
            cart_lookback: Duration::from_secs(7 * 86_400),
            stage_lapsed_after: Duration::from_secs(90 * 86_400),
            reactivation_gap: Duration::from_secs(90 * 86_400),
            reactivated_for: Duration::from_secs(30 * 86_400),
            at_risk_min: Duration::from_secs(30 * 86_400),
            at_risk_factor: "1.5".into(),
            tick: Duration::from_secs(1),
            holdout: BTreeMap::new(),
            outcome_window: Duration::from_secs(30 * 86_400),
            outcome_windows: BTreeMap::new(),
            outcome_retention: Duration::from_secs(400 * 86_400),
        }
    }
}

/// Parsed audience parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AudienceParams {
    /// Per-customer rules.
    pub rules: crate::audience::rules::Rules,
    /// Tier lower bounds in days, for names.
    pub tier_days: [i64; 3],
    /// VIP fraction as `num / den`.
    pub vip_fraction: (u64, u64),
    /// VIP window in seconds.
    pub vip_window_secs: i64,
    /// VIP metric.
    pub vip_metric: VipMetric,
    /// Holdout fraction per audience (position in `Audience::ALL`) as `num / den`; `(0, 1)`
    /// is no holdout.
    pub holdout: [(u64, u64); AUDIENCES],
    /// Outcome window per audience, whole seconds.
    pub outcome_window_secs: [i64; AUDIENCES],
    /// How long entries are kept for outcome reports, whole seconds.
    pub outcome_retention_secs: i64,
}

/// Number of audiences (`Audience::ALL.len()`).
const AUDIENCES: usize = crate::audience::Audience::ALL.len();

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Parses a positive decimal string into `(num, den)`.
fn ratio(key: &str, s: &str) -> Result<(u64, u64), ConfigError> {
    let bad = || invalid(key, "must be a positive decimal string like \"0.25\"");
    let (int, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 9 {
        return Err(bad());
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num: u64 = format!("{int}{frac}").parse().map_err(|_| bad())?;
    let den = 10u64.pow(frac.len() as u32);
    if num == 0 {
        return Err(bad());
    }
    Ok((num, den))
}

impl AudiencesConfig {
    /// Validates and converts to the engine's parameters, naming the key on error.
    pub fn rules(&self) -> Result<AudienceParams, ConfigError> {
        if self.lapsed_tiers.len() != 3 {
            return Err(invalid(
                "audiences.lapsed_tiers",
                "must list exactly three durations",
            ));
        }
        let mut tiers = [0i64; 3];
        for (i, t) in self.lapsed_tiers.iter().enumerate() {
            let d = humantime::parse_duration(t)
                .map_err(|e| invalid("audiences.lapsed_tiers", e.to_string()))?;
            tiers[i] = secs(d);
            if tiers[i] % 86_400 != 0 || tiers[i] == 0 {
                return Err(invalid(
                    "audiences.lapsed_tiers",
                    "each tier must be a whole number of days",
                ));
            }
        }
        if !(tiers[0] < tiers[1] && tiers[1] < tiers[2]) {
            return Err(invalid(
                "audiences.lapsed_tiers",
                "must be strictly ascending",
            ));
        }
        let vip_fraction = ratio("audiences.vip_fraction", &self.vip_fraction)?;
        if vip_fraction.0 > vip_fraction.1 {
            return Err(invalid("audiences.vip_fraction", "must be at most 1"));
        }
        let factor = ratio("audiences.at_risk_factor", &self.at_risk_factor)?;
        for (key, d) in [
            ("audiences.vip_window", self.vip_window),
            ("audiences.cart_abandon_after", self.cart_abandon_after),
            ("audiences.cart_lookback", self.cart_lookback),
            ("audiences.tick", self.tick),
        ] {
            if d.is_zero() {
                return Err(invalid(key, "must be positive"));
            }
        }
        if self.cart_lookback <= self.cart_abandon_after {
            return Err(invalid(
                "audiences.cart_lookback",
                "must be longer than cart_abandon_after",
            ));
        }
        let mut params = AudienceParams {
            rules: crate::audience::rules::Rules {
                lapsed_tiers: tiers,
                cart_abandon_after: secs(self.cart_abandon_after),
                cart_lookback: secs(self.cart_lookback),
                stage_lapsed_after: secs(self.stage_lapsed_after),
                reactivation_gap: secs(self.reactivation_gap),
                reactivated_for: secs(self.reactivated_for),
                at_risk_min: secs(self.at_risk_min),
                at_risk_factor: (factor.0 as i64, factor.1 as i64),
            },
            tier_days: tiers.map(|t| t / 86_400),
            vip_fraction,
            vip_window_secs: secs(self.vip_window),
            vip_metric: self.vip_metric,
            holdout: [(0, 1); AUDIENCES],
            outcome_window_secs: [0; AUDIENCES],
            outcome_retention_secs: secs(self.outcome_retention),
        };
        self.outcomes(&mut params)?;
        Ok(params)
    }

    /// Validates the holdout and outcome keys (audience names depend on the lapsed tiers).
    fn outcomes(&self, params: &mut AudienceParams) -> Result<(), ConfigError> {
        let names: Vec<String> = crate::audience::Audience::ALL
            .iter()
            .map(|a| crate::audience::engine::audience_name(*a, params))
            .collect();
        let position = |key: &str, name: &str| {
            names.iter().position(|n| n == name).ok_or_else(|| {
                invalid(
                    &format!("{key}.{name}"),
                    format!("unknown audience (known: {})", names.join(", ")),
                )
            })
        };
        for (name, value) in &self.holdout {
            let key = format!("audiences.holdout.{name}");
            let i = position("audiences.holdout", name)?;
            params.holdout[i] = fraction(&key, value)?;
        }
        let default = secs(self.outcome_window);
        if default <= 0 {
            return Err(invalid("audiences.outcome_window", "must be at least 1s"));
        }
        params.outcome_window_secs = [default; AUDIENCES];
        for (name, value) in &self.outcome_windows {
            let key = format!("audiences.outcome_windows.{name}");
            let i = position("audiences.outcome_windows", name)?;
            let d = humantime::parse_duration(value)
                .map_err(|e| invalid(&key, format!("{e} (expected a duration like \"14d\")")))?;
            if d.as_secs() == 0 {
                return Err(invalid(&key, "must be at least 1s"));
            }
            params.outcome_window_secs[i] = secs(d);
        }
        let longest = params
            .outcome_window_secs
            .iter()
            .copied()
            .max()
            .unwrap_or(0);
        if params.outcome_retention_secs <= longest {
            return Err(invalid(
                "audiences.outcome_retention",
                "must be longer than every outcome window",
            ));
        }
        Ok(())
    }
}

/// Parses a holdout share: a decimal string from 0 (no holdout) up to, not including, 1.
fn fraction(key: &str, s: &str) -> Result<(u64, u64), ConfigError> {
    let bad = || {
        invalid(
            key,
            "must be a decimal string from \"0\" to below \"1\", e.g. \"0.1\"",
        )
    };
    let t = s.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 9 {
        return Err(bad());
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num: u64 = format!("{int}{frac}").parse().map_err(|_| bad())?;
    let den = 10u64.pow(frac.len() as u32);
    if num >= den {
        return Err(bad());
    }
    if num == 0 {
        return Ok((0, 1));
    }
    Ok((num, den))
}

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
    #[serde(default = "default_linger", with = "humantime_serde_compat")]
    pub linger: Duration,
    /// Per-request timeout.
    #[serde(default = "default_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Full comparison of every list with the audience, to repair drift.
    #[serde(default = "default_reconcile", with = "humantime_serde_compat")]
    pub reconcile_every: Duration,
    /// google: wait before the first poll of an asynchronous request's result (the
    /// diagnostics guide's 30 minutes).
    #[serde(default = "default_first_poll", with = "humantime_serde_compat")]
    pub status_first_poll: Duration,
    /// google: base of the exponential backoff between later polls (doubling, at most an
    /// hour); also how often a replacement being applied is checked.
    #[serde(default = "default_poll", with = "humantime_serde_compat")]
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
    #[serde(default = "default_replace_window", with = "humantime_serde_compat")]
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
    fn validate(&self, i: usize, audiences: &AudiencesConfig) -> Result<(), ConfigError> {
        let key = |k: &str| format!("destinations[{i}].{k}");
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                &key("name"),
                "must be non-empty letters, digits, '_' or '-'",
            ));
        }
        if self.quota_per_minute == Some(0) {
            return Err(invalid(&key("quota_per_minute"), "must be at least 1"));
        }
        if self.read_quota_per_minute == Some(0) {
            return Err(invalid(&key("read_quota_per_minute"), "must be at least 1"));
        }
        let params = audiences.rules()?;
        let names: Vec<String> = crate::audience::Audience::ALL
            .iter()
            .map(|a| crate::audience::engine::audience_name(*a, &params))
            .collect();
        for (j, l) in self.lists.iter().enumerate() {
            if !names.contains(&l.audience) {
                return Err(invalid(
                    &key(&format!("lists[{j}].audience")),
                    format!(
                        "unknown audience `{}` (known: {})",
                        l.audience,
                        names.join(", ")
                    ),
                ));
            }
            if self.kind != DestinationKind::Csv {
                let field = key(&format!("lists[{j}].list_id"));
                match (l.list_id.is_empty(), l.create) {
                    (true, false) => {
                        return Err(invalid(
                            &field,
                            "name the network's list id, or set create = true",
                        ))
                    }
                    (false, true) => {
                        return Err(invalid(
                            &field,
                            "set either list_id or create = true, not both",
                        ))
                    }
                    (false, false) if !l.list_id.chars().all(|c| c.is_ascii_digit()) => {
                        return Err(invalid(&field, "must be the network's numeric list id"))
                    }
                    _ => {}
                }
                if l.create && self.kind == DestinationKind::Meta && self.ad_account_id.is_none() {
                    return Err(invalid(
                        &key("ad_account_id"),
                        "is required to create Meta audiences",
                    ));
                }
            }
        }
        let need = |field: &str, present: bool| {
            if present {
                Ok(())
            } else {
                Err(invalid(
                    &key(field),
                    format!("is required for kind = {:?}", self.kind).to_lowercase(),
                ))
            }
        };
        match self.kind {
            DestinationKind::Csv => need("dir", self.dir.is_some()),
            DestinationKind::Google => {
                need("operating_account_id", self.operating_account_id.is_some())?;
                need("credentials_file", self.credentials_file.is_some())
            }
            DestinationKind::Meta => {
                if self.replace_session_window < Duration::from_secs(1) {
                    return Err(invalid(
                        &key("replace_session_window"),
                        "must be at least 1s",
                    ));
                }
                need("access_token_file", self.access_token_file.is_some())
            }
        }
    }

    /// The configured request budget per hour; `None`: the network's documented default.
    pub fn quota_per_hour(&self) -> Option<u32> {
        self.quota_per_minute.map(|q| q.saturating_mul(60))
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
        if self.storage.size_sample_interval < Duration::from_secs(1) {
            return Err(invalid(
                "storage.size_sample_interval",
                "must be at least 1s",
            ));
        }
        if self.storage.size_history_retention < self.storage.size_sample_interval {
            return Err(invalid(
                "storage.size_history_retention",
                "must be at least storage.size_sample_interval",
            ));
        }
        crate::ingest::identity::Normalizer::new(&self.ingest.default_phone_region)
            .map_err(|e| invalid("ingest.default_phone_region", e.to_string()))?;
        self.audiences.rules()?;
        let mut names = std::collections::HashSet::new();
        for (i, d) in self.destinations.iter().enumerate() {
            d.validate(i, &self.audiences)?;
            if !names.insert(d.name.as_str()) {
                return Err(invalid(
                    &format!("destinations[{i}].name"),
                    "must be unique",
                ));
            }
        }
        crate::money::CurrencyTable::from_config(&self.revenue)?;
        crate::service::settings::validate(
            self.server.listen,
            &self.metrics,
            &self.auth,
            &self.tls,
        )?;
        self.web
            .validate(self.server.listen, &self.metrics, &self.auth)?;
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
    fn holdout_and_outcome_keys_are_validated_by_name() {
        let cfg = Config::parse(
            "[audiences]\nholdout = { vip = \"0.10\", lapsed_90 = \"0\" }\n\
             outcome_windows = { cart_abandoners = \"7d\" }\n",
        )
        .expect("valid");
        let p = cfg.audiences.rules().expect("rules");
        use crate::audience::Audience;
        assert_eq!(p.holdout[Audience::Vip.index()], (10, 100));
        assert_eq!(p.holdout[Audience::Lapsed1.index()], (0, 1));
        assert_eq!(
            p.outcome_window_secs[Audience::CartAbandoners.index()],
            7 * 86_400
        );
        assert_eq!(p.outcome_window_secs[Audience::Vip.index()], 30 * 86_400);
        for (toml, key) in [
            ("holdout = { nope = \"0.1\" }", "audiences.holdout.nope"),
            ("holdout = { vip = \"1\" }", "audiences.holdout.vip"),
            ("holdout = { vip = \"-0.1\" }", "audiences.holdout.vip"),
            ("holdout = { vip = \"ten\" }", "audiences.holdout.vip"),
            (
                "outcome_windows = { vip = \"soon\" }",
                "audiences.outcome_windows.vip",
            ),
            (
                "outcome_windows = { lapsed_91 = \"1d\" }",
                "audiences.outcome_windows.lapsed_91",
            ),
            ("outcome_retention = \"20d\"", "audiences.outcome_retention"),
        ] {
            let err = Config::parse(&format!("[audiences]\n{toml}\n")).unwrap_err();
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
        // Names follow the configured tiers.
        Config::parse(
            "[audiences]\nlapsed_tiers = [\"60d\", \"120d\", \"240d\"]\nholdout = { lapsed_60 = \"0.2\" }\n",
        )
        .expect("lapsed_60 exists under these tiers");
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
