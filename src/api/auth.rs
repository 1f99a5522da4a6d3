//! Bearer-token auth for the audiencesync services.
//!
//! Three scopes, each with its own token read from a credential file: `ingest` may call
//! `IngestService`, `query` may call `AudienceService` and `InsightService`, `admin` may call
//! `AdminService` and also the query services (operators need to look at what they
//! administer). Health and reflection are never guarded, so probes and generic clients work
//! without secrets.
//!
//! The check runs as a tonic interceptor, before any request message is decoded, so a refused
//! call never reaches a handler and changes nothing. Tokens are compared as SHA-256 digests in
//! constant time, and never logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::config::{credential_path, AuthConfig};

/// Shortest token accepted; anything shorter is guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `IngestService`.
    Ingest,
    /// `AudienceService`, `InsightService`.
    Query,
    /// `AdminService` (and, by design, the query services).
    Admin,
}

/// Why auth could not be set up; the daemon refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Auth is off but the listener is reachable from other hosts.
    #[error(
        "auth is disabled but server.listen = {0} is not a loopback address; enable [auth] or \
         set `auth.allow_unauthenticated_non_loopback = true` to accept that risk"
    )]
    UnauthenticatedNonLoopback(SocketAddr),
    /// A token file could not be read.
    #[error("`{key}`: cannot read token file {path}: {source}")]
    Read {
        /// Config key naming the file.
        key: &'static str,
        /// Where we looked (after `$CREDENTIALS_DIRECTORY` resolution).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A token file holds something unusable.
    #[error("`{key}`: {reason}")]
    Invalid {
        /// Config key naming the file.
        key: &'static str,
        /// What is wrong (never the token itself).
        reason: String,
    },
}

type TokenDigest = [u8; 32];

fn digest(token: &[u8]) -> TokenDigest {
    Sha256::digest(token).into()
}

type Tokens = Option<Arc<[(Scope, TokenDigest); 3]>>;

/// The three token digests, or none when auth is off. Clones share them, so a config reload
/// ([`Guard::replace_with`]) rotates the tokens of every running interceptor at once.
#[derive(Clone)]
pub struct Guard {
    tokens: Arc<parking_lot::RwLock<Tokens>>,
}

impl Guard {
    /// Reads the token files named in `[auth]`, or checks that running open is acceptable
    /// for `listen`.
    pub fn from_config(cfg: &AuthConfig, listen: SocketAddr) -> Result<Self, AuthError> {
        if !cfg.enabled {
            if !listen.ip().is_loopback() && !cfg.allow_unauthenticated_non_loopback {
                return Err(AuthError::UnauthenticatedNonLoopback(listen));
            }
            return Ok(Self::open());
        }
        let ingest = read_token("auth.ingest_token_file", cfg.ingest_token_file.as_deref())?;
        let query = read_token("auth.query_token_file", cfg.query_token_file.as_deref())?;
        let admin = read_token("auth.admin_token_file", cfg.admin_token_file.as_deref())?;
        let tokens = [
            (Scope::Ingest, ingest, "auth.ingest_token_file"),
            (Scope::Query, query, "auth.query_token_file"),
            (Scope::Admin, admin, "auth.admin_token_file"),
        ];
        for (i, a) in tokens.iter().enumerate() {
            for b in &tokens[i + 1..] {
                if a.1 == b.1 {
                    return Err(AuthError::Invalid {
                        key: b.2,
                        reason: format!(
                            "holds the same token as `{}`; each scope needs its own",
                            a.2
                        ),
                    });
                }
            }
        }
        Ok(Self::with(Some(Arc::new(tokens.map(|(s, d, _)| (s, d))))))
    }

    fn with(tokens: Tokens) -> Self {
        Self {
            tokens: Arc::new(parking_lot::RwLock::new(tokens)),
        }
    }

    /// A guard that lets everything through (auth disabled).
    pub fn open() -> Self {
        Self::with(None)
    }

    /// Whether tokens are required.
    pub fn enabled(&self) -> bool {
        self.tokens.read().is_some()
    }

    /// Takes over `other`'s tokens (config reload: rotated or newly enabled tokens).
    pub fn replace_with(&self, other: &Guard) {
        let new = other.tokens.read().clone();
        *self.tokens.write() = new;
    }

    /// The interceptor for a service that needs `scope`.
    pub fn require(&self, scope: Scope) -> ScopeCheck {
        ScopeCheck {
            guard: self.clone(),
            scope,
        }
    }

    /// UNAUTHENTICATED without a known token, PERMISSION_DENIED for a known token of
    /// another scope. Public for the status page, which checks the same tokens over HTTP.
    pub fn check(&self, presented: Option<&[u8]>, needed: Scope) -> Result<(), Status> {
        let Some(tokens) = self.tokens.read().clone() else {
            return Ok(());
        };
        let Some(presented) = presented else {
            return Err(Status::unauthenticated(
                "missing `authorization: Bearer <token>` metadata",
            ));
        };
        let d = digest(presented);
        // Compare against every token, without early exit, so timing says nothing.
        let mut matched: Option<Scope> = None;
        for (scope, want) in tokens.iter() {
            if bool::from(d.ct_eq(want)) {
                matched = Some(*scope);
            }
        }
        match matched {
            None => Err(Status::unauthenticated("invalid token")),
            Some(s) if allows(s, needed) => Ok(()),
            Some(_) => Err(Status::permission_denied(
                "this token's scope does not cover this service",
            )),
        }
    }
}

/// Whether a token of scope `have` may call a service needing `need`.
fn allows(have: Scope, need: Scope) -> bool {
    have == need || (have == Scope::Admin && need == Scope::Query)
}

fn read_token(key: &'static str, file: Option<&Path>) -> Result<TokenDigest, AuthError> {
    let file = file.ok_or(AuthError::Invalid {
        key,
        reason: "required when auth.enabled = true".into(),
    })?;
    let path = credential_path(file);
    let raw = std::fs::read(&path).map_err(|source| AuthError::Read {
        key,
        path: path.clone(),
        source,
    })?;
    let token = raw.trim_ascii();
    if token.len() < MIN_TOKEN_LEN {
        return Err(AuthError::Invalid {
            key,
            reason: format!("the token must be at least {MIN_TOKEN_LEN} bytes"),
        });
    }
    if !token.iter().all(|b| b.is_ascii_graphic()) {
        return Err(AuthError::Invalid {
            key,
            reason: "the token must be printable ASCII without spaces".into(),
        });
    }
    Ok(digest(token))
}

/// The tonic interceptor checking one scope.
#[derive(Clone)]
pub struct ScopeCheck {
    guard: Guard,
    scope: Scope,
}

impl Interceptor for ScopeCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let presented = req
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes())
            .and_then(bearer);
        self.guard.check(presented, self.scope)?;
        Ok(req)
    }
}

/// The token of an `authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::with(Some(Arc::new([
            (Scope::Ingest, digest(b"ingest-token-0123456789")),
            (Scope::Query, digest(b"query-token-0123456789")),
            (Scope::Admin, digest(b"admin-token-0123456789")),
        ])))
    }

    #[test]
    fn scopes() {
        let g = guard();
        assert!(g
            .check(Some(b"ingest-token-0123456789"), Scope::Ingest)
            .is_ok());
        assert!(g
            .check(Some(b"admin-token-0123456789"), Scope::Query)
            .is_ok());
        assert!(g
            .check(Some(b"admin-token-0123456789"), Scope::Admin)
            .is_ok());
        let denied = g
            .check(Some(b"query-token-0123456789"), Scope::Admin)
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        let denied = g
            .check(Some(b"admin-token-0123456789"), Scope::Ingest)
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        let unauth = g.check(Some(b"nope"), Scope::Query).unwrap_err();
        assert_eq!(unauth.code(), tonic::Code::Unauthenticated);
        let unauth = g.check(None, Scope::Query).unwrap_err();
        assert_eq!(unauth.code(), tonic::Code::Unauthenticated);
        assert!(Guard::open().check(None, Scope::Admin).is_ok());
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bear"), None);
    }

    #[test]
    fn open_only_on_loopback_unless_allowed() {
        let mut cfg = AuthConfig::default();
        let public: SocketAddr = "0.0.0.0:50051".parse().expect("addr");
        let err = Guard::from_config(&cfg, public).err().expect("refused");
        assert!(
            err.to_string()
                .contains("auth.allow_unauthenticated_non_loopback"),
            "{err}"
        );
        assert!(Guard::from_config(&cfg, "127.0.0.1:1".parse().expect("addr")).is_ok());
        assert!(Guard::from_config(&cfg, "[::1]:1".parse().expect("addr")).is_ok());
        cfg.allow_unauthenticated_non_loopback = true;
        assert!(Guard::from_config(&cfg, public).is_ok());
    }
}
