//! `csv`: upload-ready files for the Google Ads and Meta customer-list upload screens, for shops
//! without API access (and the bundled default, so a new install shows real output).
//!
//! Layout under the configured directory, per audience:
//! `<audience>/google.csv`, `<audience>/meta.csv`: the full list (snapshot), rewritten after
//! every change; `<audience>/deltas/<seq>-{add,remove}-{google,meta}.csv`: each change.
//! Every file is written to a temporary name, fsynced, then renamed: a reader never sees half a
//! file. Google's template keeps country and zip in clear text and hashes the rest; Meta's
//! hashes every column. Missing values are empty cells (never the hash of "").

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Accepted, Destination, ListRef, PushError, ReplaceSession};
use crate::ingest::identity::{
    google_postal, hex_lower, meta_country, meta_postal, sha256, NetworkHashes,
};
use crate::sync::member::RemoteMember;

/// Google Customer Match CSV header.
pub const GOOGLE_HEADER: &str = "Email,Phone,First Name,Last Name,Country,Zip";
/// Meta customer-list CSV header.
pub const META_HEADER: &str = "email,phone,fn,ln,zip,country";

/// Writes customer-list files.
pub struct CsvDestination {
    dir: PathBuf,
    seq: AtomicU64,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> PushError {
    PushError::Permanent {
        reason: format!("{what} {}: {e}", path.display()),
        advice: "check that the csv directory exists and is writable by the daemon".into(),
    }
}

/// One member as a Google template row.
pub fn google_row(m: &RemoteMember) -> String {
    let h = |x: &Option<NetworkHashes>| x.map(|n| hex_lower(&n.google)).unwrap_or_default();
    let country = m.country.as_deref().unwrap_or_default();
    let zip = m
        .postal_code
        .as_deref()
        .map(|z| google_postal(z, m.country.as_deref()))
        .unwrap_or_default();
    format!(
        "{},{},{},{},{},{}",
        h(&m.email),
        h(&m.phone),
        h(&m.first_name),
        h(&m.last_name),
        csv_cell(country),
        csv_cell(&zip)
    )
}

/// One member as a Meta customer-list row.
pub fn meta_row(m: &RemoteMember) -> String {
    let h = |x: &Option<NetworkHashes>| x.map(|n| hex_lower(&n.meta)).unwrap_or_default();
    let zip = m
        .postal_code
        .as_deref()
        .map(|z| hex_lower(&sha256(&meta_postal(z, m.country.as_deref()))))
        .unwrap_or_default();
    let country = m
        .country
        .as_deref()
        .map(|c| hex_lower(&sha256(&meta_country(c))))
        .unwrap_or_default();
    format!(
        "{},{},{},{},{},{}",
        h(&m.email),
        h(&m.phone),
        h(&m.first_name),
        h(&m.last_name),
        zip,
        country
    )
}

/// Quotes a clear-text cell when it holds a separator or quote.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_atomic(
    path: &Path,
    header: &str,
    rows: impl Iterator<Item = String>,
) -> Result<(), PushError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_err("creating", dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&tmp).map_err(|e| io_err("creating", &tmp, e))?,
    );
    let write = |f: &mut std::io::BufWriter<std::fs::File>| -> std::io::Result<()> {
        writeln!(f, "{header}")?;
        for r in rows {
            writeln!(f, "{r}")?;
        }
        f.flush()?;
        f.get_ref().sync_all()
    };
    write(&mut f).map_err(|e| io_err("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err("renaming", path, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl CsvDestination {
    /// Files go under `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        let start = Self::highest_seq(&dir);
        Self {
            dir,
            seq: AtomicU64::new(start),
        }
    }

    /// The highest delta sequence already on disk, so restarts never overwrite a delta.
    fn highest_seq(dir: &Path) -> u64 {
        let Ok(audiences) = std::fs::read_dir(dir) else {
            return 0;
        };
        audiences
            .flatten()
            .filter_map(|a| std::fs::read_dir(a.path().join("deltas")).ok())
            .flat_map(|d| d.flatten())
            .filter_map(|f| {
                let name = f.file_name().to_string_lossy().into_owned();
                name.split('-').next()?.parse::<u64>().ok()
            })
            .max()
            .unwrap_or(0)
    }

    fn audience_dir(&self, list: &ListRef) -> PathBuf {
        self.dir.join(&list.audience)
    }

    fn delta(
        &self,
        list: &ListRef,
        op: &str,
        members: &[RemoteMember],
    ) -> Result<Accepted, PushError> {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let deltas = self.audience_dir(list).join("deltas");
        write_atomic(
            &deltas.join(format!("{seq:010}-{op}-google.csv")),
            GOOGLE_HEADER,
            members.iter().map(google_row),
        )?;
        write_atomic(
            &deltas.join(format!("{seq:010}-{op}-meta.csv")),
            META_HEADER,
            members.iter().map(meta_row),
        )?;
        Ok(Accepted::default())
    }
}

#[async_trait::async_trait]
impl Destination for CsvDestination {
    fn max_batch(&self) -> usize {
        100_000
    }

    async fn add(&self, list: &ListRef, members: &[RemoteMember]) -> Result<Accepted, PushError> {
        self.delta(list, "add", members)
    }

    async fn remove(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
    ) -> Result<Accepted, PushError> {
        self.delta(list, "remove", members)
    }

    async fn begin_replace(&self, _list: &ListRef) -> Result<ReplaceSession, PushError> {
        Ok(ReplaceSession::default())
    }

    async fn replace_batch(
        &self,
        list: &ListRef,
        session: &mut ReplaceSession,
        members: &[RemoteMember],
        last: bool,
    ) -> Result<Accepted, PushError> {
        session.members.extend_from_slice(members);
        session.batches += 1;
        if last {
            self.snapshot(list, &session.members).await?;
        }
        Ok(Accepted::default())
    }

    async fn snapshot(&self, list: &ListRef, members: &[RemoteMember]) -> Result<(), PushError> {
        let dir = self.audience_dir(list);
        let mut g: Vec<String> = members.iter().map(google_row).collect();
        let mut m: Vec<String> = members.iter().map(meta_row).collect();
        g.sort_unstable();
        m.sort_unstable();
        write_atomic(&dir.join("google.csv"), GOOGLE_HEADER, g.into_iter())?;
        write_atomic(&dir.join("meta.csv"), META_HEADER, m.into_iter())
    }

    async fn check(&self, list: &ListRef) -> Result<(), PushError> {
        let dir = self.audience_dir(list);
        std::fs::create_dir_all(&dir).map_err(|e| io_err("creating", &dir, e))?;
        let probe = dir.join(".write-check");
        std::fs::write(&probe, b"ok").map_err(|e| io_err("writing", &probe, e))?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
    }
}
