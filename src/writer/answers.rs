//! The membership answers the writer publishes for hot-path queries ("is this customer a
//! VIP?"), read without ever waiting for the writer.
//!
//! A query under the writer's lock waits for whatever the writer holds it for: a slice of a
//! group's facts, a recompute. These answers live apart, in a concurrent map whose reads take
//! no lock (papaya: readers pin an epoch, writers swap entries), keyed by the 128-bit hash of
//! the customer's id. The writer replaces the entries of every customer a change may concern
//! at the points where it already tells destinations what changed, while it still holds the
//! state: a query sees an answer no older than the last slice it could have seen under the
//! lock. Audience names change only on a reload: a pointer swapped whole.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustc_hash::FxBuildHasher;

use crate::audience::memberships::Audiences;
use crate::audience::Audience;
use crate::ledger::state::{key_of, CustomerIdx, Key, State};

/// What a membership check answers for one customer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answer {
    /// Bit per audience ([`Audience::bit`]) the customer is in.
    pub mask: u32,
    /// Of those, the audiences whose holdout keeps the customer.
    pub holdout: u32,
    /// Whether the customer may be pushed at all (consent, identifiers).
    pub eligible: bool,
}

/// The published answers and audience names.
pub struct Answers {
    by_id: papaya::HashMap<Key, Answer, FxBuildHasher>,
    names: ArcSwap<Vec<String>>,
}

impl Default for Answers {
    fn default() -> Self {
        Self {
            by_id: papaya::HashMap::builder().hasher(FxBuildHasher).build(),
            names: ArcSwap::from_pointee(Vec::new()),
        }
    }
}

impl Answers {
    /// The answer for the customer with the shop's id `id`; `None` for a customer never seen.
    pub fn get(&self, id: &str) -> Option<Answer> {
        self.by_id.pin().get(&key_of(id)).copied()
    }

    /// Audience names by [`Audience::index`], as the rules in force call them.
    pub fn names(&self) -> Arc<Vec<String>> {
        self.names.load_full()
    }

    /// Customers answered for.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no customer is answered for.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Publishes the answers of `customers` as `facts` and `audiences` say now.
    pub(super) fn publish(
        &self,
        facts: &State,
        audiences: &Audiences,
        customers: impl IntoIterator<Item = CustomerIdx>,
    ) {
        let map = self.by_id.pin();
        for c in customers {
            if let Some(cust) = facts.customers.get(c as usize) {
                map.insert(key_of(&cust.id), answer(audiences, c));
            }
        }
    }

    /// Publishes every customer's answer and the audience names (start, reload).
    pub(super) fn publish_all(&self, facts: &State, audiences: &Audiences) {
        self.names
            .store(Arc::new(Audience::ALL.map(|a| audiences.name(a)).to_vec()));
        self.publish(facts, audiences, 0..facts.customers.len() as CustomerIdx);
    }
}

/// Customer `c`'s answer.
fn answer(audiences: &Audiences, c: CustomerIdx) -> Answer {
    let mask = audiences.mask(c);
    let holdout = Audience::ALL
        .into_iter()
        .filter(|a| mask & a.bit() != 0 && audiences.holdout(*a).contains(c))
        .fold(0, |held, a| held | a.bit());
    Answer {
        mask,
        holdout,
        eligible: audiences.is_eligible(c),
    }
}
