//! `--format jsonl`: one `audiencesync.v1.Event` per line in the proto's canonical JSON mapping
//! (lowerCamelCase or proto names, enums as names or numbers, int64 as strings or numbers,
//! RFC 3339 timestamps), read straight into the prost type the client sends (`event_json`).

use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{event_json, util, BadRow, ImportError, Item, Sink};
use crate::proto::v1::Event;

/// Reads one JSON Lines file. Blank lines and lines starting with `#` or `//` are skipped. A
/// line without `eventId` gets `imp:` + SHA-256 of the line, so a re-import dedups it too.
pub(crate) fn read(path: &Path, sink: &mut dyn Sink) -> Result<(), ImportError> {
    let mut reader = BufReader::with_capacity(1 << 20, super::open(path)?);
    let mut line = String::new();
    let mut pos = 0u64;
    let mut lineno = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|source| ImportError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if n == 0 {
            return Ok(());
        }
        pos += n as u64;
        lineno += 1;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') || text.starts_with("//") {
            continue;
        }
        sink.row();
        let item = match decode(text) {
            Ok(mut event) => {
                if event.event_id.is_empty() {
                    event.event_id = util::event_id(&["jsonl", text]);
                }
                Item::Event(lineno, event)
            }
            Err(reason) => Item::Bad(BadRow::new(lineno, "json", reason)),
        };
        if !sink.push(item, pos) {
            return Ok(());
        }
    }
}

/// One line (without its newline) as the importer decodes it; the reason of an error names
/// the field but never a value.
pub fn decode(text: &str) -> Result<Event, String> {
    event_json::decode(text).map_err(|e| redact(&e.to_string()))
}

/// Drops quoted values from a parser message: they may be an email or a phone number. Values
/// are quoted as Rust debug strings, so a `\` inside quotes escapes the next character.
fn redact(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in msg.chars() {
        if quoted {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
        } else if c == '"' {
            out.push_str("\"…\"");
            quoted = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_decodes() {
        let e = decode(
            r#"{"eventId":"e1","occurredAt":"2024-03-05T19:22:01Z","orderPlaced":{"orderId":"o1","customerId":"c1","total":{"amountMinor":"1234","currency":"USD"},"itemCount":2}}"#,
        )
        .expect("decodes");
        assert_eq!(e.event_id, "e1");
        assert_eq!(e.occurred_at.map(|t| t.seconds), Some(1_709_666_521));
        let e = decode(
            r#"{"eventId":"e2","occurredAt":"2024-03-05T19:22:01Z","customerUpserted":{"customerId":"c1","adUserData":"CONSENT_STATUS_GRANTED"}}"#,
        )
        .expect("enum as string");
        assert!(matches!(
            e.kind,
            Some(crate::proto::v1::event::Kind::CustomerUpserted(c)) if c.ad_user_data == Some(1)
        ));
        let err =
            decode(r#"{"eventId":"e3","bogus":"mary@example.com"}"#).expect_err("unknown field");
        assert!(!err.contains("mary"), "{err}");
        let err = decode(r#"{"consentChanged":{"adUserData":"mary@example.com"}}"#)
            .expect_err("unknown enum name");
        assert!(!err.contains("mary"), "{err}");
        // A value with quotes in it: serde's message escapes them.
        let err = decode(r#"{"orderRefunded":{"full":"ask \"mary@example.com\" first"}}"#)
            .expect_err("not a bool");
        assert!(!err.contains("mary"), "{err}");
    }

    #[test]
    fn redact_hides_values() {
        assert_eq!(
            redact(r#"invalid type: string "a@b.c", expected"#),
            "invalid type: string \"…\", expected"
        );
        assert_eq!(
            redact(r#"string "a\"b@c.d\\" at line 1"#),
            "string \"…\" at line 1"
        );
    }
}
