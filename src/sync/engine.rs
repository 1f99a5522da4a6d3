//! One worker per destination: cycles of desired − confirmed, paced, retried, confirmed.

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::confirmed::Confirmed;
use super::dest::{Destination, ListRef, PushError, RequestState};
use super::member::RemoteMember;
use super::DirtySet;
use crate::clock::{Nanos, SharedClock};
use crate::ledger::state::CustomerIdx;
use crate::ledger::Ledger;

/// Attempts for a transient failure before the batch waits for the next cycle.
const MAX_TRANSIENT_ATTEMPTS: u32 = 6;
/// Longest backoff between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The sync state of one destination × audience, for `GetSyncStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListStatus {
    /// Eligible members, not held out, that should be on the list.
    pub desired: u64,
    /// Members the network confirmed.
    pub confirmed: u64,
    /// Adds found by the last cycle and not yet confirmed.
    pub pending_adds: u64,
    /// Removes found by the last cycle and not yet confirmed.
    pub pending_removes: u64,
    /// Last confirmed push.
    pub last_success_at: Option<Nanos>,
    /// Last error.
    pub last_error: String,
    /// What to do about it.
    pub advice: String,
    /// Parked on a permanent error until a resync.
    pub parked: bool,
    /// Members the network refused (fast-fail), kept aside until their identifiers change.
    pub set_aside: u64,
    /// The network's reported match-rate range, when it gives one (Google).
    pub match_rate: String,
    /// The remote list id.
    pub list_id: String,
    /// While throttled: no request to this destination before this instant.
    pub throttled_until: Option<Nanos>,
}

/// Status of every destination × audience, shared with the admin API.
#[derive(Default)]
pub struct StatusBoard {
    lists: Mutex<BTreeMap<(String, String), ListStatus>>,
    jobs: AtomicU64,
}

impl StatusBoard {
    /// A snapshot, sorted by destination then audience.
    pub fn snapshot(&self) -> Vec<((String, String), ListStatus)> {
        self.lists
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn update(&self, dest: &str, audience: &str, f: impl FnOnce(&mut ListStatus)) {
        let mut lists = self.lists.lock();
        f(lists
            .entry((dest.to_string(), audience.to_string()))
            .or_default());
    }

    fn next_job(&self) -> u64 {
        self.jobs.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// An operator's request to a worker.
#[derive(Debug, Clone)]
pub struct ResyncRequest {
    /// One audience, or all mapped ones.
    pub audience: Option<String>,
    /// Replace the remote list (true) or send the full delta (false).
    pub full: bool,
}

/// Handles to the running workers.
pub struct SyncEngine {
    workers: Mutex<Workers>,
    /// Status of every destination × audience.
    pub status: Arc<StatusBoard>,
    ledger: Ledger,
    clock: SharedClock,
}

/// One generation of workers (replaced whole by a config reload).
#[derive(Default)]
struct Workers {
    handles: Vec<(String, Vec<String>, mpsc::Sender<ResyncRequest>)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: Option<watch::Sender<bool>>,
}

/// Why a resync request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResyncError {
    /// No such destination.
    #[error("destination `{0}` not found")]
    UnknownDestination(String),
    /// The audience is not mapped to the destination(s).
    #[error("audience `{0}` is not mapped to the destination")]
    UnknownAudience(String),
}

/// Everything a worker needs about its destination.
pub struct WorkerSpec {
    /// Destination name.
    pub name: String,
    /// The network client.
    pub dest: Box<dyn Destination>,
    /// The lists it maintains.
    pub lists: Vec<ListRef>,
    /// Requests per minute.
    pub quota_per_minute: u32,
    /// Gathering time before a push.
    pub linger: Duration,
    /// Full reconciliation period.
    pub reconcile_every: Duration,
    /// Async result polling period.
    pub poll_interval: Duration,
    /// Its confirmed ledger's tree, loaded when the worker starts (after any predecessor
    /// from before a config reload has stopped writing to it).
    pub confirmed: sled::Tree,
    /// Its dirty set.
    pub dirty: Arc<DirtySet>,
    /// Its accepted-but-unfinished requests (sled tree `outstanding.<name>`).
    pub outstanding: sled::Tree,
    /// Ids of the lists the daemon created (sled tree `lists.<name>`: audience → id).
    pub list_ids: sled::Tree,
}

impl SyncEngine {
    /// Starts one worker per destination. Each begins with a full reconciliation, which
    /// also repairs whatever a crash left between a push and its confirmation.
    pub fn start(specs: Vec<WorkerSpec>, ledger: Ledger, clock: SharedClock) -> Self {
        let engine = Self {
            workers: Mutex::new(Workers::default()),
            status: Arc::new(StatusBoard::default()),
            ledger,
            clock,
        };
        *engine.workers.lock() = engine.spawn(specs);
        engine
    }

    fn spawn(&self, specs: Vec<WorkerSpec>) -> Workers {
        let (stop, stopped) = watch::channel(false);
        let mut workers = Workers {
            stop: Some(stop),
            ..Workers::default()
        };
        for spec in specs {
            let (tx, rx) = mpsc::channel(16);
            workers.handles.push((
                spec.name.clone(),
                spec.lists.iter().map(|l| l.audience.clone()).collect(),
                tx,
            ));
            let quota = NonZeroU32::new(spec.quota_per_minute).unwrap_or(NonZeroU32::MIN);
            // Burst 1: requests are spread evenly, so no 60-second window ever sees more than
            // the quota, and a backlog uses it fully.
            let limiter =
                RateLimiter::direct(Quota::per_minute(quota).allow_burst(NonZeroU32::MIN));
            let outstanding = spec
                .outstanding
                .iter()
                .filter_map(|item| {
                    let (_, v) = item.ok()?;
                    crate::ledger::records::decode::<Outstanding>(&v).ok()
                })
                .collect();
            let ledger = self.ledger.clone();
            let clock = self.clock.clone();
            let status = self.status.clone();
            let stopped = stopped.clone();
            workers.tasks.push(tokio::spawn(async move {
                let confirmed = match Confirmed::load(spec.confirmed.clone()) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(destination = %spec.name, error = %e, "cannot load the confirmed ledger; destination not started");
                        return;
                    }
                };
                let worker = Worker {
                    spec,
                    confirmed,
                    ledger,
                    clock,
                    status,
                    limiter,
                    outstanding,
                    set_aside: Default::default(),
                    parked: HashSet::new(),
                };
                let span = tracing::info_span!("sync", destination = %worker.spec.name);
                worker.run(rx, stopped).instrument(span).await;
            }));
        }
        workers
    }

    /// Replaces every worker (config reload): the old ones stop between requests (a request
    /// cut short is simply sent again, adds and removes being idempotent), then the new ones
    /// start from their confirmed ledgers with a full comparison.
    pub async fn reload(&self, specs: Vec<WorkerSpec>) {
        let old = std::mem::take(&mut *self.workers.lock());
        if let Some(stop) = &old.stop {
            let _ = stop.send(true);
        }
        for task in old.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let keep: HashSet<(String, String)> = specs
            .iter()
            .flat_map(|s| s.lists.iter().map(|l| (s.name.clone(), l.audience.clone())))
            .collect();
        self.status.lists.lock().retain(|k, _| keep.contains(k));
        let new = self.spawn(specs);
        *self.workers.lock() = new;
    }

    /// Queues a resync; returns the job id.
    pub fn resync(
        &self,
        destination: Option<&str>,
        audience: Option<&str>,
        full: bool,
    ) -> Result<String, ResyncError> {
        let workers = self.workers.lock();
        let targets: Vec<_> = workers
            .handles
            .iter()
            .filter(|(n, _, _)| destination.is_none_or(|d| d == n))
            .collect();
        if targets.is_empty() {
            return Err(ResyncError::UnknownDestination(
                destination.unwrap_or_default().to_string(),
            ));
        }
        if let Some(a) = audience {
            if !targets
                .iter()
                .any(|(_, lists, _)| lists.iter().any(|l| l == a))
            {
                return Err(ResyncError::UnknownAudience(a.to_string()));
            }
        }
        for (_, _, tx) in targets {
            let _ = tx.try_send(ResyncRequest {
                audience: audience.map(str::to_string),
                full,
            });
        }
        Ok(format!("resync-{}", self.status.next_job()))
    }

    /// Stops the workers between requests (confirmations are never half-written).
    pub fn shutdown(&self) {
        if let Some(stop) = &self.workers.lock().stop {
            let _ = stop.send(true);
        }
    }
}

/// A Google request accepted but not yet final. Kept in the sled tree
/// `outstanding.<destination>` until final, so a restart still polls it and a late FAILED
/// still unconfirms its members.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Outstanding {
    request_id: String,
    audience: String,
    /// (customer id, added?, member) as confirmed when the request was accepted.
    entries: Vec<(Box<str>, bool, RemoteMember)>,
}

struct Worker {
    spec: WorkerSpec,
    confirmed: Confirmed,
    ledger: Ledger,
    clock: SharedClock,
    status: Arc<StatusBoard>,
    limiter: DefaultDirectRateLimiter,
    outstanding: Vec<Outstanding>,
    set_aside: HashSet<(String, RemoteMember)>,
    parked: HashSet<String>,
}

/// One pending operation.
struct Op {
    id: Box<str>,
    member: RemoteMember,
}

enum Stop {
    /// The batch could not be delivered now; try again next cycle.
    Later,
    /// Parked on a permanent error.
    Parked,
}

/// The `outcome` label of a request's result.
fn outcome<T>(r: &Result<T, PushError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(PushError::Throttled { .. }) => "throttled",
        Err(PushError::Transient { .. }) => "transient",
        Err(PushError::TokenExpired) => "token_expired",
        Err(PushError::MembersRefused { .. }) => "members_refused",
        Err(PushError::TooLarge) => "too_large",
        Err(PushError::SessionEnded { .. }) => "session_ended",
        Err(PushError::Permanent { .. }) => "permanent",
    }
}

/// Counts and times one request to a network.
fn record_request<T>(dest: &str, op: &'static str, started: Instant, r: &Result<T, PushError>) {
    use crate::service::metrics::names;
    metrics::counter!(names::SYNC_REQUESTS, "destination" => dest.to_string(), "op" => op, "outcome" => outcome(r))
        .increment(1);
    metrics::histogram!(names::SYNC_REQUEST_DURATION, "destination" => dest.to_string())
        .record(started.elapsed().as_secs_f64());
}

/// Records time spent waiting for the quota or a network's throttle.
fn record_wait(dest: &str, waited: Duration) {
    metrics::histogram!(crate::service::metrics::names::SYNC_RATE_LIMIT_WAIT, "destination" => dest.to_string())
        .record(waited.as_secs_f64());
}

/// Whether to send a failed request again, and after how long: throttling always (after the
/// network's hint, or backoff), transient failures and an expired token a bounded number of
/// times, anything else never.
fn retry_pause(e: &PushError, attempt: &mut u32) -> Option<Duration> {
    *attempt += 1;
    match e {
        PushError::Throttled { wait, .. } => Some(wait.unwrap_or_else(|| backoff(*attempt))),
        PushError::Transient { .. } | PushError::TokenExpired
            if *attempt <= MAX_TRANSIENT_ATTEMPTS =>
        {
            Some(backoff(*attempt))
        }
        _ => None,
    }
}

/// A network session id: positive and unique per ad account (the time in microseconds, plus
/// a random low part so two workers starting in the same microsecond differ).
fn new_session_id() -> u64 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1);
    (micros << 8 | rand::rng().random_range(0..256u64)) & (i64::MAX as u64)
}

fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(1u64 << attempt.min(6)).min(MAX_BACKOFF);
    // Full jitter: spread retries of many daemons over the interval.
    let ms = rand::rng().random_range(base.as_millis() as u64 / 2..=base.as_millis() as u64);
    Duration::from_millis(ms)
}

impl Worker {
    /// Waits for the quota (every request goes through here).
    async fn pace(&self) {
        let started = Instant::now();
        self.limiter.until_ready().await;
        record_wait(&self.spec.name, started.elapsed());
    }

    async fn run(
        mut self,
        mut requests: mpsc::Receiver<ResyncRequest>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut full = true;
        let mut replace: Option<ResyncRequest> = None;
        let mut last_reconcile = Instant::now();
        loop {
            if *stop.borrow() {
                return;
            }
            // Lists to create (at start, and after a resync unparked a failed creation).
            self.resolve_lists().await;
            if let Some(req) = replace.take() {
                self.replace(req).await;
            } else {
                self.cycle(full).await;
            }
            if full {
                last_reconcile = Instant::now();
            }
            full = false;
            self.poll_outstanding().await;
            let reconcile_at = last_reconcile + self.spec.reconcile_every;
            let poll = if self.outstanding.is_empty() {
                Duration::from_secs(3600)
            } else {
                self.spec.poll_interval
            };
            tokio::select! {
                _ = self.spec.dirty.notify.notified() => {
                    // Gather changes for the linger, unless a batch is already full.
                    let backlog = self.spec.dirty.customers.lock().len() as usize;
                    if backlog < self.spec.dest.max_batch() {
                        tokio::select! {
                            _ = tokio::time::sleep(self.spec.linger) => {}
                            _ = stop.changed() => return,
                        }
                    }
                }
                Some(req) = requests.recv() => {
                    match &req.audience {
                        Some(a) => { self.parked.remove(a); }
                        None => self.parked.clear(),
                    }
                    self.set_aside.retain(|(a, _)| req.audience.as_ref().is_some_and(|x| x != a));
                    for l in &self.spec.lists {
                        if req.audience.as_ref().is_none_or(|a| *a == l.audience) {
                            self.status.update(&self.spec.name, &l.audience, |s| {
                                s.parked = false;
                                s.last_error.clear();
                                s.advice.clear();
                                s.set_aside = 0;
                            });
                        }
                    }
                    if req.full { replace = Some(req); } else { full = true; }
                }
                _ = tokio::time::sleep_until(reconcile_at.into()) => full = true,
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Gives every list mapped with `create = true` its id: the one stored when the daemon
    /// created it, or a newly created one (stored at once, so it is created only once).
    async fn resolve_lists(&mut self) {
        if !self.spec.dest.has_list_ids() {
            return;
        }
        for i in 0..self.spec.lists.len() {
            if !self.spec.lists[i].list_id.is_empty()
                || self.parked.contains(&self.spec.lists[i].audience)
            {
                continue;
            }
            let audience = self.spec.lists[i].audience.clone();
            if let Ok(Some(id)) = self.spec.list_ids.get(audience.as_bytes()) {
                self.spec.lists[i].list_id = String::from_utf8_lossy(&id).into_owned();
                continue;
            }
            let mut attempt = 0;
            let created = loop {
                self.pace().await;
                let started = Instant::now();
                let r = self.spec.dest.create_list(&audience).await;
                record_request(&self.spec.name, "create_list", started, &r);
                match r {
                    Ok(id) => break Ok(id),
                    Err(e) => match retry_pause(&e, &mut attempt) {
                        Some(pause) => tokio::time::sleep(pause).await,
                        None => break Err(e),
                    },
                }
            };
            match created {
                Ok(id) => {
                    let stored = self
                        .spec
                        .list_ids
                        .insert(audience.as_bytes(), id.as_bytes())
                        .and_then(|_| self.spec.list_ids.flush());
                    if let Err(e) = stored {
                        tracing::error!(error = %e, "created list id not stored; it will be created again");
                    }
                    tracing::info!(%audience, list_id = %id, "remote list created");
                    self.spec.lists[i].list_id = id;
                }
                Err(e) => {
                    let list = self.spec.lists[i].clone();
                    self.park(&list, &e);
                }
            }
        }
    }

    /// Desired members of a list, for the customers considered.
    fn plan(
        &self,
        list: &ListRef,
        full: bool,
        dirty: &roaring::RoaringBitmap,
    ) -> (Vec<Op>, Vec<Op>, u64) {
        let db = self.ledger.read();
        let Some(a) = db.audiences.by_name(&list.audience) else {
            return (Vec::new(), Vec::new(), 0);
        };
        let members = db.audiences.members(a);
        let eligible = db.audiences.eligible();
        // Held-out members stay in the audience but are never pushed (insight::holdout).
        let held = db.audiences.holdout(a);
        let desired_count = members.intersection_len(eligible) - held.intersection_len(eligible);
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        let mut consider = |c: CustomerIdx| {
            let Some(cust) = db.facts.customers.get(c as usize) else {
                return;
            };
            let desired = if members.contains(c) && eligible.contains(c) && !held.contains(c) {
                RemoteMember::from_profile(&cust.profile)
            } else {
                None
            };
            let desired =
                desired.filter(|m| !self.set_aside.contains(&(list.audience.clone(), m.clone())));
            let confirmed = self.confirmed.get(&list.audience, &cust.id);
            if desired.as_ref() == confirmed {
                return;
            }
            if let Some(old) = confirmed {
                removes.push(Op {
                    id: cust.id.clone(),
                    member: old.clone(),
                });
            }
            if let Some(new) = desired {
                adds.push(Op {
                    id: cust.id.clone(),
                    member: new,
                });
            }
        };
        if full {
            let mut seen = roaring::RoaringBitmap::new();
            for c in members {
                seen.insert(c);
                consider(c);
            }
            let confirmed_ids: Vec<Box<str>> = self
                .confirmed
                .list(&list.audience)
                .map(|(id, _)| id.clone())
                .collect();
            for id in confirmed_ids {
                if let Some((c, _)) = db.facts.customer(&id) {
                    if !seen.contains(c) {
                        consider(c);
                    }
                }
            }
        } else {
            for c in dirty {
                consider(c);
            }
        }
        (adds, removes, desired_count)
    }

    async fn cycle(&mut self, full: bool) {
        let dirty = std::mem::take(&mut *self.spec.dirty.customers.lock());
        if !full && dirty.is_empty() {
            return;
        }
        let span = tracing::debug_span!("sync_cycle", full, dirty = dirty.len());
        self.cycle_lists(full, dirty).instrument(span).await;
    }

    async fn cycle_lists(&mut self, full: bool, dirty: roaring::RoaringBitmap) {
        let lists = self.spec.lists.clone();
        for list in &lists {
            if self.parked.contains(&list.audience) {
                continue;
            }
            let (adds, removes, desired) = self.plan(list, full, &dirty);
            let changed = !adds.is_empty() || !removes.is_empty();
            self.status.update(&self.spec.name, &list.audience, |s| {
                s.list_id = list.list_id.clone();
                s.desired = desired;
                s.pending_adds = adds.len() as u64;
                s.pending_removes = removes.len() as u64;
            });
            // Removes first: a member whose identifiers changed leaves with the old ones.
            let ok = match self.push(list, removes, false).await {
                Ok(()) => self.push(list, adds, true).await,
                Err(e) => Err(e),
            };
            if let Err(Stop::Later) = ok {
                // Not lost: the customers are dirty again and the next cycle recomputes them.
                self.spec.dirty.customers.lock().extend(dirty.iter());
            }
            if changed {
                let all: Vec<RemoteMember> = self
                    .confirmed
                    .list(&list.audience)
                    .map(|(_, m)| m.clone())
                    .collect();
                if let Err(e) = self.spec.dest.snapshot(list, &all).await {
                    self.record_error(&list.audience, &e);
                }
            }
            let confirmed = self.confirmed.len(&list.audience) as u64;
            self.status
                .update(&self.spec.name, &list.audience, |s| s.confirmed = confirmed);
        }
    }

    fn record_error(&self, audience: &str, e: &PushError) {
        let (msg, advice) = match e {
            PushError::Permanent { reason, advice } => (reason.clone(), advice.clone()),
            other => (other.to_string(), String::new()),
        };
        tracing::warn!(destination = %self.spec.name, audience, error = %msg, "push failed");
        self.status.update(&self.spec.name, audience, |s| {
            s.last_error = msg;
            s.advice = advice;
        });
    }

    /// Sends operations in batches: paced, retried, confirmed batch by batch.
    async fn push(&mut self, list: &ListRef, ops: Vec<Op>, add: bool) -> Result<(), Stop> {
        let mut token_refreshed = false;
        let mut attempt = 0u32;
        // Halved after a 413, for the rest of this push.
        let mut cap = usize::MAX;
        // Split once; batches are drained from the front of both together.
        let (mut ids, mut members): (Vec<Box<str>>, Vec<RemoteMember>) =
            ops.into_iter().map(|o| (o.id, o.member)).unzip();
        // One network session per push (Meta `session`): unique id, numbered batches, the
        // last one flagged.
        let mut batch = super::dest::Batch {
            session_id: new_session_id(),
            seq: 0,
            last: false,
            estimated_total: members.len() as u64,
        };
        while !members.is_empty() {
            let n = self
                .spec
                .dest
                .fit(&members)
                .max(1)
                .min(members.len())
                .min(cap);
            batch.seq += 1;
            batch.last = n == members.len();
            self.pace().await;
            let started = Instant::now();
            let result = if add {
                self.spec.dest.add(list, &members[..n], batch).await
            } else {
                self.spec.dest.remove(list, &members[..n], batch).await
            };
            let op = if add { "add" } else { "remove" };
            record_request(&self.spec.name, op, started, &result);
            if result.is_ok() {
                metrics::counter!(crate::service::metrics::names::SYNC_MEMBERS_SENT,
                    "destination" => self.spec.name.clone(), "audience" => list.audience.clone(), "op" => op)
                    .increment(n as u64);
            }
            match result {
                Ok(accepted) => {
                    attempt = 0;
                    // The network holds the batch; nothing here says so yet. A crash now
                    // only makes the start-up comparison send it again (idempotent).
                    crate::failpoint::crash_point!("sync_after_accept");
                    let batch: Vec<(Box<str>, RemoteMember)> =
                        ids.drain(..n).zip(members.drain(..n)).collect();
                    let changes: Vec<(Box<str>, Option<RemoteMember>)> = batch
                        .iter()
                        .map(|(id, m)| (id.clone(), add.then(|| m.clone())))
                        .collect();
                    let removed: Vec<(Box<str>, RemoteMember)> =
                        if add { Vec::new() } else { batch.clone() };
                    // An asynchronous request is recorded before its confirmation: were it the
                    // other way round, a crash in between would leave members confirmed whose
                    // request could still read FAILED, with nothing left to poll it.
                    if let Some(request_id) = accepted.request_id {
                        let o = Outstanding {
                            request_id,
                            audience: list.audience.clone(),
                            entries: batch.into_iter().map(|(id, m)| (id, add, m)).collect(),
                        };
                        let stored = self
                            .spec
                            .outstanding
                            .insert(o.request_id.as_bytes(), crate::ledger::records::encode(&o));
                        if let Err(e) = stored {
                            tracing::error!(error = %e, "outstanding request not persisted");
                        }
                        self.outstanding.push(o);
                        crate::failpoint::crash_point!("sync_after_outstanding");
                    }
                    // `apply` flushes the tree, which makes the outstanding record durable too.
                    if let Err(e) = self.confirmed.apply(&list.audience, &changes) {
                        tracing::error!(error = %e, "confirmed ledger write failed");
                    }
                    if !add {
                        self.unconfirm_matching(&list.audience, &removed);
                    }
                    let now = self.clock.now();
                    self.status.update(&self.spec.name, &list.audience, |s| {
                        s.last_success_at = Some(now);
                        s.throttled_until = None;
                        // A retried failure is over once a request goes through; refused
                        // members stay reported while they are set aside.
                        if s.set_aside == 0 {
                            s.last_error.clear();
                            s.advice.clear();
                        }
                        if add {
                            s.pending_adds = s.pending_adds.saturating_sub(n as u64);
                        } else {
                            s.pending_removes = s.pending_removes.saturating_sub(n as u64);
                        }
                    });
                }
                Err(PushError::TokenExpired) if !token_refreshed => {
                    token_refreshed = true;
                }
                Err(PushError::TokenExpired) => {
                    let e = PushError::Permanent {
                        reason: "access token refused right after a refresh".into(),
                        advice: "renew the destination's credentials, then `audiencesync resync`"
                            .into(),
                    };
                    return Err(self.park(list, &e));
                }
                Err(e @ PushError::Throttled { .. }) => {
                    self.record_error(&list.audience, &e);
                    let PushError::Throttled { wait, .. } = &e else {
                        unreachable!()
                    };
                    attempt += 1;
                    let pause = wait.unwrap_or_else(|| backoff(attempt));
                    let until = self.clock.now().saturating_add(pause.as_nanos() as i64);
                    self.status.update(&self.spec.name, &list.audience, |s| {
                        s.throttled_until = Some(until)
                    });
                    tokio::time::sleep(pause).await;
                    record_wait(&self.spec.name, pause);
                }
                Err(e @ PushError::Transient { .. }) => {
                    self.record_error(&list.audience, &e);
                    attempt += 1;
                    if attempt > MAX_TRANSIENT_ATTEMPTS {
                        return Err(Stop::Later);
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(PushError::MembersRefused { indices, reason }) => {
                    // Nothing of the batch was applied: set the named members aside and
                    // resend the rest at once.
                    let mut refused: Vec<usize> = indices.into_iter().filter(|i| *i < n).collect();
                    if refused.is_empty() {
                        refused.push(0);
                    }
                    refused.sort_unstable();
                    for &i in refused.iter().rev() {
                        ids.remove(i);
                        let member = members.remove(i);
                        tracing::warn!(destination = %self.spec.name, audience = %list.audience,
                            member = %member.fingerprint(), "member refused by the network; set aside");
                        self.set_aside.insert((list.audience.clone(), member));
                    }
                    let count = self
                        .set_aside
                        .iter()
                        .filter(|(a, _)| *a == list.audience)
                        .count() as u64;
                    self.status.update(&self.spec.name, &list.audience, |s| {
                        s.set_aside = count;
                        s.last_error = format!("members refused: {reason}");
                        s.advice = "the refused members' identifiers are malformed at the network; they are retried when they change".into();
                    });
                }
                Err(PushError::TooLarge) if n > 1 => {
                    cap = n / 2;
                    tracing::info!(destination = %self.spec.name, batch = cap, "request too large; halving the batch");
                }
                Err(PushError::TooLarge) => {
                    let e = PushError::Permanent {
                        reason: "a single member is larger than the network accepts".into(),
                        advice: "see the log; this member cannot be sent".into(),
                    };
                    return Err(self.park(list, &e));
                }
                Err(e @ (PushError::Permanent { .. } | PushError::SessionEnded { .. })) => {
                    return Err(self.park(list, &e))
                }
            }
        }
        Ok(())
    }

    /// After a removal: the network also dropped every member sharing an identifier with a
    /// removed one (it matches people, not rows). Those are no longer confirmed and are marked
    /// dirty, so the next cycle adds them back (a household sharing a phone stays listed when
    /// one of them leaves).
    fn unconfirm_matching(&mut self, audience: &str, removed: &[(Box<str>, RemoteMember)]) {
        let gone: HashSet<&str> = removed.iter().map(|(id, _)| &**id).collect();
        // One pass over the list with the removed identifiers indexed (lists run to millions).
        let emails: HashSet<_> = removed.iter().filter_map(|(_, m)| m.email).collect();
        let phones: HashSet<_> = removed.iter().filter_map(|(_, m)| m.phone).collect();
        let addresses: HashSet<_> = removed.iter().filter_map(|(_, m)| m.address()).collect();
        let dropped: Vec<(Box<str>, Option<RemoteMember>)> = self
            .confirmed
            .list(audience)
            .filter(|(id, m)| {
                !gone.contains(&***id)
                    && (m.email.is_some_and(|e| emails.contains(&e))
                        || m.phone.is_some_and(|p| phones.contains(&p))
                        || m.address().is_some_and(|a| addresses.contains(&a)))
            })
            .map(|(id, _)| (id.clone(), None))
            .collect();
        if dropped.is_empty() {
            return;
        }
        tracing::info!(destination = %self.spec.name, audience, members = dropped.len(),
            "members sharing an identifier with removed ones left the list too; adding them back");
        if let Err(e) = self.confirmed.apply(audience, &dropped) {
            tracing::error!(error = %e, "confirmed ledger write failed");
        }
        let dirty: Vec<CustomerIdx> = {
            let db = self.ledger.read();
            dropped
                .iter()
                .filter_map(|(id, _)| db.facts.customer(id).map(|(c, _)| c))
                .collect()
        };
        self.spec.dirty.customers.lock().extend(dirty);
        self.spec.dirty.notify.notify_one();
    }

    fn park(&mut self, list: &ListRef, e: &PushError) -> Stop {
        self.record_error(&list.audience, e);
        self.parked.insert(list.audience.clone());
        self.status
            .update(&self.spec.name, &list.audience, |s| s.parked = true);
        Stop::Parked
    }

    /// Polls accepted asynchronous requests; a FAILED one makes its members unconfirmed, so
    /// the next cycle sends the current truth again.
    async fn poll_outstanding(&mut self) {
        let mut still = Vec::new();
        for o in std::mem::take(&mut self.outstanding) {
            self.pace().await;
            let started = Instant::now();
            let polled = self.spec.dest.poll(&o.request_id).await;
            record_request(&self.spec.name, "poll", started, &polled);
            match polled {
                Ok(RequestState::Succeeded {
                    match_rate: rate, ..
                }) => {
                    let _ = self.spec.outstanding.remove(o.request_id.as_bytes());
                    if let Some(rate) = rate {
                        self.status
                            .update(&self.spec.name, &o.audience, |s| s.match_rate = rate);
                    }
                }
                Ok(RequestState::Processing) | Err(_) => still.push(o),
                Ok(RequestState::Failed { reason: why, .. }) => {
                    tracing::warn!(destination = %self.spec.name, audience = %o.audience, request = %o.request_id, "request failed at the network; resending");
                    let mut revert = Vec::new();
                    let mut dirty = Vec::new();
                    {
                        let db = self.ledger.read();
                        for (id, added, member) in o.entries {
                            let now = self.confirmed.get(&o.audience, &id);
                            if added && now == Some(&member) {
                                revert.push((id.clone(), None));
                            } else if !added && now.is_none() {
                                revert.push((id.clone(), Some(member)));
                            }
                            if let Some((c, _)) = db.facts.customer(&id) {
                                dirty.push(c);
                            }
                        }
                    }
                    if let Err(e) = self.confirmed.apply(&o.audience, &revert) {
                        tracing::error!(error = %e, "confirmed ledger write failed");
                    }
                    let _ = self.spec.outstanding.remove(o.request_id.as_bytes());
                    self.spec.dirty.customers.lock().extend(dirty);
                    self.spec.dirty.notify.notify_one();
                    self.status.update(&self.spec.name, &o.audience, |s| {
                        s.last_error = why;
                        s.advice = "the network failed the request; it is being resent".into();
                    });
                }
            }
        }
        self.outstanding = still;
    }

    /// Full resync: replace the remote list with the desired members.
    async fn replace(&mut self, req: ResyncRequest) {
        let lists: Vec<ListRef> = self
            .spec
            .lists
            .iter()
            .filter(|l| req.audience.as_ref().is_none_or(|a| *a == l.audience))
            .cloned()
            .collect();
        for list in lists {
            let desired: Vec<(Box<str>, RemoteMember)> = {
                let db = self.ledger.read();
                let Some(a) = db.audiences.by_name(&list.audience) else {
                    continue;
                };
                let members = db.audiences.members(a);
                let held = db.audiences.holdout(a);
                members
                    .iter()
                    .filter(|c| db.audiences.is_eligible(*c) && !held.contains(*c))
                    .filter_map(|c| {
                        let cust = db.facts.customers.get(c as usize)?;
                        Some((cust.id.clone(), RemoteMember::from_profile(&cust.profile)?))
                    })
                    .collect()
            };
            let members: Vec<RemoteMember> = desired.iter().map(|(_, m)| m.clone()).collect();
            let result = self.replace_list(&list, &members).await;
            match result {
                Ok(()) => {
                    if let Err(e) = self.confirmed.replace(&list.audience, desired) {
                        tracing::error!(error = %e, "confirmed ledger write failed");
                    }
                    let now = self.clock.now();
                    let n = self.confirmed.len(&list.audience) as u64;
                    self.status.update(&self.spec.name, &list.audience, |s| {
                        s.confirmed = n;
                        s.desired = n;
                        s.pending_adds = 0;
                        s.pending_removes = 0;
                        s.last_success_at = Some(now);
                    });
                    tracing::info!(destination = %self.spec.name, audience = %list.audience, members = n, "full resync done");
                }
                Err(e) => {
                    if matches!(e, PushError::Permanent { .. }) {
                        self.park(&list, &e);
                    } else {
                        self.record_error(&list.audience, &e);
                    }
                }
            }
        }
    }

    async fn replace_list(
        &mut self,
        list: &ListRef,
        members: &[RemoteMember],
    ) -> Result<(), PushError> {
        let mut attempt = 0;
        let session_id = new_session_id();
        let _start = loop {
            self.pace().await;
            let started = Instant::now();
            let begun = self
                .spec
                .dest
                .begin_replace(list, std::time::SystemTime::now())
                .await;
            record_request(&self.spec.name, "replace", started, &begun);
            match begun {
                Ok(session) => break session,
                Err(e) => match retry_pause(&e, &mut attempt) {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => return Err(e),
                },
            }
        };
        let mut i = 0;
        loop {
            let n = self.spec.dest.fit(&members[i..]).min(members.len() - i);
            let last = i + n >= members.len();
            let chunk = &members[i..i + n];
            let mut attempt = 0;
            loop {
                self.pace().await;
                let started = Instant::now();
                let sent = self
                    .spec
                    .dest
                    .replace_batch(
                        list,
                        chunk,
                        super::dest::Batch {
                            session_id: session_id,
                            seq: i as u64 / n.max(1) as u64 + 1,
                            last,
                            estimated_total: members.len() as u64,
                        },
                    )
                    .await;
                record_request(&self.spec.name, "replace", started, &sent);
                match sent {
                    Ok(_) => break,
                    Err(e) => match retry_pause(&e, &mut attempt) {
                        Some(pause) => tokio::time::sleep(pause).await,
                        None => return Err(e),
                    },
                }
            }
            i += n;
            if last {
                return Ok(());
            }
        }
    }
}
