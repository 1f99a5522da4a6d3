//! Pushed vs holdout: conversion and revenue per member, lift with 95 % intervals, and a plain
//! verdict. Pure arithmetic on counts (see docs/INSIGHTS.md for the method).
//!
//! - Absolute lift (difference of conversion rates): Newcombe's hybrid score interval
//!   (Newcombe 1998, method 10), built from the two groups' Wilson score intervals.
//! - Relative lift (rate ratio − 1): Katz log risk-ratio interval; undefined while either
//!   group has no conversion.
//! - Revenue per member difference: Welch normal interval from the groups' sums and sums of
//!   squares.

/// The 97.5th percentile of the standard normal distribution (two-sided 95 %).
pub const Z95: f64 = 1.959_963_984_540_054;

/// Fewest members with closed windows a group needs before a verdict is given.
pub const MIN_GROUP_MEMBERS: u64 = 30;
/// Fewest conversions (both groups together) before a verdict is given.
pub const MIN_CONVERSIONS: u64 = 5;

/// How the figures are computed, in words, for API responses.
pub const METHOD: &str = "Only entries whose outcome window has closed count; open windows are \
reported separately. Groups: members eligible for push at entry, held out or not (members not \
eligible at entry are never pushed and are excluded). Conversion: a purchase (an order not \
fully refunded) in (entry, entry + window]. Absolute lift = pushed rate - holdout rate, 95% \
Newcombe hybrid score interval (method 10, from Wilson intervals). Relative lift = pushed rate \
/ holdout rate - 1, 95% Katz log risk-ratio interval (needs a conversion in both groups). \
Revenue per member lift: difference of means, 95% Welch normal interval. Verdict 'too small' \
while a group has fewer than 30 members with closed windows or both groups together fewer \
than 5 conversions; otherwise 'inconclusive' when the absolute-lift interval contains 0.";

/// One group's outcomes, summed over entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Entries whose window has closed.
    pub members: u64,
    /// Of those, entries followed by a purchase in the window.
    pub converted: u64,
    /// Net revenue of purchases in the closed windows (revenue-currency minor units).
    pub revenue: i128,
    /// Sum over closed entries of the square of each entry's revenue.
    pub revenue_sq: i128,
    /// Entries whose window is still open.
    pub open_members: u64,
    /// Of those, already converted.
    pub open_converted: u64,
    /// Net revenue so far in open windows.
    pub open_revenue: i128,
}

impl GroupStats {
    /// Conversion rate over closed windows.
    pub fn rate(&self) -> Option<f64> {
        (self.members > 0).then(|| self.converted as f64 / self.members as f64)
    }

    /// Revenue per member over closed windows (minor units).
    pub fn revenue_per_member(&self) -> Option<f64> {
        (self.members > 0).then(|| self.revenue as f64 / self.members as f64)
    }

    /// Adds another group's counts.
    pub fn add(&mut self, o: &GroupStats) {
        self.members += o.members;
        self.converted += o.converted;
        self.revenue += o.revenue;
        self.revenue_sq += o.revenue_sq;
        self.open_members += o.open_members;
        self.open_converted += o.open_converted;
        self.open_revenue += o.open_revenue;
    }
}

/// A point estimate with its 95 % interval, when one exists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Lower bound, when defined.
    pub low: Option<f64>,
    /// Upper bound, when defined.
    pub high: Option<f64>,
}

/// What the numbers allow one to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No holdout configured and none recorded: nothing to compare with.
    NoHoldout,
    /// Below the sample thresholds.
    TooSmall,
    /// The absolute-lift interval contains 0.
    Inconclusive,
    /// Pushed members converted more, beyond the interval.
    Positive,
    /// Pushed members converted less, beyond the interval.
    Negative,
}

/// Pushed vs holdout for one audience (or one cohort of it).
#[derive(Debug, Clone, PartialEq)]
pub struct Lift {
    /// Members pushed (eligible at entry, not held out).
    pub pushed: GroupStats,
    /// Members held out (eligible at entry, held out).
    pub holdout: GroupStats,
    /// Pushed rate − holdout rate.
    pub absolute: Option<Estimate>,
    /// Pushed rate / holdout rate − 1.
    pub relative: Option<Estimate>,
    /// Pushed − holdout revenue per member (minor units).
    pub revenue_per_member: Option<Estimate>,
    /// The verdict.
    pub verdict: Verdict,
    /// The verdict in plain words.
    pub conclusion: String,
}

/// Wilson score interval for `x` successes in `n` trials.
pub fn wilson(x: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (x, n) = (x as f64, n as f64);
    let p = x / n;
    let z2 = Z95 * Z95;
    let d = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / d;
    let half = Z95 / d * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Newcombe's hybrid score interval for `x1/n1 − x2/n2`.
pub fn newcombe(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<Estimate> {
    let (l1, u1) = wilson(x1, n1)?;
    let (l2, u2) = wilson(x2, n2)?;
    let p1 = x1 as f64 / n1 as f64;
    let p2 = x2 as f64 / n2 as f64;
    let d = p1 - p2;
    Some(Estimate {
        value: d,
        low: Some(d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt()),
        high: Some(d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt()),
    })
}

/// `(x1/n1) / (x2/n2) − 1` with the Katz log risk-ratio interval (undefined bounds while a
/// group has no conversion; no estimate at all while the holdout has none).
pub fn katz(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<Estimate> {
    if n1 == 0 || n2 == 0 || x2 == 0 {
        return None;
    }
    let rr = (x1 as f64 / n1 as f64) / (x2 as f64 / n2 as f64);
    if x1 == 0 {
        return Some(Estimate {
            value: rr - 1.0,
            low: None,
            high: None,
        });
    }
    let se = (1.0 / x1 as f64 - 1.0 / n1 as f64 + 1.0 / x2 as f64 - 1.0 / n2 as f64).sqrt();
    Some(Estimate {
        value: rr - 1.0,
        low: Some(rr * (-Z95 * se).exp() - 1.0),
        high: Some(rr * (Z95 * se).exp() - 1.0),
    })
}

/// Difference of mean revenue per member with a Welch normal interval.
pub fn revenue_difference(a: &GroupStats, b: &GroupStats) -> Option<Estimate> {
    let (ma, mb) = (a.revenue_per_member()?, b.revenue_per_member()?);
    let var = |g: &GroupStats, mean: f64| -> Option<f64> {
        (g.members >= 2).then(|| {
            let n = g.members as f64;
            ((g.revenue_sq as f64 - n * mean * mean) / (n - 1.0)).max(0.0)
        })
    };
    let d = ma - mb;
    let se = match (var(a, ma), var(b, mb)) {
        (Some(va), Some(vb)) => Some((va / a.members as f64 + vb / b.members as f64).sqrt()),
        _ => None,
    };
    Some(Estimate {
        value: d,
        low: se.map(|s| d - Z95 * s),
        high: se.map(|s| d + Z95 * s),
    })
}

fn pct(x: f64) -> String {
    format!("{:.1}", x * 100.0)
}

/// Compares the groups. `holdout_configured`: whether the audience has a holdout share now.
pub fn compare(pushed: GroupStats, holdout: GroupStats, holdout_configured: bool) -> Lift {
    let (x1, n1, x2, n2) = (
        pushed.converted,
        pushed.members,
        holdout.converted,
        holdout.members,
    );
    let absolute = newcombe(x1, n1, x2, n2);
    let relative = katz(x1, n1, x2, n2);
    let revenue_per_member = revenue_difference(&pushed, &holdout);
    let no_holdout = holdout.members == 0 && holdout.open_members == 0;
    let (verdict, conclusion) = if no_holdout && !holdout_configured {
        (
            Verdict::NoHoldout,
            "no holdout configured: every eligible member is pushed, so there is nothing to \
             compare with (set audiences.holdout)"
                .to_string(),
        )
    } else if n1 < MIN_GROUP_MEMBERS || n2 < MIN_GROUP_MEMBERS || x1 + x2 < MIN_CONVERSIONS {
        (
            Verdict::TooSmall,
            format!(
                "too small to conclude: {n1} pushed and {n2} held-out members with closed \
                 windows, {} conversions (need at least {MIN_GROUP_MEMBERS} per group and \
                 {MIN_CONVERSIONS} conversions); {} more windows still open",
                x1 + x2,
                pushed.open_members + holdout.open_members
            ),
        )
    } else {
        let e = absolute.unwrap_or(Estimate {
            value: 0.0,
            low: None,
            high: None,
        });
        let (lo, hi) = (e.low.unwrap_or(f64::NAN), e.high.unwrap_or(f64::NAN));
        let range = format!(
            "{} points (95% CI {} to {})",
            pct(e.value),
            pct(lo),
            pct(hi)
        );
        if lo > 0.0 {
            (
                Verdict::Positive,
                format!("pushed members converted more than held-out ones: +{range}"),
            )
        } else if hi < 0.0 {
            (
                Verdict::Negative,
                format!("pushed members converted less than held-out ones: {range}"),
            )
        } else {
            (
                Verdict::Inconclusive,
                format!("inconclusive: the interval contains no difference ({range})"),
            )
        }
    };
    Lift {
        pushed,
        holdout,
        absolute,
        relative,
        revenue_per_member,
        verdict,
        conclusion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("defined");
        assert!((a - b).abs() < 5e-5, "{a} vs {b}");
    }

    /// Newcombe (1998), "Interval estimation for the difference between independent
    /// proportions", Statistics in Medicine 17:873-890, Table II, method 10, to 4 decimals.
    #[test]
    fn newcombe_matches_the_published_examples() {
        for (x1, n1, x2, n2, lo, hi) in [
            (56, 70, 48, 80, 0.0524, 0.3339),
            (9, 10, 3, 10, 0.1705, 0.8090),
            (5, 56, 0, 29, -0.0381, 0.1926),
            (0, 10, 0, 20, -0.1611, 0.2775),
            (0, 10, 0, 10, -0.2775, 0.2775),
            (10, 10, 0, 20, 0.6791, 1.0000),
            (10, 10, 0, 10, 0.6075, 1.0000),
        ] {
            let e = newcombe(x1, n1, x2, n2).expect("interval");
            close(e.low, lo);
            close(e.high, hi);
        }
    }

    /// A hand-computed example: 12 of 40 pushed and 4 of 40 held-out members converted.
    ///
    /// Wilson (z = 1.959964, z² = 3.841459, d = 1 + z²/40 = 1.096036):
    /// 12/40: centre = (0.3 + z²/80)/d = 0.317524, half = z/d·√(0.3·0.7/40 + z²/6400)
    /// = 0.136776 → [0.180748, 0.454300]; 4/40: centre 0.135049, half 0.095469
    /// → [0.039580, 0.230518].
    /// Newcombe: d = 0.2, δ = √(0.119252² + 0.130518²) = 0.176793,
    /// ε = √(0.154300² + 0.060420²) = 0.165708 → [0.023207, 0.365708].
    /// Katz: RR = 3, se(ln RR) = √(1/12 − 1/40 + 1/4 − 1/40) = 0.532291,
    /// RR·e^(±z·se) − 1 → [0.056902, 7.515455].
    #[test]
    fn lift_matches_a_hand_computed_example() {
        let (l, u) = wilson(12, 40).expect("wilson");
        close(Some(l), 0.180748);
        close(Some(u), 0.454300);
        let (l, u) = wilson(4, 40).expect("wilson");
        close(Some(l), 0.039580);
        close(Some(u), 0.230518);
        let e = newcombe(12, 40, 4, 40).expect("newcombe");
        close(Some(e.value), 0.2);
        close(e.low, 0.023207);
        close(e.high, 0.365708);
        let r = katz(12, 40, 4, 40).expect("katz");
        close(Some(r.value), 2.0);
        close(r.low, 0.056902);
        close(r.high, 7.515455);
    }

    #[test]
    fn verdicts() {
        let g = |members, converted| GroupStats {
            members,
            converted,
            ..GroupStats::default()
        };
        assert_eq!(
            compare(g(40, 12), g(0, 0), false).verdict,
            Verdict::NoHoldout
        );
        assert_eq!(compare(g(40, 12), g(0, 0), true).verdict, Verdict::TooSmall);
        assert_eq!(
            compare(g(40, 12), g(29, 4), true).verdict,
            Verdict::TooSmall
        );
        assert_eq!(compare(g(40, 2), g(40, 2), true).verdict, Verdict::TooSmall);
        let l = compare(g(40, 12), g(40, 4), true);
        assert_eq!(l.verdict, Verdict::Positive, "{}", l.conclusion);
        assert!(
            l.conclusion.contains("+20.0 points (95% CI 2.3 to 36.6)"),
            "{}",
            l.conclusion
        );
        assert_eq!(
            compare(g(40, 6), g(40, 4), true).verdict,
            Verdict::Inconclusive
        );
        assert_eq!(
            compare(g(40, 1), g(40, 12), true).verdict,
            Verdict::Negative
        );
        // No conversion in the holdout: no relative lift; none in pushed: no bounds.
        assert!(katz(3, 40, 0, 40).is_none());
        assert_eq!(
            katz(0, 40, 2, 40).map(|e| (e.value, e.low)),
            Some((-1.0, None))
        );
    }

    #[test]
    fn revenue_per_member_welch() {
        // Pushed: 4 members with revenue 10, 0, 0, 30 (sum 40, squares 1000): mean 10,
        // variance (1000 − 4·100)/3 = 200. Holdout: 2 members 0 and 10: mean 5, variance 50.
        // se = √(200/4 + 50/2) = √75.
        let a = GroupStats {
            members: 4,
            revenue: 40,
            revenue_sq: 1000,
            ..Default::default()
        };
        let b = GroupStats {
            members: 2,
            revenue: 10,
            revenue_sq: 100,
            ..Default::default()
        };
        let e = revenue_difference(&a, &b).expect("estimate");
        close(Some(e.value), 5.0);
        close(e.low, 5.0 - Z95 * 75f64.sqrt());
        close(e.high, 5.0 + Z95 * 75f64.sqrt());
    }
}
