//! Reading Meta's answers (`adnet/meta.md`): the usage headers every answer carries (§5.4),
//! the invalid-entry samples of a `/users` answer (§2.4), and an audience's fields (§6). Pure
//! functions of what came back, so each is tested on its own.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::super::{ListInfo, PushError, Refused, Usage};
use super::{row, INVALID_ENTRY, LARGE_BODY_BYTES};
use crate::sync::member::RemoteMember;

/// A request that got no answer. A connection broken while a large body was being sent is
/// the network refusing its size (§1.1); anything else is worth a retry. No URL in the text.
pub(super) fn send_error(e: reqwest::Error, size: usize) -> PushError {
    let broken_while_sending =
        (e.is_body() || e.is_request()) && !e.is_connect() && !e.is_timeout();
    if broken_while_sending && size >= LARGE_BODY_BYTES {
        return PushError::TooLarge;
    }
    super::super::transport_error(e)
}

/// Whether an invalid-parameter message is about the request's size.
pub(super) fn names_size(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "too large",
        "too big",
        "too long",
        "too many",
        "request size",
        "payload size",
        "body size",
        "maximum",
        "exceed",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// A count Meta sends as a number or a numeric string (§2.4, §2.7).
pub(super) fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The refused rows of one answer: `invalid` entries in all, some named by the samples
/// (`invalid_entry_samples`, a map or an array of strings, §2.4). What a sample holds is not
/// documented, so a sample names a sent row when every SHA-256 value in it is one of the
/// row's values and it carries the row's email or phone (country and postal hashes are shared
/// by many rows) or all of the row's values. A sample's text without hashes is its reason.
pub(super) fn refused(members: &[RemoteMember], invalid: u64, samples: &Value) -> Refused {
    let entries: Vec<(Vec<String>, Option<String>)> = match samples {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let v = text(v);
                let hashes: Vec<String> = hex_runs(k).chain(hex_runs(&v)).collect();
                let reason = [v.as_str(), k.as_str()]
                    .into_iter()
                    .find(|t| !t.trim().is_empty() && hex_runs(t).next().is_none())
                    .map(reason_text);
                (hashes, reason)
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|v| (hex_runs(&text(v)).collect(), None))
            .collect(),
        _ => Vec::new(),
    };
    let mut out = Refused::default();
    if invalid == 0 && entries.is_empty() {
        return out;
    }
    let rows: Vec<[String; 6]> = members.iter().map(row).collect();
    let mut by_value: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        for v in r[..4].iter().filter(|v| !v.is_empty()) {
            by_value.entry(v.as_str()).or_default().push(i);
        }
    }
    let mut named = HashSet::new();
    for (hashes, reason) in &entries {
        let candidates = hashes
            .iter()
            .filter_map(|h| by_value.get(h.as_str()))
            .flatten();
        for &i in candidates {
            let values: HashSet<&str> = rows[i].iter().map(String::as_str).collect();
            let inside = hashes.iter().all(|h| values.contains(h.as_str()));
            let identifies = [&rows[i][0], &rows[i][1]]
                .iter()
                .any(|v| !v.is_empty() && hashes.contains(v));
            let whole = rows[i]
                .iter()
                .filter(|v| !v.is_empty())
                .all(|v| hashes.contains(v));
            if inside && (identifies || whole) {
                named.insert(i);
            }
        }
        *out.by_reason
            .entry(reason.clone().unwrap_or_else(|| INVALID_ENTRY.into()))
            .or_default() += 1;
    }
    let rest = invalid.saturating_sub(entries.len() as u64);
    if rest > 0 {
        *out.by_reason.entry(INVALID_ENTRY.into()).or_default() += rest;
    }
    out.indices = named.into_iter().collect();
    out.indices.sort_unstable();
    out
}

pub(super) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A reason as short, printable text.
pub(super) fn reason_text(t: &str) -> String {
    t.chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Every run of exactly 64 lowercase hex digits in `t`.
pub(super) fn hex_runs(t: &str) -> impl Iterator<Item = String> + '_ {
    t.split(|c: char| !matches!(c, '0'..='9' | 'a'..='f'))
        .filter(|run| run.len() == 64)
        .map(str::to_string)
}

/// A header's JSON value.
pub(super) fn header_json(headers: &HeaderMap, name: &str) -> Option<Value> {
    serde_json::from_str(headers.get(name)?.to_str().ok()?).ok()
}

pub(super) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The entries of `x-business-use-case-usage`: an object keyed by business-object id, each
/// an array of `{type, call_count, total_cputime, total_time,
/// estimated_time_to_regain_access}` (§5.4).
pub(super) fn buc_entries(headers: &HeaderMap) -> Vec<Value> {
    header_json(headers, "x-business-use-case-usage")
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            o.into_iter()
                .flat_map(|(_, entries)| match entries {
                    Value::Array(a) => a,
                    _ => Vec::new(),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn max_pct(v: &Value, fields: &[&str]) -> Option<f64> {
    fields
        .iter()
        .filter_map(|f| number(&v[*f]))
        .reduce(f64::max)
}

/// Budget use from the usage headers (§5.3–5.4): the highest percentage of the Custom
/// Audience business-use-case budget, the ad-account score and the app budget; the wait the
/// network names (`estimated_time_to_regain_access` in minutes, `reset_time_duration` in
/// seconds). `None` when the answer carries none of them.
pub(super) fn usage(headers: &HeaderMap) -> Option<Usage> {
    const PCTS: [&str; 3] = ["call_count", "total_cputime", "total_time"];
    let mut percents = Vec::new();
    let mut waits = Vec::new();
    let buc = buc_entries(headers);
    for e in buc
        .iter()
        .filter(|e| e["type"].as_str() == Some("custom_audience"))
    {
        percents.extend(max_pct(e, &PCTS));
        waits.extend(number(&e["estimated_time_to_regain_access"]).map(|m| m * 60.0));
    }
    let account = header_json(headers, "x-ad-account-usage");
    if let Some(a) = &account {
        percents.extend(number(&a["acc_id_util_pct"]));
        waits.extend(number(&a["reset_time_duration"]));
    }
    let app = header_json(headers, "x-app-usage");
    if let Some(a) = &app {
        percents.extend(max_pct(a, &PCTS));
    }
    if buc.is_empty() && account.is_none() && app.is_none() {
        return None;
    }
    let percent = percents.into_iter().fold(0.0, f64::max).clamp(0.0, 100.0);
    let regain = waits.into_iter().fold(0.0, f64::max);
    Some(Usage {
        percent: percent.ceil() as u8,
        regain: (regain > 0.0).then(|| Duration::from_secs_f64(regain.min(86_400.0))),
    })
}

/// How long a throttled answer asks us to wait (§5.4 backoff): the largest
/// `estimated_time_to_regain_access` of any business-use-case entry, or the ad account's
/// `reset_time_duration` when that budget is the one spent.
pub(super) fn throttle_wait(headers: &HeaderMap) -> Option<Duration> {
    let minutes = buc_entries(headers)
        .iter()
        .filter_map(|e| number(&e["estimated_time_to_regain_access"]))
        .fold(0.0, f64::max);
    let account = header_json(headers, "x-ad-account-usage")
        .filter(|a| number(&a["acc_id_util_pct"]).is_some_and(|p| p >= 100.0))
        .and_then(|a| number(&a["reset_time_duration"]))
        .unwrap_or(0.0);
    let secs = (minutes * 60.0).max(account).min(86_400.0);
    (secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

/// `operation_status`/`delivery_status` (`{code, description}`, §6) as `"<code> <description>"`.
pub(super) fn status_text(v: &Value) -> Option<(i64, String)> {
    let code = v["code"].as_i64()?;
    let description = v["description"].as_str().unwrap_or("").trim();
    Some((code, format!("{code} {description}").trim().to_string()))
}

/// A list's size range and processing status from a read of the audience (§6).
pub(super) fn list_info(v: &Value) -> ListInfo {
    let bound = |f: &str| v[f].as_i64().and_then(|n| u64::try_from(n).ok());
    let mut info = ListInfo {
        size_lower: bound("approximate_count_lower_bound"),
        size_upper: bound("approximate_count_upper_bound"),
        ..ListInfo::default()
    };
    if let Some((code, text)) = status_text(&v["operation_status"]) {
        match code {
            // Uploads get 100/1713230 until the flag is resolved.
            471 => {
                info.blocked = Some(format!(
                    "{text}: flagged for integrity; appeal in Audience Manager"
                ))
            }
            414 => info.replace_in_progress = true,
            415 => info.replace_failed = Some(text.clone()),
            // 411 low match rate, 412 many invalid entries in the last upload, and the rest
            // are kept as text.
            _ => {}
        }
        info.operation_status = Some(text);
    }
    info
}
