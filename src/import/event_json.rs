//! One `audiencesync.v1.Event` from the proto3 canonical JSON mapping, read by serde straight
//! into the prost types.
//!
//! It accepts exactly what `prost-reflect` accepts for `events.proto` (the importer's earlier,
//! several times slower path: a `DynamicMessage`, re-encoded and decoded again), with the same
//! error messages: a field by its lowerCamelCase or its proto name; `null` for "not set"; a
//! repeated key overwrites, except that a oneof takes one value (two members of `kind`, or a
//! proto3 `optional` field twice, are refused); integers as numbers, decimal strings or
//! integral floats; enums by name or by any 32-bit number; timestamps in strict RFC 3339 (`T`
//! and `Z` upper case) within years 1..=9999; unknown fields refused. One message differs on
//! purpose: an unknown enum name is quoted with `"`, like every other value in serde's
//! messages, so that the importer's redaction hides it (it may be an email in the wrong
//! column). The tests hold it to `prost-reflect` line by line, over generated lines that cover
//! every field of the descriptor, so a field added to the proto but not here fails them.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};

mod values;
use values::{boolean, consent, int64, string, timestamp, uint32};

use crate::proto::v1::{
    event::Kind, CartCheckedOut, CartUpdated, ConsentChanged, CustomerErased, CustomerUpserted,
    Event, Money, OrderPlaced, OrderRefunded,
};

/// Decodes one JSON text (a whole line, nothing after the object but whitespace).
pub(crate) fn decode(text: &str) -> Result<Event, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let event = de.deserialize_map(MessageVisitor::<Event>(PhantomData))?;
    de.end()?;
    Ok(event)
}

/// A message of `events.proto`: the JSON keys of its fields and how each value is read.
trait JsonMessage: Default {
    /// Reads the value of `key` into `self`; `Ok(false)` when no field has that name.
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

impl JsonMessage for Event {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "eventId" | "event_id" => set(&mut self.event_id, string(map)?),
            "occurredAt" | "occurred_at" => set_some(&mut self.occurred_at, timestamp(map)?),
            "customerUpserted" | "customer_upserted" => set_once(
                &mut self.kind,
                message(map)?.map(Kind::CustomerUpserted),
                "kind",
            )?,
            "orderPlaced" | "order_placed" => {
                set_once(&mut self.kind, message(map)?.map(Kind::OrderPlaced), "kind")?
            }
            "orderRefunded" | "order_refunded" => set_once(
                &mut self.kind,
                message(map)?.map(Kind::OrderRefunded),
                "kind",
            )?,
            "cartUpdated" | "cart_updated" => {
                set_once(&mut self.kind, message(map)?.map(Kind::CartUpdated), "kind")?
            }
            "cartCheckedOut" | "cart_checked_out" => set_once(
                &mut self.kind,
                message(map)?.map(Kind::CartCheckedOut),
                "kind",
            )?,
            "consentChanged" | "consent_changed" => set_once(
                &mut self.kind,
                message(map)?.map(Kind::ConsentChanged),
                "kind",
            )?,
            "customerErased" | "customer_erased" => set_once(
                &mut self.kind,
                message(map)?.map(Kind::CustomerErased),
                "kind",
            )?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonMessage for CustomerUpserted {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "customerId" | "customer_id" => set(&mut self.customer_id, string(map)?),
            "email" => set_once(&mut self.email, string(map)?, "_email")?,
            "phone" => set_once(&mut self.phone, string(map)?, "_phone")?,
            "firstName" | "first_name" => {
                set_once(&mut self.first_name, string(map)?, "_first_name")?
            }
            "lastName" | "last_name" => set_once(&mut self.last_name, string(map)?, "_last_name")?,
            "country" => set_once(&mut self.country, string(map)?, "_country")?,
            "postalCode" | "postal_code" => {
                set_once(&mut self.postal_code, string(map)?, "_postal_code")?
            }
            "registeredAt" | "registered_at" => set_some(&mut self.registered_at, timestamp(map)?),
            "adUserData" | "ad_user_data" => {
                set_once(&mut self.ad_user_data, consent(map)?, "_ad_user_data")?
            }
            "adPersonalization" | "ad_personalization" => set_once(
                &mut self.ad_personalization,
                consent(map)?,
                "_ad_personalization",
            )?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonMessage for Money {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "amountMinor" | "amount_minor" => set(&mut self.amount_minor, int64(map)?),
            "currency" => set(&mut self.currency, string(map)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonMessage for OrderPlaced {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "orderId" | "order_id" => set(&mut self.order_id, string(map)?),
            "customerId" | "customer_id" => set(&mut self.customer_id, string(map)?),
            "total" => set_some(&mut self.total, message(map)?),
            "itemCount" | "item_count" => set(&mut self.item_count, uint32(map)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonMessage for OrderRefunded {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "orderId" | "order_id" => set(&mut self.order_id, string(map)?),
            "amountMinor" | "amount_minor" => set(&mut self.amount_minor, int64(map)?),
            "full" => set(&mut self.full, boolean(map)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonMessage for CartUpdated {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "cartId" | "cart_id" => set(&mut self.cart_id, string(map)?),
            "customerId" | "customer_id" => set(&mut self.customer_id, string(map)?),
            "itemCount" | "item_count" => set(&mut self.item_count, uint32(map)?),
            "value" => set_some(&mut self.value, message(map)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonMessage for CartCheckedOut {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "cartId" | "cart_id" => set(&mut self.cart_id, string(map)?),
            "orderId" | "order_id" => set(&mut self.order_id, string(map)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonMessage for ConsentChanged {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "customerId" | "customer_id" => set(&mut self.customer_id, string(map)?),
            "adUserData" | "ad_user_data" => {
                set_once(&mut self.ad_user_data, consent(map)?, "_ad_user_data")?
            }
            "adPersonalization" | "ad_personalization" => set_once(
                &mut self.ad_personalization,
                consent(map)?,
                "_ad_personalization",
            )?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl JsonMessage for CustomerErased {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "customerId" | "customer_id" => set(&mut self.customer_id, string(map)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

// Field updates. A value of `None` is JSON `null`: the field is left as it is.

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn set_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// A member of a oneof: `kind`, or the hidden one (`_` + the field's name) that each proto3
/// `optional` field is. Set once: a second value is refused, even a repeat of the same key.
fn set_once<T, E: Error>(slot: &mut Option<T>, value: Option<T>, oneof: &str) -> Result<(), E> {
    if value.is_some() {
        if slot.is_some() {
            return Err(E::custom(format!(
                "multiple fields provided for oneof '{oneof}'"
            )));
        }
        *slot = value;
    }
    Ok(())
}

fn message<'de, M: JsonMessage, A: MapAccess<'de>>(map: &mut A) -> Result<Option<M>, A::Error> {
    Ok(map.next_value::<Option<Msg<M>>>()?.map(|v| v.0))
}

/// A field name, borrowed from the line unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_string(V)
    }
}

struct MessageVisitor<M>(PhantomData<M>);

impl<'de, M: JsonMessage> Visitor<'de> for MessageVisitor<M> {
    type Value = M;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<M, A::Error> {
        let mut m = M::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if !m.field(&key, &mut map)? {
                return Err(A::Error::custom(format!("unrecognized field name '{key}'")));
            }
        }
        Ok(m)
    }
}

struct Msg<M>(M);

impl<'de, M: JsonMessage> Deserialize<'de> for Msg<M> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MessageVisitor(PhantomData)).map(Msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;
    use prost::Message as _;
    use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, MessageDescriptor};

    use crate::proto::v1::event::Kind;

    fn event_descriptor() -> MessageDescriptor {
        static DESC: std::sync::OnceLock<MessageDescriptor> = std::sync::OnceLock::new();
        DESC.get_or_init(|| {
            DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET)
                .expect("descriptor set")
                .get_message_by_name("audiencesync.v1.Event")
                .expect("Event")
        })
        .clone()
    }

    /// The importer's earlier path: through the descriptor with prost-reflect, then re-encoded
    /// and decoded as the prost type.
    fn reflect(desc: &MessageDescriptor, text: &str) -> Result<Event, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        let dynamic =
            DynamicMessage::deserialize(desc.clone(), &mut de).map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Event::decode(dynamic.encode_to_vec().as_slice()).map_err(|e| format!("transcoding: {e}"))
    }

    /// prost-reflect's error with the one deliberate difference: an unknown enum name in `"`.
    fn reflect_requoted(desc: &MessageDescriptor, text: &str) -> Result<Event, String> {
        const ENUM: &str = "unrecognized enum value '";
        reflect(desc, text).map_err(|e| match e.split_once(ENUM) {
            Some((before, rest)) => match rest.rsplit_once("' at line") {
                Some((name, after)) => {
                    format!("{before}unrecognized enum value {name:?} at line{after}")
                }
                None => e,
            },
            None => e,
        })
    }

    fn ours(text: &str) -> Result<Event, String> {
        decode(text).map_err(|e| e.to_string())
    }

    fn ts(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos })
    }

    fn money(amount_minor: i64, currency: &str) -> Option<Money> {
        Some(Money {
            amount_minor,
            currency: currency.into(),
        })
    }

    /// Tricky lines and what they decode to (or the error's start), as prost-reflect had them.
    fn cases() -> Vec<(&'static str, Result<Event, &'static str>)> {
        let at = ts(1_709_666_521, 0);
        let ev = |id: &str, occurred_at, kind| Event {
            event_id: id.into(),
            occurred_at,
            kind: Some(kind),
        };
        vec![
            // Each kind, camelCase names, int64 as string and number.
            (
                r#"{"eventId":"a","occurredAt":"2024-03-05T19:22:01Z","customerUpserted":{"customerId":"c","email":"m@x.io","phone":"+12125550136","firstName":"F","lastName":"L","country":"US","postalCode":"10001","registeredAt":"2020-01-01T00:00:00Z","adUserData":"CONSENT_STATUS_GRANTED","adPersonalization":"CONSENT_STATUS_DENIED"}}"#,
                Ok(ev(
                    "a",
                    at,
                    Kind::CustomerUpserted(CustomerUpserted {
                        customer_id: "c".into(),
                        email: Some("m@x.io".into()),
                        phone: Some("+12125550136".into()),
                        first_name: Some("F".into()),
                        last_name: Some("L".into()),
                        country: Some("US".into()),
                        postal_code: Some("10001".into()),
                        registered_at: ts(1_577_836_800, 0),
                        ad_user_data: Some(1),
                        ad_personalization: Some(2),
                    }),
                )),
            ),
            (
                r#"{"eventId":"b","occurredAt":"2024-03-05T19:22:01Z","orderPlaced":{"orderId":"o","customerId":"c","total":{"amountMinor":"1234","currency":"USD"},"itemCount":2}}"#,
                Ok(ev(
                    "b",
                    at,
                    Kind::OrderPlaced(OrderPlaced {
                        order_id: "o".into(),
                        customer_id: "c".into(),
                        total: money(1234, "USD"),
                        item_count: 2,
                    }),
                )),
            ),
            (
                r#"{"eventId":"c","occurredAt":"2024-03-05T19:22:01Z","orderRefunded":{"orderId":"o","amountMinor":250,"full":true}}"#,
                Ok(ev(
                    "c",
                    at,
                    Kind::OrderRefunded(OrderRefunded {
                        order_id: "o".into(),
                        amount_minor: 250,
                        full: true,
                    }),
                )),
            ),
            (
                r#"{"eventId":"d","occurredAt":"2024-03-05T19:22:01Z","cartUpdated":{"cartId":"k","customerId":"c","itemCount":"3","value":{"amountMinor":-5,"currency":"EUR"}}}"#,
                Ok(ev(
                    "d",
                    at,
                    Kind::CartUpdated(CartUpdated {
                        cart_id: "k".into(),
                        customer_id: "c".into(),
                        item_count: 3,
                        value: money(-5, "EUR"),
                    }),
                )),
            ),
            (
                r#"{"eventId":"e","occurredAt":"2024-03-05T19:22:01Z","cartCheckedOut":{"cartId":"k","orderId":"o"}}"#,
                Ok(ev(
                    "e",
                    at,
                    Kind::CartCheckedOut(CartCheckedOut {
                        cart_id: "k".into(),
                        order_id: "o".into(),
                    }),
                )),
            ),
            // Enums as numbers, also ones the enum does not name (proto3 enums are open).
            (
                r#"{"eventId":"f","occurredAt":"2024-03-05T19:22:01Z","consentChanged":{"customerId":"c","adUserData":2,"adPersonalization":7}}"#,
                Ok(ev(
                    "f",
                    at,
                    Kind::ConsentChanged(ConsentChanged {
                        customer_id: "c".into(),
                        ad_user_data: Some(2),
                        ad_personalization: Some(7),
                    }),
                )),
            ),
            (
                r#"{"eventId":"g","occurredAt":"2024-03-05T19:22:01Z","customerErased":{"customerId":"c"}}"#,
                Ok(ev(
                    "g",
                    at,
                    Kind::CustomerErased(CustomerErased {
                        customer_id: "c".into(),
                    }),
                )),
            ),
            // Proto names; fractional seconds and an offset; an escaped key; an integral float.
            (
                r#"{"event_id":"h","occurred_at":"2024-03-05T20:22:01.25+01:00","order_placed":{"order_id":"o","customer_id":"c","total":{"amount_minor":1e3,"currency":"USD"},"item\u005fcount":2.0}}"#,
                Ok(ev(
                    "h",
                    ts(1_709_666_521, 250_000_000),
                    Kind::OrderPlaced(OrderPlaced {
                        order_id: "o".into(),
                        customer_id: "c".into(),
                        total: money(1000, "USD"),
                        item_count: 2,
                    }),
                )),
            ),
            (
                r#"{"eventId":"i","occurredAt":"2024-03-05T14:52:01.123456789-04:30","customerErased":{"customerId":"c"}}"#,
                Ok(ev(
                    "i",
                    ts(1_709_666_521, 123_456_789),
                    Kind::CustomerErased(CustomerErased {
                        customer_id: "c".into(),
                    }),
                )),
            ),
            // null is "not set"; a repeated key overwrites; "" is a set optional field.
            (
                r#"{"eventId":"x","eventId":"j","occurredAt":null,"customerUpserted":{"customerId":null,"email":"","phone":null,"adUserData":null},"orderPlaced":null}"#,
                Ok(Event {
                    event_id: "j".into(),
                    occurred_at: None,
                    kind: Some(Kind::CustomerUpserted(CustomerUpserted {
                        email: Some(String::new()),
                        ..Default::default()
                    })),
                }),
            ),
            // No kind and no id: decodes (the daemon and the id derivation deal with them).
            (
                r#"{"occurredAt":"2024-03-05T19:22:01Z"}"#,
                Ok(Event {
                    occurred_at: at,
                    ..Default::default()
                }),
            ),
            // Refused.
            (
                r#"{"eventId":"k","bogus":"mary@example.com"}"#,
                Err("unrecognized field name 'bogus'"),
            ),
            (
                r#"{"eventId":"k","EventId":"x"}"#,
                Err("unrecognized field name 'EventId'"),
            ),
            (
                r#"{"eventId":1}"#,
                Err("invalid type: integer `1`, expected a string"),
            ),
            (
                r#"{"orderRefunded":{"full":"true"}}"#,
                Err("invalid type: string \"true\", expected a boolean"),
            ),
            (
                r#"{"orderPlaced":{"itemCount":-1}}"#,
                Err("out of range integral type conversion attempted"),
            ),
            (
                r#"{"orderPlaced":{"itemCount":1.5}}"#,
                Err("expected integer value"),
            ),
            (
                r#"{"orderRefunded":{"amountMinor":"12.5"}}"#,
                Err("invalid digit found in string"),
            ),
            (
                r#"{"orderRefunded":{"amountMinor":"9223372036854775808"}}"#,
                Err("number too large to fit in target type"),
            ),
            (
                r#"{"consentChanged":{"adUserData":"GRANTED"}}"#,
                Err("unrecognized enum value \"GRANTED\""),
            ),
            (
                r#"{"consentChanged":{"adUserData":2147483648}}"#,
                Err("out of range integral type conversion attempted"),
            ),
            (
                r#"{"occurredAt":"2024-03-05 19:22:01Z"}"#,
                Err("invalid rfc3339 timestamp: expected 'T' but found ' '"),
            ),
            (
                r#"{"occurredAt":"2024-03-05T19:22:01z"}"#,
                Err("invalid rfc3339 timestamp: expected 'Z', '+' or '-' but found 'z'"),
            ),
            (
                r#"{"occurredAt":"2024-02-30T00:00:00Z"}"#,
                Err("failed to parse RFC-3339 formatted timestamp"),
            ),
            (
                r#"{"occurredAt":"0000-12-31T23:59:59Z"}"#,
                Err("timestamp out of range"),
            ),
            (
                r#"{"occurredAt":1709666521}"#,
                Err("invalid type: integer `1709666521`, expected a rfc3339 timestamp string"),
            ),
            (
                r#"{"orderPlaced":{},"cartUpdated":{}}"#,
                Err("multiple fields provided for oneof 'kind'"),
            ),
            (
                r#"{"customerUpserted":{"email":"","email":"b@x.io"}}"#,
                Err("multiple fields provided for oneof '_email'"),
            ),
            (
                r#"{"orderPlaced":[]}"#,
                Err("invalid type: sequence, expected a map"),
            ),
            (r#"[]"#, Err("invalid type: sequence, expected a map")),
            (r#"{"eventId":"k"} x"#, Err("trailing characters")),
            (r#"{"eventId":"k""#, Err("EOF while parsing an object")),
        ]
    }

    #[test]
    fn tricky_lines_decode_as_prost_reflect_did() {
        let desc = event_descriptor();
        for (line, want) in cases() {
            let got = ours(line);
            assert_eq!(
                got,
                reflect_requoted(&desc, line),
                "differs from prost-reflect: {line}"
            );
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{line}"),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{line}: {got}"),
                (got, want) => panic!("{line}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// Every message reachable from `Event`, with the JSON path of objects that leads to it.
    fn reachable(
        desc: &MessageDescriptor,
        path: Vec<String>,
        out: &mut Vec<(Vec<String>, MessageDescriptor)>,
    ) {
        out.push((path.clone(), desc.clone()));
        for f in desc.fields() {
            if let prost_reflect::Kind::Message(m) = f.kind() {
                if m.full_name() != "google.protobuf.Timestamp" {
                    let mut p = path.clone();
                    p.push(f.json_name().to_string());
                    reachable(&m, p, out);
                }
            }
        }
    }

    #[test]
    fn every_field_of_the_descriptor_is_known_by_both_names() {
        let mut messages = Vec::new();
        reachable(&event_descriptor(), Vec::new(), &mut messages);
        assert_eq!(messages.len(), 10, "Event, the seven kinds, Money (twice)");
        for (path, desc) in messages {
            for f in desc.fields() {
                for name in [f.json_name(), f.name()] {
                    let mut line = format!(r#"{{"{name}":null}}"#);
                    for outer in path.iter().rev() {
                        line = format!(r#"{{"{outer}":{line}}}"#);
                    }
                    assert!(ours(&line).is_ok(), "{line}: {:?}", ours(&line));
                }
            }
        }
    }

    const NULLS_AND_WRONG_TYPES: &[&str] = &["null", "[]", "{}", "true", "\"x\"", "1", "-1", "1.5"];

    fn choose(values: &'static [&'static str]) -> BoxedStrategy<String> {
        proptest::sample::select(values)
            .prop_map(str::to_string)
            .boxed()
    }

    /// JSON values for a field of `f`'s kind: mostly plausible ones, some edge cases, some of
    /// the wrong type.
    fn value(f: &FieldDescriptor, depth: u32) -> BoxedStrategy<String> {
        use prost_reflect::Kind as K;
        let plausible = match f.kind() {
            K::String => choose(&[
                "\"\"",
                "\"a\"",
                "\"jo@example.com\"",
                "\"\\u00e9\\n\\\"q\\\"\"",
                "\"+12125550136\"",
            ]),
            K::Int64 => choose(&[
                "0",
                "-5",
                "1234",
                "\"1234\"",
                "\"-7\"",
                "\"+7\"",
                "\" 7\"",
                "\"\"",
                "1.0",
                "1e3",
                "-2.5",
                "\"1e3\"",
                "\"1.0\"",
                "9223372036854775807",
                "9223372036854775808",
                "-9223372036854775808",
                "-9223372036854775809",
                "\"9223372036854775808\"",
                "9.3e18",
                "9223372036854775807.0",
                "-0",
                "-0.0",
                "1e400",
            ]),
            K::Uint32 => choose(&[
                "0",
                "2",
                "\"2\"",
                "4294967295",
                "4294967296",
                "-1",
                "\"-1\"",
                "2.0",
                "2.5",
                "\"0x10\"",
                "\"+3\"",
                "4294967295.0",
                "-0.0",
            ]),
            K::Bool => choose(&["true", "false", "\"true\"", "0"]),
            K::Enum(_) => choose(&[
                "\"CONSENT_STATUS_GRANTED\"",
                "\"CONSENT_STATUS_DENIED\"",
                "\"CONSENT_STATUS_UNSPECIFIED\"",
                "\"GRANTED\"",
                "\"consent_status_granted\"",
                "0",
                "1",
                "2",
                "7",
                "-1",
                "2147483647",
                "2147483648",
                "-2147483649",
                "1.0",
                "\"1\"",
            ]),
            K::Message(m) if m.full_name() == "google.protobuf.Timestamp" => choose(&[
                "\"2024-03-05T19:22:01Z\"",
                "\"2024-03-05T19:22:01.5Z\"",
                "\"2024-03-05T19:22:01.123456789Z\"",
                "\"2024-03-05T19:22:01.1234567891Z\"",
                "\"2024-03-05T19:22:01+05:30\"",
                "\"2024-03-05T19:22:01-00:00\"",
                "\"2024-03-05T19:22:01.000-23:59\"",
                "\"2024-03-05t19:22:01Z\"",
                "\"2024-03-05T19:22:01z\"",
                "\"2024-03-05 19:22:01Z\"",
                "\"2024-03-05T19:22Z\"",
                "\"2024-03-05T19:22:01.Z\"",
                "\"2024-03-05T19:22:01+0530\"",
                "\"2024-03-05T19:22:01\"",
                "\"2024-02-29T00:00:00Z\"",
                "\"2023-02-29T00:00:00Z\"",
                "\"2024-13-01T00:00:00Z\"",
                "\"2024-03-05T24:00:00Z\"",
                "\"1972-06-30T23:59:60Z\"",
                "\"0000-01-01T00:00:00Z\"",
                "\"0001-01-01T00:00:00Z\"",
                "\"0001-01-01T00:00:00+00:01\"",
                "\"9999-12-31T23:59:59Z\"",
                "\"9999-12-31T23:59:59-00:01\"",
                "\"1969-12-31T23:59:59.999Z\"",
                "\"yesterday\"",
                "\"\"",
            ]),
            K::Message(m) if depth > 0 => message(m, depth - 1),
            K::Message(_) => choose(&["{}"]),
            other => panic!("events.proto has a field of kind {other:?}: add values for it here"),
        };
        prop_oneof![16 => plausible, 1 => choose(NULLS_AND_WRONG_TYPES)].boxed()
    }

    /// A JSON object for `desc`: a few of its fields (by either name, sometimes repeated,
    /// several members of a oneof), now and then an unknown or escaped key.
    fn message(desc: MessageDescriptor, depth: u32) -> BoxedStrategy<String> {
        let fields: Vec<FieldDescriptor> = desc.fields().collect();
        // Now and then (1 in 16 × fields + 1) an unknown key.
        let entry = (0..fields.len() * 16 + 1, 0..8u8).prop_flat_map(move |(i, style)| {
            let Some(f) = fields.get(i / 16) else {
                let key = if style % 2 == 0 { "bogus" } else { "EventId" };
                return (Just(key.to_string()), value_any()).boxed();
            };
            let key = match style {
                0..=3 => f.json_name().to_string(),
                4..=6 => f.name().to_string(),
                // A key with an escape: serde_json cannot lend it from the line.
                _ => f
                    .name()
                    .replacen('_', "\\u005f", 1)
                    .replacen('e', "\\u0065", 1),
            };
            (Just(key), value(f, depth)).boxed()
        });
        proptest::collection::vec(entry, 0..6)
            .prop_map(|entries| {
                let body: Vec<String> = entries
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            })
            .boxed()
    }

    fn value_any() -> BoxedStrategy<String> {
        choose(&["null", "1", "\"mary@example.com\"", "{}", "[1]"])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        /// Generated lines (every field of the descriptor, either name, repeats, nulls, edge
        /// numbers and timestamps, wrong types) decode exactly as prost-reflect decodes them:
        /// the same event, or the same error message.
        #[test]
        fn generated_lines_decode_as_prost_reflect_does(line in message(event_descriptor(), 2)) {
            let desc = event_descriptor();
            prop_assert_eq!(ours(&line), reflect_requoted(&desc, &line), "{}", line);
        }
    }
}
