//! Retention metrics as counters keyed by calendar period, kept exact by subtracting a
//! customer's old contribution and adding the new one whenever the customer changes
//! (docs/INSIGHTS.md has the definitions).
//!
//! A *purchase* is a counted order whose net value (after refunds, in the revenue currency) is
//! positive. A customer is *active at instant t* when they made a purchase in the year before
//! it: `t - 365 d <= p < t`. So the customers at the start of November are those who bought
//! from the previous November 1 up to October 31 included. Every counter below is a function
//! of the customers' purchases (and, for lapse episodes, their counted orders) and of `now`:
//! never of arrival order.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use smallvec::SmallVec;

use super::calendar::{ceil_month, month_of, month_start, Month, Unit, DAY};
use super::{InsightParams, Snapshot};
use crate::clock::Nanos;

/// The trailing window of "active customer" and trailing revenue.
pub const YEAR: Nanos = 365 * DAY;
/// How long after entering a lapsed tier a purchase counts as a reactivation.
pub const REACTIVATION_WINDOW: Nanos = 90 * DAY;

/// The counters.
#[derive(Debug, Clone, Default)]
pub struct RetentionCells {
    buyers: i64,
    repeat_buyers: i64,
    active: i64,
    revenue_year: i64,
    vip_active: i64,
    vip_revenue_year: i64,
    /// +1 / −1 where a customer's run of active month starts begins / ends.
    active_diff: BTreeMap<Month, i64>,
    /// Per unit: +1 / −1 where a run of periods active at both ends begins / ends.
    retained_diff: [BTreeMap<i32, i64>; 3],
    /// Per unit and period: customers whose first purchase is in it, active at its end.
    new_at_end: [HashMap<i32, i64>; 3],
    /// Per unit and period: customers with a purchase in it.
    buyers_in: [HashMap<i32, i64>; 3],
    /// Per unit and period: net revenue of its purchases.
    revenue_in: [HashMap<i32, i64>; 3],
    /// Customers by month of first purchase.
    cohort_size: BTreeMap<Month, i64>,
    /// (first-purchase month, months after) → customers with a purchase in that month.
    cohort_active: HashMap<(Month, i32), i64>,
    /// (unit, period of tier entry, tier) → closed entered, closed reactivated, open entered,
    /// open already reactivated.
    reactivation: HashMap<(u8, i32, u8), [i64; 4]>,
}

fn bump<K: std::hash::Hash + Eq>(m: &mut HashMap<K, i64>, k: K, v: i64) {
    *m.entry(k).or_insert(0) += v;
}

fn bump_b<K: Ord>(m: &mut BTreeMap<K, i64>, k: K, v: i64) {
    *m.entry(k).or_insert(0) += v;
}

/// Half-open ranges of months or periods.
type Ranges = SmallVec<[(i32, i32); 4]>;

/// Merges touching or overlapping half-open ranges, skipping empty ones (input sorted).
fn push_range(ranges: &mut Ranges, lo: i32, hi: i32) {
    if lo >= hi {
        return;
    }
    match ranges.last_mut() {
        Some(last) if last.1 >= lo => last.1 = last.1.max(hi),
        _ => ranges.push((lo, hi)),
    }
}

impl RetentionCells {
    /// Adds `sign` × one customer's contribution.
    pub fn contribute(&mut self, s: &Snapshot, p: &InsightParams, sign: i64) {
        let now = s.at;
        let purchases: SmallVec<[(Nanos, i64, Month); 8]> = s
            .orders
            .iter()
            .filter(|o| o.1 > 0)
            .map(|o| (o.0, o.1, month_of(o.0)))
            .collect();
        self.reactivations(s, p, sign);
        let Some(&(_, _, first_month)) = purchases.first() else {
            return;
        };
        self.buyers += sign;
        if purchases.len() >= 2 {
            self.repeat_buyers += sign;
        }
        let year: i64 = purchases
            .iter()
            .filter(|o| in_year_before(o.0, now))
            .map(|o| o.1)
            .fold(0i64, |a, v| a.saturating_add(v));
        if year > 0 {
            self.active += sign;
            self.revenue_year += sign * year;
            if s.vip {
                self.vip_active += sign;
                self.vip_revenue_year += sign * year;
            }
        }

        // Month starts at which the customer is active: each purchase covers (p, p + 365 d].
        let mut months: Ranges = SmallVec::new();
        let mut run: Option<(Nanos, Nanos)> = None;
        for &(at, _, _) in &purchases {
            let end = at.saturating_add(YEAR);
            match &mut run {
                Some((_, z)) if at <= *z => *z = (*z).max(end),
                _ => {
                    if let Some((a, z)) = run.replace((at, end)) {
                        push_range(&mut months, ceil_month(a + 1), ceil_month(z + 1));
                    }
                }
            }
        }
        if let Some((a, z)) = run {
            push_range(&mut months, ceil_month(a + 1), ceil_month(z + 1));
        }
        for &(lo, hi) in &months {
            bump_b(&mut self.active_diff, lo, sign);
            bump_b(&mut self.active_diff, hi, -sign);
        }
        let active_at = |m: Month| months.iter().any(|&(lo, hi)| lo <= m && m < hi);

        for unit in Unit::ALL {
            let u = unit.index();
            let mut periods: Ranges = SmallVec::new();
            for &(lo, hi) in &months {
                push_range(&mut periods, unit.ceil_period(lo), unit.ceil_period(hi));
            }
            for &(lo, hi) in &periods {
                if hi - lo >= 2 {
                    bump_b(&mut self.retained_diff[u], lo, sign);
                    bump_b(&mut self.retained_diff[u], hi - 1, -sign);
                }
            }
            let first = unit.period_of(first_month);
            if active_at(unit.start_month(first + 1)) {
                bump(&mut self.new_at_end[u], first, sign);
            }
            let mut i = 0;
            while i < purchases.len() {
                let k = unit.period_of(purchases[i].2);
                let mut revenue = 0i64;
                while i < purchases.len() && unit.period_of(purchases[i].2) == k {
                    revenue = revenue.saturating_add(purchases[i].1);
                    i += 1;
                }
                bump(&mut self.buyers_in[u], k, sign);
                bump(&mut self.revenue_in[u], k, sign * revenue);
            }
        }

        bump_b(&mut self.cohort_size, first_month, sign);
        let mut last = first_month;
        for &(_, _, m) in &purchases {
            if m > last {
                bump(
                    &mut self.cohort_active,
                    (first_month, m - first_month),
                    sign,
                );
                last = m;
            }
        }
    }

    /// Lapse episodes, exactly as the lapsed audiences see them (AUDIENCES.md: any counted
    /// order, refunded or not, ends a lapse): after order `o`, tier `k` is entered at
    /// `o + T_k` unless the next order comes first; it counts as a reactivation when the next
    /// order is placed within 90 days after that entry.
    fn reactivations(&mut self, s: &Snapshot, p: &InsightParams, sign: i64) {
        for (i, o) in s.orders.iter().enumerate() {
            let next = s.orders.get(i + 1).map(|n| n.0);
            for (tier, t) in p.tiers.iter().enumerate() {
                let entered = o.0.saturating_add(*t);
                if entered > s.at || next.is_some_and(|n| n <= entered) {
                    continue;
                }
                let back = next.is_some_and(|n| n <= entered.saturating_add(REACTIVATION_WINDOW));
                let closed = s.at >= entered.saturating_add(REACTIVATION_WINDOW);
                let m = month_of(entered);
                for unit in Unit::ALL {
                    let cell = self
                        .reactivation
                        .entry((unit.index() as u8, unit.period_of(m), tier as u8))
                        .or_default();
                    let at = if closed { 0 } else { 2 };
                    cell[at] += sign;
                    if back {
                        cell[at + 1] += sign;
                    }
                }
            }
        }
    }

    /// Adds another set of counters (parallel rebuild).
    pub fn merge(&mut self, o: RetentionCells) {
        self.buyers += o.buyers;
        self.repeat_buyers += o.repeat_buyers;
        self.active += o.active;
        self.revenue_year += o.revenue_year;
        self.vip_active += o.vip_active;
        self.vip_revenue_year += o.vip_revenue_year;
        for (k, v) in o.active_diff {
            bump_b(&mut self.active_diff, k, v);
        }
        for (mine, theirs) in self.retained_diff.iter_mut().zip(o.retained_diff) {
            for (k, v) in theirs {
                bump_b(mine, k, v);
            }
        }
        for (mine, theirs) in [
            (&mut self.new_at_end, o.new_at_end),
            (&mut self.buyers_in, o.buyers_in),
            (&mut self.revenue_in, o.revenue_in),
        ] {
            for (m, t) in mine.iter_mut().zip(theirs) {
                for (k, v) in t {
                    bump(m, k, v);
                }
            }
        }
        for (k, v) in o.cohort_size {
            bump_b(&mut self.cohort_size, k, v);
        }
        for (k, v) in o.cohort_active {
            bump(&mut self.cohort_active, k, v);
        }
        for (k, v) in o.reactivation {
            let c = self.reactivation.entry(k).or_default();
            for (a, b) in c.iter_mut().zip(v) {
                *a += b;
            }
        }
    }

    /// Every non-zero counter as text, sorted: two sets of counters are equal iff these are
    /// (zero cells are left behind by subtractions and mean nothing).
    pub fn canonical(&self) -> Vec<String> {
        fn cells<K: std::fmt::Debug, V: std::fmt::Debug>(
            name: &str,
            it: impl Iterator<Item = (K, V)>,
            zero: impl Fn(&V) -> bool,
            out: &mut Vec<String>,
        ) {
            out.extend(
                it.filter(|(_, v)| !zero(v))
                    .map(|(k, v)| format!("{name} {k:?} {v:?}")),
            );
        }
        let mut out = vec![format!(
            "totals {} {} {} {} {} {}",
            self.buyers,
            self.repeat_buyers,
            self.active,
            self.revenue_year,
            self.vip_active,
            self.vip_revenue_year
        )];
        let z = |v: &&i64| **v == 0;
        cells("active", self.active_diff.iter(), z, &mut out);
        for u in 0..3 {
            cells(
                &format!("retained{u}"),
                self.retained_diff[u].iter(),
                z,
                &mut out,
            );
            cells(&format!("new{u}"), self.new_at_end[u].iter(), z, &mut out);
            cells(&format!("buyers{u}"), self.buyers_in[u].iter(), z, &mut out);
            cells(
                &format!("revenue{u}"),
                self.revenue_in[u].iter(),
                z,
                &mut out,
            );
        }
        cells("cohort", self.cohort_size.iter(), z, &mut out);
        cells("cohort_active", self.cohort_active.iter(), z, &mut out);
        cells(
            "reactivation",
            self.reactivation.iter(),
            |v| v.iter().all(|x| *x == 0),
            &mut out,
        );
        out.sort();
        out
    }

    fn active_at_month(&self, m: Month) -> i64 {
        self.active_diff.range(..=m).map(|(_, v)| v).sum()
    }

    /// The report over the last `periods` complete periods of `unit` before `now` and the
    /// cohorts of the last `cohort_months` months.
    pub fn report(
        &self,
        p: &InsightParams,
        now: Nanos,
        unit: Unit,
        periods: u32,
        cohort_months: u32,
    ) -> RetentionReport {
        let u = unit.index();
        let current = month_of(now);
        let last = unit.period_of(current) - 1;
        let first = last - i32::try_from(periods).unwrap_or(i32::MAX).saturating_sub(1);
        let tiers = |k: i32| -> Vec<Reactivation> {
            (0..p.tiers.len())
                .map(|tier| {
                    let c = self
                        .reactivation
                        .get(&(u as u8, k, tier as u8))
                        .copied()
                        .unwrap_or_default();
                    Reactivation::from_cell(p.tier_name(tier), c)
                })
                .collect()
        };
        let mut rows = Vec::new();
        for k in first..=last {
            let (sm, em) = (unit.start_month(k), unit.start_month(k + 1));
            let at_start = self.active_at_month(sm);
            let at_end = self.active_at_month(em);
            let retained: i64 = self.retained_diff[u].range(..=k).map(|(_, v)| v).sum();
            let new = self.new_at_end[u].get(&k).copied().unwrap_or(0);
            let buyers = self.buyers_in[u].get(&k).copied().unwrap_or(0);
            let revenue = self.revenue_in[u].get(&k).copied().unwrap_or(0);
            rows.push(PeriodRow {
                label: unit.label(k),
                start: month_start(sm),
                end: month_start(em),
                customers_at_start: at_start,
                customers_at_end: at_end,
                new_customers: new,
                retained_customers: retained,
                returning_customers: at_end - new - retained,
                retention_rate: (at_start > 0).then(|| (at_end - new) as f64 / at_start as f64),
                buyers,
                revenue,
                revenue_per_buyer: (buyers > 0).then(|| revenue as f64 / buyers as f64),
                reactivation: tiers(k),
            });
        }
        let mut reactivation: Vec<Reactivation> = (0..p.tiers.len())
            .map(|tier| Reactivation::from_cell(p.tier_name(tier), [0; 4]))
            .collect();
        for row in &rows {
            for (total, r) in reactivation.iter_mut().zip(&row.reactivation) {
                total.add(r);
            }
        }
        let oldest = current - i32::try_from(cohort_months).unwrap_or(i32::MAX) + 1;
        let cohorts = (oldest..=current)
            .map(|m0| {
                let size = self.cohort_size.get(&m0).copied().unwrap_or(0);
                Cohort {
                    label: Unit::Month.label(m0),
                    start: month_start(m0),
                    customers: size,
                    months: (1..current - m0)
                        .map(|k| {
                            let n = self.cohort_active.get(&(m0, k)).copied().unwrap_or(0);
                            (k, n, (size > 0).then(|| n as f64 / size as f64))
                        })
                        .collect(),
                }
            })
            .collect();
        RetentionReport {
            as_of: now,
            active_customers: self.active,
            revenue_year: self.revenue_year,
            revenue_per_active_customer: (self.active > 0)
                .then(|| self.revenue_year as f64 / self.active as f64),
            buyers: self.buyers,
            repeat_buyers: self.repeat_buyers,
            repeat_purchase_rate: (self.buyers > 0)
                .then(|| self.repeat_buyers as f64 / self.buyers as f64),
            vip_active: self.vip_active,
            vip_revenue_year: self.vip_revenue_year,
            vip_revenue_share: (self.revenue_year > 0)
                .then(|| self.vip_revenue_year as f64 / self.revenue_year as f64),
            vip_customer_share: (self.active > 0)
                .then(|| self.vip_active as f64 / self.active as f64),
            periods: rows,
            reactivation,
            cohorts,
        }
    }
}

/// Whether a purchase at `p` makes its customer active at `t`: `t - 365 d <= p < t`.
pub fn in_year_before(p: Nanos, t: Nanos) -> bool {
    p < t && t.saturating_sub(p) <= YEAR
}

/// The next instant after `s.at` at which the customer's contribution changes by time alone:
/// a purchase leaving the trailing year, a lapsed tier being entered, a reactivation window
/// closing.
pub fn next_due(s: &Snapshot, p: &InsightParams) -> Option<Nanos> {
    let mut next: Option<Nanos> = None;
    let mut consider = |t: Nanos| {
        if t > s.at {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    };
    for (i, o) in s.orders.iter().enumerate() {
        if o.1 > 0 {
            // Active from just after the purchase until a year after it.
            consider(o.0.saturating_add(1));
            consider(o.0.saturating_add(YEAR).saturating_add(1));
        }
        let following = s.orders.get(i + 1).map(|n| n.0);
        for t in &p.tiers {
            let entered = o.0.saturating_add(*t);
            if following.is_some_and(|n| n <= entered) {
                continue;
            }
            consider(entered);
            consider(entered.saturating_add(REACTIVATION_WINDOW));
        }
    }
    next
}

/// Reactivation after entering one lapsed tier.
#[derive(Debug, Clone, PartialEq)]
pub struct Reactivation {
    /// The tier's audience name (`lapsed_90`).
    pub audience: String,
    /// Entries whose 90-day window has closed.
    pub entered: i64,
    /// Of those, followed by an order within the window.
    pub reactivated: i64,
    /// `reactivated / entered`.
    pub rate: Option<f64>,
    /// Entries whose window is still open.
    pub open: i64,
    /// Of those, already back.
    pub open_reactivated: i64,
}

impl Reactivation {
    fn from_cell(audience: String, c: [i64; 4]) -> Self {
        let mut r = Self {
            audience,
            entered: c[0],
            reactivated: c[1],
            rate: None,
            open: c[2],
            open_reactivated: c[3],
        };
        r.rate = (r.entered > 0).then(|| r.reactivated as f64 / r.entered as f64);
        r
    }

    fn add(&mut self, o: &Reactivation) {
        self.entered += o.entered;
        self.reactivated += o.reactivated;
        self.open += o.open;
        self.open_reactivated += o.open_reactivated;
        self.rate = (self.entered > 0).then(|| self.reactivated as f64 / self.entered as f64);
    }
}

/// One calendar period.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodRow {
    /// `2026-10`, `2026-Q3`, `2026`.
    pub label: String,
    /// First instant.
    pub start: Nanos,
    /// First instant after it.
    pub end: Nanos,
    /// Active customers at `start`.
    pub customers_at_start: i64,
    /// Active customers at `end`.
    pub customers_at_end: i64,
    /// Customers active at `end` whose first purchase is in the period.
    pub new_customers: i64,
    /// Customers active at both `start` and `end`.
    pub retained_customers: i64,
    /// Active at `end`, not new, not active at `start` (came back after a year or more).
    pub returning_customers: i64,
    /// `(customers_at_end − new_customers) / customers_at_start`.
    pub retention_rate: Option<f64>,
    /// Customers with a purchase in the period.
    pub buyers: i64,
    /// Net revenue of the period's purchases.
    pub revenue: i64,
    /// `revenue / buyers`.
    pub revenue_per_buyer: Option<f64>,
    /// Lapsed-tier entries in the period and their reactivation.
    pub reactivation: Vec<Reactivation>,
}

/// Customers by month of first purchase.
#[derive(Debug, Clone, PartialEq)]
pub struct Cohort {
    /// `2026-05`.
    pub label: String,
    /// First instant of the month.
    pub start: Nanos,
    /// Customers whose first purchase is in the month.
    pub customers: i64,
    /// (months after, customers with a purchase in that month, share) for complete months.
    pub months: Vec<(i32, i64, Option<f64>)>,
}

/// Everything `GetRetention` answers.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionReport {
    /// The instant the figures describe.
    pub as_of: Nanos,
    /// Customers with a purchase in the 365 days before `as_of`.
    pub active_customers: i64,
    /// Net revenue of those purchases.
    pub revenue_year: i64,
    /// `revenue_year / active_customers`.
    pub revenue_per_active_customer: Option<f64>,
    /// Customers with at least one purchase, ever.
    pub buyers: i64,
    /// Customers with at least two.
    pub repeat_buyers: i64,
    /// `repeat_buyers / buyers`.
    pub repeat_purchase_rate: Option<f64>,
    /// Active customers in the VIP audience.
    pub vip_active: i64,
    /// Their trailing-year revenue.
    pub vip_revenue_year: i64,
    /// `vip_revenue_year / revenue_year`.
    pub vip_revenue_share: Option<f64>,
    /// `vip_active / active_customers`.
    pub vip_customer_share: Option<f64>,
    /// Complete periods, oldest first.
    pub periods: Vec<PeriodRow>,
    /// Reactivation per lapsed tier, over the entries in those periods.
    pub reactivation: Vec<Reactivation>,
    /// Cohorts, oldest first.
    pub cohorts: Vec<Cohort>,
}
