//! Ingest: decoding is tonic's; here events are validated, identifiers normalized and hashed
//! (digests from `crate::hashing`), and currencies checked (`crate::money`). Raw identifiers
//! exist only inside this module, only in memory.

pub mod identity;
mod phone;
mod phone_patterns;
mod phone_text;
pub mod validate;
