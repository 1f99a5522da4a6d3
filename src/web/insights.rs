//! `/api/insights`: the page's "Did remarketing work?" and retention sections. The lift and
//! retention reports are the gRPC `InsightService` answers, built by the same functions from
//! the same counters the writer published at its last tick (the writer's lock is held only to
//! clone one `Arc`), so the page and `GetLift` / `GetRetention` never disagree.

use prost_reflect::SerializeOptions;
use serde::Serialize;

use crate::api::insight::{lift_report, retention_report};
use crate::api::Context;
use crate::insight::calendar::Unit;

/// Complete months of retention the page shows.
pub const MONTHS: u32 = 12;
/// First-purchase cohorts the page shows (the current month included).
pub const COHORT_MONTHS: u32 = 12;

/// Proto field names, 64-bit integers as JSON numbers (counts stay far below 2^53), and
/// zeros written out, so the page reads every count without defaults of its own. Undefined
/// figures (optional fields) stay absent.
const OPTIONS: SerializeOptions = SerializeOptions::new()
    .stringify_64_bit_integers(false)
    .use_proto_field_name(true)
    .skip_default_fields(false);

/// `/api/insights`.
#[derive(Debug, Serialize)]
pub struct Insights {
    /// Digits after the decimal point of the revenue currency (2 for USD, 0 for JPY): every
    /// `*_minor` amount divided by 10^this is in major units.
    pub currency_exponent: u32,
    /// `InsightService.GetLift` for every audience with entries or a holdout (`LiftReport`).
    pub lift: serde_json::Value,
    /// `InsightService.GetRetention` by month: the last 12 complete months and the cohorts of
    /// the last 12 months (`RetentionReport`).
    pub retention: serde_json::Value,
}

/// Builds `/api/insights`.
pub fn insights(ctx: &Context) -> Insights {
    let published = ctx.writer.published_insights();
    let currency_exponent = crate::money::parse_code(&published.currency).map_or(2, |(_, e)| e);
    let lift = lift_report(&published, None);
    let retention = retention_report(&published, Unit::Month, MONTHS, COHORT_MONTHS);
    Insights {
        currency_exponent,
        lift: crate::proto::to_json(&lift, "LiftReport", &OPTIONS),
        retention: crate::proto::to_json(&retention, "RetentionReport", &OPTIONS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1;

    #[test]
    fn reports_are_proto_json_with_numbers_and_zeros() {
        let report = v1::LiftReport {
            revenue_currency: "USD".into(),
            audiences: vec![v1::AudienceLift {
                audience: "vip".into(),
                holdout_fraction: "0.1".into(),
                total: Some(v1::Lift {
                    pushed: Some(v1::GroupOutcome {
                        members: 40,
                        converted: 12,
                        conversion_rate: Some(0.3),
                        ..Default::default()
                    }),
                    verdict: v1::LiftVerdict::TooSmall as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let json = crate::proto::to_json(&report, "LiftReport", &OPTIONS);
        let total = &json["audiences"][0]["total"];
        assert_eq!(total["pushed"]["members"], 40, "{json}");
        assert_eq!(total["pushed"]["conversion_rate"], 0.3, "{json}");
        assert_eq!(total["pushed"]["open_members"], 0, "{json}");
        assert_eq!(total["verdict"], "LIFT_VERDICT_TOO_SMALL", "{json}");
        // Undefined figures stay absent rather than reading 0.
        assert!(total.get("absolute_lift").is_none(), "{json}");
        assert!(
            total["pushed"].get("conversion_rate_low").is_none(),
            "{json}"
        );
        assert_eq!(json["audiences"][0]["holdout_fraction"], "0.1");
    }
}
