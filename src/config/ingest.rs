//! `[ingest]` and `[revenue]`: how events are checked and how order values become revenue.
//! `ingest` validates the phone region and `CurrencyTable` the currencies and rates.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// `[ingest]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Region used to parse phone numbers without a country code when the event has no country.
    pub default_phone_region: String,
    /// Events whose `occurred_at` is further ahead of the daemon's clock are rejected.
    #[serde(with = "super::humantime_serde_compat")]
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
