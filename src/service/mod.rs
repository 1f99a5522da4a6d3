//! Running as a service: systemd notifications, Prometheus metrics, the small HTTP server side
//! shared by metrics and the status page, and the config sections for metrics, auth, TLS and
//! the page.

pub mod http;
pub mod metrics;
pub mod notify;
pub mod reload;
pub mod settings;
