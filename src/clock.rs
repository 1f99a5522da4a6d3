//! Time source. Everything time-dependent reads the clock through this trait, so tests can
//! move time instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Nanoseconds since the Unix epoch, UTC.
pub type Nanos = i64;

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A source of "now".
pub trait Clock: Send + Sync + 'static {
    /// Current time in nanoseconds since the Unix epoch.
    fn now(&self) -> Nanos;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Nanos {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: Nanos) -> Self {
        Self(Arc::new(AtomicI64::new(at)))
    }
    /// Moves the clock to `at`.
    pub fn set(&self, at: Nanos) {
        self.0.store(at, Ordering::SeqCst);
    }
    /// Moves the clock forward by `by` nanoseconds.
    pub fn advance(&self, by: Nanos) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Nanos {
        self.0.load(Ordering::SeqCst)
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// Whole seconds from `t` to `now` (floored), the unit every audience rule compares in.
pub fn whole_secs_between(t: Nanos, now: Nanos) -> i64 {
    now.saturating_sub(t).div_euclid(NANOS_PER_SEC)
}
