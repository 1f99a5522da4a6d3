//! The insight counters, library-level: a hand-computed population, any arrival order, and
//! the incremental path against a recomputation from scratch as time passes.

mod common;

use std::sync::Arc;

use audiencesync::audience::params::AudienceParams;
use audiencesync::audience::Audiences;
use audiencesync::clock::NANOS_PER_SEC;
use audiencesync::config::Config;
use audiencesync::feed::Generator;
use audiencesync::ingest::validate::Validator;
use audiencesync::insight::calendar::Unit;
use audiencesync::insight::retention::{PeriodRow, RetentionReport};
use audiencesync::insight::Insights;
use audiencesync::ledger::state::State;
use audiencesync::money::CurrencyTable;
use audiencesync::proto::v1;
use common::population::{self, expect};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Facts, memberships and insights driven the way the ledger writer drives them.
struct World {
    validator: Validator,
    facts: State,
    audiences: Audiences,
    insights: Insights,
}

impl World {
    fn new(cfg: &Config) -> Self {
        let params = AudienceParams::from_config(&cfg.audiences).expect("rules");
        let currencies = Arc::new(CurrencyTable::from_config(&cfg.revenue).expect("currencies"));
        Self {
            validator: Validator::new(cfg).expect("validator"),
            facts: State::default(),
            audiences: Audiences::new(params.clone(), currencies.clone()),
            insights: Insights::new(&params, currencies),
        }
    }

    /// One group commit at `now`.
    fn commit(&mut self, events: &[v1::Event], now: i64) {
        for e in events {
            if let Ok(f) = self.validator.validate(e, now) {
                self.facts.apply(&f);
            }
        }
        let touched: Vec<u32> = std::mem::take(&mut self.facts.touched)
            .into_iter()
            .collect();
        for &c in &touched {
            self.audiences.update(&self.facts, c, now);
        }
        self.insights
            .observe(&self.facts, &self.audiences, &touched);
        self.audiences.pending.clear();
    }

    /// One writer tick at `now`.
    fn tick(&mut self, now: i64) {
        self.audiences.tick(&self.facts, now);
        self.insights.observe(&self.facts, &self.audiences, &[]);
        self.audiences.pending.clear();
        self.insights.flush(&self.facts, &self.audiences, now);
    }

    fn retention(&self, unit: Unit, periods: u32, cohorts: u32) -> RetentionReport {
        self.insights.published().retention(unit, periods, cohorts)
    }

    fn canonical(&self) -> Vec<String> {
        self.insights.published().aggregates.canonical()
    }
}

fn row<'a>(r: &'a RetentionReport, label: &str) -> &'a PeriodRow {
    let label = population::relabel(label);
    r.periods
        .iter()
        .find(|p| p.label == label)
        .unwrap_or_else(|| panic!("no period {label} in {:?}", r.periods))
}

fn check_row(r: &RetentionReport, e: &expect::Row) {
    let p = row(r, e.0);
    let got = (
        p.customers_at_start as u64,
        p.customers_at_end as u64,
        p.new_customers as u64,
        p.retained_customers as u64,
        p.returning_customers as u64,
        p.buyers as u64,
        p.revenue,
    );
    assert_eq!(got, (e.1, e.2, e.3, e.4, e.5, e.6, e.7), "period {}", e.0);
    let rate = (e.2 - e.3) as f64 / e.1 as f64;
    assert_eq!(p.retention_rate, Some(rate), "period {}", e.0);
}

/// Checks every hand-computed figure of `tests/common/population.rs`.
pub fn check_population(
    monthly: &RetentionReport,
    quarterly: &RetentionReport,
    yearly: &RetentionReport,
) {
    assert_eq!(monthly.active_customers as u64, expect::ACTIVE);
    assert_eq!(monthly.revenue_year, expect::REVENUE_365);
    assert_eq!(
        monthly.revenue_per_active_customer,
        Some(expect::REVENUE_365 as f64 / expect::ACTIVE as f64)
    );
    assert_eq!(
        (monthly.buyers as u64, monthly.repeat_buyers as u64),
        (expect::BUYERS, expect::REPEAT)
    );
    assert_eq!(monthly.repeat_purchase_rate, Some(0.5));
    assert_eq!(
        (monthly.vip_active as u64, monthly.vip_revenue_year),
        (expect::VIP_ACTIVE, expect::VIP_REVENUE)
    );
    assert_eq!(monthly.vip_revenue_share, Some(33_000.0 / 65_000.0));
    assert_eq!(monthly.vip_customer_share, Some(2.0 / 7.0));
    assert_eq!(monthly.periods.len(), 12);
    assert_eq!(monthly.periods[0].label, population::relabel("2029-01"));
    assert_eq!(monthly.periods[11].label, population::relabel("2029-12"));
    for e in &expect::MONTHS {
        check_row(monthly, e);
    }
    for e in &expect::QUARTERS {
        check_row(quarterly, e);
    }
    check_row(yearly, &expect::YEAR);
    let got: Vec<(String, i64, i64, i64, i64)> = monthly
        .reactivation
        .iter()
        .map(|r| {
            (
                r.audience.clone(),
                r.entered,
                r.reactivated,
                r.open,
                r.open_reactivated,
            )
        })
        .collect();
    let want: Vec<(String, i64, i64, i64, i64)> = expect::REACTIVATION
        .iter()
        .map(|e| {
            (
                e.0.to_string(),
                e.1 as i64,
                e.2 as i64,
                e.3 as i64,
                e.4 as i64,
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(monthly.reactivation[0].rate, Some(0.2));
    // Cohorts: 13 months from 2029-01; the ones listed in `expect` have members.
    assert_eq!(monthly.cohorts.len(), 13);
    assert_eq!(monthly.cohorts[0].label, population::relabel("2029-01"));
    for c in &monthly.cohorts {
        match expect::COHORTS
            .iter()
            .find(|e| population::relabel(e.0) == c.label)
        {
            Some(e) => {
                assert_eq!(c.customers as u64, e.1, "{}", c.label);
                assert_eq!(c.months.len(), e.3, "{}", c.label);
                for &(k, n, rate) in &c.months {
                    let want = e.2.iter().find(|x| x.0 as i32 == k).map_or(0, |x| x.1);
                    assert_eq!(n as u64, want, "{} +{k}", c.label);
                    assert_eq!(rate, Some(want as f64), "{} +{k}", c.label);
                }
            }
            None => assert_eq!(c.customers, 0, "{}", c.label),
        }
    }
}

#[test]
fn the_hand_computed_population() {
    let cfg = Config::default();
    let mut w = World::new(&cfg);
    let now = population::now_secs() * NANOS_PER_SEC;
    // One commit per event: the adversarial order of `events()` reaches the engine as is.
    for e in population::events() {
        w.commit(&[e], now);
    }
    w.tick(now);
    check_population(
        &w.retention(Unit::Month, 12, 13),
        &w.retention(Unit::Quarter, 4, 1),
        &w.retention(Unit::Year, 1, 1),
    );
}

fn generated(customers: u64, seed: u64, now_secs: i64) -> Vec<v1::Event> {
    Generator::new(customers, seed, now_secs)
        .batches(1_000)
        .flatten()
        .collect()
}

#[test]
fn any_arrival_order_gives_the_same_counters() {
    let cfg = Config::default();
    let now_secs = 1_900_000_000;
    let now = now_secs * NANOS_PER_SEC;
    let events = generated(1_500, 11, now_secs);
    let mut reference = World::new(&cfg);
    reference.commit(&events, now);
    reference.tick(now);
    let want = reference.retention(Unit::Month, 120, 60);
    assert!(
        want.buyers > 500,
        "a realistic shop: {} buyers",
        want.buyers
    );
    let want_canonical: Vec<String> = reference
        .canonical()
        .into_iter()
        .filter(|l| !l.starts_with("lift"))
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for round in 0..3 {
        let mut shuffled = events.clone();
        shuffled.shuffle(&mut rng);
        // And some of them twice.
        let dups: Vec<v1::Event> = shuffled.iter().step_by(7).cloned().collect();
        shuffled.extend(dups);
        shuffled.shuffle(&mut rng);
        let mut w = World::new(&cfg);
        let mut rest = &shuffled[..];
        while !rest.is_empty() {
            let n = rng.random_range(1..400).min(rest.len());
            w.commit(&rest[..n], now);
            rest = &rest[n..];
            if rng.random_bool(0.2) {
                w.tick(now);
            }
        }
        w.tick(now);
        assert_eq!(w.retention(Unit::Month, 120, 60), want, "round {round}");
        let got: Vec<String> = w
            .canonical()
            .into_iter()
            .filter(|l| !l.starts_with("lift"))
            .collect();
        assert_eq!(got, want_canonical, "round {round}");
    }
}

#[test]
fn incremental_counters_equal_a_rebuild_as_time_passes() {
    let mut cfg = Config::default();
    cfg.audiences
        .holdout
        .insert("lapsed_90".into(), "0.3".into());
    cfg.audiences
        .outcome_windows
        .insert("cart_abandoners".into(), "2d".into());
    let now_secs = 1_900_000_000;
    let mut now = now_secs * NANOS_PER_SEC;
    let mut w = World::new(&cfg);
    for batch in Generator::new(2_000, 3, now_secs).batches(500) {
        w.commit(&batch, now);
    }
    w.tick(now);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut later = generated(400, 4, now_secs + 400 * 86_400).into_iter();
    for step in [
        1,
        3_600,
        86_400,
        20 * 86_400,
        40 * 86_400,
        95 * 86_400,
        200 * 86_400,
    ] {
        now += step * NANOS_PER_SEC;
        // New events as time goes by (those not in the future of `now`), then the tick.
        let batch: Vec<v1::Event> = later.by_ref().take(rng.random_range(50..300)).collect();
        w.commit(&batch, now);
        w.tick(now);
        let incremental = w.canonical();
        let lift = w.insights.published().lift(None);
        w.insights.rebuild(&w.facts, &w.audiences, now);
        assert_eq!(w.canonical(), incremental, "after {step} s");
        assert_eq!(w.insights.published().lift(None), lift, "after {step} s");
    }
    let lift = w.insights.published().lift(None);
    let lapsed = lift
        .iter()
        .find(|a| a.audience == "lapsed_90")
        .expect("lapsed_90 has entries");
    assert!(
        lapsed.total.holdout.members + lapsed.total.holdout.open_members > 0,
        "{lapsed:?}"
    );
    assert!(lapsed.total.pushed.members > 0, "{lapsed:?}");
}
