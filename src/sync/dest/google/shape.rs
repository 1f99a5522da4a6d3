//! Google's own forms of a member's identifiers: the request body's `userIdentifiers` (hashes
//! as hex, address with region and postal code in clear) and the postal code as Google wants it.

use serde_json::{json, Value};

use crate::hashing::hex_lower;
use crate::sync::member::RemoteMember;

/// Members as `audienceMembers` entries. `consent` marks both consents granted, which ingest
/// requests carry and removals do not.
pub fn members_json(members: &[RemoteMember], consent: bool) -> Vec<Value> {
    members
        .iter()
        .map(|m| {
            let mut ids = Vec::new();
            if let Some(e) = &m.email {
                ids.push(json!({"emailAddress": hex_lower(&e.google)}));
            }
            if let Some(p) = &m.phone {
                ids.push(json!({"phoneNumber": hex_lower(&p.google)}));
            }
            if let Some((f, l, country, postal)) = m.address() {
                ids.push(json!({"address": {
                    "givenName": hex_lower(&f.google),
                    "familyName": hex_lower(&l.google),
                    "regionCode": country,
                    "postalCode": google_postal(postal, Some(country)),
                }}));
            }
            let mut member = json!({"userData": {"userIdentifiers": ids}});
            if consent {
                member["consent"] =
                    json!({"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"});
            }
            member
        })
        .collect()
}

/// Google's postal form from the stored form: not hashed. For `US`, 5 digits, or 5 digits and
/// the 4-digit extension as `12345-6789` (Google: the extension may improve matching); a
/// malformed extension is dropped; a code not starting with 5 digits is passed on as stored.
/// Other countries get the stored form: Google says only "don't use postal code extensions",
/// which no other country's format has in a recognizable way. Used for the API and the CSV
/// destination.
pub fn google_postal(stored: &str, country: Option<&str>) -> String {
    let stored = stored.trim();
    if !is_country(country, "US") {
        return stored.to_owned();
    }
    let b = stored.as_bytes();
    if b.len() < 5 || !b[..5].iter().all(u8::is_ascii_digit) {
        return stored.to_owned();
    }
    let (zip5, rest) = stored.split_at(5);
    let ext = rest.strip_prefix(['-', ' ']).unwrap_or(rest);
    if ext.len() == 4 && ext.bytes().all(|b| b.is_ascii_digit()) {
        format!("{zip5}-{ext}")
    } else {
        zip5.to_owned()
    }
}

/// True if `country` (any case, trimmed) is `code` (upper case).
fn is_country(country: Option<&str>, code: &str) -> bool {
    country.is_some_and(|c| c.trim().eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_postal_forms() {
        let us = Some("US");
        assert_eq!(google_postal("94043", us), "94043");
        assert_eq!(google_postal("94043-1351", us), "94043-1351");
        assert_eq!(google_postal("940431351", us), "94043-1351");
        assert_eq!(google_postal("94043 1351", Some("us")), "94043-1351");
        assert_eq!(google_postal("94043-13", us), "94043");
        assert_eq!(google_postal("9404", us), "9404");
        assert_eq!(google_postal("SW1A 1AA", Some("GB")), "SW1A 1AA");
        assert_eq!(google_postal("01310-100", Some("BR")), "01310-100");
        assert_eq!(google_postal("940431351", None), "940431351");
    }

    #[test]
    fn junk_never_panics() {
        let long = "x".repeat(10_000);
        for raw in ["", " ", "-", "😀", "\u{0}", "12345-😀", "١٢٣٤٥", &long] {
            for c in [None, Some("US"), Some("GB"), Some("")] {
                let _ = google_postal(raw, c);
            }
        }
    }
}
