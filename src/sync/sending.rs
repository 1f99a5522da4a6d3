//! Members of delta requests on their way to the network, recorded before a request leaves
//! and dropped once its answer is recorded (or the network refused it whole).
//!
//! Between the two, what the network did is unknown: it may have applied the request just
//! before the daemon died, or a request that timed out. A member still recorded here is
//! *unsure*, and the next plan sends it whatever its desired state says (added if it should be
//! on the list, removed with the identifiers it was sent with if not), whatever the confirmed
//! list holds. Without this, a member added just before a crash who then withdrew consent
//! would stay on the remote list, and the confirmed list would never know.

use std::collections::HashMap;

use super::member_key::{key, load};
use crate::ledger::records::encode;
use crate::ledger::store::StoreError;
use crate::sync::member::RemoteMember;

/// What a request was doing with an unsure member.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Unsure {
    /// An add (true) or a removal.
    pub add: bool,
    /// The identifiers the request carried.
    pub member: RemoteMember,
}

/// The unsure members of every list of one destination, mirrored in a sled tree
/// `sending.<destination>` keyed `audience \0 customer id`.
pub(super) struct Sending {
    tree: sled::Tree,
    unsure: HashMap<String, HashMap<Box<str>, Unsure>>,
}

impl Sending {
    /// Loads what requests were carrying when the daemon last stopped: all of it unsure.
    pub fn load(tree: sled::Tree) -> Result<Self, StoreError> {
        let unsure = load(&tree, "sending")?;
        Ok(Self { tree, unsure })
    }

    /// Records the members of a request about to leave, durably, before it leaves.
    pub fn begin(
        &mut self,
        audience: &str,
        add: bool,
        ids: &[Box<str>],
        members: &[RemoteMember],
    ) -> Result<(), StoreError> {
        let list = self.unsure.entry(audience.to_string()).or_default();
        let mut batch = sled::Batch::default();
        for (id, m) in ids.iter().zip(members) {
            let u = Unsure {
                add,
                member: m.clone(),
            };
            batch.insert(key(audience, id), encode(&u));
            list.insert(id.clone(), u);
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok(())
    }

    /// The request's answer is recorded (or nothing of it was applied): its members are no
    /// longer unsure. Not flushed: a crash that loses this only sends them once more.
    pub fn end<'a>(&mut self, audience: &str, ids: impl Iterator<Item = &'a Box<str>>) {
        let mut batch = sled::Batch::default();
        let mut list = self.unsure.get_mut(audience);
        for id in ids {
            batch.remove(key(audience, id));
            if let Some(l) = list.as_mut() {
                l.remove(id);
            }
        }
        if let Err(e) = self.tree.apply_batch(batch) {
            tracing::warn!(error = %e, "sent members not cleared; they are sent once more");
        }
    }

    /// What an unsure member's last request was doing, if it is unsure.
    pub fn get(&self, audience: &str, customer: &str) -> Option<&Unsure> {
        self.unsure.get(audience)?.get(customer)
    }

    /// The unsure members of a list.
    pub fn list(&self, audience: &str) -> impl Iterator<Item = (&Box<str>, &Unsure)> {
        self.unsure.get(audience).into_iter().flatten()
    }
}
