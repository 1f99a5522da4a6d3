//! One raw phone to E.164 as libphonenumber reads it: `parse(raw, region)`, then
//! `is_valid_number`, then the E.164 format.
//!
//! The steps are libphonenumber's (its Python port `phonenumbers`, `phonenumberutil.py`, names
//! each function replayed here), run on the metadata of `phone_patterns`. Both directions of a
//! disagreement cost something: a valid number refused is a lost match, an invalid one accepted
//! may hash to someone else. `tests/phone_differential.rs` holds this to `phonenumbers` itself
//! on generated numbers of every region.
//!
//! The text is read in two steps: [`read`] turns the input into "written with a `+`?" and its
//! digits (libphonenumber's extraction, viability check, extension stripping and
//! normalization), then [`parse`] finds the country code and the national number in them.
//! [`read`] has a lane for the common shape (ASCII digits, spaces, `-.()/`, leading `+`) where
//! those steps reduce to collecting digits; anything else goes through libphonenumber's regular
//! expressions.

use std::borrow::Cow;
use std::sync::LazyLock;

use super::identity::PhoneFault;
use super::phone_patterns::{Length, Patterns, MAX_NSN, TABLE};

/// libphonenumber's `_MAX_INPUT_STRING_LENGTH`, in characters.
const MAX_INPUT_CHARS: usize = 250;
/// libphonenumber's `_MIN_LENGTH_FOR_NSN`.
const MIN_NSN: usize = 2;

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
    let mut buf = Buf {
        stack: [0; MAX_COMMON],
        heap: String::new(),
    };
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

/// Longest input the common-shape lane reads (real phones are far shorter; longer inputs
/// take the general path).
const MAX_COMMON: usize = 64;

/// Where [`read`] puts the digits: on the stack for the common shape, else on the heap.
struct Buf {
    stack: [u8; MAX_COMMON],
    heap: String,
}

/// A number as written: whether it starts with a plus sign, and its digits (normalized:
/// any script's decimal digits as ASCII, letters of a vanity number as keypad digits).
#[derive(Debug, PartialEq, Eq)]
struct Written<'b> {
    plus: bool,
    digits: &'b str,
}

/// The text steps of libphonenumber's `parse`, up to the normalized digits. `has_region`:
/// whether a region was given (without one, the number must start with a plus sign).
fn read<'b>(raw: &str, has_region: bool, buf: &'b mut Buf) -> Result<Written<'b>, PhoneFault> {
    match read_common(raw, has_region, &mut buf.stack) {
        Some(Ok((plus, len))) => Ok(Written {
            plus,
            digits: std::str::from_utf8(&buf.stack[..len]).map_err(|_| PhoneFault::NotANumber)?,
        }),
        Some(Err(fault)) => Err(fault),
        None => {
            let (plus, digits) = read_any(raw, has_region)?;
            buf.heap = digits;
            Ok(Written {
                plus,
                digits: &buf.heap,
            })
        }
    }
}

/// [`read_any`] for inputs of ASCII digits, spaces, `-.()/` and `+` only, up to
/// [`MAX_COMMON`] bytes; `None` for others. The digits go to `out`; the answer is whether
/// the number starts with a plus, and how many digits there are.
///
/// On these the steps reduce to: the number starts at the first `+` or digit and ends at the
/// last digit (`_extract_possible_number`; no `x`, so no second number); it is viable as
/// exactly two digits, or as leading pluses then punctuation and 3 or more digits (a `+`
/// anywhere else fails `_VALID_PHONE_NUMBER`); no extension pattern can match (each needs a
/// label, `#`, `,` or `;`); no letters, so normalizing keeps the digits. `tests` compare this
/// with [`read_any`] on generated inputs.
fn read_common(
    raw: &str,
    has_region: bool,
    out: &mut [u8; MAX_COMMON],
) -> Option<Result<(bool, usize), PhoneFault>> {
    let bytes = raw.as_bytes();
    if bytes.len() > MAX_COMMON
        || !bytes.iter().all(|b| {
            matches!(
                b,
                b'0'..=b'9' | b' ' | b'-' | b'.' | b'(' | b')' | b'/' | b'+'
            )
        })
    {
        return None;
    }
    let Some(start) = bytes.iter().position(|&b| b == b'+' || b.is_ascii_digit()) else {
        return Some(Err(PhoneFault::NotANumber));
    };
    let end = bytes
        .iter()
        .rposition(u8::is_ascii_digit)
        .map_or(start, |i| i + 1);
    let s = &bytes[start..end.max(start)];
    let pluses = s.iter().take_while(|&&b| b == b'+').count();
    let rest = &s[pluses..];
    let mut len = 0;
    let mut stray_plus = false;
    for &b in rest {
        if b.is_ascii_digit() {
            out[len] = b;
            len += 1;
        } else if b == b'+' {
            stray_plus = true;
        }
    }
    let viable = (s.len() == 2 && len == 2) || (!stray_plus && len >= 3);
    if s.len() < MIN_NSN || !viable {
        return Some(Err(PhoneFault::NotANumber));
    }
    if !has_region && pluses == 0 {
        return Some(Err(PhoneFault::NoRegion));
    }
    Some(Ok((pluses > 0, len)))
}

/// libphonenumber's `parse` up to the normalized number, for any input:
/// `_build_national_number_for_parsing` (RFC 3966 `phone-context` or
/// `_extract_possible_number`), `_is_viable_phone_number`, `_check_region_for_parsing`,
/// `_maybe_strip_extension`, then `_normalize`.
fn read_any(raw: &str, has_region: bool) -> Result<(bool, String), PhoneFault> {
    if raw.len() > MAX_INPUT_CHARS && raw.chars().count() > MAX_INPUT_CHARS {
        return Err(PhoneFault::TooLong);
    }
    let national = national_number_for_parsing(raw)?;
    if !is_viable(&national) {
        return Err(PhoneFault::NotANumber);
    }
    let plus = national.starts_with(is_plus);
    if !has_region && !plus {
        return Err(PhoneFault::NoRegion);
    }
    let number = strip_extension(&national);
    Ok((plus, normalize(number)))
}

fn is_plus(c: char) -> bool {
    c == '+' || c == '\u{FF0B}'
}

/// `_build_national_number_for_parsing`.
fn national_number_for_parsing(raw: &str) -> Result<Cow<'_, str>, PhoneFault> {
    const PHONE_CONTEXT: &str = ";phone-context=";
    const TEL: &str = "tel:";
    const ISDN: &str = ";isub=";
    let mut national: Cow<'_, str> = match raw.find(PHONE_CONTEXT) {
        Some(at) => {
            let start = at + PHONE_CONTEXT.len();
            let context = match raw[start..].find(';') {
                Some(end) => &raw[start..start + end],
                None => &raw[start..],
            };
            if !phone_context_valid(context) {
                return Err(PhoneFault::NotANumber);
            }
            let mut out = String::new();
            if context.starts_with('+') {
                out.push_str(context);
            }
            let from = raw.find(TEL).map_or(0, |i| i + TEL.len());
            if from < at {
                out.push_str(&raw[from..at]);
            }
            Cow::Owned(out)
        }
        None => Cow::Borrowed(extract_possible_number(raw)),
    };
    if let Some(at) = national.find(ISDN).filter(|&at| at > 0) {
        national.to_mut().truncate(at);
    }
    Ok(national)
}

/// `_is_phone_context_valid` for a present parameter: RFC 3966's global-number-digits or a
/// domain name.
fn phone_context_valid(context: &str) -> bool {
    static GLOBAL: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"^\+(\d|[\-\.\(\)]?)*\d(\d|[\-\.\(\)]?)*$").expect("pattern")
    });
    static DOMAIN: LazyLock<regex::Regex> = LazyLock::new(|| {
        let alnum = format!("{ALPHA}\\d");
        regex::Regex::new(&format!(
            r"^([{alnum}]+((\-)*[{alnum}])*\.)*[{ALPHA}]+((\-)*[{alnum}])*\.?$"
        ))
        .expect("pattern")
    });
    !context.is_empty() && (GLOBAL.is_match(context) || DOMAIN.is_match(context))
}

/// libphonenumber's `_VALID_ALPHA`: the ASCII letters.
const ALPHA: &str = "A-Za-z";
/// [`ALPHA`] as Python's case-insensitive matching reads it: its `re` also takes the Turkish
/// dotted and dotless I for `i` (`sre_compile._equivalences`, and `İ` lower-cased simply),
/// which Unicode case folding (the `regex` crate's) does not; `ſ` and the Kelvin sign fold in
/// both.
const ALPHA_CASELESS: &str = "A-Za-z\u{130}\u{131}";
/// `i` under Python's case-insensitive matching (see [`ALPHA_CASELESS`]).
const I_CASELESS: &str = "[i\u{130}\u{131}]";
/// `_VALID_PUNCTUATION` (dashes, spaces, dots, slashes, brackets, tildes, full-width forms).
const PUNCTUATION: &str = "-x\u{2010}-\u{2015}\u{2212}\u{30FC}\u{FF0D}-\u{FF0F} \u{00A0}\u{00AD}\u{200B}\u{2060}\u{3000}()\u{FF08}\u{FF09}\u{FF3B}\u{FF3D}.\\[\\]/~\u{2053}\u{223C}\u{FF5E}";

/// `_create_extn_pattern(for_parsing=True)`: the ways to write an extension.
fn extension_patterns() -> String {
    let digits = |max: u32| format!("(\\d{{1,{max}}})");
    let separators = "[ \u{00A0}\\t,]*";
    let after_label = "[:\\.\u{FF0E}]?[ \u{00A0}\\t,-]*";
    let suffix = "#?";
    let explicit_labels = format!("(?:e?xt(?:ens{I_CASELESS}(?:o\u{0301}?|\u{00F3}))?n?|\u{FF45}?\u{FF58}\u{FF54}\u{FF4E}?|\u{0434}\u{043E}\u{0431}|anexo)");
    let ambiguous_labels =
        format!("(?:[x\u{FF58}#\u{FF03}~\u{FF5E}]|{I_CASELESS}nt|\u{FF49}\u{FF4E}\u{FF54})");
    let no_comma = "[ \u{00A0}\\t]*";
    let rfc = format!(";ext={}", digits(20));
    let explicit = format!(
        "{separators}{explicit_labels}{after_label}{}{suffix}",
        digits(20)
    );
    let ambiguous = format!(
        "{separators}{ambiguous_labels}{after_label}{}{suffix}",
        digits(9)
    );
    let american = format!("[- ]+{}#", digits(6));
    let auto_dialling = format!("{no_comma}(?:,{{2}}|;){after_label}{}{suffix}", digits(15));
    let only_commas = format!("{no_comma}(?:,)+{after_label}{}{suffix}", digits(9));
    format!("{rfc}|{explicit}|{ambiguous}|{american}|{auto_dialling}|{only_commas}")
}

/// `_is_viable_phone_number`: two digits alone, or pluses, then 3 or more digits among
/// punctuation, then digits, letters and punctuation, and perhaps an extension.
fn is_viable(number: &str) -> bool {
    static VIABLE: LazyLock<regex::Regex> = LazyLock::new(|| {
        let valid = format!(
            "\\d{{{MIN_NSN}}}|[+\u{FF0B}]*(?:[{PUNCTUATION}*]*\\d){{3,}}[{PUNCTUATION}*{ALPHA_CASELESS}\\d]*"
        );
        regex::Regex::new(&format!("(?i)^(?:{valid}(?:{})?)$", extension_patterns()))
            .expect("pattern")
    });
    number.chars().nth(MIN_NSN - 1).is_some() && VIABLE.is_match(number)
}

/// `_maybe_strip_extension`: the number without its extension, if the part before one is
/// itself viable.
fn strip_extension(number: &str) -> &str {
    static EXTENSION: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(&format!("(?i)(?:{})$", extension_patterns())).expect("pattern")
    });
    match EXTENSION.find(number) {
        Some(m) if is_viable(&number[..m.start()]) => &number[..m.start()],
        _ => number,
    }
}

/// `_extract_possible_number`: from the first plus or digit, without trailing characters
/// that are neither letters, digits nor `#`, cut before a second number (`/x…`).
fn extract_possible_number(raw: &str) -> &str {
    static SECOND_NUMBER: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"[\\/] *x").expect("pattern"));
    let Some(start) = raw.find(|c: char| is_plus(c) || decimal_digit(c).is_some()) else {
        return "";
    };
    let number = raw[start..].trim_end_matches(|c: char| c != '#' && !is_letter_or_number(c));
    match SECOND_NUMBER.find(number) {
        Some(m) => &number[..m.start()],
        None => number,
    }
}

/// Unicode letters and numbers (Java's `\p{L}`, `\p{N}`; Python's `\w` less `_`).
fn is_letter_or_number(c: char) -> bool {
    static LN: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"^[\p{L}\p{N}]$").expect("pattern"));
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    LN.is_match(c.encode_utf8(&mut [0; 4]))
}

/// The value of a decimal digit of any script (Unicode `Nd`, Java's `Character.digit`).
///
/// `Nd` characters come in runs of ten, 0 to 9, in code point order (a Unicode stability
/// policy), so a digit's value is its distance from the run's start.
fn decimal_digit(c: char) -> Option<u8> {
    static ND: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"^\p{Nd}$").expect("pattern"));
    if c.is_ascii() {
        return c.to_digit(10).and_then(|d| u8::try_from(d).ok());
    }
    let is_nd = |c: char| ND.is_match(c.encode_utf8(&mut [0; 4]));
    if !is_nd(c) {
        return None;
    }
    let mut before = 0u32;
    let code = u32::from(c);
    while before < code && char::from_u32(code - before - 1).is_some_and(is_nd) && before < 100 {
        before += 1;
    }
    u8::try_from(before % 10).ok()
}

/// `_normalize`: with 3 or more ASCII letters (and no line break) a vanity number, whose
/// letters become keypad digits and whose other characters but ASCII digits go; otherwise
/// every decimal digit of any script as ASCII, and nothing else.
fn normalize(number: &str) -> String {
    let letters = number.chars().filter(char::is_ascii_alphabetic).count();
    let mut out = String::with_capacity(number.len());
    if letters >= 3 && !number.contains('\n') {
        for c in number.chars() {
            let mut upper = c.to_uppercase();
            let (Some(u), None) = (upper.next(), upper.next()) else {
                continue;
            };
            if let Some(d) = keypad(u) {
                out.push(d);
            }
        }
    } else {
        for c in number.chars() {
            if let Some(d) = decimal_digit(c) {
                out.push(char::from(b'0' + d));
            }
        }
    }
    out
}

/// `_ALPHA_PHONE_MAPPINGS`: ASCII digits as themselves, upper-case letters on an E.161 keypad.
fn keypad(c: char) -> Option<char> {
    Some(match c {
        '0'..='9' => c,
        'A'..='C' => '2',
        'D'..='F' => '3',
        'G'..='I' => '4',
        'J'..='L' => '5',
        'M'..='O' => '6',
        'P'..='S' => '7',
        'T'..='V' => '8',
        'W'..='Z' => '9',
        _ => return None,
    })
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
