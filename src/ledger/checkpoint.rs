//! Checkpoints: which dirty entities are written where ([`State::take_dirty`]), their
//! encoding ([`State::encode_checkpoint`]), and the writing itself
//! ([`Store::write_checkpoint`]), in phases ordered so that a crash at any point recovers
//! exactly.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::ledger::customer_record::{
    encode_customer, AudienceEntry, CartsView, CustomerRecordView, MembershipView, OrdersView,
};
use crate::ledger::marker::Marker;
use crate::ledger::order_chunks::{chunk_key, chunk_prefix, parse_chunk_key};
use crate::ledger::records::{encode, key_bytes};
use crate::ledger::state::{CustomerIdx, Key, OrderSlot, State};
use crate::ledger::store::{
    Store, StoreError, DEDUP_CHUNK, MAX_SLED_BATCH, META_CHECKPOINT, SCHEMA_VERSION,
};
use crate::ledger::wal::Wal;

/// Everything checkpointed at once: the dirty entities as of WAL sequence `seq`.
#[derive(Debug, Default)]
pub struct Checkpoint {
    /// State covers every WAL record up to and including this one.
    pub seq: u64,
    /// Customers' records and order chunks.
    pub customers: Vec<CustomerRows>,
    /// The same for customers whose record set drops an order or cart (erasures): written
    /// after a sync, once every record that now carries what they drop is durable.
    pub customers_last: Vec<CustomerRows>,
    /// (order key, record)
    pub orders: Vec<([u8; 16], Vec<u8>)>,
    /// (cart key, record)
    pub carts: Vec<([u8; 16], Vec<u8>)>,
    /// Lone order records to delete (a customer record carries them now).
    pub orders_removed: Vec<[u8; 16]>,
    /// Lone cart records to delete.
    pub carts_removed: Vec<[u8; 16]>,
    /// (event key, first-received second) remembered since the last checkpoint.
    pub dedup_added: Vec<(Key, i64)>,
    /// Chunks whose newest id was received before this second are past retention.
    pub dedup_pruned_before: Option<i64>,
}
/// What a checkpoint writes for one customer, in one sled batch: the customer's record set
/// changes all at once, so its layout is never seen half-rewritten (see
/// [`crate::ledger::order_chunks`]).
#[derive(Debug)]
pub struct CustomerRows {
    /// The shop's id.
    pub id: Box<str>,
    /// The customer's record, when it changed.
    pub record: Option<Vec<u8>>,
    /// (chunk number, chunk record) of the chunks that changed.
    pub chunks: Vec<(u32, Vec<u8>)>,
    /// Written whole: chunk keys from this number on are deleted.
    pub chunks_end: Option<u32>,
}

impl CustomerRows {
    fn rows(&self) -> usize {
        usize::from(self.record.is_some()) + self.chunks.len()
    }
}

impl Checkpoint {
    /// Bytes of keys and values this checkpoint writes (deletions not counted).
    pub fn bytes(&self) -> u64 {
        let customers = self
            .customers
            .iter()
            .chain(&self.customers_last)
            .map(|c| {
                let record = c.record.as_ref().map_or(0, |r| c.id.len() + r.len());
                let chunks: usize = c.chunks.iter().map(|(_, v)| c.id.len() + 5 + v.len()).sum();
                record + chunks
            })
            .sum::<usize>();
        let alone = self
            .orders
            .iter()
            .chain(&self.carts)
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
        // One 24-byte key per 4,096 ids, 16 bytes per id.
        let dedup = self.dedup_added.len() * 16 + self.dedup_added.len().div_ceil(DEDUP_CHUNK) * 24;
        (customers + alone + dedup) as u64
    }
}

impl Store {
    /// Writes a checkpoint, then records its sequence, then trims the WAL below it.
    /// A crash anywhere in between is harmless: replay is idempotent (see `state`).
    pub fn write_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        // Phase 1: everything that only adds — customer records and lone copies. An order or
        // cart can move from one record to another (an erasure drops it from the erased
        // customer's record); it gets a lone copy here, since its new carrier may itself be
        // a record of phase 2 (two erased customers can swap orders).
        self.write_customers(&cp.customers)?;
        self.insert_rows(&self.orders, &cp.orders, |k| k.as_slice())?;
        self.insert_rows(&self.carts, &cp.carts, |k| k.as_slice())?;
        // Phase 2, after a sync: the records that drop something.
        if !cp.customers_last.is_empty() {
            self.sync_with_blobs()?;
            self.write_customers(&cp.customers_last)?;
        }
        // Phase 3, after a sync: the lone copies that customer records now carry (a carrier
        // may be a record of phase 2: a customer erased once who placed the order later).
        if !cp.orders_removed.is_empty() || !cp.carts_removed.is_empty() {
            self.sync_with_blobs()?;
        }
        for (tree, removed) in [
            (&self.orders, &cp.orders_removed),
            (&self.carts, &cp.carts_removed),
        ] {
            for chunk in removed.chunks(MAX_SLED_BATCH) {
                let mut b = sled::Batch::default();
                chunk.iter().for_each(|k| b.remove(k));
                tree.apply_batch(b)?;
            }
        }
        // Dedup ids are packed: one sled value per 4,096 ids (a sled insert per event id would
        // cost more than everything else an event needs). A chunk is keyed by the newest
        // second in it, so retention drops whole chunks whose newest id is too old.
        if let Some(cutoff) = cp.dedup_pruned_before {
            let mut b = sled::Batch::default();
            for item in self.dedup.range(..cutoff.to_be_bytes().to_vec()) {
                b.remove(item?.0);
            }
            self.dedup.apply_batch(b)?;
        }
        let mut added = cp.dedup_added.clone();
        added.sort_unstable_by_key(|(_, t)| *t);
        for (i, chunk) in added.chunks(DEDUP_CHUNK).enumerate() {
            let newest = chunk.last().map_or(0, |(_, t)| *t);
            let mut key = Vec::with_capacity(24);
            key.extend_from_slice(&newest.to_be_bytes());
            key.extend_from_slice(&cp.seq.to_be_bytes());
            key.extend_from_slice(&(i as u64).to_be_bytes());
            let mut value = Vec::with_capacity(chunk.len() * 16);
            for (k, _) in chunk {
                value.extend_from_slice(&k.to_be_bytes());
            }
            self.dedup.insert(key, value)?;
        }
        self.sync_with_blobs()?;
        // Trees newer than `checkpoint_seq`: the restart replays the WAL onto them.
        crate::failpoint::crash_point!("checkpoint_before_seq");
        self.meta.insert(META_CHECKPOINT, &cp.seq.to_be_bytes())?;
        self.sync()?;
        // From now on the store must recover at least this far.
        self.write_marker(Marker {
            schema: SCHEMA_VERSION,
            checkpoint_seq: cp.seq,
        })?;
        // Checkpoint recorded, WAL not yet trimmed: the restart trims it.
        crate::failpoint::crash_point!("checkpoint_before_trim");
        Wal::trim(&self.wal_dir, cp.seq, self.fsync)?;
        Ok(())
    }

    /// Writes customers' rows, each customer's in one batch with others up to about
    /// [`MAX_SLED_BATCH`] rows.
    fn write_customers(&self, customers: &[CustomerRows]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut rows = 0;
        for c in customers {
            if let Some(end) = c.chunks_end {
                let prefix = chunk_prefix(&c.id);
                for item in self.customers.scan_prefix(&prefix) {
                    let (key, _) = item?;
                    match parse_chunk_key(&key) {
                        Some(Ok((_, k))) if k < end => {}
                        _ => batch.remove(key),
                    }
                }
            }
            if let Some(record) = &c.record {
                batch.insert(c.id.as_bytes(), record.as_slice());
            }
            for (k, chunk) in &c.chunks {
                batch.insert(chunk_key(&c.id, *k), chunk.as_slice());
            }
            rows += c.rows();
            if rows >= MAX_SLED_BATCH {
                self.customers.apply_batch(std::mem::take(&mut batch))?;
                rows = 0;
            }
        }
        if rows > 0 || customers.iter().any(|c| c.chunks_end.is_some()) {
            self.customers.apply_batch(batch)?;
        }
        Ok(())
    }

    /// Inserts `rows` in batches of at most [`MAX_SLED_BATCH`].
    fn insert_rows<K>(
        &self,
        tree: &sled::Tree,
        rows: &[(K, Vec<u8>)],
        key: impl Fn(&K) -> &[u8],
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(MAX_SLED_BATCH) {
            let mut b = sled::Batch::default();
            for (k, v) in chunk {
                b.insert(key(k), v.as_slice());
            }
            tree.apply_batch(b)?;
        }
        Ok(())
    }
}

/// What one checkpoint writes, decided under the write lock by [`State::take_dirty`].
#[derive(Debug, Default)]
pub struct DirtyPlan {
    /// Customers whose record is rewritten (with their carts and the tail of their orders).
    customers: HashSet<CustomerIdx>,
    /// Full order chunks rewritten: (customer, chunk).
    chunks: Vec<(CustomerIdx, u32)>,
    /// Customers written whole (record and every chunk).
    relayout: HashSet<CustomerIdx>,
    /// Of those, the ones whose record set drops an order or cart: written last.
    shrunk: HashSet<CustomerIdx>,
    /// Orders written on their own (no placement).
    alone_orders: Vec<OrderSlot>,
    /// Guest carts written on their own.
    alone_carts: Vec<Key>,
    /// Lone order records now carried by a customer record.
    orders_removed: Vec<Key>,
    /// Lone cart records now carried by a customer record.
    carts_removed: Vec<Key>,
    dedup_added: Vec<(Key, i64)>,
    dedup_pruned_before: Option<i64>,
}

/// A checkpoint being encoded a slice of customers at a time ([`State::encode_some`]), so
/// that neither the writer nor the readers wait for a whole checkpoint's encoding.
#[derive(Debug)]
pub struct Encoder {
    checkpoint: Checkpoint,
    plan: DirtyPlan,
    /// The plan's chunks by customer, taken as each customer is encoded.
    chunks: HashMap<CustomerIdx, Vec<u32>>,
    /// The customers to encode, in index order; `next` is the first not encoded yet.
    who: Vec<CustomerIdx>,
    next: usize,
}

impl Encoder {
    /// The encoded checkpoint, once [`State::encode_some`] said everything is encoded.
    pub fn into_checkpoint(self) -> Checkpoint {
        self.checkpoint
    }

    /// Customers still to encode.
    pub fn remaining(&self) -> usize {
        self.who.len() - self.next
    }

    /// The WAL position the checkpoint covers.
    pub fn seq(&self) -> u64 {
        self.checkpoint.seq
    }
}

/// The parts of a customer record the engines above the store derive from the facts,
/// borrowed from them for encoding.
pub struct Derived<'a> {
    /// The customer's memberships.
    pub memberships: MembershipView<'a>,
    /// The customer's audience entries.
    pub entries: &'a [AudienceEntry],
}

impl State {
    /// Takes the dirty set and decides where each dirty entity is written (the cheap part,
    /// under the write lock); [`State::encode_checkpoint`] then serializes it under a read
    /// lock, so queries go on while it runs. `also` are customers whose derived parts
    /// (memberships, entries) changed without a fact.
    ///
    /// An order or cart goes into the record of every customer it belongs to, so those
    /// customers are rewritten; one that belongs to nobody (a refund before its order, a
    /// guest cart) is written on its own, and its lone copy is removed once a customer's
    /// record carries it.
    pub fn take_dirty(&mut self, also: impl IntoIterator<Item = CustomerIdx>) -> DirtyPlan {
        // Orders an erasure changed: each placer's chunk or record holding them.
        let orders = std::mem::take(&mut self.dirty.orders);
        for &s in &orders {
            self.mark_placers(s);
        }
        let dirty = std::mem::take(&mut self.dirty);
        let mut relayout = dirty.relayout;
        relayout.extend(dirty.shrunk.iter().copied());
        let mut plan = DirtyPlan {
            customers: dirty.customers,
            chunks: dirty.chunks.into_iter().collect(),
            relayout,
            shrunk: dirty.shrunk,
            dedup_added: dirty.dedup_added,
            dedup_pruned_before: dirty.dedup_pruned_before,
            ..DirtyPlan::default()
        };
        plan.customers.extend(also);
        plan.customers.extend(plan.relayout.iter().copied());
        plan.chunks.sort_unstable();
        for s in orders {
            if self.orders.is_placed(s) {
                // A moved order is written alone before the records, removed after them.
                let moved = dirty.moved_orders.contains(&s);
                if moved {
                    plan.alone_orders.push(s);
                }
                if self.stored_alone.orders.remove(&s) || moved {
                    plan.orders_removed.push(self.orders.key(s));
                }
            } else {
                self.stored_alone.orders.insert(s);
                plan.alone_orders.push(s);
            }
        }
        for k in dirty.carts {
            let Some(cart) = self.carts.get(&k) else {
                continue;
            };
            // A checked-out cart's owners were marked dirty when it was checked out.
            plan.customers
                .extend(cart.updates.iter().filter_map(|u| u.customer));
            if cart.owned || cart.updates.iter().any(|u| u.customer.is_some()) {
                let moved = dirty.moved_carts.contains(&k);
                if moved {
                    plan.alone_carts.push(k);
                }
                if self.stored_alone.carts.remove(&k) || moved {
                    plan.carts_removed.push(k);
                }
            } else {
                self.stored_alone.carts.insert(k);
                plan.alone_carts.push(k);
            }
        }
        self.moved_in_flight = (dirty.moved_orders, dirty.moved_carts);
        plan
    }

    /// Serializes a plan made by [`State::take_dirty`] as a checkpoint for WAL position
    /// `seq` at once; `derived` lends each customer's memberships and entries.
    pub fn encode_checkpoint<'a>(
        &'a self,
        seq: u64,
        plan: DirtyPlan,
        derived: impl Fn(CustomerIdx) -> Derived<'a>,
    ) -> Checkpoint {
        let mut encoder = self.start_encoding(seq, plan);
        self.encode_some(&mut encoder, usize::MAX, derived);
        encoder.checkpoint
    }

    /// Starts encoding a plan made by [`State::take_dirty`] as a checkpoint for WAL position
    /// `seq`, a slice at a time with [`State::encode_some`].
    pub fn start_encoding(&self, seq: u64, plan: DirtyPlan) -> Encoder {
        let mut chunks: HashMap<CustomerIdx, Vec<u32>> = HashMap::default();
        for &(c, k) in &plan.chunks {
            chunks.entry(c).or_default().push(k);
        }
        let mut who: Vec<CustomerIdx> = plan.customers.iter().copied().collect();
        who.extend(chunks.keys().filter(|c| !plan.customers.contains(c)));
        who.sort_unstable();
        Encoder {
            checkpoint: Checkpoint {
                seq,
                ..Checkpoint::default()
            },
            plan,
            chunks,
            who,
            next: 0,
        }
    }

    /// Encodes up to `budget` more customers of `enc`; `true` once everything is encoded
    /// (then [`Encoder::into_checkpoint`]).
    ///
    /// Facts may have been applied since the plan was made: every customer is encoded as it
    /// is now, which is at least as new as `seq` (recovery replays the log from there onto
    /// anything newer, see [`crate::ledger::state`]), and its rows stay one consistent
    /// layout. A customer whose list was rebuilt since (an erasure) is written whole, last,
    /// after lone copies of every order and cart an erasure has moved since (the customer's
    /// old record may have been their only carrier as of `seq`; the next checkpoint writes
    /// and removes those copies as for any move); one whose record is written takes along
    /// the chunks that filled or changed since.
    pub fn encode_some<'a>(
        &'a self,
        enc: &mut Encoder,
        budget: usize,
        derived: impl Fn(CustomerIdx) -> Derived<'a>,
    ) -> bool {
        let chunking = self.order_chunk;
        let record = |c: CustomerIdx| {
            let cust = &self.customers[c as usize];
            let Derived {
                memberships,
                entries,
            } = derived(c);
            let rec = CustomerRecordView {
                erased_at: cust.erased_at,
                profile: &cust.profile,
                memberships,
                entries,
                orders: OrdersView {
                    state: self,
                    slots: &cust.orders[chunking.tail(cust.orders.len())],
                },
                carts: CartsView {
                    state: self,
                    keys: &cust.carts,
                },
                order_chunks: chunking.full(cust.orders.len()),
            };
            encode_customer(&rec)
        };
        let chunk = |c: CustomerIdx, k: u32| {
            let orders = &self.customers[c as usize].orders;
            // A chunk that is no longer full was cut by a relayout, which rewrote the rest.
            let slots = orders.get(chunking.range(k))?;
            Some((k, encode(&OrdersView { state: self, slots })))
        };
        let end = enc.who.len().min(enc.next.saturating_add(budget));
        for i in enc.next..end {
            let c = enc.who[i];
            let plan = &enc.plan;
            let rebuilt = self.dirty.relayout.contains(&c) || self.dirty.shrunk.contains(&c);
            let whole = plan.relayout.contains(&c) || rebuilt;
            let full = chunking.full(self.customers[c as usize].orders.len());
            let with_record = plan.customers.contains(&c) || rebuilt;
            let mut ks = enc.chunks.remove(&c).unwrap_or_default();
            if whole {
                ks = (0..full).collect();
            } else if with_record {
                ks.extend((0..full).filter(|&k| self.dirty.chunks.contains(&(c, k))));
                ks.sort_unstable();
                ks.dedup();
            }
            let rows = CustomerRows {
                id: self.customers[c as usize].id.clone(),
                record: with_record.then(|| record(c)),
                chunks: ks.into_iter().filter_map(|k| chunk(c, k)).collect(),
                chunks_end: whole.then_some(full),
            };
            if plan.shrunk.contains(&c) || rebuilt {
                enc.checkpoint.customers_last.push(rows);
            } else {
                enc.checkpoint.customers.push(rows);
            }
        }
        enc.next = end;
        if enc.next < enc.who.len() {
            return false;
        }
        let mut plan = std::mem::take(&mut enc.plan);
        let cp = &mut enc.checkpoint;
        plan.alone_orders.extend(self.dirty.moved_orders.iter());
        plan.alone_orders.sort_unstable();
        plan.alone_orders.dedup();
        plan.alone_carts.extend(self.dirty.moved_carts.iter());
        plan.alone_carts.sort_unstable();
        plan.alone_carts.dedup();
        cp.orders = plan
            .alone_orders
            .into_iter()
            .map(|s| (key_bytes(self.orders.key(s)), encode(&self.order_view(s))))
            .collect();
        cp.carts = plan
            .alone_carts
            .into_iter()
            .filter_map(|k| Some((key_bytes(k), encode(&self.cart_view(self.carts.get(&k)?)))))
            .collect();
        cp.orders_removed = plan.orders_removed.into_iter().map(key_bytes).collect();
        cp.carts_removed = plan.carts_removed.into_iter().map(key_bytes).collect();
        cp.dedup_added = plan.dedup_added;
        cp.dedup_pruned_before = plan.dedup_pruned_before;
        true
    }

    /// Marks every entity dirty, so the next checkpoint rewrites all of them.
    pub fn mark_all_dirty(&mut self) {
        // Every customer whole: record and all chunks (taking the dirty set adds them to the
        // records written).
        self.dirty.relayout = (0..self.customers.len() as u32).collect();
        // Only an erasure makes a record drop an order or cart; a failed checkpoint may have
        // lost which ones did, so every erased customer's record goes last.
        self.dirty.shrunk = (0..self.customers.len() as u32)
            .filter(|&c| self.customers[c as usize].erased_at.is_some())
            .collect();
        self.dirty.orders = self.orders.slots().collect();
        self.dirty.carts = self.carts.keys().copied().collect();
        self.dirty.dedup_added = self.dedup.iter().collect();
        self.dirty.dedup_pruned_before = None;
        // The moves of the plan that failed still need their lone copies in the retry.
        let (orders, carts) = std::mem::take(&mut self.moved_in_flight);
        self.dirty.moved_orders.extend(orders);
        self.dirty.moved_carts.extend(carts);
    }

    /// Whether no fact changed since the last [`State::take_dirty`].
    pub fn nothing_dirty(&self) -> bool {
        let d = &self.dirty;
        d.customers.is_empty()
            && d.chunks.is_empty()
            && d.relayout.is_empty()
            && d.shrunk.is_empty()
            && d.orders.is_empty()
            && d.carts.is_empty()
            && d.dedup_added.is_empty()
            && d.dedup_pruned_before.is_none()
    }

    /// Entities a checkpoint would write now (customers, orders, carts), before the
    /// engines' own dirty customers are added.
    pub fn dirty_entities(&self) -> usize {
        let d = &self.dirty;
        let whole = d.relayout.union(&d.shrunk);
        let records = d.customers.len() + whole.filter(|c| !d.customers.contains(c)).count();
        records + d.chunks.len() + d.orders.len() + d.carts.len()
    }
}
