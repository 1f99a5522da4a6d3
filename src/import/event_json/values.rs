//! The scalar field values of the proto3 JSON mapping, `None` for `null`. Each reads the way
//! prost-reflect's visitor for that kind does (`deserialize_any` for numbers, bools and enums),
//! with the same messages but one (an unknown enum name is quoted, see the parent module):
//! strings, booleans, 64-bit integers as numbers, decimal strings or integral floats, `uint32`,
//! the consent enum by name or number, and timestamps in strict RFC 3339.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};

use crate::proto::v1::ConsentStatus;

pub(super) fn string<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<String>, A::Error> {
    Ok(map.next_value::<Option<Str>>()?.map(|v| v.0))
}

pub(super) fn int64<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<i64>, A::Error> {
    Ok(map.next_value::<Option<I64>>()?.map(|v| v.0))
}

pub(super) fn uint32<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<u32>, A::Error> {
    Ok(map.next_value::<Option<U32>>()?.map(|v| v.0))
}

pub(super) fn boolean<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<bool>, A::Error> {
    Ok(map.next_value::<Option<Bool>>()?.map(|v| v.0))
}

pub(super) fn consent<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<i32>, A::Error> {
    Ok(map.next_value::<Option<Consent>>()?.map(|v| v.0))
}

pub(super) fn timestamp<'de, A: MapAccess<'de>>(
    map: &mut A,
) -> Result<Option<prost_types::Timestamp>, A::Error> {
    Ok(map.next_value::<Option<Ts>>()?.map(|v| v.0))
}

struct Str(String);

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_string<E: Error>(self, v: String) -> Result<String, E> {
                Ok(v)
            }
        }
        d.deserialize_string(V).map(Str)
    }
}

struct Bool(bool);

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = bool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: Error>(self, v: bool) -> Result<bool, E> {
                Ok(v)
            }
        }
        d.deserialize_any(V).map(Bool)
    }
}

/// An integral JSON float as the integer it is (the mapping allows `1.0` and `1e3`).
fn integral<E: Error>(v: f64, min: f64, max: f64) -> Result<f64, E> {
    if v.fract() != 0.0 {
        return Err(E::custom("expected integer value"));
    }
    if v < min || v > max {
        return Err(E::custom("float value out of range"));
    }
    Ok(v)
}

struct I64(i64);

impl<'de> Deserialize<'de> for I64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = i64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a 64-bit signed integer or decimal string")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<i64, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
                Ok(v)
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
                v.try_into().map_err(E::custom)
            }
            fn visit_f64<E: Error>(self, v: f64) -> Result<i64, E> {
                // Saturates at i64::MAX like prost-reflect (which accepts 2^63 as a float).
                Ok(integral::<E>(v, i64::MIN as f64, i64::MAX as f64)? as i64)
            }
        }
        d.deserialize_any(V).map(I64)
    }
}

struct U32(u32);

impl<'de> Deserialize<'de> for U32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = u32;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a 32-bit unsigned integer or decimal string")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<u32, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u32<E: Error>(self, v: u32) -> Result<u32, E> {
                Ok(v)
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<u32, E> {
                v.try_into().map_err(E::custom)
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<u32, E> {
                v.try_into().map_err(E::custom)
            }
            fn visit_f64<E: Error>(self, v: f64) -> Result<u32, E> {
                Ok(integral::<E>(v, u32::MIN as f64, u32::MAX as f64)? as u32)
            }
        }
        d.deserialize_any(V).map(U32)
    }
}

/// A `ConsentStatus` by name, or any 32-bit number (proto3 enums are open). An unknown name is
/// quoted with `"` (prost-reflect: `'`) so that the importer's redaction hides it.
struct Consent(i32);

impl<'de> Deserialize<'de> for Consent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = i32;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or integer")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<i32, E> {
                ConsentStatus::from_str_name(v)
                    .map(|s| s as i32)
                    .ok_or_else(|| E::custom(format!("unrecognized enum value {v:?}")))
            }
            fn visit_i32<E: Error>(self, v: i32) -> Result<i32, E> {
                Ok(v)
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<i32, E> {
                v.try_into().map_err(E::custom)
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<i32, E> {
                v.try_into().map_err(E::custom)
            }
        }
        d.deserialize_any(V).map(Consent)
    }
}

/// A `google.protobuf.Timestamp`: strict RFC 3339, parsed by prost-types, years 1..=9999.
struct Ts(prost_types::Timestamp);

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the mapping's range.
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = prost_types::Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a rfc3339 timestamp string")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<prost_types::Timestamp, E> {
                validate_strict_rfc3339(v).map_err(E::custom)?;
                let t: prost_types::Timestamp = v.parse().map_err(E::custom)?;
                if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&t.seconds) {
                    return Err(E::custom("timestamp out of range"));
                }
                Ok(t)
            }
        }
        d.deserialize_str(V).map(Ts)
    }
}

/// The shape check prost-reflect makes before prost-types parses a timestamp (from
/// prost-reflect 0.16, MIT OR Apache-2.0): upper-case `T` and `Z`, seconds always present,
/// an offset as `±hh:mm`. prost-types alone would also take `t`, `z`, a space or no seconds.
fn validate_strict_rfc3339(v: &str) -> Result<(), String> {
    use std::{ascii, iter::Peekable, str::Bytes};

    fn pop_digit(bytes: &mut Peekable<Bytes>) -> bool {
        bytes.next_if(u8::is_ascii_digit).is_some()
    }
    fn pop_digits(bytes: &mut Peekable<Bytes>, n: usize) -> bool {
        (0..n).all(|_| pop_digit(bytes))
    }
    fn pop_char(p: &mut Peekable<Bytes>, c: u8) -> bool {
        p.next_if_eq(&c).is_some()
    }
    fn fmt_next(p: &mut Peekable<Bytes>) -> String {
        match p.peek() {
            Some(&ch) => format!("'{}'", ascii::escape_default(ch)),
            None => "end of string".to_owned(),
        }
    }

    let mut v = v.bytes().peekable();
    if !(pop_digits(&mut v, 4)
        && pop_char(&mut v, b'-')
        && pop_digits(&mut v, 2)
        && pop_char(&mut v, b'-')
        && pop_digits(&mut v, 2))
    {
        return Err("invalid rfc3339 timestamp: invalid date".to_owned());
    }
    if !pop_char(&mut v, b'T') {
        return Err(format!(
            "invalid rfc3339 timestamp: expected 'T' but found {}",
            fmt_next(&mut v)
        ));
    }
    if !(pop_digits(&mut v, 2)
        && pop_char(&mut v, b':')
        && pop_digits(&mut v, 2)
        && pop_char(&mut v, b':')
        && pop_digits(&mut v, 2))
    {
        return Err("invalid rfc3339 timestamp: invalid time".to_owned());
    }
    if pop_char(&mut v, b'.') {
        if !pop_digit(&mut v) {
            return Err("invalid rfc3339 timestamp: empty fractional seconds".to_owned());
        }
        while pop_digit(&mut v) {}
    }
    if v.next_if(|&ch| ch == b'+' || ch == b'-').is_some() {
        if !(pop_digits(&mut v, 2) && pop_char(&mut v, b':') && pop_digits(&mut v, 2)) {
            return Err("invalid rfc3339 timestamp: invalid offset".to_owned());
        }
    } else if !pop_char(&mut v, b'Z') {
        return Err(format!(
            "invalid rfc3339 timestamp: expected 'Z', '+' or '-' but found {}",
            fmt_next(&mut v)
        ));
    }
    if v.peek().is_some() {
        return Err(format!(
            "invalid rfc3339 timestamp: expected end of string but found {}",
            fmt_next(&mut v)
        ));
    }
    Ok(())
}
