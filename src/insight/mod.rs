//! "Did the remarketing work?": holdout groups ([`crate::audience::holdout`]), audience entries and their
//! outcomes ([`outcomes`]), lift statistics ([`lift`]), retention metrics ([`retention`]),
//! all kept current by the writer ([`counters`]) so a report reads a few counters
//! instead of scanning customers. Definitions: docs/INSIGHTS.md.

pub mod calendar;
pub mod counters;
pub mod lift;
pub mod outcomes;
pub mod report;
pub mod retention;

pub use counters::Insights;

use crate::audience::memberships::audience_name;
use crate::audience::params::AudienceParams;
use crate::audience::rules::Audience;
use crate::clock::{Nanos, NANOS_PER_SEC};

/// What the contributions need of the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct InsightParams {
    /// Audience names, in `Audience::ALL` order.
    pub names: Vec<String>,
    /// Holdout share per audience (`(0, 1)`: none).
    pub shares: Vec<(u64, u64)>,
    /// Outcome window per audience.
    pub windows: Vec<Nanos>,
    /// How long entries are kept.
    pub retention: Nanos,
    /// Lapsed tier lower bounds.
    pub tiers: [Nanos; 3],
}

impl InsightParams {
    /// From the audience parameters in force.
    pub fn new(p: &AudienceParams) -> Self {
        let ns = |s: i64| s.saturating_mul(NANOS_PER_SEC);
        Self {
            names: Audience::ALL.iter().map(|a| audience_name(*a, p)).collect(),
            shares: p.holdout.to_vec(),
            windows: p.outcome_window_secs.iter().map(|s| ns(*s)).collect(),
            retention: ns(p.outcome_retention_secs),
            tiers: p.rules.lapsed_tiers.map(ns),
        }
    }

    /// The audience name of lapsed tier `i` (0, 1, 2).
    pub fn tier_name(&self, i: usize) -> String {
        let a = [Audience::Lapsed1, Audience::Lapsed2, Audience::Lapsed3][i.min(2)];
        self.names[a.index()].clone()
    }
}

/// One customer as the contributions see it.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// Counted orders as (placed at, net value in revenue minor units), sorted.
    pub orders: &'a [(Nanos, i64)],
    /// Audience entries, oldest first.
    pub entries: &'a [outcomes::Entry],
    /// In the VIP audience.
    pub vip: bool,
    /// The instant the contribution is evaluated at.
    pub at: Nanos,
}

/// Every counter reports read.
#[derive(Debug, Clone, Default)]
pub struct Aggregates {
    /// Retention counters.
    pub retention: retention::RetentionCells,
    /// Lift cells.
    pub lift: std::collections::BTreeMap<outcomes::LiftKey, outcomes::LiftCell>,
}

impl Aggregates {
    /// Adds `sign` × one customer's contribution.
    pub fn contribute(&mut self, s: &Snapshot, p: &InsightParams, sign: i64) {
        self.retention.contribute(s, p, sign);
        outcomes::contribute(&mut self.lift, s, p, i128::from(sign));
    }

    /// Every non-zero counter as text, sorted (see `RetentionCells::canonical`).
    pub fn canonical(&self) -> Vec<String> {
        let mut out = self.retention.canonical();
        out.extend(
            self.lift
                .iter()
                .filter(|(_, v)| v.iter().any(|x| *x != 0))
                .map(|(k, v)| format!("lift {k:?} {v:?}")),
        );
        out
    }

    /// Adds another set of counters (parallel rebuild).
    pub fn merge(mut self, o: Aggregates) -> Self {
        self.retention.merge(o.retention);
        for (k, v) in o.lift {
            let c = self.lift.entry(k).or_default();
            for (a, b) in c.iter_mut().zip(v) {
                *a += b;
            }
        }
        self
    }
}

/// The next instant at which a customer's contribution changes without any event.
pub fn next_due(s: &Snapshot, p: &InsightParams) -> Option<Nanos> {
    match (retention::next_due(s, p), outcomes::next_due(s, p)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
