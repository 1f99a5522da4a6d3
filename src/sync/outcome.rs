//! The outcomes the worker reads back from the network, and what each does to the confirmed
//! ledger. A member counts as on a remote list only once the network's outcome for its request
//! is known (a final answer, or a polled `SUCCESS`/`PARTIAL_SUCCESS`).

use super::call::{Halt, Quota};
use super::dest::RequestState;
use super::inflight::{wall_now, Op};
use super::member::RemoteMember;
use super::worker::Worker;
use crate::metric_names;

impl Worker {
    /// Reads the outcome of every request due for a poll.
    pub(super) async fn poll_due(&mut self) -> Result<(), Halt> {
        for id in self.inflight.due(wall_now()) {
            let Some(audience) = self.inflight.get(&id).map(|r| r.audience.clone()) else {
                continue;
            };
            let rid = id.as_str();
            let polled = self
                .call
                .call("poll", Quota::Read, &audience, |d| async move {
                    d.poll(rid).await
                })
                .await;
            match polled {
                Ok(RequestState::Processing) => self.inflight.backoff(&id),
                Ok(RequestState::Succeeded {
                    match_rate,
                    refused,
                }) => {
                    if let Some(rate) = match_rate {
                        self.report_mut(&audience).upload_match_rate = rate;
                    }
                    self.resolved(&id, true, &refused.by_reason, String::new());
                }
                Ok(RequestState::Failed { reason, refused }) => {
                    self.resolved(&id, false, &refused.by_reason, reason);
                }
                Err(Halt::Failed(e)) => {
                    // The outcome cannot be read (e.g. the network no longer knows the id):
                    // surfaced, and its members sent again rather than polled forever.
                    let reason = format!("the outcome of request {id} cannot be read: {e}");
                    self.resolved(&id, false, &Default::default(), reason);
                }
                Err(Halt::Later(_)) => self.inflight.backoff(&id),
                Err(h) => return Err(h),
            }
        }
        Ok(())
    }

    /// A request's outcome is known: applied members become confirmed (or part of their job's
    /// replacement); failed ones are compared again, which sends the current truth.
    fn resolved(
        &mut self,
        request_id: &str,
        applied: bool,
        refused: &std::collections::BTreeMap<String, u64>,
        failure: String,
    ) {
        let Some(r) = self.inflight.finish(request_id) else {
            return;
        };
        let retry_removal = applied
            && r.op == Op::Remove
            && !refused.is_empty()
            && !r.superseded
            && r.job.is_none()
            && r.entries.iter().any(|(id, _)| {
                !self
                    .removal_refused
                    .contains(&(r.audience.clone(), id.clone()))
            });
        if retry_removal {
            // The network did not say which removal it refused: every member of the request
            // stays confirmed and is removed again once; a second refusal is accepted (and
            // counted) as final.
            for (id, _) in &r.entries {
                self.removal_refused
                    .insert((r.audience.clone(), id.clone()));
            }
            // Most of them are gone from the list: unsure, so one who is desired again by the
            // next plan is added back rather than taken as still there.
            let (ids, members): (Vec<Box<str>>, Vec<_>) = r.entries.iter().cloned().unzip();
            if let Err(e) = self.sending.begin(&r.audience, false, &ids, &members) {
                tracing::error!(error = %e, "partly refused removal not recorded as unsure");
            }
            tracing::warn!(destination = %self.spec.name, audience = %r.audience, request = %request_id, "removal partly refused; sending it again");
            self.mark_dirty(r.entries.iter().map(|(id, _)| &**id));
            return;
        }
        self.refresh_soon(&r.audience, self.spec.poll_interval);
        if applied {
            // Refusals of an applied request explain a difference for good; a request that
            // was not applied is sent again, so its counts explain nothing.
            let report = self.report_mut(&r.audience);
            report.processed += r.entries.len() as u64;
            report.refuse(refused);
            for (reason, count) in refused {
                metrics::counter!(metric_names::SYNC_MEMBERS_REFUSED, "destination" => self.spec.name.clone(),
                    "audience" => r.audience.clone(), "reason" => reason.clone())
                .increment(*count);
            }
            self.save_report(&r.audience);
        }
        let job = r
            .job
            .filter(|j| self.active.get(&r.audience).is_some_and(|a| a.id == *j));
        // Its outcome no longer decides what is confirmed: a full resync started after it, or
        // it belongs to a job that a newer one replaced.
        let stale = r.superseded || (r.job.is_some() && job.is_none());
        if !applied {
            tracing::warn!(destination = %self.spec.name, audience = %r.audience, request = %request_id, reason = %failure, "request not applied by the network; its members are compared again");
            if job.is_some() && r.op == Op::RemoveAll {
                if let Some(j) = self.active.get_mut(&r.audience) {
                    j.needs_remove_all = true;
                    j.detail = format!("removeAll failed at the network, resending: {failure}");
                }
                self.save_job(&r.audience);
            }
            let msg = failure.clone();
            self.status.update(&self.spec.name, &r.audience, |s| {
                s.last_error = msg;
                s.advice =
                    "the network did not apply the request; its members are sent again".into();
            });
        } else if job.is_some() {
            if r.op == Op::Add {
                if let Err(e) = self.jobs.stage(&r.audience, &r.entries) {
                    tracing::error!(error = %e, "resync members not staged; they are compared again after the job");
                }
            }
        } else if !stale {
            let changes: Vec<(Box<str>, Option<RemoteMember>)> = r
                .entries
                .iter()
                .map(|(id, m)| (id.clone(), (r.op == Op::Add).then(|| m.clone())))
                .collect();
            if let Err(e) = self.confirmed.apply(&r.audience, &changes) {
                tracing::error!(error = %e, "confirmed list write failed");
            }
            if r.op == Op::Remove {
                for (id, _) in &r.entries {
                    self.removal_refused
                        .remove(&(r.audience.clone(), id.clone()));
                }
                self.unconfirm_matching(&r.audience, &r.entries);
            }
        }
        self.mark_dirty(r.entries.iter().map(|(id, _)| &**id));
    }
}
