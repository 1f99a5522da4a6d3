//! Operator commands against a running daemon (`status`, `resync`, `report`). Output is a
//! readable table, or JSON for scripts. The offline `destinations check` is
//! `service::check_destinations`, since it builds the sync workers.

use std::path::PathBuf;

use tonic::transport::Channel;

use crate::client::{normalize_addr, Auth, Target};
use crate::proto::v1::{
    self, admin_service_client::AdminServiceClient, insight_service_client::InsightServiceClient,
};

/// A command that failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Could not reach the daemon.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Address tried.
        addr: String,
        /// Why.
        source: tonic::transport::Error,
    },
    /// The daemon refused.
    #[error("{}: {}", .0.code(), .0.message())]
    Rpc(#[from] tonic::Status),
    /// Token file problems.
    #[error("token file {0}: {1}")]
    Token(PathBuf, String),
}

type Client = AdminServiceClient<tonic::service::interceptor::InterceptedService<Channel, Auth>>;
type Insights =
    InsightServiceClient<tonic::service::interceptor::InterceptedService<Channel, Auth>>;

async fn channel(t: &Target) -> Result<(Channel, Auth), CliError> {
    let auth = Auth::from_file(t.token_file.as_deref())
        .map_err(|e| CliError::Token(t.token_file.clone().unwrap_or_default(), e))?;
    let addr = normalize_addr(&t.addr);
    let channel = Channel::from_shared(addr.clone())
        .map_err(|_| CliError::Token(PathBuf::new(), format!("invalid address {addr}")))?
        .connect()
        .await
        .map_err(|source| CliError::Connect { addr, source })?;
    Ok((channel, auth))
}

async fn connect(t: &Target) -> Result<Client, CliError> {
    let (channel, auth) = channel(t).await?;
    Ok(AdminServiceClient::with_interceptor(channel, auth))
}

fn when(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| {
            std::time::UNIX_EPOCH.checked_add(std::time::Duration::new(
                u64::try_from(t.seconds).ok()?,
                u32::try_from(t.nanos).ok()?,
            ))
        })
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| "-".into())
}

/// `audiencesync status`: sync state per destination × audience.
pub async fn status(t: &Target, json: bool) -> Result<(), CliError> {
    let states = connect(t)
        .await?
        .get_sync_status(v1::GetSyncStatusRequest::default())
        .await?
        .into_inner()
        .states;
    if json {
        let rows: Vec<serde_json::Value> = states.iter().map(state_json).collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    println!(
        "{:<12} {:<18} {:>9} {:>9} {:>9} {:>7} {:>7}  {:<20}  STATE",
        "DESTINATION",
        "AUDIENCE",
        "DESIRED",
        "CONFIRMED",
        "IN FLIGHT",
        "+ADD",
        "-REMOVE",
        "LAST SUCCESS"
    );
    for s in &states {
        let state = if s.parked {
            format!("PARKED: {} (fix: {})", s.last_error, s.advice)
        } else if s.paused_daily {
            format!(
                "paused until {} (per-day quota spent)",
                when(&s.throttled_until)
            )
        } else if s.throttled_until.is_some() {
            format!("throttled until {}", when(&s.throttled_until))
        } else if !s.last_error.is_empty() {
            format!("retrying: {}", s.last_error)
        } else if s.in_sync {
            "in sync".into()
        } else if s.in_flight > 0 {
            "awaiting the network's outcome".into()
        } else {
            "not in sync yet".into()
        };
        println!(
            "{:<12} {:<18} {:>9} {:>9} {:>9} {:>7} {:>7}  {:<20}  {}",
            s.destination,
            s.audience,
            s.desired_size,
            s.confirmed_size,
            s.in_flight,
            s.pending_adds,
            s.pending_removes,
            when(&s.last_success_at),
            state
        );
        for line in detail_lines(s) {
            println!("    {line}");
        }
    }
    Ok(())
}

/// What the network reported and the resync job, under a list's row.
fn detail_lines(s: &v1::SyncState) -> Vec<String> {
    let mut out = Vec::new();
    if s.set_aside > 0 {
        out.push(format!(
            "{} members refused by name, set aside until their identifiers change",
            s.set_aside
        ));
    }
    for r in &s.refused {
        out.push(format!("{} refused by the network: {}", r.count, r.reason));
    }
    let mut net = Vec::new();
    if let Some(r) = &s.remote {
        match (r.size_lower, r.size_upper) {
            (Some(l), Some(u)) if l != u => net.push(format!("size {l}-{u}")),
            (_, Some(u)) => net.push(format!("size {u}")),
            _ => {}
        }
        if !r.match_rate.is_empty() {
            net.push(format!("match rate {}", r.match_rate));
        }
        if !r.operation_status.is_empty() {
            net.push(r.operation_status.clone());
        }
    }
    if !s.match_rate.is_empty() {
        net.push(format!("upload match rate {}", s.match_rate));
    }
    if !net.is_empty() {
        out.push(format!("network reports: {}", net.join(", ")));
    }
    if let Some(j) = &s.job {
        let progress = if j.kind == "full" && j.total > 0 {
            format!(" {}/{}", j.sent, j.total)
        } else {
            String::new()
        };
        let detail = if j.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", j.detail)
        };
        out.push(format!(
            "{} ({}) {}{progress}{detail}",
            j.job_id, j.kind, j.state
        ));
    }
    out
}

/// One list's status as `status --json` prints it.
fn state_json(s: &v1::SyncState) -> serde_json::Value {
    let refused: serde_json::Map<String, serde_json::Value> = s
        .refused
        .iter()
        .map(|r| (r.reason.clone(), r.count.into()))
        .collect();
    let remote = s.remote.as_ref().map(|r| {
        serde_json::json!({
            "size_lower": r.size_lower, "size_upper": r.size_upper,
            "match_rate": r.match_rate, "operation_status": r.operation_status,
            "read_at": when(&r.read_at),
        })
    });
    let job = s.job.as_ref().map(|j| {
        serde_json::json!({
            "id": j.job_id, "kind": j.kind, "state": j.state, "sent": j.sent, "total": j.total,
            "started_at": when(&j.started_at), "finished_at": when(&j.finished_at),
            "detail": j.detail,
        })
    });
    serde_json::json!({
        "destination": s.destination, "audience": s.audience,
        "desired": s.desired_size, "confirmed": s.confirmed_size,
        "pending_adds": s.pending_adds, "pending_removes": s.pending_removes,
        "in_flight": s.in_flight, "set_aside": s.set_aside,
        "accepted": s.accepted, "processed": s.processed, "refused": refused,
        "in_sync": s.in_sync, "paused_daily": s.paused_daily,
        "last_success_at": when(&s.last_success_at), "parked": s.parked,
        "list_id": s.list_id, "match_rate": s.match_rate,
        "throttled_until": when(&s.throttled_until),
        "last_error": s.last_error, "advice": s.advice,
        "remote": remote, "job": job,
    })
}

/// `audiencesync resync`: queue a delta or full resync.
pub async fn resync(
    t: &Target,
    destination: Option<String>,
    audience: Option<String>,
    full: bool,
) -> Result<(), CliError> {
    let mode = if full {
        v1::ResyncMode::Full
    } else {
        v1::ResyncMode::Delta
    };
    let r = connect(t)
        .await?
        .trigger_resync(v1::TriggerResyncRequest {
            destination: destination.unwrap_or_default(),
            audience: audience.unwrap_or_default(),
            mode: mode as i32,
        })
        .await?
        .into_inner();
    println!("{}", r.job_id);
    Ok(())
}

/// `audiencesync report`: outcomes per audience (pushed vs holdout, lift) and, without
/// `--audience`, the retention metrics.
pub async fn report(t: &Target, audience: Option<String>, json: bool) -> Result<(), CliError> {
    let (channel, auth) = channel(t).await?;
    let mut client: Insights = InsightServiceClient::with_interceptor(channel, auth);
    let lift = client
        .get_lift(v1::GetLiftRequest {
            audience: audience.clone().unwrap_or_default(),
        })
        .await?
        .into_inner();
    let retention = match audience {
        Some(_) => None,
        None => Some(
            client
                .get_retention(v1::GetRetentionRequest::default())
                .await?
                .into_inner(),
        ),
    };
    if json {
        let mut out = serde_json::Map::new();
        out.insert("lift".into(), proto_json(&lift, "LiftReport"));
        if let Some(r) = &retention {
            out.insert("retention".into(), proto_json(r, "RetentionReport"));
        }
        println!("{}", serde_json::Value::Object(out));
        return Ok(());
    }
    print!("{}", report_text::lift(&lift));
    if let Some(r) = &retention {
        println!();
        print!("{}", report_text::retention(r));
    }
    Ok(())
}

/// The canonical proto JSON of a message of ours.
fn proto_json<M: prost::Message>(m: &M, name: &str) -> serde_json::Value {
    crate::proto::to_json(m, name, &prost_reflect::SerializeOptions::new())
}

mod report_text;
