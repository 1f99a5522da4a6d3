//! The common phone shapes read to E.164 the way phonenumber 0.3's `parse` + `is_valid` +
//! `format` read them, on precompiled metadata (`phone_patterns`), without the crate's
//! per-call costs.
//!
//! Only inputs of ASCII digits (at least 3), spaces, `-`, `.`, `(`, `)`, `/` and one leading
//! `+` are decided here; anything else (letters, extensions, `tel:`, other scripts, doubled
//! pluses), and the few cases below that would need more of the crate's logic, return
//! `Fast::Defer` and go to the crate itself. Each step names the crate function it replays
//! (phonenumber 0.3.10: `parser::parse_with`, `parser::helper::{country_code,
//! international_prefix, national_number}`, `validator::{source_for, is_valid_with, length,
//! number_type}`); `phone`'s tests check the equivalence on generated numbers of every region.

use std::borrow::Cow;

use phonenumber::country::Id as RegionId;

use super::phone_patterns::{Code, Patterns, Table, TABLE};

/// What the fast path decided about one phone.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fast {
    /// Valid: its E.164 form, with `+`.
    Valid(String),
    /// The crate would reject it (parse error or not valid).
    Invalid,
    /// Not a shape decided here: ask the crate.
    Defer,
}

/// Why reading stopped early.
enum Stop {
    Invalid,
    Defer,
}

/// Longest input the fast path reads (callers cap raw phones at 64 bytes too).
const MAX_INPUT: usize = 64;
/// The crate's `MIN_LENGTH_FOR_NSN` and `MAX_LENGTH_FOR_NSN`.
const MIN_NSN: usize = 2;
const MAX_NSN: usize = 17;

/// `raw`: trimmed. `region`: `None` for a number written with `+` (read without a region, as
/// `phone::e164` does), else the region to read a national number with.
pub(crate) fn e164(raw: &str, region: Option<RegionId>) -> Fast {
    let mut buf = [0u8; MAX_INPUT];
    let result = digits_of(raw, &mut buf).and_then(|digits| match region {
        None if raw.starts_with('+') => with_plus(&TABLE, raw, digits),
        Some(region) if !raw.starts_with('+') => national(&TABLE, region, digits),
        _ => Err(Stop::Defer),
    });
    match result {
        Ok(e164) => Fast::Valid(e164),
        Err(Stop::Invalid) => Fast::Invalid,
        Err(Stop::Defer) => Fast::Defer,
    }
}

/// The digits of an input in the decided shape. On it the crate's front end reduces to this:
/// `extract` only drops leading and trailing punctuation (no `x`, so no second number or
/// extension), `is_viable` holds with 3 or more digits, and `normalize` keeps the digits.
fn digits_of<'b>(raw: &str, buf: &'b mut [u8; MAX_INPUT]) -> Result<&'b str, Stop> {
    if raw.len() > MAX_INPUT {
        return Err(Stop::Defer);
    }
    let mut n = 0;
    for (i, b) in raw.bytes().enumerate() {
        match b {
            b'0'..=b'9' => {
                buf[n] = b;
                n += 1;
            }
            b' ' | b'-' | b'.' | b'(' | b')' | b'/' => {}
            b'+' if i == 0 => {}
            _ => return Err(Stop::Defer),
        }
    }
    if n < 3 {
        return Err(Stop::Defer);
    }
    std::str::from_utf8(&buf[..n]).map_err(|_| Stop::Defer)
}

/// A number written with `+`, read without a region.
fn with_plus(table: &Table, raw: &str, digits: &str) -> Result<String, Stop> {
    let (code, national) = match rfc3966_code(table, raw, digits)? {
        Some(split) => split,
        None => leading_code(table, digits)?,
    };
    // `parse_with`: no region given, so the metadata comes from the number (leading zeros
    // ignored), then the national prefix is stripped with it.
    let key = national.trim_start_matches('0');
    let source = source_for(table, code, key)?;
    let national = match source {
        Some(found) => strip_national_prefix(table, found.region, national)?,
        None => Cow::Borrowed(national),
    };
    check_national(&national)?;
    // `is_valid_with` asks `source_for` again, on the final national number; the answer is
    // the same when the string is.
    let source = if key == national {
        source
    } else {
        source_for(table, code, &national)?
    };
    finish(table, code, &national, source)
}

/// A number written without `+`, read with `region` as the crate's default country.
fn national(table: &Table, region: RegionId, digits: &str) -> Result<String, Stop> {
    let index = table.by_id(region.as_ref()).ok_or(Stop::Defer)?;
    let patterns = table.patterns(index).ok_or(Stop::Defer)?;
    let meta = table.region(index).meta;
    // `international_prefix`: the region's international dialling prefix at the start, not
    // followed by a 0, is dropped and the country code read after it.
    let after_idd = patterns
        .international_prefix_end(digits)
        .map(|end| &digits[end..])
        .filter(|rest| !rest.starts_with('0'));
    let (code, national) = match after_idd {
        Some(rest) => leading_code(table, rest)?,
        None => {
            // `country_code`, default source: a leading country code is dropped when the
            // whole does not look like a national number of the region.
            let code = meta.country_code();
            match strip_code(digits, code) {
                Some(rest)
                    if !patterns.general_match(digits) || !length(meta, digits).is_possible() =>
                {
                    (code, rest)
                }
                _ => (code, digits),
            }
        }
    };
    // `parse_with`: a region was given, so its metadata strips the national prefix.
    let national = strip_national_prefix(table, index, national)?;
    check_national(&national)?;
    if code != meta.country_code() {
        // Dialled abroad with an international prefix: `phone::e164` re-reads these.
        return Err(Stop::Defer);
    }
    let source = source_for(table, code, &national)?;
    finish(table, code, &national, source)
}

/// The RFC 3966 branch of the crate's parser, which runs first: on an input with `+`, no
/// space, a `-`, `.`, `(` or `)` somewhere after the character following the `+`, and no `/`
/// after that separator, the digits before the separator are taken as the country code as
/// written. `None`: the natural-language branch applies.
fn rfc3966_code<'d>(
    table: &Table,
    raw: &str,
    digits: &'d str,
) -> Result<Option<(u16, &'d str)>, Stop> {
    let Some(rest) = raw.strip_prefix('+') else {
        return Ok(None);
    };
    if raw.contains(' ') {
        return Ok(None);
    }
    let Some(sep) = rest.find(['-', '.', '(', ')']) else {
        return Ok(None);
    };
    if sep == 0 || rest[sep..].contains('/') {
        return Ok(None);
    }
    let prefix = &rest[..sep];
    let national = &digits[prefix.len().min(digits.len())..];
    // A `/` or a leading 0 in the written code, a code longer than any, or 2 digits or fewer
    // after it (`is_viable` and the length check differ there): left to the crate.
    if prefix.contains('/') || prefix.starts_with('0') || prefix.len() > 3 || national.len() < 3 {
        return Err(Stop::Defer);
    }
    let code: u16 = prefix.parse().map_err(|_| Stop::Defer)?;
    match table.by_code(code) {
        Code::Unknown => Err(Stop::Invalid),
        _ => Ok(Some((code, national))),
    }
}

/// `country_code`, plus or IDD source: the shortest known calling code at the start.
fn leading_code<'d>(table: &Table, digits: &'d str) -> Result<(u16, &'d str), Stop> {
    if digits.len() <= MIN_NSN || digits.starts_with('0') {
        return Err(Stop::Invalid);
    }
    for len in 1..=3 {
        let code: u16 = digits[..len].parse().map_err(|_| Stop::Defer)?;
        if !matches!(table.by_code(code), Code::Unknown) {
            return Ok((code, &digits[len..]));
        }
    }
    Err(Stop::Invalid)
}

/// A region `source_for` chose, and whether choosing it already showed the string valid.
#[derive(Clone, Copy)]
struct Found {
    region: usize,
    typed: bool,
}

/// `validator::source_for`: the calling code's only region, else the first whose leading
/// digits match or, without such a pattern, for which the number has a type.
fn source_for(table: &Table, code: u16, national: &str) -> Result<Option<Found>, Stop> {
    let regions = match table.by_code(code) {
        Code::Unknown => return Ok(None),
        Code::Deferred => return Err(Stop::Defer),
        Code::Regions(regions) => regions,
    };
    if let [only] = regions[..] {
        let found = table.region(only).usable_id.then_some(Found {
            region: only,
            typed: false,
        });
        return Ok(found);
    }
    for &region in regions {
        let patterns = table.patterns(region).ok_or(Stop::Defer)?;
        match patterns.leading_digits_match(national) {
            Some(true) => {
                return Ok(Some(Found {
                    region,
                    typed: false,
                }))
            }
            Some(false) => {}
            None => {
                if patterns.is_typed(national) {
                    return Ok(Some(Found {
                        region,
                        typed: true,
                    }));
                }
            }
        }
    }
    Ok(None)
}

/// `helper::national_number`, then `parse_with`'s second strip of the national prefix, kept
/// only if the result is not too short for the region.
fn strip_national_prefix<'n>(
    table: &Table,
    region: usize,
    national: &'n str,
) -> Result<Cow<'n, str>, Stop> {
    let patterns = table.patterns(region).ok_or(Stop::Defer)?;
    let meta = table.region(region).meta;
    let mut potential = national_number(patterns, meta, national)?;
    if let Some(prefix) = meta.national_prefix() {
        if let Some(rest) = potential.strip_prefix(prefix) {
            potential = Cow::Owned(rest.to_owned());
        }
    }
    if length(meta, &potential) == Length::TooShort {
        Ok(Cow::Borrowed(national))
    } else {
        Ok(potential)
    }
}

/// `helper::national_number`: the national prefix for parsing (and carrier code) removed, or
/// rewritten by the transform rule, unless that stops a matching number from matching.
fn national_number<'n>(
    patterns: &Patterns,
    meta: &phonenumber::Metadata,
    national: &'n str,
) -> Result<Cow<'n, str>, Stop> {
    let Some(parsing) = patterns.national_prefix_for_parsing() else {
        return Ok(match meta.national_prefix() {
            Some(prefix) => Cow::Borrowed(national.strip_prefix(prefix).unwrap_or(national)),
            None => Cow::Borrowed(national),
        });
    };
    let Some(m) = parsing.find(national) else {
        return Ok(Cow::Borrowed(national));
    };
    if m.start() != 0 {
        return Ok(Cow::Borrowed(national));
    }
    let viable = patterns.general_match(national);
    let Some(captures) = parsing.captures(national) else {
        return Err(Stop::Defer);
    };
    let first = captures.get(1);
    let last = captures.get(captures.len() - 1);
    match (meta.national_prefix_transform_rule(), last) {
        (Some(transform), Some(_)) => {
            // The crate unwraps the first group here (its carrier code).
            if first.is_none() {
                return Err(Stop::Defer);
            }
            let transformed = parsing.replace(national, transform).into_owned();
            if viable && !patterns.general_match(&transformed) {
                return Ok(Cow::Borrowed(national));
            }
            Ok(Cow::Owned(transformed))
        }
        // The crate's guard here re-checks `national[start..]` with start 0, i.e. the same
        // string, so it never keeps the prefix.
        _ => Ok(Cow::Borrowed(&national[m.end()..])),
    }
}

/// `parse_with`'s final checks and `NationalNumber::from_str`: 2 to 17 digits, not all zeros,
/// and the value after leading zeros below 2^56.
fn check_national(national: &str) -> Result<(), Stop> {
    if !(MIN_NSN..=MAX_NSN).contains(&national.len()) {
        return Err(Stop::Invalid);
    }
    let value: u64 = national
        .trim_start_matches('0')
        .parse()
        .map_err(|_| Stop::Invalid)?;
    if value >= 1 << 56 {
        return Err(Stop::Invalid);
    }
    Ok(())
}

/// `is_valid_with` given `source_for`'s answer, then the E.164 form (`+`, code, national
/// number with its leading zeros: `NationalNumber`'s display is the string it was read from).
fn finish(table: &Table, code: u16, national: &str, source: Option<Found>) -> Result<String, Stop> {
    let found = source.ok_or(Stop::Invalid)?;
    let valid = found.typed || {
        let patterns = table.patterns(found.region).ok_or(Stop::Defer)?;
        patterns.is_typed(national)
    };
    if !valid {
        return Err(Stop::Invalid);
    }
    let mut e164 = String::with_capacity(4 + national.len());
    e164.push('+');
    e164.push_str(code_digits(code, &mut [0; 5]));
    e164.push_str(national);
    Ok(e164)
}

/// `digits` after a leading `code` (as the crate's `starts_with(&code.to_string())`).
fn strip_code(digits: &str, code: u16) -> Option<&str> {
    digits.strip_prefix(code_digits(code, &mut [0; 5]))
}

/// The decimal digits of `code`, without allocating.
fn code_digits(code: u16, buf: &mut [u8; 5]) -> &str {
    let mut at = buf.len();
    let mut rest = code;
    loop {
        at -= 1;
        // A digit 0-9, so the cast is exact.
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).unwrap_or_default()
}

/// `validator::Validation`, as far as parsing uses it.
#[derive(Debug, PartialEq, Eq)]
enum Length {
    Possible,
    LocalOnly,
    TooShort,
    TooLong,
    Invalid,
}

impl Length {
    fn is_possible(&self) -> bool {
        matches!(self, Length::Possible | Length::LocalOnly)
    }
}

/// `validator::length` for `Type::Unknown`, i.e. the general descriptor's lengths.
fn length(meta: &phonenumber::Metadata, national: &str) -> Length {
    let general = meta.descriptors().general();
    let possible = general.possible_length();
    let local = general.possible_local_length();
    let (Some(&min), Some(&max), Ok(len)) = (
        possible.first(),
        possible.last(),
        u16::try_from(national.len()),
    ) else {
        return Length::Invalid;
    };
    if local.contains(&len) {
        Length::LocalOnly
    } else if len == min {
        Length::Possible
    } else if len < min {
        Length::TooShort
    } else if len > max {
        Length::TooLong
    } else if possible.contains(&len) {
        Length::Possible
    } else {
        Length::Invalid
    }
}
