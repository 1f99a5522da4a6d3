//! systemd notifications (`Type=notify`): READY once serving, watchdog pings while the writer
//! writer is alive, STOPPING on shutdown. Without `$NOTIFY_SOCKET` every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

use crate::writer::{heartbeat, Writer};

/// Tells systemd the daemon is serving: sled is open and the gRPC port is bound.
pub fn ready() {
    send(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

/// Tells systemd a stop is under way, so it does not mistake the final checkpoint for a hang.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// When systemd asked for a watchdog (`WATCHDOG_USEC`, `WatchdogSec=`), pings it at half the
/// period as long as the writer keeps beating. Returns the ping period, if any.
pub fn spawn_watchdog(writer: Writer) -> Option<Duration> {
    let timeout = sd_notify::watchdog_enabled()?;
    let period = timeout / 2;
    if period.is_zero() {
        return None;
    }
    tracing::info!(?timeout, ?period, "systemd watchdog enabled");
    tokio::spawn(async move {
        let mut iv = tokio::time::interval(period / 2);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_ping = tokio::time::Instant::now();
        let mut warned = false;
        loop {
            iv.tick().await;
            // Ask for a beat every half period; judge the beat we got since the last round.
            writer.request_heartbeat();
            let age = heartbeat::age(&writer.stats().last_beat);
            if !writer_alive(age, period) {
                if !warned {
                    tracing::error!(?age, "ledger writer silent; withholding watchdog pings");
                    warned = true;
                }
                continue;
            }
            warned = false;
            if last_ping.elapsed() >= period {
                send(&[NotifyState::Watchdog]);
                last_ping = tokio::time::Instant::now();
            }
        }
    });
    Some(period)
}

/// The writer counts as alive if it beat within one ping period (it is asked to beat twice
/// per period, so a healthy idle writer is never older than about half of it).
fn writer_alive(beat_age: Duration, period: Duration) -> bool {
    beat_age <= period
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_writer_stops_the_pings() {
        let p = Duration::from_millis(200);
        assert!(writer_alive(Duration::from_millis(90), p));
        assert!(writer_alive(Duration::from_millis(200), p));
        assert!(!writer_alive(Duration::from_millis(201), p));
    }
}
