//! UTC calendar arithmetic for reports: months, quarters, years and ISO weeks as integer
//! indices, exact to the nanosecond (proleptic Gregorian calendar, no time zones, no leap
//! seconds — the same instants the rest of the daemon compares).

use crate::clock::{Nanos, NANOS_PER_SEC};

/// Nanoseconds in one day.
pub const DAY: Nanos = 86_400 * NANOS_PER_SEC;

/// Months since January 1970 (negative before).
pub type Month = i32;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The day an instant falls on.
pub fn day_of(t: Nanos) -> i64 {
    t.div_euclid(DAY)
}

/// The month an instant falls in.
pub fn month_of(t: Nanos) -> Month {
    let (y, m, _) = civil_from_days(day_of(t));
    ((y - 1970) * 12 + i64::from(m) - 1) as Month
}

/// The first instant of month `m`.
pub fn month_start(m: Month) -> Nanos {
    let y = 1970 + i64::from(m.div_euclid(12));
    let mo = m.rem_euclid(12) as u32 + 1;
    days_from_civil(y, mo, 1).saturating_mul(DAY)
}

/// The first month whose start is at or after `t`.
pub fn ceil_month(t: Nanos) -> Month {
    let m = month_of(t);
    if month_start(m) == t {
        m
    } else {
        m + 1
    }
}

/// A calendar period length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Calendar months.
    Month,
    /// Calendar quarters (Jan–Mar, …).
    Quarter,
    /// Calendar years.
    Year,
}

impl Unit {
    /// Every unit, in index order.
    pub const ALL: [Unit; 3] = [Unit::Month, Unit::Quarter, Unit::Year];

    /// Months in one period.
    pub fn months(self) -> i32 {
        match self {
            Unit::Month => 1,
            Unit::Quarter => 3,
            Unit::Year => 12,
        }
    }

    /// Position in [`Unit::ALL`].
    pub fn index(self) -> usize {
        match self {
            Unit::Month => 0,
            Unit::Quarter => 1,
            Unit::Year => 2,
        }
    }

    /// The period (of this unit) containing month `m`.
    pub fn period_of(self, m: Month) -> i32 {
        m.div_euclid(self.months())
    }

    /// The first period whose start month is `m` or later.
    pub fn ceil_period(self, m: Month) -> i32 {
        let s = self.months();
        (m + s - 1).div_euclid(s)
    }

    /// The first month of period `p`.
    pub fn start_month(self, p: i32) -> Month {
        p * self.months()
    }

    /// A label: `2026-11`, `2026-Q4`, `2026`.
    pub fn label(self, p: i32) -> String {
        let m = self.start_month(p);
        let y = 1970 + m.div_euclid(12);
        match self {
            Unit::Month => format!("{y:04}-{:02}", m.rem_euclid(12) + 1),
            Unit::Quarter => format!("{y:04}-Q{}", m.rem_euclid(12) / 3 + 1),
            Unit::Year => format!("{y:04}"),
        }
    }
}

/// Weeks since the Monday before the epoch (1969-12-29), so weeks start on Monday 00:00 UTC.
pub fn week_of(t: Nanos) -> i32 {
    (day_of(t) + 3).div_euclid(7) as i32
}

/// The first instant (Monday 00:00 UTC) of week `w`.
pub fn week_start(w: i32) -> Nanos {
    (i64::from(w) * 7 - 3).saturating_mul(DAY)
}

/// The ISO 8601 week label of week `w`, e.g. `2026-W48` (the year of its Thursday).
pub fn iso_week_label(w: i32) -> String {
    let thursday = i64::from(w) * 7 - 3 + 3;
    let (y, _, _) = civil_from_days(thursday);
    let jan1 = days_from_civil(y, 1, 1);
    let n = (thursday - jan1) / 7 + 1;
    format!("{y:04}-W{n:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: u32, d: u32) -> Nanos {
        days_from_civil(y, m, d) * DAY
    }

    #[test]
    fn civil_round_trips() {
        for z in [-800_000i64, -1, 0, 1, 59, 60, 11_016, 20_780, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn months_and_periods() {
        let t = at(2026, 11, 23) + 5 * NANOS_PER_SEC;
        let m = month_of(t);
        assert_eq!(Unit::Month.label(m), "2026-11");
        assert_eq!(month_start(m), at(2026, 11, 1));
        assert_eq!(ceil_month(t), m + 1);
        assert_eq!(ceil_month(at(2026, 11, 1)), m);
        assert_eq!(ceil_month(at(2026, 11, 1) - 1), m);
        assert_eq!(Unit::Quarter.label(Unit::Quarter.period_of(m)), "2026-Q4");
        assert_eq!(Unit::Year.label(Unit::Year.period_of(m)), "2026");
        assert_eq!(Unit::Quarter.ceil_period(m), Unit::Quarter.period_of(m) + 1);
        assert_eq!(month_of(at(1969, 12, 31)), -1);
        assert_eq!(Unit::Month.label(-1), "1969-12");
    }

    #[test]
    fn iso_weeks() {
        // 2026-11-23 is a Monday in ISO week 48; 2021-01-03 (Sunday) is 2020-W53.
        let w = week_of(at(2026, 11, 23));
        assert_eq!(week_start(w), at(2026, 11, 23));
        assert_eq!(week_of(at(2026, 11, 29) + DAY - 1), w);
        assert_eq!(iso_week_label(w), "2026-W48");
        assert_eq!(iso_week_label(week_of(at(2021, 1, 3))), "2020-W53");
        assert_eq!(iso_week_label(week_of(at(2021, 1, 4))), "2021-W01");
        assert_eq!(iso_week_label(week_of(at(2019, 12, 30))), "2020-W01");
        assert_eq!(week_start(week_of(0)), at(1969, 12, 29));
    }
}
