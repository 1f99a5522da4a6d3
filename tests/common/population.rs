//! A small shop whose retention metrics were computed by hand (docs/INSIGHTS.md definitions),
//! with a refund before its order, a partial refund, a fully refunded first order, an erasure
//! that arrives before the erased customer's order, and a customer who comes back after more
//! than a year. Every order is at 12:00 UTC on its day; the report is read at NOW.
//!
//! The daemon's manual clock starts at the system time and never moves back, so once the
//! system clock passes these dates every date (and label) is shifted by a multiple of 28
//! years ([`shift`]): the Gregorian calendar repeats itself every 28 years from 1901 to 2099,
//! so weekdays, leap days and ISO weeks stay those written here.
//!
//! | customer | orders (USD)                                        | notes |
//! |---|---|---|
//! | A | 2028-06-10 100, 2029-03-05 50, 2029-12-20 80            | VIP |
//! | B | 2029-06-15 200                                          | VIP |
//! | C | 2028-12-01 30 (fully refunded), 2029-02-10 40           | first *purchase* 2029-02 |
//! | D | 2027-11-20 500, 2029-11-30 60                           | returns after 2 years |
//! | E | 2029-05-01 70, erased 2029-10-01                        | counts nowhere |
//! | F | 2029-04-10 25, 2029-08-01 35                            | reactivated from lapsed_90 |
//! | G | 2029-09-10 100, refunded 30                             | net 70 |
//! | H | 2028-08-05 45                                           | lapses through every tier |
//! | I | 2029-01-05 20, 2029-08-20 90                            | reactivated from lapsed_180 |
#![allow(dead_code)]

use audiencesync::insight::calendar::{civil_from_days, days_from_civil, DAY};
use audiencesync::proto::v1;

use super::{customer, erase, ev, order, refund};

/// The instant the report describes: 2030-01-15 12:00 UTC.
pub fn now_secs() -> i64 {
    at(2030, 1, 15)
}

/// Years added to every date written here: 0 until the system clock reaches 2029.
pub fn shift() -> i64 {
    let (year_now, _, _) = civil_from_days(super::now_secs().div_euclid(86_400));
    let mut s = 0;
    while 2029 + s < year_now {
        s += 28;
    }
    s
}

/// Noon UTC of a date (as written, before the [`shift`]), in seconds.
pub fn at(y: i64, m: u32, d: u32) -> i64 {
    days_from_civil(y + shift(), m, d) * (DAY / 1_000_000_000) + 12 * 3600
}

/// A period or week label written here (`2029-06`, `2029-Q3`, `2030-W10`) after the [`shift`].
pub fn relabel(label: &str) -> String {
    let (year, rest) = label.split_at(4);
    format!("{}{rest}", year.parse::<i64>().unwrap_or(0) + shift())
}

/// The shop's events, in the worst order we could think of: latest first, refunds before
/// their orders, the erasure before the erased customer's order, and every event twice.
pub fn events() -> Vec<v1::Event> {
    let mut e = Vec::new();
    let people = ["A", "B", "C", "D", "E", "F", "G", "H", "I"];
    for (i, p) in people.iter().enumerate() {
        e.push(ev(
            &format!("u-{p}"),
            at(2027, 1, 1),
            customer(
                p,
                &format!("{}@example.com", p.to_lowercase()),
                &format!("+1212555{:04}", 200 + i),
                true,
            ),
        ));
    }
    /// (order id, customer, date, total in cents)
    type Order = (&'static str, &'static str, (i64, u32, u32), i64);
    let mut orders: [Order; 15] = [
        ("A1", "A", (2028, 6, 10), 10_000),
        ("A2", "A", (2029, 3, 5), 5_000),
        ("A3", "A", (2029, 12, 20), 8_000),
        ("B1", "B", (2029, 6, 15), 20_000),
        ("C1", "C", (2028, 12, 1), 3_000),
        ("C2", "C", (2029, 2, 10), 4_000),
        ("D1", "D", (2027, 11, 20), 50_000),
        ("D2", "D", (2029, 11, 30), 6_000),
        ("E1", "E", (2029, 5, 1), 7_000),
        ("F1", "F", (2029, 4, 10), 2_500),
        ("F2", "F", (2029, 8, 1), 3_500),
        ("G1", "G", (2029, 9, 10), 10_000),
        ("H1", "H", (2028, 8, 5), 4_500),
        ("I1", "I", (2029, 1, 5), 2_000),
        ("I2", "I", (2029, 8, 20), 9_000),
    ];
    // Latest first; the whole list is sent twice below.
    orders.sort_by_key(|o| std::cmp::Reverse(o.2));
    // Refunds and the erasure come before everything they concern.
    e.insert(0, ev("r-C1", at(2028, 12, 5), refund("C1", 0, true)));
    e.insert(0, ev("r-G1", at(2029, 9, 20), refund("G1", 3_000, false)));
    e.insert(0, ev("x-E", at(2029, 10, 1), erase("E")));
    for (id, who, (y, m, d), cents) in orders {
        e.push(ev(
            &format!("o-{id}"),
            at(y, m, d),
            order(id, who, cents, "USD"),
        ));
    }
    let again = e.clone();
    e.extend(again);
    e
}

/// Expected headline figures at NOW.
pub mod expect {
    /// (label, at start, at end, new, retained, returning, buyers, revenue cents)
    pub type Row = (&'static str, u64, u64, u64, u64, u64, u64, i64);
    /// (first purchase month, size, non-zero (months after, buyers), complete months listed)
    pub type CohortRow = (&'static str, u64, &'static [(u32, u64)], usize);

    /// Customers with a purchase in the 365 days before NOW: A B C D F G I.
    pub const ACTIVE: u64 = 7;
    /// A 13000 + B 20000 + C 4000 + D 6000 + F 6000 + G 7000 + I 9000 (cents).
    pub const REVENUE_365: i64 = 65_000;
    /// Buyers ever: A B C D F G H I (E erased).
    pub const BUYERS: u64 = 8;
    /// Two purchases or more: A D F I (C's first order was fully refunded).
    pub const REPEAT: u64 = 4;
    /// VIPs (k = ceil(0.25 × 7) = 2, T = 130.00): B and A.
    pub const VIP_ACTIVE: u64 = 2;
    /// B 20000 + A 13000.
    pub const VIP_REVENUE: i64 = 33_000;

    /// (label, at start, at end, new, retained, returning, buyers, revenue cents) of the
    /// monthly periods checked by hand.
    pub const MONTHS: [Row; 6] = [
        ("2029-01", 2, 3, 1, 2, 0, 1, 2_000),
        ("2029-02", 3, 4, 1, 3, 0, 1, 4_000),
        ("2029-06", 5, 6, 1, 5, 0, 1, 20_000),
        ("2029-08", 6, 5, 0, 5, 0, 2, 12_500),
        ("2029-11", 6, 7, 0, 6, 1, 1, 6_000),
        ("2029-12", 7, 7, 0, 7, 0, 1, 8_000),
    ];

    /// Quarters 2029-Q3 and 2029-Q4, same columns.
    pub const QUARTERS: [Row; 2] = [
        ("2029-Q3", 6, 6, 1, 5, 0, 3, 19_500),
        ("2029-Q4", 6, 7, 0, 6, 1, 2, 14_000),
    ];

    /// The year 2029.
    pub const YEAR: Row = ("2029", 2, 7, 5, 1, 1, 7, 67_000);

    /// (tier, entered with closed window, reactivated, open, open reactivated) over the twelve
    /// months of 2029.
    pub const REACTIVATION: [(&str, u64, u64, u64, u64); 3] = [
        ("lapsed_90", 5, 1, 3, 0),
        ("lapsed_180", 4, 1, 1, 0),
        ("lapsed_360", 1, 0, 0, 0),
    ];

    /// (first purchase month, size, (months after, buyers) that are non-zero, complete
    /// months listed) for the 13 cohorts from 2029-01.
    pub const COHORTS: [CohortRow; 5] = [
        ("2029-01", 1, &[(7, 1)], 11),
        ("2029-02", 1, &[], 10),
        ("2029-04", 1, &[(4, 1)], 8),
        ("2029-06", 1, &[], 6),
        ("2029-09", 1, &[], 3),
    ];
}
