//! The delta of each list: desired − confirmed as adds, confirmed − desired as removes, cut into
//! requests the network takes, each request's answer recorded. What is sent is always derived
//! from the audience and the confirmed list, never replayed from old operations, so a failed
//! or repeated request can only delay convergence, not corrupt a list.

use std::collections::HashSet;

use rand::Rng;

use super::call::{Halt, Quota};
use super::dest::{Accepted, Batch, ListRef, PushError};
use super::inflight::Op as RequestOp;
use super::member::RemoteMember;
use super::worker::Worker;
use crate::ledger::state::CustomerIdx;
use crate::metric_names;

/// One pending change of one customer.
pub(super) struct Change {
    pub(super) id: Box<str>,
    pub(super) member: RemoteMember,
}

/// Positions of the refused members of an `n`-member request, last first (so removing them one
/// by one keeps the others in place); the first member when the network named none in range,
/// so a refusal always makes progress.
pub(super) fn refused_positions(indices: Vec<usize>, n: usize) -> Vec<usize> {
    let mut refused: Vec<usize> = indices.into_iter().filter(|i| *i < n).collect();
    if refused.is_empty() {
        refused.push(0);
    }
    refused.sort_unstable_by(|a, b| b.cmp(a));
    refused.dedup();
    refused
}

/// A network session id: positive and unique per ad account (the time in microseconds, plus a
/// random low part so two workers starting in the same microsecond differ).
pub(super) fn new_session_id() -> u64 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1);
    ((micros << 8) | rand::rng().random_range(0..256u64)) & (i64::MAX as u64)
}

impl Worker {
    /// The desired member of `c` for `list`: in the audience, eligible, not held out (held-out
    /// members stay in the audience but are never pushed, `audience::holdout`), matchable, and
    /// not set aside after the network refused it.
    pub(super) fn desired_members(&self, list: &ListRef) -> Vec<(Box<str>, RemoteMember)> {
        let db = self.writer.read();
        let Some(a) = db.audiences().by_name(&list.audience) else {
            return Vec::new();
        };
        let members = db.audiences().members(a);
        let held = db.audiences().holdout(a);
        members
            .iter()
            .filter(|c| db.audiences().is_eligible(*c) && !held.contains(*c))
            .filter_map(|c| {
                let cust = db.customer_at(c)?;
                let m = RemoteMember::from_profile(&cust.profile)?;
                let aside = self.set_aside.contains(&(list.audience.clone(), m.clone()));
                (!aside).then(|| (cust.id.clone(), m))
            })
            .collect()
    }

    /// Adds and removes of a list for the customers considered (all of them when `full`);
    /// customers in flight wait for their request's outcome.
    fn plan(
        &self,
        list: &ListRef,
        full: bool,
        dirty: &roaring::RoaringBitmap,
    ) -> (Vec<Change>, Vec<Change>, u64) {
        let db = self.writer.read();
        let Some(a) = db.audiences().by_name(&list.audience) else {
            return (Vec::new(), Vec::new(), 0);
        };
        let members = db.audiences().members(a);
        let eligible = db.audiences().eligible();
        let held = db.audiences().holdout(a);
        let desired_count = members.intersection_len(eligible) - held.intersection_len(eligible);
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        let mut consider = |c: CustomerIdx| {
            let Some(cust) = db.customer_at(c) else {
                return;
            };
            if self.inflight.contains(&list.audience, &cust.id) {
                return;
            }
            let desired = if members.contains(c) && eligible.contains(c) && !held.contains(c) {
                RemoteMember::from_profile(&cust.profile)
            } else {
                None
            };
            let desired =
                desired.filter(|m| !self.set_aside.contains(&(list.audience.clone(), m.clone())));
            let confirmed = self.confirmed.get(&list.audience, &cust.id);
            // A member whose last request's fate is unknown is sent as it should be, whatever
            // the confirmed list says.
            let unsure = self.sending.get(&list.audience, &cust.id);
            if desired.as_ref() == confirmed && unsure.is_none() {
                return;
            }
            if let Some(old) = confirmed.filter(|old| desired.as_ref() != Some(*old)) {
                removes.push(Change {
                    id: cust.id.clone(),
                    member: old.clone(),
                });
            }
            if let Some(u) = unsure.filter(|u| {
                u.add && desired.as_ref() != Some(&u.member) && confirmed != Some(&u.member)
            }) {
                removes.push(Change {
                    id: cust.id.clone(),
                    member: u.member.clone(),
                });
            }
            if let Some(new) = desired {
                adds.push(Change {
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
            let unsure_ids: Vec<Box<str>> = self
                .sending
                .list(&list.audience)
                .map(|(id, _)| id.clone())
                .collect();
            for id in confirmed_ids.into_iter().chain(unsure_ids) {
                if let Some((c, _)) = db.customer(&id) {
                    if !seen.contains(c) {
                        seen.insert(c);
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

    /// Sends the delta of every list that is neither parked nor being replaced.
    pub(super) async fn cycle(&mut self) -> Result<(), Halt> {
        let dirty = std::mem::take(&mut *self.spec.dirty.customers.lock());
        if dirty.is_empty() && self.compare.is_empty() {
            return Ok(());
        }
        let lists = self.spec.lists.clone();
        // Every list is planned, and its counts shown, before the first request: one list's
        // retries may take minutes, and status must not show the others as they were.
        let mut plans = Vec::with_capacity(lists.len());
        for list in &lists {
            let a = &list.audience;
            if self.parked.contains(a) || self.active.contains_key(a) {
                // Compared in full when unparked or once the replacement is confirmed.
                continue;
            }
            let full = self.compare.remove(a);
            let (adds, removes, desired) = self.plan(list, full, &dirty);
            self.status.update(&self.spec.name, a, |s| {
                s.list_id = list.list_id.clone();
                s.desired = desired;
                s.pending_adds = adds.len() as u64;
                s.pending_removes = removes.len() as u64;
            });
            plans.push((list, full, adds, removes));
        }
        for (list, full, adds, removes) in plans {
            let a = &list.audience;
            let changed = !adds.is_empty() || !removes.is_empty();
            // Removes first: a member whose identifiers changed leaves with the old ones.
            let mut sent = self.push(list, removes, false).await;
            if sent.is_ok() {
                sent = self.push(list, adds, true).await;
            }
            if changed || self.snapshot_due.remove(a) {
                let all: Vec<RemoteMember> =
                    self.confirmed.list(a).map(|(_, m)| m.clone()).collect();
                if let Err(e) = self.call.dest().snapshot(list, &all).await {
                    self.record_error(a, &e);
                }
            }
            self.finish_delta_job(a, &sent);
            match sent {
                Ok(()) => {}
                Err(Halt::Stopped) => return Err(Halt::Stopped),
                Err(Halt::Later(_) | Halt::Paused) => {
                    // Not lost: compared again next time.
                    self.spec.dirty.customers.lock().extend(dirty.iter());
                    if full {
                        self.compare.insert(a.clone());
                    }
                }
                Err(Halt::Failed(_)) => {}
            }
        }
        Ok(())
    }

    /// An operator's delta resync ends with the full comparison it asked for.
    fn finish_delta_job(&mut self, audience: &str, sent: &Result<(), Halt>) {
        let now = self.clock.now();
        let parked = self.parked.contains(audience);
        self.status.update(&self.spec.name, audience, |s| {
            if let Some(j) = s
                .job
                .as_mut()
                .filter(|j| j.kind == "delta" && !j.finished())
            {
                match sent {
                    Ok(()) if !parked => j.state = "done".into(),
                    Err(Halt::Later(_) | Halt::Paused) => {
                        j.detail = "waiting for the network; retried".into();
                        return;
                    }
                    _ => {
                        j.state = "failed".into();
                        j.detail = s.last_error.clone();
                    }
                }
                j.finished_at = Some(now);
            }
        });
    }

    /// Sends changes in batches: each request paced and retried by the call path, its answer
    /// recorded before the next.
    async fn push(&mut self, list: &ListRef, changes: Vec<Change>, add: bool) -> Result<(), Halt> {
        let (mut ids, mut members): (Vec<Box<str>>, Vec<RemoteMember>) =
            changes.into_iter().map(|c| (c.id, c.member)).unzip();
        // One network session per push (Meta `session`): numbered batches, the last flagged.
        let mut batch = Batch {
            session_id: new_session_id(),
            seq: 0,
            last: false,
            estimated_total: members.len() as u64,
        };
        let op = if add { "add" } else { "remove" };
        while !members.is_empty() {
            let n = self.batch_size(&members);
            batch.seq += 1;
            batch.last = n == members.len();
            let (chunk, b) = (&members[..n], batch);
            if let Err(e) = self.sending.begin(&list.audience, add, &ids[..n], chunk) {
                // Not sent unrecorded: a crash could hide what the network applied.
                tracing::error!(error = %e, "members about to be sent not recorded; sending later");
                return Err(Halt::Later(PushError::Transient {
                    reason: format!("the store refused a write: {e}"),
                }));
            }
            let sent = self
                .call
                .call(op, Quota::Mutate, &list.audience, |d| async move {
                    if add {
                        d.add(list, chunk, b).await
                    } else {
                        d.remove(list, chunk, b).await
                    }
                })
                .await;
            match sent {
                Ok(accepted) => {
                    crate::failpoint::crash_point!("sync_after_accept");
                    let carried: Vec<(Box<str>, RemoteMember)> =
                        ids.drain(..n).zip(members.drain(..n)).collect();
                    let sent_ids: Vec<Box<str>> =
                        carried.iter().map(|(id, _)| id.clone()).collect();
                    self.accepted(list, add, carried, accepted);
                    self.sending.end(&list.audience, sent_ids.iter());
                }
                Err(Halt::Failed(PushError::MembersRefused { indices, reason })) => {
                    // Nothing of the batch was applied: set the named members aside and resend
                    // the rest at once.
                    self.sending.end(&list.audience, ids[..n].iter());
                    for i in refused_positions(indices, n) {
                        ids.remove(i);
                        let member = members.remove(i);
                        self.set_member_aside(&list.audience, member);
                    }
                    let msg = format!("members refused: {reason}");
                    self.status.update(&self.spec.name, &list.audience, |s| {
                        s.last_error = msg;
                        s.advice = "the refused members' identifiers are malformed at the network; they are retried when they change".into();
                    });
                }
                Err(Halt::Failed(PushError::TooLarge)) if n > 1 => {
                    self.sending.end(&list.audience, ids[..n].iter());
                    // Remembered for every later request of this destination.
                    self.cap = n / 2;
                    tracing::info!(destination = %self.spec.name, batch = self.cap, "request too large; batches now at most this size");
                }
                Err(Halt::Failed(PushError::TooLarge)) => {
                    let e = PushError::Permanent {
                        reason: "a single member is larger than the network accepts".into(),
                        advice: "see the log; this member cannot be sent".into(),
                    };
                    self.park(list, &e);
                    return Err(Halt::Failed(e));
                }
                Err(Halt::Failed(e @ PushError::SessionEnded { .. })) => {
                    // A delta session the network closed: the next cycle starts a new one.
                    self.record_error(&list.audience, &e);
                    return Err(Halt::Later(e));
                }
                Err(Halt::Failed(e)) => {
                    self.park(list, &e);
                    return Err(Halt::Failed(e));
                }
                Err(h) => return Err(h),
            }
        }
        Ok(())
    }

    /// How many of the leading `members` the next request carries: what the network takes,
    /// at most the size that last worked after a too-large answer, at least one.
    pub(super) fn batch_size(&self, members: &[RemoteMember]) -> usize {
        self.call
            .dest()
            .fit(members)
            .max(1)
            .min(members.len())
            .min(self.cap)
    }

    /// A member the network refused by name: kept off the list until its identifiers change.
    pub(super) fn set_member_aside(&mut self, audience: &str, member: RemoteMember) {
        tracing::warn!(destination = %self.spec.name, audience, member = %member.fingerprint(), "member refused by the network; set aside");
        self.set_aside.insert((audience.to_string(), member));
        let count = self.set_aside.iter().filter(|(a, _)| a == audience).count() as u64;
        self.status
            .update(&self.spec.name, audience, |s| s.set_aside = count);
    }

    /// Records an accepted request: in flight until its outcome is polled, or, when the answer
    /// is final, confirmed except the rows the network refused.
    fn accepted(
        &mut self,
        list: &ListRef,
        add: bool,
        carried: Vec<(Box<str>, RemoteMember)>,
        accepted: Accepted,
    ) {
        let a = &list.audience;
        let n = carried.len() as u64;
        let op = if add { "add" } else { "remove" };
        metrics::counter!(metric_names::SYNC_MEMBERS_SENT, "destination" => self.spec.name.clone(), "audience" => a.clone(), "op" => op)
            .increment(n);
        metrics::histogram!(metric_names::SYNC_BATCH_MEMBERS, "destination" => self.spec.name.clone())
            .record(n as f64);
        let now = self.clock.now();
        self.report_mut(a).accepted += n;
        self.report_mut(a).last_accepted_at = Some(now);
        self.status.update(&self.spec.name, a, |s| {
            s.last_success_at = Some(now);
            s.throttled_until = None;
            if s.set_aside == 0 {
                s.last_error.clear();
                s.advice.clear();
            }
            if add {
                s.pending_adds = s.pending_adds.saturating_sub(n);
            } else {
                s.pending_removes = s.pending_removes.saturating_sub(n);
            }
        });
        if let Some(request_id) = accepted.request_id {
            let op = if add {
                RequestOp::Add
            } else {
                RequestOp::Remove
            };
            // Recorded durably before anything counts on it; a crash before this line leaves
            // the members neither confirmed nor in flight, so the start-up comparison resends
            // them (adds and removes are idempotent).
            if let Err(e) = self.inflight.insert(request_id, a, op, None, carried) {
                tracing::error!(error = %e, "accepted request not recorded; its members are compared again at the next reconciliation");
            }
            crate::failpoint::crash_point!("sync_after_outstanding");
            return;
        }
        // A final answer: everything but the refused rows is applied.
        self.refresh_soon(a, self.spec.poll_interval);
        let refused: HashSet<usize> = accepted.refused.indices.iter().copied().collect();
        self.report_mut(a).processed += n;
        self.report_mut(a).refuse(&accepted.refused.by_reason);
        for (reason, count) in &accepted.refused.by_reason {
            metrics::counter!(metric_names::SYNC_MEMBERS_REFUSED, "destination" => self.spec.name.clone(),
                "audience" => a.clone(), "reason" => reason.clone())
            .increment(*count);
        }
        let mut changes = Vec::with_capacity(carried.len());
        let mut removed = Vec::new();
        for (i, (id, m)) in carried.into_iter().enumerate() {
            if refused.contains(&i) {
                if add {
                    self.set_member_aside(a, m);
                }
                continue;
            }
            if add {
                changes.push((id, Some(m)));
            } else {
                changes.push((id.clone(), None));
                removed.push((id, m));
            }
        }
        if let Err(e) = self.confirmed.apply(a, &changes) {
            tracing::error!(error = %e, "confirmed list write failed");
        }
        if !removed.is_empty() {
            self.unconfirm_matching(a, &removed);
        }
    }

    /// After a removal: the network also dropped every member sharing an identifier with a
    /// removed one (it matches people, not rows). Those are no longer confirmed and are marked
    /// dirty, so the next cycle adds them back (a household sharing a phone stays listed when
    /// one of them leaves).
    pub(super) fn unconfirm_matching(
        &mut self,
        audience: &str,
        removed: &[(Box<str>, RemoteMember)],
    ) {
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
            tracing::error!(error = %e, "confirmed list write failed");
        }
        self.mark_dirty(dropped.iter().map(|(id, _)| &**id));
    }
}
