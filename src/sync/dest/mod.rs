//! Destinations: one file per ad network, each knowing only its API (endpoints, payloads,
//! limits, how to read its errors). Rate limiting, batching, retries and the confirmed ledger
//! live in the engine around them, the same for every network.

pub mod csv;
pub mod google;
pub mod meta;

use std::time::Duration;

use super::member::RemoteMember;

/// An HTTPS client for a network API. The process uses one TLS crypto provider (ring, shared
/// with the gRPC listener's TLS); installing it here makes every client agree on it.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    // Already installed is fine: the same provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(timeout).build()
}

/// A failure below HTTP (connect, reset, timeout, unreadable body): always worth a retry.
pub fn transport_error(e: reqwest::Error) -> PushError {
    PushError::Transient {
        reason: if e.is_timeout() {
            "request timed out".to_string()
        } else {
            format!("transport: {e}")
        },
    }
}

/// The remote list one audience maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRef {
    /// Audience name.
    pub audience: String,
    /// The network's list id (Google user list id, Meta custom audience id); empty for CSV.
    pub list_id: String,
}

/// How a push went wrong, as the engine needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// Over quota or throttled: wait (the network's hint if it gave one), then resend.
    #[error("throttled: {reason}")]
    Throttled {
        /// What the network said.
        reason: String,
        /// How long the network asked us to wait.
        wait: Option<Duration>,
    },
    /// A transient failure (5xx, reset, timeout, malformed answer): back off and resend.
    #[error("transient failure: {reason}")]
    Transient {
        /// What happened.
        reason: String,
    },
    /// The access token expired: refresh it once and resend.
    #[error("access token expired")]
    TokenExpired,
    /// Some members were refused and nothing was applied: set them aside, resend the rest.
    #[error("members refused: {reason}")]
    MembersRefused {
        /// Indices into the batch.
        indices: Vec<usize>,
        /// Why.
        reason: String,
    },
    /// The request was too large for the network (HTTP 413): resend in smaller batches.
    #[error("request too large")]
    TooLarge,
    /// Retrying cannot help: park the destination × audience until an operator acts.
    #[error("{reason}")]
    Permanent {
        /// What the network said.
        reason: String,
        /// What to do about it.
        advice: String,
    },
}

/// What an accepted request leaves to check later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// An asynchronous request to poll (Google `requestId`); `None` when final already.
    pub request_id: Option<String>,
}

/// A full replacement in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaceSession {
    /// Network session id (Meta), unique per ad account.
    pub id: u64,
    /// Batches sent so far.
    pub batches: u64,
    /// Members sent so far (CSV accumulates them for the snapshot).
    pub members: Vec<RemoteMember>,
}

/// The final state of an asynchronous request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestState {
    /// Still running.
    Processing,
    /// Applied; with the network's match-rate range when it reports one.
    Succeeded(Option<String>),
    /// Not applied: the members must be sent again.
    Failed(String),
}

/// One ad network (or file format) behind the engine.
#[async_trait::async_trait]
pub trait Destination: Send + Sync {
    /// Most members per request.
    fn max_batch(&self) -> usize;
    /// How many of the leading `members` fit in one request (networks with byte limits
    /// override this); at least 1 when `members` is not empty.
    fn fit(&self, members: &[RemoteMember]) -> usize {
        members.len().min(self.max_batch())
    }
    /// Adds members to the list (idempotent at the network).
    async fn add(&self, list: &ListRef, members: &[RemoteMember]) -> Result<Accepted, PushError>;
    /// Removes members from the list (idempotent at the network).
    async fn remove(&self, list: &ListRef, members: &[RemoteMember])
        -> Result<Accepted, PushError>;
    /// Starts a full replacement of the list (Google: remove all; Meta: a new replace session).
    async fn begin_replace(&self, list: &ListRef) -> Result<ReplaceSession, PushError>;
    /// Sends one batch of a replacement; `last` closes it.
    async fn replace_batch(
        &self,
        list: &ListRef,
        session: &mut ReplaceSession,
        members: &[RemoteMember],
        last: bool,
    ) -> Result<Accepted, PushError>;
    /// The state of an asynchronous request; destinations without them answer `Succeeded`.
    async fn poll(&self, _request_id: &str) -> Result<RequestState, PushError> {
        Ok(RequestState::Succeeded(None))
    }
    /// Whether lists are named by an id at the network (CSV lists are directories named after
    /// their audience: nothing to name or create).
    fn has_list_ids(&self) -> bool {
        true
    }
    /// Creates the remote list for `audience` and returns its id.
    async fn create_list(&self, audience: &str) -> Result<String, PushError> {
        Err(PushError::Permanent {
            reason: format!("this destination cannot create a list for `{audience}`"),
            advice: "name the list id in the config".into(),
        })
    }
    /// Called after each cycle with the full confirmed list (CSV writes its snapshot here).
    async fn snapshot(&self, _list: &ListRef, _members: &[RemoteMember]) -> Result<(), PushError> {
        Ok(())
    }
    /// Checks credentials and list ids without changing anything.
    async fn check(&self, list: &ListRef) -> Result<(), PushError>;
}
