//! The membership answers `GetCustomerAudiences` reads (published by the writer, read without
//! its lock) agree with what the locked path (`StreamMembers`) says, customer by customer,
//! over a synthetic shop with replays, erasures, consent changes and holdouts.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use audiencesync::feed::Generator;
use audiencesync::proto::v1;
use common::*;

/// Audiences, holdouts and eligibility of one customer.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    audiences: BTreeSet<String>,
    holdout: BTreeSet<String>,
    eligible: Option<bool>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_answers_agree_with_the_members_of_every_audience() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(
        tmp.path(),
        "[audiences]\nholdout = { vip = \"0.3\", lapsed_90 = \"0.5\", stage_active = \"0.2\" }\n",
    );
    let batches: Vec<Vec<v1::Event>> = Generator::new(1_500, 11, now_secs()).batches(400).collect();
    stream(&d, batches).await;

    let list = d
        .audience()
        .await
        .list_audiences(v1::ListAudiencesRequest {})
        .await
        .expect("list_audiences")
        .into_inner();
    let mut by_customer: BTreeMap<String, Seen> = BTreeMap::new();
    for a in &list.audiences {
        for m in d.members(&a.name, 500).await {
            let seen = by_customer.entry(m.customer_id.clone()).or_default();
            seen.audiences.insert(a.name.clone());
            if m.holdout {
                seen.holdout.insert(a.name.clone());
            }
            assert!(
                seen.eligible.is_none_or(|e| e == m.eligible),
                "{} eligible both ways",
                m.customer_id
            );
            seen.eligible = Some(m.eligible);
        }
    }
    assert!(
        by_customer.len() > 1_000,
        "{} customers in audiences",
        by_customer.len()
    );
    let held: usize = by_customer.values().map(|s| s.holdout.len()).sum();
    assert!(held > 50, "{held} holdout memberships");

    let mut client = d.audience().await;
    for (id, seen) in &by_customer {
        let a = client
            .get_customer_audiences(v1::GetCustomerAudiencesRequest {
                customer_id: id.clone(),
            })
            .await
            .expect("get_customer_audiences")
            .into_inner();
        let answered = Seen {
            audiences: a.audiences.iter().cloned().collect(),
            holdout: a.holdout.iter().cloned().collect(),
            eligible: Some(a.eligible),
        };
        assert_eq!(&answered, seen, "customer {id}");
        assert!(
            a.lifecycle_stage.is_empty()
                || answered
                    .audiences
                    .contains(&format!("stage_{}", a.lifecycle_stage)),
            "{id}: {a:?}"
        );
    }
    let unknown = client
        .get_customer_audiences(v1::GetCustomerAudiencesRequest {
            customer_id: "nobody-ever".into(),
        })
        .await
        .expect_err("unknown customer");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(
        unknown.message().contains("nobody-ever"),
        "{}",
        unknown.message()
    );
}
