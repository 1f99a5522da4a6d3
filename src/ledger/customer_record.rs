//! Customer records of the `customers` tree (with the customer's orders and carts), the
//! lone order and cart records, their borrowed views for the checkpoint, and restoring the
//! state from them.
//!
//! A customer record also carries what the engines above derive from the facts: audience
//! memberships ([`MembershipRecord`]) and audience entries ([`AudienceEntry`]). The store keeps
//! only their byte layout, as plain data; what the bits and numbers mean belongs to the
//! audience and insight engines.

use serde::{Deserialize, Serialize};

use crate::clock::Nanos;
use crate::ledger::order_chunks::LayoutLoader;
use crate::ledger::orders::{NewPlacement, OrderSlot};
use crate::ledger::profile::Profile;
use crate::ledger::records::{CodecError, CUSTOMER_RECORD_VERSION, RECORD_VERSION};
use crate::ledger::state::{Cart, CartUpdate, CustomerIdx, Key, Refund, State};
use crate::money::CurrencyCode;

/// A customer's memberships as stored with its checkpoint record. Audience numbers are
/// positions in the audience engine's list of audiences, which only ever grows at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipRecord {
    /// Bit per audience.
    pub mask: u32,
    /// (audience, entered at) for current memberships.
    pub since: Vec<(u8, Nanos)>,
    /// (audience, added, at), oldest first.
    pub history: Vec<(u8, bool, Nanos)>,
}

/// One entry into an audience as stored with the customer's record; the insight engine
/// defines the flags and what an entry's outcome is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudienceEntry {
    /// When the daemon made the customer a member.
    pub at: Nanos,
    /// Position of the audience in the audience engine's list.
    pub audience: u8,
    /// Bits the insight engine sets at entry (held out, eligible).
    pub flags: u8,
}

/// A customer as stored in the `customers` tree (keyed by the shop's id), with its carts and
/// the tail of its orders (the full chunks before it have records of their own: see
/// [`crate::ledger::order_chunks`]): one sled insert per dirty customer instead of one per
/// order and cart (an insert costs ~10 µs, which made checkpoints the daemon's largest CPU
/// cost), and a size that does not grow with the customer's history.
///
/// An order placed by several customers is in each one's record set; loading joins the
/// copies, which is exact because every entity is a join-semilattice.
#[derive(Debug, Serialize, Deserialize)]
pub struct CustomerRecord {
    /// Latest erasure.
    pub erased_at: Option<Nanos>,
    /// Profile and consent.
    pub profile: Profile,
    /// Audience memberships, their start times and history.
    pub memberships: MembershipRecord,
    /// Audience entries kept for outcome reports (since version 2).
    pub entries: Vec<AudienceEntry>,
    /// The orders with a placement by this customer (since version 3), after its full
    /// chunks (since version 4; before, all of them).
    pub orders: Vec<(Key, OrderRecord)>,
    /// The carts this customer updated, open or checked out (since version 3).
    pub carts: Vec<(Key, CartRecord)>,
    /// Full order chunks stored under their own keys (since version 4).
    pub order_chunks: u32,
}

/// A customer record of version 3 (every order in the record).
#[derive(Debug, Deserialize)]
struct CustomerRecordV3 {
    erased_at: Option<Nanos>,
    profile: Profile,
    memberships: MembershipRecord,
    entries: Vec<AudienceEntry>,
    orders: Vec<(Key, OrderRecord)>,
    carts: Vec<(Key, CartRecord)>,
}

/// A customer record of version 1 (before audience entries).
#[derive(Debug, Deserialize)]
struct CustomerRecordV1 {
    erased_at: Option<Nanos>,
    profile: Profile,
    memberships: MembershipRecord,
}

/// Encodes a customer record (version [`CUSTOMER_RECORD_VERSION`]): a [`CustomerRecord`]
/// or its borrowed [`CustomerRecordView`], which give the same bytes.
pub fn encode_customer<T: Serialize>(r: &T) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    postcard::to_extend(r, vec![CUSTOMER_RECORD_VERSION])
        .unwrap_or_else(|_| vec![CUSTOMER_RECORD_VERSION])
}

/// A customer record of version 2 (entries; orders and carts still in their own trees).
#[derive(Debug, Deserialize)]
struct CustomerRecordV2 {
    erased_at: Option<Nanos>,
    profile: Profile,
    memberships: MembershipRecord,
    entries: Vec<AudienceEntry>,
}

/// Decodes a customer record of version 1 to 4; `true` when it is older than 3 (its orders
/// and carts live in their own trees until everything is rewritten once). A version-3
/// record holds every order as its tail; loading finds the tail too long and has the
/// customer written whole in chunks.
pub fn decode_customer(bytes: &[u8]) -> Result<(CustomerRecord, bool), CodecError> {
    let old = |erased_at, profile, memberships, entries| CustomerRecord {
        erased_at,
        profile,
        memberships,
        entries,
        orders: Vec::new(),
        carts: Vec::new(),
        order_chunks: 0,
    };
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&CUSTOMER_RECORD_VERSION, rest)) => Ok((postcard::from_bytes(rest)?, false)),
        Some((&3, rest)) => {
            let v3: CustomerRecordV3 = postcard::from_bytes(rest)?;
            let mut r = old(v3.erased_at, v3.profile, v3.memberships, v3.entries);
            r.orders = v3.orders;
            r.carts = v3.carts;
            Ok((r, false))
        }
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
    pub customer: CustomerIdx,
    /// Stored memberships.
    pub memberships: MembershipRecord,
    /// Stored audience entries.
    pub entries: Vec<AudienceEntry>,
    /// The erasure instant the record was written with (the log may replay a later one).
    pub recorded_erased_at: Option<Nanos>,
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

/// The record of customer `c`, borrowed from the engines' state: serializes to exactly the
/// bytes of [`CustomerRecord`] without cloning ids, event ids and vectors first (encoding
/// runs on the writer, once per dirty customer per checkpoint).
#[derive(Serialize)]
pub struct CustomerRecordView<'a> {
    /// Latest erasure.
    pub erased_at: Option<Nanos>,
    /// Profile and consent.
    pub profile: &'a Profile,
    /// Audience memberships.
    pub memberships: MembershipView<'a>,
    /// Audience entries.
    pub entries: &'a [AudienceEntry],
    /// The tail of the customer's orders.
    pub orders: OrdersView<'a>,
    /// The customer's carts.
    pub carts: CartsView<'a>,
    /// Full order chunks stored under their own keys.
    pub order_chunks: u32,
}

/// [`MembershipRecord`], borrowed.
#[derive(Serialize)]
pub struct MembershipView<'a> {
    /// Bit per audience.
    pub mask: u32,
    /// (audience, entered at).
    pub since: &'a [(u8, Nanos)],
    /// (audience, added, at), oldest first.
    pub history: &'a [(u8, bool, Nanos)],
}

/// A customer's orders as `Vec<(Key, OrderRecord)>`.
pub struct OrdersView<'a> {
    /// The facts.
    pub state: &'a State,
    /// The customer's order slots.
    pub slots: &'a [OrderSlot],
}

impl Serialize for OrdersView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.state;
        s.collect_seq(
            self.slots
                .iter()
                .map(|&slot| (st.orders.key(slot), st.order_view(slot))),
        )
    }
}

/// A customer's carts as `Vec<(Key, CartRecord)>` (keys without a cart are left out).
pub struct CartsView<'a> {
    /// The facts.
    pub state: &'a State,
    /// The customer's cart keys.
    pub keys: &'a [Key],
}

impl Serialize for CartsView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.state;
        SeqOf(|| {
            self.keys
                .iter()
                .filter_map(|k| Some((*k, st.cart_view(st.carts.get(k)?))))
        })
        .serialize(s)
    }
}

/// An order as [`OrderRecord`], borrowed.
pub struct OrderView<'a> {
    state: &'a State,
    slot: OrderSlot,
}

impl Serialize for OrderView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (st, slot) = (self.state, self.slot);
        let book = &st.orders;
        let mut rec = s.serialize_struct("OrderRecord", 2)?;
        rec.serialize_field(
            "placements",
            &SeqOf(|| {
                book.placements(slot).map(|p| PlacementView {
                    customer: &st.customers[p.customer as usize].id,
                    at: p.at,
                    eid: book.eid(p.eid),
                    total_minor: p.total_minor,
                    currency: p.currency,
                    item_count: p.item_count,
                })
            }),
        )?;
        rec.serialize_field("refunds", &SeqOf(|| book.refunds(slot)))?;
        rec.end()
    }
}

/// A cart as [`CartRecord`], borrowed.
pub struct CartView<'a> {
    state: &'a State,
    cart: &'a Cart,
}

impl Serialize for CartView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let st = self.state;
        let mut rec = s.serialize_struct("CartRecord", 2)?;
        rec.serialize_field("checked_out", &self.cart.checked_out)?;
        rec.serialize_field(
            "updates",
            &SeqOf(|| {
                self.cart.updates.iter().map(|u| CartUpdateView {
                    customer: u.customer.map(|c| &*st.customers[c as usize].id),
                    at: u.at,
                    eid: &u.eid,
                    item_count: u.item_count,
                    value_minor: u.value_minor,
                    currency: u.currency,
                })
            }),
        )?;
        rec.end()
    }
}

/// A sequence serialized from an iterator made twice: once to count (postcard writes the
/// length first), once to write.
struct SeqOf<F>(F);

impl<F, I> Serialize for SeqOf<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some((self.0)().count()))?;
        for item in (self.0)() {
            seq.serialize_element(&item)?;
        }
        seq.end()
    }
}

/// [`PlacementRecord`], borrowed.
#[derive(Serialize)]
struct PlacementView<'a> {
    customer: &'a str,
    at: Nanos,
    eid: &'a str,
    total_minor: i64,
    currency: CurrencyCode,
    item_count: u32,
}

/// [`CartUpdateRecord`], borrowed.
#[derive(Serialize)]
struct CartUpdateView<'a> {
    customer: Option<&'a str>,
    at: Nanos,
    eid: &'a str,
    item_count: u32,
    value_minor: i64,
    currency: Option<CurrencyCode>,
}

impl State {
    /// An order as the record stores it, borrowed from the state.
    pub fn order_view(&self, slot: OrderSlot) -> OrderView<'_> {
        OrderView { state: self, slot }
    }

    /// A cart as the record stores it, borrowed from the state.
    pub fn cart_view<'a>(&'a self, cart: &'a Cart) -> CartView<'a> {
        CartView { state: self, cart }
    }

    /// Restores a customer from its record, joining its orders and carts into whatever other
    /// records brought already; returns its index and what the record holds beyond the facts.
    /// `layout` rebuilds the order list with the chunks read after the record.
    pub fn restore_customer(
        &mut self,
        id: &str,
        r: CustomerRecord,
        layout: &mut LayoutLoader,
    ) -> RestoredCustomer {
        let c = self.intern(id);
        let cust = &mut self.customers[c as usize];
        cust.erased_at = r.erased_at;
        cust.profile = r.profile;
        cust.profile.share_eids();
        let tail = r
            .orders
            .into_iter()
            .map(|(key, order)| self.restore_order_of(c, key, order, layout))
            .collect();
        layout.record(self, c, r.order_chunks, tail);
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

    /// Restores chunk `k` of customer `id`'s orders.
    pub fn restore_chunk(
        &mut self,
        id: &str,
        k: u32,
        orders: Vec<(Key, OrderRecord)>,
        layout: &mut LayoutLoader,
    ) {
        let c = self.intern(id);
        let slots: Vec<OrderSlot> = orders
            .into_iter()
            .map(|(key, order)| self.restore_order_of(c, key, order, layout))
            .collect();
        layout.chunk(self, c, k, &slots);
    }

    /// Joins an order record from customer `owner`'s record set; `layout` puts it in the
    /// owner's list, and checks at the end that every other placer's list holds it.
    fn restore_order_of(
        &mut self,
        owner: CustomerIdx,
        key: Key,
        r: OrderRecord,
        layout: &mut LayoutLoader,
    ) -> OrderSlot {
        self.join_order(key, r, |_, c, slot| {
            if c != owner {
                layout.placed_by_other(c, slot);
            }
        })
    }

    /// Joins a lone order record into the state: placements and refunds not seen yet are
    /// added, and a placer whose list lacked the order gets it (and is written whole).
    pub fn restore_order(
        &mut self,
        key: Key,
        r: OrderRecord,
        layout: &mut LayoutLoader,
    ) -> OrderSlot {
        self.join_order(key, r, |st, c, slot| {
            let cust = &mut st.customers[c as usize];
            if !cust.orders.contains(&slot) {
                cust.orders.push(slot);
                layout.pushed_from_outside(c);
            }
        })
    }

    /// Joins an order record's placements and refunds; `placer` sees each placing customer.
    fn join_order(
        &mut self,
        key: Key,
        r: OrderRecord,
        mut placer: impl FnMut(&mut State, CustomerIdx, OrderSlot),
    ) -> OrderSlot {
        let slot = self.orders.slot(key);
        for p in r.placements {
            let c = self.intern(&p.customer);
            placer(self, c, slot);
            self.orders.place(slot, placement(c, &p));
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

/// A stored placement by customer `c`, to join into the order book.
fn placement(c: CustomerIdx, p: &PlacementRecord) -> NewPlacement<'_> {
    NewPlacement {
        customer: c,
        at: p.at,
        eid: &p.eid,
        total_minor: p.total_minor,
        currency: p.currency,
        item_count: p.item_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::facts::Fact;
    use crate::ledger::records::encode;

    /// The insight engine's eligible flag (its value matters only as some bit set).
    const ELIGIBLE: u8 = 2;

    /// The owned form of an order, built as the previous encoder did.
    fn order_record(st: &State, slot: OrderSlot) -> OrderRecord {
        OrderRecord {
            placements: st
                .orders
                .placements(slot)
                .map(|p| PlacementRecord {
                    customer: st.customers[p.customer as usize].id.clone(),
                    at: p.at,
                    eid: st.orders.eid(p.eid).into(),
                    total_minor: p.total_minor,
                    currency: p.currency,
                    item_count: p.item_count,
                })
                .collect(),
            refunds: st.orders.refunds(slot).copied().collect(),
        }
    }

    fn cart_record(st: &State, k: &Cart) -> CartRecord {
        CartRecord {
            checked_out: k.checked_out,
            updates: k
                .updates
                .iter()
                .map(|u| CartUpdateRecord {
                    customer: u.customer.map(|c| st.customers[c as usize].id.clone()),
                    at: u.at,
                    eid: u.eid.clone(),
                    item_count: u.item_count,
                    value_minor: u.value_minor,
                    currency: u.currency,
                })
                .collect(),
        }
    }

    /// The borrowed views write exactly the bytes of the owned records (stores written
    /// before the views existed, and after, read the same).
    #[test]
    fn borrowed_views_encode_the_bytes_of_the_owned_records() {
        use crate::ledger::facts::{CustomerUpsert, FactKind};
        let usd = || Some(CurrencyCode(*b"USD"));
        let fact = |id: &str, at: Nanos, kind| Fact {
            event_id: id.into(),
            at,
            kind,
        };
        let placed = |order: &str, customer: &str, total_minor| FactKind::OrderPlaced {
            order: order.into(),
            customer: customer.into(),
            total_minor,
            currency: CurrencyCode(*b"USD"),
            item_count: 2,
        };
        let cart = |cart: &str, customer: Option<&str>| FactKind::CartUpdated {
            cart: cart.into(),
            customer: customer.map(Into::into),
            item_count: 1,
            value_minor: 500,
            currency: usd(),
        };
        let mut st = State::default();
        for f in [
            fact(
                "e1",
                1,
                FactKind::CustomerUpserted(Box::new(CustomerUpsert {
                    customer: "c1".into(),
                    country: Some(Some("DE".into())),
                    ..CustomerUpsert::default()
                })),
            ),
            fact("e2", 2, placed("o1", "c1", 1_000)),
            fact("e3", 3, placed("o1", "c2", 1_000)),
            fact(
                "e4",
                4,
                FactKind::OrderRefunded {
                    order: "o1".into(),
                    amount_minor: 300,
                    full: false,
                },
            ),
            fact("e5", 5, placed("o2", "c1", 2_500)),
            fact("e6", 6, cart("k1", Some("c1"))),
            fact("e7", 7, cart("k1", Some("c2"))),
            fact("e8", 8, cart("k2", Some("c1"))),
            fact("e9", 9, FactKind::CartCheckedOut { cart: "k2".into() }),
            fact("e10", 10, cart("k3", None)),
        ] {
            st.apply(&f);
        }
        let c1 = st
            .customers
            .iter()
            .position(|c| &*c.id == "c1")
            .expect("c1") as u32;
        let cust = &st.customers[c1 as usize];
        assert_eq!((cust.orders.len(), cust.carts.len()), (2, 2));
        let memberships = MembershipRecord {
            mask: 5,
            since: vec![(0, 7)],
            history: vec![(0, true, 7), (2, false, 8)],
        };
        let entries = [AudienceEntry {
            at: 9,
            audience: 3,
            flags: ELIGIBLE,
        }];
        let owned = CustomerRecord {
            erased_at: Some(1),
            profile: cust.profile.clone(),
            memberships: memberships.clone(),
            entries: entries.to_vec(),
            orders: cust
                .orders
                .iter()
                .map(|&s| (st.orders.key(s), order_record(&st, s)))
                .collect(),
            carts: cust
                .carts
                .iter()
                .filter_map(|k| Some((*k, cart_record(&st, st.carts.get(k)?))))
                .collect(),
            order_chunks: 3,
        };
        let view = CustomerRecordView {
            erased_at: Some(1),
            profile: &cust.profile,
            memberships: MembershipView {
                mask: memberships.mask,
                since: &memberships.since,
                history: &memberships.history,
            },
            entries: &entries,
            orders: OrdersView {
                state: &st,
                slots: &cust.orders,
            },
            carts: CartsView {
                state: &st,
                keys: &cust.carts,
            },
            order_chunks: 3,
        };
        assert_eq!(encode_customer(&view), encode_customer(&owned));
        let o1 = cust.orders[0];
        assert_eq!(encode(&st.order_view(o1)), encode(&order_record(&st, o1)));
        let guest = st
            .carts
            .get(&crate::ledger::state::key_of("k3"))
            .expect("k3");
        assert_eq!(
            encode(&st.cart_view(guest)),
            encode(&cart_record(&st, guest))
        );
    }

    #[test]
    fn customer_records_of_versions_1_to_3_still_decode() {
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

        let entry = AudienceEntry {
            at: 9,
            audience: 3,
            flags: ELIGIBLE,
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

        let order = || OrderRecord {
            placements: Vec::new(),
            refunds: Vec::new(),
        };
        // Version 3 added every order and cart, without the chunk count.
        let mut v3 = vec![3u8];
        v3.extend(
            postcard::to_allocvec(&(
                None::<i64>,
                Profile::default(),
                memberships.clone(),
                vec![entry],
                vec![(7u128, order())],
                Vec::<(u128, CartRecord)>::new(),
            ))
            .expect("encodes"),
        );
        let (r, old) = decode_customer(&v3).expect("v3 decodes");
        assert!(!old);
        assert_eq!(
            (&r.entries, r.orders.len(), r.order_chunks),
            (&vec![entry], 1, 0)
        );

        let v4 = encode_customer(&CustomerRecord {
            erased_at: None,
            profile: Profile::default(),
            memberships,
            entries: vec![entry],
            orders: vec![(7, order())],
            carts: Vec::new(),
            order_chunks: 2,
        });
        assert_eq!(v4[0], CUSTOMER_RECORD_VERSION);
        let (r, old) = decode_customer(&v4).expect("v4 decodes");
        assert!(!old);
        assert_eq!(
            (r.entries, r.orders.len(), r.order_chunks),
            (vec![entry], 1, 2)
        );
        assert!(matches!(
            decode_customer(&[9, 0]),
            Err(CodecError::Version(9))
        ));
    }
}
