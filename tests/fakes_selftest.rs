//! Drives the fake ad-network servers with a plain HTTP client, so that sync-engine tests can
//! trust what the fakes accept, refuse and keep.

mod fakes;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fakes::{FakeGoogle, FakeMeta, Fault};
use reqwest::{Client, Response};
use serde_json::{json, Value};

/// sha256("mary@example.com"), sha256("dana@example.com"), sha256("+18005550100"),
/// sha256("15559876543"), sha256("givenname"), sha256("familyname").
const MARY: &str = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79";
const DANA: &str = "07e2f1394b0ea80e2adca010ea8318df697001a005ba7452720edda4b0ce57b3";
const PHONE_E164: &str = "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30";
const PHONE_DIGITS: &str = "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e";
const GIVEN: &str = "128a07bfe2df877c52076e60d7774cf5baaa046c5a6c48daf30ff43ecca2f814";
const FAMILY: &str = "77762c287e61ce065bee5c15464012c6fbe088398b8057627d5577249430d574";
const LIST: &str = "987654321";

/// A client on the process's TLS provider (ring), as the daemon's ad-network clients use.
fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn body(response: Response) -> Value {
    response.json().await.expect("JSON body")
}

// ------------------------------------------------------------------------------------ Google

async fn token(client: &Client, google: &FakeGoogle) -> String {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", "cid.apps.googleusercontent.com")
        .append_pair("client_secret", "secret")
        .append_pair("refresh_token", google.valid_refresh_token())
        .finish();
    let response = post_form(client, &google.token_url, form).await;
    assert_eq!(response.status(), 200);
    let token = body(response).await;
    assert_eq!(token["token_type"], "Bearer");
    token["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

async fn post_form(client: &Client, url: &str, form: String) -> Response {
    client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("request")
}

fn email(hash: &str) -> Value {
    json!({"emailAddress": hash})
}

fn member(identifiers: Vec<Value>, consent: &str) -> Value {
    json!({"userData": {"userIdentifiers": identifiers},
           "consent": {"adUserData": consent, "adPersonalization": consent}})
}

fn destinations() -> Value {
    json!([{"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
            "productDestinationId": LIST}])
}

fn ingest_body(members: Vec<Value>) -> Value {
    json!({"destinations": destinations(), "audienceMembers": members, "encoding": "HEX",
           "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"}})
}

fn remove_body(members: Vec<Value>) -> Value {
    json!({"destinations": destinations(), "audienceMembers": members, "encoding": "HEX"})
}

async fn call(
    client: &Client,
    google: &FakeGoogle,
    token: &str,
    verb: &str,
    body: &Value,
) -> Response {
    client
        .post(format!("{}/audienceMembers:{verb}", google.base_url))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn status(client: &Client, google: &FakeGoogle, token: &str, request_id: &str) -> Value {
    let url = format!(
        "{}/requestStatus:retrieve?requestId={request_id}",
        google.base_url
    );
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    body(response).await
}

/// The first fieldViolation of a 400 fast-fail.
async fn violation(response: Response) -> Value {
    assert_eq!(response.status(), 400);
    let error = body(response).await;
    assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
    error["error"]["details"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d.get("fieldViolations").is_some()))
        .map(|d| d["fieldViolations"][0].clone())
        .expect("BadRequest detail")
}

#[tokio::test]
async fn google_token_endpoint_and_expiry() {
    let google = FakeGoogle::start().await;
    let client = client();
    let bad = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", "cid")
        .append_pair("client_secret", "secret")
        .append_pair("refresh_token", "stolen")
        .finish();
    let response = post_form(&client, &google.token_url, bad).await;
    assert_eq!(response.status(), 400);
    assert_eq!(body(response).await["error"], "invalid_grant");

    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let jwt = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(json!({"alg": "RS256", "typ": "JWT"})),
        b64(
            json!({"iss": "sa@p.iam.gserviceaccount.com", "aud": google.token_url,
                   "scope": "https://www.googleapis.com/auth/datamanager", "iat": 1, "exp": 3601})
        )
    );
    for (assertion, expected) in [(jwt.as_str(), 200), ("not.a.jwt", 400)] {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", assertion)
            .finish();
        let response = post_form(&client, &google.token_url, form).await;
        assert_eq!(response.status(), expected, "assertion {assertion}");
        if expected == 200 {
            let token = body(response).await;
            assert_eq!(token["expires_in"], 3600);
            assert!(token["access_token"].is_string());
        }
    }

    let response = client
        .post(format!("{}/audienceMembers:ingest", google.base_url))
        .json(&ingest_body(vec![member(
            vec![email(MARY)],
            "CONSENT_GRANTED",
        )]))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    assert_eq!(body(response).await["error"]["status"], "UNAUTHENTICATED");

    google.set_access_token_ttl(1);
    let short = token(&client, &google).await;
    let ok = ingest_body(vec![member(vec![email(MARY)], "CONSENT_GRANTED")]);
    assert_eq!(
        call(&client, &google, &short, "ingest", &ok).await.status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = call(&client, &google, &short, "ingest", &ok).await;
    assert_eq!(response.status(), 401);
    let error = body(response).await;
    assert_eq!(error["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(
        error["error"]["details"][0]["reason"],
        "ACCESS_TOKEN_EXPIRED"
    );
}

#[tokio::test]
async fn google_lists_follow_ingest_remove_and_remove_all() {
    let google = FakeGoogle::start().await;
    // Applied as soon as accepted: this test is about what each request does to a list.
    google.set_processing_time(Duration::ZERO);
    let client = client();
    let token = token(&client, &google).await;

    let response = client
        .post(format!(
            "{}/accountTypes/GOOGLE_ADS/accounts/1234567890/userLists",
            google.base_url
        ))
        .bearer_auth(&token)
        .json(&json!({"displayName": "buyers", "membershipDuration": "7776000s"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let created = body(response).await;
    assert!(
        created["id"].is_string(),
        "int64 id as a JSON string: {created}"
    );

    let address = json!({"address": {"givenName": GIVEN, "familyName": FAMILY,
                                     "regionCode": "US", "postalCode": "94045"}});
    let members = vec![
        member(
            vec![email(MARY), json!({"phoneNumber": PHONE_E164})],
            "CONSENT_GRANTED",
        ),
        member(vec![address], "CONSENT_GRANTED"),
        member(vec![email(DANA)], "CONSENT_DENIED"),
    ];
    let response = call(&client, &google, &token, "ingest", &ingest_body(members)).await;
    assert_eq!(response.status(), 200);
    let request_id = body(response).await["requestId"]
        .as_str()
        .expect("requestId")
        .to_owned();
    let first = status(&client, &google, &token, &request_id).await;
    assert_eq!(
        first["requestStatusPerDestination"][0]["requestStatus"],
        "PROCESSING"
    );
    let done = status(&client, &google, &token, &request_id).await;
    let entry = &done["requestStatusPerDestination"][0];
    assert_eq!(entry["requestStatus"], "PARTIAL_SUCCESS");
    assert_eq!(
        entry["audienceMembersIngestionStatus"]["userDataIngestionStatus"]["recordCount"],
        "3"
    );
    assert_eq!(
        entry["errorInfo"]["errorCounts"][0]["reason"],
        "PROCESSING_ERROR_REASON_DENIED_CONSENT"
    );
    let mary = format!("email:{MARY}|phone:{PHONE_E164}");
    let addr = format!("address:{GIVEN},{FAMILY},US,94045");
    assert_eq!(google.list(LIST), set(&[&mary, &addr]));

    // Removing by one identifier removes the person.
    let remove = remove_body(vec![
        json!({"userData": {"userIdentifiers": [{"phoneNumber": PHONE_E164}]}}),
    ]);
    let response = call(&client, &google, &token, "remove", &remove).await;
    assert_eq!(response.status(), 200);
    assert_eq!(google.list(LIST), set(&[&addr]));

    let remove_all = json!({"destinations": destinations()});
    let response = call(&client, &google, &token, "removeAll", &remove_all).await;
    assert_eq!(response.status(), 200);
    assert!(google.list(LIST).is_empty());

    let unknown = status_raw(&client, &google, &token, "no-such-id").await;
    assert_eq!(violation(unknown).await["reason"], "INVALID_REQUEST_ID");
}

async fn status_raw(client: &Client, google: &FakeGoogle, token: &str, id: &str) -> Response {
    let url = format!("{}/requestStatus:retrieve?requestId={id}", google.base_url);
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn google_processes_asynchronously_partially_and_as_of_a_time() {
    let google = FakeGoogle::start().await;
    google.set_processing_time(Duration::from_millis(300));
    let client = client();
    let token = token(&client, &google).await;
    let id_of = |v: Value| v["requestId"].as_str().expect("requestId").to_owned();
    let entry = |v: Value| v["requestStatusPerDestination"][0].clone();

    // PROCESSING (without errorInfo) and not applied until the processing time is over.
    let one = ingest_body(vec![member(vec![email(MARY)], "CONSENT_GRANTED")]);
    let id = id_of(body(call(&client, &google, &token, "ingest", &one).await).await);
    let e = entry(status(&client, &google, &token, &id).await);
    assert_eq!(e["requestStatus"], "PROCESSING");
    assert!(e.get("errorInfo").is_none());
    assert!(google.list(LIST).is_empty(), "not applied while processing");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(google.list(LIST), set(&[&format!("email:{MARY}")]));
    assert_eq!(
        entry(status(&client, &google, &token, &id).await)["requestStatus"],
        "SUCCESS"
    );

    // A partial success leaves the last members out and counts them by reason.
    google.set_processing_time(Duration::ZERO);
    google.inject(Fault::PartialSuccess {
        refuse: 1,
        reason: "PROCESSING_ERROR_REASON_INVALID_FORMAT".into(),
    });
    let two = ingest_body(vec![
        member(vec![email(DANA)], "CONSENT_GRANTED"),
        member(vec![json!({"phoneNumber": PHONE_E164})], "CONSENT_GRANTED"),
    ]);
    let id = id_of(body(call(&client, &google, &token, "ingest", &two).await).await);
    status(&client, &google, &token, &id).await;
    let e = entry(status(&client, &google, &token, &id).await);
    assert_eq!(e["requestStatus"], "PARTIAL_SUCCESS");
    assert_eq!(
        e["errorInfo"]["errorCounts"][0],
        json!({"recordCount": "1", "reason": "PROCESSING_ERROR_REASON_INVALID_FORMAT"})
    );
    let dana = format!("email:{DANA}");
    assert_eq!(google.list(LIST), set(&[&format!("email:{MARY}"), &dana]));

    // removeAll as of a time removes only members added before it, even processed later.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let as_of = std::time::SystemTime::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let phone = ingest_body(vec![member(
        vec![json!({"phoneNumber": PHONE_E164})],
        "CONSENT_GRANTED",
    )]);
    call(&client, &google, &token, "ingest", &phone).await;
    let remove_all = json!({"destinations": destinations(),
        "removeAsOfTime": humantime::format_rfc3339_nanos(as_of).to_string()});
    let response = call(&client, &google, &token, "removeAll", &remove_all).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        google.list(LIST),
        set(&[&format!("phone:{PHONE_E164}")]),
        "the later upload stays"
    );
    let future = json!({"destinations": destinations(),
        "removeAsOfTime": humantime::format_rfc3339_seconds(
            std::time::SystemTime::now() + Duration::from_secs(3600)).to_string()});
    let response = call(&client, &google, &token, "removeAll", &future).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        violation(response).await["reason"],
        "INVALID_REMOVE_AS_OF_TIME"
    );
}

#[tokio::test]
async fn google_daily_quota_abort_login_account_and_user_list_reads() {
    let google = FakeGoogle::start().await;
    google.set_processing_time(Duration::ZERO);
    let client = client();
    let token = token(&client, &google).await;
    let one = ingest_body(vec![member(vec![email(MARY)], "CONSENT_GRANTED")]);

    // A per-day quota: 429 naming the per-day limit until a new day.
    google.set_daily_quota(Some(1));
    assert_eq!(
        call(&client, &google, &token, "ingest", &one)
            .await
            .status(),
        200
    );
    let refused = call(&client, &google, &token, "ingest", &one).await;
    assert_eq!(refused.status(), 429);
    let err = body(refused).await;
    assert_eq!(err["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        err["error"]["details"][0]["metadata"]["quota_limit"],
        "IngestionMutateRequestsPerDayPerProject"
    );
    google.reset_daily_quota();
    assert_eq!(
        call(&client, &google, &token, "ingest", &one)
            .await
            .status(),
        200
    );
    google.set_daily_quota(None);

    // 409 is ABORTED, and nothing is applied.
    google.inject(Fault::Status(409));
    let aborted = call(
        &client,
        &google,
        &token,
        "remove",
        &remove_body(vec![
            json!({"userData": {"userIdentifiers": [{"emailAddress": MARY}]}}),
        ]),
    )
    .await;
    assert_eq!(aborted.status(), 409);
    assert_eq!(body(aborted).await["error"]["status"], "ABORTED");
    assert_eq!(google.list(LIST), set(&[&format!("email:{MARY}")]));

    // The UserListService wants the login account in its header.
    google.require_login_account("555");
    let lists = format!(
        "{}/accountTypes/GOOGLE_ADS/accounts/1234567890/userLists",
        google.base_url
    );
    let create = |login: Option<&str>| {
        let mut req = client
            .post(&lists)
            .bearer_auth(&token)
            .json(&json!({"displayName": format!("list {login:?}")}));
        if let Some(l) = login {
            req = req.header("login-account", l);
        }
        req.send()
    };
    let denied = create(None).await.expect("request");
    assert_eq!(denied.status(), 403);
    assert_eq!(body(denied).await["error"]["status"], "PERMISSION_DENIED");
    let ok = create(Some("accountTypes/GOOGLE_ADS/accounts/555"))
        .await
        .expect("request");
    assert_eq!(ok.status(), 200);

    // A user list read reports its size and match rate.
    google.set_match_rate(45);
    let read = client
        .get(format!("{lists}/{LIST}"))
        .bearer_auth(&token)
        .header("login-account", "accountTypes/GOOGLE_ADS/accounts/555")
        .send()
        .await
        .expect("request");
    assert_eq!(read.status(), 200);
    let list = body(read).await;
    assert_eq!(list["sizeInfo"]["displayNetworkMembersCount"], "1");
    assert_eq!(
        list["ingestedUserListInfo"]["contactIdInfo"]["matchRatePercentage"],
        45
    );
}

#[tokio::test]
async fn google_fast_fails_like_the_real_api() {
    let google = FakeGoogle::start().await;
    let client = client();
    let token = token(&client, &google).await;
    let granted = |ids: Vec<Value>| member(ids, "CONSENT_GRANTED");

    let too_many: Vec<Value> = (0..10_001).map(|_| granted(vec![email(MARY)])).collect();
    let response = call(&client, &google, &token, "ingest", &ingest_body(too_many)).await;
    assert_eq!(
        violation(response).await["reason"],
        "TOO_MANY_AUDIENCE_MEMBERS"
    );
    assert_eq!(google.requests().last().map(|r| r.members), Some(10_001));

    let bad_hash = vec![
        granted(vec![email(MARY)]),
        granted(vec![email(DANA), email("not-hex")]),
    ];
    let response = call(&client, &google, &token, "ingest", &ingest_body(bad_hash)).await;
    let v = violation(response).await;
    assert_eq!(
        v["field"],
        "audience_members.audience_members[1].user_data.user_identifiers[1]"
    );
    assert_eq!(v["reason"], "INVALID_HEX_ENCODING");

    let upper = vec![granted(vec![email(&MARY.to_uppercase())])];
    let response = call(&client, &google, &token, "ingest", &ingest_body(upper)).await;
    assert_eq!(violation(response).await["reason"], "INVALID_HEX_ENCODING");

    let short = vec![granted(vec![email(&MARY[..62])])];
    let response = call(&client, &google, &token, "ingest", &ingest_body(short)).await;
    assert_eq!(violation(response).await["reason"], "INVALID_SHA256_FORMAT");

    let eleven = vec![granted((0..11).map(|_| email(MARY)).collect())];
    let response = call(&client, &google, &token, "ingest", &ingest_body(eleven)).await;
    assert_eq!(
        violation(response).await["reason"],
        "TOO_MANY_USER_IDENTIFIERS"
    );

    let mut no_tos = ingest_body(vec![granted(vec![email(MARY)])]);
    no_tos.as_object_mut().map(|o| o.remove("termsOfService"));
    let response = call(&client, &google, &token, "ingest", &no_tos).await;
    assert_eq!(
        violation(response).await["reason"],
        "TERMS_AND_CONDITIONS_NOT_SIGNED"
    );

    let mut no_encoding = ingest_body(vec![granted(vec![email(MARY)])]);
    no_encoding.as_object_mut().map(|o| o.remove("encoding"));
    let response = call(&client, &google, &token, "ingest", &no_encoding).await;
    assert_eq!(
        violation(response).await["reason"],
        "REQUIRED_FIELD_MISSING"
    );

    let mut bad_account = ingest_body(vec![granted(vec![email(MARY)])]);
    bad_account["destinations"][0]["operatingAccount"]["accountId"] = "123-456".into();
    let response = call(&client, &google, &token, "ingest", &bad_account).await;
    let v = violation(response).await;
    assert_eq!(v["reason"], "INVALID_NUMBER_FORMAT");
    assert_eq!(v["field"], "destinations[0].operating_account.account_id");

    let mut consent_on_remove = remove_body(vec![granted(vec![email(MARY)])]);
    consent_on_remove["consent"] = json!({"adUserData": "CONSENT_GRANTED"});
    let response = call(&client, &google, &token, "remove", &consent_on_remove).await;
    assert_eq!(response.status(), 400);
    assert!(body(response).await["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("Unknown name \"consent\"")));

    let bad_consent = vec![member(vec![email(MARY)], "YES")];
    let response = call(
        &client,
        &google,
        &token,
        "ingest",
        &ingest_body(bad_consent),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(
        google.list(LIST).is_empty(),
        "nothing applied by a fast-fail"
    );
}

#[tokio::test]
async fn google_faults_produce_the_documented_responses() {
    let google = FakeGoogle::start().await;
    google.set_processing_time(Duration::ZERO);
    let client = client();
    let token = token(&client, &google).await;
    let one = ingest_body(vec![member(vec![email(MARY)], "CONSENT_GRANTED")]);
    let two = ingest_body(vec![
        member(vec![email(MARY)], "CONSENT_GRANTED"),
        member(vec![email(DANA)], "CONSENT_GRANTED"),
        member(vec![json!({"phoneNumber": PHONE_E164})], "CONSENT_GRANTED"),
    ]);

    google.inject(Fault::Status(503));
    let response = call(&client, &google, &token, "ingest", &one).await;
    assert_eq!(response.status(), 503);
    assert_eq!(body(response).await["error"]["status"], "UNAVAILABLE");

    google.inject(Fault::TooManyRequests {
        retry_after_secs: Some(7),
    });
    let response = call(&client, &google, &token, "ingest", &one).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let error = body(response).await;
    assert_eq!(error["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        error["error"]["details"][0]["metadata"]["quota_limit"],
        "IngestionMutateRequestsPerMinutePerProject"
    );

    google.inject(Fault::Reset);
    assert!(call_result(&client, &google, &token, &one).await.is_err());

    google.inject(Fault::MalformedJson);
    let response = call(&client, &google, &token, "ingest", &one).await;
    assert_eq!(response.status(), 200);
    assert!(response.json::<Value>().await.is_err());
    assert!(
        google.list(LIST).is_empty(),
        "faulted requests are not processed"
    );

    google.inject(Fault::FieldViolation { member_index: 2 });
    let response = call(&client, &google, &token, "ingest", &two).await;
    assert_eq!(
        violation(response).await["field"],
        "audience_members.audience_members[2]"
    );
    assert!(google.list(LIST).is_empty());

    google.inject(Fault::RequestFailed);
    let response = call(&client, &google, &token, "ingest", &two).await;
    assert_eq!(response.status(), 200);
    let id = body(response).await["requestId"]
        .as_str()
        .expect("requestId")
        .to_owned();
    let entry = |v: Value| v["requestStatusPerDestination"][0]["requestStatus"].clone();
    assert_eq!(
        entry(status(&client, &google, &token, &id).await),
        "PROCESSING"
    );
    assert_eq!(entry(status(&client, &google, &token, &id).await), "FAILED");
    assert!(google.list(LIST).is_empty());

    google.inject(Fault::Delay(Duration::from_millis(200)));
    let started = Instant::now();
    let response = call(&client, &google, &token, "ingest", &one).await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(google.list(LIST), set(&[&format!("email:{MARY}")]));

    google.inject(Fault::ExpireToken);
    assert_eq!(
        call(&client, &google, &token, "ingest", &one)
            .await
            .status(),
        401
    );
    assert_eq!(
        call(&client, &google, &token, "ingest", &one)
            .await
            .status(),
        401,
        "stays expired"
    );
    let fresh = self::token(&client, &google).await;
    assert_eq!(
        call(&client, &google, &fresh, "ingest", &one)
            .await
            .status(),
        200
    );

    let statuses: Vec<u16> = google
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(":ingest"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [503, 429, 0, 200, 400, 200, 200, 401, 401, 200]);
    assert!(google
        .requests()
        .iter()
        .any(|r| r.path == "/token" && r.status == 200));
}

async fn call_result(
    client: &Client,
    google: &FakeGoogle,
    token: &str,
    body: &Value,
) -> reqwest::Result<Response> {
    client
        .post(format!("{}/audienceMembers:ingest", google.base_url))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
}

// -------------------------------------------------------------------------------------- Meta

const META_TOKEN: &str = "EAAB-fake-token";
const APP_SECRET: &str = "app_secret";

fn proof() -> String {
    fakes::meta::appsecret_proof(APP_SECRET, META_TOKEN)
}

fn auth_query() -> String {
    format!("access_token={META_TOKEN}&appsecret_proof={}", proof())
}

async fn meta_form(client: &Client, url: String, pairs: &[(&str, String)]) -> Response {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        form.append_pair(k, v);
    }
    post_form(client, &url, form.finish()).await
}

async fn meta_error(response: Response) -> Value {
    assert_eq!(response.status(), 400);
    body(response).await["error"].clone()
}

/// A `session` parameter (§2.2) for batch `seq` of session `id`.
fn session_param(id: i64, seq: i64, last: bool) -> String {
    json!({"session_id": id, "batch_seq": seq, "last_batch_flag": last}).to_string()
}

#[tokio::test]
async fn meta_accepts_every_encoding_and_keeps_the_audience() {
    let meta = FakeMeta::start(META_TOKEN, Some(APP_SECRET)).await;
    let client = client();
    assert_eq!(proof().len(), 64);
    assert_eq!(
        fakes::meta::appsecret_proof("app_secret", "access_token"),
        "d52ddf968d622d8af8677906b7fbae09ac1f89f7cd5c1584b27544624cc23e5a"
    );
    meta.create_audience("111");
    meta.create_audience("222");
    let users = |id: &str| format!("{}/{id}/users?{}", meta.base_url, auth_query());

    // Single key, urlencoded form with JSON strings inside, as the Python SDK sends it.
    let payload = json!({"schema": "EMAIL_SHA256", "data": [MARY, DANA, "bad"], "is_raw": false});
    let session = json!({"session_id": 42, "batch_seq": 1, "last_batch_flag": false});
    let response = meta_form(
        &client,
        users("111"),
        &[
            ("payload", payload.to_string()),
            ("session", session.to_string()),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let ok = body(response).await;
    assert_eq!(ok["audience_id"], "111");
    assert_eq!(ok["session_id"], "42");
    assert_eq!(ok["num_received"], 3);
    assert_eq!(ok["num_invalid_entries"], 1);
    assert_eq!(meta.audience("111"), set(&[MARY, DANA]));
    assert_eq!(meta.schema("111"), Some(vec!["EMAIL_SHA256".to_owned()]));

    // Removal: POST with method=DELETE in the body, then a real DELETE with a query payload.
    let remove = json!({"schema": "EMAIL_SHA256", "data": [[MARY]]});
    let response = meta_form(
        &client,
        users("111"),
        &[
            ("method", "DELETE".into()),
            ("payload", remove.to_string()),
            ("session", session_param(43, 1, true)),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(meta.audience("111"), set(&[DANA]));
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "payload",
            &json!({"schema": "EMAIL_SHA256", "data": [DANA]}).to_string(),
        )
        .append_pair("session", &session_param(44, 1, true))
        .finish();
    let response = client
        .delete(format!("{}&{query}", users("111")))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(meta.audience("111").is_empty());

    // Multi-key: JSON body (Node SDK) and multipart (curl -F).
    let schema = json!(["EMAIL", "PHONE", "COUNTRY"]);
    let us = "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621";
    let json_body = json!({"payload": {"schema": schema, "is_raw": true, "data": [[MARY, PHONE_DIGITS, us]]},
                           "session": {"session_id": 7, "batch_seq": 1, "last_batch_flag": true}});
    let response = client
        .post(users("222"))
        .json(&json_body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let boundary = "XyZBoundary";
    let payload =
        json!({"schema": ["PHONE", "EMAIL", "COUNTRY"], "is_raw": true, "data": [["", DANA, us]]});
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n{payload}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n{}\r\n--{boundary}--\r\n",
        session_param(8, 1, true)
    );
    let response = client
        .post(users("222"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(multipart)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        meta.schema("222"),
        Some(vec!["EMAIL".into(), "PHONE".into(), "COUNTRY".into()])
    );
    assert_eq!(
        meta.audience("222"),
        set(&[
            &format!("{MARY}|{PHONE_DIGITS}|{us}"),
            &format!("{DANA}||{us}")
        ])
    );

    // A multi-key audience refuses a single-key upload.
    let single = json!({"schema": "EMAIL_SHA256", "data": [MARY]});
    let error = meta_error(
        meta_form(
            &client,
            users("222"),
            &[
                ("payload", single.to_string()),
                ("session", session_param(9, 1, true)),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(error["code"], 2650);

    // Credentials and unknown audiences.
    let url = format!(
        "{}/111/users?access_token=wrong&appsecret_proof={}",
        meta.base_url,
        proof()
    );
    let error = meta_error(meta_form(&client, url, &[("payload", single.to_string())]).await).await;
    assert_eq!(error["code"], 190);
    let url = format!("{}/111/users?access_token={META_TOKEN}", meta.base_url);
    let error = meta_error(meta_form(&client, url, &[("payload", single.to_string())]).await).await;
    assert_eq!(error["code"], 100);
    let url = format!(
        "{}/111/users?access_token={META_TOKEN}&appsecret_proof={}",
        meta.base_url,
        "0".repeat(64)
    );
    let error = meta_error(meta_form(&client, url, &[("payload", single.to_string())]).await).await;
    assert_eq!(error["code"], 100);
    let error =
        meta_error(meta_form(&client, users("999"), &[("payload", single.to_string())]).await)
            .await;
    assert_eq!(
        (error["code"].clone(), error["error_subcode"].clone()),
        (json!(100), json!(33))
    );
    assert!(error["fbtrace_id"].is_string());
}

#[tokio::test]
async fn meta_replace_takes_effect_on_the_last_batch() {
    let meta = FakeMeta::start(META_TOKEN, None).await;
    let client = client();
    meta.create_audience("333");
    let auth = format!("access_token={META_TOKEN}");
    let users = format!("{}/333/users?{auth}", meta.base_url);
    let replace = format!("{}/333/usersreplace?{auth}", meta.base_url);
    let batch = |data: Value, seq: i64, last: bool| {
        json!({"payload": {"schema": "EMAIL_SHA256", "data": data},
               "session": {"session_id": 9778993, "batch_seq": seq, "last_batch_flag": last}})
    };
    let send = |url: String, body: Value| {
        let client = client.clone();
        async move { client.post(url).json(&body).send().await.expect("request") }
    };

    let response = meta_form(
        &client,
        users.clone(),
        &[
            (
                "payload",
                json!({"schema": "EMAIL_SHA256", "data": [MARY]}).to_string(),
            ),
            ("session", session_param(5, 1, true)),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);

    let error = meta_error(send(replace.clone(), batch(json!([DANA]), 2, false)).await).await;
    assert_eq!(
        (error["code"].clone(), error["error_subcode"].clone()),
        (json!(2650), json!(1870147))
    );

    assert_eq!(
        send(replace.clone(), batch(json!([DANA]), 1, false))
            .await
            .status(),
        200
    );
    assert_eq!(
        meta.audience("333"),
        set(&[MARY]),
        "nothing changes before the last batch"
    );
    let error = meta_error(send(users.clone(), batch(json!([DANA]), 1, false)).await).await;
    assert_eq!(error["error_subcode"], 1870145);
    let response = send(replace.clone(), batch(json!([PHONE_DIGITS]), 2, true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["num_received"], 2);
    assert_eq!(meta.audience("333"), set(&[DANA, PHONE_DIGITS]));

    let error = meta_error(send(replace, batch(json!([MARY]), 3, false)).await).await;
    assert_eq!(error["error_subcode"], 1870159);
}

#[tokio::test]
async fn meta_limits_and_faults() {
    let meta = FakeMeta::start(META_TOKEN, None).await;
    let client = client();
    meta.create_audience("444");
    let users = format!("{}/444/users?access_token={META_TOKEN}", meta.base_url);
    let add = |data: Value| {
        json!({"payload": {"schema": "EMAIL_SHA256", "data": data},
               "session": {"session_id": 1, "batch_seq": 1, "last_batch_flag": false}})
    };
    let send = |body: Value| {
        let (client, users) = (client.clone(), users.clone());
        async move { client.post(users).json(&body).send().await }
    };

    let too_many = add(Value::Array(vec![json!(""); 10_001]));
    let error = meta_error(send(too_many).await.expect("request")).await;
    assert_eq!(error["code"], 100);
    assert!(error["message"]
        .as_str()
        .is_some_and(|m| m.contains("10000")));

    meta.inject(Fault::MetaThrottle {
        code: 80003,
        regain_minutes: 5,
    });
    let response = send(add(json!([MARY]))).await.expect("request");
    assert_eq!(response.status(), 400);
    let usage: Value = serde_json::from_str(
        response.headers()["x-business-use-case-usage"]
            .to_str()
            .expect("ascii header"),
    )
    .expect("usage JSON");
    let entry = usage
        .as_object()
        .and_then(|o| o.values().next())
        .map(|v| v[0].clone())
        .expect("entry");
    assert_eq!(entry["estimated_time_to_regain_access"], 5);
    assert_eq!(entry["type"], "custom_audience");
    let error = body(response).await["error"].clone();
    assert_eq!(
        (error["code"].clone(), error["error_subcode"].clone()),
        (json!(80003), json!(2446079))
    );

    meta.inject(Fault::MetaError {
        code: 200,
        subcode: Some(1870047),
        transient: false,
    });
    let error = meta_error(send(add(json!([MARY]))).await.expect("request")).await;
    assert_eq!(
        (error["code"].clone(), error["error_subcode"].clone()),
        (json!(200), json!(1870047))
    );
    assert_eq!(error["is_transient"], false);

    meta.inject(Fault::Status(500));
    let response = send(add(json!([MARY]))).await.expect("request");
    assert_eq!(response.status(), 500);
    assert_eq!(body(response).await["error"]["is_transient"], true);

    meta.inject(Fault::ExpireToken);
    let error = meta_error(send(add(json!([MARY]))).await.expect("request")).await;
    assert_eq!(
        (error["code"].clone(), error["error_subcode"].clone()),
        (json!(190), json!(463))
    );

    meta.inject(Fault::Reset);
    assert!(send(add(json!([MARY]))).await.is_err());

    meta.inject(Fault::MalformedJson);
    let response = send(add(json!([MARY]))).await.expect("request");
    assert_eq!(response.status(), 200);
    assert!(response.json::<Value>().await.is_err());
    assert!(
        meta.audience("444").is_empty(),
        "faulted requests are not processed"
    );

    meta.inject(Fault::Delay(Duration::from_millis(150)));
    let started = Instant::now();
    assert_eq!(
        send(add(json!([MARY]))).await.expect("request").status(),
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(meta.audience("444"), set(&[MARY]));

    let recorded: Vec<(u16, usize)> = meta
        .requests()
        .iter()
        .map(|r| (r.status, r.members))
        .collect();
    assert_eq!(
        recorded,
        [
            (400, 10_001),
            (400, 1),
            (400, 1),
            (500, 1),
            (400, 1),
            (0, 1),
            (200, 1),
            (200, 1)
        ]
    );
}

/// A JSON value from a response header (the usage headers, §5.4).
fn header_json(response: &Response, name: &str) -> Value {
    let text = response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} on every answer"))
        .to_str()
        .expect("ascii header");
    serde_json::from_str(text).expect("JSON header")
}

/// The custom_audience entry of `x-business-use-case-usage`.
fn buc(response: &Response) -> Value {
    header_json(response, "x-business-use-case-usage")
        .as_object()
        .and_then(|o| o.values().next())
        .map(|v| v[0].clone())
        .expect("one business entry")
}

/// The audience's fields as a GET with the token in an `Authorization` header reads them.
async fn read(meta: &FakeMeta, id: &str, fields: &str) -> Response {
    client()
        .get(format!("{}/{id}?fields={fields}", meta.base_url))
        .header("authorization", format!("Bearer {META_TOKEN}"))
        .send()
        .await
        .expect("request")
}

fn hashes(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{i:064x}")).collect()
}

/// One `/users` add of `data` (single key) as a JSON body, in session `id`.
async fn meta_add(meta: &FakeMeta, audience: &str, data: Value, id: i64) -> Response {
    client()
        .post(format!(
            "{}/{audience}/users?access_token={META_TOKEN}",
            meta.base_url
        ))
        .json(&json!({"payload": {"schema": "EMAIL_SHA256", "data": data},
                      "session": {"session_id": id, "batch_seq": 1, "last_batch_flag": true}}))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn meta_users_requires_a_session() {
    let meta = FakeMeta::start(META_TOKEN, None).await;
    meta.create_audience("555");
    let response = client()
        .post(format!(
            "{}/555/users?access_token={META_TOKEN}",
            meta.base_url
        ))
        .json(&json!({"payload": {"schema": "EMAIL_SHA256", "data": [MARY]}}))
        .send()
        .await
        .expect("request");
    let error = meta_error(response).await;
    assert_eq!(error["code"], 194);
    assert!(error["message"]
        .as_str()
        .is_some_and(|m| m.contains("session")));
    assert!(meta.audience("555").is_empty(), "nothing stored");
    assert_eq!(meta_add(&meta, "555", json!([MARY]), 1).await.status(), 200);
    assert_eq!(meta.audience("555"), set(&[MARY]));
}

#[tokio::test]
async fn meta_hourly_budget_counts_every_call_and_throttles_past_it() {
    // The default: 5,000 + 40 × audiences; with one audience 50 calls are 0 % (5000/5040)
    // and the 51st makes 1 %.
    let meta = FakeMeta::start(META_TOKEN, None).await;
    meta.create_audience("666");
    for _ in 0..49 {
        read(&meta, "666", "id").await;
    }
    assert_eq!(buc(&read(&meta, "666", "id").await)["call_count"], 0);
    assert_eq!(buc(&read(&meta, "666", "id").await)["call_count"], 1);

    let meta = FakeMeta::start(META_TOKEN, None).await;
    meta.create_audience("666");
    meta.set_hourly_budget(4);
    // Reads, writes and errors count alike; every answer carries the three headers.
    let r = read(&meta, "666", "operation_status").await;
    assert_eq!(r.status(), 200);
    assert_eq!(buc(&r)["call_count"], 25);
    assert_eq!(buc(&r)["type"], "custom_audience");
    assert_eq!(header_json(&r, "x-ad-account-usage")["acc_id_util_pct"], 25);
    assert_eq!(header_json(&r, "x-app-usage")["call_count"], 25);
    let r = meta_add(&meta, "666", json!([MARY]), 1).await;
    assert_eq!(
        (r.status().as_u16(), buc(&r)["call_count"].clone()),
        (200, json!(50))
    );
    let r = read(&meta, "999", "id").await;
    assert_eq!(
        (r.status().as_u16(), buc(&r)["call_count"].clone()),
        (400, json!(75))
    );
    meta.inject(Fault::Status(500));
    let r = read(&meta, "666", "id").await;
    assert_eq!(r.status(), 500);
    assert_eq!(buc(&r)["call_count"], 100);
    assert_eq!(buc(&r)["estimated_time_to_regain_access"], 0);
    // Past 100 %: 80003/2446079 with the wait in minutes, and nothing processed.
    let r = meta_add(&meta, "666", json!([DANA]), 2).await;
    let usage = buc(&r);
    assert_eq!(usage["call_count"], 100);
    let minutes = usage["estimated_time_to_regain_access"]
        .as_u64()
        .expect("minutes");
    assert!((59..=60).contains(&minutes), "{minutes}");
    assert!(header_json(&r, "x-ad-account-usage")["reset_time_duration"]
        .as_u64()
        .is_some_and(|s| s > 3500));
    let error = meta_error(r).await;
    assert_eq!(
        (error["code"].clone(), error["error_subcode"].clone()),
        (json!(80003), json!(2446079))
    );
    assert_eq!(meta.audience("666"), set(&[MARY]));
    assert_eq!(read(&meta, "666", "id").await.status(), 400, "reads too");
    meta.set_hourly_budget(100);
    assert_eq!(read(&meta, "666", "id").await.status(), 200);
}

#[tokio::test]
async fn meta_invalid_entries_fault_refuses_the_last_rows() {
    let meta = FakeMeta::start(META_TOKEN, None).await;
    meta.create_audience("777");
    let rows = hashes(0..3);
    meta.inject(Fault::MetaInvalidEntries { count: 2 });
    let r = meta_add(&meta, "777", json!(rows), 1).await;
    assert_eq!(r.status(), 200);
    let ok = body(r).await;
    assert_eq!(ok["num_received"], 3);
    assert_eq!(ok["num_invalid_entries"], 2);
    let samples = ok["invalid_entry_samples"].as_object().expect("a map");
    let named: BTreeSet<String> = samples.keys().cloned().collect();
    assert_eq!(named, set(&[&rows[1], &rows[2]]));
    assert!(samples.values().all(Value::is_string), "reasons");
    assert_eq!(meta.audience("777"), set(&[&rows[0]]));
    // A replace batch takes the fault too.
    meta.inject(Fault::MetaInvalidEntries { count: 1 });
    let r = client()
        .post(format!(
            "{}/777/usersreplace?access_token={META_TOKEN}",
            meta.base_url
        ))
        .json(
            &json!({"payload": {"schema": "EMAIL_SHA256", "data": [MARY, DANA]},
                      "session": {"session_id": 2, "batch_seq": 1, "last_batch_flag": true}}),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(body(r).await["num_invalid_entries"], 1);
    assert_eq!(meta.audience("777"), set(&[MARY]));
}

#[tokio::test]
async fn meta_takes_ten_thousand_rows_and_a_byte_limit_answers_413() {
    let meta = FakeMeta::start(META_TOKEN, None).await;
    meta.create_audience("888");
    let r = meta_add(&meta, "888", json!(hashes(0..10_000)), 1).await;
    assert_eq!(r.status(), 200, "no byte limit by default");
    assert_eq!(meta.audience("888").len(), 10_000);
    meta.set_max_body_bytes(Some(65_536));
    let r = meta_add(&meta, "888", json!(hashes(10_000..11_000)), 2).await;
    assert_eq!(r.status(), 413);
    assert!(r.text().await.expect("body").contains("Too Large"));
    assert_eq!(meta.audience("888").len(), 10_000, "not processed");
    let r = meta_add(&meta, "888", json!(hashes(10_000..10_500)), 3).await;
    assert_eq!(r.status(), 200, "under the limit");
    meta.set_max_body_bytes(None);
    assert_eq!(
        meta_add(&meta, "888", json!(hashes(11_000..12_000)), 4)
            .await
            .status(),
        200
    );
    assert_eq!(meta.audience("888").len(), 11_500);
}

#[tokio::test]
async fn meta_replace_reports_progress_failure_and_its_window() {
    let meta = FakeMeta::start(META_TOKEN, None).await;
    meta.create_audience("999");
    assert_eq!(meta_add(&meta, "999", json!([MARY]), 1).await.status(), 200);
    let status = |meta: &FakeMeta| {
        let meta_url = meta.base_url.clone();
        async move {
            let r = client()
                .get(format!("{meta_url}/999?fields=operation_status"))
                .header("authorization", format!("OAuth {META_TOKEN}"))
                .send()
                .await
                .expect("request");
            body(r).await["operation_status"]["code"].clone()
        }
    };
    let replace = |data: Value, id: i64, seq: i64, last: bool| {
        let url = format!(
            "{}/999/usersreplace?access_token={META_TOKEN}",
            meta.base_url
        );
        async move {
            client()
                .post(url)
                .json(&json!({"payload": {"schema": "EMAIL_SHA256", "data": data},
                              "session": {"session_id": id, "batch_seq": seq, "last_batch_flag": last}}))
                .send()
                .await
                .expect("request")
        }
    };
    assert_eq!(status(&meta).await, 200);
    assert_eq!(replace(json!([DANA]), 10, 1, false).await.status(), 200);
    assert_eq!(status(&meta).await, 414, "replace in progress");
    assert_eq!(
        replace(json!([PHONE_DIGITS]), 10, 2, true).await.status(),
        200
    );
    assert_eq!(status(&meta).await, 200);
    assert_eq!(meta.audience("999"), set(&[DANA, PHONE_DIGITS]));

    // A failed replace: 415, the audience keeps its rows.
    meta.fail_next_replace();
    assert_eq!(replace(json!([MARY]), 11, 1, true).await.status(), 200);
    assert_eq!(status(&meta).await, 415);
    assert_eq!(meta.operation_status("999"), Some(415));
    assert_eq!(meta.audience("999"), set(&[DANA, PHONE_DIGITS]));
    assert_eq!(replace(json!([MARY]), 12, 1, true).await.status(), 200);
    assert_eq!(status(&meta).await, 200, "the next replace succeeds");
    assert_eq!(meta.audience("999"), set(&[MARY]));

    // The window: a batch after it gets 1870158 and the audience is what arrived in time.
    meta.set_replace_window(Duration::from_millis(200));
    assert_eq!(replace(json!([DANA]), 13, 1, false).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let error = meta_error(replace(json!([PHONE_DIGITS]), 13, 2, true).await).await;
    assert_eq!(
        (error["code"].clone(), error["error_subcode"].clone()),
        (json!(2650), json!(1870158))
    );
    assert_eq!(meta.audience("999"), set(&[DANA]));
    assert_eq!(status(&meta).await, 200);
    // A session left open closes by itself when its window passes.
    assert_eq!(replace(json!([MARY]), 14, 1, false).await.status(), 200);
    assert_eq!(status(&meta).await, 414);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(&meta).await, 200);
    assert_eq!(meta.audience("999"), set(&[MARY]));
    let error = meta_error(replace(json!([DANA]), 14, 2, true).await).await;
    assert_eq!(error["error_subcode"], 1870158);
}

#[tokio::test]
async fn meta_audience_reads_and_the_integrity_flag() {
    let meta = FakeMeta::start(META_TOKEN, Some(APP_SECRET)).await;
    meta.create_audience("121");
    let url = |fields: &str| {
        format!(
            "{}/121?fields={fields}&appsecret_proof={}",
            meta.base_url,
            proof()
        )
    };
    let get = |url: String| async move {
        client()
            .get(url)
            .header("authorization", format!("Bearer {META_TOKEN}"))
            .send()
            .await
            .expect("request")
    };
    let fields = "approximate_count_lower_bound,approximate_count_upper_bound,operation_status,delivery_status";
    let small = body(get(url(fields)).await).await;
    assert_eq!(small["id"], "121");
    assert_eq!(
        (
            small["approximate_count_lower_bound"].clone(),
            small["approximate_count_upper_bound"].clone()
        ),
        (json!(0), json!(0))
    );
    assert_eq!(small["operation_status"]["code"], 200);
    assert_eq!(small["operation_status"]["description"], "Normal");
    assert_eq!(small["delivery_status"]["code"], 300, "too small");
    let response = client()
        .post(format!("{}/121/users", meta.base_url))
        .form(&[
            (
                "payload",
                json!({"schema": "EMAIL_SHA256", "data": hashes(0..150)}).to_string(),
            ),
            ("session", session_param(1, 1, true)),
            ("access_token", META_TOKEN.into()),
            ("appsecret_proof", proof()),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "the token in the form body");
    let read = body(get(url(fields)).await).await;
    assert_eq!(
        (
            read["approximate_count_lower_bound"].clone(),
            read["approximate_count_upper_bound"].clone()
        ),
        (json!(147), json!(153))
    );
    assert_eq!(read["delivery_status"]["code"], 200);
    let only_id = body(get(url("id")).await).await;
    assert_eq!(only_id, json!({"id": "121"}));
    assert_eq!(
        meta_error(get(url("no_such_field")).await).await["code"],
        100
    );
    let no_proof = client()
        .get(format!("{}/121?fields=id", meta.base_url))
        .header("authorization", format!("Bearer {META_TOKEN}"))
        .send()
        .await
        .expect("request");
    assert_eq!(meta_error(no_proof).await["code"], 100);

    meta.flag_for_integrity("121");
    assert_eq!(
        body(get(url(fields)).await).await["operation_status"]["code"],
        471
    );
    let upload = |path: &str| {
        client()
            .post(format!("{}/121/{path}", meta.base_url))
            .form(&[
                (
                    "payload",
                    json!({"schema": "EMAIL_SHA256", "data": [MARY]}).to_string(),
                ),
                ("session", session_param(2, 1, true)),
                ("access_token", META_TOKEN.into()),
                ("appsecret_proof", proof()),
            ])
            .send()
    };
    for path in ["users", "usersreplace"] {
        let error = meta_error(upload(path).await.expect("request")).await;
        assert_eq!(
            (error["code"].clone(), error["error_subcode"].clone()),
            (json!(100), json!(1713230)),
            "{path}"
        );
        assert_eq!(error["error_user_title"], "Audience Upload Blocked");
    }
    assert_eq!(meta.audience("121").len(), 150);
}

#[tokio::test]
async fn meta_malformed_token_is_echoed_like_the_graph_api() {
    let meta = FakeMeta::start(META_TOKEN, None).await;
    meta.create_audience("131");
    meta.inject(Fault::MetaMalformedToken);
    let error = meta_error(meta_add(&meta, "131", json!([MARY]), 1).await).await;
    assert_eq!(error["code"], 190);
    assert_eq!(
        error["message"],
        format!("Malformed access token {META_TOKEN}")
    );
    assert!(meta.audience("131").is_empty(), "not processed");
}
