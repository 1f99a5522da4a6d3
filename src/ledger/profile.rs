//! A customer's profile: hashed identifiers, country, postal code, consent, each a
//! last-writer-wins register, so applying upserts in any order gives the same profile.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::clock::Nanos;
use crate::hashing::NetworkHashes;
use crate::ledger::facts::{Consent, CustomerUpsert};

/// A last-writer-wins register: the value with the greatest `(at, event_id)` wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lww<T> {
    /// The value.
    pub value: T,
    /// When it was set.
    pub at: Nanos,
    /// By which event (tie-breaker); the registers one event set share one copy.
    pub eid: Arc<str>,
}

/// The event offering values to registers: its id is allocated once, on the first win.
pub(super) struct Offerer<'a> {
    at: Nanos,
    eid: &'a str,
    shared: Option<Arc<str>>,
}

impl<'a> Offerer<'a> {
    pub(super) fn new(at: Nanos, eid: &'a str) -> Self {
        Offerer {
            at,
            eid,
            shared: None,
        }
    }

    /// Offers a value to a register; returns whether it won.
    pub(super) fn offer<T>(&mut self, slot: &mut Option<Lww<T>>, value: T) -> bool {
        if let Some(cur) = slot {
            if (self.at, self.eid) <= (cur.at, &*cur.eid) {
                return false;
            }
        }
        let eid = self.shared.get_or_insert_with(|| self.eid.into()).clone();
        *slot = Some(Lww {
            value,
            at: self.at,
            eid,
        });
        true
    }
}

/// Drops a register set at or before `e`.
fn purge<T>(slot: &mut Option<Lww<T>>, e: Nanos) {
    if slot.as_ref().is_some_and(|l| l.at <= e) {
        *slot = None;
    }
}

/// The latest value of each profile field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Hashed email (`None` inside: cleared).
    pub email: Option<Lww<Option<NetworkHashes>>>,
    /// Hashed phone.
    pub phone: Option<Lww<Option<NetworkHashes>>>,
    /// Hashed first name.
    pub first_name: Option<Lww<Option<NetworkHashes>>>,
    /// Hashed last name.
    pub last_name: Option<Lww<Option<NetworkHashes>>>,
    /// Alpha-2 country.
    pub country: Option<Lww<Option<Box<str>>>>,
    /// Normalized postal code.
    pub postal_code: Option<Lww<Option<Box<str>>>>,
    /// Registration time.
    pub registered_at: Option<Lww<Nanos>>,
    /// Consent for data use.
    pub ad_user_data: Option<Lww<Consent>>,
    /// Consent for personalization.
    pub ad_personalization: Option<Lww<Consent>>,
}

impl Profile {
    pub(super) fn apply_upsert(&mut self, u: &CustomerUpsert, at: Nanos, eid: &str) -> bool {
        let mut changed = false;
        let mut by = Offerer::new(at, eid);
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = &u.$field {
                    changed |= by.offer(&mut self.$field, v.clone());
                }
            };
        }
        set!(email);
        set!(phone);
        set!(first_name);
        set!(last_name);
        set!(country);
        set!(postal_code);
        set!(registered_at);
        set!(ad_user_data);
        set!(ad_personalization);
        changed
    }

    /// Makes registers set by the same event share one copy of its id (decoding a record
    /// gives each its own).
    pub fn share_eids(&mut self) {
        let mut seen: SmallVec<[Arc<str>; 4]> = SmallVec::new();
        macro_rules! share {
            ($field:ident) => {
                if let Some(l) = &mut self.$field {
                    match seen.iter().find(|s| **s == l.eid) {
                        Some(s) => l.eid = s.clone(),
                        None => seen.push(l.eid.clone()),
                    }
                }
            };
        }
        share!(email);
        share!(phone);
        share!(first_name);
        share!(last_name);
        share!(country);
        share!(postal_code);
        share!(registered_at);
        share!(ad_user_data);
        share!(ad_personalization);
    }

    pub(super) fn purge(&mut self, e: Nanos) {
        purge(&mut self.email, e);
        purge(&mut self.phone, e);
        purge(&mut self.first_name, e);
        purge(&mut self.last_name, e);
        purge(&mut self.country, e);
        purge(&mut self.postal_code, e);
        purge(&mut self.registered_at, e);
        purge(&mut self.ad_user_data, e);
        purge(&mut self.ad_personalization, e);
    }

    /// Current value of a consent register.
    pub fn consent(slot: &Option<Lww<Consent>>) -> Consent {
        slot.as_ref().map(|l| l.value).unwrap_or_default()
    }
}
