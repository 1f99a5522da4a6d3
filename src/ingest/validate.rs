//! Event validation: a proto event becomes a [`Fact`] or a refusal naming the field at fault.
//! This is the only place raw identifiers exist, and only in memory: they are hashed here.
//!
//! What refuses an event and what only drops a field: an event is refused when it cannot be
//! applied at all or would be applied wrongly (no or a malformed event id, customer id, order
//! or cart id; a missing, out-of-range or too-future timestamp, `registered_at` included; money
//! that cannot be read; an unknown consent status). A customer's identifier that cannot be
//! normalized (email, phone, first or last name, country, postal code) is dropped alone: the
//! customer and its other identifiers are still applied, and it stays matchable by those. A
//! dropped identifier is treated as absent from the event, so a value stored before stays; it
//! is reported as a [`Dropped`] (field and reason, never the value).

use crate::clock::{Nanos, NANOS_PER_SEC};
use crate::config::Config;
use crate::ingest::identity::{IdentityError, Normalizer};
use crate::ledger::facts::{Consent, CustomerUpsert, Fact, FactKind, Update};
use crate::money::{CurrencyError, CurrencyTable};
use crate::proto::v1;

/// Longest id (event, customer, order, cart) accepted, in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// Why an event was refused. `reason` never contains an identifier's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    /// Path of the offending field, e.g. `order_placed.total.currency`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// An identifier dropped from an accepted event because it could not be normalized.
/// Carries no value: only where it was and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Path of the field, e.g. `customer_upserted.phone`; one of [`Dropped::FIELDS`].
    pub field: &'static str,
    /// Why it could not be normalized ([`IdentityError::label`] names it in a fixed word).
    pub error: IdentityError,
}

impl Dropped {
    /// Every field that can be dropped.
    pub const FIELDS: [&'static str; 6] =
        [EMAIL, PHONE, FIRST_NAME, LAST_NAME, COUNTRY, POSTAL_CODE];
}

const EMAIL: &str = "customer_upserted.email";
const PHONE: &str = "customer_upserted.phone";
const FIRST_NAME: &str = "customer_upserted.first_name";
const LAST_NAME: &str = "customer_upserted.last_name";
const COUNTRY: &str = "customer_upserted.country";
const POSTAL_CODE: &str = "customer_upserted.postal_code";

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Turns proto events into facts under the configured rules.
#[derive(Debug, Clone)]
pub struct Validator {
    normalizer: Normalizer,
    currencies: CurrencyTable,
    max_future_skew: Nanos,
}

impl Validator {
    /// Builds a validator from a config already checked by `service::assemble`.
    pub fn new(cfg: &Config) -> Result<Self, crate::config::ConfigError> {
        let normalizer = Normalizer::new(&cfg.ingest.default_phone_region).map_err(|e| {
            crate::config::ConfigError::invalid("ingest.default_phone_region", e.to_string())
        })?;
        Ok(Self {
            normalizer,
            currencies: CurrencyTable::from_config(&cfg.revenue)?,
            max_future_skew: i64::try_from(cfg.ingest.max_future_skew.as_nanos())
                .unwrap_or(i64::MAX),
        })
    }

    /// Validates one event against the clock reading `now`; identifiers that cannot be
    /// normalized are left out of the fact (see [`Validator::validate_noting`]).
    pub fn validate(&self, ev: &v1::Event, now: Nanos) -> Result<Fact, Invalid> {
        self.validate_noting(ev, now, &mut Vec::new())
    }

    /// [`Validator::validate`], adding each identifier left out of the fact to `dropped`
    /// (only when the event is accepted).
    pub fn validate_noting(
        &self,
        ev: &v1::Event,
        now: Nanos,
        dropped: &mut Vec<Dropped>,
    ) -> Result<Fact, Invalid> {
        let before = dropped.len();
        let fact = self.check(ev, now, dropped);
        if fact.is_err() {
            dropped.truncate(before);
        }
        fact
    }

    fn check(
        &self,
        ev: &v1::Event,
        now: Nanos,
        dropped: &mut Vec<Dropped>,
    ) -> Result<Fact, Invalid> {
        id("event_id", &ev.event_id)?;
        let at = timestamp("occurred_at", ev.occurred_at.as_ref())?;
        if at > now.saturating_add(self.max_future_skew) {
            return Err(invalid(
                "occurred_at",
                "lies further in the future than the allowed clock skew",
            ));
        }
        let kind = match &ev.kind {
            None => return Err(invalid("kind", "no event kind set")),
            Some(v1::event::Kind::CustomerUpserted(c)) => self.customer_upserted(c, dropped)?,
            Some(v1::event::Kind::OrderPlaced(o)) => self.order_placed(o)?,
            Some(v1::event::Kind::OrderRefunded(r)) => order_refunded(r)?,
            Some(v1::event::Kind::CartUpdated(c)) => self.cart_updated(c)?,
            Some(v1::event::Kind::CartCheckedOut(c)) => {
                id("cart_checked_out.cart_id", &c.cart_id)?;
                if !c.order_id.is_empty() {
                    id("cart_checked_out.order_id", &c.order_id)?;
                }
                FactKind::CartCheckedOut {
                    cart: c.cart_id.as_str().into(),
                }
            }
            Some(v1::event::Kind::ConsentChanged(c)) => {
                id("consent_changed.customer_id", &c.customer_id)?;
                let ad_user_data = consent("consent_changed.ad_user_data", c.ad_user_data)?;
                let ad_personalization =
                    consent("consent_changed.ad_personalization", c.ad_personalization)?;
                if ad_user_data.is_none() && ad_personalization.is_none() {
                    return Err(invalid(
                        "consent_changed",
                        "sets neither ad_user_data nor ad_personalization",
                    ));
                }
                FactKind::ConsentChanged {
                    customer: c.customer_id.as_str().into(),
                    ad_user_data,
                    ad_personalization,
                }
            }
            Some(v1::event::Kind::CustomerErased(c)) => {
                id("customer_erased.customer_id", &c.customer_id)?;
                FactKind::CustomerErased {
                    customer: c.customer_id.as_str().into(),
                }
            }
        };
        Ok(Fact {
            event_id: ev.event_id.as_str().into(),
            at,
            kind,
        })
    }

    fn customer_upserted(
        &self,
        c: &v1::CustomerUpserted,
        dropped: &mut Vec<Dropped>,
    ) -> Result<FactKind, Invalid> {
        const P: &str = "customer_upserted";
        id(&format!("{P}.customer_id"), &c.customer_id)?;
        let n = &self.normalizer;
        let mut drop =
            |field: &'static str, error: IdentityError| dropped.push(Dropped { field, error });
        let country: Update<Box<str>> = normalized(COUNTRY, c.country.as_deref(), &mut drop, |s| {
            n.country(s).map(Into::into)
        });
        // National phone numbers are read in the customer's country; without one, in the
        // default region. A country sent but unreadable is not replaced by the default (it
        // would be a guess that can hash someone else's number): only a phone written with its
        // country code is read then.
        let country_dropped = c.country.as_deref().is_some_and(|s| !s.trim().is_empty())
            && !matches!(country, Some(Some(_)));
        let region = match &country {
            Some(Some(cc)) => Some(cc.as_ref()),
            _ => None,
        };
        let email = normalized(EMAIL, c.email.as_deref(), &mut drop, |s| n.email(s));
        let phone = normalized(PHONE, c.phone.as_deref(), &mut drop, |s| {
            if country_dropped {
                n.phone_without_region(s)
            } else {
                n.phone(s, region)
            }
        });
        let first_name = normalized(FIRST_NAME, c.first_name.as_deref(), &mut drop, |s| {
            n.first_name(s)
        });
        let last_name = normalized(LAST_NAME, c.last_name.as_deref(), &mut drop, |s| {
            n.last_name(s)
        });
        let postal_code: Update<Box<str>> =
            normalized(POSTAL_CODE, c.postal_code.as_deref(), &mut drop, |s| {
                n.postal_code(s).map(Into::into)
            });
        let registered_at = match c.registered_at.as_ref() {
            None => None,
            Some(t) => Some(timestamp(&format!("{P}.registered_at"), Some(t))?),
        };
        Ok(FactKind::CustomerUpserted(Box::new(CustomerUpsert {
            customer: c.customer_id.as_str().into(),
            email,
            phone,
            first_name,
            last_name,
            country,
            postal_code,
            registered_at,
            ad_user_data: consent(&format!("{P}.ad_user_data"), c.ad_user_data)?,
            ad_personalization: consent(&format!("{P}.ad_personalization"), c.ad_personalization)?,
        })))
    }

    fn order_placed(&self, o: &v1::OrderPlaced) -> Result<FactKind, Invalid> {
        id("order_placed.order_id", &o.order_id)?;
        id("order_placed.customer_id", &o.customer_id)?;
        let total = o
            .total
            .as_ref()
            .ok_or_else(|| invalid("order_placed.total", "is required"))?;
        if total.amount_minor < 0 {
            return Err(invalid(
                "order_placed.total.amount_minor",
                "must not be negative",
            ));
        }
        let currency = self
            .currencies
            .accept(&total.currency)
            .map_err(|e| currency_err("order_placed.total.currency", e))?;
        Ok(FactKind::OrderPlaced {
            order: o.order_id.as_str().into(),
            customer: o.customer_id.as_str().into(),
            total_minor: total.amount_minor,
            currency,
            item_count: o.item_count,
        })
    }

    fn cart_updated(&self, c: &v1::CartUpdated) -> Result<FactKind, Invalid> {
        id("cart_updated.cart_id", &c.cart_id)?;
        let customer = if c.customer_id.is_empty() {
            None
        } else {
            id("cart_updated.customer_id", &c.customer_id)?;
            Some(c.customer_id.as_str().into())
        };
        let (value_minor, currency) = match &c.value {
            None => (0, None),
            Some(v) => {
                if v.amount_minor < 0 {
                    return Err(invalid(
                        "cart_updated.value.amount_minor",
                        "must not be negative",
                    ));
                }
                let (cc, _) = crate::money::parse_code(&v.currency)
                    .map_err(|e| currency_err("cart_updated.value.currency", e))?;
                (v.amount_minor, Some(cc))
            }
        };
        Ok(FactKind::CartUpdated {
            cart: c.cart_id.as_str().into(),
            customer,
            item_count: c.item_count,
            value_minor,
            currency,
        })
    }
}

fn order_refunded(r: &v1::OrderRefunded) -> Result<FactKind, Invalid> {
    id("order_refunded.order_id", &r.order_id)?;
    if r.amount_minor < 0 {
        return Err(invalid(
            "order_refunded.amount_minor",
            "must not be negative",
        ));
    }
    if !r.full && r.amount_minor == 0 {
        return Err(invalid(
            "order_refunded.amount_minor",
            "must be positive unless `full` is set",
        ));
    }
    Ok(FactKind::OrderRefunded {
        order: r.order_id.as_str().into(),
        amount_minor: if r.full { 0 } else { r.amount_minor },
        full: r.full,
    })
}

fn id(field: &str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(invalid(
            field,
            format!("is longer than {MAX_ID_BYTES} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Converts a proto timestamp to nanoseconds, refusing values before 1970 or past 2262.
fn timestamp(field: &str, t: Option<&prost_types::Timestamp>) -> Result<Nanos, Invalid> {
    let t = t.ok_or_else(|| invalid(field, "is required"))?;
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(invalid(field, "nanos must be within 0..1e9"));
    }
    if t.seconds < 0 {
        return Err(invalid(field, "lies before 1970-01-01T00:00:00Z"));
    }
    t.seconds
        .checked_mul(NANOS_PER_SEC)
        .and_then(|s| s.checked_add(i64::from(t.nanos)))
        .ok_or_else(|| invalid(field, "lies beyond the year 2262"))
}

fn consent(field: &str, v: Option<i32>) -> Result<Option<Consent>, Invalid> {
    match v {
        None => Ok(None),
        Some(raw) => match v1::ConsentStatus::try_from(raw) {
            Ok(v1::ConsentStatus::Unspecified) => Ok(Some(Consent::Unspecified)),
            Ok(v1::ConsentStatus::Granted) => Ok(Some(Consent::Granted)),
            Ok(v1::ConsentStatus::Denied) => Ok(Some(Consent::Denied)),
            Err(_) => Err(invalid(field, format!("unknown consent status {raw}"))),
        },
    }
}

/// One optional identifier of an upsert: absent stays absent, blank clears, a value is
/// normalized, and one that cannot be is dropped (noted, and absent from the fact).
fn normalized<T>(
    field: &'static str,
    raw: Option<&str>,
    drop: &mut impl FnMut(&'static str, IdentityError),
    f: impl FnOnce(&str) -> Result<T, IdentityError>,
) -> Update<T> {
    match raw {
        None => None,
        Some(s) if s.trim().is_empty() => Some(None),
        Some(s) => match f(s) {
            Ok(v) => Some(Some(v)),
            Err(e) => {
                drop(field, e);
                None
            }
        },
    }
}

fn currency_err(field: &str, e: CurrencyError) -> Invalid {
    invalid(field, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::identity::PhoneFault;

    const NOW: Nanos = 1_800_000_000 * NANOS_PER_SEC;

    fn validator() -> Validator {
        Validator::new(&Config::default()).expect("default config")
    }

    fn ts(secs: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: secs,
            nanos: 0,
        })
    }

    fn event(kind: v1::event::Kind) -> v1::Event {
        v1::Event {
            event_id: "e1".into(),
            occurred_at: ts(1_700_000_000),
            kind: Some(kind),
        }
    }

    fn field_of(ev: &v1::Event) -> String {
        validator()
            .validate(ev, NOW)
            .expect_err("must be invalid")
            .field
    }

    #[test]
    fn names_the_field_at_fault() {
        let mut ev = event(v1::event::Kind::OrderPlaced(v1::OrderPlaced {
            order_id: "o1".into(),
            customer_id: "c1".into(),
            total: Some(v1::Money {
                amount_minor: 100,
                currency: "EUR".into(),
            }),
            item_count: 1,
        }));
        assert_eq!(field_of(&ev), "order_placed.total.currency");
        ev.event_id.clear();
        assert_eq!(field_of(&ev), "event_id");
        ev.event_id = "e".into();
        ev.occurred_at = ts(NOW / NANOS_PER_SEC + 301);
        assert_eq!(field_of(&ev), "occurred_at");
        ev.occurred_at = ts(NOW / NANOS_PER_SEC + 299);
        assert!(validator().validate(&ev, NOW).is_err()); // still EUR
        ev.kind = None;
        assert_eq!(field_of(&ev), "kind");
    }

    fn upsert(c: v1::CustomerUpserted) -> v1::Event {
        event(v1::event::Kind::CustomerUpserted(c))
    }

    fn upsert_of(fact: Fact) -> CustomerUpsert {
        let FactKind::CustomerUpserted(u) = fact.kind else {
            panic!("kind")
        };
        *u
    }

    #[test]
    fn a_bad_identifier_is_dropped_alone_and_never_echoed() {
        let mut dropped = Vec::new();
        let ev = upsert(v1::CustomerUpserted {
            customer_id: "c1".into(),
            email: Some("Mary@Example.com ".into()),
            phone: Some("+1 212 555 01".into()),
            first_name: Some("Mary".into()),
            ..Default::default()
        });
        let u = upsert_of(
            validator()
                .validate_noting(&ev, NOW, &mut dropped)
                .expect("applied"),
        );
        assert!(matches!(u.email, Some(Some(_))));
        assert!(matches!(u.first_name, Some(Some(_))));
        assert_eq!(u.phone, None, "dropped: as if absent");
        assert_eq!(
            dropped,
            vec![Dropped {
                field: "customer_upserted.phone",
                error: IdentityError::InvalidPhone(PhoneFault::NotValid),
            }]
        );
        let text = format!("{:?} {}", dropped[0], dropped[0].error);
        assert!(!text.contains("212"), "{text}");

        // Every identifier at once: each dropped, the customer still applied.
        let mut dropped = Vec::new();
        let ev = upsert(v1::CustomerUpserted {
            customer_id: "c1".into(),
            email: Some("mary@".into()),
            phone: Some("12".into()),
            first_name: Some("!!".into()),
            last_name: Some("..".into()),
            country: Some("UK".into()),
            postal_code: Some("#1".into()),
            registered_at: ts(1_600_000_000),
            ..Default::default()
        });
        let u = upsert_of(
            validator()
                .validate_noting(&ev, NOW, &mut dropped)
                .expect("applied"),
        );
        assert_eq!(
            (
                u.email,
                u.phone,
                u.first_name,
                u.last_name,
                u.country,
                u.postal_code
            ),
            (None, None, None, None, None, None)
        );
        assert!(u.registered_at.is_some());
        let fields: Vec<&str> = dropped.iter().map(|d| d.field).collect();
        assert_eq!(
            fields,
            vec![
                "customer_upserted.country",
                "customer_upserted.email",
                "customer_upserted.phone",
                "customer_upserted.first_name",
                "customer_upserted.last_name",
                "customer_upserted.postal_code",
            ]
        );
        assert!(fields.iter().all(|f| Dropped::FIELDS.contains(f)));
    }

    #[test]
    fn what_still_refuses_the_event() {
        let base = v1::CustomerUpserted {
            customer_id: "c1".into(),
            phone: Some("not a phone".into()),
            ..Default::default()
        };
        let mut dropped = Vec::new();
        for (change, field) in [
            (
                Box::new(|c: &mut v1::CustomerUpserted| c.customer_id.clear())
                    as Box<dyn Fn(&mut v1::CustomerUpserted)>,
                "customer_upserted.customer_id",
            ),
            (
                Box::new(|c: &mut v1::CustomerUpserted| {
                    c.registered_at = Some(prost_types::Timestamp {
                        seconds: -1,
                        nanos: 0,
                    })
                }),
                "customer_upserted.registered_at",
            ),
            (
                Box::new(|c: &mut v1::CustomerUpserted| c.ad_user_data = Some(99)),
                "customer_upserted.ad_user_data",
            ),
        ] {
            let mut c = base.clone();
            change(&mut c);
            let err = validator()
                .validate_noting(&upsert(c), NOW, &mut dropped)
                .expect_err("refused");
            assert_eq!(err.field, field);
            assert!(
                dropped.is_empty(),
                "a refused event drops nothing: {dropped:?}"
            );
        }
        let mut ev = upsert(base);
        ev.event_id.clear();
        assert_eq!(field_of(&ev), "event_id");
        ev.event_id = "e1".into();
        ev.occurred_at = None;
        assert_eq!(field_of(&ev), "occurred_at");
    }

    #[test]
    fn phones_are_read_in_the_country_else_the_default_but_never_a_guess() {
        let read = |country: Option<&str>, phone: &str| {
            let mut dropped = Vec::new();
            let ev = upsert(v1::CustomerUpserted {
                customer_id: "c1".into(),
                phone: Some(phone.into()),
                country: country.map(Into::into),
                ..Default::default()
            });
            let u = upsert_of(
                validator()
                    .validate_noting(&ev, NOW, &mut dropped)
                    .expect("ok"),
            );
            (
                u.phone,
                dropped.iter().map(|d| d.error.label()).collect::<Vec<_>>(),
            )
        };
        let n = Normalizer::new("US").expect("US");
        let gb = n.phone("020 7946 0958", Some("GB")).expect("GB number");
        let us = n.phone("(212) 555-0100", None).expect("US number");
        // In the customer's country.
        assert_eq!(read(Some("gb"), "020 7946 0958"), (Some(Some(gb)), vec![]));
        // Without a country (or a blank one), in the default region (US).
        assert_eq!(read(None, "(212) 555-0100"), (Some(Some(us)), vec![]));
        assert_eq!(read(Some(" "), "(212) 555-0100"), (Some(Some(us)), vec![]));
        // A country that cannot be read: a national number is not guessed in the default
        // region; one with its country code is still read.
        assert_eq!(
            read(Some("UK"), "(212) 555-0100"),
            (None, vec!["invalid_country", "phone_no_region"])
        );
        assert_eq!(
            read(Some("UK"), "+44 20 7946 0958"),
            (Some(Some(gb)), vec!["invalid_country"])
        );
    }

    #[test]
    fn empty_field_clears_absent_field_keeps() {
        let ev = event(v1::event::Kind::CustomerUpserted(v1::CustomerUpserted {
            customer_id: "c1".into(),
            email: Some("mary@example.com".into()),
            phone: Some(String::new()),
            ..Default::default()
        }));
        let fact = validator().validate(&ev, NOW).expect("valid");
        let FactKind::CustomerUpserted(u) = fact.kind else {
            panic!("kind")
        };
        assert!(matches!(u.email, Some(Some(_))));
        assert_eq!(u.phone, Some(None));
        assert_eq!(u.first_name, None);
    }

    #[test]
    fn refunds_must_say_how_much() {
        let ev = event(v1::event::Kind::OrderRefunded(v1::OrderRefunded {
            order_id: "o1".into(),
            amount_minor: 0,
            full: false,
        }));
        assert_eq!(field_of(&ev), "order_refunded.amount_minor");
    }
}
