//! proptest strategies for protocol events, valid or not: empty, huge and non-ASCII strings,
//! unknown enum values, far-future and out-of-range timestamps, negative money, missing
//! kinds. Used by the bad-input suites (tests/fuzz_smoke.rs, tests/bad_input_e2e.rs).

use audiencesync::proto::v1;
use proptest::prelude::*;

/// Strings a shop's services could send by mistake, or an attacker on purpose.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".into()),
        "[a-zA-Z0-9@.+ _'-]{1,24}",
        "[a-z]{1,10}@[a-z]{1,10}\\.[a-z]{2,3}",
        "\\+?[0-9 ()-]{3,20}",
        any::<String>().prop_map(|s| s.chars().take(40).collect()),
        "\\PC{100,300}",
        Just("x".repeat(129)),
        Just("\u{0}\u{202e}\u{feff}é\u{301}ß🙂".into()),
    ]
    .boxed()
}

pub fn timestamp(now_secs: i64) -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    let secs = now_secs;
    prop_oneof![
        Just(None),
        (secs - 2_000 * 86_400..secs + 600, 0i32..1_000_000_000)
            .prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos })),
        (any::<i64>(), any::<i32>())
            .prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos })),
    ]
}

pub fn consent() -> impl Strategy<Value = Option<i32>> {
    proptest::option::of(prop_oneof![0i32..3, any::<i32>()])
}

pub fn money() -> impl Strategy<Value = Option<v1::Money>> {
    let currency = prop_oneof![
        Just("USD".to_string()),
        Just("JPY".to_string()),
        Just("usd".to_string()),
        Just("EUR".to_string()),
        text()
    ];
    proptest::option::of(
        (prop_oneof![0i64..1_000_000, any::<i64>()], currency).prop_map(
            |(amount_minor, currency)| v1::Money {
                amount_minor,
                currency,
            },
        ),
    )
}

pub fn kind(now_secs: i64) -> BoxedStrategy<Option<v1::event::Kind>> {
    use v1::event::Kind;
    let o = || proptest::option::of(text());
    prop_oneof![
        Just(None),
        (
            (text(), o(), o(), o(), o(), o(), o()),
            (timestamp(now_secs), consent(), consent())
        )
            .prop_map(
                |((id, email, phone, first, last, country, postal), (reg, a, p))| {
                    Some(Kind::CustomerUpserted(v1::CustomerUpserted {
                        customer_id: id,
                        email,
                        phone,
                        first_name: first,
                        last_name: last,
                        country,
                        postal_code: postal,
                        registered_at: reg,
                        ad_user_data: a,
                        ad_personalization: p,
                    }))
                }
            )
            .boxed(),
        (text(), text(), money(), any::<u32>()).prop_map(|(o, c, total, n)| Some(
            Kind::OrderPlaced(v1::OrderPlaced {
                order_id: o,
                customer_id: c,
                total,
                item_count: n,
            })
        )),
        (text(), any::<i64>(), any::<bool>()).prop_map(|(o, a, full)| Some(Kind::OrderRefunded(
            v1::OrderRefunded {
                order_id: o,
                amount_minor: a,
                full,
            }
        ))),
        (text(), text(), any::<u32>(), money()).prop_map(|(k, c, n, value)| Some(
            Kind::CartUpdated(v1::CartUpdated {
                cart_id: k,
                customer_id: c,
                item_count: n,
                value,
            })
        )),
        (text(), text()).prop_map(|(k, o)| Some(Kind::CartCheckedOut(v1::CartCheckedOut {
            cart_id: k,
            order_id: o,
        }))),
        (text(), consent(), consent()).prop_map(|(c, a, p)| Some(Kind::ConsentChanged(
            v1::ConsentChanged {
                customer_id: c,
                ad_user_data: a,
                ad_personalization: p,
            }
        ))),
        text().prop_map(|c| Some(Kind::CustomerErased(v1::CustomerErased { customer_id: c }))),
    ]
    .boxed()
}

/// Any event, valid or not.
pub fn event(now_secs: i64) -> BoxedStrategy<v1::Event> {
    (text(), timestamp(now_secs), kind(now_secs))
        .prop_map(|(event_id, occurred_at, kind)| v1::Event {
            event_id,
            occurred_at,
            kind,
        })
        .boxed()
}
