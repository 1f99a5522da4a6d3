//! Ingest: decoding is tonic's; here events are validated, identifiers normalized and hashed
//! (digests from `crate::hashing`), and currencies checked (`crate::money`). Raw identifiers
//! exist only inside this module, only in memory.

pub mod identity;
mod phone;
mod phone_patterns;
mod phone_text;
pub mod validate;

/// Checks `[ingest]`: the default phone region must be one the phone parser knows.
pub fn validate_config(
    cfg: &crate::config::IngestConfig,
) -> Result<(), crate::config::ConfigError> {
    identity::Normalizer::new(&cfg.default_phone_region)
        .map(drop)
        .map_err(|e| {
            crate::config::ConfigError::invalid("ingest.default_phone_region", e.to_string())
        })
}
