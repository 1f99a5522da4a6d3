//! Running full resyncs ([`super::job`]): clear the list as of the job's start, send the
//! desired members in customer-id order, wait for the network's outcome, and only then make the
//! confirmed list the replaced list. Every step is stored before the next, so the job resumes
//! wherever an error or a crash stopped it.

use std::collections::VecDeque;
use std::time::{Duration, UNIX_EPOCH};

use super::call::{Halt, Quota};
use super::dest::{Batch, ListInfo, ListRef, PushError};
use super::inflight::{wall_now, Op};
use super::job::Phase;
use super::member::RemoteMember;
use super::worker::Worker;

/// Times the network may fail a whole replacement before the job gives up.
const MAX_RESTARTS: u32 = 1;

impl Worker {
    /// Takes every running job as far as it can go without waiting for the network.
    pub(super) async fn advance_jobs(&mut self) -> Result<(), Halt> {
        let audiences: Vec<String> = self.active.keys().cloned().collect();
        for a in audiences {
            let Some(list) = self.spec.lists.iter().find(|l| l.audience == a).cloned() else {
                continue;
            };
            if self.parked.contains(&a)
                || (list.list_id.is_empty() && self.call.dest().has_list_ids())
            {
                continue;
            }
            match self.step_job(&list).await {
                Ok(()) => {}
                Err(Halt::Failed(e)) => {
                    self.end_job(&a, Phase::Failed, e.to_string());
                    self.park(&list, &e);
                }
                Err(Halt::Later(e)) => {
                    self.record_error(&a, &e);
                    if let Some(j) = self.active.get_mut(&a) {
                        j.detail = format!("waiting to retry: {e}");
                    }
                    self.save_job(&a);
                }
                Err(h) => return Err(h),
            }
        }
        Ok(())
    }

    /// Stores the job of `audience` (a job not stored is simply resumed from its last step).
    pub(super) fn save_job(&mut self, audience: &str) {
        let Some(job) = self.active.get(audience) else {
            return;
        };
        if let Err(e) = self.jobs.save(job) {
            tracing::error!(error = %e, "resync job step not stored; it is repeated after a restart");
        }
        let s = job.status();
        self.status
            .update(&self.spec.name, audience, |st| st.job = Some(s));
    }

    async fn step_job(&mut self, list: &ListRef) -> Result<(), Halt> {
        let a = list.audience.as_str();
        if self.active.get(a).is_some_and(|j| j.needs_remove_all) {
            self.remove_all(list).await?;
        }
        if self
            .active
            .get(a)
            .is_some_and(|j| j.phase == Phase::Sending)
        {
            self.send_replacement(list).await?;
        }
        if self
            .active
            .get(a)
            .is_some_and(|j| j.phase == Phase::Verifying)
        {
            self.verify(list).await?;
        }
        Ok(())
    }

    /// Clears the list as of the job's start (Google `removeAll`; nothing for Meta, whose
    /// session replaces the list, and CSV).
    async fn remove_all(&mut self, list: &ListRef) -> Result<(), Halt> {
        let a = list.audience.as_str();
        let Some(job) = self.active.get(a) else {
            return Ok(());
        };
        let (id, as_of) = (
            job.id,
            UNIX_EPOCH + Duration::from_nanos(job.as_of.max(0) as u64),
        );
        let start = self
            .call
            .call("remove_all", Quota::Mutate, a, |d| async move {
                d.begin_replace(list, as_of).await
            })
            .await?;
        if let Some(rid) = start.request_id {
            if let Err(e) = self
                .inflight
                .insert(rid, a, Op::RemoveAll, Some(id), Vec::new())
            {
                tracing::error!(error = %e, "removeAll request not recorded");
            }
        }
        let first = self.active.get(a).is_some_and(|j| j.phase == Phase::Begin);
        if first {
            if let Err(e) = self.jobs.clear_staged(a) {
                tracing::error!(error = %e, "staged members of an earlier attempt not cleared");
            }
        }
        if let Some(j) = self.active.get_mut(a) {
            j.needs_remove_all = false;
            if first {
                j.phase = Phase::Sending;
            }
        }
        self.save_job(a);
        Ok(())
    }

    /// Whether a session opened at `started` must close with the next batch: a window's last
    /// ninth is kept as margin (10 minutes of Meta's 90).
    fn window_closing(&self, started: Option<i64>) -> bool {
        match (self.call.dest().replace_window(), started) {
            (Some(w), Some(t)) => {
                let open = Duration::from_nanos(wall_now().saturating_sub(t).max(0) as u64);
                open >= w - w / 9
            }
            _ => false,
        }
    }

    /// Sends the members still to send, in batches the network takes.
    async fn send_replacement(&mut self, list: &ListRef) -> Result<(), Halt> {
        let a = list.audience.as_str();
        if !self.queues.contains_key(a) {
            let mut desired = self.desired_members(list);
            desired.sort_by(|x, y| x.0.cmp(&y.0));
            let cursor = self.active.get(a).and_then(|j| j.cursor.clone());
            let queue: VecDeque<(Box<str>, RemoteMember)> = desired
                .into_iter()
                .filter(|(id, _)| cursor.as_ref().is_none_or(|c| id > c))
                .collect();
            if let Some(j) = self.active.get_mut(a) {
                j.total = j.sent + queue.len() as u64;
            }
            self.queues.insert(a.to_string(), queue);
        }
        loop {
            let Some(job) = self.active.get(a) else {
                return Ok(());
            };
            let queue = self.queues.entry(a.to_string()).or_default();
            if queue.is_empty() {
                let never_opened = job.seq == 0 && self.call.dest().replace_window().is_some();
                if never_opened {
                    // No member to send: a session cannot carry an empty list; the delta
                    // removes the confirmed members instead.
                    self.end_job(
                        a,
                        Phase::Done,
                        "nothing to send: the list is emptied by removals".into(),
                    );
                    return Ok(());
                }
                if let Some(j) = self.active.get_mut(a) {
                    j.phase = Phase::Verifying;
                }
                self.save_job(a);
                return Ok(());
            }
            // Only what one request can carry is looked at (queues run to millions).
            let most = self.call.dest().max_batch().min(self.cap);
            let members: Vec<RemoteMember> =
                queue.iter().take(most).map(|(_, m)| m.clone()).collect();
            let queued = queue.len();
            let whole = members.len() == queued;
            let n = self.batch_size(&members);
            let closing = self.window_closing(job.session_started);
            let last = (whole && n == members.len()) || closing;
            let b = Batch {
                session_id: job.session_id,
                seq: job.seq + 1,
                last,
                estimated_total: job.total,
            };
            let chunk = &members[..n];
            let sent = self
                .call
                .call("replace", Quota::Mutate, a, |d| async move {
                    d.replace_batch(list, chunk, b).await
                })
                .await;
            match sent {
                Ok(accepted) => {
                    let carried: Vec<(Box<str>, RemoteMember)> = self
                        .queues
                        .get_mut(a)
                        .map(|q| q.drain(..n).collect())
                        .unwrap_or_default();
                    let now = self.clock.now();
                    self.report_mut(a).accepted += n as u64;
                    self.report_mut(a).last_accepted_at = Some(now);
                    let job_id = self.active.get(a).map(|j| j.id);
                    if let Some(rid) = accepted.request_id {
                        if let Err(e) =
                            self.inflight
                                .insert(rid, a, Op::Add, job_id, carried.clone())
                        {
                            tracing::error!(error = %e, "replace request not recorded");
                        }
                    } else {
                        let refused = &accepted.refused;
                        self.report_mut(a).processed += n as u64;
                        self.report_mut(a).refuse(&refused.by_reason);
                        let mut keep = Vec::with_capacity(carried.len());
                        for (i, c) in carried.iter().enumerate() {
                            if refused.indices.contains(&i) {
                                self.set_member_aside(a, c.1.clone());
                            } else {
                                keep.push(c.clone());
                            }
                        }
                        if let Err(e) = self.jobs.stage(a, &keep) {
                            tracing::error!(error = %e, "resync members not staged; they are compared again after the job");
                        }
                    }
                    if let Some(j) = self.active.get_mut(a) {
                        j.seq += 1;
                        j.sent += n as u64;
                        j.cursor = carried.last().map(|(id, _)| id.clone());
                        j.session_started.get_or_insert_with(wall_now);
                        if last {
                            j.phase = Phase::Verifying;
                            if closing && queued > n {
                                j.detail = "replace session closed before its window ended; the rest is added after it".into();
                            }
                        }
                    }
                    self.save_job(a);
                    crate::failpoint::crash_point!("sync_replace_after_batch");
                    if last {
                        self.refresh_soon(a, Duration::ZERO);
                        return Ok(());
                    }
                }
                Err(Halt::Failed(PushError::SessionEnded { reason })) => {
                    // What the network received stands; the rest goes by delta after the job.
                    if let Some(j) = self.active.get_mut(a) {
                        j.phase = Phase::Verifying;
                        j.detail = format!("the network ended the replace session: {reason}");
                    }
                    self.save_job(a);
                    return Ok(());
                }
                Err(Halt::Failed(PushError::TooLarge)) if n > 1 => self.cap = n / 2,
                Err(Halt::Failed(PushError::MembersRefused { indices, .. })) => {
                    for i in super::push::refused_positions(indices, n) {
                        let member = self.queues.get_mut(a).and_then(|q| q.remove(i));
                        if let Some((_, m)) = member {
                            self.set_member_aside(a, m);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Everything is sent: once the network's outcome is known, the confirmed list becomes
    /// what it applied.
    async fn verify(&mut self, list: &ListRef) -> Result<(), Halt> {
        let a = list.audience.as_str();
        let Some(id) = self.active.get(a).map(|j| j.id) else {
            return Ok(());
        };
        if self.inflight.of_job(id) > 0 {
            self.set_detail(a, "waiting for the network's outcome of the requests sent");
            return Ok(());
        }
        if self.call.dest().replace_window().is_some() {
            let info = self
                .call
                .call("list_info", Quota::Read, a, |d| async move {
                    d.list_info(list).await
                })
                .await?
                .unwrap_or_default();
            self.note_replace(a, &info);
            if info.replace_in_progress {
                self.set_detail(a, "the network is applying the replacement");
                return Ok(());
            }
            if let Some(why) = info.replace_failed {
                return self.restart(list, why);
            }
        }
        self.flip(list)
    }

    fn set_detail(&mut self, audience: &str, detail: &str) {
        if let Some(j) = self.active.get_mut(audience) {
            if j.detail != detail {
                j.detail = detail.to_string();
                self.save_job(audience);
            }
        }
    }

    /// The network failed the whole replacement (its list is as before): start over once,
    /// then give up visibly.
    fn restart(&mut self, list: &ListRef, why: String) -> Result<(), Halt> {
        let a = list.audience.as_str();
        let restarts = self.active.get(a).map_or(0, |j| j.restarts);
        if restarts >= MAX_RESTARTS {
            return Err(Halt::Failed(PushError::Permanent {
                reason: format!("the network failed the replacement again: {why}"),
                advice: "see the audience in the network's audience manager, then `audiencesync resync --full`".into(),
            }));
        }
        tracing::warn!(destination = %self.spec.name, audience = a, reason = %why, "the network failed the replacement; starting it over");
        if let Err(e) = self.jobs.clear_staged(a) {
            tracing::error!(error = %e, "staged members not cleared");
        }
        self.queues.remove(a);
        if let Some(j) = self.active.get_mut(a) {
            j.restarts += 1;
            j.phase = Phase::Begin;
            j.needs_remove_all = true;
            j.session_id = super::push::new_session_id();
            j.session_started = None;
            j.seq = 0;
            j.cursor = None;
            j.sent = 0;
            j.detail = format!("started over after the network failed it: {why}");
        }
        self.save_job(a);
        Ok(())
    }

    /// The confirmed list becomes the members the network applied; members the job could
    /// not place are compared (and added) by the delta right after.
    fn flip(&mut self, list: &ListRef) -> Result<(), Halt> {
        let a = list.audience.as_str();
        let staged = match self.jobs.staged(a) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "staged members unreadable; the job waits");
                return Ok(());
            }
        };
        let n = staged.len();
        if let Err(e) = self.confirmed.replace(a, staged) {
            tracing::error!(error = %e, "confirmed list write failed; the job is verified again");
            return Ok(());
        }
        if let Err(e) = self.jobs.clear_staged(a) {
            tracing::warn!(error = %e, "staged members not cleared");
        }
        tracing::info!(destination = %self.spec.name, audience = a, members = n, "full resync confirmed");
        self.snapshot_due.insert(a.to_string());
        // A session that ended early (the network's doing, or closed before its window) is
        // worth keeping in the result: the members it did not carry were added afterwards.
        let note = self
            .active
            .get(a)
            .map(|j| j.detail.clone())
            .filter(|d| d.contains("session"))
            .unwrap_or_default();
        self.end_job(a, Phase::Done, note);
        Ok(())
    }

    /// Ends a job: stored with its result, its list compared in full next.
    pub(super) fn end_job(&mut self, audience: &str, phase: Phase, detail: String) {
        let now = self.clock.now();
        if let Some(j) = self.active.get_mut(audience) {
            j.phase = phase;
            j.finished_at = Some(now);
            if !detail.is_empty() || phase == Phase::Done {
                j.detail = detail;
            }
        }
        self.save_job(audience);
        self.active.remove(audience);
        self.queues.remove(audience);
        self.compare.insert(audience.to_string());
    }

    /// What a list's description says about a replacement outside a job.
    pub(super) fn note_replace(&mut self, audience: &str, info: &ListInfo) {
        if self.active.contains_key(audience) {
            return;
        }
        if let Some(why) = &info.replace_failed {
            let e = PushError::Permanent {
                reason: format!("the network reports the last replacement failed: {why}"),
                advice: "run `audiencesync resync --full` for this list".into(),
            };
            self.record_error(audience, &e);
        }
    }
}
