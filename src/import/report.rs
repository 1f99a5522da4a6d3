//! The totals of an import and the summary printed at its end.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Loc;

/// Bad rows printed in the summary; the counts by reason cover all of them.
const BAD_ROWS_SHOWN: usize = 20;

/// Totals of one import, from the daemon's acks and the importer's own parse errors.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImportReport {
    /// Rows (JSON lines, CSV records) read.
    pub rows: u64,
    /// Events sent and acknowledged.
    pub events: u64,
    /// Events the daemon newly applied.
    pub applied: u64,
    /// Events the daemon had seen before (already imported).
    pub duplicates: u64,
    /// Events the daemon refused plus rows the importer could not parse.
    pub rejected: u64,
    /// Rejections and parse errors by "field: reason".
    pub by_reason: BTreeMap<String, u64>,
    /// The first bad rows, as "file:line: field: reason".
    pub bad_rows: Vec<String>,
    /// Identifiers the daemon dropped from applied events (ack warnings: the row was
    /// imported without that field).
    pub warnings: u64,
    /// Warnings by "field: code".
    pub warnings_by_reason: BTreeMap<String, u64>,
    /// The first rows with a dropped identifier, as "file:line: field: reason".
    pub warned_rows: Vec<String>,
    /// Wall time.
    pub elapsed_secs: f64,
}

impl ImportReport {
    pub(super) fn bad(&mut self, files: &[PathBuf], loc: Loc, field: &str, reason: &str) -> String {
        let key = format!("{field}: {reason}");
        let line = format!("{}:{}: {key}", file_name(files, loc.file), loc.line);
        *self.by_reason.entry(key).or_default() += 1;
        self.rejected += 1;
        if self.bad_rows.len() < BAD_ROWS_SHOWN {
            self.bad_rows.push(line.clone());
        }
        line
    }

    pub(super) fn warned(
        &mut self,
        files: &[PathBuf],
        loc: Loc,
        field: &str,
        code: &str,
        reason: &str,
    ) {
        *self
            .warnings_by_reason
            .entry(format!("{field}: {code}"))
            .or_default() += 1;
        self.warnings += 1;
        if self.warned_rows.len() < BAD_ROWS_SHOWN {
            self.warned_rows.push(format!(
                "{}:{}: {field}: {reason}",
                file_name(files, loc.file),
                loc.line
            ));
        }
    }

    /// Prints the summary to stdout (the progress display is on stderr).
    pub fn print(&self) {
        let rate = if self.elapsed_secs > 0.0 {
            self.events as f64 / self.elapsed_secs
        } else {
            0.0
        };
        println!(
            "imported: applied={} duplicates={} rejected={} warnings={} (events={} rows={} in {:.1}s, {:.0} events/s)",
            self.applied, self.duplicates, self.rejected, self.warnings, self.events, self.rows, self.elapsed_secs, rate
        );
        if !self.by_reason.is_empty() {
            println!("rejected by reason:");
            for (reason, n) in &self.by_reason {
                println!("  {n:>8}  {reason}");
            }
            println!(
                "bad rows (first {} of {}):",
                self.bad_rows.len(),
                self.rejected
            );
            for row in &self.bad_rows {
                println!("  {row}");
            }
        }
        if !self.warnings_by_reason.is_empty() {
            println!("identifiers dropped (rows imported without them) by reason:");
            for (reason, n) in &self.warnings_by_reason {
                println!("  {n:>8}  {reason}");
            }
            println!(
                "rows with a dropped identifier (first {} of {}):",
                self.warned_rows.len(),
                self.warnings
            );
            for row in &self.warned_rows {
                println!("  {row}");
            }
        }
    }
}

fn file_name(files: &[PathBuf], idx: u32) -> String {
    files
        .get(idx as usize)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "?".into())
}
