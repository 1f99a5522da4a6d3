//! Memberships: who is in which audience, since when, and every change in order.
//!
//! The incremental path ([`Audiences::update`]) and the full recompute
//! ([`Audiences::recompute_all`]) both evaluate [`rules::evaluate`] on the same customer view,
//! so they agree by construction (and `tests/audience_engine.rs` checks it). Time-driven
//! changes come from a due-time index: each evaluation yields the next instant a rule can
//! flip, and [`Audiences::tick`] re-evaluates only the customers that are due.

use rustc_hash::FxHashSet as HashSet;
use std::sync::Arc;

use roaring::RoaringBitmap;
use smallvec::SmallVec;

use super::due::DueIndex;
use super::rules::{self, Audience, CartView, CustomerView, Evaluation};
use super::vip::VipIndex;
use crate::audience::holdout::{HoldoutPolicy, SALT_LEN};
use crate::audience::params::AudienceParams;
use crate::clock::{Nanos, NANOS_PER_SEC};
use crate::config::VipMetric;
use crate::ledger::customer_record::MembershipRecord;
use crate::ledger::facts::Consent;
use crate::ledger::profile::Profile;
use crate::ledger::state::{CustomerIdx, State};
use crate::money::CurrencyTable;

/// Most history entries kept per customer (oldest dropped first).
pub const MAX_HISTORY: usize = 64;

/// One membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Which audience.
    pub audience: Audience,
    /// Who.
    pub customer: CustomerIdx,
    /// Entered (true) or left.
    pub added: bool,
    /// When the daemon made the change.
    pub at: Nanos,
}

/// The name of an audience under `params` (lapsed tiers are named after their days).
pub fn audience_name(a: Audience, params: &AudienceParams) -> String {
    let [t1, t2, t3] = params.tier_days;
    match a {
        Audience::Lapsed1 => format!("lapsed_{t1}"),
        Audience::Lapsed2 => format!("lapsed_{t2}"),
        Audience::Lapsed3 => format!("lapsed_{t3}"),
        Audience::Vip => "vip".into(),
        Audience::CartAbandoners => "cart_abandoners".into(),
        other => format!("stage_{}", other.stage_name().unwrap_or("unknown")),
    }
}

/// All memberships.
pub struct Audiences {
    params: AudienceParams,
    currencies: Arc<CurrencyTable>,
    masks: Vec<u32>,
    metric: Vec<i64>,
    since: Vec<SmallVec<[(u8, Nanos); 2]>>,
    history: Vec<Vec<(u8, bool, Nanos)>>,
    members: Vec<RoaringBitmap>,
    eligible: RoaringBitmap,
    due: DueIndex,
    vip: VipIndex,
    last_changed: Vec<Option<Nanos>>,
    holdout: HoldoutPolicy,
    /// Members held out, per audience (a subset of its members).
    held: Vec<RoaringBitmap>,
    /// Changes not yet written to the change log.
    pub pending: Vec<Change>,
    /// Customers whose memberships changed since the last checkpoint.
    pub dirty: HashSet<CustomerIdx>,
    /// Members who joined or left a holdout without a membership change (new shares).
    pub held_changed: Vec<CustomerIdx>,
}

fn policy(params: &AudienceParams, salt: [u8; SALT_LEN]) -> HoldoutPolicy {
    let names = Audience::ALL
        .iter()
        .map(|a| audience_name(*a, params))
        .collect();
    HoldoutPolicy::new(salt, names, &params.holdout)
}

const NO_DUE: Nanos = Nanos::MAX;

impl Audiences {
    /// An empty engine under `params`.
    pub fn new(params: AudienceParams, currencies: Arc<CurrencyTable>) -> Self {
        let vip = VipIndex::new(params.vip_fraction.0, params.vip_fraction.1);
        Self {
            holdout: policy(&params, [0; SALT_LEN]),
            held: vec![RoaringBitmap::new(); Audience::ALL.len()],
            held_changed: Vec::new(),
            params,
            currencies,
            masks: Vec::new(),
            metric: Vec::new(),
            since: Vec::new(),
            history: Vec::new(),
            members: vec![RoaringBitmap::new(); Audience::ALL.len()],
            eligible: RoaringBitmap::new(),
            due: DueIndex::default(),
            vip,
            last_changed: vec![None; Audience::ALL.len()],
            pending: Vec::new(),
            dirty: HashSet::default(),
        }
    }

    /// Puts new rules in force and re-evaluates everyone under them alone (never a mix):
    /// the differences become ordinary membership changes.
    pub fn reconfigure(
        &mut self,
        params: AudienceParams,
        currencies: Arc<CurrencyTable>,
        facts: &State,
        now: Nanos,
    ) {
        self.holdout = policy(&params, self.holdout.salt());
        self.params = params;
        self.currencies = currencies;
        self.recompute_all(facts, now);
    }

    /// Sets the per-install salt of holdout assignment (before the first recompute).
    pub fn set_holdout_salt(&mut self, salt: [u8; SALT_LEN]) {
        self.holdout = self.holdout.clone().with_salt(salt);
    }

    /// The holdout shares and salt in force.
    pub fn holdout_policy(&self) -> &HoldoutPolicy {
        &self.holdout
    }

    /// Members of `a` who are held out: never pushed.
    pub fn holdout(&self, a: Audience) -> &RoaringBitmap {
        &self.held[a.index()]
    }

    /// Re-derives every holdout from the members and the policy, recording who moved.
    fn rebuild_holdout(&mut self, facts: &State) {
        for a in Audience::ALL {
            let held: RoaringBitmap = if self.holdout.active(a) {
                self.members[a.index()]
                    .iter()
                    .filter(|&c| {
                        facts
                            .customers
                            .get(c as usize)
                            .is_some_and(|x| self.holdout.is_held(a, &x.id))
                    })
                    .collect()
            } else {
                RoaringBitmap::new()
            };
            let moved = &held ^ &self.held[a.index()];
            self.held_changed.extend(moved.iter());
            self.held[a.index()] = held;
        }
    }

    /// The parameters in force.
    pub fn params(&self) -> &AudienceParams {
        &self.params
    }

    fn grow(&mut self, n: usize) {
        if self.masks.len() < n {
            self.masks.resize(n, 0);
            self.metric.resize(n, 0);
            self.due.grow(n);
            self.since.resize(n, SmallVec::new());
            self.history.resize(n, Vec::new());
        }
    }

    /// Loads a customer's stored memberships (start-up, before [`Self::recompute_all`]).
    pub fn restore(&mut self, c: CustomerIdx, rec: MembershipRecord) {
        self.grow(c as usize + 1);
        let i = c as usize;
        self.masks[i] = rec.mask;
        self.since[i] = rec.since.into_iter().collect();
        self.history[i] = rec.history;
        for a in Audience::ALL {
            if rec.mask & a.bit() != 0 {
                self.members[a.index()].insert(c);
            }
        }
    }

    /// The stored form of a customer's memberships, borrowed from the engine (checkpoints
    /// encode it without copying).
    pub fn record_view(
        &self,
        c: CustomerIdx,
    ) -> crate::ledger::customer_record::MembershipView<'_> {
        let i = c as usize;
        crate::ledger::customer_record::MembershipView {
            mask: self.masks.get(i).copied().unwrap_or(0),
            since: self.since.get(i).map_or(&[], |s| s.as_slice()),
            history: self.history.get(i).map_or(&[], |h| h.as_slice()),
        }
    }

    /// The audience's name under the configured tiers (`lapsed_90`, `vip`, `stage_active` …).
    pub fn name(&self, a: Audience) -> String {
        audience_name(a, &self.params)
    }

    /// The audience with this name.
    pub fn by_name(&self, name: &str) -> Option<Audience> {
        Audience::ALL.into_iter().find(|a| self.name(*a) == name)
    }

    /// The rule in words, with the configured parameters.
    pub fn definition(&self, a: Audience) -> String {
        let p = &self.params;
        let [t1, t2, t3] = p.tier_days;
        let days = |s: i64| s / 86_400;
        match a {
            Audience::Lapsed1 => format!("order_count >= 1 and {t1} d <= now - last_order < {t2} d"),
            Audience::Lapsed2 => format!("order_count >= 1 and {t2} d <= now - last_order < {t3} d"),
            Audience::Lapsed3 => format!("order_count >= 1 and now - last_order >= {t3} d"),
            Audience::Vip => format!(
                "{} in the last {} d >= the k-th largest among buyers, k = ceil({}/{} x buyers); ties included",
                match p.vip_metric {
                    VipMetric::NetRevenue => "net revenue",
                    VipMetric::OrderCount => "order count",
                },
                days(p.vip_window_secs),
                p.vip_fraction.0,
                p.vip_fraction.1
            ),
            Audience::CartAbandoners => format!(
                "a cart with items, not checked out, {} min <= now - updated < {} d, no later order",
                p.rules.cart_abandon_after / 60,
                days(p.rules.cart_lookback)
            ),
            Audience::StageRegistered => "lifecycle: registered, no order".into(),
            Audience::StageNew => "lifecycle: exactly one order".into(),
            Audience::StageActive => "lifecycle: repeat buyer within their own rhythm".into(),
            Audience::StageAtRisk => format!(
                "lifecycle: now - last_order >= max({} d, {}/{} x mean interval between orders)",
                days(p.rules.at_risk_min),
                p.rules.at_risk_factor.0,
                p.rules.at_risk_factor.1
            ),
            Audience::StageLapsed => format!(
                "lifecycle: now - last_order >= {} d",
                days(p.rules.stage_lapsed_after)
            ),
            Audience::StageReactivated => format!(
                "lifecycle: an order {} d or more after the previous one, within the last {} d",
                days(p.rules.reactivation_gap),
                days(p.rules.reactivated_for)
            ),
        }
    }

    /// Evaluates customer `c`: per-customer rules, VIP metric, eligibility. `view` is scratch
    /// space, reused across customers so the full recompute allocates nothing per customer.
    fn measure(
        &self,
        facts: &State,
        c: CustomerIdx,
        now: Nanos,
        view: &mut CustomerView,
    ) -> (Evaluation, i64, bool) {
        let cust = &facts.customers[c as usize];
        view.order_times.clear();
        view.carts.clear();
        let mut metric = 0i64;
        let mut window_due = NO_DUE;
        let window = self.params.vip_window_secs;
        for (p, o) in facts.counted_orders(c) {
            view.order_times.push(p.at);
            if now.saturating_sub(p.at).div_euclid(NANOS_PER_SEC) < window {
                metric = metric.saturating_add(match self.params.vip_metric {
                    VipMetric::NetRevenue => o
                        .net_minor()
                        .map(|(net, cur)| self.currencies.to_revenue_minor(net, cur))
                        .unwrap_or(0),
                    VipMetric::OrderCount => 1,
                });
                let leaves = p.at.saturating_add(window.saturating_mul(NANOS_PER_SEC));
                window_due = window_due.min(leaves);
            }
        }
        view.order_times.sort_unstable();
        for k in &cust.carts {
            if let Some(u) = facts.carts.get(k).and_then(|cart| cart.current()) {
                if u.customer == Some(c) {
                    view.carts.push(CartView {
                        updated_at: u.at,
                        item_count: u.item_count,
                    });
                }
            }
        }
        let p = &cust.profile;
        let present = cust.erased_at.is_none()
            || !view.order_times.is_empty()
            || !view.carts.is_empty()
            || *p != Profile::default();
        if !present {
            return (Evaluation::default(), 0, false);
        }
        let mut eval = rules::evaluate(view, now, &self.params.rules);
        if window_due != NO_DUE && window_due > now {
            eval.next_due = Some(eval.next_due.map_or(window_due, |d| d.min(window_due)));
        }
        let has = |slot: &Option<crate::ledger::profile::Lww<Option<_>>>| {
            slot.as_ref().is_some_and(|l| l.value.is_some())
        };
        let has_s = |slot: &Option<crate::ledger::profile::Lww<Option<Box<str>>>>| {
            slot.as_ref().is_some_and(|l| l.value.is_some())
        };
        let consented = Profile::consent(&p.ad_user_data) == Consent::Granted
            && Profile::consent(&p.ad_personalization) == Consent::Granted;
        let identified = has(&p.email)
            || has(&p.phone)
            || (has(&p.first_name)
                && has(&p.last_name)
                && has_s(&p.country)
                && has_s(&p.postal_code));
        (eval, metric, consented && identified)
    }

    /// Re-evaluates customer `c` after its facts changed or it came due.
    pub fn update(&mut self, facts: &State, c: CustomerIdx, now: Nanos) {
        self.grow(facts.customers.len());
        let (eval, metric, eligible) = self.measure(facts, c, now, &mut CustomerView::default());
        self.set_eligible(c, eligible);
        self.due.set(c, eval.next_due);
        let old_metric = self.metric[c as usize];
        self.metric[c as usize] = metric;
        let before = self.vip.update(c, old_metric, metric);
        let vip_bit = if self.vip.is_vip(metric) {
            Audience::Vip.bit()
        } else {
            0
        };
        self.set_mask(c, eval.mask | vip_bit, now, facts);
        let after = self.vip.threshold();
        if before != after {
            self.threshold_moved(before, after, now, facts);
        }
    }

    /// Flips the VIP bit of everyone between the old and new threshold.
    fn threshold_moved(
        &mut self,
        before: Option<i64>,
        after: Option<i64>,
        now: Nanos,
        facts: &State,
    ) {
        let (lo, hi, join) = match (before, after) {
            (Some(a), Some(b)) if b < a => (b, a, true),
            (Some(a), Some(b)) => (a, b, false),
            (None, Some(b)) => (b, i64::MAX, true),
            (_, None) => return,
        };
        let flips: Vec<CustomerIdx> = self.vip.between(lo, hi).collect();
        for x in flips {
            let m = self.masks[x as usize];
            let m = if join {
                m | Audience::Vip.bit()
            } else {
                m & !Audience::Vip.bit()
            };
            self.set_mask(x, m, now, facts);
        }
    }

    fn set_eligible(&mut self, c: CustomerIdx, on: bool) {
        if on {
            self.eligible.insert(c);
        } else {
            self.eligible.remove(c);
        }
    }

    fn set_mask(&mut self, c: CustomerIdx, new: u32, now: Nanos, facts: &State) {
        let i = c as usize;
        let old = self.masks[i];
        if old == new {
            return;
        }
        self.masks[i] = new;
        self.dirty.insert(c);
        for a in Audience::ALL {
            let bit = a.bit();
            if (old ^ new) & bit == 0 {
                continue;
            }
            let added = new & bit != 0;
            let n = a.index() as u8;
            if added {
                self.members[a.index()].insert(c);
                self.since[i].push((n, now));
                let id = facts.customers.get(i).map_or("", |x| &*x.id);
                if self.holdout.is_held(a, id) {
                    self.held[a.index()].insert(c);
                }
            } else {
                self.members[a.index()].remove(c);
                self.held[a.index()].remove(c);
                self.since[i].retain(|(x, _)| *x != n);
            }
            let h = &mut self.history[i];
            if h.len() == MAX_HISTORY {
                h.remove(0);
            }
            h.push((n, added, now));
            self.last_changed[a.index()] = Some(now);
            self.pending.push(Change {
                audience: a,
                customer: c,
                added,
                at: now,
            });
        }
    }

    /// Re-evaluates the customers whose due time has come.
    pub fn tick(&mut self, facts: &State, now: Nanos) -> usize {
        let mut n = 0;
        while let Some(c) = self.due.pop_due(now) {
            self.update(facts, c, now);
            n += 1;
        }
        n
    }

    /// Evaluates everyone from scratch and changes memberships where they differ from what
    /// is held now (at start-up: what was stored). The evaluation, pure and read-only, runs on
    /// every core; applying the results is sequential.
    pub fn recompute_all(&mut self, facts: &State, now: Nanos) {
        use rayon::prelude::*;
        let n = facts.customers.len();
        self.grow(n);
        let results: Vec<(Evaluation, i64, bool)> = {
            let this = &*self;
            (0..n as CustomerIdx)
                .into_par_iter()
                .map_init(CustomerView::default, |view, c| {
                    this.measure(facts, c, now, view)
                })
                .collect()
        };
        self.eligible.clear();
        self.due = DueIndex::from_instants(results.iter().map(|(eval, _, _)| eval.next_due));
        self.due.grow(self.masks.len());
        let mut buyers = Vec::new();
        for (c, (_, metric, eligible)) in results.iter().enumerate() {
            let c = c as CustomerIdx;
            if *eligible {
                self.eligible.insert(c);
            }
            self.metric[c as usize] = *metric;
            if *metric > 0 {
                buyers.push((*metric, c));
            }
        }
        self.vip = VipIndex::from_values(
            self.params.vip_fraction.0,
            self.params.vip_fraction.1,
            buyers,
        );
        for (c, (eval, metric, _)) in results.into_iter().enumerate() {
            let vip_bit = if self.vip.is_vip(metric) {
                Audience::Vip.bit()
            } else {
                0
            };
            self.set_mask(c as CustomerIdx, eval.mask | vip_bit, now, facts);
        }
        self.rebuild_holdout(facts);
    }

    /// Members of `a`.
    pub fn members(&self, a: Audience) -> &RoaringBitmap {
        &self.members[a.index()]
    }

    /// Customers eligible for push.
    pub fn eligible(&self) -> &RoaringBitmap {
        &self.eligible
    }

    /// Whether `c` may be pushed.
    pub fn is_eligible(&self, c: CustomerIdx) -> bool {
        self.eligible.contains(c)
    }

    /// Bit mask of `c`'s audiences.
    pub fn mask(&self, c: CustomerIdx) -> u32 {
        self.masks.get(c as usize).copied().unwrap_or(0)
    }

    /// When `c` entered `a`, if a member.
    pub fn since(&self, c: CustomerIdx, a: Audience) -> Option<Nanos> {
        let n = a.index() as u8;
        self.since
            .get(c as usize)?
            .iter()
            .find(|(x, _)| *x == n)
            .map(|(_, t)| *t)
    }

    /// `c`'s changes, oldest first.
    pub fn history(&self, c: CustomerIdx) -> &[(u8, bool, Nanos)] {
        self.history.get(c as usize).map_or(&[], |h| h.as_slice())
    }

    /// When `a` last changed.
    pub fn last_changed(&self, a: Audience) -> Option<Nanos> {
        self.last_changed[a.index()]
    }

    /// The VIP threshold in force.
    pub fn vip_threshold(&self) -> Option<i64> {
        self.vip.threshold()
    }

    /// Customers waiting in the due-time index.
    pub fn due_len(&self) -> usize {
        self.due.len()
    }
}
