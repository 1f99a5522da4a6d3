//! One worker per destination: its loop, and what the network reports about each list.
//!
//! Each turn of the loop: name the lists that need an id, advance the resync jobs, send the
//! delta of every other list ([`super::push`]), poll the requests whose outcome is due, read what
//! the network reports about each list, publish the status; then sleep until something changes
//! or falls due. What each request's outcome does to the confirmed list is in
//! [`super::outcome`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::call::{Caller, Halt, Quota};
use super::confirmed::Confirmed;
use super::dest::{ListRef, PushError};
use super::handle::{ResyncRequest, WorkerSpec};
use super::inflight::{wall_now, InFlight};
use super::job::{Job, Jobs};
use super::member::RemoteMember;
use super::sending::Sending;
use super::status::{JobStatus, ListReport, Reports, StatusBoard};
use crate::clock::SharedClock;
use crate::ledger::state::CustomerIdx;
use crate::writer::Writer;

/// A destination's worker and everything it keeps between turns.
pub(super) struct Worker {
    pub(super) spec: WorkerSpec,
    pub(super) call: Caller,
    pub(super) confirmed: Confirmed,
    /// Members of requests on their way, and those whose request's fate is unknown.
    pub(super) sending: Sending,
    pub(super) inflight: InFlight,
    pub(super) jobs: Jobs,
    /// audience → its running full resync.
    pub(super) active: HashMap<String, Job>,
    /// audience → members its job has still to send (rebuilt from the ledger on resume).
    pub(super) queues: HashMap<String, VecDeque<(Box<str>, RemoteMember)>>,
    pub(super) reports: Reports,
    pub(super) report: HashMap<String, ListReport>,
    pub(super) writer: Writer,
    pub(super) clock: SharedClock,
    pub(super) status: Arc<StatusBoard>,
    pub(super) set_aside: HashSet<(String, RemoteMember)>,
    pub(super) parked: HashSet<String>,
    /// Most members per request after the network called a request too large.
    pub(super) cap: usize,
    /// Lists due for a full comparison with their audience.
    pub(super) compare: HashSet<String>,
    /// When each list's description is next read from the network.
    pub(super) info_due: HashMap<String, Instant>,
    /// Lists whose snapshot (CSV) must be written even without a delta (after a replace).
    pub(super) snapshot_due: HashSet<String>,
    /// (audience, customer) whose removal the network partly refused once already.
    pub(super) removal_refused: HashSet<(String, Box<str>)>,
}

/// How often the network's description of a list is read when nothing else asks for it.
const INFO_EVERY: Duration = Duration::from_secs(15 * 60);

impl Worker {
    /// Builds the worker from its spec, loading what it stored.
    pub(super) fn new(
        spec: WorkerSpec,
        writer: Writer,
        clock: SharedClock,
        status: Arc<StatusBoard>,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, crate::ledger::store::StoreError> {
        let dest = spec.dest.clone();
        let per_hour = spec
            .quota_per_hour
            .unwrap_or_else(|| dest.default_quota_per_hour(spec.lists.len()));
        let read_per_hour = dest
            .separate_read_quota()
            .then(|| spec.read_quota_per_hour.unwrap_or(per_hour));
        let call = Caller::new(
            spec.name.clone(),
            dest,
            per_hour,
            read_per_hour,
            stop,
            status.clone(),
            clock.clone(),
        );
        let confirmed = Confirmed::load(spec.confirmed.clone())?;
        let sending = Sending::load(spec.sending.clone())?;
        let inflight = InFlight::load(
            spec.outstanding.clone(),
            spec.first_poll,
            spec.poll_interval,
        )?;
        let jobs = Jobs::new(spec.jobs.clone(), spec.staged.clone());
        let reports = Reports::new(spec.reports.clone());
        let mut report = HashMap::new();
        let mut active = HashMap::new();
        for l in &spec.lists {
            let r = reports.load(&l.audience);
            let at = r.last_accepted_at;
            status.update(&spec.name, &l.audience, |s| s.last_success_at = at);
            report.insert(l.audience.clone(), r);
        }
        for job in jobs.load()? {
            let listed = spec.lists.iter().any(|l| l.audience == job.audience);
            if listed {
                let s = job.status();
                status.update(&spec.name, &job.audience, |st| st.job = Some(s));
                if job.active() {
                    active.insert(job.audience.clone(), job);
                }
            }
        }
        let compare = spec.lists.iter().map(|l| l.audience.clone()).collect();
        Ok(Self {
            spec,
            call,
            confirmed,
            sending,
            inflight,
            jobs,
            active,
            queues: HashMap::new(),
            reports,
            report,
            writer,
            clock,
            status,
            set_aside: HashSet::new(),
            parked: HashSet::new(),
            cap: usize::MAX,
            compare,
            info_due: HashMap::new(),
            snapshot_due: HashSet::new(),
            removal_refused: HashSet::new(),
        })
    }

    /// The loop. Starts with a full comparison of every list, which also repairs whatever a
    /// crash left between a request and its record.
    pub(super) async fn run(
        mut self,
        mut requests: mpsc::Receiver<ResyncRequest>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut last_reconcile = Instant::now();
        // Changes gather until then before a push; polls and jobs go on meanwhile.
        let mut linger_until: Option<Instant> = None;
        // What is durable shows at once, not after the first turn's requests (which may retry
        // for minutes against a failing network).
        self.publish();
        loop {
            if *stop.borrow() {
                return;
            }
            let push = linger_until.is_none_or(|t| t <= Instant::now());
            if push {
                linger_until = None;
            }
            if let Err(Halt::Stopped) = self.turn(push).await {
                return;
            }
            self.publish();
            if last_reconcile.elapsed() >= self.spec.reconcile_every {
                last_reconcile = Instant::now();
                self.compare
                    .extend(self.spec.lists.iter().map(|l| l.audience.clone()));
                continue;
            }
            let mut wake = self.next_wake(last_reconcile + self.spec.reconcile_every);
            if let Some(t) = linger_until {
                wake = wake.min(t);
            }
            tokio::select! {
                _ = self.spec.dirty.notify.notified() => {
                    // Gather changes for the linger, unless a batch is already full.
                    let backlog = self.spec.dirty.customers.lock().len() as usize;
                    if backlog < self.call.dest().max_batch() {
                        linger_until.get_or_insert(Instant::now() + self.spec.linger);
                    } else {
                        linger_until = None;
                    }
                }
                Some(req) = requests.recv() => self.take(req),
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One turn of the loop; the delta is sent only when `push` (its linger is over).
    async fn turn(&mut self, push: bool) -> Result<(), Halt> {
        if self.call.paused_until().is_some() {
            return Ok(());
        }
        let stopped = |r: Result<(), Halt>| match r {
            Err(Halt::Stopped) => Err(Halt::Stopped),
            _ => Ok(()),
        };
        stopped(self.resolve_lists().await)?;
        stopped(self.advance_jobs().await)?;
        if push {
            stopped(self.cycle().await)?;
        }
        stopped(self.poll_due().await)?;
        stopped(self.refresh_info().await)
    }

    /// When the loop must wake at the latest.
    fn next_wake(&mut self, reconcile_at: Instant) -> Instant {
        let mut wake = reconcile_at;
        if let Some(p) = self.call.paused_until() {
            return wake.min(p);
        }
        if let Some(at) = self.inflight.next_due() {
            let wait = Duration::from_nanos(at.saturating_sub(wall_now()).max(0) as u64);
            wake = wake.min(Instant::now() + wait);
        }
        if let Some(at) = self.info_due.values().min() {
            wake = wake.min(*at);
        }
        use super::job::Phase;
        if self
            .active
            .values()
            .any(|j| matches!(j.phase, Phase::Begin | Phase::Sending))
        {
            // A job with work to send (just created, resumed, or started over) goes on at once.
            return Instant::now();
        }
        if self.active.values().any(|j| j.phase == Phase::Verifying) || !self.compare.is_empty() {
            wake = wake.min(Instant::now() + self.spec.poll_interval);
        }
        wake
    }

    /// An operator's resync: unpark, then a full comparison (delta) or a new replace job.
    fn take(&mut self, req: ResyncRequest) {
        let now = self.clock.now();
        let lists: Vec<ListRef> = self
            .spec
            .lists
            .iter()
            .filter(|l| req.audience.as_ref().is_none_or(|a| *a == l.audience))
            .cloned()
            .collect();
        for l in lists {
            self.parked.remove(&l.audience);
            self.set_aside.retain(|(a, _)| *a != l.audience);
            self.status.update(&self.spec.name, &l.audience, |s| {
                s.parked = false;
                s.last_error.clear();
                s.advice.clear();
                s.set_aside = 0;
            });
            if req.full {
                let job = Job::new(
                    req.job,
                    &l.audience,
                    wall_now(),
                    now,
                    super::push::new_session_id(),
                );
                if let Err(e) = self.jobs.save(&job) {
                    tracing::error!(error = %e, "resync job not stored; not started");
                    continue;
                }
                self.inflight.supersede(&l.audience);
                self.queues.remove(&l.audience);
                // Refusals are counted since the last full resync.
                self.report_mut(&l.audience).refused.clear();
                let s = job.status();
                self.status
                    .update(&self.spec.name, &l.audience, |st| st.job = Some(s));
                self.active.insert(l.audience.clone(), job);
            } else {
                self.compare.insert(l.audience.clone());
                let s = JobStatus {
                    id: format!("resync-{}", req.job),
                    kind: "delta".into(),
                    state: "queued".into(),
                    started_at: Some(now),
                    ..JobStatus::default()
                };
                self.status
                    .update(&self.spec.name, &l.audience, |st| st.job = Some(s));
            }
        }
    }

    /// Gives every list mapped with `create = true` its id: the one stored when the daemon
    /// created it, or a newly created one (stored at once, so it is created only once).
    async fn resolve_lists(&mut self) -> Result<(), Halt> {
        if !self.call.dest().has_list_ids() {
            return Ok(());
        }
        for i in 0..self.spec.lists.len() {
            let audience = self.spec.lists[i].audience.clone();
            if !self.spec.lists[i].list_id.is_empty() || self.parked.contains(&audience) {
                continue;
            }
            if let Ok(Some(id)) = self.spec.list_ids.get(audience.as_bytes()) {
                self.spec.lists[i].list_id = String::from_utf8_lossy(&id).into_owned();
                continue;
            }
            let a = audience.as_str();
            let created = self
                .call
                .call("create_list", Quota::Mutate, a, |d| async move {
                    d.create_list(a).await
                })
                .await;
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
                Err(Halt::Failed(e)) => {
                    let list = self.spec.lists[i].clone();
                    self.park(&list, &e);
                }
                Err(h) => return Err(h),
            }
        }
        Ok(())
    }

    /// Marks customers for the next comparison.
    pub(super) fn mark_dirty<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        let dirty: Vec<CustomerIdx> = {
            let db = self.writer.read();
            ids.filter_map(|id| db.customer(id).map(|(c, _)| c))
                .collect()
        };
        if dirty.is_empty() {
            return;
        }
        self.spec.dirty.customers.lock().extend(dirty);
        self.spec.dirty.notify.notify_one();
    }

    /// Reads what the network reports about each list, when due.
    async fn refresh_info(&mut self) -> Result<(), Halt> {
        let lists = self.spec.lists.clone();
        for list in &lists {
            if (list.list_id.is_empty() && self.call.dest().has_list_ids())
                || self.parked.contains(&list.audience)
            {
                continue;
            }
            // Nothing to describe before the daemon has put anything on the list.
            let pushed = self.confirmed.len(&list.audience) > 0
                || self
                    .report
                    .get(&list.audience)
                    .is_some_and(|r| r.last_accepted_at.is_some());
            if !pushed {
                continue;
            }
            let due = self
                .info_due
                .get(&list.audience)
                .is_none_or(|t| *t <= Instant::now());
            if !due {
                continue;
            }
            self.info_due
                .insert(list.audience.clone(), Instant::now() + INFO_EVERY);
            let l = list;
            let read = self
                .call
                .call("list_info", Quota::Read, &list.audience, |d| async move {
                    d.list_info(l).await
                })
                .await;
            let info = match read {
                Ok(Some(info)) => info,
                Ok(None) => {
                    // Nothing to read from this network: never ask again.
                    self.info_due.insert(
                        list.audience.clone(),
                        Instant::now() + Duration::from_secs(365 * 86_400),
                    );
                    continue;
                }
                Err(Halt::Failed(e @ PushError::Permanent { .. })) => {
                    // Shown, not parked: a list the network lets us fill but not read is
                    // still kept in sync.
                    self.record_error(&list.audience, &e);
                    continue;
                }
                Err(Halt::Failed(e)) | Err(Halt::Later(e)) => {
                    tracing::warn!(destination = %self.spec.name, audience = %list.audience, error = %e, "list description not read");
                    continue;
                }
                Err(h) => return Err(h),
            };
            let now = self.clock.now();
            let net = &mut self.report_mut(&list.audience).network;
            net.size_lower = info.size_lower;
            net.size_upper = info.size_upper;
            net.match_rate = info.match_rate.clone().unwrap_or_default();
            net.operation_status = info.operation_status.clone().unwrap_or_default();
            net.read_at = Some(now);
            if let Some(reason) = &info.blocked {
                let e = PushError::Permanent {
                    reason: format!("uploads to this list are blocked: {reason}"),
                    advice: "resolve the restriction in the network's audience manager (appeal, or create a new list), then `audiencesync resync`".into(),
                };
                self.park(list, &e);
            }
            self.note_replace(&list.audience, &info);
        }
        Ok(())
    }

    /// Reads the list's description again soon (after an outcome, to see what it changed),
    /// unless a read is due sooner already: at most one read per `after`.
    pub(super) fn refresh_soon(&mut self, audience: &str, after: Duration) {
        // A list never read yet is read at once.
        let at = Instant::now() + after;
        let due = self
            .info_due
            .entry(audience.to_string())
            .or_insert_with(Instant::now);
        *due = (*due).min(at);
    }

    /// Stores a list's report at once, not at the next publish: the refusals it counts
    /// explain confirmed members a network does not hold, so they are durable before those
    /// members are confirmed.
    pub(super) fn save_report(&self, audience: &str) {
        if let Some(r) = self.report.get(audience) {
            self.reports.save(audience, r);
        }
    }

    pub(super) fn report_mut(&mut self, audience: &str) -> &mut ListReport {
        self.report.entry(audience.to_string()).or_default()
    }

    /// Parks a list on a permanent error until an operator's resync.
    pub(super) fn park(&mut self, list: &ListRef, e: &PushError) {
        self.record_error(&list.audience, e);
        self.parked.insert(list.audience.clone());
        self.status
            .update(&self.spec.name, &list.audience, |s| s.parked = true);
    }

    pub(super) fn record_error(&self, audience: &str, e: &PushError) {
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

    /// Publishes counts to the status board and stores the reports.
    fn publish(&mut self) {
        for l in &self.spec.lists {
            let a = &l.audience;
            let confirmed = self.confirmed.len(a) as u64;
            let in_flight = self.inflight.count(a);
            let set_aside = self.set_aside.iter().filter(|(x, _)| x == a).count() as u64;
            let report = self.report.get(a).cloned().unwrap_or_default();
            let job = self.active.get(a).map(Job::status);
            let reports = &self.reports;
            self.status.update(&self.spec.name, a, |s| {
                // The published copy is the last one stored: store only what changed.
                if s.report != report {
                    reports.save(a, &report);
                }
                s.list_id = l.list_id.clone();
                s.confirmed = confirmed;
                s.in_flight = in_flight;
                s.set_aside = set_aside;
                if report.last_accepted_at.is_some() {
                    s.last_success_at = report.last_accepted_at;
                }
                s.report = report;
                if job.is_some() {
                    s.job = job;
                }
            });
        }
    }
}
