//! Running as a service: the configuration assembled and checked in one place ([`assemble`]),
//! the start-up checks that read files ([`preflight`]),
//! the offline destination check ([`check_destinations`]), systemd notifications, Prometheus
//! metrics, the small HTTP server side shared by metrics and the status page, and the SIGHUP
//! reload.

pub mod assemble;
pub mod check_destinations;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod preflight;
pub mod reload;
