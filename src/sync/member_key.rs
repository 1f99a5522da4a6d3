//! The key layout of the sled trees that hold members per list (`confirmed.<dest>`,
//! `sending.<dest>`, `staged.<dest>`): `audience \0 customer id`, so one list is one prefix.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use crate::ledger::records::decode;
use crate::ledger::store::StoreError;

/// The key of `customer` in `audience`'s list.
pub(super) fn key(audience: &str, customer: &str) -> Vec<u8> {
    let mut k = list_prefix(audience);
    k.extend_from_slice(customer.as_bytes());
    k
}

/// The prefix of every key of `audience`'s list.
pub(super) fn list_prefix(audience: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(audience.len() + 1);
    k.extend_from_slice(audience.as_bytes());
    k.push(0);
    k
}

/// A tree's values by audience and customer id; `name` is the tree's kind, for the error.
pub(super) fn load<T: DeserializeOwned>(
    tree: &sled::Tree,
    name: &'static str,
) -> Result<HashMap<String, HashMap<Box<str>, T>>, StoreError> {
    let mut lists: HashMap<String, HashMap<Box<str>, T>> = HashMap::new();
    for item in tree.iter() {
        let (k, v) = item?;
        let Some(split) = k.iter().position(|b| *b == 0) else {
            continue;
        };
        let audience = String::from_utf8_lossy(&k[..split]).into_owned();
        let customer: Box<str> = String::from_utf8_lossy(&k[split + 1..]).into();
        let value: T = decode(&v).map_err(|source| StoreError::Corrupt {
            tree: name,
            key: hex::encode(&k),
            source,
        })?;
        lists.entry(audience).or_default().insert(customer, value);
    }
    Ok(lists)
}
