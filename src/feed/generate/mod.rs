//! The synthetic shop: a seeded, deterministic stream of commerce events.
//!
//! Customers are drawn from personas chosen so that every audience of `AUDIENCES.md` fills:
//! browsers (never bought), one-off buyers, regulars on their own rhythm, at-risk regulars,
//! lapsed buyers spread over the 90/180/360-day tiers, reactivated buyers and a heavy-spending
//! VIP minority. Around them: refunds, checked-out and abandoned carts, guest carts, consent
//! changes, profile edits, erasures (some followed by a comeback), re-sent orders and replays.
//!
//! By default ([`Order::Grouped`]) events come out grouped by customer but shuffled within the
//! group, so the consumer sees them out of time order, and replays (same `event_id`, same
//! content) trail behind the original. [`Order::Time`] sends the same shop the way a live shop
//! does, every customer interleaved in time order (see `time_order`).
//! Here: the generator's state, the grouping, shuffling and replays, and the batches. A
//! customer's life is in `customer`, who they are in `identity`, their orders and carts in
//! `orders`; all of them draw from the one seeded generator in the same order.

mod customer;
mod identity;
mod orders;
mod time_order;

pub use time_order::TimeOrdered;

use std::collections::VecDeque;

use prost_types::Timestamp;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::proto::v1::{event::Kind, Event, Money};

const NANOS: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * NANOS;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// How far back registrations reach.
const HISTORY: i64 = 3 * 365 * DAY;
/// The only currency emitted: the daemon's default revenue currency, accepted without rates.
const CURRENCY: &str = "USD";

/// Share of events re-sent with the same `event_id` one customer later.
const REPLAY_NEAR: f64 = 0.008;
/// Share of events re-sent with the same `event_id` up to `LATE_FLUSH_EVERY` customers later.
const REPLAY_LATE: f64 = 0.002;
/// Late replays are released every this many customers (bounds the memory they hold).
const LATE_FLUSH_EVERY: u64 = 500;

/// The order the shop's events are sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Order {
    /// Each customer's events together (shuffled within the customer), replays trailing:
    /// kind to the daemon, whose per-customer work stays hot; the benchmarks' historic order.
    #[default]
    Grouped,
    /// Every customer interleaved in time order, with a little delivery lag and replays
    /// trailing: what a live shop sends.
    Time,
}

/// Whether an event of the current group is sent again, and how soon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    No,
    /// One customer later (grouped order), a few events later (time order).
    Near,
    /// Up to `LATE_FLUSH_EVERY` customers later (grouped), thousands of events (time).
    Late,
}

/// A deterministic synthetic event source.
///
/// Everything follows from `(customers, seed, now)`, so tests, benches and a daemon under load
/// all see the same shop; `now` is a parameter rather than read from the clock for that reason.
/// The event sequence does not depend on the batch size.
pub struct Generator {
    rng: ChaCha8Rng,
    seed: u64,
    /// `now` in nanoseconds since the epoch; no event occurs after it.
    now: i64,
    customers: u64,
    next_customer: u64,
    next_event: u64,
    next_order: u64,
    next_cart: u64,
    /// Replays released right after the next customer's group.
    near_replays: Vec<Event>,
    /// Replays released every `LATE_FLUSH_EVERY` customers and at the end.
    late_replays: Vec<Event>,
    /// The group under construction (reused allocation).
    group: Vec<Event>,
    /// Which of `group`'s events are replayed (same positions).
    marks: Vec<Replay>,
}

impl Generator {
    /// A shop of `customers` customers, all of whose events occur at or before `now_unix_secs`.
    pub fn new(customers: u64, seed: u64, now_unix_secs: i64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            now: now_unix_secs.saturating_mul(NANOS),
            customers,
            next_customer: 0,
            next_event: 0,
            next_order: 0,
            next_cart: 0,
            near_replays: Vec::new(),
            late_replays: Vec::new(),
            group: Vec::new(),
            marks: Vec::new(),
        }
    }

    /// The events in batches of `batch_size` (the last one may be shorter; 0 counts as 1),
    /// grouped by customer.
    pub fn batches(self, batch_size: usize) -> impl Iterator<Item = Vec<Event>> {
        Batches {
            gen: self,
            buf: VecDeque::new(),
            batch_size: batch_size.max(1),
        }
    }

    /// The events in batches of `batch_size` in `order`.
    ///
    /// [`Order::Time`] generates and sorts the whole shop before it returns (seconds for a
    /// few hundred thousand customers), so call it before timing anything.
    pub fn into_batches(
        self,
        order: Order,
        batch_size: usize,
    ) -> Box<dyn Iterator<Item = Vec<Event>> + Send> {
        match order {
            Order::Grouped => Box::new(self.batches(batch_size)),
            Order::Time => Box::new(self.time_ordered().batches(batch_size)),
        }
    }

    fn exhausted(&self) -> bool {
        self.next_customer >= self.customers
            && self.near_replays.is_empty()
            && self.late_replays.is_empty()
    }

    /// Builds the next customer's group (maybe with a guest cart), shuffled, with its replay
    /// marks; false once every customer is done.
    ///
    /// Both orders go through here, so they draw the same numbers and make the same shop.
    fn next_group(&mut self) -> bool {
        if self.next_customer >= self.customers {
            return false;
        }
        let customer = self.next_customer;
        self.next_customer += 1;
        self.group.clear();
        self.customer(customer);
        if self.rng.random_bool(0.08) {
            self.guest_cart();
        }
        self.shuffle_group();
        self.pick_replays();
        true
    }

    /// Appends the next group of events (one customer, maybe a guest cart, due replays).
    fn fill(&mut self, out: &mut VecDeque<Event>) {
        let replays = std::mem::take(&mut self.near_replays);
        if self.next_group() {
            for (ev, mark) in self.group.iter().zip(&self.marks) {
                match mark {
                    Replay::No => {}
                    Replay::Near => self.near_replays.push(ev.clone()),
                    Replay::Late => self.late_replays.push(ev.clone()),
                }
            }
            out.extend(self.group.drain(..));
            out.extend(replays);
            if self.next_customer.is_multiple_of(LATE_FLUSH_EVERY)
                || self.next_customer == self.customers
            {
                out.extend(self.late_replays.drain(..));
            }
        } else {
            out.extend(replays);
            out.extend(self.late_replays.drain(..));
        }
    }

    /// Partially shuffles the group: grouped by customer, but not in time order.
    fn shuffle_group(&mut self) {
        if self.rng.random_bool(0.5) {
            self.group.shuffle(&mut self.rng);
        } else {
            let n = self.group.len();
            for i in 0..n {
                if self.rng.random_bool(0.3) {
                    let j = self.rng.random_range(0..n);
                    self.group.swap(i, j);
                }
            }
        }
    }

    fn pick_replays(&mut self) {
        self.marks.clear();
        for _ in 0..self.group.len() {
            let x: f64 = self.rng.random();
            self.marks.push(if x < REPLAY_NEAR {
                Replay::Near
            } else if x < REPLAY_NEAR + REPLAY_LATE {
                Replay::Late
            } else {
                Replay::No
            });
        }
    }

    // ---- building blocks -------------------------------------------------------------------

    fn push(&mut self, at: i64, kind: Kind) -> i64 {
        let at = at.min(self.now);
        self.next_event += 1;
        self.group.push(Event {
            event_id: format!("f{}-{:09}", self.seed, self.next_event),
            occurred_at: Some(timestamp(at)),
            kind: Some(kind),
        });
        at
    }

    /// A time `ago` before now, with a random sub-second part, never after now.
    fn ago(&mut self, ago: i64) -> i64 {
        let jitter = self.rng.random_range(0..NANOS);
        (self.now - ago.max(0) - jitter).min(self.now)
    }

    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            lo
        } else {
            self.rng.random_range(lo..hi)
        }
    }

    fn order_id(&mut self) -> String {
        self.next_order += 1;
        format!("ord{}-{:08}", self.seed, self.next_order)
    }

    fn cart_id(&mut self) -> String {
        self.next_cart += 1;
        format!("cart{}-{:08}", self.seed, self.next_cart)
    }
}

/// Cuts the generator's groups into fixed-size batches.
struct Batches {
    gen: Generator,
    buf: VecDeque<Event>,
    batch_size: usize,
}

impl Iterator for Batches {
    type Item = Vec<Event>;

    fn next(&mut self) -> Option<Vec<Event>> {
        while self.buf.len() < self.batch_size && !self.gen.exhausted() {
            self.gen.fill(&mut self.buf);
        }
        if self.buf.is_empty() {
            return None;
        }
        let n = self.batch_size.min(self.buf.len());
        Some(self.buf.drain(..n).collect())
    }
}

fn usd(amount_minor: i64) -> Money {
    Money {
        amount_minor: amount_minor.max(0),
        currency: CURRENCY.to_owned(),
    }
}

fn timestamp(nanos: i64) -> Timestamp {
    Timestamp {
        seconds: nanos.div_euclid(NANOS),
        nanos: nanos.rem_euclid(NANOS) as i32,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::proto::v1::ConsentStatus;

    /// A fixed "now" (2026-01-01T00:00:00Z) so the tests do not depend on the clock.
    const NOW: i64 = 1_767_225_600;

    fn events(customers: u64, seed: u64) -> Vec<Event> {
        Generator::new(customers, seed, NOW)
            .batches(997)
            .flatten()
            .collect()
    }

    fn nanos(ts: &Option<Timestamp>) -> i64 {
        ts.as_ref()
            .map_or(i64::MIN, |t| t.seconds * NANOS + i64::from(t.nanos))
    }

    /// The customer an event names, if it names one (shared with the time order's tests).
    pub(super) fn customer_of(ev: &Event) -> Option<&str> {
        match ev.kind.as_ref()? {
            Kind::CustomerUpserted(k) => Some(&k.customer_id),
            Kind::OrderPlaced(k) => Some(&k.customer_id),
            Kind::CartUpdated(k) => Some(&k.customer_id),
            Kind::ConsentChanged(k) => Some(&k.customer_id),
            Kind::CustomerErased(k) => Some(&k.customer_id),
            Kind::OrderRefunded(_) | Kind::CartCheckedOut(_) => None,
        }
    }

    #[test]
    fn same_seed_same_events_whatever_the_batch_size() {
        let a = events(300, 7);
        let b: Vec<Event> = Generator::new(300, 7, NOW).batches(1).flatten().collect();
        assert_eq!(a, b);
        assert_ne!(a, events(300, 8));
    }

    /// All times are relative to `now`: the same shop, whatever day it runs.
    #[test]
    fn now_only_shifts_the_times() {
        let shift = |mut evs: Vec<Event>, by: i64| {
            for ev in &mut evs {
                if let Some(t) = ev.occurred_at.as_mut() {
                    t.seconds += by;
                }
                if let Some(Kind::CustomerUpserted(c)) = ev.kind.as_mut() {
                    if let Some(t) = c.registered_at.as_mut() {
                        t.seconds += by;
                    }
                }
            }
            evs
        };
        let later: Vec<Event> = Generator::new(300, 42, NOW + 12_345)
            .batches(997)
            .flatten()
            .collect();
        assert_eq!(shift(events(300, 42), 12_345), later);
    }

    #[test]
    fn batches_have_the_requested_size() {
        let sizes: Vec<usize> = Generator::new(200, 1, NOW)
            .batches(100)
            .map(|b| b.len())
            .collect();
        let (last, full) = sizes.split_last().expect("some batches");
        assert!(full.iter().all(|&n| n == 100));
        assert!((1..=100).contains(last));
        assert_eq!(Generator::new(0, 1, NOW).batches(10).count(), 0);
    }

    #[test]
    fn every_event_is_structurally_valid() {
        let now = NOW * NANOS;
        let is_consent = |c: Option<i32>| c.is_none_or(|v| ConsentStatus::try_from(v).is_ok());
        let money_ok = |m: &Option<Money>| {
            m.as_ref()
                .is_some_and(|m| m.currency == CURRENCY && m.amount_minor >= 0)
        };
        for ev in events(1000, 42) {
            assert!(
                !ev.event_id.is_empty() && ev.event_id.len() <= 128,
                "{ev:?}"
            );
            let at = nanos(&ev.occurred_at);
            assert!(at <= now && at > now - HISTORY - 7 * DAY, "{ev:?}");
            let ts = ev.occurred_at.as_ref().expect("occurred_at");
            assert!((0..1_000_000_000).contains(&ts.nanos));
            match ev.kind.as_ref().expect("kind set") {
                Kind::CustomerUpserted(k) => {
                    assert!(!k.customer_id.is_empty());
                    assert!(nanos(&k.registered_at) <= now);
                    assert!(is_consent(k.ad_user_data) && is_consent(k.ad_personalization));
                }
                Kind::OrderPlaced(k) => {
                    assert!(!k.order_id.is_empty() && !k.customer_id.is_empty());
                    assert!(money_ok(&k.total) && k.item_count > 0, "{ev:?}");
                }
                Kind::OrderRefunded(k) => {
                    assert!(!k.order_id.is_empty() && k.amount_minor >= 0);
                }
                Kind::CartUpdated(k) => {
                    assert!(!k.cart_id.is_empty() && money_ok(&k.value), "{ev:?}");
                }
                Kind::CartCheckedOut(k) => assert!(!k.cart_id.is_empty()),
                Kind::ConsentChanged(k) => {
                    assert!(!k.customer_id.is_empty());
                    assert!(k.ad_user_data.is_some() || k.ad_personalization.is_some());
                    assert!(is_consent(k.ad_user_data) && is_consent(k.ad_personalization));
                }
                Kind::CustomerErased(k) => assert!(!k.customer_id.is_empty()),
            }
        }
    }

    #[test]
    fn mix_contains_every_kind_and_edge_case() {
        let evs = events(1000, 42);
        let mut kinds = HashSet::new();
        let (mut guest_carts, mut full_refunds, mut partial_refunds) = (0, 0, 0);
        let (mut withdrawals, mut checkout_without_order) = (0, 0);
        for ev in &evs {
            let kind = ev.kind.as_ref().expect("kind");
            kinds.insert(std::mem::discriminant(kind));
            match kind {
                Kind::CartUpdated(c) if c.customer_id.is_empty() => guest_carts += 1,
                Kind::OrderRefunded(r) if r.full => full_refunds += 1,
                Kind::OrderRefunded(_) => partial_refunds += 1,
                Kind::ConsentChanged(c)
                    if c.ad_personalization == Some(ConsentStatus::Denied as i32) =>
                {
                    withdrawals += 1
                }
                Kind::CartCheckedOut(c) if c.order_id.is_empty() => checkout_without_order += 1,
                _ => {}
            }
        }
        assert_eq!(kinds.len(), 7, "all seven event kinds");
        assert!(guest_carts > 0 && full_refunds > 0 && partial_refunds > 0);
        assert!(withdrawals > 0 && checkout_without_order > 0);
        // About 18 events per customer, as `--customers` documents.
        assert!((8_000..25_000).contains(&evs.len()), "{}", evs.len());
    }

    #[test]
    fn replays_repeat_an_event_exactly_and_nothing_else_repeats() {
        let evs = events(1000, 42);
        let mut seen: HashMap<&str, &Event> = HashMap::new();
        let mut replays = 0;
        for ev in &evs {
            if let Some(first) = seen.insert(&ev.event_id, ev) {
                assert_eq!(first, ev, "a replay carries the same content");
                replays += 1;
            }
        }
        assert!(replays > 0);
        assert!(
            replays < evs.len() / 50,
            "replays are a small share: {replays}"
        );
    }

    #[test]
    fn events_are_not_in_time_order() {
        let evs = events(200, 42);
        let inversions = evs
            .windows(2)
            .filter(|w| nanos(&w[0].occurred_at) > nanos(&w[1].occurred_at))
            .count();
        assert!(inversions > evs.len() / 10, "{inversions}");
    }

    #[test]
    fn erasure_comes_after_the_customers_activity() {
        let evs = events(2000, 42);
        let erasures: Vec<(&str, i64)> = evs
            .iter()
            .filter_map(|ev| match &ev.kind {
                Some(Kind::CustomerErased(e)) => {
                    Some((e.customer_id.as_str(), nanos(&ev.occurred_at)))
                }
                _ => None,
            })
            .collect();
        assert!(!erasures.is_empty());
        for (customer, erased_at) in erasures {
            // Before the erasure, or a comeback well after it: nothing just after.
            let late = evs
                .iter()
                .filter(|ev| customer_of(ev) == Some(customer))
                .any(|ev| {
                    let at = nanos(&ev.occurred_at);
                    at > erased_at && at < erased_at + 12 * HOUR
                });
            assert!(!late, "{customer}");
        }
    }

    #[test]
    fn phones_are_valid_for_libphonenumber() {
        // The daemon's reading (libphonenumber's, see `ingest::phone`), in each customer's
        // country: every generated phone is kept.
        let n = crate::ingest::identity::Normalizer::new("US").expect("US");
        let mut checked = 0;
        for ev in events(1000, 42) {
            if let Some(Kind::CustomerUpserted(c)) = &ev.kind {
                if let Some(phone) = c.phone.as_deref().filter(|p| !p.is_empty()) {
                    let e164 = n.e164(phone, c.country.as_deref()).expect(phone);
                    assert_eq!(e164, phone, "generated in E.164");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100);
    }

    /// The shapes the audiences need: every lapsed tier, recent buyers, skewed revenue,
    /// abandoned carts of every age bucket.
    #[test]
    fn audiences_all_fill() {
        let now = NOW * NANOS;
        let evs = events(1000, 42);
        let mut last_order: HashMap<&str, i64> = HashMap::new();
        let mut revenue: HashMap<&str, i64> = HashMap::new();
        let mut cart_last: HashMap<&str, (i64, u32, &str)> = HashMap::new();
        let mut checked_out = HashSet::new();
        for ev in &evs {
            let at = nanos(&ev.occurred_at);
            match ev.kind.as_ref().expect("kind") {
                Kind::OrderPlaced(o) => {
                    let last = last_order.entry(&o.customer_id).or_insert(at);
                    *last = (*last).max(at);
                    if now - at < 365 * DAY {
                        *revenue.entry(&o.customer_id).or_default() +=
                            o.total.as_ref().map_or(0, |m| m.amount_minor);
                    }
                }
                Kind::CartUpdated(c) => {
                    let e = cart_last
                        .entry(&c.cart_id)
                        .or_insert((at, c.item_count, ""));
                    if at >= e.0 {
                        *e = (at, c.item_count, &c.customer_id);
                    }
                }
                Kind::CartCheckedOut(c) => {
                    checked_out.insert(c.cart_id.as_str());
                }
                _ => {}
            }
        }
        let tier = |lo: i64, hi: i64| {
            last_order
                .values()
                .filter(|&&t| (lo * DAY..hi * DAY).contains(&(now - t)))
                .count()
        };
        assert!(tier(0, 30) > 50, "recent buyers");
        assert!(tier(90, 180) > 30, "lapsed_90");
        assert!(tier(180, 360) > 30, "lapsed_180");
        assert!(tier(360, 10_000) > 30, "lapsed_360");

        let mut r: Vec<i64> = revenue.values().copied().filter(|&v| v > 0).collect();
        r.sort_unstable_by(|a, b| b.cmp(a));
        let top = r.len().div_ceil(4);
        let (top_sum, all_sum) = (r[..top].iter().sum::<i64>(), r.iter().sum::<i64>());
        assert!(
            top_sum * 10 > all_sum * 6,
            "the top quarter carries most revenue"
        );

        let open: Vec<i64> = cart_last
            .iter()
            .filter(|(id, (_, items, owner))| {
                !checked_out.contains(*id) && *items > 0 && !owner.is_empty()
            })
            .map(|(_, (at, _, _))| now - at)
            .collect();
        assert!(open.iter().any(|&age| age < HOUR), "fresh carts");
        assert!(
            open.iter().any(|&age| (HOUR..7 * DAY).contains(&age)),
            "abandoned"
        );
        assert!(open.iter().any(|&age| age >= 7 * DAY), "stale carts");
    }
}
