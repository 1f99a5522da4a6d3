//! Full resyncs as durable jobs. A job replaces one remote list with the audience's desired
//! members; every step is recorded in the sled tree `jobs.<destination>` before the next one,
//! so a job resumes after any error or a kill -9 where it stopped, and the members the network
//! confirmed so far wait in `staged.<destination>` until the whole replacement's outcome is
//! known. Only then does the confirmed list become them (`Jobs::staged` → `Confirmed::replace`).
//!
//! Invariants:
//! - `as_of` is fixed when the job is created; a resumed job sends the same `removeAll(as_of)`,
//!   which removes only members uploaded before it, never the job's own uploads.
//! - A Meta replace session is closed (`last_batch_flag`) before its window ends; what it
//!   received stands, and members not sent by then are added by the delta after the job.
//! - Members are sent in customer-id order; `cursor` is the last id the network accepted.

use serde::{Deserialize, Serialize};

use super::member::RemoteMember;
use super::member_key;
use crate::ledger::records::{decode, encode};
use crate::ledger::store::StoreError;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Clearing the list (Google `removeAll`) is next.
    Begin,
    /// Sending the desired members.
    Sending,
    /// Everything sent: waiting for the network's outcome.
    Verifying,
    /// The confirmed list is the replaced list.
    Done,
    /// Given up; `error` says why.
    Failed,
}

impl Phase {
    /// The word `status` shows.
    pub fn word(self) -> &'static str {
        match self {
            Phase::Begin => "removing",
            Phase::Sending => "sending",
            Phase::Verifying => "verifying",
            Phase::Done => "done",
            Phase::Failed => "failed",
        }
    }
}

/// One full resync of one list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The number in `resync-N`.
    pub id: u64,
    /// The list's audience.
    pub audience: String,
    /// Members uploaded before this (Unix nanoseconds, wall clock) are removed.
    pub as_of: i64,
    /// Where it is.
    pub phase: Phase,
    /// `removeAll` must be (re)sent: at the start, and after the network failed it.
    pub needs_remove_all: bool,
    /// Replace session id (Meta).
    pub session_id: u64,
    /// When the session's first batch was accepted (Unix nanoseconds).
    pub session_started: Option<i64>,
    /// Batches sent in the session.
    pub seq: u64,
    /// The last customer id the network accepted.
    pub cursor: Option<Box<str>>,
    /// Members sent.
    pub sent: u64,
    /// Members to send.
    pub total: u64,
    /// Times the whole replacement was started over after the network failed it.
    pub restarts: u32,
    /// When it was created (Unix nanoseconds, the daemon's clock).
    pub created_at: i64,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// Why it failed, or what it waits for.
    pub detail: String,
}

impl Job {
    /// A new job for `audience`.
    pub fn new(id: u64, audience: &str, as_of: i64, created_at: i64, session_id: u64) -> Self {
        Self {
            id,
            audience: audience.to_string(),
            as_of,
            phase: Phase::Begin,
            needs_remove_all: true,
            session_id,
            session_started: None,
            seq: 0,
            cursor: None,
            sent: 0,
            total: 0,
            restarts: 0,
            created_at,
            finished_at: None,
            detail: String::new(),
        }
    }

    /// Still to do.
    pub fn active(&self) -> bool {
        !matches!(self.phase, Phase::Done | Phase::Failed)
    }

    /// Its status line.
    pub fn status(&self) -> super::status::JobStatus {
        super::status::JobStatus {
            id: format!("resync-{}", self.id),
            kind: "full".into(),
            state: self.phase.word().into(),
            sent: self.sent,
            total: self.total,
            started_at: Some(self.created_at),
            finished_at: self.finished_at,
            detail: self.detail.clone(),
        }
    }
}

/// The jobs of one destination and the members their networks confirmed so far.
pub struct Jobs {
    jobs: sled::Tree,
    staged: sled::Tree,
}

impl Jobs {
    /// Over the destination's `jobs.<name>` and `staged.<name>` trees.
    pub fn new(jobs: sled::Tree, staged: sled::Tree) -> Self {
        Self { jobs, staged }
    }

    /// Every stored job, the newest per audience last.
    pub fn load(&self) -> Result<Vec<Job>, StoreError> {
        let mut out = Vec::new();
        for item in self.jobs.iter() {
            let (k, v) = item?;
            match decode::<Job>(&v) {
                Ok(j) => out.push(j),
                Err(e) => {
                    tracing::warn!(key = %String::from_utf8_lossy(&k), error = %e, "unreadable resync job dropped");
                    self.jobs.remove(k)?;
                }
            }
        }
        out.sort_by_key(|j| j.id);
        Ok(out)
    }

    /// Records a step durably (synced: the next step relies on it).
    pub fn save(&self, job: &Job) -> Result<(), StoreError> {
        self.jobs.insert(job.audience.as_bytes(), encode(job))?;
        self.jobs.flush()?;
        Ok(())
    }

    /// Members the network confirmed for a job's list.
    pub fn stage(
        &self,
        audience: &str,
        members: &[(Box<str>, RemoteMember)],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (id, m) in members {
            batch.insert(member_key::key(audience, id), encode(m));
        }
        self.staged.apply_batch(batch)?;
        self.staged.flush()?;
        Ok(())
    }

    /// Everything staged for `audience`.
    pub fn staged(&self, audience: &str) -> Result<Vec<(Box<str>, RemoteMember)>, StoreError> {
        let prefix = member_key::list_prefix(audience);
        let mut out = Vec::new();
        for item in self.staged.scan_prefix(&prefix) {
            let (k, v) = item?;
            let id: Box<str> = String::from_utf8_lossy(&k[prefix.len()..]).into();
            let m: RemoteMember = decode(&v).map_err(|source| StoreError::Corrupt {
                tree: "staged",
                key: hex::encode(&k),
                source,
            })?;
            out.push((id, m));
        }
        Ok(out)
    }

    /// Forgets what was staged for `audience` (the job ended or starts over).
    pub fn clear_staged(&self, audience: &str) -> Result<(), StoreError> {
        let prefix = member_key::list_prefix(audience);
        let mut batch = sled::Batch::default();
        for item in self.staged.scan_prefix(&prefix) {
            let (k, _) = item?;
            batch.remove(k);
        }
        self.staged.apply_batch(batch)?;
        self.staged.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_and_staged_members_round_trip_per_audience() {
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let jobs = Jobs::new(
            db.open_tree("jobs.t").expect("jobs"),
            db.open_tree("staged.t").expect("staged"),
        );
        let mut j = Job::new(3, "vip", 1_000, 2_000, 42);
        jobs.save(&j).expect("save");
        j.phase = Phase::Sending;
        j.cursor = Some("c9".into());
        jobs.save(&j).expect("save again");
        jobs.save(&Job::new(4, "lapsed_90", 1, 2, 43))
            .expect("other");
        let loaded = jobs.load().expect("load");
        assert_eq!(loaded.len(), 2, "one job per audience");
        assert_eq!(loaded[0].id, 3);
        assert_eq!(loaded[0].phase, Phase::Sending);
        assert_eq!(loaded[0].cursor.as_deref(), Some("c9"));
        assert_eq!(loaded[0].status().id, "resync-3");

        let m = RemoteMember::default();
        jobs.stage("vip", &[("a".into(), m.clone()), ("b".into(), m.clone())])
            .expect("stage");
        jobs.stage("vip_x", &[("z".into(), m.clone())])
            .expect("stage");
        let staged = jobs.staged("vip").expect("staged");
        let ids: Vec<&str> = staged.iter().map(|(id, _)| &**id).collect();
        assert_eq!(ids, vec!["a", "b"], "not the list whose name extends it");
        jobs.clear_staged("vip").expect("clear");
        assert!(jobs.staged("vip").expect("staged").is_empty());
        assert_eq!(jobs.staged("vip_x").expect("other").len(), 1);
    }
}
