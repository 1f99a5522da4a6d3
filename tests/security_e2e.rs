//! Bearer-token scopes, the loopback rule, and TLS / mutual TLS, against the real daemon.

mod common;

use std::path::Path;

use audiencesync::proto::v1;
use audiencesync::proto::v1::admin_service_client::AdminServiceClient;
use audiencesync::proto::v1::audience_service_client::AudienceServiceClient;
use audiencesync::proto::v1::ingest_service_client::IngestServiceClient;
use audiencesync::proto::v1::insight_service_client::InsightServiceClient;
use common::*;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const INGEST: &str = "ingest-7f3a9c1e5b2d4f60";
const QUERY: &str = "query-1b8e6d2c9a4f7e30";
const ADMIN: &str = "admin-5c2f8a1d7e9b3c40";

/// Token files in a fake `$CREDENTIALS_DIRECTORY`, named relatively in the config.
fn creds(dir: &Path) -> String {
    let creds = dir.join("creds");
    std::fs::create_dir_all(&creds).expect("creds dir");
    for (name, token) in [("ingest", INGEST), ("query", QUERY), ("admin", ADMIN)] {
        std::fs::write(creds.join(name), format!("{token}\n")).expect("token file");
    }
    creds.to_str().expect("utf-8").to_string()
}

const AUTH_TOML: &str = "[auth]\nenabled = true\ningest_token_file = \"ingest\"\n\
                         query_token_file = \"query\"\nadmin_token_file = \"admin\"\n";

async fn health(channel: Channel) -> Result<i32, tonic::Code> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "audiencesync.v1.IngestService".into(),
        })
        .await
        .map(|r| r.into_inner().status)
        .map_err(|s| s.code())
}

fn code<T>(r: Result<T, tonic::Status>) -> Option<tonic::Code> {
    r.err().map(|s| s.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_scoped_and_refusals_change_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let creds = creds(tmp.path());
    let d = Daemon::start_env(
        tmp.path(),
        AUTH_TOML,
        &[("CREDENTIALS_DIRECTORY", creds.as_str())],
    );
    let ch = d.channel().await;
    let now = now_secs();
    let batch = || v1::EventBatch {
        batch_id: 1,
        events: vec![
            ev(
                "a1",
                now - DAY,
                customer("c-a", "a@example.com", "+12125550134", true),
            ),
            ev("a2", now - DAY, order("o-a", "c-a", 500, "USD")),
        ],
    };
    // Health stays open.
    assert_eq!(health(ch.clone()).await, Ok(ServingStatus::Serving as i32));

    let mut ingest = IngestServiceClient::new(ch.clone());
    let mut audience = AudienceServiceClient::new(ch.clone());
    let mut admin = AdminServiceClient::new(ch.clone());
    let before = admin
        .get_store_stats(authed(v1::GetStoreStatsRequest {}, ADMIN))
        .await
        .expect("admin stats")
        .into_inner();

    use tonic::Code::{PermissionDenied, Unauthenticated};
    assert_eq!(
        code(ingest.ingest_batch(batch()).await),
        Some(Unauthenticated)
    );
    assert_eq!(
        code(
            ingest
                .ingest_batch(authed(batch(), "not-a-real-token-at-all"))
                .await
        ),
        Some(Unauthenticated)
    );
    assert_eq!(
        code(ingest.ingest_batch(authed(batch(), QUERY)).await),
        Some(PermissionDenied)
    );
    assert_eq!(
        code(ingest.ingest_batch(authed(batch(), ADMIN)).await),
        Some(PermissionDenied)
    );
    let stream = ingest
        .stream_events(tokio_stream::iter(vec![batch()]))
        .await;
    assert_eq!(code(stream.map(|_| ())), Some(Unauthenticated));

    // Nothing moved.
    let after = admin
        .get_store_stats(authed(v1::GetStoreStatsRequest {}, ADMIN))
        .await
        .expect("admin stats")
        .into_inner();
    assert_eq!(before, after);
    assert_eq!(after.customers, 0);

    let ack = ingest
        .ingest_batch(authed(batch(), INGEST))
        .await
        .expect("ingest with the ingest token")
        .into_inner();
    assert_eq!(ack.applied, 2);

    let get = || v1::GetCustomerRequest {
        customer_id: "c-a".into(),
    };
    assert!(audience.get_customer(authed(get(), QUERY)).await.is_ok());
    assert!(
        audience.get_customer(authed(get(), ADMIN)).await.is_ok(),
        "admin may query"
    );
    assert_eq!(
        code(audience.get_customer(authed(get(), INGEST)).await),
        Some(PermissionDenied)
    );
    assert_eq!(
        code(audience.get_customer(get()).await),
        Some(Unauthenticated)
    );
    assert_eq!(
        code(
            admin
                .get_store_stats(authed(v1::GetStoreStatsRequest {}, QUERY))
                .await
        ),
        Some(PermissionDenied)
    );

    // InsightService has the query scope, like AudienceService.
    let mut insight = InsightServiceClient::new(ch.clone());
    let lift = || v1::GetLiftRequest::default();
    assert!(insight.get_lift(authed(lift(), QUERY)).await.is_ok());
    assert!(insight.get_lift(authed(lift(), ADMIN)).await.is_ok());
    assert_eq!(
        code(insight.get_lift(authed(lift(), INGEST)).await),
        Some(PermissionDenied)
    );
    assert_eq!(code(insight.get_lift(lift()).await), Some(Unauthenticated));

    let log = d.log_text();
    d.stop();
    for t in [INGEST, QUERY, ADMIN] {
        assert!(!log.contains(t), "a token leaked into the log");
    }
}

#[test]
fn open_non_loopback_listener_is_refused_naming_the_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (status, stderr) = Daemon::start_failing(tmp.path(), "[server]\nlisten = \"0.0.0.0:0\"\n");
    assert!(!status.success());
    assert!(
        stderr.contains("auth.allow_unauthenticated_non_loopback"),
        "{stderr}"
    );

    let (status, stderr) = Daemon::start_failing(
        tmp.path(),
        "[auth]\nenabled = true\ningest_token_file = \"/nonexistent/ingest\"\n\
         query_token_file = \"/nonexistent/q\"\nadmin_token_file = \"/nonexistent/a\"\n",
    );
    assert!(!status.success());
    assert!(stderr.contains("auth.ingest_token_file"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_non_loopback_listener_starts_when_explicitly_allowed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(
        tmp.path(),
        "[server]\nlisten = \"0.0.0.0:0\"\n[auth]\nallow_unauthenticated_non_loopback = true\n",
    );
    assert!(d.addr.ip().is_unspecified());
    d.stop();
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write pem");
    p.to_str().expect("utf-8").to_string()
}

async fn tls_channel(
    port: u16,
    ca_pem: &str,
    identity: Option<Identity>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .expect("url")
        .tls_config(tls)?
        .connect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_with_a_self_signed_certificate() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert_pem = ck.cert.pem();
    let cert = write(tmp.path(), "cert.pem", &cert_pem);
    let key = write(tmp.path(), "key.pem", &ck.signing_key.serialize_pem());
    let d = Daemon::start(
        tmp.path(),
        &format!("[tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\n"),
    );
    let ch = tls_channel(d.addr.port(), &cert_pem, None)
        .await
        .expect("TLS connect");
    assert_eq!(health(ch).await, Ok(ServingStatus::Serving as i32));
    // A plaintext client cannot talk to the TLS listener.
    let plain = Channel::from_shared(d.url()).expect("url").connect().await;
    match plain {
        Err(_) => {}
        Ok(ch) => assert!(health(ch).await.is_err(), "plaintext must not work"),
    }
    d.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let tmp = tempfile::tempdir().expect("tmp");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let ca_pem = ca.as_ref().pem();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &ca)
            .expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into()]);
    let (client_cert, client_key) = leaf(vec!["shop-ingest".into()]);
    let d = Daemon::start(
        tmp.path(),
        &format!(
            "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\n",
            write(tmp.path(), "server.pem", &server_cert),
            write(tmp.path(), "server.key", &server_key),
            write(tmp.path(), "ca.pem", &ca_pem),
        ),
    );
    let port = d.addr.port();
    let without = match tls_channel(port, &ca_pem, None).await {
        Err(_) => None,
        Ok(ch) => Some(health(ch).await),
    };
    assert!(
        !matches!(without, Some(Ok(_))),
        "a client without a certificate was served: {without:?}"
    );
    let ch = tls_channel(
        port,
        &ca_pem,
        Some(Identity::from_pem(client_cert, client_key)),
    )
    .await
    .expect("mTLS connect");
    assert_eq!(health(ch).await, Ok(ServingStatus::Serving as i32));
    d.stop();
}
