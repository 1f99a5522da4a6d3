//! The shop in time order: every customer interleaved, as a live shop's traffic arrives.
//!
//! A live feed is never perfectly ordered: webhooks are delivered a few seconds to a couple of
//! minutes late, and retries re-send an event some time after the original. So each event is
//! placed at its `occurred_at` plus a delivery lag of at most [`MAX_LAG`], and each replay a
//! bounded number of events after its original.
//!
//! Customers span years each, so the stream cannot be produced one customer at a time: the
//! whole shop is generated, kept protobuf-encoded in one buffer (about 100 bytes an event
//! instead of a few hundred as `Event`s, so 300k customers stay well under 2 GB), sorted, and
//! decoded batch by batch. The lags and trails come from their own seeded stream, so the shop
//! itself is exactly the grouped order's.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Generator, Replay, NANOS};
use crate::proto::v1::Event;

/// The latest an event is delivered after it occurred: the disorder in event time is bounded
/// by it.
pub(super) const MAX_LAG: i64 = 120 * NANOS;
/// A near replay comes at most this many events after its original.
pub(super) const NEAR_TRAIL: u32 = 64;
/// A late replay comes at most this many events after its original.
pub(super) const LATE_TRAIL: u32 = 4_096;

/// One event of the sorted shop, small so that millions fit.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When it is delivered: `occurred_at` plus the lag, in nanoseconds.
    key: i64,
    /// Where its encoding starts in the buffer (also its place in generation order).
    offset: u64,
    len: u32,
    /// Events between it and its replay; 0 for no replay.
    trail: u32,
}

/// The synthetic shop sorted by delivery time (see [`Generator::into_batches`]).
pub struct TimeOrdered {
    encoded: Vec<u8>,
    entries: Vec<Entry>,
    /// The next entry to send.
    next: usize,
    /// Events sent so far (replays included).
    sent: u64,
    /// Replays waiting: (position due, offset, len), earliest first.
    due: BinaryHeap<Reverse<(u64, u64, u32)>>,
}

impl Generator {
    /// Generates the whole shop and sorts it by delivery time.
    pub fn time_ordered(mut self) -> TimeOrdered {
        let mut delivery = delivery_rng(self.seed);
        let mut encoded = Vec::new();
        let mut entries = Vec::new();
        while self.next_group() {
            for (ev, mark) in self.group.iter().zip(&self.marks) {
                let offset = encoded.len();
                ev.encode(&mut encoded).expect("a Vec grows as needed");
                let trail = match mark {
                    Replay::No => 0,
                    Replay::Near => delivery.random_range(1..=NEAR_TRAIL),
                    Replay::Late => delivery.random_range(NEAR_TRAIL + 1..=LATE_TRAIL),
                };
                entries.push(Entry {
                    key: occurred_at(ev).saturating_add(lag(&mut delivery)),
                    offset: offset as u64,
                    len: (encoded.len() - offset) as u32,
                    trail,
                });
            }
        }
        // Offsets are unique, so the order is total and the same on every run.
        entries.sort_unstable_by_key(|e| (e.key, e.offset));
        TimeOrdered {
            encoded,
            entries,
            next: 0,
            sent: 0,
            due: BinaryHeap::new(),
        }
    }
}

/// The delivery draws: the shop's seed on a stream of its own, so drawing lags and trails
/// leaves the shop's own draws untouched.
fn delivery_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    rng
}

/// Delivery lag: mostly a few seconds, sometimes half a minute, rarely up to [`MAX_LAG`].
fn lag(rng: &mut ChaCha8Rng) -> i64 {
    let most = match rng.random_range(0..100) {
        0..70 => 5 * NANOS,
        70..95 => 30 * NANOS,
        _ => MAX_LAG,
    };
    rng.random_range(0..=most)
}

fn occurred_at(ev: &Event) -> i64 {
    ev.occurred_at
        .as_ref()
        .map_or(0, |t| t.seconds * NANOS + i64::from(t.nanos))
}

impl TimeOrdered {
    /// The events in batches of `batch_size` (the last one may be shorter; 0 counts as 1).
    pub fn batches(mut self, batch_size: usize) -> impl Iterator<Item = Vec<Event>> {
        let batch_size = batch_size.max(1);
        std::iter::from_fn(move || {
            let batch: Vec<Event> = self.by_ref().take(batch_size).collect();
            (!batch.is_empty()).then_some(batch)
        })
    }

    fn decode(&self, offset: u64, len: u32) -> Event {
        let start = offset as usize;
        let bytes = &self.encoded[start..start + len as usize];
        Event::decode(bytes).expect("decodes what time_ordered encoded")
    }
}

impl Iterator for TimeOrdered {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let replay_due = self
            .due
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at <= self.sent || self.next >= self.entries.len());
        let event = if replay_due {
            let Reverse((_, offset, len)) = self.due.pop()?;
            self.decode(offset, len)
        } else {
            let e = *self.entries.get(self.next)?;
            self.next += 1;
            if e.trail > 0 {
                self.due
                    .push(Reverse((self.sent + u64::from(e.trail), e.offset, e.len)));
            }
            self.decode(e.offset, e.len)
        };
        self.sent += 1;
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A fixed "now" (2026-01-01T00:00:00Z) so the tests do not depend on the clock.
    const NOW: i64 = 1_767_225_600;

    fn timed(customers: u64, seed: u64, batch_size: usize) -> Vec<Event> {
        Generator::new(customers, seed, NOW)
            .into_batches(super::super::Order::Time, batch_size)
            .flatten()
            .collect()
    }

    fn grouped(customers: u64, seed: u64) -> Vec<Event> {
        Generator::new(customers, seed, NOW)
            .batches(997)
            .flatten()
            .collect()
    }

    fn sorted(mut evs: Vec<Event>) -> Vec<Vec<u8>> {
        let mut bytes: Vec<Vec<u8>> = evs.drain(..).map(|e| e.encode_to_vec()).collect();
        bytes.sort_unstable();
        bytes
    }

    #[test]
    fn the_same_shop_as_the_grouped_order() {
        let (a, b) = (timed(500, 7, 100), grouped(500, 7));
        assert_eq!(a.len(), b.len());
        assert_eq!(sorted(a), sorted(b), "the same events and replays");
    }

    #[test]
    fn deterministic_and_independent_of_the_batch_size() {
        let a = timed(300, 9, 1000);
        assert_eq!(a, timed(300, 9, 1));
        assert_eq!(a, timed(300, 9, 37));
        assert_ne!(a, timed(300, 10, 1000));
        let sizes: Vec<usize> = Generator::new(300, 9, NOW)
            .into_batches(super::super::Order::Time, 100)
            .map(|b| b.len())
            .collect();
        let (last, full) = sizes.split_last().expect("some batches");
        assert!(full.iter().all(|&n| n == 100) && (1..=100).contains(last));
        assert_eq!(timed(0, 1, 10).len(), 0);
    }

    /// No event comes after one that occurred more than `MAX_LAG` later; yet the lag does
    /// reorder some, and customers are interleaved.
    #[test]
    fn in_time_order_up_to_the_delivery_lag() {
        let evs = timed(1000, 42, 1000);
        let mut latest = i64::MIN;
        let mut inversions = 0;
        let mut seen = std::collections::HashSet::new();
        for ev in &evs {
            if !seen.insert(ev.event_id.as_str()) {
                continue; // a replay is late on purpose
            }
            let at = occurred_at(ev);
            assert!(at + MAX_LAG >= latest, "{ev:?} after {latest}");
            inversions += usize::from(at < latest);
            latest = latest.max(at);
        }
        assert!(inversions > 0, "some delivery lag shows");
        assert!(inversions < evs.len() / 2, "mostly in order: {inversions}");

        // Customers interleave: a customer's events are far apart in the stream.
        let first_customer = evs
            .iter()
            .enumerate()
            .filter(|(_, ev)| super::super::tests::customer_of(ev) == Some("cus42-0000000"))
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        let span = first_customer.last().copied().unwrap_or(0)
            - first_customer.first().copied().unwrap_or(0);
        assert!(
            first_customer.len() < 2 || span > evs.len() / 100,
            "{first_customer:?}"
        );
    }

    #[test]
    fn replays_trail_their_original_by_a_bounded_number_of_events() {
        let evs = timed(1000, 42, 1000);
        let mut first: HashMap<&str, (usize, &Event)> = HashMap::new();
        let mut replays = 0;
        for (i, ev) in evs.iter().enumerate() {
            if let Some(&(at, original)) = first.get(ev.event_id.as_str()) {
                assert_eq!(original, ev, "a replay carries the same content");
                let behind = i - at;
                // A few replays due together queue behind each other.
                assert!(behind <= LATE_TRAIL as usize + 16, "{behind}");
                replays += 1;
            } else {
                first.insert(&ev.event_id, (i, ev));
            }
        }
        assert!(replays > 0 && replays < evs.len() / 50, "{replays}");
    }
}
