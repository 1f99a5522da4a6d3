//! The Grafana dashboard and the Prometheus alert rules in `ops/` cannot rot: every metric they
//! name exists in the daemon's catalogue (`src/metric_names.rs`), the dashboard
//! shows every metric the daemon exports, its panels are well formed, and `promtool` accepts
//! the rules, their unit tests (`ops/prometheus/alerts_test.yml`) and every dashboard query.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `audiencesync_…` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("audiencesync_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// The names the daemon exports: the string constants of `metric_names`.
fn catalogue() -> BTreeSet<String> {
    let names: BTreeSet<String> = read("src/metric_names.rs")
        .lines()
        .filter(|l| l.trim_start().starts_with("pub const"))
        .flat_map(metric_names)
        .collect();
    assert!(names.len() >= 20, "{names:?}");
    names
}

/// A referenced name is known if it, or the histogram it is a series of, is in the catalogue.
fn known(name: &str, catalogue: &BTreeSet<String>) -> bool {
    catalogue.contains(name)
        || ["_bucket", "_sum", "_count"]
            .iter()
            .any(|s| name.strip_suffix(s).is_some_and(|b| catalogue.contains(b)))
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read("ops/grafana/audiencesync-dashboard.json")).expect("dashboard JSON")
}

/// Every panel, rows' collapsed children included.
fn panels(dash: &serde_json::Value) -> Vec<serde_json::Value> {
    fn walk(list: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p.clone());
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

fn queries(dash: &serde_json::Value) -> Vec<String> {
    panels(dash)
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn every_metric_the_dashboard_and_alerts_name_exists() {
    let catalogue = catalogue();
    for file in [
        "ops/grafana/audiencesync-dashboard.json",
        "ops/prometheus/alerts.yml",
        "ops/prometheus/alerts_test.yml",
    ] {
        let unknown: Vec<String> = metric_names(&read(file))
            .into_iter()
            .filter(|n| !known(n, &catalogue))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics the daemon does not export: {unknown:?}"
        );
    }
}

#[test]
fn the_dashboard_shows_every_metric_the_daemon_exports() {
    let used: BTreeSet<String> = queries(&dashboard())
        .iter()
        .flat_map(|q| metric_names(q))
        .collect();
    let missing: Vec<String> = catalogue()
        .into_iter()
        .filter(|n| {
            let this = BTreeSet::from([n.clone()]);
            !used.iter().any(|u| known(u, &this))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "metrics without a panel in ops/grafana/audiencesync-dashboard.json: {missing:?}"
    );
}

#[test]
fn the_dashboard_is_well_formed() {
    let dash = dashboard();
    assert_eq!(dash["uid"], "audiencesync");
    let vars: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(vars, ["datasource", "instance", "destination", "audience"]);
    let mut ids = BTreeSet::new();
    for p in panels(&dash) {
        let title = p["title"].as_str().unwrap_or_default().to_string();
        assert!(!title.is_empty(), "untitled panel {p}");
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "duplicate id: {title}"
        );
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().expect("x"), g["w"].as_u64().expect("w"));
        assert!(x + w <= 24 && w > 0, "{title}: outside the 24-column grid");
        match p["type"].as_str().expect("type") {
            "row" | "text" => {}
            _ => {
                assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
                let targets = p["targets"].as_array().expect("targets");
                assert!(!targets.is_empty(), "{title}: no query");
                for t in targets {
                    let expr = t["expr"].as_str().unwrap_or_default();
                    assert!(expr.contains("audiencesync_"), "{title}: {expr}");
                    // Every query follows the instance picker.
                    assert!(expr.contains("instance=~\"$instance\""), "{title}: {expr}");
                }
            }
        }
    }
}

/// `promtool`, or `None` outside CI when it is not installed (`.ci/run` installs Debian's
/// `prometheus` for it).
fn promtool() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but promtool is not installed (apt-get install prometheus)"
        );
        eprintln!("promtool not found: skipping (CI=true makes this fail)");
    }
    found
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run promtool");
    assert!(
        out.status.success(),
        "{cmd:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules_their_tests_and_every_dashboard_query() {
    let Some(promtool) = promtool() else { return };
    run(Command::new(&promtool)
        .args(["check", "rules"])
        .arg(repo("ops/prometheus/alerts.yml")));
    run(Command::new(&promtool)
        .args(["test", "rules", "alerts_test.yml"])
        .current_dir(repo("ops/prometheus")));
    // Each dashboard query as a recording rule, with Grafana's variables filled in.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries(&dashboard()).iter().enumerate() {
        let q = q
            .replace("$__rate_interval", "5m")
            .replace("\"$instance\"", "\".*\"")
            .replace("\"$destination\"", "\".*\"")
            .replace("\"$audience\"", "\".*\"");
        assert!(!q.contains('$'), "an unknown Grafana variable in {q}");
        rules.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {}\n",
            serde_json::to_string(&q).expect("quote")
        ));
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("dashboard_rules.yml");
    std::fs::write(&file, rules).expect("write rules");
    run(Command::new(&promtool).args(["check", "rules"]).arg(&file));
}
