//! Progress of an import on stderr.

use std::io::IsTerminal as _;
use std::time::Duration;

use super::ImportReport;

/// Progress on stderr: a bar on a terminal, a plain line every few seconds otherwise.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    pub(super) period: Duration,
    total_bytes: u64,
}

impl Progress {
    pub(super) fn new(total_bytes: u64) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total_bytes);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:30} {percent:>3}% {msg} ETA {eta}")
            {
                bar.set_style(style);
            }
            Self {
                bar: Some(bar),
                period: Duration::from_millis(200),
                total_bytes,
            }
        } else {
            Self {
                bar: None,
                period: Duration::from_secs(5),
                total_bytes,
            }
        }
    }

    pub(super) fn update(&self, r: &ImportReport, read: u64, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let rate = r.events as f64 / secs;
        let msg = format!(
            "rows {} events {} ({:.0}/s) applied {} dup {} rejected {} warnings {}",
            r.rows, r.events, rate, r.applied, r.duplicates, r.rejected, r.warnings
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(read);
                bar.set_message(msg);
            }
            None => {
                let eta = if read > 0 && self.total_bytes > read {
                    let left = secs * (self.total_bytes - read) as f64 / read as f64;
                    format!("{left:.0}s")
                } else {
                    "-".into()
                };
                let pct = if self.total_bytes > 0 {
                    100.0 * read as f64 / self.total_bytes as f64
                } else {
                    100.0
                };
                eprintln!("import: {pct:.0}% {msg} ETA {eta}");
            }
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
