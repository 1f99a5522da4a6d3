//! Parsing shared by the CSV formats: timestamps, money in minor units (never through f64),
//! deterministic event ids and customer ids that carry no raw identifier.

use sha2::{Digest, Sha256};

use crate::proto::v1;

/// `"imp:"` + hex SHA-256 of the parts, NUL-separated: the same source fact always gets the
/// same id, so the daemon applies it once however often it is imported.
pub(crate) fn event_id(parts: &[&str]) -> String {
    format!("imp:{}", hex::encode(digest(parts)))
}

/// The `order_placed` event of an exported order; the id names the source row's order.
pub(crate) fn order_event(
    id_parts: [&str; 3],
    order_id: String,
    customer_id: String,
    total: v1::Money,
    item_count: u32,
    at: prost_types::Timestamp,
) -> v1::Event {
    v1::Event {
        event_id: event_id(&[id_parts[0], id_parts[1], id_parts[2], "placed"]),
        occurred_at: Some(at),
        kind: Some(v1::event::Kind::OrderPlaced(v1::OrderPlaced {
            order_id,
            customer_id,
            total: Some(total),
            item_count,
        })),
    }
}

/// The refund event of an exported order: `refunded` (minor units, > 0) of `total`; refunding
/// it all is a full refund. The id names the amount, so a changed refund is a new fact.
pub(crate) fn refund_event(
    id_parts: [&str; 3],
    order_id: String,
    refunded: i64,
    total_minor: i64,
    at: prost_types::Timestamp,
) -> v1::Event {
    let full = refunded >= total_minor;
    let amount = refunded.to_string();
    v1::Event {
        event_id: event_id(&[id_parts[0], id_parts[1], id_parts[2], "refund", &amount]),
        occurred_at: Some(at),
        kind: Some(v1::event::Kind::OrderRefunded(v1::OrderRefunded {
            order_id,
            amount_minor: if full { 0 } else { refunded },
            full,
        })),
    }
}

fn digest(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0u8]);
        }
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

/// A stable customer id from an email or phone: `prefix` + `e:`/`p:` + 32 hex digits of the
/// SHA-256 of the trimmed, lowercased value. The customer id is stored in clear by the daemon,
/// so it must not be the raw identifier.
pub(crate) fn customer_id_from(
    prefix: &str,
    email: Option<&str>,
    phone: Option<&str>,
) -> Option<String> {
    if let Some(email) = email {
        let norm = email.trim().to_lowercase();
        return Some(format!(
            "{prefix}e:{}",
            &hex::encode(digest(&[&norm]))[..32]
        ));
    }
    let phone = phone?;
    let norm: String = phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    if norm.is_empty() {
        return None;
    }
    Some(format!(
        "{prefix}p:{}",
        &hex::encode(digest(&[&norm]))[..32]
    ))
}

/// The cell, trimmed, or None when empty.
pub(crate) fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// Parses RFC 3339 (`2024-03-05T14:22:01Z`, `...+01:00`), Shopify's `2024-03-05 14:22:01 -0500`,
/// `2024-03-05 14:22:01` (UTC) and a bare date `2024-03-05` (midnight UTC).
pub(crate) fn parse_time(s: &str) -> Result<prost_types::Timestamp, &'static str> {
    const BAD: &str = "not a date-time (RFC 3339 or \"YYYY-MM-DD HH:MM:SS -0500\")";
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, &'static str> {
        let part = s.get(r).ok_or(BAD)?;
        if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(BAD);
        }
        part.parse().map_err(|_| BAD)
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(BAD);
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(BAD);
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    let mut nanos = 0i32;
    let mut rest = &s[10..];
    if !rest.is_empty() {
        let sep = rest.as_bytes()[0];
        if sep != b'T' && sep != b't' && sep != b' ' {
            return Err(BAD);
        }
        let t = &rest[1..];
        let tb = t.as_bytes();
        if tb.len() < 8 || tb[2] != b':' || tb[5] != b':' {
            return Err(BAD);
        }
        let field = |r: std::ops::Range<usize>| -> Result<i64, &'static str> {
            let part = t.get(r).ok_or(BAD)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(BAD);
            }
            part.parse().map_err(|_| BAD)
        };
        let (h, m, sec) = (field(0..2)?, field(3..5)?, field(6..8)?);
        if h > 23 || m > 59 || sec > 60 {
            return Err(BAD);
        }
        secs += h * 3600 + m * 60 + sec;
        rest = &t[8..];
        if let Some(frac) = rest.strip_prefix('.') {
            let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                return Err(BAD);
            }
            let mut padded = digits.clone();
            padded.truncate(9);
            while padded.len() < 9 {
                padded.push('0');
            }
            nanos = padded.parse().map_err(|_| BAD)?;
            rest = &frac[digits.len()..];
        }
        let zone = rest.trim_start();
        let offset = match zone {
            "" | "Z" | "z" | "UTC" => 0,
            z => {
                let (sign, hm) = match z.as_bytes()[0] {
                    b'+' => (1, &z[1..]),
                    b'-' => (-1, &z[1..]),
                    _ => return Err(BAD),
                };
                let hm = hm.replace(':', "");
                if hm.len() != 4 || !hm.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(BAD);
                }
                let oh: i64 = hm[..2].parse().map_err(|_| BAD)?;
                let om: i64 = hm[2..].parse().map_err(|_| BAD)?;
                sign * (oh * 3600 + om * 60)
            }
        };
        secs -= offset;
    }
    Ok(prost_types::Timestamp {
        seconds: secs,
        nanos,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A decimal amount like "12.34" in the currency's minor units, exactly. Rejects negative
/// values, exponents, and more decimals than the currency has (unless they are zeros).
pub(crate) fn parse_money(s: &str, currency: &str) -> Result<v1::Money, &'static str> {
    let code = currency.trim().to_ascii_uppercase();
    let (_, exp) = crate::money::parse_code(&code).map_err(|_| "unknown ISO 4217 currency")?;
    let minor = parse_minor(s, exp)?;
    Ok(v1::Money {
        amount_minor: minor,
        currency: code,
    })
}

/// The digits of a non-negative decimal scaled to `exp` decimals.
pub(crate) fn parse_minor(s: &str, exp: u32) -> Result<i64, &'static str> {
    const BAD: &str = "not a non-negative decimal amount";
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(BAD);
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(BAD);
    }
    let exp = exp as usize;
    let (kept, extra) = frac.split_at(frac.len().min(exp));
    if extra.bytes().any(|b| b != b'0') {
        return Err("more decimals than the currency has");
    }
    let mut digits = String::with_capacity(int.len() + exp);
    digits.push_str(int);
    digits.push_str(kept);
    for _ in kept.len()..exp {
        digits.push('0');
    }
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    digits.parse::<i64>().map_err(|_| "amount too large")
}

/// Shopify-style booleans: yes/true/1 and no/false/0.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "y" => Some(true),
        "no" | "false" | "0" | "n" => Some(false),
        _ => None,
    }
}

/// GRANTED or DENIED for both consent purposes.
pub(crate) fn consent(granted: bool) -> i32 {
    if granted {
        v1::ConsentStatus::Granted as i32
    } else {
        v1::ConsentStatus::Denied as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = parse_time("2024-03-05 14:22:01 -0500").expect("shopify");
        assert_eq!(t.seconds, 1_709_666_521);
        assert_eq!(
            parse_time("2024-03-05T19:22:01Z").expect("rfc").seconds,
            t.seconds
        );
        assert_eq!(
            parse_time("2024-03-05T20:22:01.5+01:00").expect("offset"),
            prost_types::Timestamp {
                seconds: t.seconds,
                nanos: 500_000_000
            }
        );
        assert_eq!(parse_time("1970-01-01").expect("date").seconds, 0);
        assert!(parse_time("05/03/2024").is_err());
        assert!(parse_time("2024-13-01").is_err());
    }

    #[test]
    fn money() {
        assert_eq!(parse_minor("12.34", 2), Ok(1234));
        assert_eq!(parse_minor("12", 2), Ok(1200));
        assert_eq!(parse_minor("12.5", 2), Ok(1250));
        assert_eq!(parse_minor("0.10", 2), Ok(10));
        assert_eq!(parse_minor("1200", 0), Ok(1200));
        assert_eq!(parse_minor("1200.00", 0), Ok(1200));
        assert!(parse_minor("1200.5", 0).is_err());
        assert!(parse_minor("-1", 2).is_err());
        assert!(parse_minor("1e3", 2).is_err());
        assert!(parse_minor("", 2).is_err());
        assert_eq!(parse_money("5", "jpy").map(|m| m.amount_minor), Ok(5));
        assert!(parse_money("5", "XXX1").is_err());
    }

    #[test]
    fn ids_are_stable_and_carry_no_pii() {
        let a = customer_id_from("shopify:", Some(" Mary@Example.com "), None);
        let b = customer_id_from("shopify:", Some("mary@example.com"), Some("+1"));
        assert_eq!(a, b);
        let a = a.unwrap_or_default();
        assert!(!a.contains("mary") && a.len() < 128);
        assert_eq!(event_id(&["a", "b"]), event_id(&["a", "b"]));
        assert_ne!(event_id(&["a", "b"]), event_id(&["ab"]));
    }
}
