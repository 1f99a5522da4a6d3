//! The audience rules as pure functions of one customer's facts and `now`
//! (`../shared/AUDIENCES.md`). No state, no I/O: the incremental path and the full recompute
//! both call [`evaluate`], which is why they agree.

use crate::clock::{Nanos, NANOS_PER_SEC};

/// Audiences decided per customer (VIP is decided globally, see `vip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Audience {
    /// Last order in the first lapsed tier.
    Lapsed1,
    /// Last order in the second tier.
    Lapsed2,
    /// Last order in the third tier or older.
    Lapsed3,
    /// Top buyers by the VIP metric.
    Vip,
    /// An abandoned cart.
    CartAbandoners,
    /// Lifecycle: registered, never bought.
    StageRegistered,
    /// Lifecycle: lapsed.
    StageLapsed,
    /// Lifecycle: bought again after a long gap, recently.
    StageReactivated,
    /// Lifecycle: one order.
    StageNew,
    /// Lifecycle: past their own repurchase rhythm.
    StageAtRisk,
    /// Lifecycle: repeat buyer within rhythm.
    StageActive,
}

impl Audience {
    /// Every audience, in listing order; `index()` is the position here.
    pub const ALL: [Audience; 11] = [
        Audience::Lapsed1,
        Audience::Lapsed2,
        Audience::Lapsed3,
        Audience::Vip,
        Audience::CartAbandoners,
        Audience::StageRegistered,
        Audience::StageNew,
        Audience::StageActive,
        Audience::StageAtRisk,
        Audience::StageLapsed,
        Audience::StageReactivated,
    ];

    /// Position in [`Audience::ALL`], also the bit in a membership mask.
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|a| *a == self).unwrap_or(0)
    }

    /// The bit in a membership mask.
    pub fn bit(self) -> u32 {
        1 << self.index()
    }

    /// Whether this is a lifecycle stage.
    pub fn is_stage(self) -> bool {
        matches!(
            self,
            Audience::StageRegistered
                | Audience::StageNew
                | Audience::StageActive
                | Audience::StageAtRisk
                | Audience::StageLapsed
                | Audience::StageReactivated
        )
    }

    /// The stage name without prefix (`active`), for stage audiences.
    pub fn stage_name(self) -> Option<&'static str> {
        Some(match self {
            Audience::StageRegistered => "registered",
            Audience::StageNew => "new",
            Audience::StageActive => "active",
            Audience::StageAtRisk => "at_risk",
            Audience::StageLapsed => "lapsed",
            Audience::StageReactivated => "reactivated",
            _ => return None,
        })
    }
}

/// Rule parameters in whole seconds (exact integer arithmetic throughout).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rules {
    /// Lapsed tier lower bounds, ascending (default 90, 180, 360 days).
    pub lapsed_tiers: [i64; 3],
    /// Cart counts as abandoned this long after its last update (60 min).
    pub cart_abandon_after: i64,
    /// ... and no longer after this (7 days).
    pub cart_lookback: i64,
    /// Stage `lapsed` from this long after the last order (90 days).
    pub stage_lapsed_after: i64,
    /// A gap at least this long before an order makes it a reactivation (90 days).
    pub reactivation_gap: i64,
    /// A reactivated customer stays so this long (30 days).
    pub reactivated_for: i64,
    /// At-risk never before this long after the last order (30 days).
    pub at_risk_min: i64,
    /// At-risk factor on the customer's mean repurchase interval, as `num / den` (3/2).
    pub at_risk_factor: (i64, i64),
}

impl Default for Rules {
    fn default() -> Self {
        const D: i64 = 86_400;
        Self {
            lapsed_tiers: [90 * D, 180 * D, 360 * D],
            cart_abandon_after: 3_600,
            cart_lookback: 7 * D,
            stage_lapsed_after: 90 * D,
            reactivation_gap: 90 * D,
            reactivated_for: 30 * D,
            at_risk_min: 30 * D,
            at_risk_factor: (3, 2),
        }
    }
}

/// A cart as the rules see it: owned by this customer on its latest event, not checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartView {
    /// Time of the latest cart event.
    pub updated_at: Nanos,
    /// Items in the cart.
    pub item_count: u32,
}

/// What the rules need of one customer.
#[derive(Debug, Clone, Default)]
pub struct CustomerView {
    /// Counted order times, ascending.
    pub order_times: Vec<Nanos>,
    /// Open carts owned by the customer.
    pub carts: Vec<CartView>,
}

/// The result for one customer at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evaluation {
    /// Bits of the per-customer audiences (not VIP).
    pub mask: u32,
    /// Earliest instant after `now` at which some rule may change its answer.
    pub next_due: Option<Nanos>,
}

/// `now - t` in whole seconds (floored).
fn age(now: Nanos, t: Nanos) -> i64 {
    now.saturating_sub(t).div_euclid(NANOS_PER_SEC)
}

/// The first instant at which `age(now, t) >= secs`.
fn instant_at(t: Nanos, secs: i64) -> Nanos {
    t.saturating_add(secs.saturating_mul(NANOS_PER_SEC))
}

/// Evaluates every per-customer rule. `now` must be at or after every fact's time for the
/// result to be meaningful (ingest guarantees it up to the allowed clock skew).
pub fn evaluate(c: &CustomerView, now: Nanos, r: &Rules) -> Evaluation {
    let mut mask = 0u32;
    let mut due = DueTimes { now, next: None };

    // Cart abandoners: any qualifying cart with no later order.
    let last_order = c.order_times.last().copied();
    for cart in &c.carts {
        if cart.item_count == 0 || last_order.is_some_and(|o| o > cart.updated_at) {
            continue;
        }
        let a = age(now, cart.updated_at);
        if a >= r.cart_abandon_after && a < r.cart_lookback {
            mask |= Audience::CartAbandoners.bit();
        }
        due.consider(instant_at(cart.updated_at, r.cart_abandon_after));
        due.consider(instant_at(cart.updated_at, r.cart_lookback));
    }

    let Some(last) = last_order else {
        mask |= Audience::StageRegistered.bit();
        return Evaluation {
            mask,
            next_due: due.next,
        };
    };
    let first = c.order_times[0];
    let n = c.order_times.len() as i64;
    let d = age(now, last);

    // Lapsed tiers, exclusive.
    let [t1, t2, t3] = r.lapsed_tiers;
    if d >= t3 {
        mask |= Audience::Lapsed3.bit();
    } else if d >= t2 {
        mask |= Audience::Lapsed2.bit();
    } else if d >= t1 {
        mask |= Audience::Lapsed1.bit();
    }
    for t in [t1, t2, t3, r.stage_lapsed_after] {
        due.consider(instant_at(last, t));
    }

    // Lifecycle stage, first rule that holds.
    let reactivating = c
        .order_times
        .windows(2)
        .rev()
        .find(|w| age(w[1], w[0]) >= r.reactivation_gap)
        .map(|w| w[1]);
    if let Some(o) = reactivating {
        due.consider(instant_at(o, r.reactivated_for));
    }
    // At-risk threshold: d >= max(min, factor * (last - first) / (n - 1)), in exact integers:
    // d * den * (n - 1) >= num * span.
    let span = age(last, first);
    let (num, den) = r.at_risk_factor;
    let at_risk = |d: i64| {
        d >= r.at_risk_min
            && (n < 2
                || i128::from(d) * i128::from(den) * i128::from(n - 1)
                    >= i128::from(num) * i128::from(span))
    };
    if n >= 2 {
        // Smallest d satisfying the rhythm part: ceil(num * span / (den * (n - 1))).
        let q = i128::from(num) * i128::from(span);
        let dv = i128::from(den) * i128::from(n - 1);
        let rhythm = i64::try_from((q + dv - 1) / dv).unwrap_or(i64::MAX);
        due.consider(instant_at(last, rhythm.max(r.at_risk_min)));
    }
    let stage = if d >= r.stage_lapsed_after {
        Audience::StageLapsed
    } else if reactivating.is_some_and(|o| age(now, o) < r.reactivated_for) {
        Audience::StageReactivated
    } else if n == 1 {
        Audience::StageNew
    } else if at_risk(d) {
        Audience::StageAtRisk
    } else {
        Audience::StageActive
    };
    mask |= stage.bit();
    Evaluation {
        mask,
        next_due: due.next,
    }
}

/// Collects the earliest instant strictly after `now`.
struct DueTimes {
    now: Nanos,
    next: Option<Nanos>,
}

impl DueTimes {
    fn consider(&mut self, t: Nanos) {
        if t > self.now {
            self.next = Some(self.next.map_or(t, |n| n.min(t)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = NANOS_PER_SEC;
    const DAY: i64 = 86_400 * S;
    const NOW: Nanos = 1_900_000_000 * S;

    fn view(orders: &[i64]) -> CustomerView {
        CustomerView {
            order_times: orders.iter().map(|d| NOW - d).collect(),
            carts: vec![],
        }
    }

    fn has(e: Evaluation, a: Audience) -> bool {
        e.mask & a.bit() != 0
    }

    #[test]
    fn lapsed_boundaries_are_exact_to_the_second() {
        let r = Rules::default();
        let e = evaluate(&view(&[90 * DAY - S]), NOW, &r);
        assert!(!has(e, Audience::Lapsed1));
        assert_eq!(e.next_due, Some(NOW + S), "flips one second later");
        let e = evaluate(&view(&[90 * DAY]), NOW, &r);
        assert!(has(e, Audience::Lapsed1) && has(e, Audience::StageLapsed));
        let e = evaluate(&view(&[180 * DAY]), NOW, &r);
        assert!(has(e, Audience::Lapsed2) && !has(e, Audience::Lapsed1));
        let e = evaluate(&view(&[400 * DAY]), NOW, &r);
        assert!(has(e, Audience::Lapsed3) && !has(e, Audience::Lapsed2));
        // Sub-second: 90 days minus half a second is still 89 days 23:59:59 in whole seconds.
        let e = evaluate(&view(&[90 * DAY - S / 2]), NOW, &r);
        assert!(!has(e, Audience::Lapsed1));
    }

    #[test]
    fn stages_follow_the_table() {
        let r = Rules::default();
        assert!(has(
            evaluate(&CustomerView::default(), NOW, &r),
            Audience::StageRegistered
        ));
        assert!(has(
            evaluate(&view(&[5 * DAY]), NOW, &r),
            Audience::StageNew
        ));
        // Weekly buyer: active until 30 days, then at risk.
        let weekly = [35 * DAY, 28 * DAY, 21 * DAY];
        assert!(has(
            evaluate(&view(&weekly), NOW, &r),
            Audience::StageActive
        ));
        let weekly_late = [58 * DAY, 51 * DAY, 44 * DAY];
        assert!(has(
            evaluate(&view(&weekly_late), NOW, &r),
            Audience::StageAtRisk
        ));
        // Every 50 days: at risk only after 75.
        let fifty = [174 * DAY, 124 * DAY, 74 * DAY];
        assert!(has(evaluate(&view(&fifty), NOW, &r), Audience::StageActive));
        let fifty = [175 * DAY, 125 * DAY, 75 * DAY];
        assert!(has(evaluate(&view(&fifty), NOW, &r), Audience::StageAtRisk));
        // Reactivated: an order 100 days after the previous one, 10 days ago.
        let back = [110 * DAY, 10 * DAY];
        let e = evaluate(&view(&back), NOW, &r);
        assert!(has(e, Audience::StageReactivated));
        assert_eq!(
            e.next_due,
            Some(NOW + 20 * DAY),
            "reactivation ends at day 30"
        );
        let back = [130 * DAY, 30 * DAY];
        assert!(!has(
            evaluate(&view(&back), NOW, &r),
            Audience::StageReactivated
        ));
    }

    #[test]
    fn cart_abandonment_window() {
        let r = Rules::default();
        let cart = |mins: i64, items: u32| CustomerView {
            order_times: vec![],
            carts: vec![CartView {
                updated_at: NOW - mins * 60 * S,
                item_count: items,
            }],
        };
        assert!(!has(
            evaluate(&cart(59, 1), NOW, &r),
            Audience::CartAbandoners
        ));
        assert!(has(
            evaluate(&cart(60, 1), NOW, &r),
            Audience::CartAbandoners
        ));
        assert!(!has(
            evaluate(&cart(60, 0), NOW, &r),
            Audience::CartAbandoners
        ));
        assert!(!has(
            evaluate(&cart(7 * 24 * 60, 1), NOW, &r),
            Audience::CartAbandoners
        ));
        let mut bought = cart(120, 1);
        bought.order_times = vec![NOW - 60 * S];
        assert!(!has(evaluate(&bought, NOW, &r), Audience::CartAbandoners));
    }

    #[test]
    fn exactly_one_stage() {
        let r = Rules::default();
        for orders in [
            &[][..],
            &[DAY][..],
            &[400 * DAY, 3 * DAY][..],
            &[50 * DAY, 40 * DAY][..],
        ] {
            let e = evaluate(&view(orders), NOW, &r);
            let stages = Audience::ALL
                .iter()
                .filter(|a| a.is_stage() && has(e, **a))
                .count();
            assert_eq!(stages, 1, "{orders:?}");
        }
    }
}
