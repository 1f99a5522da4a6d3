//! Destinations: one file per ad network, each knowing only its API (endpoints, payloads,
//! limits, how to read its answers and errors). Pacing, batching, retries, outcome tracking and
//! the confirmed list live in the engine around them, the same for every network.
//!
//! The contract a destination keeps: every answer it returns says what the network *did* or
//! *will tell later*, never more. An accepted request is either final at once ([`Accepted`]
//! without a request id: Meta, CSV), with the rows the network refused named or counted, or
//! asynchronous (a request id the engine polls through [`Destination::poll`]: Google). Nothing
//! counts as on the remote list before that outcome is known.

pub mod csv;
pub mod google;
pub mod meta;

use std::collections::BTreeMap;
use std::time::Duration;

use super::member::RemoteMember;

/// An HTTPS client for a network API. The process uses one TLS crypto provider (ring, shared
/// with the gRPC listener's TLS); installing it here makes every client agree on it.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    // Already installed is fine: the same provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(timeout).build()
}

/// A failure below HTTP (connect, reset, timeout, unreadable body): always worth a retry. The
/// URL is left out of the text: a network that takes its token in the query string (Meta)
/// would otherwise see it printed in every error, log and status.
pub fn transport_error(e: reqwest::Error) -> PushError {
    let e = e.without_url();
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

/// Where one request sits in a sequence of requests to the same list (Meta's `session`:
/// unique id per ad account, 1-based sequence, last-batch flag, total estimate). Networks
/// without sessions ignore it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    /// Session id, unique per ad account and positive.
    pub session_id: u64,
    /// 1-based position of this request in the session.
    pub seq: u64,
    /// Whether this request closes the session.
    pub last: bool,
    /// Members the whole session is expected to carry.
    pub estimated_total: u64,
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
        /// A per-day budget is spent: the destination pauses for `wait` (until the quota
        /// resets), visibly, rather than retrying within the day.
        daily: bool,
    },
    /// A transient failure (5xx, 409 ABORTED, reset, timeout, malformed answer): back off and
    /// resend.
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
    /// The request was too large for the network (HTTP 413, a reset while sending, an error
    /// naming the payload): resend in smaller batches.
    #[error("request too large")]
    TooLarge,
    /// A replace session the network no longer takes (Meta: timed out, already finished, or
    /// the network lost it): what it received so far stands; start over or go on by adds.
    #[error("replace session ended at the network: {reason}")]
    SessionEnded {
        /// What the network said.
        reason: String,
    },
    /// Retrying cannot help: park the destination × audience until an operator acts.
    #[error("{reason}")]
    Permanent {
        /// What the network said.
        reason: String,
        /// What to do about it.
        advice: String,
    },
}

/// Rows of one request the network refused, as far as it tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refused {
    /// Indices into the request's members of rows the network named (Meta's samples); these
    /// are not on the list.
    pub indices: Vec<usize>,
    /// Refused rows per reason, named or not (Google `errorInfo.errorCounts`, Meta
    /// `num_invalid_entries`).
    pub by_reason: BTreeMap<String, u64>,
}

impl Refused {
    /// Rows refused in all.
    pub fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }
}

/// What the network answered to an accepted request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// An asynchronous request to poll (Google `requestId`); `None` when the answer is final.
    pub request_id: Option<String>,
    /// For a final answer: the rows the network refused (Meta invalid entries).
    pub refused: Refused,
    /// Rows the network counted as received in this request, when it says (Meta's
    /// `num_received` is cumulative per session: the destination turns it into this request's).
    pub received: Option<u64>,
}

/// The state of an asynchronous request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestState {
    /// Still running.
    Processing,
    /// Applied (Google `SUCCESS`, or `PARTIAL_SUCCESS` with the refused rows counted by
    /// reason); with the network's match-rate range when it reports one.
    Succeeded {
        /// e.g. `MATCH_RATE_RANGE_31_TO_40`.
        match_rate: Option<String>,
        /// Rows the network did not apply, per reason.
        refused: Refused,
    },
    /// Not applied: the members must be sent again.
    Failed {
        /// What the network said.
        reason: String,
        /// Counts per reason, when given.
        refused: Refused,
    },
}

/// What the network reports about a remote list as a whole (read on the read quota).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListInfo {
    /// Size range the network reports (Meta approximate counts; Google `sizeInfo`, where both
    /// bounds carry the larger of its display and search network counts).
    pub size_lower: Option<u64>,
    /// Upper bound of the size range.
    pub size_upper: Option<u64>,
    /// Match rate (Google `matchRatePercentage`, e.g. `"45%"`).
    pub match_rate: Option<String>,
    /// The network's own processing status, e.g. Meta `operation_status` as `"200 Normal"`.
    pub operation_status: Option<String>,
    /// Uploads are blocked until a person acts (Meta 471 flagged for integrity): the reason.
    pub blocked: Option<String>,
    /// A replace is still being applied (Meta 414).
    pub replace_in_progress: bool,
    /// The last replace failed at the network (Meta 415): the reason.
    pub replace_failed: Option<String>,
}

/// How much of the network's own rate budget is spent, as its last answer reported it (Meta's
/// usage headers). The engine slows down before the budget runs out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// The highest percentage of any budget the network reported (0–100).
    pub percent: u8,
    /// How long until the budget regains room, when the network says.
    pub regain: Option<Duration>,
}

/// A full replacement's handle at the network, kept in the job record so a restart continues
/// the same session.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplaceStart {
    /// Google `removeAll`'s request id, polled like any other.
    pub request_id: Option<String>,
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
    /// Whether reads (polls, list info) have a quota of their own (Google) or share the
    /// mutate budget (Meta counts every call against one budget).
    fn separate_read_quota(&self) -> bool {
        false
    }
    /// The default request budget per hour when the config names none.
    fn default_quota_per_hour(&self, lists: usize) -> u32;
    /// Budget use the network reported on its last answer, if it reports any.
    fn usage(&self) -> Option<Usage> {
        None
    }
    /// Adds members to the list (idempotent at the network).
    async fn add(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        batch: Batch,
    ) -> Result<Accepted, PushError>;
    /// Removes members from the list (idempotent at the network).
    async fn remove(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        batch: Batch,
    ) -> Result<Accepted, PushError>;
    /// Starts a full replacement of the list: Google removes every member uploaded before
    /// `as_of` (`removeAll` with `removeAsOfTime`, so members the replacement adds afterwards
    /// stay, however the network orders its processing); Meta does nothing until the first
    /// batch. Sent again unchanged when a job resumes, so it must be safe to repeat.
    async fn begin_replace(
        &self,
        list: &ListRef,
        as_of: std::time::SystemTime,
    ) -> Result<ReplaceStart, PushError>;
    /// Sends one batch of a replacement (Meta `usersreplace`; Google an ingest).
    async fn replace_batch(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        batch: Batch,
    ) -> Result<Accepted, PushError>;
    /// How long a replace session stays open at the network after its first batch (Meta: 90
    /// minutes); `None` when replacements have no session.
    fn replace_window(&self) -> Option<Duration> {
        None
    }
    /// The state of an asynchronous request; destinations without them are never asked.
    async fn poll(&self, request_id: &str) -> Result<RequestState, PushError> {
        Err(PushError::Permanent {
            reason: format!("request {request_id}: this destination has no asynchronous requests"),
            advice: "report this as a bug".into(),
        })
    }
    /// What the network reports about the list; `None` for destinations that report nothing.
    async fn list_info(&self, _list: &ListRef) -> Result<Option<ListInfo>, PushError> {
        Ok(None)
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
