//! The writer thread: group commit, ticks, reloads of the audience rules, the change log and
//! pruning.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLockWriteGuard;
use tokio::sync::mpsc;

use super::checkpointer::Checkpointer;
use super::{heartbeat, sizes, Command, Db, Outcome, Reply, Shared, WriteError, WriterOptions};
use crate::audience::memberships::Change;
use crate::audience::params::AudienceParams;
use crate::clock::{SharedClock, NANOS_PER_SEC};
use crate::ledger::facts::Fact;
use crate::ledger::records::{self, encode, ChangeRecord};
use crate::ledger::state::key_of;
use crate::ledger::store::Store;
use crate::money::CurrencyTable;

/// Facts applied between two chances for waiting queries to take the read lock.
const APPLY_SLICE: usize = 1024;
/// Customers whose outcome counters are refreshed between two such chances.
const FLUSH_STEP: usize = 4096;

/// What the writer thread owns besides the shared state.
pub(super) struct WriterThread {
    pub(super) store: Store,
    pub(super) shared: Arc<Shared>,
    pub(super) clock: SharedClock,
    pub(super) opts: WriterOptions,
    /// Last WAL sequence written.
    pub(super) seq: u64,
    /// Last change-log sequence written.
    pub(super) change_seq: u64,
    pub(super) checkpointer: Checkpointer,
    pub(super) last_prune: Option<Instant>,
    pub(super) last_checkpoint: Instant,
}

impl WriterThread {
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            // While a checkpoint is being encoded, an idle writer encodes it; a busy one
            // encodes a slice after each group.
            let first = if self.encoding() {
                match rx.try_recv() {
                    Ok(cmd) => cmd,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        self.encode_step();
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.blocking_recv() {
                    Some(cmd) => cmd,
                    None => break,
                }
            };
            heartbeat::beat(&self.shared.stats.last_beat);
            let mut group: Vec<(Vec<(u32, Fact)>, Reply)> = Vec::new();
            let mut events = 0usize;
            let mut tick = false;
            let mut tick_replies = Vec::new();
            let mut shutdown = None;
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Command::Submit { facts, reply } => {
                        events += facts.len();
                        group.push((facts, reply));
                    }
                    Command::Tick { reply } => {
                        tick = true;
                        tick_replies.extend(reply);
                    }
                    Command::Heartbeat => {}
                    Command::Reconfigure {
                        params,
                        currencies,
                        reply,
                    } => {
                        // Commit what is queued under the old rules first, then switch.
                        if !group.is_empty() {
                            self.commit(std::mem::take(&mut group));
                        }
                        self.reconfigure(*params, currencies);
                        let _ = reply.send(());
                    }
                    Command::Shutdown { reply } => {
                        shutdown = Some(reply);
                        break;
                    }
                }
                if events < self.opts.group_commit_max_events {
                    next = rx.try_recv().ok();
                }
            }
            if !group.is_empty() {
                let started = Instant::now();
                self.commit(group);
                self.encode_after_group(started.elapsed());
            }
            if let Some(reply) = shutdown {
                rx.close();
                // Answer whatever was queued behind the shutdown: not applied, retry elsewhere.
                while let Ok(cmd) = rx.try_recv() {
                    if let Command::Submit { reply, .. } = cmd {
                        let _ = reply.send(Err(WriteError::Stopped));
                    }
                }
                self.final_checkpoint();
                let _ = reply.send(());
                return;
            }
            if tick {
                self.apply_due();
                self.sample_sizes();
                for r in tick_replies {
                    let _ = r.send(());
                }
                if self.last_checkpoint.elapsed() >= self.opts.checkpoint_interval {
                    self.last_checkpoint = Instant::now();
                    self.maybe_prune();
                    self.start_checkpoint();
                }
            }
        }
        self.final_checkpoint();
    }

    /// One group commit: classify duplicates, persist, apply, answer.
    fn commit(&mut self, group: Vec<(Vec<(u32, Fact)>, Reply)>) {
        let now_secs = self.clock.now() / NANOS_PER_SEC;
        let mut fresh: Vec<Fact> = Vec::new();
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        // Each id is remembered as it is classified: one probe of the seen set per event
        // (a check now and an insert at apply were two random reads of a table that holds
        // tens of millions of ids during an import), and duplicates within the group are
        // caught by the same probe. Undone below if the WAL append fails.
        let remembered_from = {
            let mut db = self.shared.db.write();
            let mark = db.facts.dirty.dedup_added.len();
            let mut since_bump = 0;
            for (facts, reply) in group {
                let mut out = Outcome::default();
                for (idx, fact) in facts {
                    if db.facts.remember(key_of(&fact.event_id), now_secs) {
                        out.applied += 1;
                        fresh.push(fact);
                    } else {
                        out.duplicates.push(idx);
                    }
                    since_bump += 1;
                    if since_bump == APPLY_SLICE {
                        since_bump = 0;
                        RwLockWriteGuard::bump(&mut db);
                    }
                }
                outcomes.push(out);
                replies.push(reply);
            }
            mark
        };
        if !fresh.is_empty() {
            let records = records::encode_wal(&fresh);
            let appending = Instant::now();
            match self.store.append_wal(self.seq + 1, &records) {
                Ok(last) => {
                    metrics::histogram!(crate::metric_names::WAL_APPEND_DURATION)
                        .record(appending.elapsed().as_secs_f64());
                    self.seq = last;
                    // Durable but not applied: a restart must replay it.
                    crate::failpoint::crash_point!("ledger_after_wal_sync");
                }
                Err(e) => {
                    tracing::error!(error = %e, "write-ahead log append failed; batches refused");
                    // Not durable, so not seen: the client's retry must apply them.
                    self.shared.db.write().facts.forget_since(remembered_from);
                    for reply in replies {
                        let _ = reply.send(Err(WriteError::Persist(e.to_string())));
                    }
                    return;
                }
            }
            let now = self.clock.now();
            let mut db = self.shared.db.write();
            // A group can hold 20,000 facts; applying them in slices, each with its audience
            // updates, and letting waiting queries in between keeps a query's wait short.
            // Every fact here is durable already, so a query may see any slice boundary.
            for slice in fresh.chunks(APPLY_SLICE) {
                let Db {
                    facts,
                    audiences,
                    insights,
                } = &mut *db;
                let known = facts.customers.len() as u32;
                for f in slice {
                    facts.apply(f);
                }
                let touched: Vec<u32> = std::mem::take(&mut facts.touched).into_iter().collect();
                let pending_before = audiences.pending.len();
                for &c in &touched {
                    audiences.update(facts, c, now);
                }
                insights.observe_since(facts, audiences, &touched, pending_before);
                // Profile and consent changes matter to destinations even without a
                // membership change (new identifiers, withdrawn consent).
                self.opts.feed.mark(&touched);
                // New customers too: a fact about an erased customer touches nobody, but a
                // query must find the customer it created.
                let new = known..facts.customers.len() as u32;
                let answers = &self.shared.answers;
                answers.publish(facts, audiences, touched.iter().copied().chain(new));
                RwLockWriteGuard::bump(&mut db);
            }
            drop(db);
            self.log_changes();
        }
        // Applied but not acknowledged: the client resends, and must see duplicates.
        crate::failpoint::crash_point!("ledger_before_ack");
        let stats = &self.shared.stats;
        stats.wal_seq.store(self.seq, Ordering::Relaxed);
        stats.groups.fetch_add(1, Ordering::Relaxed);
        for (out, reply) in outcomes.into_iter().zip(replies) {
            stats
                .applied
                .fetch_add(u64::from(out.applied), Ordering::Relaxed);
            stats
                .duplicates
                .fetch_add(out.duplicates.len() as u64, Ordering::Relaxed);
            let _ = reply.send(Ok(out));
        }
    }

    fn reconfigure(&mut self, params: AudienceParams, currencies: Arc<CurrencyTable>) {
        let now = self.clock.now();
        let started = Instant::now();
        let held_changed = {
            let mut db = self.shared.db.write();
            let Db {
                facts,
                audiences,
                insights,
            } = &mut *db;
            audiences.reconfigure(params.clone(), currencies.clone(), facts, now);
            insights.observe(facts, audiences, &[]);
            insights.reconfigure(&params, currencies.clone(), facts, audiences, now);
            // Names, holdouts and memberships may all have moved.
            self.shared.answers.publish_all(facts, audiences);
            std::mem::take(&mut audiences.held_changed)
        };
        // Customers who joined or left a holdout: destinations remove or add them.
        self.opts.feed.mark(&held_changed);
        self.opts.audiences = params;
        self.opts.currencies = currencies;
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "audiences recomputed under the reloaded rules"
        );
        self.log_changes();
    }

    /// Applies the time-driven membership changes that are due.
    fn apply_due(&mut self) {
        let now = self.clock.now();
        {
            let mut db = self.shared.db.write();
            let Db {
                facts,
                audiences,
                insights,
            } = &mut *db;
            audiences.tick(facts, now);
            insights.observe(facts, audiences, &[]);
            // Refresh the outcome counters in steps, letting waiting queries in between.
            loop {
                let Db {
                    facts,
                    audiences,
                    insights,
                } = &mut *db;
                if insights.flush_some(facts, audiences, now, FLUSH_STEP) {
                    break;
                }
                RwLockWriteGuard::bump(&mut db);
            }
        }
        self.log_changes();
    }

    /// Records every audience's size when a sample is due.
    fn sample_sizes(&self) {
        let now = self.clock.now();
        let history = &self.shared.sizes;
        if !history.due(now) {
            return;
        }
        let sizes = sizes::measure(&self.shared.db.read().audiences);
        if let Err(e) = history.record(sizes::SizeSample { at: now, sizes }) {
            tracing::warn!(error = %e, "recording audience sizes failed; the size chart has a gap");
        }
    }

    /// Writes pending membership changes to the change log, in order.
    pub(super) fn log_changes(&mut self) {
        let pending: Vec<Change> = std::mem::take(&mut self.shared.db.write().audiences.pending);
        if pending.is_empty() {
            return;
        }
        let records: Vec<ChangeRecord> = {
            let db = self.shared.db.read();
            let customers = pending.iter().map(|c| c.customer);
            self.shared
                .answers
                .publish(&db.facts, &db.audiences, customers);
            pending
                .iter()
                .map(|c| ChangeRecord {
                    audience: c.audience.index() as u8,
                    customer: db.facts.customers[c.customer as usize].id.clone(),
                    added: c.added,
                    at: c.at,
                })
                .collect()
        };
        self.shared
            .stats
            .membership_changes
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        let customers: Vec<u32> = pending.iter().map(|c| c.customer).collect();
        self.opts.feed.mark(&customers);
        self.change_seq += 1;
        if let Err(e) = self
            .store
            .append_changes(self.change_seq, &encode(&records))
        {
            tracing::error!(error = %e, "membership change log append failed; the next start-up recompute recovers it");
        }
    }

    fn maybe_prune(&mut self) {
        if self
            .last_prune
            .is_some_and(|t| t.elapsed() < Duration::from_secs(3600))
        {
            return;
        }
        self.last_prune = Some(Instant::now());
        let retention = i64::try_from(self.opts.dedup_retention.as_secs()).unwrap_or(i64::MAX);
        let cutoff = (self.clock.now() / NANOS_PER_SEC).saturating_sub(retention);
        let pruned = self.shared.db.write().facts.prune_dedup(cutoff);
        if pruned > 0 {
            tracing::info!(pruned, "forgot event ids past the dedup retention");
        }
        let keep = i64::try_from(self.opts.change_log_retention.as_nanos()).unwrap_or(i64::MAX);
        match self
            .store
            .prune_changes(self.clock.now().saturating_sub(keep))
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "dropped change-log records past retention"),
            Err(e) => tracing::warn!(error = %e, "change-log pruning failed; retried in an hour"),
        }
    }
}
