//! Meta's own forms of a member's identifiers: one row of hex SHA-256 values in
//! [`SCHEMA`](super::SCHEMA) order, with the postal code and country normalized as Meta's multi-key guide asks before
//! they are hashed.

use crate::hashing::{hex_lower, sha256, NetworkHashes};
use crate::sync::member::RemoteMember;

/// One member as a row in [`SCHEMA`](super::SCHEMA) order.
pub fn row(m: &RemoteMember) -> [String; 6] {
    let h = |x: &Option<NetworkHashes>| x.map(|n| hex_lower(&n.meta)).unwrap_or_default();
    [
        h(&m.email),
        h(&m.phone),
        h(&m.first_name),
        h(&m.last_name),
        m.postal_code
            .as_deref()
            .map(|z| hex_lower(&sha256(&meta_postal(z, m.country.as_deref()))))
            .unwrap_or_default(),
        m.country
            .as_deref()
            .map(|c| hex_lower(&sha256(&meta_country(c))))
            .unwrap_or_default(),
    ]
}

/// Meta's postal form from the stored form, to be hashed: lowercase, no whitespace; `US` keeps
/// the first 5 digits; `GB` is cut to area/district/sector ("SW1A 1AA" -> "sw1a1") as Meta's
/// docs ask. Other countries keep hyphens (Meta's docs do not say to cut at `-`; its SDKs do).
pub fn meta_postal(stored: &str, country: Option<&str>) -> String {
    let s: String = stored
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    if is_country(country, "US") {
        let b = s.as_bytes();
        if b.len() >= 5 && b[..5].iter().all(u8::is_ascii_digit) {
            return s[..5].to_owned();
        }
    } else if is_country(country, "GB") {
        // Full UK postcode: outward code (2-4 chars, starting with a letter) + digit + 2 letters.
        let b = s.as_bytes();
        let n = b.len();
        if (5..=7).contains(&n)
            && b[0].is_ascii_alphabetic()
            && b[..n - 3].iter().all(u8::is_ascii_alphanumeric)
            && b[n - 3].is_ascii_digit()
            && b[n - 2].is_ascii_alphabetic()
            && b[n - 1].is_ascii_alphabetic()
        {
            return s[..n - 2].to_owned();
        }
    }
    s
}

/// Meta's country form: lowercase alpha-2 (hashed by the caller; Google takes the stored upper
/// case in clear).
pub fn meta_country(stored_alpha2: &str) -> String {
    stored_alpha2.trim().to_ascii_lowercase()
}

/// True if `country` (any case, trimmed) is `code` (upper case).
fn is_country(country: Option<&str>, code: &str) -> bool {
    country.is_some_and(|c| c.trim().eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_vectors_meta_doc() {
        // meta.md 4.1 lists these abbreviated; check the ends.
        let check = |s: &str, head: &str, tail: &str| {
            let h = hex_lower(&sha256(s));
            assert!(h.starts_with(head) && h.ends_with(tail), "{s}: {h}");
        };
        check(&meta_country("US"), "79adb2a2", "4621");
        check(&meta_postal("94046", Some("US")), "295d89c8", "dbd9");
    }

    #[test]
    fn countries() {
        assert_eq!(meta_country("US"), "us");
        assert_eq!(meta_country(" gb "), "gb");
    }

    #[test]
    fn meta_postal_forms() {
        let us = Some("US");
        assert_eq!(meta_postal("94043-1351", us), "94043");
        assert_eq!(meta_postal("94043", us), "94043");
        assert_eq!(meta_postal("K1A 0B1", Some("CA")), "k1a0b1");
        assert_eq!(meta_postal("SW1A 1AA", Some("GB")), "sw1a1");
        assert_eq!(meta_postal("M1 1AE", Some("gb")), "m11");
        assert_eq!(meta_postal("SW1A 1", Some("GB")), "sw1a1");
        assert_eq!(meta_postal("100-0001", Some("JP")), "100-0001");
        assert_eq!(meta_postal("SW1A 1AA", None), "sw1a1aa");
        assert_eq!(meta_postal("9404", us), "9404");
    }

    #[test]
    fn junk_never_panics() {
        let long = "x".repeat(10_000);
        for raw in ["", " ", "-", "😀", "\u{0}", "SW1A", "١٢٣٤٥", &long] {
            for c in [None, Some("US"), Some("GB"), Some("")] {
                let _ = meta_postal(raw, c);
            }
        }
    }
}
