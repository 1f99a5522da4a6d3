//! The writer's heartbeat: proof for the systemd watchdog that the single writer still turns.
//!
//! The writer stamps [`Stats::last_beat`](super::Stats) on every loop iteration; a wedged
//! writer (stuck fsync, deadlock) stops stamping, the watchdog pings stop, and systemd
//! restarts the daemon instead of leaving it half alive.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Milliseconds on a monotonic clock private to this process (wall-clock jumps cannot fake
/// or hide a beat).
pub fn now_ms() -> i64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    i64::try_from(epoch.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// Records a beat now.
pub fn beat(last_beat: &AtomicI64) {
    last_beat.store(now_ms(), Ordering::Relaxed);
}

/// Time since the last beat.
pub fn age(last_beat: &AtomicI64) -> Duration {
    let ms = now_ms().saturating_sub(last_beat.load(Ordering::Relaxed));
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_grows_until_the_next_beat() {
        let b = AtomicI64::new(0);
        beat(&b);
        std::thread::sleep(Duration::from_millis(30));
        assert!(age(&b) >= Duration::from_millis(30));
        beat(&b);
        assert!(age(&b) < Duration::from_millis(30));
    }
}
