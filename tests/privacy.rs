//! No raw email, phone or name byte reaches the sled directory or the logs.

mod common;

use common::*;

use audiencesync::proto::v1;

/// Every spelling of the raw values a careless implementation might write.
const RAW: &[&str] = &[
    "Mary.Secret@Example.com",
    "mary.secret@example.com",
    "marysecret",
    "2125550134",
    "12125550134",
    "+12125550134",
    "(212) 555-0134",
    "Zebulon",
    "zebulon",
    "Quixotic-Farnsworth",
    "quixoticfarnsworth",
];

fn scan(dir: &std::path::Path, hits: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            scan(&path, hits);
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        let lower = bytes.to_ascii_lowercase();
        for raw in RAW {
            let needle = raw.to_ascii_lowercase();
            if lower.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push(format!("{} contains {raw:?}", path.display()));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_raw_identifier_on_disk_or_in_logs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let now = now_secs();
    let d = Daemon::start(tmp.path(), "checkpoint_interval = \"100ms\"\n");
    let mut events = Vec::new();
    for i in 0..50 {
        let id = format!("c{i}");
        events.push(ev(
            &format!("u{i}"),
            now - 100 * DAY + i,
            v1::event::Kind::CustomerUpserted(v1::CustomerUpserted {
                customer_id: id.clone(),
                email: Some(if i == 0 {
                    "Mary.Secret@Example.com".into()
                } else {
                    format!("person{i}@example.com")
                }),
                phone: Some("(212) 555-0134".into()),
                first_name: Some("Zebulon".into()),
                last_name: Some("Quixotic-Farnsworth".into()),
                country: Some("US".into()),
                postal_code: Some("10001".into()),
                registered_at: ts(now - 200 * DAY),
                ad_user_data: Some(v1::ConsentStatus::Granted as i32),
                ad_personalization: Some(v1::ConsentStatus::Granted as i32),
            }),
        ));
        events.push(ev(
            &format!("o{i}"),
            now - 50 * DAY,
            order(&format!("o{i}"), &id, 1_000, "USD"),
        ));
    }
    // An identifier that cannot be read (its value mixes a phone and a name) is dropped from
    // its event, and must not leak through the ack or the logs either.
    events.push(ev(
        "bad",
        now,
        customer(
            "c0",
            "Mary.Secret@Example.com",
            "+1 212 555 0134 zebulon",
            true,
        ),
    ));
    let acks = stream(&d, vec![events]).await;
    assert_eq!(acks[0].applied, 101);
    assert!(acks[0].rejected.is_empty());
    let warnings: Vec<(&str, &str)> = acks[0]
        .warnings
        .iter()
        .map(|w| (w.field.as_str(), w.code.as_str()))
        .collect();
    assert_eq!(
        warnings,
        vec![("customer_upserted.phone", "phone_not_valid")]
    );
    let ack_text = format!("{:?}", acks[0]).to_ascii_lowercase();
    assert!(!ack_text.contains("zebulon") && !ack_text.contains("555 0134"));
    let facts = facts_of(&d, &["c0".to_string()]).await;
    assert!(facts[0].has_email && facts[0].has_phone && facts[0].has_first_name);
    // Let a checkpoint run, then stop cleanly (final checkpoint), then kill a second run.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log1 = d.log.clone();
    assert!(d.stop().success());
    let d = Daemon::start(tmp.path(), "");
    let log2 = d.log.clone();
    d.kill9();

    // Positive control: the scanner finds a planted raw value.
    let control = tmp.path().join("control");
    std::fs::create_dir_all(&control).expect("control dir");
    std::fs::write(control.join("x"), b"..MARY.SECRET@EXAMPLE.COM..").expect("write");
    let mut found = Vec::new();
    scan(&control, &mut found);
    assert!(!found.is_empty(), "scanner must detect a planted value");

    let mut hits = Vec::new();
    scan(&tmp.path().join("data"), &mut hits);
    for log in [log1, log2] {
        let text = std::fs::read_to_string(&log)
            .expect("log")
            .to_ascii_lowercase();
        assert!(!text.is_empty());
        for raw in RAW {
            if text.contains(&raw.to_ascii_lowercase()) {
                hits.push(format!("{} contains {raw:?}", log.display()));
            }
        }
    }
    assert!(hits.is_empty(), "raw identifiers found: {hits:#?}");
}
