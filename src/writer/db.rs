//! What the writer owns ([`Db`]: the facts, the memberships and the insight counters derived
//! from them) and the read view it lends ([`Reader`]).

use parking_lot::RwLockReadGuard;

use crate::audience::memberships::Audiences;
use crate::clock::Nanos;
use crate::insight::Insights;
use crate::ledger::checkpoint::{Checkpoint, Derived, DirtyPlan, Encoder};
use crate::ledger::state::{Customer, CustomerIdx, State, Summary};
use crate::money::CurrencyTable;

/// Everything the writer owns: the facts and what is derived from them. Only the writer
/// thread (and tests building one by hand) hold it mutably; readers see it through
/// [`Reader`].
pub struct Db {
    /// Customer facts.
    pub(super) facts: State,
    /// Audience memberships.
    pub(super) audiences: Audiences,
    /// Audience entries, their outcomes, retention counters.
    pub(super) insights: Insights,
}

impl Db {
    /// The writer's state from its three parts.
    pub fn new(facts: State, audiences: Audiences, insights: Insights) -> Self {
        Self {
            facts,
            audiences,
            insights,
        }
    }

    /// The facts.
    pub fn facts(&self) -> &State {
        &self.facts
    }

    /// The facts, to apply to (tests and tools; the writer applies through its commit).
    pub fn facts_mut(&mut self) -> &mut State {
        &mut self.facts
    }

    /// Takes the dirty set of the facts and of the engines, and decides where each dirty
    /// entity is written (see [`State::take_dirty`]).
    pub fn take_dirty(&mut self) -> DirtyPlan {
        let Db {
            facts,
            audiences,
            insights,
        } = self;
        facts.take_dirty(audiences.dirty.drain().chain(insights.dirty.drain()))
    }

    /// Serializes a plan made by [`Db::take_dirty`] as a checkpoint for WAL position `seq`,
    /// each customer record carrying its memberships and audience entries.
    pub fn encode_checkpoint(&self, seq: u64, plan: DirtyPlan) -> Checkpoint {
        self.facts.encode_checkpoint(seq, plan, |c| Derived {
            memberships: self.audiences.record_view(c),
            entries: self.insights.entries(c),
        })
    }

    /// Encodes up to `budget` more customers of a checkpoint being encoded; `true` once it
    /// is complete (see [`State::encode_some`]).
    pub fn encode_some(&self, enc: &mut Encoder, budget: usize) -> bool {
        self.facts.encode_some(enc, budget, |c| Derived {
            memberships: self.audiences.record_view(c),
            entries: self.insights.entries(c),
        })
    }

    /// Takes and encodes the dirty set in one step (tests and tools; the writer splits it).
    pub fn take_checkpoint(&mut self, seq: u64) -> Checkpoint {
        let plan = self.take_dirty();
        self.encode_checkpoint(seq, plan)
    }

    /// Marks everything dirty, so the next checkpoint rewrites all of it.
    pub fn mark_all_dirty(&mut self) {
        self.facts.mark_all_dirty();
    }

    pub(super) fn nothing_dirty(&self) -> bool {
        self.facts.nothing_dirty()
            && self.audiences.dirty.is_empty()
            && self.insights.dirty.is_empty()
    }
}

/// How much the store holds, for `GetStoreStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Customers known (erased ones included).
    pub customers: usize,
    /// Orders.
    pub orders: usize,
    /// Carts.
    pub carts: usize,
    /// Event ids remembered for deduplication.
    pub dedup_ids: usize,
}

/// A read view of the writer's state, holding its read lock: the writer waits while one is
/// alive, so keep it briefly (a page of members, one answer).
pub struct Reader<'a> {
    db: RwLockReadGuard<'a, Db>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(db: RwLockReadGuard<'a, Db>) -> Self {
        Self { db }
    }

    /// Audience memberships, holdouts and eligibility.
    pub fn audiences(&self) -> &Audiences {
        &self.db.audiences
    }

    /// The customer with the shop's id `id`.
    pub fn customer(&self, id: &str) -> Option<(CustomerIdx, &Customer)> {
        self.db.facts.customer(id)
    }

    /// The customer at index `c`, if there is one.
    pub fn customer_at(&self, c: CustomerIdx) -> Option<&Customer> {
        self.db.facts.customers.get(c as usize)
    }

    /// The shop's id of customer `c`; `c` comes from this state (a member, a cursor), so it
    /// exists.
    pub fn customer_id(&self, c: CustomerIdx) -> &str {
        &self.db.facts.customers[c as usize].id
    }

    /// Customers known (erased ones included).
    pub fn customer_count(&self) -> usize {
        self.db.facts.customers.len()
    }

    /// How many customers, orders, carts and remembered event ids the store holds.
    pub fn counts(&self) -> StoreCounts {
        let s = &self.db.facts;
        StoreCounts {
            customers: s.customers.len(),
            orders: s.orders.len(),
            carts: s.carts.len(),
            dedup_ids: s.dedup.len(),
        }
    }

    /// Customer `c`'s order and cart summary at `now` (revenue in the window of
    /// `window_secs`, converted by `currencies`).
    pub fn summary(
        &self,
        c: CustomerIdx,
        now: Nanos,
        window_secs: i64,
        currencies: &CurrencyTable,
    ) -> Summary {
        self.db.facts.summary(c, now, window_secs, currencies)
    }
}
