//! Holdout groups: which members of an audience are never pushed, so their outcomes can be
//! compared with the pushed members'.
//!
//! Membership in the holdout is a pure function of (audience name, customer id, a random salt
//! made once per data directory): a customer's position is a 64-bit hash of the three read as
//! a fraction of 2^64, and the customer is held out iff that position lies below the
//! audience's configured share. So the assignment survives restarts, does not depend on the
//! order anything happened in, and raising a share from 10 % to 20 % keeps the first 10 % and
//! adds more (lowering it releases the newest part first).

use crate::audience::rules::Audience;

/// Bytes of the per-install salt.
pub const SALT_LEN: usize = 16;

/// The salt and the configured shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldoutPolicy {
    salt: [u8; SALT_LEN],
    /// (audience name, share as num/den) per position in `Audience::ALL`.
    shares: Vec<(String, (u64, u64))>,
}

impl HoldoutPolicy {
    /// A policy over audience names (in `Audience::ALL` order) and shares (`(0, 1)`: none).
    pub fn new(salt: [u8; SALT_LEN], names: Vec<String>, shares: &[(u64, u64)]) -> Self {
        Self {
            salt,
            shares: names
                .into_iter()
                .zip(shares.iter().copied().chain(std::iter::repeat((0, 1))))
                .collect(),
        }
    }

    /// The same shares under another salt.
    pub fn with_salt(mut self, salt: [u8; SALT_LEN]) -> Self {
        self.salt = salt;
        self
    }

    /// The salt in force.
    pub fn salt(&self) -> [u8; SALT_LEN] {
        self.salt
    }

    /// The configured share of `a` as `(num, den)`; `(0, 1)` when `a` has no holdout.
    pub fn share(&self, a: Audience) -> (u64, u64) {
        self.shares.get(a.index()).map_or((0, 1), |s| s.1)
    }

    /// Whether `a` holds anyone out.
    pub fn active(&self, a: Audience) -> bool {
        self.share(a).0 > 0
    }

    /// Whether the customer is in `a`'s holdout (whether or not they are a member now).
    pub fn is_held(&self, a: Audience, customer_id: &str) -> bool {
        let (num, den) = self.share(a);
        if num == 0 {
            return false;
        }
        let name = self.shares.get(a.index()).map_or("", |s| s.0.as_str());
        position(&self.salt, name, customer_id) < threshold(num, den)
    }
}

/// Where a customer falls in `[0, 2^64)` for one audience.
fn position(salt: &[u8; SALT_LEN], audience: &str, customer_id: &str) -> u64 {
    let mut buf = Vec::with_capacity(SALT_LEN + audience.len() + 1 + customer_id.len());
    buf.extend_from_slice(salt);
    buf.extend_from_slice(audience.as_bytes());
    // A byte no UTF-8 string contains separates the two names unambiguously.
    buf.push(0xff);
    buf.extend_from_slice(customer_id.as_bytes());
    xxhash_rust::xxh3::xxh3_64(&buf)
}

/// `num / den` of 2^64, exactly (shares are below 1, so it fits).
fn threshold(num: u64, den: u64) -> u64 {
    let t = (u128::from(num) << 64) / u128::from(den.max(1));
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// Formats a share as the decimal string it was configured as (`"0.1"`, `"0"` for none).
pub fn share_text((num, den): (u64, u64)) -> String {
    if num == 0 {
        return "0".into();
    }
    let digits = den.max(1).ilog10() as usize;
    let s = format!("{num:0>width$}", width = digits + 1);
    let (int, frac) = s.split_at(s.len() - digits);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(share: (u64, u64)) -> HoldoutPolicy {
        let names = Audience::ALL
            .iter()
            .map(|a| format!("{a:?}").to_lowercase())
            .collect();
        let mut shares = vec![(0, 1); Audience::ALL.len()];
        shares[Audience::Vip.index()] = share;
        HoldoutPolicy::new([7; SALT_LEN], names, &shares)
    }

    #[test]
    fn raising_the_share_keeps_everyone_held_out_before() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("cust-{i}")).collect();
        let held = |p: &HoldoutPolicy| -> Vec<bool> {
            ids.iter().map(|id| p.is_held(Audience::Vip, id)).collect()
        };
        let ten = held(&policy((1, 10)));
        let twenty = held(&policy((2, 10)));
        assert!(ten.iter().zip(&twenty).all(|(a, b)| !a || *b));
        let n10 = ten.iter().filter(|h| **h).count();
        let n20 = twenty.iter().filter(|h| **h).count();
        // Binomial(10 000, p): far inside ±5 sd.
        assert!((850..1150).contains(&n10), "{n10}");
        assert!((1800..2200).contains(&n20), "{n20}");
        // Other audiences hold nobody out; another salt draws another sample.
        assert!(!policy((1, 10)).is_held(Audience::Lapsed1, "cust-1"));
        let other = policy((1, 10)).with_salt([8; SALT_LEN]);
        assert_ne!(ten, held(&other));
        assert_eq!(held(&policy((0, 1))), vec![false; ids.len()]);
    }

    #[test]
    fn shares_print_as_configured() {
        assert_eq!(share_text((1, 10)), "0.1");
        assert_eq!(share_text((25, 100)), "0.25");
        assert_eq!(share_text((5, 1000)), "0.005");
        assert_eq!(share_text((0, 1)), "0");
        assert_eq!(threshold(1, 2), 1 << 63);
    }
}
