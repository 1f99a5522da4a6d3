//! Running as a service: systemd notifications, Prometheus metrics, and the config sections
//! for metrics, auth and TLS.

pub mod metrics;
pub mod notify;
pub mod reload;
pub mod settings;
