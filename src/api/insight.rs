//! `InsightService`: lift and retention reports from the counters the writer published last.
//! The read lock is held only to clone one `Arc`; the report is assembled outside it.

use tonic::{Request, Response, Status};

use super::{timestamp, Context};
use crate::insight::calendar::Unit;
use crate::insight::counters::Published;
use crate::insight::lift::{self, Estimate, GroupStats, Lift, Verdict};
use crate::insight::report::AudienceLift;
use crate::insight::retention::{Reactivation, RetentionReport};
use crate::proto::v1::{self, insight_service_server::InsightService};

/// Most complete periods one retention report covers.
pub const MAX_PERIODS: u32 = 120;
/// Most cohorts one retention report lists.
pub const MAX_COHORT_MONTHS: u32 = 60;

/// The insight report service.
pub struct InsightApi {
    ctx: Context,
}

impl InsightApi {
    /// A service over the shared context.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

fn group(g: &GroupStats) -> v1::GroupOutcome {
    let interval = lift::wilson(g.converted, g.members);
    v1::GroupOutcome {
        conversion_rate_low: interval.map(|i| i.0),
        conversion_rate_high: interval.map(|i| i.1),
        members: g.members,
        converted: g.converted,
        revenue_minor: clamp_i64(g.revenue),
        conversion_rate: g.rate(),
        revenue_per_member_minor: g.revenue_per_member(),
        open_members: g.open_members,
        open_converted: g.open_converted,
        open_revenue_minor: clamp_i64(g.open_revenue),
    }
}

fn verdict(v: Verdict) -> v1::LiftVerdict {
    match v {
        Verdict::NoHoldout => v1::LiftVerdict::NoHoldout,
        Verdict::TooSmall => v1::LiftVerdict::TooSmall,
        Verdict::Inconclusive => v1::LiftVerdict::Inconclusive,
        Verdict::Positive => v1::LiftVerdict::Positive,
        Verdict::Negative => v1::LiftVerdict::Negative,
    }
}

fn parts(e: Option<Estimate>) -> (Option<f64>, Option<f64>, Option<f64>) {
    e.map_or((None, None, None), |e| (Some(e.value), e.low, e.high))
}

/// The wire form of a lift.
pub fn lift_message(l: &Lift) -> v1::Lift {
    let (absolute_lift, absolute_lift_low, absolute_lift_high) = parts(l.absolute);
    let (relative_lift, relative_lift_low, relative_lift_high) = parts(l.relative);
    let (rev, rev_low, rev_high) = parts(l.revenue_per_member);
    v1::Lift {
        pushed: Some(group(&l.pushed)),
        holdout: Some(group(&l.holdout)),
        absolute_lift,
        absolute_lift_low,
        absolute_lift_high,
        relative_lift,
        relative_lift_low,
        relative_lift_high,
        revenue_per_member_lift_minor: rev,
        revenue_per_member_lift_low_minor: rev_low,
        revenue_per_member_lift_high_minor: rev_high,
        verdict: verdict(l.verdict) as i32,
        conclusion: l.conclusion.clone(),
    }
}

fn audience_message(a: &AudienceLift) -> v1::AudienceLift {
    v1::AudienceLift {
        audience: a.audience.clone(),
        holdout_fraction: a.holdout_share.clone(),
        outcome_window_seconds: a.window / crate::clock::NANOS_PER_SEC,
        total: Some(lift_message(&a.total)),
        cohorts: a
            .cohorts
            .iter()
            .map(|c| v1::CohortLift {
                week: c.week.clone(),
                week_start: Some(timestamp(c.week_start)),
                lift: Some(lift_message(&c.lift)),
                ineligible: Some(group(&c.ineligible)),
            })
            .collect(),
        ineligible: Some(group(&a.ineligible)),
    }
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn reactivation(r: &Reactivation) -> v1::TierReactivation {
    v1::TierReactivation {
        audience: r.audience.clone(),
        entered: count(r.entered),
        reactivated: count(r.reactivated),
        rate: r.rate,
        open: count(r.open),
        open_reactivated: count(r.open_reactivated),
    }
}

/// Where the definitions are, for `RetentionReport.definitions`.
pub const DEFINITIONS: &str = "docs/INSIGHTS.md: a purchase is a counted order whose net value \
(total - refunds, revenue currency) is positive; a customer is active at an instant when they \
made a purchase in the 365 days up to it; periods are calendar periods in UTC; erased \
customers' facts count nowhere; every figure is independent of the order events arrived in.";

/// The wire form of a retention report.
pub fn retention_message(r: &RetentionReport, currency: &str) -> v1::RetentionReport {
    v1::RetentionReport {
        as_of: Some(timestamp(r.as_of)),
        revenue_currency: currency.to_string(),
        definitions: DEFINITIONS.into(),
        active_customers: count(r.active_customers),
        revenue_365d_minor: r.revenue_year,
        average_revenue_per_customer_minor: r.revenue_per_active_customer,
        buyers: count(r.buyers),
        repeat_buyers: count(r.repeat_buyers),
        repeat_purchase_rate: r.repeat_purchase_rate,
        vip_active_customers: count(r.vip_active),
        vip_revenue_365d_minor: r.vip_revenue_year,
        vip_revenue_share: r.vip_revenue_share,
        vip_customer_share: r.vip_customer_share,
        periods: r
            .periods
            .iter()
            .map(|p| v1::PeriodRetention {
                label: p.label.clone(),
                start: Some(timestamp(p.start)),
                end: Some(timestamp(p.end)),
                customers_at_start: count(p.customers_at_start),
                customers_at_end: count(p.customers_at_end),
                new_customers: count(p.new_customers),
                retained_customers: count(p.retained_customers),
                returning_customers: count(p.returning_customers),
                retention_rate: p.retention_rate,
                buyers: count(p.buyers),
                revenue_minor: p.revenue,
                revenue_per_buyer_minor: p.revenue_per_buyer,
                reactivation: p.reactivation.iter().map(reactivation).collect(),
            })
            .collect(),
        reactivation: r.reactivation.iter().map(reactivation).collect(),
        cohorts: r
            .cohorts
            .iter()
            .map(|c| v1::Cohort {
                first_purchase_month: c.label.clone(),
                start: Some(timestamp(c.start)),
                customers: count(c.customers),
                months: c
                    .months
                    .iter()
                    .map(|&(k, n, rate)| v1::CohortMonth {
                        months_after: u32::try_from(k).unwrap_or(0),
                        customers: count(n),
                        rate,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The `GetLift` answer from published counters: the audience at position `only`, or every
/// audience with entries or a holdout. The status page serves the same message.
pub fn lift_report(published: &Published, only: Option<usize>) -> v1::LiftReport {
    v1::LiftReport {
        as_of: Some(timestamp(published.as_of)),
        revenue_currency: published.currency.clone(),
        method: lift::METHOD.into(),
        audiences: published.lift(only).iter().map(audience_message).collect(),
    }
}

/// The `GetRetention` answer from published counters (arguments as [`retention_args`] returns
/// them). The status page serves the same message.
pub fn retention_report(
    published: &Published,
    unit: Unit,
    periods: u32,
    cohort_months: u32,
) -> v1::RetentionReport {
    let report = published.retention(unit, periods, cohort_months);
    retention_message(&report, &published.currency)
}

/// Validates a retention request: the period unit and the counts, naming the field.
pub fn retention_args(r: &v1::GetRetentionRequest) -> Result<(Unit, u32, u32), Status> {
    let unit = match v1::PeriodUnit::try_from(r.period) {
        Ok(v1::PeriodUnit::Unspecified | v1::PeriodUnit::Month) => Unit::Month,
        Ok(v1::PeriodUnit::Quarter) => Unit::Quarter,
        Ok(v1::PeriodUnit::Year) => Unit::Year,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "period: unknown value {}",
                r.period
            )))
        }
    };
    let periods = match r.periods {
        0 => match unit {
            Unit::Month => 12,
            Unit::Quarter => 4,
            Unit::Year => 3,
        },
        n if n > MAX_PERIODS => {
            return Err(Status::invalid_argument(format!(
                "periods: at most {MAX_PERIODS}"
            )))
        }
        n => n,
    };
    let cohorts = match r.cohort_months {
        0 => 12,
        n if n > MAX_COHORT_MONTHS => {
            return Err(Status::invalid_argument(format!(
                "cohort_months: at most {MAX_COHORT_MONTHS}"
            )))
        }
        n => n,
    };
    Ok((unit, periods, cohorts))
}

#[tonic::async_trait]
impl InsightService for InsightApi {
    async fn get_lift(
        &self,
        request: Request<v1::GetLiftRequest>,
    ) -> Result<Response<v1::LiftReport>, Status> {
        let name = request.into_inner().audience;
        let published = self.ctx.writer.published_insights();
        let only = if name.is_empty() {
            None
        } else {
            let i = published
                .params
                .names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| Status::not_found(format!("audience `{name}` not found")))?;
            Some(i)
        };
        Ok(Response::new(lift_report(&published, only)))
    }

    async fn get_retention(
        &self,
        request: Request<v1::GetRetentionRequest>,
    ) -> Result<Response<v1::RetentionReport>, Status> {
        let (unit, periods, cohorts) = retention_args(&request.into_inner())?;
        let published = self.ctx.writer.published_insights();
        Ok(Response::new(retention_report(
            &published, unit, periods, cohorts,
        )))
    }
}
