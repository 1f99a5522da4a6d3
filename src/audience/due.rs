//! Customers ordered by the next instant something about them can change, so time-driven
//! work (a lapsed tier's day 90, an outcome window closing) touches exactly the customers
//! whose instant has come instead of rescanning everyone.

use std::collections::BTreeSet;

use crate::clock::Nanos;
use crate::ledger::state::CustomerIdx;

/// "Nothing due" in the per-customer slot.
const NONE: Nanos = Nanos::MAX;

/// At most one due instant per customer, popped in time order.
#[derive(Debug, Default)]
pub struct DueIndex {
    /// Each customer's due instant, [`NONE`] when nothing is due.
    at: Vec<Nanos>,
    /// The same, ordered by time.
    order: BTreeSet<(Nanos, CustomerIdx)>,
}

impl DueIndex {
    /// An index holding `instants[c]` for each customer `c`.
    pub fn from_instants(instants: impl IntoIterator<Item = Option<Nanos>>) -> Self {
        let at: Vec<Nanos> = instants.into_iter().map(|t| t.unwrap_or(NONE)).collect();
        let order = at
            .iter()
            .enumerate()
            .filter(|(_, t)| **t != NONE)
            .map(|(c, t)| (*t, c as CustomerIdx))
            .collect();
        Self { at, order }
    }

    /// Makes room for customers `0..n`.
    pub fn grow(&mut self, n: usize) {
        if self.at.len() < n {
            self.at.resize(n, NONE);
        }
    }

    /// Sets (or with `None` clears) customer `c`'s due instant; `c` must be below the
    /// size given to [`DueIndex::grow`].
    pub fn set(&mut self, c: CustomerIdx, next: Option<Nanos>) {
        let old = self.at[c as usize];
        let new = next.unwrap_or(NONE);
        if old == new {
            return;
        }
        if old != NONE {
            self.order.remove(&(old, c));
        }
        if new != NONE {
            self.order.insert((new, c));
        }
        self.at[c as usize] = new;
    }

    /// Takes the earliest customer due at or before `now`, if any.
    pub fn pop_due(&mut self, now: Nanos) -> Option<CustomerIdx> {
        let &(t, c) = self.order.first()?;
        if t > now {
            return None;
        }
        self.order.pop_first();
        self.at[c as usize] = NONE;
        Some(c)
    }

    /// Customers with something due.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is due for anyone.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_and_follows_moves() {
        let mut d = DueIndex::from_instants([Some(30), None, Some(10)]);
        d.grow(4);
        d.set(3, Some(20));
        d.set(0, Some(5)); // moved earlier: the old instant is gone
        d.set(2, None);
        assert_eq!(d.len(), 2);
        assert_eq!(d.pop_due(4), None);
        assert_eq!(d.pop_due(25), Some(0));
        assert_eq!(d.pop_due(25), Some(3));
        assert_eq!(d.pop_due(100), None);
        assert!(d.is_empty());
    }
}
