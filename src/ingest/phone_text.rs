//! The text steps of libphonenumber's `parse`, up to "written with a `+`?" and the number's
//! digits: extraction, the viability check, extensions, RFC 3966, any script's decimal digits
//! and vanity letters (its Python port's `phonenumberutil.py` names each function replayed
//! here). [`read`] has a lane for the common shape (ASCII digits, spaces, `-.()/`, leading `+`)
//! where those steps reduce to collecting digits; anything else goes through libphonenumber's
//! regular expressions. What the digits mean is read by `phone`.

use std::borrow::Cow;
use std::sync::LazyLock;

use super::identity::PhoneFault;

/// libphonenumber's `_MAX_INPUT_STRING_LENGTH`, in characters.
pub(super) const MAX_INPUT_CHARS: usize = 250;
/// libphonenumber's `_MIN_LENGTH_FOR_NSN`.
pub(super) const MIN_NSN: usize = 2;

/// Longest input the common-shape lane reads (real phones are far shorter; longer inputs
/// take the general path).
pub(super) const MAX_COMMON: usize = 64;

/// Where [`read`] puts the digits: on the stack for the common shape, else on the heap.
pub(super) struct Buf {
    stack: [u8; MAX_COMMON],
    heap: String,
}

impl Buf {
    /// An empty buffer.
    pub(super) fn new() -> Self {
        Self {
            stack: [0; MAX_COMMON],
            heap: String::new(),
        }
    }
}

/// A number as written: whether it starts with a plus sign, and its digits (normalized:
/// any script's decimal digits as ASCII, letters of a vanity number as keypad digits).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Written<'b> {
    pub(super) plus: bool,
    pub(super) digits: &'b str,
}

/// The text steps of libphonenumber's `parse`, up to the normalized digits. `has_region`:
/// whether a region was given (without one, the number must start with a plus sign).
pub(super) fn read<'b>(
    raw: &str,
    has_region: bool,
    buf: &'b mut Buf,
) -> Result<Written<'b>, PhoneFault> {
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
pub(super) fn read_common(
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
pub(super) fn read_any(raw: &str, has_region: bool) -> Result<(bool, String), PhoneFault> {
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
pub(super) fn decimal_digit(c: char) -> Option<u8> {
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
