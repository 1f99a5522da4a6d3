//! The store of customer facts: the write-ahead log, the on-disk records, the sled trees,
//! recovery, and the facts in memory ([`state::State`]).
//!
//! Architecture invariant: the ledger knows nothing above it. Audiences, insights, the
//! writer thread and its change feed, sync, metrics and transport are built on top; what they
//! keep in a customer record (memberships, audience entries) is stored here as plain data
//! ([`customer_record`]) whose meaning lives with them.

pub mod checkpoint;
pub mod customer_record;
pub mod facts;
pub mod marker;
pub mod order_chunks;
pub mod orders;
pub mod profile;
pub mod records;
pub mod recovery;
pub mod seen;
pub mod state;
pub mod store;
pub mod wal;
