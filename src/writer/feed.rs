//! The change feed the writer publishes: after each commit, tick or reload, the customers
//! whose facts or memberships changed are marked in one dirty set per subscriber (a
//! destination's worker), and the subscriber is woken. Marks coalesce, so a slow subscriber
//! never holds the writer up.

use std::sync::Arc;

use parking_lot::Mutex;
use roaring::RoaringBitmap;
use tokio::sync::Notify;

use crate::ledger::state::CustomerIdx;

/// The dirty sets of every destination, written by the writer after each change.
#[derive(Clone, Default)]
pub struct ChangeFeed {
    targets: Arc<parking_lot::RwLock<Vec<Arc<DirtySet>>>>,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChangeFeed({} destinations)", self.targets.read().len())
    }
}

/// Customers changed since a destination's last cycle, and a bell to ring.
#[derive(Default)]
pub struct DirtySet {
    /// Dense customer indices.
    pub customers: Mutex<RoaringBitmap>,
    /// Wakes the worker.
    pub notify: Notify,
}

impl ChangeFeed {
    /// One dirty set per destination.
    pub fn new(destinations: usize) -> Self {
        let feed = Self::default();
        feed.reset(destinations);
        feed
    }

    /// Fresh dirty sets for a new set of destinations (config reload; new workers start with a
    /// full comparison, so nothing marked before is needed).
    pub fn reset(&self, destinations: usize) {
        *self.targets.write() = (0..destinations).map(|_| Arc::default()).collect();
    }

    /// Takes over `other`'s dirty sets: the writer then feeds the workers built with `other`.
    pub fn adopt(&self, other: &ChangeFeed) {
        let new = other.targets.read().clone();
        *self.targets.write() = new;
    }

    /// The dirty set of destination `i`: what its worker reads and is woken by.
    pub fn subscribe(&self, i: usize) -> Arc<DirtySet> {
        self.targets.read().get(i).cloned().unwrap_or_default()
    }

    /// Marks customers dirty for every destination.
    pub fn mark(&self, customers: &[CustomerIdx]) {
        if customers.is_empty() {
            return;
        }
        for t in self.targets.read().iter() {
            t.customers.lock().extend(customers.iter().copied());
            t.notify.notify_one();
        }
    }
}
