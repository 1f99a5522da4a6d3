//! Checks of the `[[destinations]]` tables: names, budgets, the lists' audiences and list ids,
//! and the keys each kind needs. `service::assemble` runs them with the other sections' checks.

use std::collections::HashSet;
use std::time::Duration;

use crate::config::{ConfigError, DestinationConfig, DestinationKind};

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::invalid(key, reason)
}

/// Checks each destination in order, and that no earlier one has its name; `audiences` are
/// the names of the configured audiences (the lapsed tiers' depend on `[audiences]`).
pub fn destinations(list: &[DestinationConfig], audiences: &[String]) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (i, d) in list.iter().enumerate() {
        validate(d, i, audiences)?;
        if !names.insert(d.name.as_str()) {
            return Err(invalid(
                &format!("destinations[{i}].name"),
                "must be unique",
            ));
        }
    }
    Ok(())
}

/// Checks one destination: its name, budgets, lists and the keys its kind needs.
fn validate(d: &DestinationConfig, i: usize, names: &[String]) -> Result<(), ConfigError> {
    let key = |k: &str| format!("destinations[{i}].{k}");
    if d.name.is_empty()
        || !d
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(invalid(
            &key("name"),
            "must be non-empty letters, digits, '_' or '-'",
        ));
    }
    if d.quota_per_minute == Some(0) {
        return Err(invalid(&key("quota_per_minute"), "must be at least 1"));
    }
    if d.read_quota_per_minute == Some(0) {
        return Err(invalid(&key("read_quota_per_minute"), "must be at least 1"));
    }
    for (j, l) in d.lists.iter().enumerate() {
        if !names.contains(&l.audience) {
            return Err(invalid(
                &key(&format!("lists[{j}].audience")),
                format!(
                    "unknown audience `{}` (known: {})",
                    l.audience,
                    names.join(", ")
                ),
            ));
        }
        if d.kind != DestinationKind::Csv {
            let field = key(&format!("lists[{j}].list_id"));
            match (l.list_id.is_empty(), l.create) {
                (true, false) => {
                    return Err(invalid(
                        &field,
                        "name the network's list id, or set create = true",
                    ))
                }
                (false, true) => {
                    return Err(invalid(
                        &field,
                        "set either list_id or create = true, not both",
                    ))
                }
                (false, false) if !l.list_id.chars().all(|c| c.is_ascii_digit()) => {
                    return Err(invalid(&field, "must be the network's numeric list id"))
                }
                _ => {}
            }
            if l.create && d.kind == DestinationKind::Meta && d.ad_account_id.is_none() {
                return Err(invalid(
                    &key("ad_account_id"),
                    "is required to create Meta audiences",
                ));
            }
        }
    }
    let need = |field: &str, present: bool| {
        if present {
            Ok(())
        } else {
            Err(invalid(
                &key(field),
                format!("is required for kind = {:?}", d.kind).to_lowercase(),
            ))
        }
    };
    match d.kind {
        DestinationKind::Csv => need("dir", d.dir.is_some()),
        DestinationKind::Google => {
            need("operating_account_id", d.operating_account_id.is_some())?;
            need("credentials_file", d.credentials_file.is_some())
        }
        DestinationKind::Meta => {
            if d.replace_session_window < Duration::from_secs(1) {
                return Err(invalid(
                    &key("replace_session_window"),
                    "must be at least 1s",
                ));
            }
            need("access_token_file", d.access_token_file.is_some())
        }
    }
}
