//! Start-up recovery: the checkpoint trees loaded into a [`State`], then the write-ahead log
//! replayed on top. Replay is exact even over a checkpoint partly newer than the log position
//! it records, because every entity is a join-semilattice (see [`crate::ledger::state`]).

use crate::ledger::customer_record::{decode_customer, RestoredCustomer};
use crate::ledger::order_chunks::{parse_chunk_key, ChunkLen, LayoutLoader};
use crate::ledger::records::{decode, decode_wal, key_from, CodecError};
use crate::ledger::state::State;
use crate::ledger::store::{corrupt, guarded, u64_from, Store, StoreError, META_CHECKPOINT};
use crate::ledger::wal::Wal;

/// What start-up recovered.
#[derive(Debug)]
pub struct Recovered {
    /// The state.
    pub state: State,
    /// Last WAL sequence on disk (0 if none).
    pub last_seq: u64,
    /// Sequence covered by the last completed checkpoint.
    pub checkpoint_seq: u64,
    /// WAL records replayed on top of the checkpoint.
    pub replayed: u64,
    /// Stored memberships and audience entries per customer, as of the checkpoint.
    pub customers: Vec<RestoredCustomer>,
    /// Last membership-change sequence written.
    pub last_change_seq: u64,
}

impl Store {
    /// Loads the checkpoint and replays the WAL after it. Refuses a store that recovers to less
    /// than the checkpoint its marker records (sled fell back to an older prefix of its log).
    pub fn recover(&self) -> Result<Recovered, StoreError> {
        self.recover_with(ChunkLen::default())
    }

    /// [`Store::recover`], cutting order lists into chunks of `chunking` (tests use short
    /// chunks; a store written with other chunks is rewritten in these).
    pub fn recover_with(&self, chunking: ChunkLen) -> Result<Recovered, StoreError> {
        let rec = guarded(&self.dir, "reading the stored state", || {
            self.recover_inner(chunking)
        })?;
        if rec.last_seq < self.marker.checkpoint_seq {
            return Err(StoreError::Damaged {
                path: self.dir.clone(),
                reason: format!(
                    "it recovers only up to write-ahead record {}, but checkpoint {} was completed: acknowledged events are missing",
                    rec.last_seq, self.marker.checkpoint_seq
                ),
            });
        }
        Ok(rec)
    }

    fn recover_inner(&self, chunking: ChunkLen) -> Result<Recovered, StoreError> {
        let mut state = State::default();
        state.order_chunk = chunking;
        let mut customers = Vec::new();
        let mut legacy = false;
        let mut layout = LayoutLoader::default();
        // Key order brings each customer's record before its chunks, in chunk order.
        for item in self.customers.iter() {
            let (k, v) = item?;
            if let Some(chunk) = parse_chunk_key(&k) {
                let (id, n) = chunk.map_err(|()| corrupt("customers", &k, CodecError::Empty))?;
                let orders = decode(&v).map_err(|e| corrupt("customers", &k, e))?;
                state.restore_chunk(id, n, orders, &mut layout);
                continue;
            }
            let (rec, old) = decode_customer(&v).map_err(|e| corrupt("customers", &k, e))?;
            legacy |= old;
            let id = String::from_utf8_lossy(&k);
            customers.push(state.restore_customer(&id, rec, &mut layout));
        }
        // Lone records join what the customer records brought (a copy left by a crash
        // mid-checkpoint is older, hence contained in the join).
        for item in self.orders.iter() {
            let (k, v) = item?;
            let key = key_from(&k).ok_or_else(|| corrupt("orders", &k, CodecError::Empty))?;
            let order = decode(&v).map_err(|e| corrupt("orders", &k, e))?;
            let slot = state.restore_order(key, order, &mut layout);
            state.stored_alone.orders.insert(slot);
        }
        for item in self.carts.iter() {
            let (k, v) = item?;
            let key = key_from(&k).ok_or_else(|| corrupt("carts", &k, CodecError::Empty))?;
            state.restore_cart(key, decode(&v).map_err(|e| corrupt("carts", &k, e))?);
            state.stored_alone.carts.insert(key);
        }
        let relayout = layout.finish(&mut state);
        state.purge_erased();
        for item in self.dedup.iter() {
            let (k, v) = item?;
            if k.len() != 24 || v.len() % 16 != 0 {
                return Err(corrupt("dedup", &k, CodecError::Empty));
            }
            let newest = u64_from(&k[..8]) as i64;
            for id in v.chunks_exact(16) {
                if let Some(key) = key_from(id) {
                    // The chunk's newest second: retention may keep an id slightly longer.
                    state.dedup.insert(key, newest);
                }
            }
        }
        // Purging drops what a crash mid-checkpoint left in stored records: those customers'
        // lists now differ from what is stored, so they are written whole (as every shrunk
        // customer is), after the records that carry what they drop.
        let purged = std::mem::take(&mut state.dirty.shrunk);
        state.dirty = Default::default();
        state.dirty.relayout = relayout;
        state.dirty.shrunk = purged;
        state.touched.clear();
        if legacy {
            // Version-1 customer records: rewrite everything once in the new layout; every
            // lone record that a customer record now carries is then deleted.
            state.mark_all_dirty();
        }

        let checkpoint_seq = self.meta.get(META_CHECKPOINT)?.map_or(0, |v| u64_from(&v));
        let mut last_seq = checkpoint_seq;
        let mut replayed = 0;
        let now_secs =
            crate::clock::Clock::now(&crate::clock::SystemClock) / crate::clock::NANOS_PER_SEC;
        let mut wal = self.wal.lock();
        wal.replay(checkpoint_seq, |seq, v| -> Result<(), StoreError> {
            let facts = decode_wal(v).map_err(|source| StoreError::CorruptWal { seq, source })?;
            // The record's facts are durable; remember their ids as seen at replay time.
            for f in &facts {
                state.apply(f);
            }
            for f in &facts {
                state.remember(crate::ledger::state::key_of(&f.event_id), now_secs);
            }
            last_seq = seq;
            replayed += 1;
            Ok(())
        })?;
        wal.continue_after(last_seq);
        drop(wal);
        // Segments at or below the checkpoint are left over from a crash mid-trim.
        Wal::trim(&self.wal_dir, checkpoint_seq, self.fsync)?;
        let last_change_seq = self.changes.last()?.map_or(0, |(k, _)| u64_from(&k));
        Ok(Recovered {
            state,
            last_seq,
            checkpoint_seq,
            replayed,
            customers,
            last_change_seq,
        })
    }
}
