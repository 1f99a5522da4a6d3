//! The store marker: a small file beside sled's own (`<data_dir>/audiencesync.store`) that
//! proves a store was created here and records the last checkpoint it reached.
//!
//! sled recovers whatever consistent prefix of its log it can read. A `db` file truncated,
//! emptied or replaced therefore opens "fine", as an older or an empty database, and a daemon
//! that trusted it would start with silently fewer facts (or none) and push shrunken lists.
//! The marker lets start-up tell a new directory from a damaged one: a marker without data, or
//! data older than the marker's checkpoint, is refused with the recovery steps instead.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The marker's file name inside the data directory.
pub const FILE_NAME: &str = "audiencesync.store";
const HEADER: &str = "audiencesync store";

/// What the marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Layout version of the store.
    pub schema: u64,
    /// The last checkpoint known complete: the store must reach at least this WAL sequence.
    pub checkpoint_seq: u64,
}

/// Why the marker could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    /// An I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The marker file (or its directory).
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file exists but is not a marker.
    #[error("{path}: not an audiencesync store marker")]
    Garbled {
        /// The marker file.
        path: PathBuf,
    },
}

/// The marker's path for a data directory.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the marker; `None` when there is none.
pub fn read(dir: &Path) -> Result<Option<Marker>, MarkerError> {
    let path = path(dir);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(MarkerError::Io { path, source }),
    };
    parse(&text).map(Some).ok_or(MarkerError::Garbled { path })
}

fn parse(bytes: &[u8]) -> Option<Marker> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let mut field = |name: &str| -> Option<u64> {
        lines
            .next()?
            .strip_prefix(name)?
            .strip_prefix(' ')?
            .parse()
            .ok()
    };
    Some(Marker {
        schema: field("schema")?,
        checkpoint_seq: field("checkpoint_seq")?,
    })
}

/// Replaces the marker atomically (temporary file, fsync, rename, fsync of the directory when
/// `durable`).
pub fn write(dir: &Path, m: Marker, durable: bool) -> Result<(), MarkerError> {
    let path = path(dir);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| MarkerError::Io { path: p, source }
    };
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    write!(
        f,
        "{HEADER}\nschema {}\ncheckpoint_seq {}\n",
        m.schema, m.checkpoint_seq
    )
    .map_err(io(&tmp))?;
    if durable {
        f.sync_data().map_err(io(&tmp))?;
    }
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    if durable {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let dir = std::env::temp_dir().join(format!("marker-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        assert_eq!(read(&dir).expect("none"), None);
        let m = Marker {
            schema: 1,
            checkpoint_seq: 42,
        };
        write(&dir, m, true).expect("write");
        assert_eq!(read(&dir).expect("read"), Some(m));
        std::fs::write(path(&dir), b"\x00\xffjunk").expect("junk");
        assert!(matches!(read(&dir), Err(MarkerError::Garbled { .. })));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
