//! Every order id's placements and refunds, packed for memory: a shop's whole history lives
//! here (10M orders in a few hundred MiB rather than the ~2 GiB a map of boxed structs took).
//!
//! Orders sit in one dense `Vec` and are never removed, so an [`OrderSlot`] is a stable
//! 32-bit handle (customers keep lists of slots, not 16-byte keys). The id → slot index is a
//! table of bare slots hashed by the key stored in the slot. The rare second placement of an
//! order id and the refunds are chained nodes in side vectors; event ids live once, in an
//! append-only arena.

use hashbrown::HashTable;
use smallvec::SmallVec;

use crate::clock::Nanos;
use crate::ledger::state::{CustomerIdx, Key, Refund};
use crate::money::CurrencyCode;

/// Stable handle of an order (index into the book).
pub type OrderSlot = u32;

/// Handle of an event id in the book's arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eid(u32);

/// One `order_placed` event for an order id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// When.
    pub at: Nanos,
    /// Total in minor units of `currency`.
    pub total_minor: i64,
    /// Who placed it.
    pub customer: CustomerIdx,
    /// By which event (resolve with [`Orders::eid`]).
    pub eid: Eid,
    /// Items.
    pub item_count: u32,
    /// Currency of the total.
    pub currency: CurrencyCode,
}

/// A placement to add, its event id not in the arena yet.
#[derive(Debug, Clone, Copy)]
pub struct NewPlacement<'a> {
    /// Who placed it.
    pub customer: CustomerIdx,
    /// When.
    pub at: Nanos,
    /// By which event.
    pub eid: &'a str,
    /// Total in minor units of `currency`.
    pub total_minor: i64,
    /// Currency of the total.
    pub currency: CurrencyCode,
    /// Items.
    pub item_count: u32,
}

/// No node / no placement.
const NONE: u32 = u32::MAX;
/// `Slot::more` of an order with its first placement only.
const SINGLE: u32 = u32::MAX - 1;

struct Slot {
    key: [u64; 2],
    /// Valid unless `more == NONE`.
    first: Placement,
    /// `NONE`: no placement; `SINGLE`: `first` only; else the head of the chain of the
    /// placements after `first` in `more_nodes`.
    more: u32,
    /// Head of the refund chain in `refund_nodes`, or `NONE`.
    refunds: u32,
}

struct Node<T> {
    value: T,
    next: u32,
}

/// An order as a borrowed view.
#[derive(Clone, Copy)]
pub struct OrderRef<'a> {
    book: &'a Orders,
    slot: OrderSlot,
}

impl<'a> OrderRef<'a> {
    /// The placement that counts (the earliest by `(at, event id)`), if the order has arrived.
    pub fn counted(self) -> Option<&'a Placement> {
        self.book.counted(self.slot)
    }

    /// Net value in the order's currency: total minus refunds, floored at zero.
    pub fn net_minor(self) -> Option<(i64, CurrencyCode)> {
        self.book.net_minor(self.slot)
    }
}

/// The order book.
#[derive(Default)]
pub struct Orders {
    slots: Vec<Slot>,
    index: HashTable<OrderSlot>,
    more_nodes: Vec<Node<Placement>>,
    refund_nodes: Vec<Node<Refund>>,
    eids: EidArena,
}

impl std::fmt::Debug for Orders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orders")
            .field("len", &self.slots.len())
            .finish()
    }
}

fn split(key: Key) -> [u64; 2] {
    [(key >> 64) as u64, key as u64]
}

fn join(k: [u64; 2]) -> Key {
    (u128::from(k[0]) << 64) | u128::from(k[1])
}

/// Keys are xxh3 hashes already: their low half is a good table hash.
fn hash(k: &[u64; 2]) -> u64 {
    k[1]
}

impl Orders {
    /// Order ids known (with a placement or a refund).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no order is known.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slot of an order id's key.
    pub fn find(&self, key: Key) -> Option<OrderSlot> {
        let k = split(key);
        let slots = &self.slots;
        self.index
            .find(hash(&k), |&s| slots[s as usize].key == k)
            .copied()
    }

    /// The slot of an order id's key, created empty on first sight.
    pub fn slot(&mut self, key: Key) -> OrderSlot {
        let k = split(key);
        let slots = &mut self.slots;
        let entry = self.index.entry(
            hash(&k),
            |&s| slots[s as usize].key == k,
            |&s| hash(&slots[s as usize].key),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => *e.get(),
            hashbrown::hash_table::Entry::Vacant(e) => {
                let s = OrderSlot::try_from(slots.len())
                    .unwrap_or_else(|_| panic!("more than {} order ids in memory", OrderSlot::MAX));
                slots.push(Slot {
                    key: k,
                    first: Placement {
                        at: 0,
                        total_minor: 0,
                        customer: 0,
                        eid: Eid(0),
                        item_count: 0,
                        currency: CurrencyCode(*b"XXX"),
                    },
                    more: NONE,
                    refunds: NONE,
                });
                e.insert(s);
                s
            }
        }
    }

    /// Every slot, in creation order.
    pub fn slots(&self) -> std::ops::Range<OrderSlot> {
        0..self.slots.len() as OrderSlot
    }

    /// The key of a slot's order id.
    pub fn key(&self, s: OrderSlot) -> Key {
        join(self.slots[s as usize].key)
    }

    /// A view of one order.
    pub fn get(&self, s: OrderSlot) -> OrderRef<'_> {
        OrderRef {
            book: self,
            slot: s,
        }
    }

    /// The event id behind a handle.
    pub fn eid(&self, e: Eid) -> &str {
        self.eids.get(e)
    }

    /// The placements of an order, earliest `(at, event id)` first.
    pub fn placements(&self, s: OrderSlot) -> Placements<'_> {
        let slot = &self.slots[s as usize];
        Placements {
            book: self,
            first: (slot.more != NONE).then_some(&slot.first),
            next: if slot.more == SINGLE { NONE } else { slot.more },
        }
    }

    /// The placement that counts, if any.
    pub fn counted(&self, s: OrderSlot) -> Option<&Placement> {
        let slot = &self.slots[s as usize];
        (slot.more != NONE).then_some(&slot.first)
    }

    /// Whether the order has any placement.
    pub fn is_placed(&self, s: OrderSlot) -> bool {
        self.slots[s as usize].more != NONE
    }

    /// The refunds of an order, in arrival order.
    pub fn refunds(&self, s: OrderSlot) -> Refunds<'_> {
        Refunds {
            nodes: &self.refund_nodes,
            next: self.slots[s as usize].refunds,
        }
    }

    /// Net value in the order's currency: total minus refunds, floored at zero.
    pub fn net_minor(&self, s: OrderSlot) -> Option<(i64, CurrencyCode)> {
        let p = self.counted(s)?;
        let mut refunded = 0i64;
        for r in self.refunds(s) {
            if r.full {
                return Some((0, p.currency));
            }
            refunded = refunded.saturating_add(r.amount_minor);
        }
        Some((p.total_minor.saturating_sub(refunded).max(0), p.currency))
    }

    /// Adds a placement in `(at, event id)` order; `false` if the same event is there.
    pub fn place(&mut self, s: OrderSlot, new: NewPlacement<'_>) -> bool {
        let NewPlacement {
            customer,
            at,
            eid,
            total_minor,
            currency,
            item_count,
        } = new;
        // Nearly every order has one placement: the list stays on the stack.
        let mut list: SmallVec<[Placement; 2]> = self.placements(s).copied().collect();
        let pos = list
            .iter()
            .position(|p| (p.at, self.eids.get(p.eid)) >= (at, eid));
        if let Some(i) = pos {
            if list[i].at == at && self.eids.get(list[i].eid) == eid {
                return false;
            }
        }
        let placement = Placement {
            at,
            total_minor,
            customer,
            eid: self.eids.push(eid),
            item_count,
            currency,
        };
        list.insert(pos.unwrap_or(list.len()), placement);
        self.set_placements(s, &list);
        true
    }

    /// Keeps the placements for which `keep` holds.
    pub fn retain_placements(&mut self, s: OrderSlot, mut keep: impl FnMut(&Placement) -> bool) {
        let mut list: SmallVec<[Placement; 2]> = self.placements(s).copied().collect();
        let before = list.len();
        list.retain(|p| keep(p));
        if list.len() != before {
            self.set_placements(s, &list);
        }
    }

    /// Adds a refund; `false` if that refund event is there already.
    pub fn refund(&mut self, s: OrderSlot, r: Refund) -> bool {
        let mut tail = None;
        let mut next = self.slots[s as usize].refunds;
        while next != NONE {
            let node = &self.refund_nodes[next as usize];
            if node.value.eid == r.eid {
                return false;
            }
            tail = Some(next);
            next = node.next;
        }
        let n = node_index(self.refund_nodes.len());
        self.refund_nodes.push(Node {
            value: r,
            next: NONE,
        });
        match tail {
            Some(t) => self.refund_nodes[t as usize].next = n,
            None => self.slots[s as usize].refunds = n,
        }
        true
    }

    /// Rewrites an order's placements, reusing its chain nodes (a chain only grows when a
    /// second placement of the same id arrives, and only an erasure shrinks it).
    fn set_placements(&mut self, s: OrderSlot, list: &[Placement]) {
        let slot = &mut self.slots[s as usize];
        let mut spare = Vec::new();
        let mut next = if slot.more == SINGLE || slot.more == NONE {
            NONE
        } else {
            slot.more
        };
        while next != NONE {
            spare.push(next);
            next = self.more_nodes[next as usize].next;
        }
        let Some((first, rest)) = list.split_first() else {
            slot.more = NONE;
            return;
        };
        slot.first = *first;
        let mut spare = spare.into_iter();
        let mut head = SINGLE;
        let mut prev: Option<u32> = None;
        for p in rest {
            let node = Node {
                value: *p,
                next: NONE,
            };
            let n = match spare.next() {
                Some(n) => {
                    self.more_nodes[n as usize] = node;
                    n
                }
                None => {
                    let n = node_index(self.more_nodes.len());
                    self.more_nodes.push(node);
                    n
                }
            };
            match prev {
                Some(pv) => self.more_nodes[pv as usize].next = n,
                None => head = n,
            }
            prev = Some(n);
        }
        self.slots[s as usize].more = head;
    }

    /// Approximate heap bytes: (slots, index, chains, event-id arena).
    pub fn heap_bytes(&self) -> (usize, usize, usize, usize) {
        (
            self.slots.capacity() * size_of::<Slot>(),
            self.index.capacity() * (size_of::<OrderSlot>() + 1),
            self.more_nodes.capacity() * size_of::<Node<Placement>>()
                + self.refund_nodes.capacity() * size_of::<Node<Refund>>(),
            self.eids.bytes.capacity(),
        )
    }
}

fn node_index(len: usize) -> u32 {
    u32::try_from(len)
        .ok()
        .filter(|&n| n < SINGLE)
        .unwrap_or_else(|| panic!("more than {SINGLE} order chain nodes in memory"))
}

/// Placements of one order, earliest first.
pub struct Placements<'a> {
    book: &'a Orders,
    first: Option<&'a Placement>,
    next: u32,
}

impl<'a> Iterator for Placements<'a> {
    type Item = &'a Placement;

    fn next(&mut self) -> Option<&'a Placement> {
        if let Some(f) = self.first.take() {
            return Some(f);
        }
        if self.next == NONE {
            return None;
        }
        let node = &self.book.more_nodes[self.next as usize];
        self.next = node.next;
        Some(&node.value)
    }
}

/// Refunds of one order.
pub struct Refunds<'a> {
    nodes: &'a [Node<Refund>],
    next: u32,
}

impl<'a> Iterator for Refunds<'a> {
    type Item = &'a Refund;

    fn next(&mut self) -> Option<&'a Refund> {
        if self.next == NONE {
            return None;
        }
        let node = &self.nodes[self.next as usize];
        self.next = node.next;
        Some(&node.value)
    }
}

/// Event ids, each stored once as a length byte and its bytes, at even offsets so a 32-bit
/// handle reaches 8 GiB. Append-only: an id dropped by an erasure stays (erasures are rare).
#[derive(Default)]
struct EidArena {
    bytes: Vec<u8>,
}

impl EidArena {
    fn push(&mut self, id: &str) -> Eid {
        let off = self.bytes.len() / 2;
        let handle = u32::try_from(off)
            .unwrap_or_else(|_| panic!("more than 8 GiB of order event ids in memory"));
        // Validation caps ids at 128 bytes; the byte length always fits.
        let len = u8::try_from(id.len()).unwrap_or(u8::MAX);
        self.bytes.push(len);
        self.bytes
            .extend_from_slice(&id.as_bytes()[..usize::from(len)]);
        if self.bytes.len() % 2 == 1 {
            self.bytes.push(0);
        }
        Eid(handle)
    }

    fn get(&self, e: Eid) -> &str {
        let off = e.0 as usize * 2;
        let len = usize::from(self.bytes[off]);
        // Only whole `&str`s were pushed; a cut at a char boundary cannot happen below 256.
        std::str::from_utf8(&self.bytes[off + 1..off + 1 + len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USD: CurrencyCode = CurrencyCode(*b"USD");

    fn np(customer: CustomerIdx, at: Nanos, eid: &str, total_minor: i64) -> NewPlacement<'_> {
        NewPlacement {
            customer,
            at,
            eid,
            total_minor,
            currency: USD,
            item_count: 1,
        }
    }

    #[test]
    fn placements_stay_sorted_and_dedup() {
        let mut b = Orders::default();
        let s = b.slot(7);
        assert_eq!(b.slot(7), s);
        assert_eq!(b.find(7), Some(s));
        assert_eq!(b.find(8), None);
        assert!(b.counted(s).is_none());
        assert!(b.place(s, np(1, 20, "b", 100)));
        assert!(b.place(s, np(2, 10, "z", 200)));
        assert!(b.place(s, np(3, 20, "a", 300)));
        assert!(!b.place(s, np(3, 20, "a", 300)));
        let order: Vec<_> = b
            .placements(s)
            .map(|p| (p.customer, b.eid(p.eid)))
            .collect();
        assert_eq!(order, vec![(2, "z"), (3, "a"), (1, "b")]);
        b.retain_placements(s, |p| p.customer != 2);
        assert_eq!(b.counted(s).map(|p| p.customer), Some(3));
        b.retain_placements(s, |_| false);
        assert!(!b.is_placed(s));
        assert!(b.place(s, np(4, 5, "q", 50)));
        assert_eq!(b.placements(s).count(), 1);
    }

    #[test]
    fn refunds_count_once_and_net() {
        let mut b = Orders::default();
        let s = b.slot(1);
        let r = |eid, amount_minor, full| Refund {
            eid,
            at: 0,
            amount_minor,
            full,
        };
        assert!(b.refund(s, r(1, 30, false)));
        assert!(!b.refund(s, r(1, 30, false)));
        assert_eq!(b.net_minor(s), None);
        b.place(s, np(0, 1, "e", 100));
        assert_eq!(b.net_minor(s), Some((70, USD)));
        assert!(b.refund(s, r(2, 90, false)));
        assert_eq!(b.net_minor(s), Some((0, USD)));
        assert!(b.refund(s, r(3, 0, true)));
        assert_eq!(b.refunds(s).count(), 3);
    }

    #[test]
    fn many_orders_survive_growth() {
        let mut b = Orders::default();
        for k in 0..10_000u128 {
            let s = b.slot(k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835));
            b.place(s, np(k as u32, k as i64, &format!("e{k}"), 1));
        }
        for k in 0..10_000u128 {
            let s = b
                .find(k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835))
                .expect("found");
            assert_eq!(b.eid(b.counted(s).expect("placed").eid), format!("e{k}"));
        }
    }
}
