//! gRPC services: thin translations between the wire and the core.

pub mod admin;
pub mod audience;
pub mod auth;
pub mod grpc_metrics;
pub mod ingest;
pub mod server;
pub mod tls;

use std::sync::Arc;

use crate::clock::{Nanos, SharedClock, NANOS_PER_SEC};
use crate::config::{Config, ConfigError};
use crate::ingest::currency::CurrencyTable;
use crate::ingest::validate::Validator;
use crate::ledger::Ledger;

/// What the services share.
#[derive(Clone)]
pub struct Context {
    /// The single writer and the state it owns.
    pub ledger: Ledger,
    /// Event validation under the current config.
    pub validator: Arc<Validator>,
    /// Revenue conversion under the current config.
    pub currencies: Arc<CurrencyTable>,
    /// VIP / revenue window in whole seconds.
    pub window_secs: i64,
    /// The manual clock, when `[clock] mode = "manual"`.
    pub manual_clock: Option<crate::clock::ManualClock>,
    /// The sync engine, once started.
    pub sync: Option<Arc<crate::sync::engine::SyncEngine>>,
    /// Time source.
    pub clock: SharedClock,
    /// Most events per batch.
    pub max_batch_events: usize,
}

impl Context {
    /// Builds the context from a validated config.
    pub fn new(
        cfg: &Config,
        ledger: Ledger,
        clock: SharedClock,
        manual_clock: Option<crate::clock::ManualClock>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            ledger,
            validator: Arc::new(Validator::new(cfg)?),
            currencies: Arc::new(CurrencyTable::from_config(&cfg.revenue)?),
            window_secs: i64::try_from(cfg.audiences.vip_window.as_secs()).unwrap_or(i64::MAX),
            manual_clock,
            sync: None,
            clock,
            max_batch_events: cfg.server.max_batch_events,
        })
    }
}

/// A proto timestamp from nanoseconds.
pub fn timestamp(t: Nanos) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.div_euclid(NANOS_PER_SEC),
        nanos: i32::try_from(t.rem_euclid(NANOS_PER_SEC)).unwrap_or(0),
    }
}
