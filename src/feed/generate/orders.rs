//! Orders, refunds and carts (checked out, abandoned, and guests' carts) of the synthetic shop.

use rand::Rng;

use super::customer::Persona;
use super::{usd, Generator, DAY, HOUR, MINUTE, NANOS};
use crate::proto::v1::{event::Kind, CartCheckedOut, CartUpdated, OrderPlaced, OrderRefunded};

impl Generator {
    /// One order at `at`, maybe preceded by its cart, maybe re-sent, maybe refunded.
    /// Returns the time of the latest event it produced.
    pub(super) fn order(&mut self, customer_id: &str, persona: Persona, at: i64) -> i64 {
        let order_id = self.order_id();
        let total = self.order_total(persona);
        let items = self.rng.random_range(1..=6);
        let mut latest = at;

        if self.rng.random_bool(0.6) {
            let cart_id = self.cart_id();
            let updates = self.rng.random_range(1..=3u32);
            let started = at - self.between(5 * MINUTE, 90 * MINUTE);
            for k in 1..=updates {
                let t = started + (at - started) * i64::from(k - 1) / i64::from(updates);
                let kind = Kind::CartUpdated(CartUpdated {
                    cart_id: cart_id.clone(),
                    customer_id: customer_id.to_owned(),
                    item_count: (items * k / updates).max(1),
                    value: Some(usd(total * i64::from(k) / i64::from(updates))),
                });
                self.push(t, kind);
            }
            let with_order = self.rng.random_bool(0.95);
            let kind = Kind::CartCheckedOut(CartCheckedOut {
                cart_id: cart_id.clone(),
                order_id: if with_order {
                    order_id.clone()
                } else {
                    String::new()
                },
            });
            latest = latest.max(self.push(at, kind));
            // An update to a checked-out cart, which the daemon must ignore.
            if self.rng.random_bool(0.03) {
                let t = at + self.between(MINUTE, DAY);
                let kind = Kind::CartUpdated(CartUpdated {
                    cart_id,
                    customer_id: customer_id.to_owned(),
                    item_count: items + 1,
                    value: Some(usd(total + 999)),
                });
                latest = latest.max(self.push(t, kind));
            }
        }

        let order = OrderPlaced {
            order_id: order_id.clone(),
            customer_id: customer_id.to_owned(),
            total: Some(usd(total)),
            item_count: items,
        };
        self.push(at, Kind::OrderPlaced(order.clone()));
        // The same order re-sent later under a new event id: the earliest must count.
        if self.rng.random_bool(0.02) {
            let t = at + self.between(NANOS, HOUR);
            latest = latest.max(self.push(t, Kind::OrderPlaced(order)));
        }

        let roll: f64 = self.rng.random();
        if roll < 0.04 {
            let t = at + self.between(HOUR, 30 * DAY);
            let kind = Kind::OrderRefunded(OrderRefunded {
                order_id,
                amount_minor: total,
                full: true,
            });
            latest = latest.max(self.push(t, kind));
        } else if roll < 0.10 {
            let parts = if self.rng.random_bool(0.25) { 2 } else { 1 };
            let mut t = at;
            for _ in 0..parts {
                t += self.between(HOUR, 20 * DAY);
                let kind = Kind::OrderRefunded(OrderRefunded {
                    order_id: order_id.clone(),
                    amount_minor: total * self.rng.random_range(10..=60) / 100,
                    full: false,
                });
                latest = latest.max(self.push(t, kind));
            }
        }
        latest.min(self.now)
    }

    /// A customer's cart left behind, last updated at `at`; sometimes started as a guest cart.
    pub(super) fn abandoned_cart(&mut self, customer_id: &str, at: i64) -> i64 {
        let cart_id = self.cart_id();
        let updates = self.rng.random_range(1..=3u32);
        let started = at - self.between(MINUTE, 2 * HOUR);
        let from_guest = self.rng.random_bool(0.1);
        let emptied = self.rng.random_bool(0.1);
        let per_item = self.rng.random_range(500..8_000);
        let mut latest = at;
        for k in 1..=updates {
            let t = started + (at - started) * i64::from(k) / i64::from(updates);
            let items = if emptied && k == updates { 0 } else { k };
            let owner = if from_guest && k < updates {
                ""
            } else {
                customer_id
            };
            let kind = Kind::CartUpdated(CartUpdated {
                cart_id: cart_id.clone(),
                customer_id: owner.to_owned(),
                item_count: items,
                value: Some(usd(per_item * i64::from(items))),
            });
            latest = latest.max(self.push(t, kind));
        }
        latest
    }

    /// A guest cart (no customer): in no audience, sometimes checked out without an order id.
    pub(super) fn guest_cart(&mut self) {
        let cart_id = self.cart_id();
        let age = self.between(MINUTE, 30 * DAY);
        let at = self.ago(age);
        let updates = self.rng.random_range(1..=3u32);
        for k in 0..updates {
            let t = at + i64::from(k) * self.between(MINUTE, 10 * MINUTE);
            let kind = Kind::CartUpdated(CartUpdated {
                cart_id: cart_id.clone(),
                customer_id: String::new(),
                item_count: k + 1,
                value: Some(usd(2_500 * i64::from(k + 1))),
            });
            self.push(t, kind);
        }
        if self.rng.random_bool(0.4) {
            let t = at + i64::from(updates) * 10 * MINUTE;
            let kind = Kind::CartCheckedOut(CartCheckedOut {
                cart_id,
                order_id: String::new(),
            });
            self.push(t, kind);
        }
    }
}
