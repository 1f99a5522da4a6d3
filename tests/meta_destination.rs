//! The Meta destination against the fake Marketing API over real sockets: what each answer
//! becomes (received and refused rows, budget use, list info) and how each failure is
//! classified, without the engine around it.

mod fakes;

use std::time::Duration;

use audiencesync::hashing::NetworkHashes;
use audiencesync::sync::dest::meta::{MetaDestination, MetaSettings};
use audiencesync::sync::dest::{Batch, Destination, ListRef, PushError};
use audiencesync::sync::member::RemoteMember;
use fakes::{FakeMeta, Fault};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "EAAB-destination-test-token";
const SECRET: &str = "destination-test-app-secret";

fn dest(api_base: &str) -> MetaDestination {
    MetaDestination::new(MetaSettings {
        api_base: api_base.to_string(),
        access_token: TOKEN.into(),
        access_token_file: None,
        app_secret: Some(SECRET.into()),
        ad_account_id: Some("1234".into()),
        timeout: Duration::from_secs(10),
        replace_window: Duration::from_secs(90 * 60),
    })
    .expect("client")
}

fn list(id: &str) -> ListRef {
    ListRef {
        audience: "vip".into(),
        list_id: id.into(),
    }
}

/// `n` distinct members with an email and a country (a shared value: it must name nobody).
fn members(from: usize, n: usize) -> Vec<RemoteMember> {
    (from..from + n)
        .map(|i| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            RemoteMember {
                email: Some(NetworkHashes { google: b, meta: b }),
                country: Some("US".into()),
                ..RemoteMember::default()
            }
        })
        .collect()
}

fn batch(session_id: u64, seq: u64, last: bool) -> Batch {
    Batch {
        session_id,
        seq,
        last,
        estimated_total: 0,
    }
}

async fn fake() -> FakeMeta {
    let m = FakeMeta::start(TOKEN, Some(SECRET)).await;
    m.create_audience("222");
    m
}

#[tokio::test]
async fn answers_become_received_and_refused_rows() {
    let m = fake().await;
    let d = dest(&m.base_url);
    let ms = members(0, 5);
    m.inject(Fault::MetaInvalidEntries { count: 2 });
    let a = d
        .add(&list("222"), &ms, batch(9, 1, false))
        .await
        .expect("accepted");
    assert_eq!(a.request_id, None, "final");
    assert_eq!(a.received, Some(5));
    assert_eq!(
        a.refused.indices,
        [3, 4],
        "the samples name the last two rows"
    );
    assert_eq!(a.refused.total(), 2);
    assert_eq!(m.audience("222").len(), 3);
    // Meta counts per session; the destination reports this request's rows.
    let a = d
        .add(&list("222"), &members(5, 2), batch(9, 2, true))
        .await
        .expect("accepted");
    assert_eq!(a.received, Some(2));
    assert!(a.refused.indices.is_empty() && a.refused.total() == 0);
    let a = d
        .remove(&list("222"), &members(0, 1), batch(10, 1, true))
        .await
        .expect("accepted");
    assert_eq!(a.received, Some(1));
    assert_eq!(m.audience("222").len(), 4);
}

#[tokio::test]
async fn usage_follows_every_answer_and_a_spent_budget_names_its_wait() {
    let m = fake().await;
    m.set_hourly_budget(4);
    let d = dest(&m.base_url);
    assert_eq!(d.usage(), None, "nothing answered yet");
    d.check(&list("222")).await.expect("check");
    assert_eq!(d.usage().map(|u| u.percent), Some(25));
    assert!(d.check(&list("404")).await.is_err());
    assert_eq!(d.usage().map(|u| u.percent), Some(50), "errors too");
    d.add(&list("222"), &members(0, 1), batch(1, 1, true))
        .await
        .expect("accepted");
    d.list_info(&list("222")).await.expect("info");
    assert_eq!(d.usage().map(|u| u.percent), Some(100));
    match d.add(&list("222"), &members(1, 1), batch(2, 1, true)).await {
        Err(PushError::Throttled {
            wait: Some(wait), ..
        }) => assert!(wait >= Duration::from_secs(59 * 60), "{wait:?}"),
        other => panic!("{other:?}"),
    }
    let u = d.usage().expect("usage");
    assert_eq!(u.percent, 100);
    assert!(u.regain.is_some_and(|r| r >= Duration::from_secs(59 * 60)));
}

#[tokio::test]
async fn requests_fill_to_ten_thousand_and_too_large_is_reported() {
    let m = fake().await;
    let d = dest(&m.base_url);
    let many = members(0, 12_000);
    assert_eq!(d.fit(&many), 10_000);
    let a = d
        .add(&list("222"), &many[..10_000], batch(1, 1, true))
        .await
        .expect("10,000 rows in one request");
    assert_eq!(a.received, Some(10_000));

    m.set_max_body_bytes(Some(64 * 1024));
    assert_eq!(
        d.add(&list("222"), &many[..1_000], batch(2, 1, true)).await,
        Err(PushError::TooLarge),
        "413"
    );
    m.set_max_body_bytes(None);
    // A connection broken while a large body is sent is the network refusing its size; a
    // small one is a passing failure.
    m.inject(Fault::Reset);
    assert_eq!(
        d.add(&list("222"), &many[..1_000], batch(3, 1, true)).await,
        Err(PushError::TooLarge)
    );
    m.inject(Fault::Reset);
    assert!(matches!(
        d.add(&list("222"), &many[..1], batch(4, 1, true)).await,
        Err(PushError::Transient { .. })
    ));
    m.inject(Fault::MetaError {
        code: 105,
        subcode: None,
        transient: false,
    });
    assert_eq!(
        d.add(&list("222"), &many[..1], batch(5, 1, true)).await,
        Err(PushError::TooLarge)
    );
}

#[tokio::test]
async fn replace_sessions_end_as_the_network_says_and_list_info_shows_them() {
    let m = fake().await;
    let d = dest(&m.base_url);
    let l = list("222");
    let info = d.list_info(&l).await.expect("read").expect("info");
    assert_eq!(info.operation_status.as_deref(), Some("200 Normal"));
    assert_eq!((info.size_lower, info.size_upper), (Some(0), Some(0)));

    d.replace_batch(&l, &members(0, 150), batch(7, 1, false))
        .await
        .expect("first batch");
    let info = d.list_info(&l).await.expect("read").expect("info");
    assert!(info.replace_in_progress);
    let a = d
        .replace_batch(&l, &members(150, 50), batch(7, 2, true))
        .await
        .expect("last batch");
    assert_eq!(a.received, Some(50));
    let info = d.list_info(&l).await.expect("read").expect("info");
    assert!(!info.replace_in_progress);
    assert_eq!((info.size_lower, info.size_upper), (Some(196), Some(204)));
    assert!(
        matches!(
            d.replace_batch(&l, &members(0, 1), batch(7, 3, false))
                .await,
            Err(PushError::SessionEnded { .. })
        ),
        "1870159: already finished"
    );
    assert!(
        matches!(
            d.replace_batch(&l, &members(0, 1), batch(8, 2, false))
                .await,
            Err(PushError::SessionEnded { .. })
        ),
        "1870147: batch 1 never arrived"
    );

    m.fail_next_replace();
    d.replace_batch(&l, &members(0, 1), batch(9, 1, true))
        .await
        .expect("accepted");
    let info = d.list_info(&l).await.expect("read").expect("info");
    assert!(info.replace_failed.is_some(), "{info:?}");
    assert_eq!(m.audience("222").len(), 200, "kept");

    m.set_replace_window(Duration::from_millis(100));
    d.replace_batch(&l, &members(0, 3), batch(11, 1, false))
        .await
        .expect("first batch");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        matches!(
            d.replace_batch(&l, &members(3, 3), batch(11, 2, true))
                .await,
            Err(PushError::SessionEnded { .. })
        ),
        "1870158: timed out"
    );
    assert_eq!(m.audience("222").len(), 3, "what arrived in time");

    m.flag_for_integrity("222");
    let info = d.list_info(&l).await.expect("read").expect("info");
    assert!(info.blocked.is_some(), "{info:?}");
    match d.add(&l, &members(0, 1), batch(12, 1, true)).await {
        Err(PushError::Permanent { advice, .. }) => {
            assert!(advice.contains("Audience Manager"), "{advice}")
        }
        other => panic!("{other:?}"),
    }
}

/// The head of the one request a raw listener receives, answered with a Graph error.
async fn captured_request(send: impl FnOnce(String) -> tokio::task::JoinHandle<()>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/v26.0", listener.local_addr().expect("addr"));
    let client = send(base);
    let (mut socket, _) = listener.accept().await.expect("accept");
    let mut seen = Vec::new();
    let mut buf = [0u8; 65536];
    // Read until the head and the announced body are in.
    loop {
        let n = socket.read(&mut buf).await.expect("read");
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if seen.len() >= head_end + 4 + length {
                break;
            }
        }
        if n == 0 {
            break;
        }
    }
    let body =
        r#"{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100}}"#;
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(answer.as_bytes()).await.expect("write");
    client.await.expect("client task");
    String::from_utf8_lossy(&seen).to_string()
}

#[tokio::test]
async fn credentials_never_travel_in_the_url() {
    let post = captured_request(|base| {
        tokio::spawn(async move {
            let _ = dest(&base)
                .add(&list("222"), &members(0, 1), batch(1, 1, true))
                .await;
        })
    })
    .await;
    let request_line = post.lines().next().unwrap_or_default().to_string();
    assert!(
        request_line.starts_with("POST /v26.0/222/users "),
        "{request_line}"
    );
    assert!(!request_line.contains(TOKEN) && !request_line.contains("appsecret_proof"));
    assert!(
        post.contains(&format!("access_token={TOKEN}")),
        "in the form body"
    );

    let get = captured_request(|base| {
        tokio::spawn(async move {
            let _ = dest(&base).list_info(&list("222")).await;
        })
    })
    .await;
    let request_line = get.lines().next().unwrap_or_default().to_string();
    assert!(
        request_line.starts_with("GET /v26.0/222?"),
        "{request_line}"
    );
    assert!(!request_line.contains(TOKEN), "{request_line}");
    assert!(
        get.to_ascii_lowercase().contains(&format!(
            "authorization: bearer {}",
            TOKEN.to_ascii_lowercase()
        )),
        "{get}"
    );
}

#[tokio::test]
async fn an_echoed_token_never_reaches_an_error() {
    let m = fake().await;
    let d = dest(&m.base_url);
    m.inject(Fault::MetaMalformedToken);
    let e = d
        .add(&list("222"), &members(0, 1), batch(1, 1, true))
        .await
        .expect_err("refused");
    m.inject(Fault::MetaMalformedToken);
    let e2 = d.check(&list("222")).await.expect_err("refused");
    for e in [e, e2] {
        assert_eq!(e, PushError::TokenExpired);
        let text = format!("{e} {e:?}");
        assert!(!text.contains(TOKEN) && !text.contains(SECRET), "{text}");
    }
}
