//! On-disk encodings of the state: one version byte, then postcard. Records name customers by
//! the shop's id (dense indices are assigned afresh at every start).

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::audience::engine::MembershipRecord;
use crate::clock::Nanos;
use crate::ingest::currency::CurrencyCode;
use crate::insight::outcomes::Entry;
use crate::ledger::facts::Fact;
use crate::ledger::orders::OrderSlot;
use crate::ledger::state::{Cart, CartUpdate, Key, Profile, Refund, State};

/// Version byte of every record written by this build (customer records: see
/// [`CUSTOMER_RECORD_VERSION`]).
pub const RECORD_VERSION: u8 = 1;

/// Version byte of customer records: version 2 added audience entries, version 3 the
/// customer's orders and carts.
pub const CUSTOMER_RECORD_VERSION: u8 = 3;

/// A record that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Written by another (newer) version of audiencesync.
    #[error("unsupported record version {0} (this build reads {RECORD_VERSION})")]
    Version(u8),
    /// Empty value.
    #[error("empty record")]
    Empty,
    /// Bytes that do not decode.
    #[error("undecodable record: {0}")]
    Decode(#[from] postcard::Error),
}

/// Encodes a value with the version byte.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    // Serializing plain data into a Vec cannot fail.
    out.extend(postcard::to_allocvec(v).unwrap_or_default());
    out
}

/// Decodes a value written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&RECORD_VERSION, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&v, _)) => Err(CodecError::Version(v)),
    }
}

/// Largest write-ahead record; larger sled values would go to unsynced blob files.
pub const MAX_WAL_RECORD_BYTES: usize = 64 * 1024;

/// Packs facts into write-ahead records of at most ~[`MAX_WAL_RECORD_BYTES`] each.
pub fn encode_wal(facts: &[Fact]) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    let mut cur = vec![RECORD_VERSION];
    for f in facts {
        if cur.len() > 1 && cur.len() >= MAX_WAL_RECORD_BYTES - 1024 {
            records.push(std::mem::replace(&mut cur, vec![RECORD_VERSION]));
        }
        cur = postcard::to_extend(f, cur).unwrap_or_else(|_| vec![RECORD_VERSION]);
    }
    if cur.len() > 1 {
        records.push(cur);
    }
    records
}

/// Unpacks a write-ahead record.
pub fn decode_wal(bytes: &[u8]) -> Result<Vec<Fact>, CodecError> {
    let mut rest = match bytes.split_first() {
        None => return Err(CodecError::Empty),
        Some((&RECORD_VERSION, rest)) => rest,
        Some((&v, _)) => return Err(CodecError::Version(v)),
    };
    let mut facts = Vec::new();
    while !rest.is_empty() {
        let (f, tail) = postcard::take_from_bytes::<Fact>(rest)?;
        facts.push(f);
        rest = tail;
    }
    Ok(facts)
}

/// A customer as stored in the `customers` tree (keyed by the shop's id), with its orders
/// and carts: one sled insert per dirty customer instead of one per order and cart (an
/// insert costs ~14 µs, which made checkpoints the daemon's largest CPU cost).
///
/// An order placed by several customers is in each one's record; loading joins the copies,
/// which is exact because every entity is a join-semilattice.
#[derive(Debug, Serialize, Deserialize)]
pub struct CustomerRecord {
    /// Latest erasure.
    pub erased_at: Option<Nanos>,
    /// Profile and consent.
    pub profile: Profile,
    /// Audience memberships, their start times and history.
    pub memberships: MembershipRecord,
    /// Audience entries kept for outcome reports (since version 2).
    pub entries: Vec<Entry>,
    /// The orders with a placement by this customer (since version 3).
    pub orders: Vec<(Key, OrderRecord)>,
    /// The carts this customer updated, open or checked out (since version 3).
    pub carts: Vec<(Key, CartRecord)>,
}

/// A customer record of version 1 (before audience entries).
#[derive(Debug, Deserialize)]
struct CustomerRecordV1 {
    erased_at: Option<Nanos>,
    profile: Profile,
    memberships: MembershipRecord,
}

/// Encodes a customer record (version [`CUSTOMER_RECORD_VERSION`]).
pub fn encode_customer(r: &CustomerRecord) -> Vec<u8> {
    let mut out = vec![CUSTOMER_RECORD_VERSION];
    // Serializing plain data into a Vec cannot fail.
    out.extend(postcard::to_allocvec(r).unwrap_or_default());
    out
}

/// A customer record of version 2 (entries; orders and carts still in their own trees).
#[derive(Debug, Deserialize)]
struct CustomerRecordV2 {
    erased_at: Option<Nanos>,
    profile: Profile,
    memberships: MembershipRecord,
    entries: Vec<Entry>,
}

/// Decodes a customer record of version 1, 2 or 3; `true` when it is older than 3 (its
/// orders and carts live in their own trees until everything is rewritten once).
pub fn decode_customer(bytes: &[u8]) -> Result<(CustomerRecord, bool), CodecError> {
    let old = |erased_at, profile, memberships, entries| CustomerRecord {
        erased_at,
        profile,
        memberships,
        entries,
        orders: Vec::new(),
        carts: Vec::new(),
    };
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&CUSTOMER_RECORD_VERSION, rest)) => Ok((postcard::from_bytes(rest)?, false)),
        Some((&2, rest)) => {
            let v2: CustomerRecordV2 = postcard::from_bytes(rest)?;
            Ok((
                old(v2.erased_at, v2.profile, v2.memberships, v2.entries),
                true,
            ))
        }
        Some((&RECORD_VERSION, rest)) => {
            let v1: CustomerRecordV1 = postcard::from_bytes(rest)?;
            Ok((
                old(v1.erased_at, v1.profile, v1.memberships, Vec::new()),
                true,
            ))
        }
        Some((&v, _)) => Err(CodecError::Version(v)),
    }
}

/// What a customer record holds beyond the facts, for the engines derived from them.
#[derive(Debug)]
pub struct RestoredCustomer {
    /// The customer's index.
    pub customer: crate::ledger::state::CustomerIdx,
    /// Stored memberships.
    pub memberships: MembershipRecord,
    /// Stored audience entries.
    pub entries: Vec<Entry>,
    /// The erasure instant the record was written with (the log may replay a later one).
    pub recorded_erased_at: Option<Nanos>,
}

/// One membership change as stored in the `changes` tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Position in `Audience::ALL`.
    pub audience: u8,
    /// The shop's customer id.
    pub customer: Box<str>,
    /// Entered (true) or left.
    pub added: bool,
    /// When.
    pub at: Nanos,
}

/// A placement as stored.
#[derive(Debug, Serialize, Deserialize)]
pub struct PlacementRecord {
    customer: Box<str>,
    at: Nanos,
    eid: Box<str>,
    total_minor: i64,
    currency: CurrencyCode,
    item_count: u32,
}

/// An order as stored in the `orders` tree (keyed by the 16-byte key of its id).
#[derive(Debug, Serialize, Deserialize)]
pub struct OrderRecord {
    placements: Vec<PlacementRecord>,
    refunds: Vec<Refund>,
}

/// A cart update as stored.
#[derive(Debug, Serialize, Deserialize)]
pub struct CartUpdateRecord {
    customer: Option<Box<str>>,
    at: Nanos,
    eid: Box<str>,
    item_count: u32,
    value_minor: i64,
    currency: Option<CurrencyCode>,
}

/// A cart as stored in the `carts` tree.
#[derive(Debug, Serialize, Deserialize)]
pub struct CartRecord {
    checked_out: bool,
    updates: Vec<CartUpdateRecord>,
}

/// Big-endian bytes of a key, so sled orders keys as numbers.
pub fn key_bytes(k: Key) -> [u8; 16] {
    k.to_be_bytes()
}

/// A key back from its bytes.
pub fn key_from(bytes: &[u8]) -> Option<Key> {
    Some(Key::from_be_bytes(bytes.try_into().ok()?))
}

impl State {
    /// The stored form of an order.
    pub fn order_record(&self, s: OrderSlot) -> OrderRecord {
        let book = &self.orders;
        OrderRecord {
            placements: book
                .placements(s)
                .map(|p| PlacementRecord {
                    customer: self.customers[p.customer as usize].id.clone(),
                    at: p.at,
                    eid: book.eid(p.eid).into(),
                    total_minor: p.total_minor,
                    currency: p.currency,
                    item_count: p.item_count,
                })
                .collect(),
            refunds: book.refunds(s).copied().collect(),
        }
    }

    /// The stored form of a cart.
    pub fn cart_record(&self, k: &Cart) -> CartRecord {
        CartRecord {
            checked_out: k.checked_out,
            updates: k
                .updates
                .iter()
                .map(|u| CartUpdateRecord {
                    customer: u.customer.map(|c| self.customers[c as usize].id.clone()),
                    at: u.at,
                    eid: u.eid.clone(),
                    item_count: u.item_count,
                    value_minor: u.value_minor,
                    currency: u.currency,
                })
                .collect(),
        }
    }

    /// Restores a customer from its record, joining its orders and carts into whatever other
    /// records brought already; returns its index and what the record holds beyond the facts.
    pub fn restore_customer(&mut self, id: &str, r: CustomerRecord) -> RestoredCustomer {
        let c = self.intern(id);
        let cust = &mut self.customers[c as usize];
        cust.erased_at = r.erased_at;
        cust.profile = r.profile;
        cust.profile.share_eids();
        for (key, order) in r.orders {
            self.restore_order(key, order);
        }
        for (key, cart) in r.carts {
            let checked_out = cart.checked_out;
            self.restore_cart(key, cart);
            // A checked-out cart names no owner any more: the record it came in says who.
            if checked_out {
                if let Some(k) = self.carts.get_mut(&key) {
                    k.owned = true;
                }
                let cust = &mut self.customers[c as usize];
                if !cust.carts.contains(&key) {
                    cust.carts.push(key);
                }
            }
        }
        RestoredCustomer {
            customer: c,
            memberships: r.memberships,
            entries: r.entries,
            recorded_erased_at: r.erased_at,
        }
    }

    /// Joins an order record into the state: placements and refunds not seen yet are added.
    pub fn restore_order(&mut self, key: Key, r: OrderRecord) -> OrderSlot {
        let slot = self.orders.slot(key);
        for p in r.placements {
            let c = self.intern(&p.customer);
            let cust = &mut self.customers[c as usize];
            if !cust.orders.contains(&slot) {
                cust.orders.push(slot);
            }
            let new = crate::ledger::orders::NewPlacement {
                customer: c,
                at: p.at,
                eid: &p.eid,
                total_minor: p.total_minor,
                currency: p.currency,
                item_count: p.item_count,
            };
            self.orders.place(slot, new);
        }
        for refund in r.refunds {
            self.orders.refund(slot, refund);
        }
        slot
    }

    /// Joins a cart record into the state: checked out wins; otherwise the latest update per
    /// owner.
    pub fn restore_cart(&mut self, key: Key, r: CartRecord) {
        let mut updates = Vec::with_capacity(r.updates.len());
        for u in r.updates {
            let c = u.customer.as_deref().map(|id| self.intern(id));
            if let Some(c) = c {
                let cust = &mut self.customers[c as usize];
                if !cust.carts.contains(&key) {
                    cust.carts.push(key);
                }
            }
            updates.push(CartUpdate {
                customer: c,
                at: u.at,
                eid: u.eid,
                item_count: u.item_count,
                value_minor: u.value_minor,
                currency: u.currency,
            });
        }
        let cart = self.carts.entry(key).or_default();
        if r.checked_out {
            cart.checked_out = true;
            cart.updates.clear();
        }
        if cart.checked_out {
            return;
        }
        for u in updates {
            match cart.updates.iter_mut().find(|x| x.customer == u.customer) {
                Some(x) if (x.at, &x.eid) >= (u.at, &u.eid) => {}
                Some(x) => *x = u,
                None => cart.updates.push(u),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_records_of_versions_1_and_2_still_decode() {
        let memberships = MembershipRecord {
            mask: 5,
            since: vec![(0, 7)],
            history: vec![(0, true, 7)],
        };
        // Version 1 had the first three fields only (postcard encodes a struct as its fields).
        let v1 = encode(&(Some(3i64), Profile::default(), memberships.clone()));
        let (r, old) = decode_customer(&v1).expect("v1 decodes");
        assert!(old);
        assert_eq!(r.erased_at, Some(3));
        assert_eq!(r.memberships, memberships);
        assert!(r.entries.is_empty() && r.orders.is_empty());

        let entry = Entry {
            at: 9,
            audience: 3,
            flags: crate::insight::outcomes::ELIGIBLE,
        };
        // Version 2 added the entries.
        let mut v2 = vec![2u8];
        v2.extend(
            postcard::to_allocvec(&(
                None::<i64>,
                Profile::default(),
                memberships.clone(),
                vec![entry],
            ))
            .expect("encodes"),
        );
        let (r, old) = decode_customer(&v2).expect("v2 decodes");
        assert!(old);
        assert_eq!(r.entries, vec![entry]);

        let v3 = encode_customer(&CustomerRecord {
            erased_at: None,
            profile: Profile::default(),
            memberships,
            entries: vec![entry],
            orders: vec![(
                7,
                OrderRecord {
                    placements: Vec::new(),
                    refunds: Vec::new(),
                },
            )],
            carts: Vec::new(),
        });
        assert_eq!(v3[0], CUSTOMER_RECORD_VERSION);
        let (r, old) = decode_customer(&v3).expect("v3 decodes");
        assert!(!old);
        assert_eq!((r.entries, r.orders.len()), (vec![entry], 1));
        assert!(matches!(
            decode_customer(&[9, 0]),
            Err(CodecError::Version(9))
        ));
    }
}
