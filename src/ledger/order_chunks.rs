//! Where a customer's orders are checkpointed, so that what a checkpoint writes for a customer
//! does not grow with that customer's history.
//!
//! A customer's order list is cut by position into chunks of [`ChunkLen`] orders. Every full
//! chunk has a record of its own in the `customers` tree, keyed by the customer's id, the
//! byte `0xFF` (which no UTF-8 id contains, so no other customer's key falls among them) and
//! the chunk number; the orders after the last full chunk (the tail) travel in the customer's
//! record. A new order rewrites the record with its short tail; a chunk is written when it
//! fills and again only when one of its orders changes (a refund, a second placement). A
//! customer whose list is rebuilt (an erasure drops orders, a load finds a layout it cannot
//! trust) is written whole: record, every chunk, and the deletion of stale chunk keys, in one
//! sled batch.
//!
//! Positions only grow while the customer lives (orders are appended), so a chunk's content
//! changes only through its orders. Loading rebuilds each list in key order (the record
//! first, then chunks 0, 1, …), checks that it matches what the record declares, and marks
//! the customers whose list it had to repair for a whole rewrite.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use smallvec::SmallVec;

use crate::ledger::orders::OrderSlot;
use crate::ledger::state::{CustomerIdx, State};

/// Marks a chunk key: `0xFF` never occurs in UTF-8, so it cannot be part of an id.
const CHUNK_MARK: u8 = 0xFF;

/// Orders per chunk. Long enough that a chunk is one sled insert for many orders (an insert
/// costs ~10 µs whatever its size up to a few KiB), short enough that the tail rewritten with
/// every record stays a few hundred bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLen(pub u32);

impl Default for ChunkLen {
    fn default() -> Self {
        Self(16)
    }
}

impl ChunkLen {
    fn get(self) -> usize {
        self.0.max(1) as usize
    }

    /// Full chunks in a list of `len` orders.
    pub fn full(self, len: usize) -> u32 {
        u32::try_from(len / self.get()).unwrap_or(u32::MAX)
    }

    /// The positions of chunk `k`.
    pub fn range(self, k: u32) -> std::ops::Range<usize> {
        let start = k as usize * self.get();
        start..start + self.get()
    }

    /// The positions of the tail of a list of `len` orders.
    pub fn tail(self, len: usize) -> std::ops::RangeFrom<usize> {
        self.full(len) as usize * self.get()..
    }
}

/// The key of chunk `k` of customer `id`.
pub fn chunk_key(id: &str, k: u32) -> Vec<u8> {
    let mut key = chunk_prefix(id);
    key.extend_from_slice(&k.to_be_bytes());
    key
}

/// The prefix of every chunk key of customer `id`.
pub fn chunk_prefix(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 5);
    key.extend_from_slice(id.as_bytes());
    key.push(CHUNK_MARK);
    key
}

/// The customer id and chunk number of a chunk key; `None` for a customer record's key.
pub fn parse_chunk_key(key: &[u8]) -> Option<Result<(&str, u32), ()>> {
    let at = key.iter().position(|&b| b == CHUNK_MARK)?;
    let (id, rest) = (&key[..at], &key[at + 1..]);
    let parsed = match (std::str::from_utf8(id), <[u8; 4]>::try_from(rest)) {
        (Ok(id), Ok(k)) => Ok((id, u32::from_be_bytes(k))),
        _ => Err(()),
    };
    Some(parsed)
}

/// Where an order of a customer is checkpointed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In the customer's record (the tail).
    Record,
    /// In full chunk `k`.
    Chunk(u32),
}

impl State {
    /// Where customer `c`'s record set keeps order `slot`, if its list holds it.
    fn place_of(&self, c: CustomerIdx, slot: OrderSlot) -> Option<Place> {
        let orders = &self.customers[c as usize].orders;
        let pos = orders.iter().position(|&s| s == slot)?;
        let k = u32::try_from(pos / self.order_chunk.get()).unwrap_or(u32::MAX);
        Some(if k < self.order_chunk.full(orders.len()) {
            Place::Chunk(k)
        } else {
            Place::Record
        })
    }

    /// Marks what must be rewritten because order `slot` of customer `c` changed: its chunk,
    /// or the record holding the tail.
    fn mark_order_of(&mut self, c: CustomerIdx, slot: OrderSlot) {
        match self.place_of(c, slot) {
            Some(Place::Chunk(k)) => {
                self.dirty.chunks.insert((c, k));
            }
            Some(Place::Record) => {
                self.dirty.customers.insert(c);
            }
            None => {
                self.dirty.relayout.insert(c);
            }
        }
    }

    /// Marks, for every customer who placed order `slot`, the chunk or record holding it.
    pub(super) fn mark_placers(&mut self, slot: OrderSlot) {
        let placers: SmallVec<[CustomerIdx; 2]> =
            self.orders.placements(slot).map(|p| p.customer).collect();
        for c in placers {
            self.mark_order_of(c, slot);
        }
    }

    /// Appends order `slot` to customer `c`'s list (if it is not there yet); when that fills
    /// a chunk, the chunk is written and the record loses it from its tail.
    pub(super) fn push_order(&mut self, c: CustomerIdx, slot: OrderSlot) {
        let orders = &mut self.customers[c as usize].orders;
        if orders.contains(&slot) {
            return;
        }
        orders.push(slot);
        let len = orders.len();
        self.dirty.customers.insert(c);
        if len.is_multiple_of(self.order_chunk.get()) {
            self.dirty
                .chunks
                .insert((c, self.order_chunk.full(len) - 1));
        }
    }
}

/// Rebuilds each customer's order list from its record and chunks while the `customers` tree
/// is read in key order, and notes the customers whose stored layout cannot be trusted.
#[derive(Debug, Default)]
pub struct LayoutLoader {
    /// Customers whose record declared chunks not all read yet: (chunks declared, next
    /// expected, the record's tail).
    pending: HashMap<CustomerIdx, (u32, u32, Vec<OrderSlot>)>,
    /// Orders a record holds with another customer's placement: that customer's own record
    /// should hold them too, checked at the end.
    others: Vec<(CustomerIdx, OrderSlot)>,
    /// Customers to write whole at the next checkpoint.
    relayout: HashSet<CustomerIdx>,
}

impl LayoutLoader {
    /// A customer's record with `chunks` full chunks declared and its `tail`.
    pub fn record(&mut self, st: &mut State, c: CustomerIdx, chunks: u32, tail: Vec<OrderSlot>) {
        if tail.len() >= st.order_chunk.get() || !st.customers[c as usize].orders.is_empty() {
            self.relayout.insert(c);
        }
        if chunks == 0 {
            self.append(st, c, &tail);
        } else if self.pending.insert(c, (chunks, 0, tail)).is_some() {
            self.relayout.insert(c);
        }
    }

    /// Chunk `k` of customer `c`, holding `orders`.
    pub fn chunk(&mut self, st: &mut State, c: CustomerIdx, k: u32, orders: &[OrderSlot]) {
        let expected = self.pending.get(&c).map(|&(_, next, _)| next);
        if expected != Some(k) || orders.len() != st.order_chunk.get() {
            self.relayout.insert(c);
        }
        self.append(st, c, orders);
        let Some(entry) = self.pending.get_mut(&c) else {
            return;
        };
        entry.1 = entry.1.max(k.saturating_add(1));
        if entry.1 >= entry.0 {
            if let Some((_, _, tail)) = self.pending.remove(&c) {
                self.append(st, c, &tail);
            }
        }
    }

    /// An order in customer `owner`'s record set that `other` placed too.
    pub fn placed_by_other(&mut self, other: CustomerIdx, slot: OrderSlot) {
        self.others.push((other, slot));
    }

    /// An order pushed to customer `c`'s list from outside its record set (a lone copy).
    pub fn pushed_from_outside(&mut self, c: CustomerIdx) {
        self.relayout.insert(c);
    }

    fn append(&mut self, st: &mut State, c: CustomerIdx, slots: &[OrderSlot]) {
        let orders = &mut st.customers[c as usize].orders;
        for &s in slots {
            if orders.contains(&s) {
                self.relayout.insert(c);
            } else {
                orders.push(s);
            }
        }
    }

    /// Ends the load: tails whose chunks were missing are appended, every placement's
    /// customer holds its order, and the customers whose list differs from what is stored
    /// are returned, to be written whole.
    pub fn finish(mut self, st: &mut State) -> HashSet<CustomerIdx> {
        for (c, (_, _, tail)) in std::mem::take(&mut self.pending) {
            self.relayout.insert(c);
            self.append(st, c, &tail);
        }
        for (c, slot) in std::mem::take(&mut self.others) {
            let orders = &mut st.customers[c as usize].orders;
            if !orders.contains(&slot) {
                orders.push(slot);
                self.relayout.insert(c);
            }
        }
        self.relayout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_parse_back_and_sort_after_their_record_and_before_other_customers() {
        let key = chunk_key("c-é", 7);
        assert_eq!(parse_chunk_key(&key), Some(Ok(("c-é", 7))));
        assert_eq!(parse_chunk_key(b"c-1"), None);
        assert_eq!(parse_chunk_key(&[b'c', 0xFF, 1]), Some(Err(())));
        // A record, an id it prefixes, then the record's chunks in number order.
        let mut keys = vec![
            chunk_key("ab", 1),
            b"abc".to_vec(),
            chunk_key("ab", 0),
            b"ab".to_vec(),
            chunk_key("abc", 0),
            chunk_key("ab", 256),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                b"ab".to_vec(),
                b"abc".to_vec(),
                chunk_key("abc", 0),
                chunk_key("ab", 0),
                chunk_key("ab", 1),
                chunk_key("ab", 256),
            ]
        );
    }

    #[test]
    fn chunk_ranges_cover_the_list_and_leave_a_short_tail() {
        let c = ChunkLen(4);
        assert_eq!(c.full(0), 0);
        assert_eq!(c.full(3), 0);
        assert_eq!(c.full(4), 1);
        assert_eq!(c.full(9), 2);
        assert_eq!(c.range(1), 4..8);
        assert_eq!(c.tail(9), 8..);
        assert_eq!(c.tail(8), 8..);
    }
}
