//! Identifier normalization and hashing at ingest, per ad-network rules.
//!
//! This is the only place raw PII exists: each identifier is normalized the way each network
//! documents it (Google Data Manager "Format user data"; Meta Custom Audiences "Hashing and
//! normalization for multi-key") and hashed with SHA-256 straight away. Only digests leave this
//! module, except country and postal code, which Google requires in clear and which are kept in a
//! normalized form. Error values carry no input, so nothing raw can reach a log through them.

use super::phone::{self, Region};
use crate::hashing::{sha256, NetworkHashes};

pub mod email;
pub mod name;

use email::{google_email, meta_email};
use name::{google_name, meta_name};

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
