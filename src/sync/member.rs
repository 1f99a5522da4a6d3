//! What a destination receives for one customer: hashed identifiers under both networks'
//! normalizations, plus the clear-text country and postal code Google requires. The confirmed
//! ledger stores exactly this, so a removal can be sent even after the customer was erased.

use serde::{Deserialize, Serialize};

use crate::hashing::{hex_lower, NetworkHashes};
use crate::ledger::profile::{Lww, Profile};

/// One customer as an ad network's list member.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct RemoteMember {
    /// Hashed email.
    pub email: Option<NetworkHashes>,
    /// Hashed phone.
    pub phone: Option<NetworkHashes>,
    /// Hashed first name.
    pub first_name: Option<NetworkHashes>,
    /// Hashed last name.
    pub last_name: Option<NetworkHashes>,
    /// Alpha-2 country, clear text.
    pub country: Option<Box<str>>,
    /// Normalized postal code, clear text.
    pub postal_code: Option<Box<str>>,
}

fn val<T: Clone>(slot: &Option<Lww<Option<T>>>) -> Option<T> {
    slot.as_ref().and_then(|l| l.value.clone())
}

impl RemoteMember {
    /// The member a profile yields, or `None` if it has no identifier a network can match.
    pub fn from_profile(p: &Profile) -> Option<Self> {
        let m = Self {
            email: val(&p.email),
            phone: val(&p.phone),
            first_name: val(&p.first_name),
            last_name: val(&p.last_name),
            country: val(&p.country),
            postal_code: val(&p.postal_code),
        };
        m.matchable().then_some(m)
    }

    /// Email, phone, or the full name-and-address combination Google and Meta match on.
    pub fn matchable(&self) -> bool {
        self.email.is_some() || self.phone.is_some() || self.address().is_some()
    }

    /// (first, last, country, postal) when all four are known.
    pub fn address(&self) -> Option<(&NetworkHashes, &NetworkHashes, &str, &str)> {
        Some((
            self.first_name.as_ref()?,
            self.last_name.as_ref()?,
            self.country.as_deref()?,
            self.postal_code.as_deref()?,
        ))
    }

    /// A stable, PII-free text form for logs of set-aside members and tests.
    pub fn fingerprint(&self) -> String {
        let h = |x: &Option<NetworkHashes>| x.map(|n| hex_lower(&n.google)).unwrap_or_default();
        format!("{}|{}", &h(&self.email), &h(&self.phone))
    }
}
