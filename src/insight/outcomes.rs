//! Audience entries and their outcomes.
//!
//! Each time a customer enters an audience the writer records an [`Entry`] (when, whether the
//! customer was held out, whether they were eligible for push). The entry's outcome is a
//! function of the customer's purchases: converted iff a purchase (a counted order whose net
//! value is positive) was placed in `(entered_at, entered_at + window]`, revenue = the net
//! value of those purchases. Entries live with the customer's checkpoint record and are
//! dropped when the customer is erased or when they are older than the retention.

use std::collections::BTreeMap;

use super::calendar::week_of;
use super::{InsightParams, Snapshot};
use crate::clock::Nanos;
use crate::ledger::customer_record::AudienceEntry;

/// One entry into an audience: the store keeps its bytes ([`AudienceEntry`]); what its
/// flags mean and which group it falls in is defined here.
pub type Entry = AudienceEntry;

/// The customer was in the audience's holdout at entry.
pub const HELD_OUT: u8 = 1;
/// The customer was eligible for push (consent and an identifier) at entry.
pub const ELIGIBLE: u8 = 2;

/// Which comparison group an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// Eligible and not held out: pushed to the audience's destinations.
    Pushed = 0,
    /// Eligible and held out: would have been pushed.
    Holdout = 1,
    /// Not eligible at entry: never pushed either way, so in neither group.
    Ineligible = 2,
}

impl Entry {
    /// The entry's group.
    pub fn group(&self) -> Group {
        if self.flags & ELIGIBLE == 0 {
            Group::Ineligible
        } else if self.flags & HELD_OUT != 0 {
            Group::Holdout
        } else {
            Group::Pushed
        }
    }
}

/// Key of a lift cell: (audience, entry week, group).
pub type LiftKey = (u8, i32, u8);

/// Values of a lift cell: closed members, closed converted, closed revenue, closed revenue²,
/// open members, open converted, open revenue.
pub type LiftCell = [i128; 7];

/// Adds `sign` × the customer's entries' outcomes to the lift cells.
pub fn contribute(
    cells: &mut BTreeMap<LiftKey, LiftCell>,
    s: &Snapshot,
    p: &InsightParams,
    sign: i128,
) {
    for e in s.entries {
        if s.at.saturating_sub(e.at) >= p.retention {
            continue;
        }
        let window = p.windows[usize::from(e.audience).min(p.windows.len() - 1)];
        let end = e.at.saturating_add(window);
        // Purchases are sorted by time: those in (at, end].
        let from = s.orders.partition_point(|o| o.0 <= e.at);
        let to = s.orders.partition_point(|o| o.0 <= end);
        let revenue: i128 = s.orders[from..to]
            .iter()
            .filter(|o| o.1 > 0)
            .map(|o| i128::from(o.1))
            .sum();
        let converted = i128::from(s.orders[from..to].iter().any(|o| o.1 > 0));
        let cell = cells
            .entry((e.audience, week_of(e.at), e.group() as u8))
            .or_default();
        if s.at >= end {
            cell[0] += sign;
            cell[1] += sign * converted;
            cell[2] += sign * revenue;
            cell[3] += sign * revenue * revenue;
        } else {
            cell[4] += sign;
            cell[5] += sign * converted;
            cell[6] += sign * revenue;
        }
    }
}

/// The next instant after `s.at` at which an entry's window closes or it leaves retention.
pub fn next_due(s: &Snapshot, p: &InsightParams) -> Option<Nanos> {
    s.entries
        .iter()
        .flat_map(|e| {
            let window = p.windows[usize::from(e.audience).min(p.windows.len() - 1)];
            [
                e.at.saturating_add(window),
                e.at.saturating_add(p.retention),
            ]
        })
        .filter(|t| *t > s.at)
        .min()
}
