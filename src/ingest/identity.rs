//! Identifier normalization and hashing at ingest, per ad-network rules.
//!
//! This is the only place raw PII exists: each identifier is normalized the way each network
//! documents it (Google Data Manager "Format user data"; Meta Custom Audiences "Hashing and
//! normalization for multi-key") and hashed with SHA-256 straight away. Only digests leave this
//! module, except country and postal code, which Google requires in clear and which are kept in a
//! normalized form. Error values carry no input, so nothing raw can reach a log through them.

use super::phone::{self, Region};
use crate::hashing::{sha256, NetworkHashes};

/// Why an identifier was rejected. Messages are fixed strings: they never echo the input,
/// because the input is PII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not exactly one `@`, empty local part, or a domain without a dot or with an empty label.
    #[error("not a valid email address")]
    InvalidEmail,
    /// Not a phone number libphonenumber reads as valid (the step that refused it inside).
    #[error("not a valid phone number: {0}")]
    InvalidPhone(PhoneFault),
    /// A first or last name with no letters left once punctuation is removed.
    #[error("nothing left after normalization")]
    InvalidName,
    /// Not one of the 249 officially assigned ISO 3166-1 alpha-2 codes.
    #[error("not an ISO 3166-1 alpha-2 country code")]
    InvalidCountry,
    /// Empty, longer than 16 characters, or a character other than ASCII alnum, space, `-`.
    #[error("not a valid postal code")]
    InvalidPostalCode,
    /// A region the phone parser has no metadata for, so national numbers cannot be read.
    #[error("not a known phone region")]
    InvalidRegion,
}

impl IdentityError {
    /// A short fixed label (a metric label value, an ack's warning code): one per way an
    /// identifier can fail, so their number is bounded.
    pub fn label(&self) -> &'static str {
        match self {
            IdentityError::InvalidEmail => "invalid_email",
            IdentityError::InvalidPhone(PhoneFault::NotANumber) => "phone_not_a_number",
            IdentityError::InvalidPhone(PhoneFault::CountryCode) => "phone_unknown_country_code",
            IdentityError::InvalidPhone(PhoneFault::TooShort) => "phone_too_short",
            IdentityError::InvalidPhone(PhoneFault::TooLong) => "phone_too_long",
            IdentityError::InvalidPhone(PhoneFault::NotValid) => "phone_not_valid",
            IdentityError::InvalidPhone(PhoneFault::NoRegion) | IdentityError::InvalidRegion => {
                "phone_no_region"
            }
            IdentityError::InvalidName => "invalid_name",
            IdentityError::InvalidCountry => "invalid_country",
            IdentityError::InvalidPostalCode => "invalid_postal_code",
        }
    }

    /// Every label [`IdentityError::label`] can give.
    pub const LABELS: [&'static str; 10] = [
        "invalid_email",
        "phone_not_a_number",
        "phone_unknown_country_code",
        "phone_too_short",
        "phone_too_long",
        "phone_not_valid",
        "phone_no_region",
        "invalid_name",
        "invalid_country",
        "invalid_postal_code",
    ];
}

/// Where libphonenumber's reading of a phone stopped (its `NumberParseException` types, and
/// `is_valid_number` saying no).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneFault {
    /// Not viable as a number: too few digits, or characters a number does not have.
    #[error("not a phone number")]
    NotANumber,
    /// Written without a country code, and no region to read it in.
    #[error("no country code and no region to read it in")]
    NoRegion,
    /// A `+` or international prefix followed by no known country calling code.
    #[error("unknown country calling code")]
    CountryCode,
    /// Too few digits for a national number.
    #[error("too short")]
    TooShort,
    /// Too many characters or digits.
    #[error("too long")]
    TooLong,
    /// Read, but not a valid number of its region.
    #[error("not a valid number for its region")]
    NotValid,
}

/// Normalizes and hashes raw identifiers; holds the default phone region from config.
///
/// The region is needed because shops often store national phone numbers ("(800) 555-0100"),
/// which only become E.164 once a country is known.
#[derive(Debug, Clone)]
pub struct Normalizer {
    region: Region,
}

/// Longest stored postal code (characters, after normalization).
const MAX_POSTAL_LEN: usize = 16;

impl Normalizer {
    /// `default_region`: ISO 3166-1 alpha-2 (e.g. "US"), used to parse national phone numbers.
    ///
    /// Any case and surrounding whitespace are accepted. Fails with `InvalidRegion` unless the
    /// code is an ISO code the phone parser has metadata for, so a bad config fails at startup.
    pub fn new(default_region: &str) -> Result<Self, IdentityError> {
        phone_region(default_region)
            .map(|region| Self { region })
            .ok_or(IdentityError::InvalidRegion)
    }

    /// The configured default phone region, upper-case alpha-2.
    pub fn default_region(&self) -> &str {
        self.region.id()
    }

    /// Email hashed under both rules: Google's (whitespace removed, Gmail dots and `+tag`
    /// dropped) and Meta's (trim, lowercase). Fails if either normalized form is not an address.
    pub fn email(&self, raw: &str) -> Result<NetworkHashes, IdentityError> {
        let google = sha256(&google_email(raw)?);
        let meta = sha256(&meta_email(raw)?);
        Ok(NetworkHashes { google, meta })
    }

    /// Phone read as libphonenumber reads it (`parse`, `is_valid_number`, E.164; see
    /// `phone`); Google hashes it with `+`, Meta without.
    ///
    /// `country`: the customer's country (alpha-2, any case) if known, else the default region:
    /// a number written without its country code is read in it. A `country` the phone metadata
    /// does not have leaves only numbers that carry their country code readable (others give
    /// `InvalidRegion` rather than a guess that could hash someone else's number). A blank
    /// `country` counts as unknown.
    pub fn phone(&self, raw: &str, country: Option<&str>) -> Result<NetworkHashes, IdentityError> {
        Ok(hash_e164(&self.e164(raw, country)?))
    }

    /// [`Normalizer::phone`] with no region at all: only a number that carries its country
    /// code (`+44 …`, `tel:+44-…`) is read. For a customer whose stated country could not be
    /// read, where the default region would be a guess.
    pub fn phone_without_region(&self, raw: &str) -> Result<NetworkHashes, IdentityError> {
        Ok(hash_e164(&e164_in(raw, None)?))
    }

    /// First name under each network's rule (see [`google_name`] and [`meta_name`]).
    pub fn first_name(&self, raw: &str) -> Result<NetworkHashes, IdentityError> {
        name_hashes(raw)
    }

    /// Last name under each network's rule (see [`google_name`] and [`meta_name`]).
    pub fn last_name(&self, raw: &str) -> Result<NetworkHashes, IdentityError> {
        name_hashes(raw)
    }

    /// Normalized upper-case alpha-2, e.g. " us " -> "US", checked against the ISO 3166-1 list.
    ///
    /// Kept in clear because Google wants `regionCode` unhashed; the Meta destination derives
    /// its own form from it. Names and non-ISO codes ("UK", "USA", "XK") are rejected rather than mapped.
    pub fn country(&self, raw: &str) -> Result<String, IdentityError> {
        let code = raw.trim().to_ascii_uppercase();
        if is_iso_alpha2(&code) {
            Ok(code)
        } else {
            Err(IdentityError::InvalidCountry)
        }
    }

    /// Canonical stored form (trimmed, upper-case, inner whitespace collapsed to one space).
    ///
    /// Stored in clear because Google wants `postalCode` unhashed; each destination derives its
    /// network's form from it. Rejects empty input, more than 16 characters, characters other
    /// than ASCII alphanumerics, space and `-`, and codes with no alphanumeric at all.
    pub fn postal_code(&self, raw: &str) -> Result<String, IdentityError> {
        let mut out = String::with_capacity(raw.len());
        for word in raw.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
        out.make_ascii_uppercase();
        let allowed = out
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
        let has_alnum = out.chars().any(|c| c.is_ascii_alphanumeric());
        if !allowed || !has_alnum || out.chars().count() > MAX_POSTAL_LEN {
            return Err(IdentityError::InvalidPostalCode);
        }
        Ok(out)
    }

    /// The E.164 form the phone hashes are made of, with `+` (e.g. "+18005550100"); the same
    /// reading of `raw` and `country` as [`Normalizer::phone`].
    pub fn e164(&self, raw: &str, country: Option<&str>) -> Result<String, IdentityError> {
        let region = match country.map(str::trim).filter(|c| !c.is_empty()) {
            None => Some(self.region),
            Some(c) => phone_region(c),
        };
        e164_in(raw, region)
    }
}

/// `raw` in E.164, read in `region`.
fn e164_in(raw: &str, region: Option<Region>) -> Result<String, IdentityError> {
    let e164 = phone::e164(raw, region).map_err(|fault| match fault {
        PhoneFault::NoRegion => IdentityError::InvalidRegion,
        fault => IdentityError::InvalidPhone(fault),
    })?;
    // Belt and braces: Google requires "+" then digits only, and Meta's form must not start
    // with a zero (country codes never do).
    let digits = e164
        .strip_prefix('+')
        .ok_or(IdentityError::InvalidPhone(PhoneFault::NotValid))?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdentityError::InvalidPhone(PhoneFault::NotValid));
    }
    Ok(e164)
}

fn hash_e164(e164: &str) -> NetworkHashes {
    NetworkHashes {
        google: sha256(e164),
        meta: sha256(&e164[1..]),
    }
}

fn name_hashes(raw: &str) -> Result<NetworkHashes, IdentityError> {
    let google = sha256(&google_name(raw)?);
    let meta = sha256(&meta_name(raw)?);
    Ok(NetworkHashes { google, meta })
}

/// Google's email form: trim, remove all whitespace, lowercase; for `gmail.com` and
/// `googlemail.com` drop the dots in the local part and cut it at the first `+`.
///
/// Gmail ignores dots and `+tags`, so Google matches on the stripped form; other providers may
/// not, so their addresses keep both. `googlemail.com` is not rewritten to `gmail.com` (the guide
/// and Google's Java util do not). Used for the CSV destination and tests.
pub fn google_email(raw: &str) -> Result<String, IdentityError> {
    let mut s: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    s = s.to_lowercase();
    let (local, domain) = split_email(&s)?;
    if domain == "gmail.com" || domain == "googlemail.com" {
        let local = local.split('+').next().unwrap_or_default().replace('.', "");
        let out = format!("{local}@{domain}");
        split_email(&out)?;
        return Ok(out);
    }
    Ok(s)
}

/// Meta's email form: trim leading/trailing whitespace and lowercase, nothing else (Meta's doc
/// rule; no Gmail handling). Used for the CSV destination and tests.
pub fn meta_email(raw: &str) -> Result<String, IdentityError> {
    let s = raw.trim().to_lowercase();
    split_email(&s)?;
    Ok(s)
}

/// Checks the shape both networks need: exactly one `@`, a non-empty local part, and a domain
/// with at least one dot and no empty labels. Returns (local, domain).
fn split_email(s: &str) -> Result<(&str, &str), IdentityError> {
    let (local, domain) = s.split_once('@').ok_or(IdentityError::InvalidEmail)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.split('.').any(str::is_empty)
    {
        return Err(IdentityError::InvalidEmail);
    }
    Ok((local, domain))
}

/// Title prefixes Google says not to include ("such as Mrs."); the list of Google's Java util.
const NAME_PREFIXES: &[&str] = &["mr", "mrs", "ms", "dr"];
/// Suffixes Google says not to include ("such as Jr."); the list of Google's Java util.
const NAME_SUFFIXES: &[&str] = &[
    "jr", "sr", "2nd", "3rd", "ii", "iii", "iv", "v", "vi", "cpa", "dc", "dds", "vm", "jd", "md",
    "phd",
];

/// Google's name form: lowercase, trim, no punctuation, leading title prefixes (`mrs.`, `dr.`)
/// and trailing suffixes (`jr.`, `iii`, `phd`) removed, words joined by one space.
///
/// Google's guide says no prefixes for given names and no suffixes for family names; shop data
/// puts them in either field, so both are stripped from both. A prefix or suffix is only removed
/// while another word remains ("V" or "Md" alone stays a name). Words are split on whitespace and
/// commas ("Smith, Jr."); other punctuation is deleted inside a word ("O'Brien" -> "obrien").
/// Letters of any script, digits and combining marks are kept. Used for the CSV destination.
pub fn google_name(raw: &str) -> Result<String, IdentityError> {
    let lower = raw.to_lowercase();
    let words: Vec<String> = lower
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.chars().filter(|&c| is_name_char(c)).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect();
    let (mut start, mut end) = (0, words.len());
    while end - start > 1 && NAME_PREFIXES.contains(&words[start].as_str()) {
        start += 1;
    }
    while end - start > 1 && NAME_SUFFIXES.contains(&words[end - 1].as_str()) {
        end -= 1;
    }
    let out = words[start..end].join(" ");
    if out.is_empty() {
        return Err(IdentityError::InvalidName);
    }
    Ok(out)
}

/// Meta's name form: lowercase, no punctuation, no whitespace, no digits; letters of any script
/// kept as UTF-8 (Meta's docs allow them; its SDKs' ASCII-only filter would erase such names).
/// No prefix/suffix stripping: Meta's docs do not ask for it. Used for the CSV destination.
pub fn meta_name(raw: &str) -> Result<String, IdentityError> {
    let out: String = raw
        .to_lowercase()
        .chars()
        .filter(|&c| is_name_char(c) && !c.is_numeric())
        .collect();
    if out.is_empty() {
        return Err(IdentityError::InvalidName);
    }
    Ok(out)
}

/// Letters, digits and combining marks of any script are kept; whitespace, controls, and
/// punctuation, symbols, format and private-use characters are not. Without a Unicode
/// general-category table, non-ASCII punctuation and symbols are recognized by block.
fn is_name_char(c: char) -> bool {
    if c.is_alphanumeric() {
        return true;
    }
    if c.is_ascii() || c.is_whitespace() || c.is_control() {
        return false;
    }
    !matches!(c as u32,
        0x0080..=0x00BF | 0x00D7 | 0x00F7             // Latin-1 punctuation and symbols
        | 0x02B0..=0x02FF                             // spacing modifier symbols (letters kept above)
        | 0x037E | 0x0387                             // Greek question mark, ano teleia
        | 0x055A..=0x055F | 0x0589 | 0x058A           // Armenian
        | 0x05BE | 0x05C0 | 0x05C3 | 0x05C6 | 0x05F3 | 0x05F4 // Hebrew
        | 0x0600..=0x060F | 0x061B..=0x061F | 0x066A..=0x066D | 0x06D4 | 0x06DD | 0x06DE | 0x06E9 // Arabic
        | 0x0964 | 0x0965 | 0x0970                    // Devanagari danda, abbreviation sign
        | 0x0E4F | 0x0E5A | 0x0E5B                    // Thai
        | 0x10FB | 0x1360..=0x1368 | 0x166D | 0x166E | 0x16EB..=0x16ED | 0x1800..=0x180A
        | 0x2000..=0x200B | 0x200E..=0x206F           // general punctuation, keeping ZWNJ/ZWJ
        | 0x2070..=0x2BFF                             // super/subscripts, currency, arrows, math, shapes
        | 0x2E00..=0x2E7F                             // supplemental punctuation
        | 0x3000..=0x3029 | 0x3030..=0x303F           // CJK symbols and punctuation
        | 0x309B | 0x309C | 0x30A0 | 0x30FB           // kana voicing marks, double hyphen, middle dot
        | 0xE000..=0xF8FF                             // private use
        | 0xFD3E | 0xFD3F | 0xFE00..=0xFE1F | 0xFE30..=0xFE6F | 0xFEFF
        | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20 | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65 | 0xFFE0..=0xFFFF
        | 0x1D100..=0x1D24F                           // musical symbols
        | 0x1F000..=0x1FBFF                           // emoji, pictographs
        | 0xE0000..=0xE0FFF                           // tags, variation selectors supplement
        | 0xF0000..=0x10FFFF                          // private use planes
    )
}

/// An ISO code the phone metadata has. Runs once per phone with a country, so the
/// upper-casing stays on the stack.
fn phone_region(raw: &str) -> Option<Region> {
    let [a, b] = raw.trim().as_bytes() else {
        return None;
    };
    let upper = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
    let code = std::str::from_utf8(&upper).ok()?;
    if !is_iso_alpha2(code) {
        return None;
    }
    Region::by_id(code)
}

fn is_iso_alpha2(code: &str) -> bool {
    ISO_3166_ALPHA2.binary_search(&code).is_ok()
}

/// The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted (from Debian iso-codes).
/// A static list rather than phonenumber's regions, which add AC, TA and XK and lack AQ, BV, HM.
const ISO_3166_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Normalizer {
        Normalizer::new("US").expect("US is a phone region")
    }

    use crate::hashing::{hex_lower, Digest};

    fn hex(d: Digest) -> String {
        hex_lower(&d)
    }

    const MARY: &str = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79";
    const DANA: &str = "07e2f1394b0ea80e2adca010ea8318df697001a005ba7452720edda4b0ce57b3";
    const DANAM: &str = "1df6b43bc68dd38eca94e6a65b4f466ae537b796c81a526918b40ac4a7b906c7";
    const PLUS_18005550100: &str =
        "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30";
    const META_15559876543: &str =
        "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e";
    const CLOUDY: &str = "223ebda6f6889b1494551ba902d9d381daf2f642bae055888e96343d53e9f9c4";

    // --- test vectors from ADNET_APIS.md and google-data-manager.md section 5 ---

    #[test]
    fn vector_mary() {
        assert_eq!(hex(sha256("mary@example.com")), MARY);
        let h = us().email("mary@example.com").unwrap();
        assert_eq!(hex(h.google), MARY);
        assert_eq!(hex(h.meta), MARY);
        // Casing and surrounding whitespace do not change it for either network.
        assert_eq!(us().email("  Mary@Example.COM\t").unwrap(), h);
    }

    #[test]
    fn vector_dana() {
        assert_eq!(hex(sha256("dana@example.com")), DANA);
        let h = us().email(" DANA@example.com ").unwrap();
        assert_eq!(hex(h.google), DANA);
        assert_eq!(hex(h.meta), DANA);
    }

    #[test]
    fn vector_danam_google_doc() {
        assert_eq!(hex(sha256("danam@example.com")), DANAM);
        let h = us().email("DanaM@Example.com").unwrap();
        assert_eq!(hex(h.google), DANAM);
        assert_eq!(hex(h.meta), DANAM);
    }

    #[test]
    fn vector_phone_google() {
        assert_eq!(hex(sha256("+18005550100")), PLUS_18005550100);
        let n = us();
        // Google's own example: "(800)555-0100" -> "+18005550100".
        for raw in [
            "(800)555-0100",
            "+1 800 555 0100",
            " 1-800-555-0100 ",
            "800.555.0100",
        ] {
            assert_eq!(n.e164(raw, None).unwrap(), "+18005550100", "{raw}");
            let h = n.phone(raw, None).unwrap();
            assert_eq!(hex(h.google), PLUS_18005550100, "{raw}");
            assert_eq!(h.meta, sha256("18005550100"), "{raw}");
        }
    }

    #[test]
    fn vector_phone_meta() {
        // Meta's doc vector. 555-987-6543 is not an assigned US number, so `phone` rejects it
        // (it requires `is_valid`); the vector is checked on the hash and on the Meta form rule.
        assert_eq!(hex(sha256("15559876543")), META_15559876543);
        let e164 = "+15559876543";
        assert_eq!(hex(sha256(&e164[1..])), META_15559876543);
        assert_eq!(
            us().phone("+1 555 987 6543", None),
            Err(IdentityError::InvalidPhone(PhoneFault::NotValid))
        );
    }

    #[test]
    fn vector_gmail_google_rule() {
        let raw = "Cloudy.SanFrancisco+shopping@gmail.com";
        assert_eq!(google_email(raw).unwrap(), "cloudysanfrancisco@gmail.com");
        assert_eq!(hex(sha256("cloudysanfrancisco@gmail.com")), CLOUDY);
        let h = us().email(raw).unwrap();
        assert_eq!(hex(h.google), CLOUDY);
        // Meta has no Gmail rule.
        assert_eq!(
            meta_email(raw).unwrap(),
            "cloudy.sanfrancisco+shopping@gmail.com"
        );
        assert_eq!(h.meta, sha256("cloudy.sanfrancisco+shopping@gmail.com"));
        assert_ne!(h.google, h.meta);
    }

    #[test]
    fn partial_vectors_meta_doc() {
        // meta.md 4.1 lists these abbreviated; check the ends.
        let check = |s: &str, head: &str, tail: &str| {
            let h = hex(sha256(s));
            assert!(h.starts_with(head) && h.ends_with(tail), "{s}: {h}");
        };
        check(&meta_name("John").unwrap(), "96d9632f", "607a");
        check("m", "62c66a7a", "3c5a");
        check("", "e3b0c442", "b855");
    }

    #[test]
    fn google_base64_vectors_match_hex() {
        // google-data-manager.md gives these in Base64; the same digests in hex.
        assert_eq!(
            hex(sha256("alexz@example.com")),
            "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a"
        );
        assert_eq!(
            hex(sha256(&google_email("AlexZ@Example.com").unwrap())),
            hex(sha256("alexz@example.com"))
        );
    }

    // --- email ---

    #[test]
    fn gmail_vs_other_domains() {
        // Google's doc example for a non-Gmail domain: dots and plus kept.
        assert_eq!(
            google_email("user.name+NYC@Example.com").unwrap(),
            "user.name+nyc@example.com"
        );
        assert_eq!(google_email("a.b+c@gmail.com").unwrap(), "ab@gmail.com");
        assert_eq!(
            google_email("a.b+c@googlemail.com").unwrap(),
            "ab@googlemail.com"
        );
        assert_eq!(
            google_email("a.b+c@gmail.co.uk").unwrap(),
            "a.b+c@gmail.co.uk"
        );
        assert_eq!(
            google_email("a.b+c@mail.gmail.com").unwrap(),
            "a.b+c@mail.gmail.com"
        );
        // The dots after the first plus go too (cut first, then remove dots: same result).
        assert_eq!(google_email("a+b.c@GMAIL.COM").unwrap(), "a@gmail.com");
        let n = us();
        let gmail = n.email("j.doe+x@gmail.com").unwrap();
        let other = n.email("j.doe+x@example.com").unwrap();
        assert_eq!(gmail.google, sha256("jdoe@gmail.com"));
        assert_eq!(other.google, sha256("j.doe+x@example.com"));
        assert_eq!(gmail.meta, sha256("j.doe+x@gmail.com"));
        assert_eq!(other.google, other.meta);
    }

    #[test]
    fn google_removes_inner_whitespace_meta_only_trims() {
        assert_eq!(
            google_email(" ma ry@exam ple.com ").unwrap(),
            "mary@example.com"
        );
        assert_eq!(
            google_email("mary@\u{a0}example.com").unwrap(),
            "mary@example.com"
        );
        assert_eq!(
            meta_email("\t Mary@Example.com \n").unwrap(),
            "mary@example.com"
        );
    }

    #[test]
    fn invalid_emails() {
        let n = us();
        for raw in [
            "",
            "   ",
            "mary",
            "mary@",
            "@example.com",
            "mary@example",
            "mary@@example.com",
            "mary@ex@ample.com",
            "mary@example..com",
            "mary@.example.com",
            "mary@example.com.",
            "+tag@gmail.com", // empty local part after Google's Gmail rule
            "...@gmail.com",
        ] {
            assert_eq!(n.email(raw), Err(IdentityError::InvalidEmail), "{raw:?}");
        }
        assert_eq!(
            google_email("+x@gmail.com"),
            Err(IdentityError::InvalidEmail)
        );
        assert_eq!(meta_email("+x@gmail.com").unwrap(), "+x@gmail.com");
    }

    // --- phone ---

    #[test]
    fn national_numbers_use_customer_country_then_default() {
        let us = us();
        // UK national number with the customer's country.
        assert_eq!(
            us.e164("020 7946 0958", Some("gb")).unwrap(),
            "+442079460958"
        );
        assert_eq!(
            us.e164("020 7946 0958", Some(" GB ")).unwrap(),
            "+442079460958"
        );
        // Same digits read under the US default are not a valid number.
        assert_eq!(
            us.phone("020 7946 0958", None),
            Err(IdentityError::InvalidPhone(PhoneFault::NotValid))
        );
        // Default region from config.
        let gb = Normalizer::new(" gb ").unwrap();
        assert_eq!(gb.default_region(), "GB");
        assert_eq!(gb.e164("07911 123456", None).unwrap(), "+447911123456");
        // German national number.
        assert_eq!(us.e164("030 901820", Some("DE")).unwrap(), "+4930901820");
        // Italian numbers keep their leading zero after the country code.
        assert_eq!(
            us.e164("06 6982 0000", Some("IT")).unwrap(),
            "+390669820000"
        );
        let h = us.phone("06 6982 0000", Some("IT")).unwrap();
        assert_eq!(h.meta, sha256("390669820000"));
    }

    #[test]
    fn international_numbers_ignore_region() {
        let n = us();
        assert_eq!(n.e164("+44 20 7946 0958", None).unwrap(), "+442079460958");
        assert_eq!(
            n.e164("+44 20 7946 0958", Some("FR")).unwrap(),
            "+442079460958"
        );
        // An unusable customer country does not matter when the number has a country code.
        assert_eq!(
            n.e164("+44 20 7946 0958", Some("AQ")).unwrap(),
            "+442079460958"
        );
        // GB reads "00" as the international prefix.
        let gb = Normalizer::new("GB").unwrap();
        assert_eq!(gb.e164("0044 20 7946 0958", None).unwrap(), "+442079460958");
        // Google's Java util example.
        assert_eq!(n.e164("+44-113-496-0987", None).unwrap(), "+441134960987");
        // Foreign numbers read under a region (works around phonenumber 0.3.10 applying the
        // region's national-prefix rule to them; see `phone::reparse_foreign`).
        assert_eq!(n.e164("+33 1 42 68 53 00", None).unwrap(), "+33142685300");
        assert_eq!(
            n.e164("+44 (0)20 7946 0958", None).unwrap(),
            "+442079460958"
        );
        assert_eq!(
            n.e164("011 33 1 42 68 53 00", None).unwrap(),
            "+33142685300"
        );
        assert_eq!(
            n.e164("011 44 113 496 0987", None).unwrap(),
            "+441134960987"
        );
        assert_eq!(
            n.e164("011 44 20 7946 0958 ext. 12", None).unwrap(),
            "+442079460958"
        );
        assert_eq!(gb.e164("0033 1 42 68 53 00", None).unwrap(), "+33142685300");
        assert_eq!(
            n.e164("0039 06 6982 0000", Some("DE")).unwrap(),
            "+390669820000"
        );
        assert_eq!(
            n.e164("0011 1 800 555 0100", Some("AU")).unwrap(),
            "+18005550100"
        );
        assert_eq!(
            n.e164("+1 800 555 0100", Some("AU")).unwrap(),
            "+18005550100"
        );
        // The parser tolerates a doubled plus; the result is still the right number.
        assert_eq!(n.e164("++18005550100", None).unwrap(), "+18005550100");
    }

    #[test]
    fn meta_phone_is_google_without_plus() {
        let n = us();
        for (raw, c) in [("(800) 555-0100", None), ("020 7946 0958", Some("GB"))] {
            let e = n.e164(raw, c).unwrap();
            let h = n.phone(raw, c).unwrap();
            assert_eq!(h.google, sha256(&e));
            assert_eq!(h.meta, sha256(e.trim_start_matches('+')));
            assert!(!e[1..].starts_with('0'));
        }
    }

    #[test]
    fn invalid_phones() {
        let n = us();
        let long = "1".repeat(251);
        for (raw, fault) in [
            ("", PhoneFault::NotANumber),
            ("   ", PhoneFault::NotANumber),
            ("abc", PhoneFault::NotANumber),
            ("12", PhoneFault::NotValid),
            ("+1 800 555 010", PhoneFault::NotValid), // a digit short
            ("+1 800 555 01000", PhoneFault::NotValid), // a digit too many
            ("+999 123 456 789", PhoneFault::CountryCode),
            ("not a phone 12", PhoneFault::NotValid),
            ("+", PhoneFault::NotANumber),
            (long.as_str(), PhoneFault::TooLong),
        ] {
            assert_eq!(
                n.phone(raw, None),
                Err(IdentityError::InvalidPhone(fault)),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn labels_are_a_fixed_set() {
        let all = [
            IdentityError::InvalidEmail,
            IdentityError::InvalidPhone(PhoneFault::NotANumber),
            IdentityError::InvalidPhone(PhoneFault::NoRegion),
            IdentityError::InvalidPhone(PhoneFault::CountryCode),
            IdentityError::InvalidPhone(PhoneFault::TooShort),
            IdentityError::InvalidPhone(PhoneFault::TooLong),
            IdentityError::InvalidPhone(PhoneFault::NotValid),
            IdentityError::InvalidName,
            IdentityError::InvalidCountry,
            IdentityError::InvalidPostalCode,
            IdentityError::InvalidRegion,
        ];
        let mut labels: Vec<&str> = all.iter().map(IdentityError::label).collect();
        labels.sort_unstable();
        labels.dedup();
        let mut listed = IdentityError::LABELS.to_vec();
        listed.sort_unstable();
        assert_eq!(labels, listed);
    }

    #[test]
    fn invalid_regions() {
        for raw in ["", "XX", "USA", "uk", "U", "1A", "XK", "AQ", "BV"] {
            assert_eq!(
                Normalizer::new(raw).unwrap_err(),
                IdentityError::InvalidRegion,
                "{raw:?}"
            );
        }
        // A national number with an unusable customer country is not guessed.
        assert_eq!(
            us().phone("(800) 555-0100", Some("ZZ")),
            Err(IdentityError::InvalidRegion)
        );
        assert_eq!(
            us().phone("(800) 555-0100", Some("AQ")),
            Err(IdentityError::InvalidRegion)
        );
        // A blank country means "unknown": the default region applies.
        assert!(us().phone("(800) 555-0100", Some("  ")).is_ok());
    }

    #[test]
    fn junk_never_panics() {
        let n = us();
        let long = "x".repeat(10_000);
        let junk = [
            "+",
            "tel:",
            "tel:+",
            "+1 (",
            "ext",
            "\u{0}",
            "١٢٣٤٥٦٧٨٩٠",
            "0000000000",
            "011",
            "0011",
            "00",
            "+0",
            "+00 1",
            "#*#*",
            "1;ext=2",
            "😀",
            "@",
            "@.",
            "a@b.c",
            &long,
        ];
        for raw in junk {
            for c in [
                None,
                Some("US"),
                Some("GB"),
                Some("AU"),
                Some(""),
                Some("ZZ"),
            ] {
                let _ = n.phone(raw, c);
            }
            let _ = n.email(raw);
            let _ = n.first_name(raw);
            let _ = n.country(raw);
            let _ = n.postal_code(raw);
        }
        // RFC 3966 form is understood too.
        assert_eq!(n.e164("tel:+1-800-555-0100", None).unwrap(), "+18005550100");
        assert_eq!(
            n.e164("tel:+44-20-7946-0958", None).unwrap(),
            "+442079460958"
        );
    }

    // --- names ---

    #[test]
    fn names_basic() {
        assert_eq!(google_name("  John ").unwrap(), "john");
        assert_eq!(meta_name("  John ").unwrap(), "john");
        assert_eq!(google_name("Mary  Ann").unwrap(), "mary ann");
        assert_eq!(meta_name("Mary  Ann").unwrap(), "maryann");
        assert_eq!(google_name("O'Brien-Smith").unwrap(), "obriensmith");
        assert_eq!(meta_name("O'Brien-Smith").unwrap(), "obriensmith");
        let h = us().first_name("John").unwrap();
        assert_eq!(h.google, sha256("john"));
        assert_eq!(h.meta, sha256("john"));
        assert_eq!(
            us().last_name(" Mary Ann ").unwrap().google,
            sha256("mary ann")
        );
    }

    #[test]
    fn name_prefixes_and_suffixes_google_only() {
        assert_eq!(google_name("Mrs. Mary").unwrap(), "mary");
        assert_eq!(google_name("DR John").unwrap(), "john");
        assert_eq!(google_name("Mr. Dr. John").unwrap(), "john");
        assert_eq!(google_name("Smith Jr.").unwrap(), "smith");
        assert_eq!(google_name("Smith, Jr.").unwrap(), "smith");
        assert_eq!(google_name("Smith,Jr.").unwrap(), "smith");
        assert_eq!(google_name("King III").unwrap(), "king");
        assert_eq!(google_name("Dr. John Smith, Ph.D.").unwrap(), "john smith");
        assert_eq!(google_name("Doe Sr. MD").unwrap(), "doe");
        assert_eq!(google_name("Henry 3rd").unwrap(), "henry");
        // Only at the edges, and never the last word.
        assert_eq!(google_name("Mary Drew").unwrap(), "mary drew");
        assert_eq!(google_name("Ivy Jr Smith").unwrap(), "ivy jr smith");
        assert_eq!(google_name("V").unwrap(), "v");
        assert_eq!(google_name("Md").unwrap(), "md");
        assert_eq!(google_name("Mr.").unwrap(), "mr");
        // Meta's docs ask for no stripping.
        assert_eq!(meta_name("Smith Jr.").unwrap(), "smithjr");
        assert_eq!(meta_name("Mrs. Mary").unwrap(), "mrsmary");
        let h = us().last_name("Smith Jr.").unwrap();
        assert_eq!(h.google, sha256("smith"));
        assert_eq!(h.meta, sha256("smithjr"));
    }

    #[test]
    fn non_ascii_names() {
        assert_eq!(google_name(" José ").unwrap(), "josé");
        assert_eq!(meta_name(" José ").unwrap(), "josé");
        assert_eq!(
            meta_name("Müller-Lüdenscheidt").unwrap(),
            "müllerlüdenscheidt"
        );
        assert_eq!(google_name("ÅSA").unwrap(), "åsa");
        // Final sigma lowercases correctly.
        assert_eq!(meta_name("ΟΔΥΣΣΕΥΣ").unwrap(), "οδυσσευς");
        assert_eq!(meta_name("Ольга").unwrap(), "ольга");
        assert_eq!(meta_name("山田 太郎").unwrap(), "山田太郎");
        assert_eq!(google_name("山田 太郎").unwrap(), "山田 太郎");
        // Katakana middle dot and full-width punctuation are punctuation.
        assert_eq!(meta_name("ジョン・スミス").unwrap(), "ジョンスミス");
        assert_eq!(meta_name("李（小龙）").unwrap(), "李小龙");
        // Combining marks are part of the letters: virama in Hindi, decomposed accents.
        assert_eq!(meta_name("प्रिया").unwrap(), "प्रिया");
        assert_eq!(meta_name("Jose\u{301}").unwrap(), "jose\u{301}");
        assert_eq!(meta_name("محمد").unwrap(), "محمد");
        // Curly apostrophe, emoji, zero-width space go.
        assert_eq!(meta_name("D\u{2019}Angelo\u{200b} 😀").unwrap(), "dangelo");
        let h = us().first_name("José").unwrap();
        assert_eq!(h.google, sha256("josé"));
    }

    #[test]
    fn digits_in_names() {
        assert_eq!(google_name("R2D2").unwrap(), "r2d2");
        assert_eq!(meta_name("R2D2").unwrap(), "rd");
    }

    #[test]
    fn invalid_names() {
        let n = us();
        for raw in ["", "   ", "...", "-", "'", "😀", "、"] {
            assert_eq!(
                n.first_name(raw),
                Err(IdentityError::InvalidName),
                "{raw:?}"
            );
            assert_eq!(n.last_name(raw), Err(IdentityError::InvalidName), "{raw:?}");
        }
        // Google keeps digits, Meta has nothing left: not usable for both.
        assert_eq!(n.first_name("123"), Err(IdentityError::InvalidName));
    }

    // --- country ---

    #[test]
    fn countries() {
        let n = us();
        assert_eq!(n.country(" us ").unwrap(), "US");
        assert_eq!(n.country("gB").unwrap(), "GB");
        assert_eq!(n.country("AQ").unwrap(), "AQ");
        for raw in [
            "",
            " ",
            "USA",
            "UK",
            "XK",
            "ZZ",
            "U",
            "1A",
            "U S",
            "ÜS",
            "United States",
        ] {
            assert_eq!(
                n.country(raw),
                Err(IdentityError::InvalidCountry),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn iso_list_is_sorted_and_covers_phone_regions() {
        assert!(ISO_3166_ALPHA2.windows(2).all(|w| w[0] < w[1]));
        assert!(ISO_3166_ALPHA2.iter().all(|c| c.len() == 2));
        // Every phone region is ISO except the non-ISO CLDR ones (and "001", non-geographic).
        for meta in phonenumber::metadata::DATABASE.iter() {
            let id = meta.id();
            if !["AC", "TA", "XK", "001"].contains(&id) {
                assert!(is_iso_alpha2(id), "{id}");
                assert!(Normalizer::new(id).is_ok(), "{id}");
            }
        }
    }

    // --- postal code ---

    #[test]
    fn postal_stored_form() {
        let n = us();
        assert_eq!(n.postal_code(" sw1a   1aa ").unwrap(), "SW1A 1AA");
        assert_eq!(n.postal_code("94043-1351").unwrap(), "94043-1351");
        assert_eq!(n.postal_code("k1a\t0b1").unwrap(), "K1A 0B1");
        assert_eq!(
            n.postal_code("1234567890123456").unwrap(),
            "1234567890123456"
        );
    }

    #[test]
    fn invalid_postal_codes() {
        let n = us();
        for raw in [
            "",
            "   ",
            "12345678901234567",
            "941#43",
            "9404€",
            "ü1234",
            "---",
            "12_34",
        ] {
            assert_eq!(
                n.postal_code(raw),
                Err(IdentityError::InvalidPostalCode),
                "{raw:?}"
            );
        }
    }

    // --- no PII in errors ---

    #[test]
    fn errors_never_contain_the_input() {
        let n = us();
        let secret = "zq7Secret";
        let inputs: Vec<(String, Result<(), IdentityError>)> = vec![
            (
                format!("{secret}@"),
                n.email(&format!("{secret}@")).map(drop),
            ),
            (
                format!("+1{secret}"),
                n.phone(&format!("+1{secret}"), None).map(drop),
            ),
            (
                format!("{secret}7"),
                n.phone(&format!("{secret}7"), Some(secret)).map(drop),
            ),
            ("...".to_owned(), n.first_name("...").map(drop)),
            (secret.to_owned(), n.country(secret).map(drop)),
            (
                format!("{secret}#"),
                n.postal_code(&format!("{secret}#")).map(drop),
            ),
            (secret.to_owned(), Normalizer::new(secret).map(drop)),
        ];
        let mut kinds = Vec::new();
        for (raw, r) in inputs {
            let e = r.expect_err("invalid input");
            kinds.push(e);
            for text in [e.to_string(), format!("{e:?}")] {
                assert!(!text.contains(&raw), "{text}");
                assert!(
                    !text.to_lowercase().contains(&secret.to_lowercase()),
                    "{text}"
                );
            }
        }
        for k in [
            IdentityError::InvalidEmail,
            IdentityError::InvalidPhone(PhoneFault::NotANumber),
            IdentityError::InvalidRegion,
            IdentityError::InvalidName,
            IdentityError::InvalidCountry,
            IdentityError::InvalidPostalCode,
        ] {
            let same = |e: &IdentityError| std::mem::discriminant(e) == std::mem::discriminant(&k);
            assert!(kinds.iter().any(same), "{k:?} not exercised");
        }
    }
}
