//! Validated, hashed facts: what ingest hands the ledger and what the write-ahead log holds.
//! No raw email, phone or name can be represented here: only their SHA-256 digests.

use serde::{Deserialize, Serialize};

use crate::clock::Nanos;
use crate::hashing::NetworkHashes;
use crate::money::CurrencyCode;

/// A consent signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Consent {
    /// Never stated.
    #[default]
    Unspecified,
    /// Granted.
    Granted,
    /// Denied.
    Denied,
}

/// A field update: `None` leaves the stored value alone, `Some(None)` clears it.
pub type Update<T> = Option<Option<T>>;

/// One accepted event, ready to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// The client's event id (ties between equal `at` are broken on it).
    pub event_id: Box<str>,
    /// When it happened.
    pub at: Nanos,
    /// What happened.
    pub kind: FactKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FactKind {
    /// Profile and/or consent of a customer.
    CustomerUpserted(Box<CustomerUpsert>),
    /// An order was placed.
    OrderPlaced {
        /// Order id.
        order: Box<str>,
        /// Customer id.
        customer: Box<str>,
        /// Total in minor units of `currency`.
        total_minor: i64,
        /// Currency of the total.
        currency: CurrencyCode,
        /// Items in the order.
        item_count: u32,
    },
    /// A full or partial refund.
    OrderRefunded {
        /// Order id.
        order: Box<str>,
        /// Amount in the order currency's minor units (ignored when `full`).
        amount_minor: i64,
        /// The whole order was refunded.
        full: bool,
    },
    /// A cart changed.
    CartUpdated {
        /// Cart id.
        cart: Box<str>,
        /// Owner, if not a guest cart.
        customer: Option<Box<str>>,
        /// Items now in the cart.
        item_count: u32,
        /// Value of the cart in minor units of `currency` (0 if not given).
        value_minor: i64,
        /// Currency of the value, if given.
        currency: Option<CurrencyCode>,
    },
    /// A cart was checked out, for good.
    CartCheckedOut {
        /// Cart id.
        cart: Box<str>,
    },
    /// Consent changed.
    ConsentChanged {
        /// Customer id.
        customer: Box<str>,
        /// New `ad_user_data`, if stated.
        ad_user_data: Option<Consent>,
        /// New `ad_personalization`, if stated.
        ad_personalization: Option<Consent>,
    },
    /// Right to be forgotten.
    CustomerErased {
        /// Customer id.
        customer: Box<str>,
    },
}

/// The fields of a customer upsert, identifiers already hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CustomerUpsert {
    /// Customer id.
    pub customer: Box<str>,
    /// Hashed email.
    pub email: Update<NetworkHashes>,
    /// Hashed phone.
    pub phone: Update<NetworkHashes>,
    /// Hashed first name.
    pub first_name: Update<NetworkHashes>,
    /// Hashed last name.
    pub last_name: Update<NetworkHashes>,
    /// Normalized alpha-2 country.
    pub country: Update<Box<str>>,
    /// Normalized postal code.
    pub postal_code: Update<Box<str>>,
    /// Registration time.
    pub registered_at: Option<Nanos>,
    /// Consent for data use.
    pub ad_user_data: Option<Consent>,
    /// Consent for personalization.
    pub ad_personalization: Option<Consent>,
}

impl Fact {
    /// The customer the fact names directly, if any.
    pub fn customer(&self) -> Option<&str> {
        match &self.kind {
            FactKind::CustomerUpserted(u) => Some(&u.customer),
            FactKind::OrderPlaced { customer, .. }
            | FactKind::ConsentChanged { customer, .. }
            | FactKind::CustomerErased { customer } => Some(customer),
            FactKind::CartUpdated { customer, .. } => customer.as_deref(),
            FactKind::OrderRefunded { .. } | FactKind::CartCheckedOut { .. } => None,
        }
    }
}
