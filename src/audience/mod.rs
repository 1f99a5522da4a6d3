//! Audiences: pure rules ([`rules`]), the VIP threshold ([`vip`]), the due-time index ([`due`]),
//! who is held out ([`holdout`]: kept beside the memberships and changed in the same write), the
//! configured parameters ([`params`]) and the membership engine ([`memberships`]) that keeps them
//! current as facts arrive and time passes.

pub mod due;
pub mod holdout;
pub mod memberships;
pub mod params;
pub mod rules;
pub mod vip;

pub use memberships::{Audiences, Change};
pub use rules::Audience;
