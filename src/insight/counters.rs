//! The insight counters, kept by the writer next to the facts and the memberships.
//!
//! Every counter is the sum of per-customer contributions, and a contribution is a pure
//! function of a small per-customer snapshot (counted orders with their net values, audience
//! entries, VIP membership) and the instant it is evaluated at. When the writer touches a
//! customer, changes their memberships, or their next due instant comes, the customer's old
//! contribution is subtracted (from the snapshot it was computed from) and, at the next flush,
//! the new one added. So the counters always equal a full recomputation over the current
//! facts, whatever order events arrived in, and a report reads counters instead of scanning
//! customers. Reports read an immutable copy published at each flush (every writer tick).

use rustc_hash::FxHashSet as HashSet;
use std::sync::Arc;

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap as HashMap;

use super::outcomes::{Entry, ELIGIBLE, HELD_OUT};
use super::{next_due, Aggregates, InsightParams, Snapshot};
use crate::audience::due::DueIndex;
use crate::audience::memberships::Audiences;
use crate::audience::params::AudienceParams;
use crate::audience::rules::Audience;
use crate::clock::Nanos;
use crate::ledger::state::{CustomerIdx, State};
use crate::money::CurrencyTable;

/// Most entries kept per customer (oldest dropped first), so a record stays bounded.
pub const MAX_ENTRIES: usize = 128;

/// One customer's snapshot: what their current contribution was computed from.
#[derive(Debug, Clone, Default)]
struct Tracked {
    orders: Box<[(Nanos, i64)]>,
    entries: Box<[Entry]>,
    vip: bool,
    at: Nanos,
}

impl Tracked {
    fn view(&self) -> Snapshot<'_> {
        Snapshot {
            orders: &self.orders,
            entries: &self.entries,
            vip: self.vip,
            at: self.at,
        }
    }
}

/// What reports read: the counters as of one flush.
#[derive(Debug)]
pub struct Published {
    /// The instant the counters describe.
    pub as_of: Nanos,
    /// The counters.
    pub aggregates: Arc<Aggregates>,
    /// The parameters they were computed under.
    pub params: Arc<InsightParams>,
    /// The revenue currency (ISO 4217).
    pub currency: String,
}

/// Per-customer snapshots, the counters, and what is due.
pub struct Insights {
    params: Arc<InsightParams>,
    currencies: Arc<CurrencyTable>,
    customers: Vec<Tracked>,
    due: DueIndex,
    /// Customers whose contribution is subtracted and waits for the next flush.
    stale: RoaringBitmap,
    /// The erasure instant last seen per erased customer.
    erased_seen: HashMap<CustomerIdx, Nanos>,
    agg: Aggregates,
    changed: bool,
    published: Arc<Published>,
    scratch: Vec<(Nanos, i64)>,
    /// Customers whose entries changed since the last checkpoint.
    pub dirty: HashSet<CustomerIdx>,
}

/// Re-reads one customer's snapshot at `now`; returns whether entries were dropped.
#[allow(clippy::too_many_arguments)]
fn refresh(
    t: &mut Tracked,
    facts: &State,
    audiences: &Audiences,
    c: CustomerIdx,
    now: Nanos,
    p: &InsightParams,
    currencies: &CurrencyTable,
    scratch: &mut Vec<(Nanos, i64)>,
) -> bool {
    facts.order_values(c, currencies, scratch);
    scratch.sort_unstable();
    if *t.orders != scratch[..] {
        t.orders = scratch.as_slice().into();
    }
    t.vip = audiences.mask(c) & Audience::Vip.bit() != 0;
    t.at = now;
    let keep = |e: &Entry| now.saturating_sub(e.at) < p.retention;
    if t.entries.iter().all(keep) {
        return false;
    }
    t.entries = t.entries.iter().copied().filter(keep).collect();
    true
}

impl Insights {
    /// An empty engine under `params`.
    pub fn new(params: &AudienceParams, currencies: Arc<CurrencyTable>) -> Self {
        let params = Arc::new(InsightParams::new(params));
        let published = Arc::new(Published {
            as_of: 0,
            aggregates: Arc::default(),
            params: params.clone(),
            currency: currencies.revenue_currency().as_str().to_string(),
        });
        Self {
            params,
            currencies,
            customers: Vec::new(),
            due: DueIndex::default(),
            stale: RoaringBitmap::new(),
            erased_seen: HashMap::default(),
            agg: Aggregates::default(),
            changed: true,
            published,
            scratch: Vec::new(),
            dirty: HashSet::default(),
        }
    }

    fn grow(&mut self, n: usize) {
        if self.customers.len() < n {
            self.customers.resize_with(n, Tracked::default);
            self.due.grow(n);
        }
    }

    /// Loads a customer's stored entries (start-up, before [`Self::rebuild`]). An erasure
    /// replayed from the log after the record was written drops them: entries recorded
    /// before an erasure was applied belong to the erased person.
    pub fn restore(
        &mut self,
        c: CustomerIdx,
        entries: Vec<Entry>,
        recorded_erased_at: Option<Nanos>,
        erased_at: Option<Nanos>,
    ) {
        self.grow(c as usize + 1);
        if let Some(e) = erased_at {
            self.erased_seen.insert(c, e);
        }
        if recorded_erased_at != erased_at {
            if !entries.is_empty() {
                self.dirty.insert(c);
            }
            return;
        }
        self.customers[c as usize].entries = entries.into();
    }

    /// Subtracts the customer's contribution until the next flush adds the new one.
    fn make_stale(&mut self, c: CustomerIdx) {
        self.grow(c as usize + 1);
        if self.stale.insert(c) {
            let t = &self.customers[c as usize];
            self.agg.contribute(&t.view(), &self.params, -1);
        }
    }

    /// After the writer changed facts (`touched`) and memberships (`audiences.pending`, not
    /// yet drained): records an entry for each membership gained, drops the entries of newly
    /// erased customers, and marks everyone concerned for the next flush. Call exactly once
    /// per batch of pending changes, before they are drained.
    pub fn observe(&mut self, facts: &State, audiences: &Audiences, touched: &[CustomerIdx]) {
        self.observe_since(facts, audiences, touched, 0);
    }

    /// [`Insights::observe`] for the pending changes from position `from` on: the writer
    /// applies a group in slices and observes each slice's changes once.
    pub fn observe_since(
        &mut self,
        facts: &State,
        audiences: &Audiences,
        touched: &[CustomerIdx],
        from: usize,
    ) {
        for &c in touched {
            self.make_stale(c);
            let erased = facts.customers.get(c as usize).and_then(|x| x.erased_at);
            if let Some(e) = erased {
                if self.erased_seen.insert(c, e) != Some(e) {
                    let t = &mut self.customers[c as usize];
                    if !t.entries.is_empty() {
                        t.entries = Box::default();
                        self.dirty.insert(c);
                    }
                }
            }
        }
        let policy = audiences.holdout_policy();
        for ch in audiences.pending.iter().skip(from) {
            let c = ch.customer;
            self.make_stale(c);
            if !ch.added {
                continue;
            }
            let Some(cust) = facts.customers.get(c as usize) else {
                continue;
            };
            let mut flags = 0;
            if policy.is_held(ch.audience, &cust.id) {
                flags |= HELD_OUT;
            }
            if audiences.is_eligible(c) {
                flags |= ELIGIBLE;
            }
            let t = &mut self.customers[c as usize];
            let mut entries = std::mem::take(&mut t.entries).into_vec();
            if entries.len() >= MAX_ENTRIES {
                entries.remove(0);
            }
            entries.push(Entry {
                at: ch.at,
                audience: ch.audience.index() as u8,
                flags,
            });
            t.entries = entries.into_boxed_slice();
            self.dirty.insert(c);
        }
    }

    /// Brings every marked or due customer up to `now` and publishes the counters.
    pub fn flush(&mut self, facts: &State, audiences: &Audiences, now: Nanos) {
        while !self.flush_some(facts, audiences, now, usize::MAX) {}
    }

    /// [`Insights::flush`] in steps of at most `limit` customers, so the writer can let
    /// queries in between (a second of heavy ingest marks 100,000 customers); publishes once
    /// no marked customer is left, and then returns `true`.
    pub fn flush_some(
        &mut self,
        facts: &State,
        audiences: &Audiences,
        now: Nanos,
        limit: usize,
    ) -> bool {
        while let Some(c) = self.due.pop_due(now) {
            self.make_stale(c);
        }
        if !self.stale.is_empty() {
            let step: Vec<u32> = self.stale.iter().take(limit).collect();
            let mut scratch = std::mem::take(&mut self.scratch);
            for &c in &step {
                self.stale.remove(c);
                let t = &mut self.customers[c as usize];
                let p = &self.params;
                if refresh(
                    t,
                    facts,
                    audiences,
                    c,
                    now,
                    p,
                    &self.currencies,
                    &mut scratch,
                ) {
                    self.dirty.insert(c);
                }
                let view = t.view();
                self.agg.contribute(&view, p, 1);
                let next = next_due(&view, p);
                self.due.set(c, next);
            }
            self.scratch = scratch;
            self.changed = true;
            if !self.stale.is_empty() {
                return false;
            }
        }
        self.publish(now);
        true
    }

    fn publish(&mut self, now: Nanos) {
        let aggregates = if self.changed {
            Arc::new(self.agg.clone())
        } else {
            self.published.aggregates.clone()
        };
        self.changed = false;
        self.published = Arc::new(Published {
            as_of: now,
            aggregates,
            params: self.params.clone(),
            currency: self.currencies.revenue_currency().as_str().to_string(),
        });
    }

    /// Recomputes every customer's snapshot and the counters from scratch, on every core
    /// (start-up, and new parameters).
    pub fn rebuild(&mut self, facts: &State, audiences: &Audiences, now: Nanos) {
        use rayon::prelude::*;
        self.grow(facts.customers.len());
        let p = &*self.params;
        let currencies = &*self.currencies;
        let pruned: Vec<CustomerIdx> = self
            .customers
            .par_iter_mut()
            .enumerate()
            .map_init(Vec::new, |scratch, (c, t)| {
                let c = c as CustomerIdx;
                refresh(t, facts, audiences, c, now, p, currencies, scratch).then_some(c)
            })
            .flatten()
            .collect();
        self.dirty.extend(pruned);
        self.agg = self
            .customers
            .par_iter()
            .fold(Aggregates::default, |mut a, t| {
                a.contribute(&t.view(), p, 1);
                a
            })
            .reduce(Aggregates::default, Aggregates::merge);
        self.due = DueIndex::from_instants(
            self.customers
                .par_iter()
                .map(|t| next_due(&t.view(), p))
                .collect::<Vec<_>>(),
        );
        self.stale.clear();
        self.changed = true;
        self.publish(now);
    }

    /// Puts new parameters in force and recomputes everything under them.
    pub fn reconfigure(
        &mut self,
        params: &AudienceParams,
        currencies: Arc<CurrencyTable>,
        facts: &State,
        audiences: &Audiences,
        now: Nanos,
    ) {
        self.params = Arc::new(InsightParams::new(params));
        self.currencies = currencies;
        self.rebuild(facts, audiences, now);
    }

    /// The customer's recorded entries, oldest first (for its checkpoint record).
    pub fn entries(&self, c: CustomerIdx) -> &[Entry] {
        self.customers
            .get(c as usize)
            .map_or(&[], |t| &t.entries[..])
    }

    /// The counters as of the last flush (cheap: one `Arc` clone; read without the lock).
    pub fn published(&self) -> Arc<Published> {
        self.published.clone()
    }
}
