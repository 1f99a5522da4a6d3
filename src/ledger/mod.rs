//! The ledger: the single writer of all customer facts and audience memberships.
//!
//! One thread owns every mutation. It drains whatever ingest batches are queued (group
//! commit), writes their new facts to the write-ahead log in sled, flushes and fdatasyncs
//! once, applies them to the in-memory [`State`], re-evaluates the touched customers'
//! audiences, and only then answers each batch. On every tick it applies the time-driven
//! membership changes that are due. A background thread checkpoints dirty entities to their
//! trees and trims the log.

pub mod facts;
pub mod heartbeat;
pub mod marker;
pub mod orders;
pub mod records;
pub mod seen;
pub mod sizes;
pub mod state;
pub mod store;
pub mod wal;

use rustc_hash::FxHashSet as HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::{mpsc, oneshot};

use crate::audience::engine::{Audiences, Change};
use crate::audience::params::AudienceParams;
use crate::clock::{SharedClock, NANOS_PER_SEC};
use crate::config::Config;
use crate::ingest::currency::CurrencyTable;
use crate::insight::Insights;
use facts::Fact;
use records::{
    encode, encode_customer, key_bytes, CartsView, ChangeRecord, CustomerRecordView, OrdersView,
};
use state::{key_of, Key, OrderSlot, State};
use store::{Checkpoint, Store, StoreError};

/// Why a submission was not made durable. The client may retry: nothing was applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    /// The ledger is shutting down or has stopped.
    #[error("the ledger is not running")]
    Stopped,
    /// Writing the write-ahead log failed.
    #[error("could not persist the batch: {0}")]
    Persist(String),
}

/// The outcome of one submission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Facts newly applied.
    pub applied: u32,
    /// Submission-local indices of facts whose event id was seen before.
    pub duplicates: Vec<u32>,
}

/// Counters for status and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Last durable WAL sequence.
    pub wal_seq: AtomicU64,
    /// Sequence covered by the last completed checkpoint.
    pub checkpoint_seq: AtomicU64,
    /// Events applied since start.
    pub applied: AtomicU64,
    /// Duplicates since start.
    pub duplicates: AtomicU64,
    /// Rejected events since start (counted by ingest).
    pub rejected: AtomicU64,
    /// Group commits since start.
    pub groups: AtomicU64,
    /// Membership changes since start.
    pub membership_changes: AtomicU64,
    /// When the writer last went round its loop ([`heartbeat::now_ms`]); the watchdog's proof
    /// of life.
    pub last_beat: AtomicI64,
}

/// What one checkpoint writes, decided under the write lock by [`Db::take_dirty`].
#[derive(Debug, Default)]
pub struct DirtyPlan {
    /// Customers whose record is rewritten (with their orders and carts).
    customers: HashSet<u32>,
    /// Of those, the ones whose record drops an order or cart: written last.
    shrunk: HashSet<u32>,
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

/// Facts applied between two chances for waiting queries to take the read lock.
const APPLY_SLICE: usize = 1024;
/// Customers whose outcome counters are refreshed between two such chances.
const FLUSH_STEP: usize = 4096;

/// Everything the writer owns: the facts and what is derived from them.
pub struct Db {
    /// Customer facts.
    pub facts: State,
    /// Audience memberships.
    pub audiences: Audiences,
    /// Audience entries, their outcomes, retention counters.
    pub insights: Insights,
}

impl Db {
    /// Takes the dirty set and decides where each dirty entity is written (the cheap part,
    /// under the write lock); [`Db::encode_checkpoint`] then serializes it under a read
    /// lock, so queries go on while it runs.
    ///
    /// An order or cart goes into the record of every customer it belongs to, so those
    /// customers are rewritten; one that belongs to nobody (a refund before its order, a
    /// guest cart) is written on its own, and its lone copy is removed once a customer's
    /// record carries it.
    pub fn take_dirty(&mut self) -> DirtyPlan {
        let dirty = std::mem::take(&mut self.facts.dirty);
        let facts = &mut self.facts;
        let mut plan = DirtyPlan {
            customers: dirty.customers,
            shrunk: dirty.shrunk,
            dedup_added: dirty.dedup_added,
            dedup_pruned_before: dirty.dedup_pruned_before,
            ..DirtyPlan::default()
        };
        plan.customers.extend(self.audiences.dirty.drain());
        plan.customers.extend(self.insights.dirty.drain());
        for s in dirty.orders {
            if facts.orders.is_placed(s) {
                plan.customers
                    .extend(facts.orders.placements(s).map(|p| p.customer));
                // A moved order is written alone before the records, removed after them.
                let moved = dirty.moved_orders.contains(&s);
                if moved {
                    plan.alone_orders.push(s);
                }
                if facts.stored_alone.orders.remove(&s) || moved {
                    plan.orders_removed.push(facts.orders.key(s));
                }
            } else {
                facts.stored_alone.orders.insert(s);
                plan.alone_orders.push(s);
            }
        }
        for k in dirty.carts {
            let Some(cart) = facts.carts.get(&k) else {
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
                if facts.stored_alone.carts.remove(&k) || moved {
                    plan.carts_removed.push(k);
                }
            } else {
                facts.stored_alone.carts.insert(k);
                plan.alone_carts.push(k);
            }
        }
        facts.moved_in_flight = (dirty.moved_orders, dirty.moved_carts);
        plan
    }

    /// Serializes a plan made by [`Db::take_dirty`] as a checkpoint for WAL position `seq`.
    /// Only the writer thread mutates the state, and it is the one calling this, so the
    /// state cannot move underneath.
    pub fn encode_checkpoint(&self, seq: u64, plan: DirtyPlan) -> Checkpoint {
        let facts = &self.facts;
        let record = |c: u32| {
            let cust = &facts.customers[c as usize];
            let rec = CustomerRecordView {
                erased_at: cust.erased_at,
                profile: &cust.profile,
                memberships: self.audiences.record_view(c),
                entries: self.insights.entries(c),
                orders: OrdersView {
                    state: facts,
                    slots: &cust.orders,
                },
                carts: CartsView {
                    state: facts,
                    keys: &cust.carts,
                },
            };
            (cust.id.clone(), encode_customer(&rec))
        };
        let (last, first): (Vec<u32>, Vec<u32>) = plan
            .customers
            .into_iter()
            .partition(|c| plan.shrunk.contains(c));
        let customers = first.into_iter().map(record).collect();
        let customers_last = last.into_iter().map(record).collect();
        let orders = plan
            .alone_orders
            .into_iter()
            .map(|s| (key_bytes(facts.orders.key(s)), encode(&facts.order_view(s))))
            .collect();
        let carts = plan
            .alone_carts
            .into_iter()
            .filter_map(|k| Some((key_bytes(k), encode(&facts.cart_view(facts.carts.get(&k)?)))))
            .collect();
        Checkpoint {
            seq,
            customers,
            customers_last,
            orders,
            carts,
            orders_removed: plan.orders_removed.into_iter().map(key_bytes).collect(),
            carts_removed: plan.carts_removed.into_iter().map(key_bytes).collect(),
            dedup_added: plan.dedup_added,
            dedup_pruned_before: plan.dedup_pruned_before,
        }
    }

    /// Takes and encodes the dirty set in one step (tests and tools; the writer splits it).
    pub fn take_checkpoint(&mut self, seq: u64) -> Checkpoint {
        let plan = self.take_dirty();
        self.encode_checkpoint(seq, plan)
    }

    /// Marks everything dirty, so the next checkpoint rewrites all of it.
    pub fn mark_all_dirty(&mut self) {
        self.facts.mark_all_dirty();
    }

    fn nothing_dirty(&self) -> bool {
        let d = &self.facts.dirty;
        d.customers.is_empty()
            && d.orders.is_empty()
            && d.carts.is_empty()
            && d.dedup_added.is_empty()
            && d.dedup_pruned_before.is_none()
            && self.audiences.dirty.is_empty()
            && self.insights.dirty.is_empty()
    }
}

type Reply = oneshot::Sender<Result<Outcome, LedgerError>>;

enum Command {
    Submit {
        facts: Vec<(u32, Fact)>,
        reply: Reply,
    },
    Tick {
        reply: Option<oneshot::Sender<()>>,
    },
    Reconfigure {
        params: Box<AudienceParams>,
        currencies: Arc<CurrencyTable>,
        reply: oneshot::Sender<()>,
    },
    /// Only makes the writer beat (see [`heartbeat`]).
    Heartbeat,
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

struct Shared {
    db: RwLock<Db>,
    stats: Stats,
    sizes: sizes::SizeHistory,
}

/// A handle to the ledger; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

/// What the writer needs from the config.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// Most events in one group commit.
    pub group_commit_max_events: usize,
    /// Checkpoint period.
    pub checkpoint_interval: Duration,
    /// Dedup retention.
    pub dedup_retention: Duration,
    /// Change-log retention.
    pub change_log_retention: Duration,
    /// How often due memberships are applied.
    pub tick: Duration,
    /// How often audience sizes are recorded.
    pub size_sample_interval: Duration,
    /// How long size samples are kept.
    pub size_history_retention: Duration,
    /// Audience parameters.
    pub audiences: AudienceParams,
    /// Revenue conversion.
    pub currencies: Arc<CurrencyTable>,
    /// Where changed customers are reported to the sync engine.
    pub sync_feed: crate::sync::SyncFeed,
}

impl LedgerOptions {
    /// Options from a validated config.
    pub fn from_config(c: &Config) -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            group_commit_max_events: c.storage.group_commit_max_events,
            checkpoint_interval: c.storage.checkpoint_interval,
            dedup_retention: c.storage.dedup_retention,
            change_log_retention: c.storage.change_log_retention,
            tick: c.audiences.tick,
            size_sample_interval: c.storage.size_sample_interval,
            size_history_retention: c.storage.size_history_retention,
            audiences: AudienceParams::from_config(&c.audiences)?,
            currencies: Arc::new(CurrencyTable::from_config(&c.revenue)?),
            sync_feed: crate::sync::SyncFeed::default(),
        })
    }
}

/// Queued submissions before senders wait (back-pressure).
const QUEUE_DEPTH: usize = 64;

impl Ledger {
    /// Recovers the state from `store` and starts the writer. Must run inside a tokio runtime
    /// (the checkpoint ticker is a task). Returns the handle and the writer thread to join.
    pub fn start(
        store: Store,
        opts: LedgerOptions,
        clock: SharedClock,
    ) -> Result<(Self, JoinHandle<()>), StoreError> {
        let rec = store.recover()?;
        tracing::info!(
            customers = rec.state.customers.len(),
            orders = rec.state.orders.len(),
            carts = rec.state.carts.len(),
            checkpoint_seq = rec.checkpoint_seq,
            replayed_wal_records = rec.replayed,
            "store recovered"
        );
        // Memberships are derived: recompute all under the rules in force now, and record
        // how they differ from what was stored (time passed, rules changed, a crash).
        let started = Instant::now();
        let now = clock.now();
        let mut audiences = Audiences::new(opts.audiences.clone(), opts.currencies.clone());
        audiences.set_holdout_salt(store.holdout_salt()?);
        let mut insights = Insights::new(&opts.audiences, opts.currencies.clone());
        for r in rec.customers {
            let erased_at = rec.state.customers[r.customer as usize].erased_at;
            insights.restore(r.customer, r.entries, r.recorded_erased_at, erased_at);
            audiences.restore(r.customer, r.memberships);
        }
        audiences.recompute_all(&rec.state, now);
        audiences.held_changed.clear();
        tracing::info!(
            customers = rec.state.customers.len(),
            changes = audiences.pending.len(),
            ms = started.elapsed().as_millis() as u64,
            "audiences recomputed"
        );
        let sizes = sizes::SizeHistory::open(
            &store,
            opts.size_sample_interval,
            opts.size_history_retention,
        )?;
        let started = Instant::now();
        insights.observe(&rec.state, &audiences, &[]);
        insights.rebuild(&rec.state, &audiences, now);
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "outcome and retention counters rebuilt"
        );
        let shared = Arc::new(Shared {
            db: RwLock::new(Db {
                facts: rec.state,
                audiences,
                insights,
            }),
            stats: Stats::default(),
            sizes,
        });
        shared.stats.wal_seq.store(rec.last_seq, Ordering::Relaxed);
        heartbeat::beat(&shared.stats.last_beat);
        shared
            .stats
            .checkpoint_seq
            .store(rec.checkpoint_seq, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let ticker = tx.clone();
        let period = opts.tick.min(opts.checkpoint_interval);
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(period);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                if ticker.send(Command::Tick { reply: None }).await.is_err() {
                    break;
                }
            }
        });
        let mut writer = Writer {
            store,
            shared: shared.clone(),
            clock,
            opts,
            seq: rec.last_seq,
            change_seq: rec.last_change_seq,
            checkpointer: Checkpointer::default(),
            last_prune: None,
            last_checkpoint: Instant::now(),
        };
        writer.log_changes();
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Sync {
                path: "ledger-writer thread".into(),
                source: e,
            })?;
        Ok((Self { tx, shared }, handle))
    }

    /// Queues facts (with the caller's indices) and returns where the outcome will arrive.
    /// Waits while the queue is full: that is the back-pressure on fast clients.
    pub async fn enqueue(
        &self,
        facts: Vec<(u32, Fact)>,
    ) -> Result<oneshot::Receiver<Result<Outcome, LedgerError>>, LedgerError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Submit { facts, reply })
            .await
            .map_err(|_| LedgerError::Stopped)?;
        Ok(rx)
    }

    /// Submits facts and waits until they are durable and applied.
    pub async fn submit(&self, facts: Vec<(u32, Fact)>) -> Result<Outcome, LedgerError> {
        self.enqueue(facts)
            .await?
            .await
            .map_err(|_| LedgerError::Stopped)?
    }

    /// Writes a final checkpoint and stops the writer; later submissions fail with `Stopped`.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Applies the membership changes due by now and returns once they are visible
    /// (used after the manual clock moves).
    pub async fn tick_now(&self) -> Result<(), LedgerError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Tick { reply: Some(reply) })
            .await
            .map_err(|_| LedgerError::Stopped)?;
        rx.await.map_err(|_| LedgerError::Stopped)
    }

    /// Puts new audience rules in force (config reload) and returns once every membership was
    /// recomputed under them.
    pub async fn reconfigure(
        &self,
        params: AudienceParams,
        currencies: Arc<CurrencyTable>,
    ) -> Result<(), LedgerError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Reconfigure {
                params: Box::new(params),
                currencies,
                reply,
            })
            .await
            .map_err(|_| LedgerError::Stopped)?;
        rx.await.map_err(|_| LedgerError::Stopped)
    }

    /// Read access to facts and memberships (queries). Hold it briefly: the writer waits.
    pub fn read(&self) -> RwLockReadGuard<'_, Db> {
        self.shared.db.read()
    }

    /// Asks the writer to beat; never waits. A full queue means the writer is busy (and beats
    /// as it drains it) or wedged (and the beat stays old): either way nothing is lost.
    pub fn request_heartbeat(&self) {
        let _ = self.tx.try_send(Command::Heartbeat);
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Audience sizes over time.
    pub fn size_history(&self) -> &sizes::SizeHistory {
        &self.shared.sizes
    }
}

#[derive(Default)]
struct Checkpointer {
    busy: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
}

struct Writer {
    store: Store,
    shared: Arc<Shared>,
    clock: SharedClock,
    opts: LedgerOptions,
    seq: u64,
    change_seq: u64,
    checkpointer: Checkpointer,
    last_prune: Option<Instant>,
    last_checkpoint: Instant,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(first) = rx.blocking_recv() {
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
                self.commit(group);
            }
            if let Some(reply) = shutdown {
                rx.close();
                // Answer whatever was queued behind the shutdown: not applied, retry elsewhere.
                while let Ok(cmd) = rx.try_recv() {
                    if let Command::Submit { reply, .. } = cmd {
                        let _ = reply.send(Err(LedgerError::Stopped));
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
                    metrics::histogram!(crate::service::metrics::names::WAL_APPEND_DURATION)
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
                        let _ = reply.send(Err(LedgerError::Persist(e.to_string())));
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
                self.opts.sync_feed.mark(&touched);
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
            std::mem::take(&mut audiences.held_changed)
        };
        // Customers who joined or left a holdout: destinations remove or add them.
        self.opts.sync_feed.mark(&held_changed);
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
    fn log_changes(&mut self) {
        let pending: Vec<Change> = std::mem::take(&mut self.shared.db.write().audiences.pending);
        if pending.is_empty() {
            return;
        }
        let records: Vec<ChangeRecord> = {
            let db = self.shared.db.read();
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
        self.opts.sync_feed.mark(&customers);
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

    /// Hands the dirty entities to the checkpoint thread unless one is still running.
    fn start_checkpoint(&mut self) {
        if self.checkpointer.busy.load(Ordering::Acquire) {
            return;
        }
        let cp = {
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
            let db = RwLockWriteGuard::downgrade(db);
            db.encode_checkpoint(self.seq, plan)
        };
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
                        tracing::debug!(
                            seq = cp.seq,
                            customers = cp.customers.len(),
                            orders = cp.orders.len(),
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
    fn final_checkpoint(&mut self) {
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
            let d = &db.facts.dirty;
            let pending = d.customers.len()
                + d.orders.len()
                + d.carts.len()
                + db.audiences.dirty.len()
                + db.insights.dirty.len();
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

impl State {
    /// Marks every entity dirty, so the next checkpoint rewrites all of them.
    pub fn mark_all_dirty(&mut self) {
        self.dirty.customers = (0..self.customers.len() as u32).collect();
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
}
