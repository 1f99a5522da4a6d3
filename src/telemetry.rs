//! Logging setup: human lines on a terminal, JSON under systemd.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Levels a directive may name.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a `[log] level`: comma-separated directives, each a level or `target=level`. A bare
/// word that is not a level is a valid `tracing` directive (every level of that target), but
/// in a config it is a misspelt level (`warning` would log nothing at all), so it is refused.
pub fn check_level(level: &str) -> Result<(), String> {
    let hint = "use error, warn, info, debug, trace or off, or target=level directives (e.g. \"info,audiencesync=debug\")";
    if level.trim().is_empty() {
        return Err(format!("is empty: {hint}"));
    }
    for directive in level.split(',').map(str::trim) {
        let named = match directive.rsplit_once('=') {
            Some((_, l)) => l,
            None => directive,
        };
        if !LEVELS.contains(&named.to_ascii_lowercase().as_str()) {
            return Err(format!("`{directive}` names no level: {hint}"));
        }
    }
    EnvFilter::try_new(level).map_err(|e| format!("{e}: {hint}"))?;
    Ok(())
}

/// Installs the global subscriber (stderr). `RUST_LOG` overrides the configured level.
pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match cfg.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => std::env::var_os("JOURNAL_STREAM").is_some(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = result {
        eprintln!("audiencesync: logging already initialised: {e}");
    }
}
