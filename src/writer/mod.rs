//! The single writer: one thread owns every mutation of the facts and of what is derived
//! from them (audience memberships, insight counters), and publishes what changed.
//!
//! It drains whatever ingest batches are queued (group commit), writes their new facts to the
//! write-ahead log, applies them to the in-memory
//! [`State`](crate::ledger::state::State), re-evaluates the touched
//! customers' audiences, and only then answers each batch. On every tick it applies the
//! time-driven membership changes that are due. A background thread checkpoints dirty
//! entities to the store and trims the log. Changed customers go to the [`ChangeFeed`], which
//! destinations subscribe to.
//!
//! Readers (queries, sync, the status page, metrics) get a [`Writer`] handle: they read
//! through its methods and the short-lived [`Reader`] it lends, never the state's fields.
//! Membership checks read the [`answers::Answers`] the writer publishes, which never wait
//! for it.

pub mod answers;
mod checkpointer;
pub mod db;
pub mod feed;
pub mod heartbeat;
pub mod sizes;
mod thread;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot};

use crate::audience::memberships::Audiences;
use crate::audience::params::AudienceParams;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::insight::counters::Published;
use crate::insight::Insights;
use crate::ledger::facts::Fact;
use crate::ledger::store::{Store, StoreError};
use crate::money::CurrencyTable;
pub use db::{Db, Reader};
pub use feed::ChangeFeed;
use thread::WriterThread;

/// Why a submission was not made durable. The client may retry: nothing was applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The writer is shutting down or has stopped.
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
    /// Bytes of keys and values written by completed checkpoints.
    pub checkpoint_bytes: AtomicU64,
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

type Reply = oneshot::Sender<Result<Outcome, WriteError>>;

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

/// What the handles and the writer thread share.
struct Shared {
    db: RwLock<Db>,
    stats: Stats,
    sizes: sizes::SizeHistory,
    answers: answers::Answers,
}

/// A handle to the writer and the state it owns; cheap to clone (an `Arc` of the shared
/// state and the sending end of the writer's queue). Writes go through the queue to the one
/// writer thread; reads take the shared read lock through [`Writer::read`].
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

/// What the writer needs from the config.
#[derive(Debug, Clone)]
pub struct WriterOptions {
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
    /// Where the writer publishes changed customers (destinations subscribe to it).
    pub feed: ChangeFeed,
}

impl WriterOptions {
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
            feed: ChangeFeed::default(),
        })
    }
}

/// Queued submissions before senders wait (back-pressure).
const QUEUE_DEPTH: usize = 64;

impl Writer {
    /// Recovers the state from `store` and starts the writer. Must run inside a tokio runtime
    /// (the checkpoint ticker is a task). Returns the handle and the writer thread to join.
    pub fn start(
        store: Store,
        opts: WriterOptions,
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
            answers: answers::Answers::default(),
        });
        {
            let db = shared.db.read();
            shared.answers.publish_all(&db.facts, &db.audiences);
        }
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
        let mut writer = WriterThread {
            store,
            shared: shared.clone(),
            clock,
            opts,
            seq: rec.last_seq,
            change_seq: rec.last_change_seq,
            checkpointer: Default::default(),
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
    ) -> Result<oneshot::Receiver<Result<Outcome, WriteError>>, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Submit { facts, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        Ok(rx)
    }

    /// Submits facts and waits until they are durable and applied.
    pub async fn submit(&self, facts: Vec<(u32, Fact)>) -> Result<Outcome, WriteError> {
        self.enqueue(facts)
            .await?
            .await
            .map_err(|_| WriteError::Stopped)?
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
    pub async fn tick_now(&self) -> Result<(), WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Tick { reply: Some(reply) })
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await.map_err(|_| WriteError::Stopped)
    }

    /// Puts new audience rules in force (config reload) and returns once every membership was
    /// recomputed under them.
    pub async fn reconfigure(
        &self,
        params: AudienceParams,
        currencies: Arc<CurrencyTable>,
    ) -> Result<(), WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Reconfigure {
                params: Box::new(params),
                currencies,
                reply,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await.map_err(|_| WriteError::Stopped)
    }

    /// Read access to facts and memberships (queries). Hold it briefly: the writer waits.
    pub fn read(&self) -> Reader<'_> {
        Reader::new(self.shared.db.read())
    }

    /// The membership answers as of the writer's last published change; reading them never
    /// waits for the writer.
    pub fn answers(&self) -> &answers::Answers {
        &self.shared.answers
    }

    /// The insight counters published at the last tick (one `Arc` clone under a brief read
    /// lock).
    pub fn published_insights(&self) -> Arc<Published> {
        self.shared.db.read().insights.published()
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
