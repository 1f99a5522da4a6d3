//! SIGHUP: a bad config is refused with a log line naming the key and the daemon keeps its
//! old rules; a good one is applied without a restart (audience rules, destinations).

mod common;

use std::time::{Duration, Instant};

use audiencesync::proto::v1;
use common::*;

fn hup(d: &Daemon) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "SIGHUP sent");
}

async fn wait_for_log(d: &Daemon, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.log_text().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "log never said {needle:?}:\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn vip(d: &Daemon) -> v1::Audience {
    d.audience()
        .await
        .get_audience(v1::GetAudienceRequest { name: "vip".into() })
        .await
        .expect("vip")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_refuses_a_bad_config_and_applies_a_good_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let exports = tmp.path().join("exports");
    let destinations = |lists: &str| {
        format!(
            "[[destinations]]\nname = \"csv\"\nkind = \"csv\"\ndir = \"{}\"\nlinger = \"100ms\"\nlists = [{lists}]\n",
            exports.display()
        )
    };
    let d = Daemon::start(tmp.path(), &destinations(r#"{ audience = "vip" }"#));
    let cfg_path = tmp.path().join("audiencesync.toml");
    let original = std::fs::read_to_string(&cfg_path).expect("config");
    let now = now_secs();
    let revenues = [10_000, 5_000, 5_000, 5_000, 1_000, 1_000, 500, 100];
    let events = revenues
        .iter()
        .enumerate()
        .map(|(i, r)| {
            ev(
                &format!("o{i}"),
                now - DAY,
                order(&format!("o{i}"), &format!("c{i}"), *r, "USD"),
            )
        })
        .collect();
    stream(&d, vec![events]).await;
    assert_eq!(vip(&d).await.size, 4, "top 25 % of 8 with ties at 50.00");

    // A bad value: refused whole, named, old rules kept, daemon still serving.
    std::fs::write(
        &cfg_path,
        format!("{original}\n[audiences]\nvip_fraction = \"lots\"\n"),
    )
    .expect("write");
    hup(&d);
    wait_for_log(&d, "config reload refused", 1).await;
    assert!(
        d.log_text().contains("audiences.vip_fraction"),
        "the key is named"
    );
    assert_eq!(vip(&d).await.size, 4);

    // A good one: VIPs are now the top 75 % (k = 6, T = 10.00), and lapsed_90 gains a CSV list.
    let good = original.replace(
        r#"lists = [{ audience = "vip" }]"#,
        r#"lists = [{ audience = "vip" }, { audience = "lapsed_90" }]"#,
    );
    std::fs::write(
        &cfg_path,
        format!("{good}\n[audiences]\nvip_fraction = \"0.75\"\n"),
    )
    .expect("write");
    hup(&d);
    wait_for_log(&d, "config reloaded", 1).await;
    let v = vip(&d).await;
    assert_eq!(v.size, 6, "{v:?}");
    assert!(v.definition.contains("75/100"), "{}", v.definition);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let states = d.sync_states().await;
        if states.iter().any(|s| s.audience == "lapsed_90") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new list mapping never appeared: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(d.stop().success());
}
