//! One raw phone to E.164 as libphonenumber reads it: `parse(raw, region)`, then
//! `is_valid_number`, then the E.164 format.
//!
//! The steps are libphonenumber's (its Python port `phonenumbers`, `phonenumberutil.py`, names
//! each function replayed here), run on the metadata of `phone_patterns`. Both directions of a
//! disagreement cost something: a valid number refused is a lost match, an invalid one accepted
//! may hash to someone else. `tests/phone_differential.rs` holds this to `phonenumbers` itself
//! on generated numbers of every region.
//!
//! The text is read in two steps: [`read`] (in `phone_text`) turns the input into "written with
//! a `+`?" and its digits (libphonenumber's extraction, viability check, extension stripping
//! and normalization), then [`parse`] here finds the country code and the national number in
//! them, and [`is_valid`] checks the result against the region's patterns.

use std::borrow::Cow;

use super::identity::PhoneFault;
use super::phone_patterns::{Length, Patterns, MAX_NSN, TABLE};
use super::phone_text::{read, Buf, Written, MIN_NSN};

/// A region numbers are read in: an index into [`TABLE`] of a geographic region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Region(usize);

impl Region {
    /// The region with this upper-case id, if the metadata has it ("001" is not a region).
    pub(crate) fn by_id(id: &str) -> Option<Self> {
        TABLE.by_id(id).map(Region)
    }

    /// Its upper-case id.
    pub(crate) fn id(self) -> &'static str {
        TABLE.region(self.0).meta.id()
    }
}

/// E.164 with `+`, or why not. `region`: what a number written without its country code is
/// read in; `None` when no region is known, so that only numbers carrying a country code
/// (`+44 …`) can be read.
pub(crate) fn e164(raw: &str, region: Option<Region>) -> Result<String, PhoneFault> {
    let mut buf = Buf::new();
    let written = read(raw, region.is_some(), &mut buf)?;
    let (code, national) = parse(&written, region.map(|r| r.0))?;
    if !is_valid(code, &national) {
        return Err(PhoneFault::NotValid);
    }
    let mut out = String::with_capacity(4 + national.len());
    out.push('+');
    out.push_str(code_digits(code, &mut [0; 5]));
    out.push_str(&national);
    Ok(out)
}

/// The rest of libphonenumber's `parse`: the country code (`_maybe_extract_country_code`,
/// retried without the pluses when they are not followed by a known code), the national
/// number with its national prefix stripped when what is left is a possible length, and
/// the final length checks. `region`: a [`TABLE`] index.
fn parse<'b>(
    written: &Written<'b>,
    region: Option<usize>,
) -> Result<(u16, Cow<'b, str>), PhoneFault> {
    let digits = written.digits;
    let (code, national) = match extract_country_code(written.plus, digits, region) {
        Err(PhoneFault::CountryCode) if written.plus => {
            let (code, national) = extract_country_code(false, digits, region)?;
            if code == 0 {
                return Err(PhoneFault::CountryCode);
            }
            (code, national)
        }
        other => other?,
    };
    // The metadata of the number's country (its main region), else the region's.
    let (code, mut national, metadata) = if code != 0 {
        (code, national, TABLE.by_code(code).first().copied())
    } else {
        let region = region.ok_or(PhoneFault::CountryCode)?;
        (
            TABLE.region(region).meta.country_code(),
            Cow::Borrowed(digits),
            Some(region),
        )
    };
    if national.len() < MIN_NSN {
        return Err(PhoneFault::TooShort);
    }
    if let Some(patterns) = metadata.and_then(|m| TABLE.patterns(m)) {
        let kept = |potential: &str| {
            !matches!(
                patterns.length(potential),
                Length::TooShort | Length::LocalOnly | Length::Invalid
            )
        };
        national = match national {
            Cow::Borrowed(n) => {
                let potential = strip_national_prefix(n, patterns);
                if kept(&potential) {
                    potential
                } else {
                    Cow::Borrowed(n)
                }
            }
            Cow::Owned(n) => {
                let potential = strip_national_prefix(&n, patterns);
                if kept(&potential) {
                    Cow::Owned(potential.into_owned())
                } else {
                    Cow::Owned(n)
                }
            }
        };
    }
    if national.len() < MIN_NSN {
        return Err(PhoneFault::TooShort);
    }
    if national.len() > MAX_NSN {
        return Err(PhoneFault::TooLong);
    }
    Ok((code, national))
}

/// `_maybe_extract_country_code`: the country code after a plus or the region's
/// international prefix, or the region's own code written before a national number that
/// reads better without it; `(0, …)` when there is none.
fn extract_country_code<'d>(
    plus: bool,
    digits: &'d str,
    region: Option<usize>,
) -> Result<(u16, Cow<'d, str>), PhoneFault> {
    let patterns = region.and_then(|r| TABLE.patterns(r));
    // `_maybe_strip_i18n_prefix_and_normalize` and `_parse_prefix_as_idd`: the prefix is
    // not stripped when a 0 follows it (country codes never start with one).
    let after_prefix = if plus {
        Some(digits)
    } else {
        patterns
            .and_then(|p| p.international_prefix_end(digits))
            .map(|end| &digits[end..])
            .filter(|rest| !rest.starts_with('0'))
    };
    if let Some(full) = after_prefix {
        if full.len() <= MIN_NSN {
            return Err(PhoneFault::TooShort);
        }
        return match leading_code(full) {
            Some((code, rest)) => Ok((code, Cow::Borrowed(rest))),
            None => Err(PhoneFault::CountryCode),
        };
    }
    if let (Some(region), Some(patterns)) = (region, patterns) {
        let code = TABLE.region(region).meta.country_code();
        if let Some(rest) = digits.strip_prefix(code_digits(code, &mut [0; 5])) {
            let potential = strip_national_prefix(rest, patterns);
            if (!patterns.general_match(digits) && patterns.general_match(&potential))
                || patterns.length(digits) == Length::TooLong
            {
                return Ok((code, potential));
            }
        }
    }
    Ok((0, Cow::Borrowed("")))
}

/// `_extract_country_code`: the shortest known calling code at the start.
fn leading_code(digits: &str) -> Option<(u16, &str)> {
    if digits.starts_with('0') {
        return None;
    }
    (1..=3.min(digits.len())).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        (!TABLE.by_code(code).is_empty()).then(|| (code, &digits[len..]))
    })
}

/// `_maybe_strip_national_prefix_carrier_code`: the national prefix for parsing (and a
/// carrier code) removed, or rewritten by the transform rule, unless that turns a number
/// matching the general pattern into one that does not.
fn strip_national_prefix<'n>(number: &'n str, patterns: &Patterns) -> Cow<'n, str> {
    let Some(re) = patterns.national_prefix_for_parsing() else {
        return Cow::Borrowed(number);
    };
    if number.is_empty() {
        return Cow::Borrowed(number);
    }
    // Most numbers do not start with the prefix: `is_match` answers that without the
    // captures' allocation.
    if !re.is_match(number) {
        return Cow::Borrowed(number);
    }
    let Some(caps) = re.captures(number) else {
        return Cow::Borrowed(number);
    };
    let end = caps.get(0).map_or(0, |m| m.end());
    let viable = patterns.general_match(number);
    let last_group_matched = caps.len() > 1 && caps.get(caps.len() - 1).is_some();
    match patterns.transform_rule() {
        Some(rule) if last_group_matched => {
            let mut transformed = String::with_capacity(number.len() + 4);
            caps.expand(rule, &mut transformed);
            transformed.push_str(&number[end..]);
            if viable && !patterns.general_match(&transformed) {
                Cow::Borrowed(number)
            } else {
                Cow::Owned(transformed)
            }
        }
        _ => {
            let rest = &number[end..];
            if viable && !patterns.general_match(rest) {
                Cow::Borrowed(number)
            } else {
                Cow::Borrowed(rest)
            }
        }
    }
}

/// `is_valid_number`: the region the number belongs to (`region_code_for_number`: the
/// code's only one, else the first whose leading digits match or, without such a pattern,
/// for which the number has a type), and a type of that region's.
fn is_valid(code: u16, national: &str) -> bool {
    let typed = |r: usize| TABLE.patterns(r).is_some_and(|p| p.is_typed(national));
    match TABLE.by_code(code) {
        [] => false,
        [only] => typed(*only),
        many => {
            for &r in many {
                let Some(p) = TABLE.patterns(r) else {
                    continue;
                };
                match p.leading_digits_match(national) {
                    Some(true) => return p.is_typed(national),
                    Some(false) => {}
                    // Chosen because the number has one of its types: valid.
                    None if p.is_typed(national) => return true,
                    None => {}
                }
            }
            false
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::phone_text::{
        decimal_digit, read_any, read_common, MAX_COMMON, MAX_INPUT_CHARS,
    };
    use proptest::prelude::*;

    fn region(id: &str) -> Option<Region> {
        Some(Region::by_id(id).expect("region"))
    }

    #[test]
    fn every_region_compiles() {
        for i in 0..TABLE.len() {
            let meta = TABLE.region(i).meta;
            assert!(TABLE.patterns(i).is_some(), "{} compiles", meta.id());
            assert!(
                TABLE.by_code(meta.country_code()).contains(&i),
                "{} ({}) indexed by its code",
                meta.id(),
                meta.country_code()
            );
        }
    }

    /// Answers of `phonenumbers` 9.0.33 (`parse` + `is_valid_number` + E.164) for each
    /// class of input the `phonenumber` crate read differently; `None` is "invalid".
    #[test]
    fn reads_as_libphonenumber_does() {
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            // Digits of other scripts: full-width, Arabic-Indic, Persian (extended Arabic-Indic),
            // Devanagari; a full-width plus.
            ("＋４４ ２０ ７９４６ ０９５８", None, Some("+442079460958")),
            ("٠٢٠ ٧٩٤٦ ٠٩٥٨", Some("GB"), Some("+442079460958")),
            ("۰۹۱۲ ۳۴۵ ۶۷۸۹", Some("IR"), Some("+989123456789")),
            ("+९१ ९८७६५ ४३२१०", None, Some("+919876543210")),
            // A redundant trunk digit after the country code.
            ("+44 020 7946 0958", None, Some("+442079460958")),
            ("+44 (0)20 7946 0958", None, Some("+442079460958")),
            ("+49 030 901820", None, Some("+4930901820")),
            ("+33 0 1 42 68 53 00", None, Some("+33142685300")),
            // Italy keeps its leading zero.
            ("+39 06 6982 0000", None, Some("+390669820000")),
            // A national number that begins with the region's own calling code.
            ("91234 56789", Some("IN"), Some("+919123456789")),
            ("4930 901820", Some("DE"), Some("+4930901820")),
            ("1 212 555 0100", Some("US"), Some("+12125550100")),
            // A digit too many or too few.
            ("+44 20 7946 09581", None, None),
            ("+44 20 7946 095", None, None),
            ("+1 212 555 01000", None, None),
            ("(212) 555-010", Some("US"), None),
            // International prefixes: the region's, and one it does not use.
            ("0044 20 7946 0958", Some("GB"), Some("+442079460958")),
            ("011 44 20 7946 0958", Some("US"), Some("+442079460958")),
            ("011 44 20 7946 0958", Some("GB"), None),
            ("00 1 212 555 0100", Some("US"), None),
            // Foreign numbers under a region.
            ("+44 113 496 0987", Some("US"), Some("+441134960987")),
            ("+1 212 555 0100", Some("GB"), Some("+12125550100")),
            // Other written forms libphonenumber accepts.
            ("tel:+1-212-555-0100", None, Some("+12125550100")),
            ("1-800-FLOWERS", Some("US"), Some("+18003569377")),
            ("+1 212 555 0100 ext. 12", None, Some("+12125550100")),
            ("Tel: (212) 555-0100.", Some("US"), Some("+12125550100")),
            ("++1 212 555 0100", None, Some("+12125550100")),
            // Python's case-insensitive `re` takes the dotless i for a letter.
            ("+1 671 \u{131}300 123 4", None, Some("+16713001234")),
            ("+011 44 20 7946 0958", Some("US"), Some("+442079460958")),
            // Not numbers.
            ("12", Some("US"), None),
            ("+", None, None),
            ("abc", Some("US"), None),
            ("212 555 0100", None, None),
        ];
        let mut wrong = Vec::new();
        for &(raw, r, want) in cases {
            let got = e164(raw, r.and_then(region)).ok();
            if got.as_deref() != want {
                wrong.push(format!("{raw:?} in {r:?}: got {got:?}, want {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn faults_name_the_step() {
        assert_eq!(e164("abc", region("US")), Err(PhoneFault::NotANumber));
        assert_eq!(e164("212 555 0100", None), Err(PhoneFault::NoRegion));
        assert_eq!(e164("+999 123 456", None), Err(PhoneFault::CountryCode));
        assert_eq!(e164("0044 2", region("GB")), Err(PhoneFault::TooShort));
        assert_eq!(
            e164("+1 2125550100 2125550100", None),
            Err(PhoneFault::TooLong)
        );
        assert_eq!(e164("+1 555 987 6543", None), Err(PhoneFault::NotValid));
        let long = "1".repeat(MAX_INPUT_CHARS + 1);
        assert_eq!(e164(&long, region("US")), Err(PhoneFault::TooLong));
    }

    #[test]
    fn other_scripts_digits_have_their_values() {
        for (zero, name) in [
            ('0', "ASCII"),
            ('\u{FF10}', "full-width"),
            ('\u{0660}', "Arabic-Indic"),
            ('\u{06F0}', "extended Arabic-Indic"),
            ('\u{0966}', "Devanagari"),
            ('\u{0E50}', "Thai"),
            ('\u{1D7CE}', "mathematical bold"),
            ('\u{1D7F6}', "mathematical monospace"),
        ] {
            for v in 0..10u8 {
                let c = char::from_u32(u32::from(zero) + u32::from(v)).expect("char");
                assert_eq!(decimal_digit(c), Some(v), "{name} {v}");
            }
        }
        for c in ['a', '²', '①', 'Ⅻ', '+', '٫'] {
            assert_eq!(decimal_digit(c), None, "{c}");
        }
    }

    /// A phone-ish string of the common shape: an optional start, digit groups with
    /// separators, sometimes a stray plus.
    fn common_shape() -> impl Strategy<Value = String> {
        let start = prop::sample::select(vec![
            "", "", "+", "+1", "+44", "++", "00", "011", "0", "(", "+(", "+ ", " ", "/",
        ]);
        let sep = prop::sample::select(vec!["", "", " ", "-", ".", "/", "(", ")", ") ", "+"]);
        (start, prop::collection::vec(("[0-9]{0,4}", sep), 0..6)).prop_map(|(start, groups)| {
            let mut s = start.to_owned();
            for (g, sep) in groups {
                s.push_str(&g);
                s.push_str(sep);
            }
            s
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        /// The common-shape lane reads what the general one reads.
        #[test]
        fn common_lane_is_the_general_reading(raw in common_shape(), has_region in any::<bool>()) {
            let mut out = [0; MAX_COMMON];
            let lane = read_common(&raw, has_region, &mut out)
                .expect("common shape")
                .map(|(plus, len)| (plus, String::from_utf8_lossy(&out[..len]).into_owned()));
            prop_assert_eq!(lane, read_any(&raw, has_region), "{:?}", raw);
        }
    }
}
