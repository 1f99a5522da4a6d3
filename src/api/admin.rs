//! `AdminService`: resyncs, sync status, store statistics, and the manual clock for tests.

use std::sync::atomic::Ordering;

use tonic::{Request, Response, Status};

use super::Context;
use crate::proto::v1::{self, admin_service_server::AdminService};

/// The admin service.
pub struct AdminApi {
    ctx: Context,
}

impl AdminApi {
    /// A service over the shared context.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    fn sync(&self) -> Result<&crate::sync::handle::SyncEngine, Status> {
        self.ctx
            .sync
            .as_deref()
            .ok_or_else(|| Status::unavailable("the sync engine is not running"))
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn trigger_resync(
        &self,
        request: Request<v1::TriggerResyncRequest>,
    ) -> Result<Response<v1::TriggerResyncResponse>, Status> {
        let req = request.into_inner();
        let sync = self.sync()?;
        let full = req.mode == v1::ResyncMode::Full as i32;
        let opt = |s: &str| (!s.is_empty()).then_some(s.to_string());
        let (d, a) = (opt(&req.destination), opt(&req.audience));
        let job_id = sync
            .resync(d.as_deref(), a.as_deref(), full)
            .map_err(|e| Status::not_found(e.to_string()))?;
        tracing::info!(job = %job_id, destination = ?d, audience = ?a, full, "resync requested");
        Ok(Response::new(v1::TriggerResyncResponse { job_id }))
    }

    async fn get_sync_status(
        &self,
        request: Request<v1::GetSyncStatusRequest>,
    ) -> Result<Response<v1::GetSyncStatusResponse>, Status> {
        let want = request.into_inner().destination;
        let sync = self.sync()?;
        let states = sync
            .status
            .snapshot()
            .into_iter()
            .filter(|((d, _), _)| want.is_empty() || *d == want)
            .map(|((destination, audience), s)| sync_state(destination, audience, s))
            .collect();
        Ok(Response::new(v1::GetSyncStatusResponse { states }))
    }

    async fn get_store_stats(
        &self,
        _: Request<v1::GetStoreStatsRequest>,
    ) -> Result<Response<v1::StoreStats>, Status> {
        let stats = self.ctx.writer.stats();
        let counts = self.ctx.writer.read().counts();
        Ok(Response::new(v1::StoreStats {
            customers: counts.customers as u64,
            orders: counts.orders as u64,
            carts: counts.carts as u64,
            dedup_ids: counts.dedup_ids as u64,
            wal_seq: stats.wal_seq.load(Ordering::Relaxed),
            checkpoint_seq: stats.checkpoint_seq.load(Ordering::Relaxed),
            events_applied: stats.applied.load(Ordering::Relaxed),
            events_duplicate: stats.duplicates.load(Ordering::Relaxed),
            events_rejected: stats.rejected.load(Ordering::Relaxed),
        }))
    }

    async fn set_clock(
        &self,
        request: Request<v1::SetClockRequest>,
    ) -> Result<Response<v1::SetClockResponse>, Status> {
        let Some(clock) = &self.ctx.manual_clock else {
            return Err(Status::failed_precondition(
                "the clock is the system clock; SetClock needs `[clock] mode = \"manual\"`",
            ));
        };
        let req = request.into_inner();
        let current = crate::clock::Clock::now(clock);
        let target = match (req.now, req.advance_seconds) {
            (Some(t), 0) => t
                .seconds
                .checked_mul(crate::clock::NANOS_PER_SEC)
                .and_then(|s| s.checked_add(i64::from(t.nanos)))
                .ok_or_else(|| Status::invalid_argument("now: out of range"))?,
            (None, s) if s >= 0 => current
                .checked_add(s.saturating_mul(crate::clock::NANOS_PER_SEC))
                .ok_or_else(|| Status::invalid_argument("advance_seconds: out of range"))?,
            (None, _) => {
                return Err(Status::invalid_argument(
                    "advance_seconds: the clock never moves backwards",
                ))
            }
            (Some(_), _) => {
                return Err(Status::invalid_argument(
                    "now: set either `now` or `advance_seconds`, not both",
                ))
            }
        };
        if target < current {
            return Err(Status::invalid_argument(
                "now: the clock never moves backwards",
            ));
        }
        clock.set(target);
        self.ctx
            .writer
            .tick_now()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(v1::SetClockResponse {
            now: Some(super::timestamp(target)),
        }))
    }
}

/// One list's status on the wire.
fn sync_state(
    destination: String,
    audience: String,
    s: crate::sync::status::ListStatus,
) -> v1::SyncState {
    let in_sync = s.in_sync();
    let net = s.report.network;
    v1::SyncState {
        destination,
        audience,
        desired_size: s.desired,
        confirmed_size: s.confirmed,
        pending_adds: s.pending_adds,
        pending_removes: s.pending_removes,
        last_success_at: s.last_success_at.map(super::timestamp),
        last_error: s.last_error,
        advice: s.advice,
        parked: s.parked,
        match_rate: s.report.upload_match_rate,
        list_id: s.list_id,
        throttled_until: s.throttled_until.map(super::timestamp),
        in_flight: s.in_flight,
        set_aside: s.set_aside,
        accepted: s.report.accepted,
        processed: s.report.processed,
        refused: s
            .report
            .refused
            .into_iter()
            .map(|(reason, count)| v1::RefusedCount { reason, count })
            .collect(),
        remote: Some(v1::RemoteList {
            size_lower: net.size_lower,
            size_upper: net.size_upper,
            match_rate: net.match_rate,
            operation_status: net.operation_status,
            read_at: net.read_at.map(super::timestamp),
        }),
        job: s.job.map(|j| v1::ResyncJob {
            job_id: j.id,
            kind: j.kind,
            state: j.state,
            sent: j.sent,
            total: j.total,
            started_at: j.started_at.map(super::timestamp),
            finished_at: j.finished_at.map(super::timestamp),
            detail: j.detail,
        }),
        in_sync,
        paused_daily: s.paused_daily,
    }
}
