//! The eight-buyer shop the sync tests push (`c0..c2` are the consenting VIPs), and a daemon
//! config pushing `vip` to both fakes.
// Each test crate uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use audiencesync::proto::v1;
use audiencesync::sync::member::RemoteMember;

use crate::common::workload::{member, person};
use crate::common::*;
use crate::fakes::{self, FakeGoogle, FakeMeta};

pub const META_TOKEN: &str = "meta-system-user-token";
pub const META_SECRET: &str = "meta-app-secret";

pub struct Shop {
    /// (customer id, email, phone, granted, revenue cents)
    pub customers: Vec<(String, String, String, bool, i64)>,
}

impl Shop {
    /// Eight buyers: the top quarter by revenue (ties included) is c0..c3; c3 has no consent.
    pub fn vip_shape() -> Self {
        let revenues = [10_000, 5_000, 5_000, 5_000, 1_000, 1_000, 500, 100];
        Self {
            customers: revenues
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    (
                        format!("c{i}"),
                        format!("person.{i}@example.com"),
                        format!("+1212555{:04}", 100 + i),
                        i != 3,
                        *r,
                    )
                })
                .collect(),
        }
    }

    /// `n` consenting buyers with distinct revenues, c0 the highest: the VIPs are c0..c(n/4).
    pub fn ranked(n: usize) -> Self {
        Self {
            customers: (0..n)
                .map(|i| {
                    (
                        format!("c{i}"),
                        format!("person.{i}@example.com"),
                        format!("+1212555{:04}", 100 + i),
                        true,
                        100_000 - 1_000 * i as i64,
                    )
                })
                .collect(),
        }
    }

    pub fn events(&self, now: i64) -> Vec<v1::Event> {
        let mut out = Vec::new();
        for (id, email, phone, granted, revenue) in &self.customers {
            out.push(ev(
                &format!("u-{id}"),
                now - 30 * DAY,
                person(id, email, phone, *granted),
            ));
            out.push(ev(
                &format!("o-{id}"),
                now - 10 * DAY,
                order(&format!("o-{id}"), id, *revenue, "USD"),
            ));
        }
        out
    }

    /// Customer `i` granting or withdrawing consent at `at` (one event id per direction).
    pub fn consent(&self, i: usize, granted: bool, at: i64) -> v1::Event {
        let (id, email, phone, _, _) = &self.customers[i];
        ev(
            &format!("u-{id}-{granted}"),
            at,
            person(id, email, phone, granted),
        )
    }

    pub fn expected(&self, ids: &[&str], form: fn(&RemoteMember) -> String) -> BTreeSet<String> {
        self.customers
            .iter()
            .filter(|c| ids.contains(&c.0.as_str()))
            .map(|c| form(&member(&c.0, &c.1, &c.2)))
            .collect()
    }
}

/// Config for a daemon pushing `vip` to both fakes, Meta with an app secret.
pub fn config(
    dir: &Path,
    g: &FakeGoogle,
    m: &FakeMeta,
    extra_google: &str,
    extra_meta: &str,
) -> String {
    std::fs::write(dir.join("meta-secret"), META_SECRET).expect("meta secret");
    fakes::destinations_toml(
        dir,
        g,
        m,
        &format!(
            r#"linger = "100ms"
status_poll_interval = "200ms"
status_first_poll = "200ms"
lists = [{{ audience = "vip", list_id = "111" }}]
{extra_google}"#
        ),
        &format!(
            r#"app_secret_file = "{ms}"
linger = "100ms"
lists = [{{ audience = "vip", list_id = "222" }}]
{extra_meta}"#,
            ms = dir.join("meta-secret").display(),
        ),
    )
}

pub async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn fakes() -> (FakeGoogle, FakeMeta) {
    let g = FakeGoogle::start().await;
    let m = FakeMeta::start(META_TOKEN, Some(META_SECRET)).await;
    m.create_audience("222");
    m.create_audience("223");
    (g, m)
}

/// A daemon on [`config`] with the eight-buyer shop streamed in and both remote lists holding
/// the three consenting VIPs; returns the daemon, the shop and the lists' expected forms.
pub async fn vips_synced(
    dir: &Path,
    g: &FakeGoogle,
    m: &FakeMeta,
) -> (Daemon, Shop, BTreeSet<String>, BTreeSet<String>) {
    let shop = Shop::vip_shape();
    let d = Daemon::start(dir, &config(dir, g, m, "", ""));
    stream(&d, vec![shop.events(now_secs())]).await;
    let want_g = shop.expected(&["c0", "c1", "c2"], crate::common::workload::google_form);
    let want_m = shop.expected(&["c0", "c1", "c2"], crate::common::workload::meta_form);
    wait_until("google", 30, || g.list("111") == want_g).await;
    wait_until("meta", 30, || m.audience("222") == want_m).await;
    (d, shop, want_g, want_m)
}
