//! Currency codes, their ISO 4217 minor-unit exponents, and exact conversion of order values
//! into the revenue currency (integer arithmetic, half away from zero, per order).
//!
//! A leaf: ingest checks codes, the ledger stores them, audiences and insights convert with the
//! table, so it imports nothing of the crate but `config` (the `[revenue]` section it reads).

use std::collections::HashMap;

use crate::config::{ConfigError, RevenueConfig};

/// An ISO 4217 alphabetic code stored inline (no allocation per order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CurrencyCode(pub [u8; 3]);

impl CurrencyCode {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

/// A fixed rate as an exact decimal: `num / 10^scale` revenue major units per source major unit.
#[derive(Debug, Clone, Copy)]
struct Rate {
    num: i128,
    scale: u32,
    src_exp: u32,
}

/// Known currencies and how each converts into the revenue currency.
#[derive(Debug, Clone)]
pub struct CurrencyTable {
    revenue: CurrencyCode,
    revenue_exp: u32,
    rates: HashMap<CurrencyCode, Rate>,
}

/// Why a currency code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// Not a current ISO 4217 code with a minor unit.
    #[error("not an ISO 4217 currency code")]
    Unknown,
    /// Valid, but neither the revenue currency nor given a rate in the config.
    #[error("no conversion rate configured for this currency")]
    NoRate,
}

/// Parses an ISO code and returns it with its minor-unit exponent.
pub fn parse_code(code: &str) -> Result<(CurrencyCode, u32), CurrencyError> {
    let cur = iso_currency::Currency::from_code(code).ok_or(CurrencyError::Unknown)?;
    let exp = cur.exponent().ok_or(CurrencyError::Unknown)?;
    let bytes: [u8; 3] = code
        .as_bytes()
        .try_into()
        .map_err(|_| CurrencyError::Unknown)?;
    Ok((CurrencyCode(bytes), u32::from(exp)))
}

/// Parses a non-negative decimal like "1.0845" into (digits, scale).
fn parse_decimal(s: &str) -> Option<(i128, u32)> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) || frac.len() > 12 {
        return None;
    }
    let digits: String = format!("{int}{frac}");
    let num: i128 = digits.parse().ok()?;
    Some((num, u32::try_from(frac.len()).ok()?))
}

impl CurrencyTable {
    /// Builds the table from `[revenue]`, naming the offending key on error.
    pub fn from_config(cfg: &RevenueConfig) -> Result<Self, ConfigError> {
        let (revenue, revenue_exp) = parse_code(&cfg.currency)
            .map_err(|e| ConfigError::invalid("revenue.currency", e.to_string()))?;
        let mut rates = HashMap::new();
        for (code, value) in &cfg.rates {
            let key = format!("revenue.rates.{code}");
            let (cc, src_exp) =
                parse_code(code).map_err(|e| ConfigError::invalid(&key, e.to_string()))?;
            let (num, scale) = parse_decimal(value).ok_or_else(|| {
                ConfigError::invalid(&key, "must be a positive decimal string like \"1.08\"")
            })?;
            if num == 0 {
                return Err(ConfigError::invalid(&key, "must be greater than zero"));
            }
            rates.insert(
                cc,
                Rate {
                    num,
                    scale,
                    src_exp,
                },
            );
        }
        Ok(Self {
            revenue,
            revenue_exp,
            rates,
        })
    }

    /// The currency revenue is counted in.
    pub fn revenue_currency(&self) -> CurrencyCode {
        self.revenue
    }

    /// Checks that orders in `code` can be counted as revenue.
    pub fn accept(&self, code: &str) -> Result<CurrencyCode, CurrencyError> {
        let (cc, _) = parse_code(code)?;
        if cc == self.revenue || self.rates.contains_key(&cc) {
            Ok(cc)
        } else {
            Err(CurrencyError::NoRate)
        }
    }

    /// Converts `minor` units of `from` into revenue minor units, rounding half away from zero.
    /// A currency without a rate (only possible after a config reload dropped it) counts as 0.
    pub fn to_revenue_minor(&self, minor: i64, from: CurrencyCode) -> i64 {
        if from == self.revenue {
            return minor;
        }
        let Some(rate) = self.rates.get(&from) else {
            return 0;
        };
        // revenue_minor = minor / 10^src_exp * num / 10^scale * 10^rev_exp
        let numer = i128::from(minor) * rate.num * 10i128.pow(self.revenue_exp);
        let denom = 10i128.pow(rate.scale + rate.src_exp);
        let q = numer / denom;
        let r = numer % denom;
        let rounded = if 2 * r.abs() >= denom {
            q + numer.signum()
        } else {
            q
        };
        i64::try_from(rounded).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rates: &[(&str, &str)]) -> CurrencyTable {
        let cfg = RevenueConfig {
            rates: rates
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..RevenueConfig::default()
        };
        CurrencyTable::from_config(&cfg).expect("valid")
    }

    #[test]
    fn revenue_currency_needs_no_rate() {
        let t = table(&[]);
        assert!(t.accept("USD").is_ok());
        assert_eq!(t.accept("EUR"), Err(CurrencyError::NoRate));
        assert_eq!(t.accept("XXQ"), Err(CurrencyError::Unknown));
        assert_eq!(t.to_revenue_minor(12_345, t.revenue_currency()), 12_345);
    }

    #[test]
    fn honours_minor_unit_exponents_and_rounds_half_away_from_zero() {
        let t = table(&[("EUR", "1.5"), ("JPY", "0.0067"), ("KWD", "3.25")]);
        let eur = t.accept("EUR").expect("eur");
        let jpy = t.accept("JPY").expect("jpy");
        let kwd = t.accept("KWD").expect("kwd");
        // 1.00 EUR -> 1.50 USD
        assert_eq!(t.to_revenue_minor(100, eur), 150);
        // 0.01 EUR -> 0.015 USD -> rounds half away from zero to 0.02
        assert_eq!(t.to_revenue_minor(1, eur), 2);
        // 1000 JPY (exponent 0) -> 6.70 USD
        assert_eq!(t.to_revenue_minor(1000, jpy), 670);
        // 1 JPY -> 0.0067 USD -> 0.01 USD (0.67 cents rounds up)
        assert_eq!(t.to_revenue_minor(1, jpy), 1);
        // 1.000 KWD (exponent 3) -> 3.25 USD
        assert_eq!(t.to_revenue_minor(1000, kwd), 325);
    }
}
