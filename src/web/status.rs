//! The page's JSON: `/api/status` (one object, one key per section of the page) and
//! `/api/sizes` (audience sizes over time). Built from the in-memory state the gRPC services
//! read, under the same brief read lock. Times are Unix seconds by the daemon's clock.
//!
//! A new section of the page is a new field of [`Status`] (or of `/api/insights`, see
//! [`super::insights`]) plus a renderer in `app.js`.

use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::api::Context;
use crate::audience::Audience;
use crate::clock::{Nanos, NANOS_PER_SEC};
use crate::sync::handle::ListStatus;

/// `/api/status`.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The daemon's version.
    pub version: &'static str,
    /// The daemon's clock (a manual clock in tests and demos).
    pub now: f64,
    /// Every audience with its current size.
    pub audiences: Vec<AudienceRow>,
    /// Sync state of every destination × audience.
    pub sync: SyncSection,
    /// Ingest counters since start.
    pub ingest: IngestRow,
}

/// One audience.
#[derive(Debug, Serialize)]
pub struct AudienceRow {
    /// Name, e.g. `lapsed_90`.
    pub name: String,
    /// The rule in words, with the configured parameters.
    pub definition: String,
    /// Members.
    pub size: u64,
    /// Members eligible for push (consent granted, at least one identifier).
    pub eligible: u64,
    /// Members held out: never pushed, the comparison group of the lift section.
    pub holdout: u64,
    /// The holdout share configured for the audience, as written (`"0.2"`; `"0"`: none).
    pub holdout_fraction: String,
    /// When membership last changed.
    pub last_changed_at: Option<f64>,
}

/// The sync engine's view.
#[derive(Debug, Serialize)]
pub struct SyncSection {
    /// Whether the sync engine runs at all.
    pub running: bool,
    /// One row per destination × audience, sorted.
    pub lists: Vec<ListRow>,
}

/// One destination × audience.
#[derive(Debug, Serialize)]
pub struct ListRow {
    /// Destination name.
    pub destination: String,
    /// Audience name.
    pub audience: String,
    /// The remote list id.
    pub list_id: String,
    /// One word for the badge: `parked`, `paused`, `throttled`, `replacing`, `retrying`,
    /// `pending`, `awaiting` (sent, the network's outcome not known yet), `differs` (a
    /// difference the network has not explained) or `in_sync`.
    pub state: &'static str,
    /// Eligible members that should be on the list.
    pub desired: u64,
    /// Members the network confirmed.
    pub confirmed: u64,
    /// Adds not yet confirmed.
    pub pending_adds: u64,
    /// Removes not yet confirmed.
    pub pending_removes: u64,
    /// Members the network refused, set aside until their identifiers change.
    pub set_aside: u64,
    /// Parked on a permanent error until a resync.
    pub parked: bool,
    /// The last error, empty if none since the last resync.
    pub last_error: String,
    /// What to do about it.
    pub advice: String,
    /// Last confirmed push.
    pub last_success_at: Option<f64>,
    /// No request before this instant (the network throttles).
    pub throttled_until: Option<f64>,
    /// The network's match-rate range of the newest processed upload, when it reports one.
    pub match_rate: String,
    /// Members sent whose outcome the network has not reported yet.
    pub in_flight: u64,
    /// Members in requests the network accepted, since the last full resync.
    pub accepted: u64,
    /// Members whose outcome the network reported.
    pub processed: u64,
    /// Rows the network refused since the last full resync, per reason.
    pub refused: std::collections::BTreeMap<String, u64>,
    /// Paused until `throttled_until` on a spent per-day quota.
    pub paused_daily: bool,
    /// What the network reports about the list.
    pub remote: RemoteRow,
    /// The newest resync job of the list.
    pub job: Option<JobRow>,
}

/// A remote list as the network describes it.
#[derive(Debug, Serialize)]
pub struct RemoteRow {
    /// Lower bound of the size the network reports.
    pub size_lower: Option<u64>,
    /// Upper bound.
    pub size_upper: Option<u64>,
    /// The list's match rate as the network reports it.
    pub match_rate: String,
    /// The network's processing status of the list.
    pub operation_status: String,
    /// When it was read.
    pub read_at: Option<f64>,
}

/// A resync job.
#[derive(Debug, Serialize)]
pub struct JobRow {
    /// `resync-N`.
    pub id: String,
    /// `full` or `delta`.
    pub kind: String,
    /// `queued`, `removing`, `sending`, `verifying`, `done` or `failed`.
    pub state: String,
    /// Members sent.
    pub sent: u64,
    /// Members to send.
    pub total: u64,
    /// When requested.
    pub started_at: Option<f64>,
    /// When ended.
    pub finished_at: Option<f64>,
    /// Why it failed, or what it waits for.
    pub detail: String,
}

/// Ingest and writer counters.
#[derive(Debug, Serialize)]
pub struct IngestRow {
    /// Events newly applied.
    pub events_ingested: u64,
    /// Events refused by validation.
    pub events_rejected: u64,
    /// Events seen before.
    pub events_duplicate: u64,
    /// Customers known (erased ones included).
    pub customers: u64,
    /// Last durable WAL sequence.
    pub wal_sequence: u64,
    /// WAL sequence covered by the last checkpoint.
    pub checkpoint_sequence: u64,
}

fn secs(t: Nanos) -> f64 {
    t as f64 / NANOS_PER_SEC as f64
}

/// The badge word of a list (see [`ListRow::state`]).
pub fn list_state(s: &ListStatus, now: Nanos) -> &'static str {
    let pending = s.pending_adds + s.pending_removes > 0;
    let throttled = s.throttled_until.is_some_and(|t| t > now);
    let replacing = s
        .job
        .as_ref()
        .is_some_and(|j| j.kind == "full" && !j.finished());
    if s.parked {
        "parked"
    } else if throttled && s.paused_daily {
        "paused"
    } else if throttled {
        "throttled"
    } else if replacing {
        "replacing"
    } else if !s.last_error.is_empty() {
        "retrying"
    } else if pending {
        "pending"
    } else if s.in_flight > 0 {
        "awaiting"
    } else if s.in_sync() {
        "in_sync"
    } else {
        "differs"
    }
}

fn list_row(destination: String, audience: String, s: ListStatus, now: Nanos) -> ListRow {
    let net = &s.report.network;
    ListRow {
        state: list_state(&s, now),
        destination,
        audience,
        list_id: s.list_id.clone(),
        desired: s.desired,
        confirmed: s.confirmed,
        pending_adds: s.pending_adds,
        pending_removes: s.pending_removes,
        set_aside: s.set_aside,
        parked: s.parked,
        last_error: s.last_error.clone(),
        advice: s.advice.clone(),
        last_success_at: s.last_success_at.map(secs),
        throttled_until: s.throttled_until.filter(|t| *t > now).map(secs),
        match_rate: s.report.upload_match_rate.clone(),
        in_flight: s.in_flight,
        accepted: s.report.accepted,
        processed: s.report.processed,
        refused: s.report.refused.clone(),
        paused_daily: s.paused_daily,
        remote: RemoteRow {
            size_lower: net.size_lower,
            size_upper: net.size_upper,
            match_rate: net.match_rate.clone(),
            operation_status: net.operation_status.clone(),
            read_at: net.read_at.map(secs),
        },
        job: s.job.map(|j| JobRow {
            id: j.id,
            kind: j.kind,
            state: j.state,
            sent: j.sent,
            total: j.total,
            started_at: j.started_at.map(secs),
            finished_at: j.finished_at.map(secs),
            detail: j.detail,
        }),
    }
}

/// Builds `/api/status`.
pub fn status(ctx: &Context) -> Status {
    let now = ctx.clock.now();
    let (audiences, customers) = {
        let db = ctx.writer.read();
        let rows = Audience::ALL
            .iter()
            .map(|a| {
                let d = crate::api::audience::describe(&db, *a);
                AudienceRow {
                    name: d.name,
                    definition: d.definition,
                    size: d.size,
                    eligible: d.eligible_size,
                    holdout: d.holdout_size,
                    holdout_fraction: d.holdout_fraction,
                    last_changed_at: db.audiences().last_changed(*a).map(secs),
                }
            })
            .collect();
        (rows, db.customer_count() as u64)
    };
    let lists = ctx
        .sync
        .as_ref()
        .map(|engine| {
            engine
                .status
                .snapshot()
                .into_iter()
                .map(|((destination, audience), s)| list_row(destination, audience, s, now))
                .collect()
        })
        .unwrap_or_default();
    let st = ctx.writer.stats();
    Status {
        version: env!("CARGO_PKG_VERSION"),
        now: secs(now),
        audiences,
        sync: SyncSection {
            running: ctx.sync.is_some(),
            lists,
        },
        ingest: IngestRow {
            events_ingested: st.applied.load(Ordering::Relaxed),
            events_rejected: st.rejected.load(Ordering::Relaxed),
            events_duplicate: st.duplicates.load(Ordering::Relaxed),
            customers,
            wal_sequence: st.wal_seq.load(Ordering::Relaxed),
            checkpoint_sequence: st.checkpoint_seq.load(Ordering::Relaxed),
        },
    }
}

/// Default and largest number of samples `/api/sizes` returns.
const DEFAULT_POINTS: usize = 400;
const MAX_POINTS: usize = 2_000;

/// The parameters of `/api/sizes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizesQuery {
    /// How far back from now (`None`: everything kept).
    pub range: Option<std::time::Duration>,
    /// Most samples.
    pub max_points: usize,
}

impl SizesQuery {
    /// `range` is a duration like `24h` or `7d`, or `all` (default `7d`); `max_points` at
    /// most 2,000 (default 400). Errors name the parameter.
    pub fn parse(range: Option<&str>, max_points: Option<&str>) -> Result<Self, String> {
        let range = match range.unwrap_or("7d") {
            "all" => None,
            r => {
                let d = humantime::parse_duration(r)
                    .map_err(|e| format!("range: {e} (expected e.g. 24h, 7d or all)"))?;
                if d.is_zero() {
                    return Err("range: must be positive".into());
                }
                Some(d)
            }
        };
        let max_points = match max_points {
            None => DEFAULT_POINTS,
            Some(n) => match n.parse::<usize>() {
                Ok(n) if (1..=MAX_POINTS).contains(&n) => n,
                _ => return Err(format!("max_points: a number from 1 to {MAX_POINTS}")),
            },
        };
        Ok(Self { range, max_points })
    }
}

/// `/api/sizes`: column-aligned samples, so a chart reads one series per audience.
#[derive(Debug, Serialize)]
pub struct Sizes {
    /// The daemon's clock.
    pub now: f64,
    /// The sampling period in seconds.
    pub interval_seconds: u64,
    /// Audience names; `size[i]` and `eligible[i]` of every sample belong to `audiences[i]`.
    pub audiences: Vec<String>,
    /// Oldest first.
    pub samples: Vec<SizeRow>,
}

/// One sample.
#[derive(Debug, Serialize)]
pub struct SizeRow {
    /// When.
    pub at: f64,
    /// Members per audience (`null` for an audience that did not exist yet).
    pub size: Vec<Option<u64>>,
    /// Eligible members per audience.
    pub eligible: Vec<Option<u64>>,
}

/// Builds `/api/sizes`.
pub fn sizes(ctx: &Context, q: &SizesQuery) -> Sizes {
    let now = ctx.clock.now();
    let names: Vec<String> = {
        let db = ctx.writer.read();
        Audience::ALL
            .iter()
            .map(|a| db.audiences().name(*a))
            .collect()
    };
    let since = q.range.map_or(i64::MIN, |r| {
        now.saturating_sub(i64::try_from(r.as_nanos()).unwrap_or(i64::MAX))
    });
    let history = ctx.writer.size_history();
    let samples = history
        .range(since, i64::MAX, q.max_points)
        .into_iter()
        .map(|s| SizeRow {
            at: secs(s.at),
            size: (0..names.len())
                .map(|i| s.sizes.get(i).map(|z| z.size))
                .collect(),
            eligible: (0..names.len())
                .map(|i| s.sizes.get(i).map(|z| z.eligible))
                .collect(),
        })
        .collect();
    Sizes {
        now: secs(now),
        interval_seconds: history.interval().as_secs(),
        audiences: names,
        samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_query_names_the_bad_parameter() {
        assert_eq!(
            SizesQuery::parse(None, None),
            Ok(SizesQuery {
                range: Some(std::time::Duration::from_secs(7 * 86_400)),
                max_points: 400
            })
        );
        assert_eq!(
            SizesQuery::parse(Some("all"), Some("10")).map(|q| (q.range, q.max_points)),
            Ok((None, 10))
        );
        assert!(SizesQuery::parse(Some("soon"), None)
            .unwrap_err()
            .starts_with("range:"));
        assert!(SizesQuery::parse(Some("0s"), None)
            .unwrap_err()
            .starts_with("range:"));
        assert!(SizesQuery::parse(None, Some("0"))
            .unwrap_err()
            .starts_with("max_points:"));
        assert!(SizesQuery::parse(None, Some("99999"))
            .unwrap_err()
            .starts_with("max_points:"));
    }

    #[test]
    fn list_states_put_the_worst_first() {
        let mut s = ListStatus::default();
        assert_eq!(list_state(&s, 10), "in_sync");
        s.desired = 2;
        assert_eq!(list_state(&s, 10), "differs");
        s.report.refused.insert("INVALID_FORMAT".into(), 2);
        assert_eq!(list_state(&s, 10), "in_sync");
        s.in_flight = 1;
        assert_eq!(list_state(&s, 10), "awaiting");
        s.pending_adds = 3;
        assert_eq!(list_state(&s, 10), "pending");
        s.last_error = "HTTP 500".into();
        assert_eq!(list_state(&s, 10), "retrying");
        s.throttled_until = Some(5);
        assert_eq!(list_state(&s, 10), "retrying");
        s.job = Some(crate::sync::status::JobStatus {
            kind: "full".into(),
            state: "sending".into(),
            ..Default::default()
        });
        assert_eq!(list_state(&s, 10), "replacing");
        s.throttled_until = Some(50);
        assert_eq!(list_state(&s, 10), "throttled");
        s.paused_daily = true;
        assert_eq!(list_state(&s, 10), "paused");
        s.parked = true;
        assert_eq!(list_state(&s, 10), "parked");
    }
}
