//! What an operator sees of each destination × audience: the engine's own counts (desired,
//! confirmed, in flight), what the network reported (refusals by reason, match rate, list size,
//! processing status), and the resync jobs. Shared with the admin API, the status page and the
//! metrics exporter; the worker is its only writer.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::clock::Nanos;
use crate::ledger::records::{decode, encode};

/// The sync state of one destination × audience, for `GetSyncStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListStatus {
    /// Eligible members, not held out, that should be on the list.
    pub desired: u64,
    /// Members whose add the network confirmed as applied.
    pub confirmed: u64,
    /// Adds found by the last cycle and not yet sent.
    pub pending_adds: u64,
    /// Removes found by the last cycle and not yet sent.
    pub pending_removes: u64,
    /// Members sent whose outcome the network has not told yet (neither confirmed nor resent).
    pub in_flight: u64,
    /// Last request the network accepted.
    pub last_success_at: Option<Nanos>,
    /// Last error.
    pub last_error: String,
    /// What to do about it.
    pub advice: String,
    /// Parked on a permanent error until a resync.
    pub parked: bool,
    /// Members the network refused by name, kept aside until their identifiers change.
    pub set_aside: u64,
    /// The remote list id.
    pub list_id: String,
    /// While throttled or paused: no request to this destination before this instant.
    pub throttled_until: Option<Nanos>,
    /// The pause is a spent per-day quota (until it resets), not a short throttle.
    pub paused_daily: bool,
    /// What the network reported, kept across restarts.
    pub report: ListReport,
    /// The newest resync job of this list.
    pub job: Option<JobStatus>,
}

impl ListStatus {
    /// Whether the remote list is what the daemon wants, as far as the network confirmed:
    /// every desired member confirmed, nothing in flight or pending, no error, and no
    /// difference the network has not explained (its refusals are explained differences).
    pub fn in_sync(&self) -> bool {
        let explained = self.set_aside + self.report.refused_total();
        !self.parked
            && self.last_error.is_empty()
            && self.in_flight == 0
            && self.pending_adds == 0
            && self.pending_removes == 0
            && self.job.as_ref().is_none_or(|j| j.finished())
            && self.confirmed + explained >= self.desired
            && self.confirmed <= self.desired + explained
    }
}

/// What the networks reported about one list, persisted in the sled tree
/// `report.<destination>` (audience → record) so a restart keeps showing it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListReport {
    /// Members in requests the network accepted (adds and removes).
    pub accepted: u64,
    /// Members in requests whose outcome is known: applied or refused.
    pub processed: u64,
    /// Rows the network refused since the last full resync, per reason.
    pub refused: BTreeMap<String, u64>,
    /// The upload match-rate range of the newest processed request (Google).
    pub upload_match_rate: String,
    /// The list as the network describes it.
    pub network: NetworkReport,
    /// When the network last accepted a request for the list.
    pub last_accepted_at: Option<Nanos>,
}

impl ListReport {
    /// Rows refused in all.
    pub fn refused_total(&self) -> u64 {
        self.refused.values().sum()
    }

    /// Adds refusals per reason.
    pub fn refuse(&mut self, by_reason: &BTreeMap<String, u64>) {
        for (reason, n) in by_reason {
            *self.refused.entry(reason.clone()).or_default() += n;
        }
    }
}

/// The network's own description of a list (read on the read quota).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkReport {
    /// Lower bound of the size the network reports.
    pub size_lower: Option<u64>,
    /// Upper bound of the size the network reports.
    pub size_upper: Option<u64>,
    /// Match rate the network reports for the list.
    pub match_rate: String,
    /// The network's processing status of the list (Meta `operation_status`).
    pub operation_status: String,
    /// When it was read.
    pub read_at: Option<Nanos>,
}

/// Loads and saves [`ListReport`]s of one destination.
pub struct Reports {
    tree: sled::Tree,
}

impl Reports {
    /// Over the destination's `report.<name>` tree.
    pub fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    /// The stored report of `audience`, or an empty one.
    pub fn load(&self, audience: &str) -> ListReport {
        self.tree
            .get(audience.as_bytes())
            .ok()
            .flatten()
            .and_then(|v| decode(&v).ok())
            .unwrap_or_default()
    }

    /// Stores it (not synced: a report lost to a power cut is only a counter behind).
    pub fn save(&self, audience: &str, report: &ListReport) {
        if let Err(e) = self.tree.insert(audience.as_bytes(), encode(report)) {
            tracing::warn!(error = %e, "sync report not stored");
        }
    }
}

/// A resync job's progress as `status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobStatus {
    /// `resync-N`, as `resync` printed it.
    pub id: String,
    /// `full` (the remote list replaced) or `delta` (a full comparison).
    pub kind: String,
    /// `queued`, `removing`, `sending`, `verifying`, `done` or `failed`.
    pub state: String,
    /// Members sent so far.
    pub sent: u64,
    /// Members to send in all.
    pub total: u64,
    /// When the worker took it up.
    pub started_at: Option<Nanos>,
    /// When it ended.
    pub finished_at: Option<Nanos>,
    /// Why it failed, or what it is waiting for.
    pub detail: String,
}

impl JobStatus {
    /// Done or failed.
    pub fn finished(&self) -> bool {
        self.state == "done" || self.state == "failed"
    }
}

/// Status of every destination × audience, shared with the admin API.
#[derive(Default)]
pub struct StatusBoard {
    lists: Mutex<BTreeMap<(String, String), ListStatus>>,
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

    /// Changes one list's status.
    pub fn update(&self, dest: &str, audience: &str, f: impl FnOnce(&mut ListStatus)) {
        let mut lists = self.lists.lock();
        f(lists
            .entry((dest.to_string(), audience.to_string()))
            .or_default());
    }

    /// Changes the status of every list of one destination.
    pub fn update_destination(&self, dest: &str, mut f: impl FnMut(&mut ListStatus)) {
        let mut lists = self.lists.lock();
        for ((d, _), s) in lists.iter_mut() {
            if d == dest {
                f(s);
            }
        }
    }

    /// Drops lists no longer configured (after a reload).
    pub fn retain(&self, keep: impl Fn(&(String, String)) -> bool) {
        self.lists.lock().retain(|k, _| keep(k));
    }

    /// The newest job of a list.
    pub fn job(&self, dest: &str, audience: &str) -> Option<JobStatus> {
        self.lists
            .lock()
            .get(&(dest.to_string(), audience.to_string()))?
            .job
            .clone()
    }
}
