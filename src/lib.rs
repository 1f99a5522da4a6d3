//! audiencesync: ingest commerce events, compute remarketing audiences, push hashed lists to
//! ad networks. See `ARCHITECTURE.md` for the map of the data path.

pub mod api;
pub mod audience;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod failpoint;
pub mod feed;
pub mod hashing;
pub mod import;
pub mod ingest;
pub mod insight;
pub mod ledger;
pub mod metric_names;
pub mod money;
pub mod proto;
pub mod service;
pub mod sync;
pub mod telemetry;
pub mod web;
pub mod writer;
