//! Readable tables for `audiencesync report`.

use std::fmt::Write as _;

use super::when;
use crate::proto::v1;

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn points(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:+.1}", v * 100.0))
}

/// Minor units as a decimal amount of `currency`.
fn money(minor: f64, currency: &str) -> String {
    let exp = crate::money::parse_code(currency).map_or(2, |(_, e)| e);
    format!("{:.*}", exp as usize, minor / 10f64.powi(exp as i32))
}

fn window(secs: i64) -> String {
    if secs % 86_400 == 0 {
        format!("{}d", secs / 86_400)
    } else {
        humantime::format_duration(std::time::Duration::from_secs(secs.max(0) as u64)).to_string()
    }
}

fn group_row(out: &mut String, name: &str, g: &v1::GroupOutcome, cur: &str) {
    let _ = writeln!(
        out,
        "    {:<9} {:>8} {:>9} {:>7} {:>12} {:>14}",
        name,
        g.members,
        g.converted,
        pct(g.conversion_rate),
        g.revenue_per_member_minor
            .map_or("-".into(), |v| money(v, cur)),
        format!("{} ({} conv)", g.open_members, g.open_converted),
    );
}

fn lift_lines(out: &mut String, l: &v1::Lift, cur: &str) {
    if l.absolute_lift.is_none() {
        let _ = writeln!(out, "    verdict   {}", l.conclusion);
        return;
    }
    let _ = writeln!(
        out,
        "    lift      {} points (95% CI {} to {}); relative {} ({} to {}); revenue/member {} ({} to {})",
        points(l.absolute_lift),
        points(l.absolute_lift_low),
        points(l.absolute_lift_high),
        pct(l.relative_lift),
        pct(l.relative_lift_low),
        pct(l.relative_lift_high),
        l.revenue_per_member_lift_minor.map_or("-".into(), |v| money(v, cur)),
        l.revenue_per_member_lift_low_minor.map_or("-".into(), |v| money(v, cur)),
        l.revenue_per_member_lift_high_minor.map_or("-".into(), |v| money(v, cur)),
    );
    let _ = writeln!(out, "    verdict   {}", l.conclusion);
}

/// The outcome tables.
pub fn lift(r: &v1::LiftReport) -> String {
    let cur = &r.revenue_currency;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "OUTCOMES of audience entries, as of {} (revenue in {cur}; closed windows only)",
        when(&r.as_of)
    );
    if r.audiences.is_empty() {
        let _ = writeln!(out, "  no audience entries recorded yet");
    }
    for a in &r.audiences {
        let _ = writeln!(
            out,
            "\n{}  (holdout {}, window {})",
            a.audience,
            a.holdout_fraction,
            window(a.outcome_window_seconds)
        );
        let _ = writeln!(
            out,
            "    {:<9} {:>8} {:>9} {:>7} {:>12} {:>14}",
            "GROUP", "MEMBERS", "CONVERTED", "RATE", "REV/MEMBER", "OPEN WINDOWS"
        );
        if let Some(t) = &a.total {
            group_row(
                &mut out,
                "pushed",
                t.pushed.as_ref().unwrap_or(&Default::default()),
                cur,
            );
            group_row(
                &mut out,
                "holdout",
                t.holdout.as_ref().unwrap_or(&Default::default()),
                cur,
            );
            if let Some(i) = a
                .ineligible
                .as_ref()
                .filter(|i| i.members + i.open_members > 0)
            {
                group_row(&mut out, "no push*", i, cur);
            }
            lift_lines(&mut out, t, cur);
        }
        if !a.cohorts.is_empty() {
            let _ = writeln!(
                out,
                "    {:<9} {:>15} {:>15} {:>28}  VERDICT",
                "WEEK", "PUSHED", "HOLDOUT", "LIFT (95% CI)"
            );
        }
        for c in &a.cohorts {
            let Some(l) = &c.lift else { continue };
            let d = v1::GroupOutcome::default();
            let (p, h) = (
                l.pushed.as_ref().unwrap_or(&d),
                l.holdout.as_ref().unwrap_or(&d),
            );
            let verdict = v1::LiftVerdict::try_from(l.verdict)
                .map(|v| {
                    v.as_str_name()
                        .trim_start_matches("LIFT_VERDICT_")
                        .to_lowercase()
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    {:<9} {:>15} {:>15} {:>28}  {}",
                c.week,
                format!("{}/{} {}", p.converted, p.members, pct(p.conversion_rate)),
                format!("{}/{} {}", h.converted, h.members, pct(h.conversion_rate)),
                format!(
                    "{} ({} to {})",
                    points(l.absolute_lift),
                    points(l.absolute_lift_low),
                    points(l.absolute_lift_high)
                ),
                verdict
            );
        }
    }
    if r.audiences.iter().any(|a| {
        a.ineligible
            .as_ref()
            .is_some_and(|i| i.members + i.open_members > 0)
    }) {
        let _ = writeln!(
            out,
            "\n* no push: members not eligible for push when they entered (no consent or no identifier), in neither group"
        );
    }
    out
}

/// The retention tables.
pub fn retention(r: &v1::RetentionReport) -> String {
    let cur = &r.revenue_currency;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "RETENTION as of {} (revenue in {cur}; definitions: docs/INSIGHTS.md)",
        when(&r.as_of)
    );
    let _ = writeln!(
        out,
        "  active customers (a purchase in the last 365 d): {}   revenue 365 d: {}   per customer: {}",
        r.active_customers,
        money(r.revenue_365d_minor as f64, cur),
        r.average_revenue_per_customer_minor.map_or("-".into(), |v| money(v, cur)),
    );
    let _ = writeln!(
        out,
        "  repeat-purchase rate: {} ({} of {} buyers bought twice or more)",
        pct(r.repeat_purchase_rate),
        r.repeat_buyers,
        r.buyers
    );
    let _ = writeln!(
        out,
        "  revenue concentration: VIPs ({} of active customers) bring {} of 365-day revenue (benchmark: 25% bring 60%)",
        pct(r.vip_customer_share),
        pct(r.vip_revenue_share),
    );
    let _ = writeln!(
        out,
        "\n  {:<8} {:>9} {:>9} {:>6} {:>8} {:>9} {:>9} {:>7} {:>12} {:>10}",
        "PERIOD",
        "AT START",
        "AT END",
        "NEW",
        "RETAINED",
        "RETURNING",
        "RETENTION",
        "BUYERS",
        "REVENUE",
        "REV/BUYER"
    );
    for p in &r.periods {
        let _ = writeln!(
            out,
            "  {:<8} {:>9} {:>9} {:>6} {:>8} {:>9} {:>9} {:>7} {:>12} {:>10}",
            p.label,
            p.customers_at_start,
            p.customers_at_end,
            p.new_customers,
            p.retained_customers,
            p.returning_customers,
            pct(p.retention_rate),
            p.buyers,
            money(p.revenue_minor as f64, cur),
            p.revenue_per_buyer_minor
                .map_or("-".into(), |v| money(v, cur)),
        );
    }
    let _ = writeln!(
        out,
        "\n  reactivation: ordered again within 90 days of entering a lapsed tier (entries in these periods)"
    );
    for t in &r.reactivation {
        let _ = writeln!(
            out,
            "  {:<12} {:>6} entered {:>6} back {:>7}   ({} windows still open, {} back so far)",
            t.audience,
            t.entered,
            t.reactivated,
            pct(t.rate),
            t.open,
            t.open_reactivated
        );
    }
    let _ = writeln!(
        out,
        "\n  cohorts by month of first purchase: share buying again in month +k"
    );
    for c in &r.cohorts {
        let months: Vec<String> = c
            .months
            .iter()
            .filter(|_| c.customers > 0)
            .map(|m| format!("+{} {}", m.months_after, pct(m.rate)))
            .collect();
        let _ = writeln!(
            out,
            "  {:<8} {:>7}  {}",
            c.first_purchase_month,
            c.customers,
            months.join("  ")
        );
    }
    out
}
