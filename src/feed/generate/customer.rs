//! A customer's life in the synthetic shop: which persona they are, when they ordered, and
//! the events of their history in order (profile, orders, carts, consent, erasure).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Generator, DAY, HISTORY, HOUR, MINUTE};
use crate::proto::v1::{
    event::Kind, ConsentChanged, ConsentStatus, CustomerErased, CustomerUpserted,
};

/// The kinds of customer the shop is made of, so that every audience fills.
#[derive(Clone, Copy, Debug)]
pub(super) enum Persona {
    /// Registered, never ordered.
    Browser,
    /// Exactly one order, any time in the history.
    OneOff,
    /// Repeat buyer, last order within their own rhythm.
    Regular,
    /// Repeat buyer overdue by more than 1.5× their rhythm but not yet 90 days.
    AtRisk,
    /// Last order 90+ days ago, spread over the three lapsed tiers.
    Lapsed,
    /// Came back within the last 30 days after a gap of 90+ days.
    Reactivated,
    /// Frequent, high-value orders.
    Vip,
}

impl Generator {
    fn persona(&mut self) -> Persona {
        match self.rng.random_range(0..100) {
            0..15 => Persona::Browser,
            15..35 => Persona::OneOff,
            35..53 => Persona::Regular,
            53..61 => Persona::AtRisk,
            61..82 => Persona::Lapsed,
            82..90 => Persona::Reactivated,
            _ => Persona::Vip,
        }
    }

    /// Order times as "ago" offsets, oldest first, for a persona.
    fn order_plan(&mut self, persona: Persona) -> Vec<i64> {
        let mut plan = Vec::new();
        match persona {
            Persona::Browser => {}
            Persona::OneOff => {
                let at = self.between(HOUR, HISTORY - 30 * DAY);
                plan.push(at);
            }
            Persona::Regular | Persona::Vip => {
                let (lo, hi, n) = match persona {
                    Persona::Vip => (4, 15, self.rng.random_range(10..=40)),
                    _ => (7, 60, self.rng.random_range(1..=11)),
                };
                let rhythm = self.between(lo * DAY, hi * DAY);
                let last = self.between(HOUR, rhythm);
                plan.push(last);
                walk_back(&mut self.rng, &mut plan, last, rhythm, n);
            }
            Persona::AtRisk => {
                let rhythm = self.between(7 * DAY, 45 * DAY);
                let lo = (30 * DAY).max(rhythm * 8 / 5);
                let last = self.between(lo, 88 * DAY);
                plan.push(last);
                let n = self.rng.random_range(1..=7);
                walk_back(&mut self.rng, &mut plan, last, rhythm, n);
            }
            Persona::Lapsed => {
                let last = match self.rng.random_range(0..3) {
                    0 => self.between(91 * DAY, 178 * DAY),
                    1 => self.between(182 * DAY, 358 * DAY),
                    _ => self.between(362 * DAY, HISTORY - 60 * DAY),
                };
                plan.push(last);
                let rhythm = self.between(15 * DAY, 90 * DAY);
                let n = self.rng.random_range(0..=4);
                walk_back(&mut self.rng, &mut plan, last, rhythm, n);
            }
            Persona::Reactivated => {
                let last = self.between(DAY, 28 * DAY);
                plan.push(last);
                let before = last + self.between(95 * DAY, 300 * DAY);
                plan.push(before);
                let rhythm = self.between(15 * DAY, 60 * DAY);
                let n = self.rng.random_range(0..=4);
                walk_back(&mut self.rng, &mut plan, before, rhythm, n);
            }
        }
        plan.sort_unstable_by(|a, b| b.cmp(a));
        plan
    }

    pub(super) fn order_total(&mut self, persona: Persona) -> i64 {
        match persona {
            Persona::Vip => self.rng.random_range(20_000..250_000),
            _ if self.rng.random_bool(0.05) => self.rng.random_range(15_000..60_000),
            _ => self.rng.random_range(1_500..15_000),
        }
    }

    // ---- one customer ----------------------------------------------------------------------

    pub(super) fn customer(&mut self, index: u64) {
        let customer_id = format!("cus{}-{:07}", self.seed, index);
        let persona = self.persona();
        let plan = self.order_plan(persona);
        let first_order_ago = plan.first().copied();
        let registered_ago = match first_order_ago {
            Some(first) => (first + self.between(0, 60 * DAY)).min(HISTORY),
            None => self.between(HOUR, HISTORY),
        };
        let registered_at = self.ago(registered_ago);
        let mut last_activity = registered_at;

        // Registration.
        let profile = self.profile(index, registered_at);
        let consent_roll: f64 = self.rng.random();
        let (ad_user_data, ad_personalization) = self.consent(consent_roll);
        let upsert = CustomerUpserted {
            customer_id: customer_id.clone(),
            ad_user_data,
            ad_personalization,
            ..profile
        };
        self.push(registered_at, Kind::CustomerUpserted(upsert));

        // A later profile edit: a field or two changes, others stay as they were.
        if self.rng.random_bool(0.15) {
            let at = self.between(registered_at, self.now);
            let mut edit = CustomerUpserted {
                customer_id: customer_id.clone(),
                ..Default::default()
            };
            match self.rng.random_range(0..4) {
                0 => edit.phone = Some(self.phone("US")),
                1 => edit.postal_code = Some("10001".to_owned()),
                2 => edit.phone = Some(String::new()), // cleared
                _ => edit.email = Some(format!("user{index}.new@example.com")),
            }
            last_activity = last_activity.max(self.push(at, Kind::CustomerUpserted(edit)));
        }

        // Consent changes after registration.
        let granted_both = consent_roll < 0.82;
        let change = if granted_both && self.rng.random_bool(0.06) {
            // Withdrawal.
            let both = self.rng.random_bool(0.5);
            Some((
                both.then_some(ConsentStatus::Denied as i32),
                Some(ConsentStatus::Denied as i32),
            ))
        } else if !granted_both && self.rng.random_bool(0.3) {
            Some((
                Some(ConsentStatus::Granted as i32),
                Some(ConsentStatus::Granted as i32),
            ))
        } else {
            None
        };
        if let Some((ad_user_data, ad_personalization)) = change {
            let at = self.between(registered_at, self.now);
            let kind = Kind::ConsentChanged(ConsentChanged {
                customer_id: customer_id.clone(),
                ad_user_data,
                ad_personalization,
            });
            last_activity = last_activity.max(self.push(at, kind));
        }

        // Orders, with their carts and refunds.
        for ago in plan {
            let at = self.ago(ago).max(registered_at);
            let done = self.order(&customer_id, persona, at);
            last_activity = last_activity.max(done);
        }

        // An abandoned cart: fresh (< 60 min), in the abandoner window, or stale (> 7 days).
        if self.rng.random_bool(0.3) {
            let age = match self.rng.random_range(0..3) {
                0 => self.between(MINUTE, 59 * MINUTE),
                1 => self.between(61 * MINUTE, 7 * DAY - HOUR),
                _ => self.between(7 * DAY + HOUR, 120 * DAY),
            };
            let at = self.ago(age).max(registered_at);
            let done = self.abandoned_cart(&customer_id, at);
            last_activity = last_activity.max(done);
        }

        // Erasure after all activity; a quarter come back later as a new profile.
        if self.rng.random_bool(0.012) {
            let at = (last_activity + self.between(HOUR, 30 * DAY)).min(self.now);
            let kind = Kind::CustomerErased(CustomerErased {
                customer_id: customer_id.clone(),
            });
            let erased_at = self.push(at, kind);
            let comeback = erased_at + self.between(DAY, 60 * DAY);
            if comeback < self.now && self.rng.random_bool(0.25) {
                let profile = self.profile(index, comeback);
                let upsert = CustomerUpserted {
                    customer_id: customer_id.clone(),
                    ad_user_data: Some(ConsentStatus::Granted as i32),
                    ad_personalization: Some(ConsentStatus::Granted as i32),
                    ..profile
                };
                self.push(comeback, Kind::CustomerUpserted(upsert));
                if self.rng.random_bool(0.5) {
                    let at = self.between(comeback, self.now);
                    self.order(&customer_id, Persona::OneOff, at);
                }
            }
        }
    }
}

/// Adds up to `n` orders before `last`, each a jittered `rhythm` earlier, keeping room for the
/// registration before the first.
fn walk_back(rng: &mut ChaCha8Rng, plan: &mut Vec<i64>, last: i64, rhythm: i64, n: u32) {
    let mut at = last;
    for _ in 0..n {
        at += (rhythm as f64 * rng.random_range(0.7..1.3)) as i64;
        if at > HISTORY - 7 * DAY {
            break;
        }
        plan.push(at);
    }
}
