//! The handle over the destination workers: start, reload, resync requests, shutdown. The
//! workers themselves (`sync::worker`) are private; callers see only this handle and the
//! status board.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::dest::{Destination, ListRef};
pub use super::status::{JobStatus, ListReport, ListStatus, StatusBoard};
use super::worker::Worker;
use crate::clock::SharedClock;
use crate::writer::feed::DirtySet;
use crate::writer::Writer;

/// An operator's request to a worker.
#[derive(Debug, Clone)]
pub struct ResyncRequest {
    /// One audience, or all mapped ones.
    pub audience: Option<String>,
    /// Replace the remote list (true) or compare it in full (false).
    pub full: bool,
    /// The number in the job id `resync` printed.
    pub job: u64,
}

/// Job numbers, unique across restarts (kept in the sled tree `sync`).
pub struct JobCounter {
    tree: sled::Tree,
}

impl JobCounter {
    /// Over the `sync` tree.
    pub fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    /// The next job number.
    pub fn next(&self) -> u64 {
        let next = self
            .tree
            .update_and_fetch(b"next_job", |old| {
                let n = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, u64::from_be_bytes);
                Some((n + 1).to_be_bytes().to_vec())
            })
            .ok()
            .flatten()
            .and_then(|b| <[u8; 8]>::try_from(&*b).ok())
            .map_or(1, u64::from_be_bytes);
        let _ = self.tree.flush();
        next
    }
}

/// Handles to the running workers.
pub struct SyncEngine {
    workers: Mutex<Workers>,
    /// Status of every destination × audience.
    pub status: Arc<StatusBoard>,
    writer: Writer,
    clock: SharedClock,
    jobs: Arc<JobCounter>,
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
    pub dest: Arc<dyn Destination>,
    /// The lists it maintains.
    pub lists: Vec<ListRef>,
    /// Mutate requests per hour; `None`: the network's documented default.
    pub quota_per_hour: Option<u32>,
    /// Reads per hour where the network budgets them apart; `None`: as many as mutates.
    pub read_quota_per_hour: Option<u32>,
    /// Gathering time before a push.
    pub linger: Duration,
    /// Full reconciliation period.
    pub reconcile_every: Duration,
    /// Wait before the first poll of an asynchronous request.
    pub first_poll: Duration,
    /// Base of the exponential backoff between later polls (and of re-checks while a
    /// replacement is being verified).
    pub poll_interval: Duration,
    /// Its confirmed list's tree, loaded when the worker starts (after any predecessor
    /// from before a config reload has stopped writing to it).
    pub confirmed: sled::Tree,
    /// Its dirty set.
    pub dirty: Arc<DirtySet>,
    /// Its accepted-but-unfinished requests (sled tree `outstanding.<name>`).
    pub outstanding: sled::Tree,
    /// Members of requests on their way (sled tree `sending.<name>`).
    pub sending: sled::Tree,
    /// Ids of the lists the daemon created (sled tree `lists.<name>`: audience → id).
    pub list_ids: sled::Tree,
    /// Its resync jobs (sled tree `jobs.<name>`: audience → job).
    pub jobs: sled::Tree,
    /// Members confirmed by a running job (sled tree `staged.<name>`).
    pub staged: sled::Tree,
    /// What the network reported per list (sled tree `report.<name>`).
    pub reports: sled::Tree,
}

impl SyncEngine {
    /// Starts one worker per destination. Each begins with a full reconciliation, which
    /// also repairs whatever a crash left between a push and its record.
    pub fn start(
        specs: Vec<WorkerSpec>,
        writer: Writer,
        clock: SharedClock,
        jobs: JobCounter,
    ) -> Self {
        let engine = Self {
            workers: Mutex::new(Workers::default()),
            status: Arc::new(StatusBoard::default()),
            writer,
            clock,
            jobs: Arc::new(jobs),
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
            let writer = self.writer.clone();
            let clock = self.clock.clone();
            let status = self.status.clone();
            let stopped = stopped.clone();
            workers.tasks.push(tokio::spawn(async move {
                let name = spec.name.clone();
                let worker = match Worker::new(spec, writer, clock, status, stopped.clone()) {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::error!(destination = %name, error = %e, "cannot load the destination's sync state; destination not started");
                        return;
                    }
                };
                let span = tracing::info_span!("sync", destination = %name);
                worker.run(rx, stopped).instrument(span).await;
            }));
        }
        workers
    }

    /// Replaces every worker (config reload): the old ones stop between requests (a request
    /// cut short is simply sent again, adds and removes being idempotent), then the new ones
    /// start from what they stored, with a full comparison.
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
        self.status.retain(|k| keep.contains(k));
        let new = self.spawn(specs);
        *self.workers.lock() = new;
    }

    /// Queues a resync; returns the job id that `status` shows its progress under.
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
        let job = self.jobs.next();
        let now = self.clock.now();
        for (name, lists, tx) in targets {
            for l in lists.iter().filter(|l| audience.is_none_or(|a| a == *l)) {
                self.status.update(name, l, |s| {
                    s.job = Some(JobStatus {
                        id: format!("resync-{job}"),
                        kind: if full { "full" } else { "delta" }.into(),
                        state: "queued".into(),
                        started_at: Some(now),
                        ..JobStatus::default()
                    })
                });
            }
            let _ = tx.try_send(ResyncRequest {
                audience: audience.map(str::to_string),
                full,
                job,
            });
        }
        Ok(format!("resync-{job}"))
    }

    /// Stops the workers between requests (confirmations are never half-written).
    pub fn shutdown(&self) {
        if let Some(stop) = &self.workers.lock().stop {
            let _ = stop.send(true);
        }
    }
}
