//! What the daemon's own clients share: where the daemon is ([`Target`]), the bearer token on
//! every call ([`Auth`]), and the windowed `StreamEvents` stream ([`stream`]) that `import` and
//! `feed` both send with. The operator commands (`cli`), `feed` and `import` build on it, so
//! none of them needs another.

pub mod stream;

use std::path::PathBuf;

use tonic::metadata::MetadataValue;

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
    /// resync, query or admin for report, ingest for import), when the daemon requires one.
    #[arg(long, env = "AUDIENCESYNC_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// Adds the bearer token to every call (shared by every client command: status, resync,
/// report, import, feed).
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
