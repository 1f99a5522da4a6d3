//! Audience size history: every audience's size and eligible size, sampled by the writer each
//! `storage.size_sample_interval` of the daemon's clock (so a manual clock drives it in tests),
//! kept in memory and in the sled tree `audience_sizes`, dropped after
//! `storage.size_history_retention`.
//!
//! Memberships keep no record of past sizes, and the change log is pruned and too costly to
//! replay for a chart, hence this small record of its own. It feeds the status page and
//! `AudienceService.GetAudienceSizeHistory`.

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::audience::{Audience, Audiences};
use crate::clock::Nanos;
use crate::ledger::records::{decode, encode};
use crate::ledger::store::{Store, StoreError};

/// The sled tree: key the sample's time (nanoseconds, u64 BE), value [`encode`]d
/// `Vec<AudienceSize>`.
pub const TREE: &str = "audience_sizes";

/// One audience's size at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudienceSize {
    /// Members.
    pub size: u64,
    /// Members eligible for push.
    pub eligible: u64,
}

/// Every audience's size at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeSample {
    /// When, by the daemon's clock.
    pub at: Nanos,
    /// Indexed by audience number (position in [`Audience::ALL`]); samples written before an
    /// audience was added are shorter.
    pub sizes: Vec<AudienceSize>,
}

/// The samples, oldest first.
pub struct SizeHistory {
    tree: sled::Tree,
    samples: RwLock<VecDeque<SizeSample>>,
    interval: Nanos,
    retention: Nanos,
}

fn nanos(d: Duration) -> Nanos {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn key(at: Nanos) -> [u8; 8] {
    u64::try_from(at).unwrap_or(0).to_be_bytes()
}

impl SizeHistory {
    /// Loads the stored samples.
    pub fn open(
        store: &Store,
        interval: Duration,
        retention: Duration,
    ) -> Result<Self, StoreError> {
        let tree = store.open_tree(TREE)?;
        let mut samples = VecDeque::new();
        for item in tree.iter() {
            let (k, v) = item?;
            let corrupt = |source| StoreError::Corrupt {
                tree: TREE,
                key: hex::encode(&k),
                source,
            };
            let bytes: [u8; 8] = k
                .as_ref()
                .try_into()
                .map_err(|_| corrupt(crate::ledger::records::CodecError::Empty))?;
            let at = i64::try_from(u64::from_be_bytes(bytes)).unwrap_or(i64::MAX);
            let sizes: Vec<AudienceSize> = decode(&v).map_err(corrupt)?;
            samples.push_back(SizeSample { at, sizes });
        }
        Ok(Self {
            tree,
            samples: RwLock::new(samples),
            interval: nanos(interval).max(1),
            retention: nanos(retention),
        })
    }

    /// The sampling period.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.interval).unwrap_or(0))
    }

    /// Whether a sample is due at `now`: none yet, or the last is an interval old. (A clock
    /// that moved backwards waits until it passes the last sample again.)
    pub fn due(&self, now: Nanos) -> bool {
        self.samples
            .read()
            .back()
            .is_none_or(|last| now >= last.at.saturating_add(self.interval))
    }

    /// Adds a sample later than every other and drops those past retention. Not synced on its
    /// own: sled's flusher writes it within half a second and the next checkpoint syncs it,
    /// and a sample lost to a crash is only a gap in a chart.
    pub fn record(&self, sample: SizeSample) -> Result<(), StoreError> {
        let mut samples = self.samples.write();
        if samples.back().is_some_and(|last| last.at >= sample.at) {
            return Ok(());
        }
        self.tree.insert(key(sample.at), encode(&sample.sizes))?;
        let cutoff = sample.at.saturating_sub(self.retention);
        samples.push_back(sample);
        let mut batch = sled::Batch::default();
        while samples.front().is_some_and(|s| s.at < cutoff) {
            if let Some(old) = samples.pop_front() {
                batch.remove(&key(old.at));
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// The samples taken in `since..=until`, evenly thinned to at most `max_points` (at
    /// least 1), always keeping the latest.
    pub fn range(&self, since: Nanos, until: Nanos, max_points: usize) -> Vec<SizeSample> {
        let samples = self.samples.read();
        let first = samples.partition_point(|s| s.at < since);
        let end = samples.partition_point(|s| s.at <= until);
        let n = end.saturating_sub(first);
        let stride = n.div_ceil(max_points.max(1)).max(1);
        // Anchored at the newest sample, so the current size is always a point.
        let skip = (n + stride - 1) % stride;
        samples
            .range(first..end.max(first))
            .skip(skip)
            .step_by(stride)
            .cloned()
            .collect()
    }

    /// The newest sample.
    pub fn latest(&self) -> Option<SizeSample> {
        self.samples.read().back().cloned()
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.samples.read().len()
    }

    /// Whether no sample was taken yet.
    pub fn is_empty(&self) -> bool {
        self.samples.read().is_empty()
    }
}

/// Every audience's size now.
pub fn measure(audiences: &Audiences) -> Vec<AudienceSize> {
    Audience::ALL
        .iter()
        .map(|a| {
            let members = audiences.members(*a);
            AudienceSize {
                size: members.len(),
                eligible: members.intersection_len(audiences.eligible()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StorageConfig;

    const MIN: Nanos = 60 * crate::clock::NANOS_PER_SEC;

    fn store(dir: &std::path::Path) -> Store {
        Store::open(&StorageConfig {
            data_dir: dir.join("data"),
            fsync: false,
            ..StorageConfig::default()
        })
        .expect("open")
    }

    fn sample(at: Nanos, size: u64) -> SizeSample {
        SizeSample {
            at,
            sizes: vec![AudienceSize {
                size,
                eligible: size / 2,
            }],
        }
    }

    #[test]
    fn due_every_interval_and_kept_for_the_retention() {
        let tmp = tempfile::tempdir().expect("tmp");
        let s = store(tmp.path());
        let h = SizeHistory::open(&s, Duration::from_secs(300), Duration::from_secs(3600))
            .expect("open");
        assert!(h.due(0));
        h.record(sample(10 * MIN, 1)).expect("record");
        assert!(!h.due(14 * MIN));
        assert!(h.due(15 * MIN));
        // Not later than the last: ignored.
        h.record(sample(10 * MIN, 9)).expect("record");
        assert_eq!(h.len(), 1);
        for m in (15..=70).step_by(5) {
            h.record(sample(m * MIN, m as u64)).expect("record");
        }
        // 70 min - 60 min retention: everything before minute 10 is gone, minute 10 stays.
        assert_eq!(
            h.range(0, i64::MAX, 1000).first().map(|s| s.at),
            Some(10 * MIN)
        );
        h.record(sample(75 * MIN, 75)).expect("record");
        assert_eq!(
            h.range(0, i64::MAX, 1000).first().map(|s| s.at),
            Some(15 * MIN)
        );
        assert_eq!(h.len(), 13);
        drop(h);
        // The tree holds exactly what memory does.
        let again = SizeHistory::open(&s, Duration::from_secs(300), Duration::from_secs(3600))
            .expect("reopen");
        assert_eq!(
            again.range(0, i64::MAX, 1000),
            (15..=75)
                .step_by(5)
                .map(|m| sample(m * MIN, m as u64))
                .collect::<Vec<_>>()
        );
        assert_eq!(again.latest(), Some(sample(75 * MIN, 75)));
    }

    #[test]
    fn ranges_are_thinned_evenly_keeping_the_latest() {
        let tmp = tempfile::tempdir().expect("tmp");
        let s = store(tmp.path());
        let h = SizeHistory::open(&s, Duration::from_secs(60), Duration::from_secs(86_400))
            .expect("open");
        for m in 1..=10 {
            h.record(sample(m * MIN, m as u64)).expect("record");
        }
        let at = |v: Vec<SizeSample>| v.iter().map(|s| s.at / MIN).collect::<Vec<_>>();
        assert_eq!(at(h.range(3 * MIN, 6 * MIN, 100)), [3, 4, 5, 6]);
        assert_eq!(at(h.range(0, i64::MAX, 5)), [2, 4, 6, 8, 10]);
        assert_eq!(at(h.range(0, i64::MAX, 4)), [1, 4, 7, 10]);
        assert_eq!(at(h.range(0, i64::MAX, 1)), [10]);
        assert_eq!(at(h.range(0, i64::MAX, 0)), [10]);
        assert!(h.range(11 * MIN, 20 * MIN, 10).is_empty());
        assert!(h.range(6 * MIN, 3 * MIN, 10).is_empty());
    }
}
