//! `--format shopify-orders`: Shopify admin's orders CSV export.
//!
//! The export has one line per line item; the order's own fields (Email, Total, Created at,
//! Billing …) are only on its first line, and every line repeats the order's Name. Consecutive
//! lines with the same Name form one order, which becomes a customer upsert, an order and,
//! when "Refunded Amount" > 0, a refund. The export has no customer id: the customer id is
//! derived from the email (else the phone) by hashing, so no raw identifier ends up in an id.

use std::collections::HashMap;
use std::path::Path;

use super::{util, BadRow, ImportError, Item, Sink};
use crate::proto::v1::{self, event::Kind, Event};

const FORMAT: &str = "shopify-orders";

/// The columns read, by their names in Shopify's export (matched case-insensitively).
struct Columns {
    name: usize,
    id: Option<usize>,
    email: Option<usize>,
    phone: Option<usize>,
    billing_phone: Option<usize>,
    billing_name: Option<usize>,
    billing_country: Option<usize>,
    billing_zip: Option<usize>,
    accepts_marketing: Option<usize>,
    currency: usize,
    total: usize,
    created_at: usize,
    quantity: Option<usize>,
    refunded: Option<usize>,
    cancelled_at: Option<usize>,
}

impl Columns {
    fn find(headers: &csv::StringRecord, path: &Path) -> Result<Self, ImportError> {
        let index: HashMap<String, usize> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim().to_ascii_lowercase(), i))
            .collect();
        let opt = |n: &str| index.get(&n.to_ascii_lowercase()).copied();
        let req = |n: &str| {
            opt(n).ok_or_else(|| ImportError::File {
                path: path.to_path_buf(),
                reason: format!("no {n:?} column: not a Shopify orders export?"),
            })
        };
        Ok(Self {
            name: req("Name")?,
            id: opt("Id"),
            email: opt("Email"),
            phone: opt("Phone"),
            billing_phone: opt("Billing Phone"),
            billing_name: opt("Billing Name"),
            billing_country: opt("Billing Country"),
            billing_zip: opt("Billing Zip"),
            accepts_marketing: opt("Accepts Marketing"),
            currency: req("Currency")?,
            total: req("Total")?,
            created_at: req("Created at")?,
            quantity: opt("Lineitem quantity"),
            refunded: opt("Refunded Amount"),
            cancelled_at: opt("Cancelled at"),
        })
    }
}

/// One order being gathered over its line-item lines.
struct Order {
    name: String,
    line: u64,
    first: csv::StringRecord,
    items: u64,
}

/// Reads one export file.
pub(crate) fn read(path: &Path, sink: &mut dyn Sink) -> Result<(), ImportError> {
    let mut reader =
        csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(std::io::BufReader::with_capacity(
                1 << 20,
                super::open(path)?,
            ));
    let cols = Columns::find(
        reader.headers().map_err(|e| ImportError::File {
            path: path.to_path_buf(),
            reason: format!("CSV header: {e}"),
        })?,
        path,
    )?;
    let mut current: Option<Order> = None;
    let mut record = csv::StringRecord::new();
    loop {
        let more = match reader.read_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let pos = e.position().map(|p| p.byte()).unwrap_or(0);
                sink.row();
                if !sink.push(Item::Bad(BadRow::new(line, "csv", csv_reason(&e))), pos) {
                    return Ok(());
                }
                continue;
            }
        };
        let pos = record.position().map(|p| p.byte()).unwrap_or(0);
        if !more {
            if let Some(order) = current.take() {
                emit(&cols, order, sink, pos);
            }
            return Ok(());
        }
        sink.row();
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let name = record.get(cols.name).unwrap_or("").trim().to_string();
        if name.is_empty() {
            if !sink.push(Item::Bad(BadRow::new(line, "Name", "empty")), pos) {
                return Ok(());
            }
            continue;
        }
        let qty = match cols.quantity.and_then(|i| util::non_empty(record.get(i))) {
            None => Ok(0),
            Some(q) => q.parse::<u64>().map_err(|_| "not a whole number"),
        };
        let qty = match qty {
            Ok(q) => q,
            Err(reason) => {
                if !sink.push(
                    Item::Bad(BadRow::new(line, "Lineitem quantity", reason)),
                    pos,
                ) {
                    return Ok(());
                }
                0
            }
        };
        match current.as_mut() {
            Some(order) if order.name == name => order.items += qty,
            _ => {
                if let Some(order) = current.take() {
                    if !emit(&cols, order, sink, pos) {
                        return Ok(());
                    }
                }
                current = Some(Order {
                    name,
                    line,
                    first: record.clone(),
                    items: qty,
                });
            }
        }
    }
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".into(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields, expected {expected_len}"),
        _ => "unreadable CSV record".into(),
    }
}

/// Turns a gathered order into its events; false when the sink wants no more.
fn emit(cols: &Columns, order: Order, sink: &mut dyn Sink, pos: u64) -> bool {
    let line = order.line;
    match build(cols, &order) {
        Ok(events) => events
            .into_iter()
            .all(|e| sink.push(Item::Event(line, e), pos)),
        Err((field, reason)) => sink.push(Item::Bad(BadRow::new(line, field, reason)), pos),
    }
}

type Fault = (&'static str, String);

fn build(cols: &Columns, order: &Order) -> Result<Vec<Event>, Fault> {
    let r = &order.first;
    let get = |i: Option<usize>| util::non_empty(i.and_then(|i| r.get(i)));
    let order_id = get(cols.id).unwrap_or(&order.name).to_string();
    let email = get(cols.email);
    // Spreadsheet round-trips prefix phone numbers with an apostrophe to keep the "+".
    let phone = get(cols.phone)
        .or(get(cols.billing_phone))
        .map(|p| p.trim_start_matches('\''));
    let customer_id = util::customer_id_from("shopify:", email, phone).ok_or((
        "Email",
        "no email or phone to identify the customer; order skipped".to_string(),
    ))?;
    let created = util::parse_time(get(Some(cols.created_at)).unwrap_or(""))
        .map_err(|e| ("Created at", e.to_string()))?;
    let currency = get(Some(cols.currency)).unwrap_or("");
    let total = util::parse_money(get(Some(cols.total)).unwrap_or(""), currency).map_err(|e| {
        let field = if e.contains("currency") {
            "Currency"
        } else {
            "Total"
        };
        (field, e.to_string())
    })?;
    let refunded = match get(cols.refunded) {
        None => 0,
        Some(s) => {
            util::parse_money(s, currency)
                .map_err(|e| ("Refunded Amount", e.to_string()))?
                .amount_minor
        }
    };
    let (first_name, last_name) = match get(cols.billing_name) {
        None => (None, None),
        Some(full) => match full.split_once(char::is_whitespace) {
            Some((f, l)) => (Some(f.trim().to_string()), Some(l.trim().to_string())),
            None => (Some(full.to_string()), None),
        },
    };
    let consent = get(cols.accepts_marketing)
        .and_then(util::parse_bool)
        .map(util::consent);
    let items =
        u32::try_from(order.items).map_err(|_| ("Lineitem quantity", "too large".into()))?;

    let mut events = vec![
        Event {
            event_id: util::event_id(&[FORMAT, "customer", &order_id]),
            occurred_at: Some(created),
            kind: Some(Kind::CustomerUpserted(v1::CustomerUpserted {
                customer_id: customer_id.clone(),
                email: email.map(str::to_string),
                phone: phone.map(str::to_string),
                first_name,
                last_name,
                country: get(cols.billing_country).map(str::to_string),
                postal_code: get(cols.billing_zip).map(str::to_string),
                registered_at: None,
                ad_user_data: consent,
                ad_personalization: consent,
            })),
        },
        util::order_event(
            [FORMAT, "order", order_id.as_str()],
            order_id.clone(),
            customer_id,
            total.clone(),
            items,
            created,
        ),
    ];
    if refunded > 0 {
        // The export has no refund date: the cancellation time when there is one, else the
        // order's own time (refunds only change the order's net value, not its recency).
        let at = get(cols.cancelled_at)
            .and_then(|s| util::parse_time(s).ok())
            .unwrap_or(created);
        let parts = [FORMAT, "order", order_id.as_str()];
        events.push(util::refund_event(
            parts,
            order_id.clone(),
            refunded,
            total.amount_minor,
            at,
        ));
    }
    Ok(events)
}
