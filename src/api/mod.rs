//! gRPC services: thin translations between the wire and the core.

pub mod admin;
pub mod audience;
pub mod auth;
pub mod grpc_metrics;
pub mod ingest;
pub mod insight;
pub mod server;
pub mod tls;

use std::sync::Arc;

use crate::clock::{Nanos, SharedClock, NANOS_PER_SEC};
use crate::config::{Config, ConfigError};
use crate::ingest::validate::Validator;
use crate::money::CurrencyTable;
use crate::writer::Writer;

/// Settings a config reload may change, swapped as one.
pub struct Settings {
    /// Event validation.
    pub validator: Validator,
    /// Revenue conversion.
    pub currencies: Arc<CurrencyTable>,
    /// VIP / revenue window in whole seconds.
    pub window_secs: i64,
    /// Most events per batch.
    pub max_batch_events: usize,
}

impl Settings {
    /// Builds the settings from a validated config.
    pub fn from_config(cfg: &Config) -> Result<Self, ConfigError> {
        Ok(Self {
            validator: Validator::new(cfg)?,
            currencies: Arc::new(CurrencyTable::from_config(&cfg.revenue)?),
            window_secs: i64::try_from(cfg.audiences.vip_window.as_secs()).unwrap_or(i64::MAX),
            max_batch_events: cfg.server.max_batch_events,
        })
    }
}

/// What the services share.
#[derive(Clone)]
pub struct Context {
    /// The single writer and the state it owns.
    pub writer: Writer,
    /// Time source.
    pub clock: SharedClock,
    /// The manual clock, when `[clock] mode = "manual"`.
    pub manual_clock: Option<crate::clock::ManualClock>,
    /// The sync engine, once started.
    pub sync: Option<Arc<crate::sync::handle::SyncEngine>>,
    settings: Arc<parking_lot::RwLock<Arc<Settings>>>,
}

impl Context {
    /// Builds the context from a validated config.
    pub fn new(
        cfg: &Config,
        writer: Writer,
        clock: SharedClock,
        manual_clock: Option<crate::clock::ManualClock>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            writer,
            clock,
            manual_clock,
            sync: None,
            settings: Arc::new(parking_lot::RwLock::new(Arc::new(Settings::from_config(
                cfg,
            )?))),
        })
    }

    /// The settings in force (cheap: one `Arc` clone).
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.read().clone()
    }

    /// Puts new settings in force for every request that starts from now on.
    pub fn replace_settings(&self, s: Settings) {
        *self.settings.write() = Arc::new(s);
    }
}

/// A proto timestamp from nanoseconds.
pub fn timestamp(t: Nanos) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.div_euclid(NANOS_PER_SEC),
        nanos: i32::try_from(t.rem_euclid(NANOS_PER_SEC)).unwrap_or(0),
    }
}
