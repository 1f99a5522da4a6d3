//! The confirmed lists: per destination × audience, what the network accepted, member by
//! member (customer id → the identifiers sent). Work is always derived as desired − confirmed
//! and confirmed − desired, never replayed from old operations, so a failed or repeated
//! request can only delay convergence, not corrupt the list.

use std::collections::HashMap;

use super::member_key::{key, load};
use crate::ledger::records::encode;
use crate::ledger::store::StoreError;
use crate::sync::member::RemoteMember;

/// Confirmed members of every list of one destination, mirrored in a sled tree
/// `confirmed.<destination>` keyed `audience \0 customer id`.
pub struct Confirmed {
    tree: sled::Tree,
    lists: HashMap<String, HashMap<Box<str>, RemoteMember>>,
}

impl Confirmed {
    /// Loads the destination's confirmed lists.
    pub fn load(tree: sled::Tree) -> Result<Self, StoreError> {
        let lists = load(&tree, "confirmed")?;
        Ok(Self { tree, lists })
    }

    /// The member the network holds for `customer`, if any.
    pub fn get(&self, audience: &str, customer: &str) -> Option<&RemoteMember> {
        self.lists.get(audience)?.get(customer)
    }

    /// Every confirmed member of a list.
    pub fn list(&self, audience: &str) -> impl Iterator<Item = (&Box<str>, &RemoteMember)> {
        self.lists.get(audience).into_iter().flatten()
    }

    /// Size of a list.
    pub fn len(&self, audience: &str) -> usize {
        self.lists.get(audience).map_or(0, HashMap::len)
    }

    /// Records what the network accepted: `Some` = now a member with these identifiers,
    /// `None` = removed (its identifiers are deleted here, which is how an erased customer's
    /// last hashes leave the daemon).
    pub fn apply(
        &mut self,
        audience: &str,
        changes: &[(Box<str>, Option<RemoteMember>)],
    ) -> Result<(), StoreError> {
        for chunk in changes.chunks(1_000) {
            let mut batch = sled::Batch::default();
            for (customer, m) in chunk {
                match m {
                    Some(m) => batch.insert(key(audience, customer), encode(m)),
                    None => batch.remove(key(audience, customer)),
                }
            }
            self.tree.apply_batch(batch)?;
        }
        let list = self.lists.entry(audience.to_string()).or_default();
        for (customer, m) in changes {
            match m {
                Some(m) => {
                    list.insert(customer.clone(), m.clone());
                }
                None => {
                    list.remove(customer);
                }
            }
        }
        // No fsync: a confirmation lost to a power cut only makes the next cycle resend an
        // idempotent add/remove.
        self.tree.flush()?;
        Ok(())
    }

    /// Replaces a whole list (after a full resync).
    pub fn replace(
        &mut self,
        audience: &str,
        members: Vec<(Box<str>, RemoteMember)>,
    ) -> Result<(), StoreError> {
        let old: Vec<(Box<str>, Option<RemoteMember>)> = self
            .list(audience)
            .map(|(c, _)| (c.clone(), None))
            .collect();
        self.apply(audience, &old)?;
        let new: Vec<(Box<str>, Option<RemoteMember>)> =
            members.into_iter().map(|(c, m)| (c, Some(m))).collect();
        self.apply(audience, &new)
    }
}
