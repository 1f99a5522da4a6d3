//! A generic gRPC client that has no proto files (Python grpcio, standing in for grpcurl)
//! finds its way around the daemon through health checking and server reflection.
//!
//! In CI (`CI=true`) missing Python modules fail the test; locally it skips with a message.

mod common;

use std::process::Command;

use common::*;

fn python_ready() -> Result<(), String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import grpc, grpc_health.v1.health_pb2, grpc_reflection.v1alpha.proto_reflection_descriptor_database",
        ])
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn python_grpc_client_sees_health_and_reflection() {
    if let Err(why) = python_ready() {
        let msg = "python3 with grpcio, grpcio-reflection, grpcio-health-checking is needed \
                   (python3 -m pip install grpcio grpcio-reflection grpcio-health-checking)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}: {why}");
        }
        eprintln!("SKIPPED: {msg}: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(tmp.path(), "");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/generic_client.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(d.addr.to_string())
        .output()
        .expect("run python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    assert_eq!(v["health"], "SERVING");
    assert_eq!(v["ingest_health"], "SERVING");
    let services: Vec<&str> = v["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    for s in [
        "audiencesync.v1.IngestService",
        "audiencesync.v1.AudienceService",
        "audiencesync.v1.AdminService",
        "audiencesync.v1.InsightService",
        "grpc.health.v1.Health",
    ] {
        assert!(services.contains(&s), "{s} missing from {services:?}");
    }
    assert_eq!(v["ingest_file"], "audiencesync/v1/ingest.proto");
    let methods = v["ingest_methods"].to_string();
    assert!(
        methods.contains("StreamEvents") && methods.contains("IngestBatch"),
        "{methods}"
    );
    d.stop();
}
