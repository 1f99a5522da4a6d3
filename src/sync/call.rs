//! The one call path every request to a network takes: pace (the configured quota, and the
//! network's own budget as it reports it) → call → count → classify → wait and retry, or hand
//! the failure back. Destinations only classify their own errors into [`PushError`]; what to
//! do about each class is decided here, once, for every operation (adds, removes, replace
//! batches, polls, list reads, list creation).

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota as GovernorQuota, RateLimiter};
use rand::Rng;
use tokio::sync::watch;

use super::dest::{Destination, PushError, Usage};
use super::status::StatusBoard;
use crate::clock::SharedClock;
use crate::metric_names;

/// Attempts for a transient failure before the work waits for the next cycle.
const MAX_TRANSIENT_ATTEMPTS: u32 = 6;
/// Longest backoff between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Budget use (percent) from which requests are spread further apart.
const SLOW_FROM_PERCENT: u8 = 75;
/// Budget use (percent) at which requests stop until the budget regains room.
const STOP_AT_PERCENT: u8 = 95;

/// Which budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Changes to a list.
    Mutate,
    /// Status polls and list reads (a budget of their own where the network has one).
    Read,
}

/// Why a call gave up.
#[derive(Debug)]
pub enum Halt {
    /// Transient failures outlasted the retries: try again next cycle.
    Later(PushError),
    /// Retrying cannot help as is; the caller decides (set members aside, shrink, park).
    Failed(PushError),
    /// The destination is paused on a spent per-day quota.
    Paused,
    /// The worker is stopping.
    Stopped,
}

/// Requests per period, burst 1: requests are spread evenly, so no window ever sees more than
/// the quota, and a backlog uses it fully.
pub fn limiter(per_hour: u32) -> DefaultDirectRateLimiter {
    let per_hour = per_hour.max(1);
    let period = Duration::from_secs_f64(3600.0 / f64::from(per_hour));
    let quota = GovernorQuota::with_period(period)
        .unwrap_or_else(|| GovernorQuota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::MIN);
    RateLimiter::direct(quota)
}

/// The call path of one destination's worker.
pub struct Caller {
    name: String,
    dest: Arc<dyn Destination>,
    mutate: DefaultDirectRateLimiter,
    /// `None`: reads spend the mutate budget.
    read: Option<DefaultDirectRateLimiter>,
    /// The even spacing of mutate requests, the unit of the budget slow-down.
    spacing: Duration,
    stop: watch::Receiver<bool>,
    status: Arc<StatusBoard>,
    clock: SharedClock,
    /// Paused on a per-day quota until then.
    paused_until: Option<Instant>,
    /// The budget report already waited out (the next answer brings a fresh one).
    waited_for: Option<Usage>,
}

impl Caller {
    /// A call path with `per_hour` mutate requests and `read_per_hour` reads (when the network
    /// budgets reads apart).
    pub fn new(
        name: String,
        dest: Arc<dyn Destination>,
        per_hour: u32,
        read_per_hour: Option<u32>,
        stop: watch::Receiver<bool>,
        status: Arc<StatusBoard>,
        clock: SharedClock,
    ) -> Self {
        Self {
            name,
            mutate: limiter(per_hour),
            read: read_per_hour.map(limiter),
            spacing: Duration::from_secs_f64(3600.0 / f64::from(per_hour.max(1))),
            dest,
            stop,
            status,
            clock,
            paused_until: None,
            waited_for: None,
        }
    }

    /// The destination behind this path.
    pub fn dest(&self) -> &Arc<dyn Destination> {
        &self.dest
    }

    /// Whether the worker was asked to stop.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Until when the destination is paused on a per-day quota.
    pub fn paused_until(&mut self) -> Option<Instant> {
        if self.paused_until.is_some_and(|t| t <= Instant::now()) {
            self.paused_until = None;
            self.status.update_destination(&self.name, |s| {
                s.throttled_until = None;
                s.paused_daily = false;
            });
        }
        self.paused_until
    }

    /// Sleeps, unless the worker stops first.
    pub async fn sleep(&mut self, d: Duration) -> Result<(), Halt> {
        if self.stopping() {
            return Err(Halt::Stopped);
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.stop.changed() => Err(Halt::Stopped),
        }
    }

    /// Sends one request through pacing and the retry policy. `f` builds the request anew for
    /// each attempt.
    pub async fn call<T, F, Fut>(
        &mut self,
        op: &'static str,
        quota: Quota,
        audience: &str,
        mut f: F,
    ) -> Result<T, Halt>
    where
        F: FnMut(Arc<dyn Destination>) -> Fut,
        Fut: Future<Output = Result<T, PushError>>,
    {
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            if self.paused_until().is_some() {
                return Err(Halt::Paused);
            }
            self.pace(quota, audience).await?;
            let started = Instant::now();
            let result = f(self.dest.clone()).await;
            self.record(op, started, &result);
            let e = match result {
                Ok(v) => {
                    if attempt > 0 {
                        self.status.update(&self.name, audience, |s| {
                            s.throttled_until = None;
                        });
                    }
                    return Ok(v);
                }
                Err(e) => e,
            };
            attempt += 1;
            match &e {
                PushError::Throttled {
                    daily: true, wait, ..
                } => {
                    let wait = wait.unwrap_or(Duration::from_secs(3600));
                    self.pause_daily(wait, &e);
                    return Err(Halt::Paused);
                }
                PushError::Throttled { wait, .. } => {
                    let pause = wait.unwrap_or_else(|| backoff(attempt));
                    self.note(audience, &e, Some(pause));
                    self.sleep(pause).await?;
                    record_wait(&self.name, pause);
                    // The budget report that came with the throttle is waited out already.
                    self.waited_for = self.dest.usage();
                }
                PushError::TokenExpired if !refreshed => refreshed = true,
                PushError::TokenExpired => {
                    return Err(Halt::Failed(PushError::Permanent {
                        reason: "access token refused right after a refresh".into(),
                        advice: "renew the destination's credentials, then `audiencesync resync`"
                            .into(),
                    }))
                }
                PushError::Transient { .. } => {
                    self.note(audience, &e, None);
                    if attempt > MAX_TRANSIENT_ATTEMPTS {
                        return Err(Halt::Later(e));
                    }
                    self.sleep(backoff(attempt)).await?;
                }
                _ => return Err(Halt::Failed(e)),
            }
        }
    }

    /// Waits for the quota, and slows down as the network's own budget fills: spacing grows
    /// from 75 % of it, and at 95 % requests stop until it regains room (Meta asks callers to
    /// stop before its throttle, which extends itself when called into).
    async fn pace(&mut self, quota: Quota, audience: &str) -> Result<(), Halt> {
        let started = Instant::now();
        if let Some(usage) = self.dest.usage() {
            if self.waited_for != Some(usage) {
                if usage.percent >= STOP_AT_PERCENT {
                    let wait = usage.regain.unwrap_or(Duration::from_secs(60));
                    let until = self.clock.now().saturating_add(wait.as_nanos() as i64);
                    self.status
                        .update(&self.name, audience, |s| s.throttled_until = Some(until));
                    tracing::info!(destination = %self.name, percent = usage.percent, wait_s = wait.as_secs(), "network budget nearly spent; waiting");
                    self.waited_for = Some(usage);
                    self.sleep(wait).await?;
                } else if usage.percent >= SLOW_FROM_PERCENT {
                    let steps = u32::from(usage.percent - SLOW_FROM_PERCENT) + 1;
                    self.sleep(self.spacing * steps / 5).await?;
                }
            }
        }
        let limiter = match (quota, &self.read) {
            (Quota::Read, Some(read)) => read,
            _ => &self.mutate,
        };
        tokio::select! {
            _ = limiter.until_ready() => {}
            _ = self.stop.changed() => return Err(Halt::Stopped),
        }
        record_wait(&self.name, started.elapsed());
        Ok(())
    }

    /// A spent per-day quota pauses every list of the destination, visibly, until it resets.
    fn pause_daily(&mut self, wait: Duration, e: &PushError) {
        self.paused_until = Some(Instant::now() + wait);
        let until = self.clock.now().saturating_add(wait.as_nanos() as i64);
        let reason = e.to_string();
        tracing::warn!(destination = %self.name, wait_s = wait.as_secs(), error = %reason, "per-day quota spent; destination paused until it resets");
        self.status.update_destination(&self.name, |s| {
            s.throttled_until = Some(until);
            s.paused_daily = true;
            s.last_error = reason.clone();
            s.advice = "the network's per-day quota is spent: the destination resumes by itself when it resets; ask the network for more quota if this repeats".into();
        });
    }

    /// Shows a retried failure in status while it lasts.
    fn note(&self, audience: &str, e: &PushError, pause: Option<Duration>) {
        tracing::warn!(destination = %self.name, audience, error = %e, "request failed; retrying");
        let until = pause.map(|p| self.clock.now().saturating_add(p.as_nanos() as i64));
        let msg = e.to_string();
        self.status.update(&self.name, audience, |s| {
            s.last_error = msg;
            s.advice.clear();
            if until.is_some() {
                s.throttled_until = until;
            }
        });
    }

    fn record<T>(&self, op: &'static str, started: Instant, r: &Result<T, PushError>) {
        metrics::counter!(metric_names::SYNC_REQUESTS, "destination" => self.name.clone(), "op" => op, "outcome" => outcome(r))
            .increment(1);
        metrics::histogram!(metric_names::SYNC_REQUEST_DURATION, "destination" => self.name.clone())
            .record(started.elapsed().as_secs_f64());
    }
}

/// The `outcome` label of a request's result.
fn outcome<T>(r: &Result<T, PushError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(PushError::Throttled { daily: true, .. }) => "quota_day",
        Err(PushError::Throttled { .. }) => "throttled",
        Err(PushError::Transient { .. }) => "transient",
        Err(PushError::TokenExpired) => "token_expired",
        Err(PushError::MembersRefused { .. }) => "members_refused",
        Err(PushError::TooLarge) => "too_large",
        Err(PushError::SessionEnded { .. }) => "session_ended",
        Err(PushError::Permanent { .. }) => "permanent",
    }
}

/// Records time spent waiting for the quota or a network's throttle.
fn record_wait(dest: &str, waited: Duration) {
    metrics::histogram!(metric_names::SYNC_RATE_LIMIT_WAIT, "destination" => dest.to_string())
        .record(waited.as_secs_f64());
}

/// Exponential backoff with full jitter (spreads the retries of many daemons).
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(1u64 << attempt.min(6)).min(MAX_BACKOFF);
    let ms = rand::rng().random_range(base.as_millis() as u64 / 2..=base.as_millis() as u64);
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_spreads_an_hourly_budget_evenly() {
        let l = limiter(3600);
        assert!(l.check().is_ok());
        // Burst 1: the second request of the same second must wait.
        assert!(l.check().is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= Duration::from_secs(2));
        assert!(backoff(20) <= MAX_BACKOFF);
        assert!(backoff(20) >= MAX_BACKOFF / 2);
    }
}
