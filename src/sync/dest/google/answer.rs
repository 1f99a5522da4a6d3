//! Reading the Data Manager API's answers: an error's HTTP status and body as a [`PushError`]
//! (per-day quotas, retry hints, the members a fast-fail 400 names), and a request status's
//! refused rows per reason.

use std::time::Duration;

use serde_json::Value;

use super::GoogleDestination;
use crate::sync::dest::{PushError, Refused};

impl GoogleDestination {
    /// An error answer as a [`PushError`]. A 401 also forgets the cached token, so the next
    /// call fetches a new one.
    pub(super) fn classify(
        &self,
        status: u16,
        body: &Value,
        retry_after: Option<Duration>,
    ) -> PushError {
        let err = &body["error"];
        let message = err["message"].as_str().unwrap_or("").to_string();
        let canonical = err["status"].as_str().unwrap_or("").to_string();
        let reason = format!("HTTP {status} {canonical}: {message}");
        match status {
            401 => {
                *self.token.lock() = None;
                PushError::TokenExpired
            }
            429 => match quota_limit(err) {
                // A per-day quota: Google resets it at midnight Pacific time (§3, limits page:
                // "pause until the daily quota resets"; `ErrorInfo.metadata.quota_limit`).
                Some(limit) if limit.contains("PerDay") => PushError::Throttled {
                    reason,
                    wait: Some(until_pacific_midnight(jiff::Timestamp::now())),
                    daily: true,
                },
                _ => PushError::Throttled {
                    reason,
                    wait: retry_after.or_else(|| retry_info(err)),
                    daily: false,
                },
            },
            // A removeAsOfTime Google calls future: our clock is ahead of its own; the same
            // time is good once Google's clock passes it.
            400 if err.to_string().contains("INVALID_REMOVE_AS_OF_TIME") => {
                PushError::Transient { reason }
            }
            400 => {
                let indices = refused_members(err);
                if !indices.is_empty() {
                    PushError::MembersRefused { indices, reason }
                } else {
                    let advice = if message.to_ascii_lowercase().contains("terms") {
                        "accept the Customer Match terms of service in the Google Ads account"
                    } else {
                        "fix the destination configuration (account id, list id) and resync"
                    };
                    PushError::Permanent {
                        reason,
                        advice: advice.into(),
                    }
                }
            }
            403 => PushError::Permanent {
                reason,
                advice: "give the credentials' Google account access to the operating account (or set login_account_id), and enable the Data Manager API in the Cloud project".into(),
            },
            404 => PushError::Permanent {
                reason,
                advice: "the user list id does not exist in the operating account: fix list_id or let the daemon create the list".into(),
            },
            413 => PushError::TooLarge,
            // 409 ABORTED is one of the codes the errors guide says to retry (§6 Retryability).
            408 | 409 | 500..=599 => PushError::Transient { reason },
            _ => PushError::Permanent {
                reason,
                advice: "unexpected answer from the Data Manager API; see the log".into(),
            },
        }
    }
}

/// `ErrorInfo.metadata.quota_limit` of a 429, e.g. `IngestionMutateRequestsPerDayPerProject`.
fn quota_limit(err: &Value) -> Option<&str> {
    err["details"]
        .as_array()?
        .iter()
        .find_map(|d| d["metadata"]["quota_limit"].as_str())
}

/// How long until the next midnight in `America/Los_Angeles`, when Google's per-day quotas
/// reset.
fn until_pacific_midnight(now: jiff::Timestamp) -> Duration {
    let fallback = Duration::from_secs(3600);
    let Ok(tz) = jiff::tz::TimeZone::get("America/Los_Angeles") else {
        return fallback;
    };
    let local = now.to_zoned(tz);
    let next = local
        .date()
        .tomorrow()
        .and_then(|d| d.to_zoned(local.time_zone().clone()));
    match next {
        Ok(midnight) => {
            let secs = midnight.timestamp().as_second() - now.as_second();
            Duration::from_secs(secs.max(1) as u64)
        }
        Err(_) => fallback,
    }
}

/// Refused rows per reason from `errorInfo.errorCounts` (`recordCount` is an int64 string).
pub(super) fn error_counts(status: &Value) -> Refused {
    let mut refused = Refused::default();
    for c in status["errorInfo"]["errorCounts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let n = match &c["recordCount"] {
            Value::String(s) => s.parse().unwrap_or(0),
            v => v.as_u64().unwrap_or(0),
        };
        let reason = c["reason"]
            .as_str()
            .unwrap_or("PROCESSING_ERROR_REASON_UNSPECIFIED");
        if n > 0 {
            *refused.by_reason.entry(reason.to_string()).or_default() += n;
        }
    }
    refused
}

/// `google.rpc.RetryInfo.retryDelay` ("12s"), when the error carries one.
fn retry_info(err: &Value) -> Option<Duration> {
    err["details"].as_array()?.iter().find_map(|d| {
        let delay = d["retryDelay"].as_str()?;
        let secs: f64 = delay.trim_end_matches('s').parse().ok()?;
        Some(Duration::from_secs_f64(secs.max(0.0)))
    })
}

/// Member indices named by `fieldViolations` (`audience_members[3]...`).
fn refused_members(err: &Value) -> Vec<usize> {
    let mut out: Vec<usize> = err["details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["fieldViolations"].as_array().into_iter().flatten())
        .filter_map(|v| {
            // "audience_members[3]", "audience_members.audience_members[3].user_data…" or
            // camelCase: the index follows the last `audience_members[` / `audienceMembers[`.
            let field = v["field"].as_str()?;
            let at = field
                .rfind("audience_members[")
                .map(|i| i + "audience_members[".len())
                .or_else(|| {
                    field
                        .rfind("audienceMembers[")
                        .map(|i| i + "audienceMembers[".len())
                })?;
            field[at..].split(']').next()?.parse().ok()
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn daily_quotas_reset_at_pacific_midnight_across_daylight_saving() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("time");
        // 23:00 PST (UTC-8) on 2026-03-07: one hour to midnight.
        assert_eq!(
            until_pacific_midnight(at("2026-03-08T07:00:00Z")),
            Duration::from_secs(3600)
        );
        // 2026-03-08 is 23 hours long (DST starts): from 00:00 PST to the next midnight PDT.
        assert_eq!(
            until_pacific_midnight(at("2026-03-08T08:00:00Z")),
            Duration::from_secs(23 * 3600)
        );
        // 2026-11-01 is 25 hours long (DST ends).
        assert_eq!(
            until_pacific_midnight(at("2026-11-01T07:00:00Z")),
            Duration::from_secs(25 * 3600)
        );
    }

    #[test]
    fn partial_success_counts_and_quota_limits_are_read() {
        let status = json!({"requestStatus": "PARTIAL_SUCCESS", "errorInfo": {"errorCounts": [
            {"recordCount": "3", "reason": "PROCESSING_ERROR_REASON_INVALID_FORMAT"},
            {"recordCount": "1", "reason": "PROCESSING_ERROR_REASON_NO_CONSENT"},
        ]}});
        let r = error_counts(&status);
        assert_eq!(r.total(), 4);
        assert_eq!(r.by_reason["PROCESSING_ERROR_REASON_INVALID_FORMAT"], 3);
        let err = json!({"details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "metadata": {"quota_limit": "IngestionMutateRequestsPerDayPerProject"}}]});
        assert_eq!(
            quota_limit(&err),
            Some("IngestionMutateRequestsPerDayPerProject")
        );
    }

    #[test]
    fn refused_member_indices_from_every_documented_field_path() {
        let err = json!({"details": [{"fieldViolations": [
            {"field": "audience_members.audience_members[3].user_data.user_identifiers[1]"},
            {"field": "audience_members[7]"},
            {"field": "audienceMembers[3]"},
            {"field": "destinations[0]"},
        ]}]});
        assert_eq!(refused_members(&err), vec![3, 7]);
    }
}
