//! Operator commands against a running daemon (`status`, `resync`) and offline checks
//! (`destinations check`). Output is a readable table, or JSON for scripts.

use std::path::PathBuf;

use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::proto::v1::{self, admin_service_client::AdminServiceClient};

/// Where the daemon is and how to authenticate.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The daemon's gRPC address (`http://` is assumed when no scheme is given).
    #[arg(
        long,
        default_value = "http://127.0.0.1:50051",
        env = "AUDIENCESYNC_ADDR"
    )]
    pub addr: String,
    /// File holding a bearer token with the scope the command needs (admin for status and
    /// resync, ingest for import), when the daemon requires one.
    #[arg(long, env = "AUDIENCESYNC_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

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
    /// Config problems.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Destination setup problems.
    #[error(transparent)]
    Setup(#[from] crate::sync::SetupError),
    /// Some destination checks failed.
    #[error("{0} destination check(s) failed")]
    ChecksFailed(usize),
}

type Client = AdminServiceClient<tonic::service::interceptor::InterceptedService<Channel, Auth>>;

/// Adds the bearer token to every call (shared by every client command: status, resync,
/// import, feed).
#[derive(Clone)]
pub struct Auth(pub Option<MetadataValue<tonic::metadata::Ascii>>);

impl Auth {
    /// Reads `authorization: Bearer <token>` from a token file (none: no header). The error
    /// says what is wrong, never the token.
    pub fn from_file(path: Option<&std::path::Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self(None));
        };
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let token = text.trim();
        if token.is_empty() {
            return Err("the file is empty".into());
        }
        let mut value: MetadataValue<tonic::metadata::Ascii> = format!("Bearer {token}")
            .parse()
            .map_err(|_| "it contains characters not allowed in a header".to_string())?;
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }
}

/// A daemon address with `http://` added when no scheme is given.
pub fn normalize_addr(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

async fn connect(t: &Target) -> Result<Client, CliError> {
    let auth = Auth::from_file(t.token_file.as_deref())
        .map_err(|e| CliError::Token(t.token_file.clone().unwrap_or_default(), e))?;
    let addr = normalize_addr(&t.addr);
    let channel = Channel::from_shared(addr.clone())
        .map_err(|_| CliError::Token(PathBuf::new(), format!("invalid address {addr}")))?
        .connect()
        .await
        .map_err(|source| CliError::Connect { addr, source })?;
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
        let rows: Vec<serde_json::Value> = states
            .iter()
            .map(|s| {
                serde_json::json!({
                    "destination": s.destination, "audience": s.audience,
                    "desired": s.desired_size, "confirmed": s.confirmed_size,
                    "pending_adds": s.pending_adds, "pending_removes": s.pending_removes,
                    "last_success_at": when(&s.last_success_at), "parked": s.parked,
                    "list_id": s.list_id, "match_rate": s.match_rate,
                    "throttled_until": when(&s.throttled_until),
                    "last_error": s.last_error, "advice": s.advice,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    println!(
        "{:<12} {:<18} {:>9} {:>9} {:>7} {:>7}  {:<20}  STATE",
        "DESTINATION", "AUDIENCE", "DESIRED", "CONFIRMED", "+ADD", "-REMOVE", "LAST SUCCESS"
    );
    for s in &states {
        let state = if s.parked {
            format!("PARKED: {} (fix: {})", s.last_error, s.advice)
        } else if s.throttled_until.is_some() {
            format!("throttled until {}", when(&s.throttled_until))
        } else if !s.last_error.is_empty() {
            format!("retrying: {}", s.last_error)
        } else {
            "ok".into()
        };
        println!(
            "{:<12} {:<18} {:>9} {:>9} {:>7} {:>7}  {:<20}  {}",
            s.destination,
            s.audience,
            s.desired_size,
            s.confirmed_size,
            s.pending_adds,
            s.pending_removes,
            when(&s.last_success_at),
            state
        );
    }
    Ok(())
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

/// `audiencesync destinations check`: credentials and list ids of every destination, without
/// changing anything (Google `validateOnly`, Meta a read of the audience, CSV a write probe).
pub async fn check_destinations(config: &std::path::Path) -> Result<(), CliError> {
    let cfg = crate::config::Config::load(config)?;
    let tmp = std::env::temp_dir().join(format!("audiencesync-check-{}", std::process::id()));
    let store = crate::ledger::store::Store::open(&crate::config::StorageConfig {
        data_dir: tmp.clone(),
        fsync: false,
        ..Default::default()
    })
    .map_err(|source| crate::sync::SetupError::Store { index: 0, source })?;
    let feed = crate::sync::SyncFeed::new(cfg.destinations.len());
    let specs = crate::sync::build_workers(&cfg, &store, &feed)?;
    let mut failed = 0;
    for spec in &specs {
        for list in &spec.lists {
            match spec.dest.check(list).await {
                Ok(()) => println!(
                    "ok      {} / {} ({})",
                    spec.name, list.audience, list.list_id
                ),
                Err(e) => {
                    failed += 1;
                    println!(
                        "FAILED  {} / {} ({}): {e}",
                        spec.name, list.audience, list.list_id
                    );
                    match &e {
                        crate::sync::dest::PushError::Permanent { advice, .. } => {
                            println!("        fix: {advice}");
                        }
                        crate::sync::dest::PushError::TokenExpired => {
                            println!("        fix: the access token was refused: renew the credential file");
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    drop(specs);
    drop(store);
    let _ = std::fs::remove_dir_all(&tmp);
    if failed > 0 {
        return Err(CliError::ChecksFailed(failed));
    }
    Ok(())
}
