//! The incremental path equals the full recompute, on a generated population, as time moves.

use std::sync::Arc;

use audiencesync::audience::params::AudienceParams;
use audiencesync::audience::{Audience, Audiences};
use audiencesync::clock::NANOS_PER_SEC;
use audiencesync::config::Config;
use audiencesync::feed::Generator;
use audiencesync::ingest::validate::Validator;
use audiencesync::ledger::state::State;
use audiencesync::money::CurrencyTable;

fn engine(cfg: &Config) -> Audiences {
    Audiences::new(
        AudienceParams::from_config(&cfg.audiences).expect("rules"),
        Arc::new(CurrencyTable::from_config(&cfg.revenue).expect("currencies")),
    )
}

fn snapshot(a: &Audiences) -> Vec<(Audience, Vec<u32>, u64)> {
    Audience::ALL
        .iter()
        .map(|x| {
            let m = a.members(*x);
            (*x, m.iter().collect(), m.intersection_len(a.eligible()))
        })
        .collect()
}

#[test]
fn incremental_equals_full_recompute_as_time_passes() {
    let cfg = Config::default();
    let validator = Validator::new(&cfg).expect("validator");
    let now_secs = 1_900_000_000;
    let mut now = now_secs * NANOS_PER_SEC;
    let mut facts = State::default();
    let mut inc = engine(&cfg);
    let mut applied = 0;
    for batch in Generator::new(3_000, 7, now_secs).batches(500) {
        for ev in batch {
            let Ok(f) = validator.validate(&ev, now) else {
                continue;
            };
            facts.apply(&f);
            applied += 1;
        }
        for c in std::mem::take(&mut facts.touched) {
            inc.update(&facts, c, now);
        }
    }
    assert!(
        applied > 30_000,
        "generated population is realistic: {applied}"
    );

    let mut seen_nonempty = [false; Audience::ALL.len()];
    for step_secs in [0, 1, 59 * 60, 3_600, 86_400, 30 * 86_400, 200 * 86_400] {
        now += step_secs * NANOS_PER_SEC;
        inc.tick(&facts, now);
        let mut full = engine(&cfg);
        full.recompute_all(&facts, now);
        assert_eq!(snapshot(&inc), snapshot(&full), "at +{step_secs} s");
        for a in Audience::ALL {
            seen_nonempty[a.index()] |= !inc.members(a).is_empty();
        }
    }
    // Every audience is exercised by the generated shop at some point.
    assert!(seen_nonempty.iter().all(|x| *x), "{seen_nonempty:?}");
}
