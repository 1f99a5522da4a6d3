//! Checkpoint scheduling: the writer takes the dirty entities, encodes them a slice at a time
//! between its groups, and hands the encoded checkpoint to a background thread that writes it
//! (one checkpoint at a time); at shutdown it writes a last one when that is quick.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ledger::checkpoint::{Checkpoint, Encoder};

use super::thread::WriterThread;

/// Customers encoded per step: about a millisecond under the read lock, during which the
/// writer applies nothing (queries go on), instead of a whole checkpoint's seconds.
const ENCODE_SLICE: usize = 512;
/// Longest a busy writer encodes between two groups: what a group waits at most.
const ENCODE_MAX_PER_GROUP: Duration = Duration::from_millis(25);

/// The checkpoint being encoded, whether one is being written, and whether the last one
/// failed (the next then rewrites everything).
#[derive(Default)]
pub(super) struct Checkpointer {
    encoding: Option<Encoder>,
    busy: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
}

impl WriterThread {
    /// Takes the dirty entities for a checkpoint unless one is still being encoded or
    /// written.
    pub(super) fn start_checkpoint(&mut self) {
        if self.checkpointer.busy.load(Ordering::Acquire) || self.encoding() {
            return;
        }
        let mut db = self.shared.db.write();
        if self.checkpointer.failed.swap(false, Ordering::AcqRel) {
            db.mark_all_dirty();
        }
        if db.nothing_dirty()
            && self.shared.stats.checkpoint_seq.load(Ordering::Relaxed) == self.seq
        {
            return;
        }
        let plan = db.take_dirty();
        self.checkpointer.encoding = Some(db.facts().start_encoding(self.seq, plan));
        drop(db);
        self.encode_step();
    }

    /// Whether a checkpoint is being encoded.
    pub(super) fn encoding(&self) -> bool {
        self.checkpointer.encoding.is_some()
    }

    /// Encodes slices of the checkpoint in progress for about as long as the last group took
    /// to apply (at most [`ENCODE_MAX_PER_GROUP`]): under a steady load the writer splits its
    /// time between applying and encoding, so a checkpoint completes in seconds rather than
    /// waiting for the load to stop, and the log is trimmed.
    pub(super) fn encode_after_group(&mut self, group_took: Duration) {
        let budget = group_took.min(ENCODE_MAX_PER_GROUP);
        let started = Instant::now();
        while self.encoding() {
            self.encode_step();
            if started.elapsed() >= budget {
                break;
            }
        }
    }

    /// Encodes one slice of the checkpoint in progress, and hands it to the checkpoint thread
    /// once it is complete.
    pub(super) fn encode_step(&mut self) {
        let Some(mut enc) = self.checkpointer.encoding.take() else {
            return;
        };
        if self.shared.db.read().encode_some(&mut enc, ENCODE_SLICE) {
            self.write_in_background(enc.into_checkpoint());
        } else {
            self.checkpointer.encoding = Some(enc);
        }
    }

    fn write_in_background(&mut self, cp: Checkpoint) {
        self.checkpointer.busy.store(true, Ordering::Release);
        let store = self.store.clone();
        let busy = self.checkpointer.busy.clone();
        let failed = self.checkpointer.failed.clone();
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("ledger-checkpoint".into())
            .spawn(move || {
                let started = Instant::now();
                match store.write_checkpoint(&cp) {
                    Ok(()) => {
                        shared.stats.checkpoint_seq.store(cp.seq, Ordering::Relaxed);
                        let bytes = cp.bytes();
                        shared
                            .stats
                            .checkpoint_bytes
                            .fetch_add(bytes, Ordering::Relaxed);
                        tracing::debug!(
                            seq = cp.seq,
                            customers = cp.customers.len(),
                            orders = cp.orders.len(),
                            bytes,
                            ms = started.elapsed().as_millis() as u64,
                            "checkpoint written"
                        );
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "checkpoint failed; the next one rewrites everything");
                        failed.store(true, Ordering::Release);
                    }
                }
                busy.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start checkpoint thread");
            self.checkpointer.busy.store(false, Ordering::Release);
            self.checkpointer.failed.store(true, Ordering::Release);
        }
    }

    /// Writes the last checkpoint at shutdown, but only when it is quick: the WAL already holds
    /// every acknowledged fact, so a large checkpoint is left to the next start's replay
    /// rather than holding up the stop (systemd's stop timeout, an operator's patience).
    pub(super) fn final_checkpoint(&mut self) {
        // A checkpoint half encoded: finished here when that is quick (its entities are no
        // longer in the dirty set, so the one below would not write them).
        if let Some(mut enc) = self.checkpointer.encoding.take() {
            if enc.remaining() > FINAL_CHECKPOINT_MAX_ENTITIES {
                tracing::info!(
                    pending = enc.remaining(),
                    "a checkpoint is still being encoded; the next start replays the log"
                );
                return;
            }
            self.shared.db.read().encode_some(&mut enc, usize::MAX);
            self.write_in_background(enc.into_checkpoint());
        }
        let waited = Instant::now();
        while self.checkpointer.busy.load(Ordering::Acquire) {
            if waited.elapsed() > FINAL_CHECKPOINT_WAIT {
                tracing::info!(
                    "a checkpoint is still being written; the next start replays the log"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let cp = {
            let mut db = self.shared.db.write();
            if self.checkpointer.failed.load(Ordering::Acquire) {
                tracing::info!("the last checkpoint failed; the next start replays the log");
                return;
            }
            let pending =
                db.facts.dirty_entities() + db.audiences.dirty.len() + db.insights.dirty.len();
            if pending > FINAL_CHECKPOINT_MAX_ENTITIES {
                tracing::info!(
                    pending,
                    "many changes since the last checkpoint; the next start replays the log"
                );
                return;
            }
            db.take_checkpoint(self.seq)
        };
        match self.store.write_checkpoint(&cp) {
            Ok(()) => {
                self.shared
                    .stats
                    .checkpoint_seq
                    .store(cp.seq, Ordering::Relaxed);
                self.shared
                    .stats
                    .checkpoint_bytes
                    .fetch_add(cp.bytes(), Ordering::Relaxed);
                tracing::info!(seq = cp.seq, "final checkpoint written");
            }
            Err(e) => {
                tracing::error!(error = %e, "final checkpoint failed; the log will be replayed at start")
            }
        }
    }
}

/// Longest wait for a background checkpoint at shutdown.
const FINAL_CHECKPOINT_WAIT: Duration = Duration::from_secs(2);
/// Most dirty entities written synchronously at shutdown (~14 µs each in sled).
const FINAL_CHECKPOINT_MAX_ENTITIES: usize = 50_000;
