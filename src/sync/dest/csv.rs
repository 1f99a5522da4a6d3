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

use super::google::shape::google_postal;
use super::{Accepted, Batch, Destination, ListRef, PushError, ReplaceStart};
use crate::hashing::{hex_lower, NetworkHashes};
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

/// One member as a Meta customer-list row: the same columns, in the same order, as the
/// Marketing API schema (all hex or empty, so no quoting).
pub fn meta_row(m: &RemoteMember) -> String {
    super::meta::shape::row(m).join(",")
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

    fn has_list_ids(&self) -> bool {
        false
    }

    fn default_quota_per_hour(&self, _lists: usize) -> u32 {
        // Local files: the quota only keeps a runaway loop from filling the disk.
        360_000
    }

    async fn add(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        _batch: Batch,
    ) -> Result<Accepted, PushError> {
        self.delta(list, "add", members)
    }

    async fn remove(
        &self,
        list: &ListRef,
        members: &[RemoteMember],
        _batch: Batch,
    ) -> Result<Accepted, PushError> {
        self.delta(list, "remove", members)
    }

    async fn begin_replace(
        &self,
        _list: &ListRef,
        _as_of: std::time::SystemTime,
    ) -> Result<ReplaceStart, PushError> {
        Ok(ReplaceStart::default())
    }

    /// A replacement is no delta: the snapshot written once the job's members are confirmed
    /// is the replaced list.
    async fn replace_batch(
        &self,
        _list: &ListRef,
        _members: &[RemoteMember],
        _batch: Batch,
    ) -> Result<Accepted, PushError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::sha256;

    fn sha(s: &str) -> String {
        hex_lower(&sha256(s))
    }

    /// The digests of one identifier as ingest makes them: Google's form, then Meta's.
    fn hashes(google: &str, meta: &str) -> NetworkHashes {
        NetworkHashes {
            google: sha256(google),
            meta: sha256(meta),
        }
    }

    #[tokio::test]
    async fn files_follow_each_networks_columns_and_normalization() {
        // " Cloudy.SanFrancisco+shopping@gmail.com ", "(800) 555-0100" in the US, "Mary Smith".
        let m = RemoteMember {
            email: Some(hashes(
                "cloudysanfrancisco@gmail.com",
                "cloudy.sanfrancisco+shopping@gmail.com",
            )),
            phone: Some(hashes("+18005550100", "18005550100")),
            first_name: Some(hashes("mary", "mary")),
            last_name: Some(hashes("smith", "smith")),
            country: Some("US".into()),
            postal_code: Some("94105-1234".into()),
        };
        let dir = tempfile::tempdir().expect("tmp");
        let dest = CsvDestination::new(dir.path().to_path_buf());
        let list = ListRef {
            audience: "vip".into(),
            list_id: String::new(),
        };
        dest.add(&list, std::slice::from_ref(&m), Batch::default())
            .await
            .expect("add");
        dest.snapshot(&list, std::slice::from_ref(&m))
            .await
            .expect("snapshot");

        let google = std::fs::read_to_string(dir.path().join("vip/google.csv")).expect("google");
        let mut lines = google.lines();
        assert_eq!(lines.next(), Some(GOOGLE_HEADER));
        let row: Vec<&str> = lines.next().expect("row").split(',').collect();
        // Google: gmail dots and +tag removed, E.164 with '+', names hashed, country and zip clear.
        assert_eq!(
            row[0],
            "223ebda6f6889b1494551ba902d9d381daf2f642bae055888e96343d53e9f9c4"
        );
        assert_eq!(
            row[1],
            "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30"
        );
        assert_eq!(row[2], sha("mary"));
        assert_eq!(row[3], sha("smith"));
        assert_eq!(row[4], "US");
        assert!(row[5].starts_with("94105"), "{}", row[5]);

        let meta = std::fs::read_to_string(dir.path().join("vip/meta.csv")).expect("meta");
        let mut lines = meta.lines();
        assert_eq!(lines.next(), Some(META_HEADER));
        let row: Vec<&str> = lines.next().expect("row").split(',').collect();
        // Meta: email only trimmed and lowercased, phone digits without '+', zip and country hashed.
        assert_eq!(row[0], sha("cloudy.sanfrancisco+shopping@gmail.com"));
        assert_eq!(row[1], sha("18005550100"));
        assert_eq!(row[2], sha("mary"));
        assert_eq!(row[3], sha("smith"));
        assert_eq!(row[4], sha("94105"));
        assert_eq!(row[5], sha("us"));

        // The delta files of the add exist in both formats, and nothing is half-written.
        let deltas: Vec<String> = std::fs::read_dir(dir.path().join("vip/deltas"))
            .expect("deltas")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(deltas.iter().any(|f| f.ends_with("-add-google.csv")));
        assert!(deltas.iter().any(|f| f.ends_with("-add-meta.csv")));
        assert!(!deltas.iter().any(|f| f.contains(".tmp")));
        // A restart continues the delta numbering instead of overwriting.
        let again = CsvDestination::new(dir.path().to_path_buf());
        assert_eq!(again.seq.load(Ordering::SeqCst), 1);
    }
}
