//! `--format csv`: an orders or customers CSV whose columns are named by a TOML mapping
//! (`--mapping`), for shops whose history comes from a spreadsheet or another platform.
//!
//! A file is read as orders when its header has the `[orders]` `order_id` column, else as
//! customers when it has the `[customers]` `customer_id` (or `email`) column.

use std::collections::HashMap;
use std::path::Path;

use super::{util, BadRow, ImportError, Item, Sink};
use crate::proto::v1::{self, event::Kind, Event};

const FORMAT: &str = "csv";

/// Column names of one file kind (each value names a CSV header).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Orders: the shop's order id (required for orders).
    pub order_id: Option<String>,
    /// The shop's customer id; without it the id is derived from the email (else phone).
    pub customer_id: Option<String>,
    /// Orders: when the order was placed (required for orders).
    pub created_at: Option<String>,
    /// Customers: when the row's profile was current (else `registered_at`).
    pub updated_at: Option<String>,
    /// Orders: the order total, a decimal like "12.34" (required for orders).
    pub total: Option<String>,
    /// The currency code column.
    pub currency: Option<String>,
    /// A fixed currency for every row, when the file has no currency column.
    pub default_currency: Option<String>,
    /// Orders: number of items.
    pub item_count: Option<String>,
    /// Orders: amount refunded, a decimal; equal to the total means a full refund.
    pub refunded: Option<String>,
    /// Email address (hashed by the daemon at ingest).
    pub email: Option<String>,
    /// Phone number (hashed by the daemon at ingest).
    pub phone: Option<String>,
    /// Given name (hashed by the daemon at ingest).
    pub first_name: Option<String>,
    /// Family name (hashed by the daemon at ingest).
    pub last_name: Option<String>,
    /// ISO 3166-1 alpha-2 country.
    pub country: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// Customers: registration time.
    pub registered_at: Option<String>,
    /// yes/no, true/false or 1/0: GRANTED or DENIED for both ad consent purposes.
    pub accepts_marketing: Option<String>,
}

/// The `--mapping` file: an `[orders]` and/or a `[customers]` section.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// How to read orders files.
    pub orders: Option<Section>,
    /// How to read customers files.
    pub customers: Option<Section>,
}

impl Mapping {
    /// Reads and checks a mapping file.
    pub fn load(path: &Path) -> Result<Self, ImportError> {
        let bad = |reason: String| ImportError::Mapping {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let m: Mapping = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if let Some(o) = &m.orders {
            for (key, v) in [
                ("order_id", &o.order_id),
                ("created_at", &o.created_at),
                ("total", &o.total),
            ] {
                if v.is_none() {
                    return Err(bad(format!("[orders] needs {key}")));
                }
            }
            if o.currency.is_none() && o.default_currency.is_none() {
                return Err(bad("[orders] needs currency or default_currency".into()));
            }
        }
        if let Some(c) = &m.customers {
            if c.customer_id.is_none() && c.email.is_none() && c.phone.is_none() {
                return Err(bad("[customers] needs customer_id, email or phone".into()));
            }
            if c.updated_at.is_none() && c.registered_at.is_none() {
                return Err(bad("[customers] needs updated_at or registered_at".into()));
            }
        }
        if m.orders.is_none() && m.customers.is_none() {
            return Err(bad("needs an [orders] or a [customers] section".into()));
        }
        Ok(m)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum FileKind {
    Orders,
    Customers,
}

impl FileKind {
    fn name(self) -> &'static str {
        match self {
            FileKind::Orders => "orders",
            FileKind::Customers => "customers",
        }
    }
}

/// A section resolved against one file's header.
struct Resolved<'a> {
    kind: FileKind,
    section: &'a Section,
    index: HashMap<String, usize>,
}

impl Resolved<'_> {
    /// The trimmed cell of the column a mapping key names, if mapped and non-empty.
    fn get<'r>(&self, rec: &'r csv::StringRecord, col: &Option<String>) -> Option<&'r str> {
        let i = *self.index.get(col.as_deref()?)?;
        util::non_empty(rec.get(i))
    }
}

/// Reads one mapped CSV file.
pub(crate) fn read(path: &Path, mapping: &Mapping, sink: &mut dyn Sink) -> Result<(), ImportError> {
    let mut reader =
        csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(std::io::BufReader::with_capacity(
                1 << 20,
                super::open(path)?,
            ));
    let headers = reader.headers().map_err(|e| ImportError::File {
        path: path.to_path_buf(),
        reason: format!("CSV header: {e}"),
    })?;
    let index: HashMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_string(), i))
        .collect();
    let has = |col: &Option<String>| col.as_ref().is_some_and(|c| index.contains_key(c));
    let resolved = match (&mapping.orders, &mapping.customers) {
        (Some(o), _) if has(&o.order_id) => (FileKind::Orders, o),
        (_, Some(c)) if has(&c.customer_id) || has(&c.email) || has(&c.phone) => {
            (FileKind::Customers, c)
        }
        _ => {
            return Err(ImportError::File {
                path: path.to_path_buf(),
                reason: "header has neither the [orders] order_id column nor the [customers] customer_id/email/phone column".into(),
            })
        }
    };
    let r = Resolved {
        kind: resolved.0,
        section: resolved.1,
        index,
    };
    for (key, col) in required(&r) {
        if !col.as_ref().is_some_and(|c| r.index.contains_key(c)) {
            return Err(ImportError::File {
                path: path.to_path_buf(),
                reason: format!(
                    "mapping [{}] {key} = {:?}: no such column",
                    r.kind.name(),
                    col.as_deref().unwrap_or("")
                ),
            });
        }
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                sink.row();
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                let pos = record.position().map(|p| p.byte()).unwrap_or(0);
                let ok = match build(&r, &record) {
                    Ok(events) => events
                        .into_iter()
                        .all(|e| sink.push(Item::Event(line, e), pos)),
                    Err((field, reason)) => {
                        sink.push(Item::Bad(BadRow::new(line, field, reason)), pos)
                    }
                };
                if !ok {
                    return Ok(());
                }
            }
            Err(e) => {
                sink.row();
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let pos = e.position().map(|p| p.byte()).unwrap_or(0);
                if !sink.push(
                    Item::Bad(BadRow::new(line, "csv", "unreadable CSV record")),
                    pos,
                ) {
                    return Ok(());
                }
            }
        }
    }
}

fn required<'a>(r: &Resolved<'a>) -> Vec<(&'static str, &'a Option<String>)> {
    let s = r.section;
    let mut out = match r.kind {
        FileKind::Orders => vec![
            ("order_id", &s.order_id),
            ("created_at", &s.created_at),
            ("total", &s.total),
        ],
        FileKind::Customers => vec![],
    };
    if r.kind == FileKind::Orders && s.default_currency.is_none() {
        out.push(("currency", &s.currency));
    }
    out
}

type Fault = (String, String);

fn fault(col: &Option<String>, reason: impl Into<String>) -> Fault {
    (col.clone().unwrap_or_default(), reason.into())
}

/// The customer upsert of a row, when the row has any profile column; None otherwise.
fn upsert(
    r: &Resolved<'_>,
    rec: &csv::StringRecord,
    customer_id: &str,
) -> Result<Option<v1::CustomerUpserted>, Fault> {
    let s = r.section;
    let text = |col: &Option<String>| r.get(rec, col).map(str::to_string);
    let consent = match r.get(rec, &s.accepts_marketing) {
        None => None,
        Some(v) => Some(util::consent(
            util::parse_bool(v).ok_or_else(|| fault(&s.accepts_marketing, "not yes/no"))?,
        )),
    };
    let registered_at = match r.get(rec, &s.registered_at) {
        None => None,
        Some(v) => Some(util::parse_time(v).map_err(|e| fault(&s.registered_at, e))?),
    };
    let c = v1::CustomerUpserted {
        customer_id: customer_id.to_string(),
        email: text(&s.email),
        phone: text(&s.phone),
        first_name: text(&s.first_name),
        last_name: text(&s.last_name),
        country: text(&s.country),
        postal_code: text(&s.postal_code),
        registered_at,
        ad_user_data: consent,
        ad_personalization: consent,
    };
    let any = c.email.is_some()
        || c.phone.is_some()
        || c.first_name.is_some()
        || c.last_name.is_some()
        || c.country.is_some()
        || c.postal_code.is_some()
        || c.registered_at.is_some()
        || consent.is_some();
    Ok(any.then_some(c))
}

fn build(r: &Resolved<'_>, rec: &csv::StringRecord) -> Result<Vec<Event>, Fault> {
    let s = r.section;
    let customer_id = match r.get(rec, &s.customer_id) {
        Some(id) => id.to_string(),
        None => util::customer_id_from("csv:", r.get(rec, &s.email), r.get(rec, &s.phone))
            .ok_or_else(|| {
                let col = if s.customer_id.is_some() {
                    &s.customer_id
                } else {
                    &s.email
                };
                fault(col, "no customer id, email or phone; row skipped")
            })?,
    };
    match r.kind {
        FileKind::Customers => {
            let (col, at) = match r.get(rec, &s.updated_at) {
                Some(v) => (&s.updated_at, v),
                None => (
                    &s.registered_at,
                    r.get(rec, &s.registered_at)
                        .ok_or_else(|| fault(&s.registered_at, "empty"))?,
                ),
            };
            let at = util::parse_time(at).map_err(|e| fault(col, e))?;
            let Some(c) = upsert(r, rec, &customer_id)? else {
                return Ok(Vec::new());
            };
            Ok(vec![Event {
                event_id: util::event_id(&[
                    FORMAT,
                    "customers",
                    &customer_id,
                    &at.seconds.to_string(),
                    &at.nanos.to_string(),
                ]),
                occurred_at: Some(at),
                kind: Some(Kind::CustomerUpserted(c)),
            }])
        }
        FileKind::Orders => {
            let order_id = r
                .get(rec, &s.order_id)
                .ok_or_else(|| fault(&s.order_id, "empty"))?
                .to_string();
            let created = util::parse_time(r.get(rec, &s.created_at).unwrap_or(""))
                .map_err(|e| fault(&s.created_at, e))?;
            let currency = r
                .get(rec, &s.currency)
                .or(s.default_currency.as_deref())
                .unwrap_or("");
            let total =
                util::parse_money(r.get(rec, &s.total).unwrap_or(""), currency).map_err(|e| {
                    if e.contains("currency") {
                        fault(&s.currency, e)
                    } else {
                        fault(&s.total, e)
                    }
                })?;
            let items = match r.get(rec, &s.item_count) {
                None => 0,
                Some(v) => v
                    .parse::<u32>()
                    .map_err(|_| fault(&s.item_count, "not a whole number"))?,
            };
            let refunded = match r.get(rec, &s.refunded) {
                None => 0,
                Some(v) => {
                    util::parse_money(v, currency)
                        .map_err(|e| fault(&s.refunded, e))?
                        .amount_minor
                }
            };
            let mut events = Vec::with_capacity(3);
            if let Some(c) = upsert(r, rec, &customer_id)? {
                events.push(Event {
                    event_id: util::event_id(&[FORMAT, "orders", &order_id, "customer"]),
                    occurred_at: Some(created),
                    kind: Some(Kind::CustomerUpserted(c)),
                });
            }
            events.push(util::order_event(
                [FORMAT, "orders", order_id.as_str()],
                order_id.clone(),
                customer_id,
                total.clone(),
                items,
                created,
            ));
            if refunded > 0 {
                let parts = [FORMAT, "orders", order_id.as_str()];
                events.push(util::refund_event(
                    parts,
                    order_id.clone(),
                    refunded,
                    total.amount_minor,
                    created,
                ));
            }
            Ok(events)
        }
    }
}
