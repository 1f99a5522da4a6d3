//! `GoogleDestination` (the library's Data Manager client) against `FakeGoogle` over real
//! sockets: every outcome the engine relies on is read as the contract in `sync::dest` says.

mod common;
mod fakes;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use audiencesync::sync::dest::google::{
    GoogleCredentials, GoogleDestination, GoogleSettings, RefreshCredentials,
};
use audiencesync::sync::dest::{Batch, Destination, ListRef, PushError, RequestState};
use audiencesync::sync::member::RemoteMember;
use common::workload::{google_form, member};
use fakes::{FakeGoogle, Fault};

const LIST: &str = "111";
const MANAGER: &str = "5550001111";

fn destination(g: &FakeGoogle, login: Option<&str>) -> GoogleDestination {
    GoogleDestination::new(GoogleSettings {
        api_base: g.base_url.clone(),
        token_url: g.token_url.clone(),
        operating_account_id: "1234567890".into(),
        login_account_id: login.map(str::to_owned),
        credentials: GoogleCredentials::Refresh(RefreshCredentials {
            client_id: "cid".into(),
            client_secret: "secret".into(),
            refresh_token: g.valid_refresh_token().into(),
        }),
        timeout: Duration::from_secs(5),
    })
    .expect("destination")
}

fn list() -> ListRef {
    ListRef {
        audience: "vip".into(),
        list_id: LIST.into(),
    }
}

fn people(tag: &str, n: usize) -> Vec<RemoteMember> {
    (0..n)
        .map(|i| {
            member(
                &format!("{tag}{i}"),
                &format!("{tag}{i}@example.com"),
                &format!("+1212555{:04}", 1000 + i),
            )
        })
        .collect()
}

fn forms(members: &[RemoteMember]) -> BTreeSet<String> {
    members.iter().map(google_form).collect()
}

async fn add(d: &GoogleDestination, members: &[RemoteMember]) -> String {
    let accepted = d
        .add(&list(), members, Batch::default())
        .await
        .expect("accepted");
    accepted.request_id.expect("an asynchronous request id")
}

/// Polls until the request is final (every 50 ms, 10 s at most).
async fn outcome(d: &GoogleDestination, request_id: &str) -> RequestState {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = d.poll(request_id).await.expect("poll");
        if state != RequestState::Processing {
            return state;
        }
        assert!(Instant::now() < deadline, "{request_id} never became final");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn success_and_partial_success_are_read_with_their_counts() {
    let g = FakeGoogle::start().await;
    g.set_processing_time(Duration::from_millis(600));
    let d = destination(&g, None);
    let reason = "PROCESSING_ERROR_REASON_INVALID_FORMAT";
    g.inject(Fault::PartialSuccess {
        refuse: 2,
        reason: reason.into(),
    });
    let members = people("p", 5);
    let id = add(&d, &members).await;
    assert_eq!(d.poll(&id).await.expect("poll"), RequestState::Processing);
    let RequestState::Succeeded {
        match_rate,
        refused,
    } = outcome(&d, &id).await
    else {
        panic!("PARTIAL_SUCCESS is applied");
    };
    assert_eq!(refused.by_reason.get(reason), Some(&2));
    assert_eq!(refused.total(), 2);
    assert_eq!(match_rate.as_deref(), Some("MATCH_RATE_RANGE_NOT_ELIGIBLE"));
    assert_eq!(g.list(LIST), forms(&members[..3]));

    let id = add(&d, &members[3..]).await;
    let RequestState::Succeeded { refused, .. } = outcome(&d, &id).await else {
        panic!("SUCCESS");
    };
    assert_eq!(refused.total(), 0, "SUCCESS refuses nothing");
    assert_eq!(g.list(LIST), forms(&members));
}

#[tokio::test]
async fn a_failed_request_is_read_as_failed_with_its_reason() {
    let g = FakeGoogle::start().await;
    g.set_processing_time(Duration::ZERO);
    let d = destination(&g, None);
    g.inject(Fault::RequestFailed);
    let id = add(&d, &people("f", 3)).await;
    let RequestState::Failed { reason, refused } = outcome(&d, &id).await else {
        panic!("FAILED");
    };
    assert!(reason.contains(&id), "{reason}");
    assert_eq!(
        refused
            .by_reason
            .get("PROCESSING_ERROR_REASON_INTERNAL_ERROR"),
        Some(&3)
    );
    assert!(g.list(LIST).is_empty());
}

#[tokio::test]
async fn an_unknown_request_id_is_permanent_not_processing() {
    let g = FakeGoogle::start().await;
    let d = destination(&g, None);
    match d.poll("3f2a9c1e-0000-4000-a000-000000000000").await {
        Err(PushError::Permanent { reason, advice }) => {
            assert!(
                reason.contains("unknown") && reason.contains("400"),
                "{reason}"
            );
            assert!(advice.contains("resend"), "{advice}");
        }
        other => panic!("unknown id: {other:?}"),
    }
}

#[tokio::test]
async fn a_daily_429_pauses_until_the_reset_and_a_minute_429_does_not() {
    let g = FakeGoogle::start().await;
    let d = destination(&g, None);
    g.set_daily_quota(Some(0));
    match d.add(&list(), &people("d", 1), Batch::default()).await {
        Err(PushError::Throttled {
            daily: true,
            wait: Some(wait),
            reason,
        }) => {
            // The next midnight in Los Angeles: at most 25 h away (the day clocks fall back).
            assert!(
                wait > Duration::ZERO && wait <= Duration::from_secs(25 * 3600),
                "{wait:?}"
            );
            assert!(reason.contains("RESOURCE_EXHAUSTED"), "{reason}");
        }
        other => panic!("daily 429: {other:?}"),
    }
    g.reset_daily_quota();
    g.inject(Fault::TooManyRequests {
        retry_after_secs: Some(3),
    });
    match d.add(&list(), &people("d", 1), Batch::default()).await {
        Err(PushError::Throttled {
            daily: false, wait, ..
        }) => assert_eq!(wait, Some(Duration::from_secs(3))),
        other => panic!("per-minute 429: {other:?}"),
    }
}

#[tokio::test]
async fn aborted_is_transient() {
    let g = FakeGoogle::start().await;
    let d = destination(&g, None);
    g.inject(Fault::Status(409));
    match d.add(&list(), &people("a", 1), Batch::default()).await {
        Err(PushError::Transient { reason }) => assert!(reason.contains("ABORTED"), "{reason}"),
        other => panic!("409: {other:?}"),
    }
}

#[tokio::test]
async fn the_login_account_goes_in_the_body_and_the_user_list_header() {
    let g = FakeGoogle::start().await;
    g.set_processing_time(Duration::ZERO);
    g.require_login_account(MANAGER);
    let without = destination(&g, None);
    assert!(matches!(
        without
            .add(&list(), &people("l", 1), Batch::default())
            .await,
        Err(PushError::Permanent { .. })
    ));
    assert!(matches!(
        without.create_list("vip").await,
        Err(PushError::Permanent { .. })
    ));
    assert!(matches!(
        without.list_info(&list()).await,
        Err(PushError::Permanent { .. })
    ));
    let with = destination(&g, Some(MANAGER));
    let id = add(&with, &people("l", 1)).await;
    assert!(matches!(
        outcome(&with, &id).await,
        RequestState::Succeeded { .. }
    ));
    let created = with.create_list("vip").await.expect("created");
    assert!(created.chars().all(|c| c.is_ascii_digit()), "{created}");
    assert!(with.list_info(&list()).await.expect("read").is_some());
}

#[tokio::test]
async fn list_info_reads_the_sizes_and_the_match_rate() {
    let g = FakeGoogle::start().await;
    g.set_processing_time(Duration::ZERO);
    let d = destination(&g, None);
    let id = add(&d, &people("s", 10)).await;
    outcome(&d, &id).await;
    g.set_match_rate(60);
    let info = d.list_info(&list()).await.expect("read").expect("info");
    // Display and search counts are the stored members: both bounds carry them.
    assert_eq!((info.size_lower, info.size_upper), (Some(10), Some(10)));
    assert_eq!(info.match_rate.as_deref(), Some("60%"));
}

#[tokio::test]
async fn begin_replace_removes_only_members_uploaded_before_its_time() {
    let g = FakeGoogle::start().await;
    g.set_processing_time(Duration::ZERO);
    let d = destination(&g, None);
    let old = people("o", 2);
    let id = add(&d, &old).await;
    outcome(&d, &id).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let as_of = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let new = people("n", 2);
    let id = add(&d, &new).await;
    outcome(&d, &id).await;
    let start = d.begin_replace(&list(), as_of).await.expect("removeAll");
    let id = start.request_id.expect("removeAll's request id");
    assert!(matches!(
        outcome(&d, &id).await,
        RequestState::Succeeded { .. }
    ));
    assert_eq!(
        g.list(LIST),
        forms(&new),
        "members uploaded after the time stay"
    );
    // Resumed: the same removeAll again changes nothing uploaded since.
    let again = d.begin_replace(&list(), as_of).await.expect("removeAll");
    outcome(&d, &again.request_id.expect("id")).await;
    assert_eq!(g.list(LIST), forms(&new));
}
