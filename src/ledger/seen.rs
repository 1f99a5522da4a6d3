//! The event ids seen within the dedup retention: 16 bytes each (a history import puts tens
//! of millions here at once, so a map from key to receive time, 24 bytes plus slack, was the
//! largest single structure in memory).
//!
//! Each entry is the id's 128-bit key with its top 16 bits replaced by the day it was first
//! received (days since 1970, good until 2149): 112 bits of hash keep collisions out of reach,
//! and retention works in whole days, so an id may be remembered up to a day longer than
//! `dedup_retention`.

use hashbrown::HashTable;

use crate::ledger::state::Key;

const SECS_PER_DAY: i64 = 86_400;
const HASH_BITS: u32 = 112;
const HASH_MASK: u128 = (1 << HASH_BITS) - 1;

/// Seen event ids with the day each was first received.
#[derive(Default)]
pub struct SeenIds {
    table: HashTable<u128>,
}

impl std::fmt::Debug for SeenIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenIds")
            .field("len", &self.table.len())
            .finish()
    }
}

fn day_of(secs: i64) -> u128 {
    u128::from(u16::try_from(secs.div_euclid(SECS_PER_DAY).max(0)).unwrap_or(u16::MAX))
}

fn hash(entry: u128) -> u64 {
    entry as u64
}

impl SeenIds {
    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Whether an id's key was seen.
    pub fn contains(&self, key: Key) -> bool {
        let k = key & HASH_MASK;
        self.table.find(hash(k), |&e| e & HASH_MASK == k).is_some()
    }

    /// Remembers a key as first received at `received_secs`; `false` if it was known.
    pub fn insert(&mut self, key: Key, received_secs: i64) -> bool {
        let k = key & HASH_MASK;
        match self
            .table
            .entry(hash(k), |&e| e & HASH_MASK == k, |&e| hash(e))
        {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(k | (day_of(received_secs) << HASH_BITS));
                true
            }
        }
    }

    /// Forgets one id.
    pub fn remove(&mut self, key: Key) {
        let k = key & HASH_MASK;
        if let Ok(e) = self.table.find_entry(hash(k), |&e| e & HASH_MASK == k) {
            e.remove();
        }
    }

    /// Forgets the ids first received on days before the one holding `cutoff_secs`; returns
    /// how many.
    pub fn retain_since(&mut self, cutoff_secs: i64) -> usize {
        let before = self.table.len();
        let cutoff = day_of(cutoff_secs);
        self.table.retain(|e| *e >> HASH_BITS >= cutoff);
        before - self.table.len()
    }

    /// Every remembered key (its top bits are not the id's) with the first second of the day
    /// it was received: what a full checkpoint writes.
    pub fn iter(&self) -> impl Iterator<Item = (Key, i64)> + '_ {
        self.table
            .iter()
            .map(|&e| (e & HASH_MASK, (e >> HASH_BITS) as i64 * SECS_PER_DAY))
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.table.capacity() * (size_of::<u128>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_by_key_and_forgets_by_day() {
        let mut s = SeenIds::default();
        let day = 20_000 * SECS_PER_DAY;
        assert!(s.insert(u128::MAX, day + 5));
        assert!(!s.insert(u128::MAX, day + 90_000), "same id, later");
        assert!(s.contains(u128::MAX));
        assert!(s.insert(7, day + SECS_PER_DAY));
        assert!(!s.contains(8));
        assert_eq!(
            s.iter().collect::<std::collections::BTreeSet<_>>(),
            [(7, day + SECS_PER_DAY), (HASH_MASK, day)].into()
        );
        // The cutoff's day is kept whole.
        assert_eq!(s.retain_since(day + 100), 0);
        assert_eq!(s.retain_since(day + SECS_PER_DAY + 1), 1);
        assert!(!s.contains(u128::MAX) && s.contains(7));
        // A key read back from a checkpoint (top bits cleared) is the same id.
        assert!(!s.insert(7 & HASH_MASK, day));
        s.remove(7);
        assert!(!s.contains(7) && s.is_empty());
        s.remove(7);
    }
}
