//! The VIP threshold: the k-th largest metric value among buyers, `k = ceil(fraction × N)`,
//! maintained under single-value updates in O(log n) amortized, so one order never forces a
//! rescan. Everyone at or above the threshold is a VIP (ties at the threshold are all in).

use std::collections::{BTreeMap, BTreeSet};

use crate::ledger::state::CustomerIdx;

/// Sorted metric values of all customers whose value is positive.
#[derive(Debug, Clone, Default)]
pub struct VipIndex {
    /// `fraction = num / den`.
    num: u64,
    den: u64,
    members: BTreeSet<(i64, CustomerIdx)>,
    counts: BTreeMap<i64, u64>,
    /// The threshold T and how many values are ≥ T.
    cursor: Option<(i64, u64)>,
}

impl VipIndex {
    /// An empty index for the top `num / den` of buyers.
    pub fn new(num: u64, den: u64) -> Self {
        Self {
            num,
            den: den.max(1),
            ..Self::default()
        }
    }

    /// An index over `(value, customer)` pairs (values > 0), built in bulk (sorted input
    /// builds the trees without rebalancing).
    pub fn from_values(num: u64, den: u64, mut values: Vec<(i64, CustomerIdx)>) -> Self {
        values.retain(|(v, _)| *v > 0);
        values.sort_unstable();
        let mut counts = BTreeMap::new();
        let mut run: Option<(i64, u64)> = None;
        for &(v, _) in &values {
            match &mut run {
                Some((rv, n)) if *rv == v => *n += 1,
                _ => {
                    if let Some((rv, n)) = run.take() {
                        counts.insert(rv, n);
                    }
                    run = Some((v, 1));
                }
            }
        }
        if let Some((rv, n)) = run {
            counts.insert(rv, n);
        }
        let mut index = Self {
            num,
            den: den.max(1),
            members: values.into_iter().collect(),
            counts,
            cursor: None,
        };
        index.rebuild();
        index
    }

    /// Number of buyers (values > 0).
    pub fn len(&self) -> u64 {
        self.members.len() as u64
    }

    /// Whether there are no buyers.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The current threshold, `None` without buyers.
    pub fn threshold(&self) -> Option<i64> {
        self.cursor.map(|(t, _)| t)
    }

    /// Whether `value` makes a VIP under the current threshold.
    pub fn is_vip(&self, value: i64) -> bool {
        value > 0 && self.threshold().is_some_and(|t| value >= t)
    }

    fn k(&self) -> u64 {
        let n = self.len();
        (n * self.num).div_ceil(self.den).max(u64::from(n > 0))
    }

    /// Moves customer `c` from `old` to `new` and returns the threshold before the change.
    pub fn update(&mut self, c: CustomerIdx, old: i64, new: i64) -> Option<i64> {
        let before = self.threshold();
        if old == new {
            return before;
        }
        if old > 0 && self.members.remove(&(old, c)) {
            if let Some(n) = self.counts.get_mut(&old) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(&old);
                }
            }
            if let Some((t, ge)) = &mut self.cursor {
                if old >= *t {
                    *ge -= 1;
                }
            }
        }
        if new > 0 && self.members.insert((new, c)) {
            *self.counts.entry(new).or_insert(0) += 1;
            match &mut self.cursor {
                Some((t, ge)) if new >= *t => *ge += 1,
                Some(_) => {}
                None => self.cursor = Some((new, 1)),
            }
        }
        self.fix();
        before
    }

    /// Restores the invariant: T is the k-th largest value, `ge` counts values ≥ T.
    fn fix(&mut self) {
        if self.members.is_empty() {
            self.cursor = None;
            return;
        }
        let k = self.k();
        let Some((mut t, mut ge)) = self.cursor else {
            return self.rebuild();
        };
        if !self.counts.contains_key(&t) {
            // T's last value left: step to the nearest value below (or above if none).
            if let Some((&below, &n)) = self.counts.range(..t).next_back() {
                t = below;
                ge += n;
            } else if let Some((&above, _)) = self.counts.range(t..).next() {
                t = above;
            }
        }
        while ge < k {
            match self.counts.range(..t).next_back() {
                Some((&below, &n)) => {
                    t = below;
                    ge += n;
                }
                None => break,
            }
        }
        while ge - self.counts.get(&t).copied().unwrap_or(0) >= k {
            ge -= self.counts.get(&t).copied().unwrap_or(0);
            match self.counts.range(t + 1..).next() {
                Some((&above, _)) => t = above,
                None => break,
            }
        }
        self.cursor = Some((t, ge));
    }

    /// Computes the threshold from scratch (used after bulk loading).
    pub fn rebuild(&mut self) {
        self.cursor = None;
        let k = self.k();
        let mut ge = 0;
        for (&v, &n) in self.counts.iter().rev() {
            ge += n;
            if ge >= k {
                self.cursor = Some((v, ge));
                return;
            }
        }
    }

    /// Customers with `lo <= value < hi`: those whose VIP status flips when T moves between.
    pub fn between(&self, lo: i64, hi: i64) -> impl Iterator<Item = CustomerIdx> + '_ {
        self.members
            .range((lo, 0)..(hi.max(lo), 0))
            .map(|&(_, c)| c)
    }

    /// Customers at or above the threshold.
    pub fn vips(&self) -> impl Iterator<Item = CustomerIdx> + '_ {
        let t = self.threshold().unwrap_or(i64::MAX);
        self.members.range((t, 0)..).map(|&(_, c)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference definition, computed the slow way.
    fn reference(values: &[i64], num: u64, den: u64) -> Option<i64> {
        let mut r: Vec<i64> = values.iter().copied().filter(|v| *v > 0).collect();
        if r.is_empty() {
            return None;
        }
        r.sort_unstable_by(|a, b| b.cmp(a));
        let k = (r.len() as u64 * num).div_ceil(den).max(1);
        Some(r[k as usize - 1])
    }

    #[test]
    fn ties_at_the_threshold_are_all_in() {
        let mut v = VipIndex::new(1, 4);
        for (c, x) in [
            (0, 100),
            (1, 50),
            (2, 50),
            (3, 50),
            (4, 10),
            (5, 10),
            (6, 5),
            (7, 1),
        ] {
            v.update(c, 0, x);
        }
        // N = 8, k = 2, T = 50: four VIPs.
        assert_eq!(v.threshold(), Some(50));
        assert_eq!(v.vips().count(), 4);
        // N = 9 -> k = 3, still 50.
        v.update(8, 0, 1);
        assert_eq!(v.threshold(), Some(50));
        // A refund drops customer 0 below everyone: T stays 50, and 0 is out.
        v.update(0, 100, 2);
        assert!(!v.is_vip(2));
        assert_eq!(v.threshold(), Some(50));
    }

    #[test]
    fn bulk_build_equals_incremental() {
        let values: Vec<(i64, u32)> = (0..500u32).map(|c| (i64::from(c % 37) - 3, c)).collect();
        let bulk = VipIndex::from_values(1, 4, values.clone());
        let mut inc = VipIndex::new(1, 4);
        for (v, c) in values {
            inc.update(c, 0, v);
        }
        assert_eq!(bulk.threshold(), inc.threshold());
        assert_eq!(
            bulk.vips().collect::<Vec<_>>(),
            inc.vips().collect::<Vec<_>>()
        );
    }

    #[test]
    fn matches_the_reference_under_random_updates() {
        let mut values = vec![0i64; 200];
        let mut v = VipIndex::new(1, 4);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let c = (x % 200) as usize;
            let new = ((x >> 20) % 40) as i64 - 5; // many ties, some non-positive
            let old = values[c];
            v.update(c as u32, old, new);
            values[c] = new;
            assert_eq!(v.threshold(), reference(&values, 1, 4));
        }
    }
}
