//! Requests the network accepted whose outcome is not known yet (Google processes every
//! request asynchronously). Each is kept durably, with the members it carried, in the sled
//! tree `outstanding.<destination>` until its outcome is read, so a restart still polls it.
//! Its members are in flight: neither confirmed nor sent again.
//!
//! Polls follow the network's diagnostics guide: the first after a configured wait, then an
//! exponentially growing interval.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::member::RemoteMember;
use crate::ledger::records::{decode, encode};
use crate::ledger::store::StoreError;

/// Longest interval between two polls of one request.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(3600);

/// What a request did to its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Added its members.
    Add,
    /// Removed its members.
    Remove,
    /// Removed everyone uploaded before a time (the start of a full resync).
    RemoveAll,
}

/// One accepted request awaiting its outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The network's request id.
    pub request_id: String,
    /// The list's audience.
    pub audience: String,
    /// What it does.
    pub op: Op,
    /// The resync job it belongs to, if any.
    pub job: Option<u64>,
    /// (customer id, member) as sent.
    pub entries: Vec<(Box<str>, RemoteMember)>,
    /// When it was accepted (Unix nanoseconds, wall clock).
    pub sent_at: i64,
    /// Polls so far.
    pub polls: u32,
    /// When to poll next (Unix nanoseconds, wall clock).
    pub next_poll_at: i64,
    /// A full resync of its list started after it was sent: its outcome no longer decides
    /// what is confirmed (the resync does); its members are only compared again.
    pub superseded: bool,
}

/// Unix nanoseconds now, on the wall clock the network's own timing follows.
pub fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn later(from: i64, d: Duration) -> i64 {
    from.saturating_add(d.as_nanos().min(i64::MAX as u128) as i64)
}

/// The accepted-but-unfinished requests of one destination.
pub struct InFlight {
    tree: sled::Tree,
    requests: HashMap<String, Request>,
    /// audience → customer → requests carrying it.
    members: HashMap<String, HashMap<Box<str>, u32>>,
    first_poll: Duration,
    poll_interval: Duration,
}

impl InFlight {
    /// Loads the destination's outstanding requests.
    pub fn load(
        tree: sled::Tree,
        first_poll: Duration,
        poll_interval: Duration,
    ) -> Result<Self, StoreError> {
        let mut me = Self {
            tree,
            requests: HashMap::new(),
            members: HashMap::new(),
            first_poll,
            poll_interval,
        };
        for item in me.tree.iter() {
            let (k, v) = item?;
            match decode::<Request>(&v) {
                Ok(r) => me.index(r),
                Err(e) => {
                    // A record from an older layout: its outcome can no longer be tied to
                    // members, so it is dropped and the next full comparison resends them.
                    tracing::warn!(key = %String::from_utf8_lossy(&k), error = %e, "unreadable outstanding request dropped");
                    me.tree.remove(k)?;
                }
            }
        }
        Ok(me)
    }

    fn index(&mut self, r: Request) {
        let list = self.members.entry(r.audience.clone()).or_default();
        for (id, _) in &r.entries {
            *list.entry(id.clone()).or_default() += 1;
        }
        self.requests.insert(r.request_id.clone(), r);
    }

    /// Records an accepted request durably (synced: a request forgotten while its members
    /// count as in flight would leave them neither confirmed nor resent).
    pub fn insert(
        &mut self,
        request_id: String,
        audience: &str,
        op: Op,
        job: Option<u64>,
        entries: Vec<(Box<str>, RemoteMember)>,
    ) -> Result<(), StoreError> {
        let now = wall_now();
        let r = Request {
            request_id,
            audience: audience.to_string(),
            op,
            job,
            entries,
            sent_at: now,
            polls: 0,
            next_poll_at: later(now, self.first_poll),
            superseded: false,
        };
        self.tree.insert(r.request_id.as_bytes(), encode(&r))?;
        self.tree.flush()?;
        self.index(r);
        Ok(())
    }

    /// Whether `customer` is in a request of `audience` still awaiting its outcome.
    pub fn contains(&self, audience: &str, customer: &str) -> bool {
        self.members
            .get(audience)
            .is_some_and(|m| m.contains_key(customer))
    }

    /// Members of `audience` in flight.
    pub fn count(&self, audience: &str) -> u64 {
        self.members.get(audience).map_or(0, |m| m.len() as u64)
    }

    /// Requests of a job still awaiting their outcome.
    pub fn of_job(&self, job: u64) -> usize {
        self.requests
            .values()
            .filter(|r| r.job == Some(job))
            .count()
    }

    /// Ids of the requests due for a poll, oldest first.
    pub fn due(&self, now: i64) -> Vec<String> {
        let mut due: Vec<&Request> = self
            .requests
            .values()
            .filter(|r| r.next_poll_at <= now)
            .collect();
        due.sort_by_key(|r| r.next_poll_at);
        due.into_iter().map(|r| r.request_id.clone()).collect()
    }

    /// When the next poll is due.
    pub fn next_due(&self) -> Option<i64> {
        self.requests.values().map(|r| r.next_poll_at).min()
    }

    /// The request with this id.
    pub fn get(&self, request_id: &str) -> Option<&Request> {
        self.requests.get(request_id)
    }

    /// A poll found it still processing: poll again after a longer wait.
    pub fn backoff(&mut self, request_id: &str) {
        let Some(r) = self.requests.get_mut(request_id) else {
            return;
        };
        r.polls += 1;
        let wait = self
            .poll_interval
            .saturating_mul(1u32 << r.polls.min(12).saturating_sub(1))
            .min(MAX_POLL_INTERVAL);
        r.next_poll_at = later(wall_now(), wait);
        let _ = self.tree.insert(r.request_id.as_bytes(), encode(&*r));
    }

    /// Its outcome is known: forget it.
    pub fn finish(&mut self, request_id: &str) -> Option<Request> {
        let r = self.requests.remove(request_id)?;
        if let Some(list) = self.members.get_mut(&r.audience) {
            for (id, _) in &r.entries {
                if let Some(n) = list.get_mut(id) {
                    *n -= 1;
                    if *n == 0 {
                        list.remove(id);
                    }
                }
            }
        }
        if let Err(e) = self.tree.remove(request_id.as_bytes()) {
            tracing::warn!(error = %e, "finished request not removed from the store");
        }
        Some(r)
    }

    /// A full resync of `audience` starts: every delta request still out for it stops deciding
    /// what is confirmed.
    pub fn supersede(&mut self, audience: &str) {
        for r in self.requests.values_mut() {
            if r.audience == audience && r.job.is_none() && !r.superseded {
                r.superseded = true;
                let _ = self.tree.insert(r.request_id.as_bytes(), encode(&*r));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> sled::Tree {
        let db = sled::Config::new().temporary(true).open().expect("sled");
        db.open_tree("outstanding.t").expect("tree")
    }

    fn entries(ids: &[&str]) -> Vec<(Box<str>, RemoteMember)> {
        ids.iter()
            .map(|id| (Box::from(*id), RemoteMember::default()))
            .collect()
    }

    #[test]
    fn members_are_in_flight_until_their_request_finishes_and_survive_a_reload() {
        let t = tree();
        let mut f =
            InFlight::load(t.clone(), Duration::ZERO, Duration::from_secs(1)).expect("load");
        f.insert("r1".into(), "vip", Op::Add, None, entries(&["a", "b"]))
            .expect("insert");
        f.insert("r2".into(), "vip", Op::Remove, None, entries(&["b"]))
            .expect("insert");
        assert!(f.contains("vip", "a") && f.contains("vip", "b"));
        assert!(!f.contains("lapsed_90", "a"));
        assert_eq!(f.count("vip"), 2);

        let mut f = InFlight::load(t, Duration::ZERO, Duration::from_secs(1)).expect("reload");
        assert_eq!(f.count("vip"), 2, "recorded durably");
        let r = f.finish("r1").expect("r1");
        assert_eq!(r.entries.len(), 2);
        assert!(!f.contains("vip", "a"));
        assert!(f.contains("vip", "b"), "still carried by r2");
        assert!(f.finish("r1").is_none());
    }

    #[test]
    fn polls_wait_first_then_back_off_exponentially() {
        let first = Duration::from_secs(1800);
        let mut f = InFlight::load(tree(), first, Duration::from_secs(60)).expect("load");
        f.insert("r".into(), "vip", Op::Add, None, entries(&["a"]))
            .expect("insert");
        let now = wall_now();
        assert!(f.due(now).is_empty(), "not before the first wait");
        assert_eq!(
            f.due(now + first.as_nanos() as i64 + 1),
            vec!["r".to_string()]
        );
        let mut waits = Vec::new();
        for _ in 0..8 {
            let before = wall_now();
            f.backoff("r");
            let at = f.get("r").expect("r").next_poll_at;
            waits.push(Duration::from_nanos((at - before) as u64).as_secs());
        }
        // 60, 120, 240, ... capped at an hour (give or take the clock's progress).
        assert!(waits[0] >= 59 && waits[0] <= 60, "{waits:?}");
        assert!(waits[1] >= 119 && waits[1] <= 120, "{waits:?}");
        assert!(waits[2] >= 239 && waits[2] <= 240, "{waits:?}");
        assert!(waits.iter().all(|w| *w <= 3600), "{waits:?}");
        assert!(waits[7] >= 3599, "{waits:?}");
    }

    #[test]
    fn a_full_resync_supersedes_delta_requests_of_its_list_only() {
        let mut f = InFlight::load(tree(), Duration::ZERO, Duration::from_secs(1)).expect("load");
        f.insert("d".into(), "vip", Op::Add, None, entries(&["a"]))
            .expect("insert");
        f.insert("j".into(), "vip", Op::Add, Some(7), entries(&["b"]))
            .expect("insert");
        f.insert("o".into(), "lapsed_90", Op::Add, None, entries(&["c"]))
            .expect("insert");
        f.supersede("vip");
        assert!(f.get("d").expect("d").superseded);
        assert!(!f.get("j").expect("j").superseded, "the job's own request");
        assert!(!f.get("o").expect("o").superseded, "another list");
        assert_eq!(f.of_job(7), 1);
    }
}
