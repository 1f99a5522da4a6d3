//! Metric names, in one place so dashboards, alert rules and `docs/OPERATIONS.md` stay in step
//! (`tests/ops_dashboards.rs` reads this file).
//!
//! A leaf: the writer, sync and the gRPC layer record metrics under these names without
//! importing `service`, which installs the recorder and describes them.

/// Counter: events newly applied to the ledger.
pub const EVENTS_INGESTED: &str = "audiencesync_events_ingested_total";
/// Counter: events refused by validation.
pub const EVENTS_REJECTED: &str = "audiencesync_events_rejected_total";
/// Counter: identifiers dropped from applied events because they could not be normalized,
/// by `field` (e.g. `customer_upserted.phone`) and `reason` (a fixed word, e.g.
/// `phone_not_valid`; `IdentityError::label`).
pub const IDENTIFIERS_DROPPED: &str = "audiencesync_ingest_identifier_dropped_total";
/// Counter: events whose `event_id` was seen before.
pub const EVENTS_DUPLICATE: &str = "audiencesync_events_duplicate_total";
/// Gauge: last durable write-ahead-log sequence.
pub const WAL_SEQUENCE: &str = "audiencesync_wal_sequence";
/// Gauge: WAL sequence covered by the last checkpoint.
pub const CHECKPOINT_SEQUENCE: &str = "audiencesync_checkpoint_sequence";
/// Counter: bytes of keys and values checkpoints wrote to sled; over
/// `audiencesync_events_ingested_total`, the checkpoints' write amplification.
pub const CHECKPOINT_BYTES: &str = "audiencesync_checkpoint_bytes_total";
/// Counter: group commits (one WAL write + fsync each).
pub const GROUP_COMMITS: &str = "audiencesync_group_commits_total";
/// Histogram: one group's write-ahead append, write plus fdatasync (the disk's share of
/// every ack's latency).
pub const WAL_APPEND_DURATION: &str = "audiencesync_wal_append_duration_seconds";
/// Gauge: members per audience (label `audience`).
pub const AUDIENCE_MEMBERS: &str = "audiencesync_audience_members";
/// Gauge: members eligible for push per audience.
pub const AUDIENCE_ELIGIBLE: &str = "audiencesync_audience_eligible_members";
/// Counter: membership changes (entries and exits) since start.
pub const MEMBERSHIP_CHANGES: &str = "audiencesync_membership_changes_total";
/// Counter: requests to ad networks by `destination`, `op` and `outcome`.
pub const SYNC_REQUESTS: &str = "audiencesync_sync_requests_total";
/// Histogram: ad-network request duration by `destination`.
pub const SYNC_REQUEST_DURATION: &str = "audiencesync_sync_request_duration_seconds";
/// Counter: members confirmed sent, by `destination`, `audience`, `op` (`add`, `remove`).
pub const SYNC_MEMBERS_SENT: &str = "audiencesync_sync_members_sent_total";
/// Counter: rows a network refused, by `destination`, `audience`, `reason` (the network's
/// own reason, e.g. `PROCESSING_ERROR_REASON_INVALID_FORMAT`).
pub const SYNC_MEMBERS_REFUSED: &str = "audiencesync_sync_members_refused_total";
/// Histogram: members per request sent to a network, by `destination` (batch fill).
pub const SYNC_BATCH_MEMBERS: &str = "audiencesync_sync_batch_members";
/// Gauge: members sent whose outcome the network has not reported yet.
pub const SYNC_IN_FLIGHT: &str = "audiencesync_sync_in_flight_members";
/// Gauge: the size range the network reports for a list (`bound` = `lower`/`upper`).
pub const SYNC_REMOTE_SIZE: &str = "audiencesync_sync_remote_size";
/// Gauge: 1 while a destination × audience is in sync as the network confirmed it.
pub const SYNC_IN_SYNC: &str = "audiencesync_sync_in_sync";
/// Gauge: 1 while a destination is paused on a spent per-day quota.
pub const SYNC_PAUSED: &str = "audiencesync_sync_paused";
/// Histogram: each wait for the quota or a network's throttle, by `destination`
/// (`_sum` is the total time waited).
pub const SYNC_RATE_LIMIT_WAIT: &str = "audiencesync_sync_rate_limit_wait_seconds";
/// Gauge: adds / removes found and not yet confirmed (`destination`, `audience`, `op`).
pub const SYNC_PENDING: &str = "audiencesync_sync_pending_members";
/// Gauge: confirmed members per remote list.
pub const SYNC_CONFIRMED: &str = "audiencesync_sync_confirmed_members";
/// Gauge: 1 while a destination × audience is parked on a permanent error.
pub const SYNC_PARKED: &str = "audiencesync_sync_parked";
/// Gauge: Unix time of the last confirmed push.
pub const SYNC_LAST_SUCCESS: &str = "audiencesync_sync_last_success_timestamp_seconds";
/// Gauge: seconds since the writer last went round its loop.
pub const WRITER_HEARTBEAT_AGE: &str = "audiencesync_ledger_heartbeat_age_seconds";
/// Counter: finished gRPC calls, labels `method` and `code`.
pub const GRPC_REQUESTS: &str = "audiencesync_grpc_requests_total";
/// Histogram: gRPC call duration in seconds (a whole stream for streaming calls),
/// labels `method` and `code`.
pub const GRPC_DURATION: &str = "audiencesync_grpc_request_duration_seconds";
/// Gauge: always 1, label `version`.
pub const BUILD_INFO: &str = "audiencesync_build_info";
/// Gauge: customers with a purchase in the trailing 365 days.
pub const INSIGHT_ACTIVE_CUSTOMERS: &str = "audiencesync_insight_active_customers";
/// Gauge: trailing-365-day net revenue per active customer, major units (`currency`).
pub const INSIGHT_REVENUE_PER_CUSTOMER: &str = "audiencesync_insight_revenue_per_customer";
/// Gauge: share of buyers with two purchases or more.
pub const INSIGHT_REPEAT_PURCHASE_RATE: &str = "audiencesync_insight_repeat_purchase_rate";
/// Gauge: share of trailing-365-day revenue from VIP members.
pub const INSIGHT_VIP_REVENUE_SHARE: &str = "audiencesync_insight_vip_revenue_share";
/// Gauge: customer retention rate of the last complete calendar month.
pub const INSIGHT_RETENTION_RATE: &str = "audiencesync_insight_retention_rate";
/// Gauge: share of lapsed-tier entries (last 12 complete months, closed windows) followed
/// by an order within 90 days, by `audience`.
pub const INSIGHT_REACTIVATION_RATE: &str = "audiencesync_insight_reactivation_rate";
/// Gauge: conversion rate after entering an audience, closed windows, by `audience` and
/// `group` (`pushed`, `holdout`).
pub const INSIGHT_CONVERSION_RATE: &str = "audiencesync_insight_conversion_rate";
/// Gauge: audience entries by `audience`, `group` and `window` (`closed`, `open`).
pub const INSIGHT_OUTCOME_MEMBERS: &str = "audiencesync_insight_outcome_members";
/// Gauge: pushed minus holdout conversion rate, by `audience`.
pub const INSIGHT_LIFT: &str = "audiencesync_insight_absolute_lift";
/// Gauge: lower bound of its 95 % interval.
pub const INSIGHT_LIFT_LOW: &str = "audiencesync_insight_absolute_lift_low";
/// Gauge: upper bound of its 95 % interval.
pub const INSIGHT_LIFT_HIGH: &str = "audiencesync_insight_absolute_lift_high";
