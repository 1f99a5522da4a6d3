//! `[audiences]` as written in the file; `audience::params` validates it and turns it into
//! the engine's parameters.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// `[audiences]`: the parameters of `../shared/AUDIENCES.md`; the rules themselves are fixed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AudiencesConfig {
    /// Lower bounds of the three exclusive lapsed tiers; names follow (`lapsed_90` …).
    pub lapsed_tiers: Vec<String>,
    /// Share of buyers that are VIPs, as a decimal string.
    pub vip_fraction: String,
    /// Trailing window of the VIP metric.
    #[serde(with = "super::humantime_serde_compat")]
    pub vip_window: Duration,
    /// `net_revenue` (net of refunds, converted) or `order_count`, both within the window.
    pub vip_metric: VipMetric,
    /// A cart counts as abandoned this long after its last update.
    #[serde(with = "super::humantime_serde_compat")]
    pub cart_abandon_after: Duration,
    /// ... until this long after its last update.
    #[serde(with = "super::humantime_serde_compat")]
    pub cart_lookback: Duration,
    /// Stage `lapsed` from this long after the last order.
    #[serde(with = "super::humantime_serde_compat")]
    pub stage_lapsed_after: Duration,
    /// An order this long after the previous one is a reactivation.
    #[serde(with = "super::humantime_serde_compat")]
    pub reactivation_gap: Duration,
    /// How long a customer stays `reactivated`.
    #[serde(with = "super::humantime_serde_compat")]
    pub reactivated_for: Duration,
    /// `at_risk` never before this long after the last order.
    #[serde(with = "super::humantime_serde_compat")]
    pub at_risk_min: Duration,
    /// `at_risk` after this multiple of the customer's mean repurchase interval (decimal string).
    pub at_risk_factor: String,
    /// How often due memberships (time-driven changes) are applied.
    #[serde(with = "super::humantime_serde_compat")]
    pub tick: Duration,
    /// Holdout groups: audience name → share of its members never pushed (decimal string).
    pub holdout: BTreeMap<String, String>,
    /// How long after entering an audience a purchase counts as its outcome.
    #[serde(with = "super::humantime_serde_compat")]
    pub outcome_window: Duration,
    /// Per-audience overrides of `outcome_window` (audience name → duration string).
    pub outcome_windows: BTreeMap<String, String>,
    /// How long audience entries are kept for outcome reports.
    #[serde(with = "super::humantime_serde_compat")]
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
