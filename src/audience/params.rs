//! The audience engine's parameters: `[audiences]` validated and converted to whole seconds
//! and exact ratios. The rules themselves are fixed; only these numbers are configured.

use std::time::Duration;

use crate::audience::memberships::audience_name;
use crate::audience::rules::{Audience, Rules};
use crate::config::{AudiencesConfig, ConfigError, VipMetric};

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::invalid(key, reason)
}

/// Parsed audience parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AudienceParams {
    /// Per-customer rules.
    pub rules: Rules,
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
const AUDIENCES: usize = Audience::ALL.len();

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A decimal string (at most 9 places) as `(num, den)`, or `None` when it is not one.
fn decimal(s: &str) -> Option<(u64, u64)> {
    let t = s.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 9 {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num: u64 = format!("{int}{frac}").parse().ok()?;
    Some((num, 10u64.pow(frac.len() as u32)))
}

/// Parses a positive decimal string into `(num, den)`.
fn ratio(key: &str, s: &str) -> Result<(u64, u64), ConfigError> {
    match decimal(s) {
        Some((num, den)) if num > 0 => Ok((num, den)),
        _ => Err(invalid(
            key,
            "must be a positive decimal string like \"0.25\"",
        )),
    }
}

impl AudienceParams {
    /// Validates `[audiences]` and converts it to the engine's parameters, naming the key on
    /// error.
    pub fn from_config(c: &AudiencesConfig) -> Result<Self, ConfigError> {
        if c.lapsed_tiers.len() != 3 {
            return Err(invalid(
                "audiences.lapsed_tiers",
                "must list exactly three durations",
            ));
        }
        let mut tiers = [0i64; 3];
        for (i, t) in c.lapsed_tiers.iter().enumerate() {
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
        let vip_fraction = ratio("audiences.vip_fraction", &c.vip_fraction)?;
        if vip_fraction.0 > vip_fraction.1 {
            return Err(invalid("audiences.vip_fraction", "must be at most 1"));
        }
        let factor = ratio("audiences.at_risk_factor", &c.at_risk_factor)?;
        for (key, d) in [
            ("audiences.vip_window", c.vip_window),
            ("audiences.cart_abandon_after", c.cart_abandon_after),
            ("audiences.cart_lookback", c.cart_lookback),
            ("audiences.tick", c.tick),
        ] {
            if d.is_zero() {
                return Err(invalid(key, "must be positive"));
            }
        }
        if c.cart_lookback <= c.cart_abandon_after {
            return Err(invalid(
                "audiences.cart_lookback",
                "must be longer than cart_abandon_after",
            ));
        }
        let mut params = AudienceParams {
            rules: Rules {
                lapsed_tiers: tiers,
                cart_abandon_after: secs(c.cart_abandon_after),
                cart_lookback: secs(c.cart_lookback),
                stage_lapsed_after: secs(c.stage_lapsed_after),
                reactivation_gap: secs(c.reactivation_gap),
                reactivated_for: secs(c.reactivated_for),
                at_risk_min: secs(c.at_risk_min),
                at_risk_factor: (factor.0 as i64, factor.1 as i64),
            },
            tier_days: tiers.map(|t| t / 86_400),
            vip_fraction,
            vip_window_secs: secs(c.vip_window),
            vip_metric: c.vip_metric,
            holdout: [(0, 1); AUDIENCES],
            outcome_window_secs: [0; AUDIENCES],
            outcome_retention_secs: secs(c.outcome_retention),
        };
        outcomes(c, &mut params)?;
        Ok(params)
    }

    /// The names of every audience under these parameters, in [`Audience::ALL`] order (the
    /// lapsed tiers are named after their days).
    pub fn audience_names(&self) -> Vec<String> {
        Audience::ALL
            .iter()
            .map(|a| audience_name(*a, self))
            .collect()
    }
}

/// Validates the holdout and outcome keys (audience names depend on the lapsed tiers).
fn outcomes(c: &AudiencesConfig, params: &mut AudienceParams) -> Result<(), ConfigError> {
    let names = params.audience_names();
    let position = |key: &str, name: &str| {
        names.iter().position(|n| n == name).ok_or_else(|| {
            invalid(
                &format!("{key}.{name}"),
                format!("unknown audience (known: {})", names.join(", ")),
            )
        })
    };
    for (name, value) in &c.holdout {
        let key = format!("audiences.holdout.{name}");
        let i = position("audiences.holdout", name)?;
        params.holdout[i] = fraction(&key, value)?;
    }
    let default = secs(c.outcome_window);
    if default <= 0 {
        return Err(invalid("audiences.outcome_window", "must be at least 1s"));
    }
    params.outcome_window_secs = [default; AUDIENCES];
    for (name, value) in &c.outcome_windows {
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

/// Parses a holdout share: a decimal string from 0 (no holdout) up to, not including, 1.
fn fraction(key: &str, s: &str) -> Result<(u64, u64), ConfigError> {
    match decimal(s) {
        Some((0, _)) => Ok((0, 1)),
        Some((num, den)) if num < den => Ok((num, den)),
        _ => Err(invalid(
            key,
            "must be a decimal string from \"0\" to below \"1\", e.g. \"0.1\"",
        )),
    }
}
