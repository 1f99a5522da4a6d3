//! Reports assembled from the published counters: no customer is visited, so a report costs
//! the same at 1M customers as at 10.

use super::calendar::{iso_week_label, week_start, Unit};
use super::counters::Published;
use super::lift::{compare, GroupStats, Lift};
use super::outcomes::{Group, LiftCell};
use super::retention::RetentionReport;
use crate::audience::holdout::share_text;
use crate::clock::Nanos;

/// One entry cohort (ISO week) of an audience.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortLift {
    /// `2026-W48`.
    pub week: String,
    /// Monday 00:00 UTC.
    pub week_start: Nanos,
    /// Pushed vs holdout.
    pub lift: Lift,
    /// Entries of members not eligible for push at entry (in neither group).
    pub ineligible: GroupStats,
}

/// Outcomes of one audience's entries.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceLift {
    /// Audience name.
    pub audience: String,
    /// The holdout share in force, as configured (`"0.1"`, `"0"`).
    pub holdout_share: String,
    /// The outcome window.
    pub window: Nanos,
    /// All retained cohorts together.
    pub total: Lift,
    /// Entries not eligible at entry, all cohorts.
    pub ineligible: GroupStats,
    /// Per entry week, oldest first.
    pub cohorts: Vec<CohortLift>,
}

fn stats(c: &LiftCell) -> GroupStats {
    let u = |v: i128| u64::try_from(v).unwrap_or(0);
    GroupStats {
        members: u(c[0]),
        converted: u(c[1]),
        revenue: c[2],
        revenue_sq: c[3],
        open_members: u(c[4]),
        open_converted: u(c[5]),
        open_revenue: c[6],
    }
}

impl Published {
    /// Lift per audience: the one at position `only`, or every audience that has entries or
    /// a holdout configured.
    pub fn lift(&self, only: Option<usize>) -> Vec<AudienceLift> {
        let p = &self.params;
        let mut out = Vec::new();
        for (a, name) in p.names.iter().enumerate() {
            if only.is_some_and(|o| o != a) {
                continue;
            }
            let configured = p.shares.get(a).is_some_and(|s| s.0 > 0);
            let lo = (a as u8, i32::MIN, 0u8);
            let hi = (a as u8, i32::MAX, u8::MAX);
            let mut weeks: Vec<(i32, [GroupStats; 3])> = Vec::new();
            for (&(_, week, group), cell) in self.aggregates.lift.range(lo..=hi) {
                let g = stats(cell);
                if g == GroupStats::default() {
                    continue;
                }
                if weeks.last().is_none_or(|w| w.0 != week) {
                    weeks.push((week, Default::default()));
                }
                if let Some(w) = weeks.last_mut() {
                    w.1[usize::from(group).min(2)].add(&g);
                }
            }
            if weeks.is_empty() && !configured && only.is_none() {
                continue;
            }
            let mut total = [GroupStats::default(); 3];
            for (_, g) in &weeks {
                for (t, x) in total.iter_mut().zip(g) {
                    t.add(x);
                }
            }
            let pushed = Group::Pushed as usize;
            let held = Group::Holdout as usize;
            let ineligible = Group::Ineligible as usize;
            out.push(AudienceLift {
                audience: name.clone(),
                holdout_share: share_text(p.shares.get(a).copied().unwrap_or((0, 1))),
                window: p.windows.get(a).copied().unwrap_or(0),
                total: compare(total[pushed], total[held], configured),
                ineligible: total[ineligible],
                cohorts: weeks
                    .into_iter()
                    .map(|(w, g)| CohortLift {
                        week: iso_week_label(w),
                        week_start: week_start(w),
                        lift: compare(g[pushed], g[held], configured),
                        ineligible: g[ineligible],
                    })
                    .collect(),
            });
        }
        out
    }

    /// Retention metrics over the last `periods` complete periods of `unit` and the cohorts
    /// of the last `cohort_months` months.
    pub fn retention(&self, unit: Unit, periods: u32, cohort_months: u32) -> RetentionReport {
        self.aggregates
            .retention
            .report(&self.params, self.as_of, unit, periods, cohort_months)
    }
}
