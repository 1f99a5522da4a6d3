//! `--format jsonl`: one `audiencesync.v1.Event` per line in the proto's canonical JSON mapping,
//! decoded through the compiled descriptor set (so the JSON accepted is exactly the contract's:
//! lowerCamelCase or proto names, enums as strings, int64 as strings or numbers, RFC 3339
//! timestamps) and transcoded to the prost type the client sends.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::OnceLock;

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

use super::{util, BadRow, ImportError, Item, Sink};
use crate::proto::v1::Event;

fn event_descriptor() -> Result<&'static MessageDescriptor, String> {
    static DESC: OnceLock<Result<MessageDescriptor, String>> = OnceLock::new();
    DESC.get_or_init(|| {
        let pool = DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| format!("descriptor set: {e}"))?;
        pool.get_message_by_name("audiencesync.v1.Event")
            .ok_or_else(|| "descriptor set lacks audiencesync.v1.Event".to_string())
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Reads one JSON Lines file. Blank lines and lines starting with `#` or `//` are skipped. A
/// line without `eventId` gets `imp:` + SHA-256 of the line, so a re-import dedups it too.
pub(crate) fn read(path: &Path, sink: &mut dyn Sink) -> Result<(), ImportError> {
    let desc = event_descriptor().map_err(|reason| ImportError::File {
        path: path.to_path_buf(),
        reason,
    })?;
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
        let item = match decode(desc, text) {
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

fn decode(desc: &MessageDescriptor, text: &str) -> Result<Event, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let dynamic =
        DynamicMessage::deserialize(desc.clone(), &mut de).map_err(|e| redact(&e.to_string()))?;
    de.end().map_err(|e| redact(&e.to_string()))?;
    Event::decode(dynamic.encode_to_vec().as_slice()).map_err(|e| format!("transcoding: {e}"))
}

/// Drops quoted values from a parser message: they may be an email or a phone number.
fn redact(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut quoted = false;
    for c in msg.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
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
        let desc = event_descriptor().expect("descriptor");
        let e = decode(
            desc,
            r#"{"eventId":"e1","occurredAt":"2024-03-05T19:22:01Z","orderPlaced":{"orderId":"o1","customerId":"c1","total":{"amountMinor":"1234","currency":"USD"},"itemCount":2}}"#,
        )
        .expect("decodes");
        assert_eq!(e.event_id, "e1");
        assert_eq!(e.occurred_at.map(|t| t.seconds), Some(1_709_666_521));
        let e = decode(
            desc,
            r#"{"eventId":"e2","occurredAt":"2024-03-05T19:22:01Z","customerUpserted":{"customerId":"c1","adUserData":"CONSENT_STATUS_GRANTED"}}"#,
        )
        .expect("enum as string");
        assert!(matches!(
            e.kind,
            Some(crate::proto::v1::event::Kind::CustomerUpserted(c)) if c.ad_user_data == Some(1)
        ));
        let err = decode(desc, r#"{"eventId":"e3","bogus":"mary@example.com"}"#)
            .expect_err("unknown field");
        assert!(!err.contains("mary"), "{err}");
    }

    #[test]
    fn redact_hides_values() {
        assert_eq!(
            redact(r#"invalid type: string "a@b.c", expected"#),
            "invalid type: string \"…\", expected"
        );
    }
}
