//! Ingest: decoding is tonic's; here events are validated, identifiers normalized and hashed,
//! and money converted. Raw identifiers exist only inside this module, only in memory.

pub mod currency;
pub mod identity;
mod phone;
mod phone_patterns;
pub mod validate;
