//! Audiences: pure rules ([`rules`]), the VIP threshold ([`vip`]), the due-time index ([`due`]),
//! the configured parameters ([`params`]) and the membership engine ([`engine`]) that keeps them
//! current as facts arrive and time passes.

pub mod due;
pub mod engine;
pub mod params;
pub mod rules;
pub mod vip;

pub use engine::{Audiences, Change};
pub use rules::Audience;
