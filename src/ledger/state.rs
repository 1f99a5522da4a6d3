//! The customer facts in memory, and how each fact changes them.
//!
//! Every entity (customer profile, order, cart) is a join-semilattice: applying a set of facts
//! gives the same state in any order, and applying a fact twice changes nothing. That is what
//! makes out-of-order delivery exact, and what lets recovery replay the write-ahead log on top
//! of a checkpoint that is partly newer than the log position it records.

use rustc_hash::FxHashSet as HashSet;

use rustc_hash::FxHashMap as HashMap;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::clock::{whole_secs_between, Nanos};
use crate::ledger::facts::{Fact, FactKind};
use crate::ledger::order_chunks::ChunkLen;
pub use crate::ledger::orders::{NewPlacement, OrderRef, OrderSlot, Orders, Placement};
use crate::ledger::profile::{Offerer, Profile};
use crate::ledger::seen::SeenIds;
use crate::money::{CurrencyCode, CurrencyTable};

/// Dense internal customer number (index into [`State::customers`]).
pub type CustomerIdx = u32;

/// 128-bit key of an external id (order, cart, event): collisions are out of reach.
pub type Key = u128;

fn id_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// The key of an external id.
pub fn key_of(id: &str) -> Key {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

/// One customer.
#[derive(Debug, Clone, Default)]
pub struct Customer {
    /// The shop's id.
    pub id: Box<str>,
    /// Latest erasure: facts at or before it are gone.
    pub erased_at: Option<Nanos>,
    /// Profile and consent.
    pub profile: Profile,
    /// Orders with a placement by this customer (the customer counts those it placed first).
    pub orders: Vec<OrderSlot>,
    /// Carts with an update by this customer.
    pub carts: Vec<Key>,
}

impl Customer {
    fn erased_since(&self, at: Nanos) -> bool {
        self.erased_at.is_some_and(|e| at <= e)
    }
}

/// A refund of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// Key of the refund's event id: one refund event counts once.
    pub eid: Key,
    /// When.
    pub at: Nanos,
    /// Amount in the order currency's minor units.
    pub amount_minor: i64,
    /// Whole order refunded.
    pub full: bool,
}

/// A cart update (the latest per owner is kept; the latest overall decides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartUpdate {
    /// Owner, `None` for a guest cart.
    pub customer: Option<CustomerIdx>,
    /// When.
    pub at: Nanos,
    /// By which event.
    pub eid: Box<str>,
    /// Items in the cart.
    pub item_count: u32,
    /// Value in minor units.
    pub value_minor: i64,
    /// Currency of the value.
    pub currency: Option<CurrencyCode>,
}

/// A cart.
#[derive(Debug, Clone, Default)]
pub struct Cart {
    /// Checked out: gone for good.
    pub checked_out: bool,
    /// Checked out while a customer owned it: its owners' checkpoint records carry it (a
    /// guest cart is checkpointed on its own).
    pub owned: bool,
    /// Latest update per owner.
    pub updates: SmallVec<[CartUpdate; 1]>,
}

impl Cart {
    /// The latest update overall, which says who owns the cart and what is in it.
    pub fn current(&self) -> Option<&CartUpdate> {
        if self.checked_out {
            return None;
        }
        self.updates
            .iter()
            .max_by(|a, b| (a.at, &a.eid).cmp(&(b.at, &b.eid)))
    }
}

/// Per-customer figures derived from the facts at a given `now`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Orders counted for this customer.
    pub order_count: u32,
    /// Earliest counted order.
    pub first_order_at: Option<Nanos>,
    /// Latest counted order.
    pub last_order_at: Option<Nanos>,
    /// Net revenue of all counted orders, revenue-currency minor units.
    pub revenue_minor: i64,
    /// Net revenue of counted orders with `now - at < window`.
    pub revenue_in_window_minor: i64,
    /// Carts owned, not checked out, with items.
    pub open_carts: u32,
}

/// What changed since the last checkpoint.
#[derive(Debug, Default)]
pub struct Dirty {
    /// Customers whose record is rewritten: profile, erasure, memberships, entries, carts or
    /// the orders of its tail changed (or the customer is new).
    pub customers: HashSet<CustomerIdx>,
    /// Full order chunks to rewrite (see [`crate::ledger::order_chunks`]): (customer, chunk).
    pub chunks: HashSet<(CustomerIdx, u32)>,
    /// Customers written whole (record, every chunk, stale chunks deleted): their stored
    /// layout cannot be trusted. Like `shrunk`, not repeated in `customers`: taking the dirty
    /// set adds them.
    pub relayout: HashSet<CustomerIdx>,
    /// Orders changed.
    pub orders: HashSet<OrderSlot>,
    /// Carts changed.
    pub carts: HashSet<Key>,
    /// Event keys remembered since the last checkpoint.
    pub dedup_added: Vec<(Key, i64)>,
    /// Ids first received before this second were forgotten (past retention).
    pub dedup_pruned_before: Option<i64>,
    /// Customers whose record no longer carries some order or cart it carried (an erasure
    /// dropped them): the checkpoint writes these records last, after the records and lone
    /// copies that now carry what they dropped are durable.
    pub shrunk: HashSet<CustomerIdx>,
    /// Orders an erasure dropped from a record that another record may still carry: the
    /// checkpoint gives each a lone copy for the time the records are rewritten, so no
    /// order in which they land (two erased customers can swap orders) loses a refund.
    pub moved_orders: HashSet<OrderSlot>,
    /// Carts an erasure dropped from a record, for the same reason.
    pub moved_carts: HashSet<Key>,
}

/// All customer facts.
#[derive(Debug, Default)]
pub struct State {
    /// Customers by dense index.
    pub customers: Vec<Customer>,
    /// Dense index by the shop's id: bare indices hashed by the id the customer holds
    /// (no second copy of every id).
    by_id: hashbrown::HashTable<CustomerIdx>,
    /// Orders by key of their id.
    pub orders: Orders,
    /// Carts by key of their id.
    pub carts: HashMap<Key, Cart>,
    /// Seen event keys with the day they were first received.
    pub dedup: SeenIds,
    /// Changes not yet checkpointed.
    pub dirty: Dirty,
    /// Customers whose derived figures may have changed, for the audience engine.
    pub touched: HashSet<CustomerIdx>,
    /// Orders and carts whose checkpoint record sits in the `orders` / `carts` trees because
    /// no customer's record carries them (refund-only orders, guest carts): removed from
    /// there once a customer's record does.
    pub stored_alone: StoredAlone,
    /// The orders and carts the last checkpoint plan moved (see [`Dirty::moved_orders`]):
    /// if that checkpoint fails, the retry rewrites everything and must still give them
    /// lone copies.
    pub moved_in_flight: (HashSet<OrderSlot>, HashSet<Key>),
    /// How customers' order lists are cut into checkpoint chunks.
    pub order_chunk: ChunkLen,
}

/// Keys of the entities checkpointed outside any customer record (see [`State::stored_alone`]).
#[derive(Debug, Default)]
pub struct StoredAlone {
    /// Orders in the `orders` tree.
    pub orders: HashSet<OrderSlot>,
    /// Cart keys in the `carts` tree.
    pub carts: HashSet<Key>,
}

impl State {
    /// The dense index of a customer, created on first sight.
    pub fn intern(&mut self, id: &str) -> CustomerIdx {
        let customers = &self.customers;
        let entry = self.by_id.entry(
            id_hash(id),
            |&i| *customers[i as usize].id == *id,
            |&i| id_hash(&customers[i as usize].id),
        );
        let vacant = match entry {
            hashbrown::hash_table::Entry::Occupied(e) => return *e.get(),
            hashbrown::hash_table::Entry::Vacant(v) => v,
        };
        let i = CustomerIdx::try_from(self.customers.len()).unwrap_or(CustomerIdx::MAX);
        vacant.insert(i);
        self.customers.push(Customer {
            id: id.into(),
            ..Customer::default()
        });
        self.dirty.customers.insert(i);
        i
    }

    /// Looks a customer up by the shop's id.
    pub fn customer(&self, id: &str) -> Option<(CustomerIdx, &Customer)> {
        let customers = &self.customers;
        let &i = self
            .by_id
            .find(id_hash(id), |&i| *customers[i as usize].id == *id)?;
        Some((i, &customers[i as usize]))
    }

    /// Approximate heap bytes of the id index.
    pub fn id_index_bytes(&self) -> usize {
        self.by_id.capacity() * (size_of::<CustomerIdx>() + 1)
    }

    /// Remembers an event id as seen at `received_secs`; `false` if it was already.
    pub fn remember(&mut self, event: Key, received_secs: i64) -> bool {
        let new = self.dedup.insert(event, received_secs);
        if new {
            self.dirty.dedup_added.push((event, received_secs));
        }
        new
    }

    /// Forgets the ids remembered since `dirty.dedup_added` had `mark` entries (their facts
    /// never became durable).
    pub fn forget_since(&mut self, mark: usize) {
        for (event, _) in self.dirty.dedup_added.drain(mark..) {
            self.dedup.remove(event);
        }
    }

    /// Forgets event ids first received on days before the one holding `cutoff_secs`.
    pub fn prune_dedup(&mut self, cutoff_secs: i64) -> usize {
        self.dirty.dedup_pruned_before = Some(cutoff_secs);
        self.dedup.retain_since(cutoff_secs)
    }

    /// Applies one fact. Idempotent and order-independent (see the module docs).
    pub fn apply(&mut self, f: &Fact) {
        match &f.kind {
            FactKind::CustomerUpserted(u) => {
                let c = self.intern(&u.customer);
                let cust = &mut self.customers[c as usize];
                if !cust.erased_since(f.at) && cust.profile.apply_upsert(u, f.at, &f.event_id) {
                    self.dirty.customers.insert(c);
                    self.touched.insert(c);
                }
            }
            FactKind::ConsentChanged {
                customer,
                ad_user_data,
                ad_personalization,
            } => {
                let c = self.intern(customer);
                let cust = &mut self.customers[c as usize];
                if cust.erased_since(f.at) {
                    return;
                }
                let mut changed = false;
                let mut by = Offerer::new(f.at, &f.event_id);
                if let Some(v) = ad_user_data {
                    changed |= by.offer(&mut cust.profile.ad_user_data, *v);
                }
                if let Some(v) = ad_personalization {
                    changed |= by.offer(&mut cust.profile.ad_personalization, *v);
                }
                if changed {
                    self.dirty.customers.insert(c);
                    self.touched.insert(c);
                }
            }
            FactKind::OrderPlaced {
                order,
                customer,
                total_minor,
                currency,
                item_count,
            } => {
                let c = self.intern(customer);
                if self.customers[c as usize].erased_since(f.at) {
                    return;
                }
                let slot = self.orders.slot(key_of(order));
                let new = NewPlacement {
                    customer: c,
                    at: f.at,
                    eid: &f.event_id,
                    total_minor: *total_minor,
                    currency: *currency,
                    item_count: *item_count,
                };
                if !self.orders.place(slot, new) {
                    return; // the same event again
                }
                self.touched
                    .extend(self.orders.placements(slot).map(|p| p.customer));
                self.push_order(c, slot);
                self.order_changed(slot);
            }
            FactKind::OrderRefunded {
                order,
                amount_minor,
                full,
            } => {
                let slot = self.orders.slot(key_of(order));
                let refund = Refund {
                    eid: key_of(&f.event_id),
                    at: f.at,
                    amount_minor: *amount_minor,
                    full: *full,
                };
                if !self.orders.refund(slot, refund) {
                    return;
                }
                if let Some(p) = self.orders.counted(slot) {
                    self.touched.insert(p.customer);
                }
                self.order_changed(slot);
            }
            FactKind::CartUpdated {
                cart,
                customer,
                item_count,
                value_minor,
                currency,
            } => {
                let c = customer.as_deref().map(|id| self.intern(id));
                if c.is_some_and(|c| self.customers[c as usize].erased_since(f.at)) {
                    return;
                }
                let key = key_of(cart);
                let k = self.carts.entry(key).or_default();
                if k.checked_out {
                    return;
                }
                let update = CartUpdate {
                    customer: c,
                    at: f.at,
                    eid: f.event_id.clone(),
                    item_count: *item_count,
                    value_minor: *value_minor,
                    currency: *currency,
                };
                match k.updates.iter_mut().find(|u| u.customer == c) {
                    Some(u) if (u.at, &u.eid) >= (f.at, &f.event_id) => return,
                    Some(u) => *u = update,
                    None => k.updates.push(update),
                }
                self.touched
                    .extend(k.updates.iter().filter_map(|u| u.customer));
                if let Some(c) = c {
                    let cust = &mut self.customers[c as usize];
                    if !cust.carts.contains(&key) {
                        cust.carts.push(key);
                    }
                }
                self.dirty.carts.insert(key);
            }
            FactKind::CartCheckedOut { cart } => {
                let key = key_of(cart);
                let k = self.carts.entry(key).or_default();
                if k.checked_out {
                    return;
                }
                k.checked_out = true;
                // The owners keep the key: their checkpoint records carry the checked-out
                // cart, so a late update cannot revive it after a restart.
                for u in std::mem::take(&mut k.updates) {
                    if let Some(c) = u.customer {
                        k.owned = true;
                        self.touched.insert(c);
                        self.dirty.customers.insert(c);
                    }
                }
                self.dirty.carts.insert(key);
            }
            FactKind::CustomerErased { customer } => {
                let c = self.intern(customer);
                self.erase(c, f.at);
            }
        }
    }

    /// Forgets every fact of customer `c` that occurred at or before `e`.
    fn erase(&mut self, c: CustomerIdx, e: Nanos) {
        let cust = &mut self.customers[c as usize];
        if cust.erased_at.is_some_and(|prev| prev >= e) {
            return;
        }
        cust.erased_at = Some(e);
        self.purge_customer(c, e);
    }

    /// Marks a changed order for the next checkpoint. A placed order is in the record set of
    /// each customer who placed it, so their chunk or record holding it is dirty now
    /// (resolving that at checkpoint time held the write lock 23-39 ms per checkpoint in a
    /// 100k-customer feed); only an order stored alone (never placed, or placed since it was
    /// written alone) is resolved then.
    fn order_changed(&mut self, slot: OrderSlot) {
        if self.orders.is_placed(slot) && !self.stored_alone.orders.contains(&slot) {
            self.mark_placers(slot);
        } else {
            self.dirty.orders.insert(slot);
        }
    }

    /// Applies every customer's erasure again. Recovery calls it after loading the
    /// checkpoint: a crash mid-checkpoint can leave another customer's older record holding a
    /// copy of an order with an erased customer's placement, which loading merged back in.
    pub fn purge_erased(&mut self) {
        for c in 0..self.customers.len() {
            if let Some(e) = self.customers[c].erased_at {
                self.purge_customer(c as CustomerIdx, e);
            }
        }
    }

    /// Drops customer `c`'s facts at or before `e` from its profile, orders and carts.
    fn purge_customer(&mut self, c: CustomerIdx, e: Nanos) {
        let cust = &mut self.customers[c as usize];
        cust.profile.purge(e);
        let orders = std::mem::take(&mut cust.orders);
        let carts = std::mem::take(&mut cust.carts);
        let carried = orders.len() + carts.len();
        self.dirty.customers.insert(c);
        self.touched.insert(c);
        let mut kept_orders = Vec::new();
        for slot in orders {
            self.touched
                .extend(self.orders.placements(slot).map(|p| p.customer));
            self.orders
                .retain_placements(slot, |p| !(p.customer == c && p.at <= e));
            if self.orders.placements(slot).any(|p| p.customer == c) {
                kept_orders.push(slot);
            } else {
                self.dirty.moved_orders.insert(slot);
            }
            self.dirty.orders.insert(slot);
        }
        let mut kept_carts = Vec::new();
        for key in carts {
            if let Some(k) = self.carts.get_mut(&key) {
                self.touched
                    .extend(k.updates.iter().filter_map(|u| u.customer));
                k.updates.retain(|u| !(u.customer == Some(c) && u.at <= e));
                // A checked-out cart holds nothing of anyone; the key stays for the record.
                if k.checked_out || k.updates.iter().any(|u| u.customer == Some(c)) {
                    kept_carts.push(key);
                } else {
                    self.dirty.moved_carts.insert(key);
                }
                self.dirty.carts.insert(key);
            }
        }
        if kept_orders.len() + kept_carts.len() < carried {
            self.dirty.shrunk.insert(c);
        }
        let cust = &mut self.customers[c as usize];
        cust.orders = kept_orders;
        cust.carts = kept_carts;
    }

    /// Orders counted for customer `c` (those whose earliest placement is theirs).
    pub fn counted_orders(
        &self,
        c: CustomerIdx,
    ) -> impl Iterator<Item = (&Placement, OrderRef<'_>)> {
        self.customers[c as usize]
            .orders
            .iter()
            .filter_map(move |&s| {
                let o = self.orders.get(s);
                o.counted().filter(|p| p.customer == c).map(|p| (p, o))
            })
    }

    /// Each counted order of customer `c` as (placed at, net value in revenue-currency minor
    /// units), in no particular order, into `out`: what outcome and retention reports need.
    pub fn order_values(
        &self,
        c: CustomerIdx,
        currencies: &CurrencyTable,
        out: &mut Vec<(Nanos, i64)>,
    ) {
        out.clear();
        for (p, o) in self.counted_orders(c) {
            let net = o
                .net_minor()
                .map_or(0, |(net, cur)| currencies.to_revenue_minor(net, cur));
            out.push((p.at, net));
        }
    }

    /// The figures audiences need for customer `c` at `now`.
    pub fn summary(
        &self,
        c: CustomerIdx,
        now: Nanos,
        window_secs: i64,
        currencies: &CurrencyTable,
    ) -> Summary {
        let mut s = Summary::default();
        for (p, o) in self.counted_orders(c) {
            s.order_count += 1;
            s.first_order_at = Some(s.first_order_at.map_or(p.at, |t| t.min(p.at)));
            s.last_order_at = Some(s.last_order_at.map_or(p.at, |t| t.max(p.at)));
            if let Some((net, cur)) = o.net_minor() {
                let v = currencies.to_revenue_minor(net, cur);
                s.revenue_minor = s.revenue_minor.saturating_add(v);
                if whole_secs_between(p.at, now) < window_secs {
                    s.revenue_in_window_minor = s.revenue_in_window_minor.saturating_add(v);
                }
            }
        }
        s.open_carts = u32::try_from(
            self.customers[c as usize]
                .carts
                .iter()
                .filter_map(|k| self.carts.get(k)?.current())
                .filter(|u| u.customer == Some(c) && u.item_count > 0)
                .count(),
        )
        .unwrap_or(u32::MAX);
        s
    }
}
