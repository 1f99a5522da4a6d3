//! Crash points: named places where the crash tests (`tests/crash_e2e.rs`) stop the daemon.
//!
//! A point is `fail::fail_point!` underneath. Without the `fail` crate's `failpoints` feature
//! it expands to nothing; only the dev-dependency turns the feature on, so only binaries built
//! by `cargo test` (or `cargo build --all-targets`) carry the points, and a `cargo build
//! --release` binary has none (`FAILPOINTS` is not even read: see [`setup`]).
//!
//! With `FAILPOINTS="<name>=return"` (or `"<name>=3*off->return"` for the fourth pass) the
//! thread reaching the point prints `failpoint <name> reached` on stdout and freezes; the test
//! waits for that line and kill -9s the process, so the crash happens exactly there while the
//! rest of the daemon keeps running until the signal lands, as in a real crash.

/// Marks a crash point (see the module documentation).
macro_rules! crash_point {
    ($name:literal) => {
        fail::fail_point!($name, |_| $crate::failpoint::freeze($name))
    };
}
pub(crate) use crash_point;

/// Reads `FAILPOINTS` when crash points are compiled in; otherwise does nothing, so a release
/// binary ignores the variable. Keep the returned guard alive for the process's lifetime.
pub fn setup() -> Option<fail::FailScenario<'static>> {
    if !fail::has_failpoints() {
        return None;
    }
    if std::env::var_os("FAILPOINTS").is_some() {
        tracing::warn!("crash points armed from FAILPOINTS (a test build)");
    }
    Some(fail::FailScenario::setup())
}

/// Announces the point on stdout and blocks the calling thread until the test kills the process.
#[allow(dead_code)] // used only when the crash points are compiled in
pub(crate) fn freeze(name: &str) -> ! {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "failpoint {name} reached");
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
