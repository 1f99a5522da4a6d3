//! The write-ahead log: each group commit's records appended to segment files beside sled.
//!
//! sled rewrites a tree node on every insert and keeps 64 KiB values as blob files, so a WAL
//! in a sled tree cost several copies of every record (and was the largest part of the
//! writer's time in a 10M-order import). Here a group costs one `write` and one fdatasync.
//!
//! Layout: `<data_dir>/wal/<first seq, 20 digits>.wal`; a new segment starts once the current
//! one passes [`SEGMENT_BYTES`]. Each frame is `len u32 LE | crc32 u32 LE | seq u64 LE |
//! payload`, the CRC over seq and payload; sequences run on without gaps across segments.
//! A torn tail (a crash mid-append: never acknowledged, since acks wait for the fdatasync) is
//! cut off at open; a bad frame with good frames after it is damage and stops the start.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// A segment is closed once it holds this much; trimming deletes whole segments.
pub const SEGMENT_BYTES: u64 = 64 << 20;
const HEADER: usize = 16;
/// Bytes of one frame at most (a record is ≤ 64 KiB; anything far larger is garbage).
const MAX_PAYLOAD: usize = 16 << 20;
const SUFFIX: &str = ".wal";

/// A log that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The OS refused a read, write or sync.
    #[error("write-ahead log {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Frames that cannot be the tail of an interrupted append.
    #[error("write-ahead log {path} is damaged at byte {offset}: {reason}")]
    Damaged {
        /// The segment.
        path: PathBuf,
        /// Where the bad frame starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An earlier append failed halfway and could not be undone: appending more would put
    /// good frames after a bad one.
    #[error("write-ahead log {0} refuses appends after a failed write it could not undo")]
    Poisoned(PathBuf),
}

/// The appending end of the log. Owned by the writer thread (through the store's mutex).
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    fsync: bool,
    /// The newest segment, its path and length; `None` until the first append.
    current: Option<(File, PathBuf, u64)>,
    /// The sequence the next record must carry (0: none written yet, any is accepted).
    next_seq: u64,
    poisoned: bool,
    buf: Vec<u8>,
    segment_bytes: u64,
}

/// One segment on disk.
#[derive(Debug, Clone)]
struct Segment {
    first: u64,
    path: PathBuf,
}

impl Wal {
    /// Opens (or creates) the log in `dir`, checking every frame and cutting a torn tail off
    /// the newest segment.
    pub fn open(dir: &Path, fsync: bool) -> Result<Self, WalError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io_at(dir))?;
            if fsync {
                sync_dir(dir.parent().unwrap_or(dir))?;
            }
        }
        let segments = segments(dir)?;
        let mut next_seq = 0;
        let mut current = None;
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let bytes = std::fs::read(&seg.path).map_err(io_at(&seg.path))?;
            let scan = scan(&bytes, seg, next_seq);
            let len = scan.bad.as_ref().map_or(bytes.len(), |b| b.0) as u64;
            if let Some(bad) = scan.bad {
                if !last || scan.more_after_bad || !scan.torn {
                    return Err(WalError::Damaged {
                        path: seg.path.clone(),
                        offset: bad.0 as u64,
                        reason: bad.1,
                    });
                }
                // A torn tail: never acknowledged, so cutting it loses nothing.
                let f = OpenOptions::new()
                    .write(true)
                    .open(&seg.path)
                    .map_err(io_at(&seg.path))?;
                f.set_len(bad.0 as u64).map_err(io_at(&seg.path))?;
                if fsync {
                    f.sync_data().map_err(io_at(&seg.path))?;
                }
                tracing::warn!(segment = %seg.path.display(), cut_at = bad.0, dropped_bytes = bytes.len() - bad.0,
                    "cut the torn tail of an interrupted write-ahead append");
            }
            next_seq = scan.next_seq;
            if last {
                let f = OpenOptions::new()
                    .append(true)
                    .open(&seg.path)
                    .map_err(io_at(&seg.path))?;
                current = Some((f, seg.path.clone(), len));
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            fsync,
            current,
            next_seq,
            poisoned: false,
            buf: Vec::new(),
            segment_bytes: SEGMENT_BYTES,
        })
    }

    /// Closes segments at `bytes` instead of [`SEGMENT_BYTES`] (tests of rolling and trimming).
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// Makes an empty log expect `seq + 1` next (the store's checkpoint may be ahead of an
    /// empty log), so every later append is checked for sequence.
    pub fn continue_after(&mut self, seq: u64) {
        if self.next_seq == 0 {
            self.next_seq = seq + 1;
        }
    }

    /// The last sequence in the log (0 when it is empty).
    pub fn last_seq(&self) -> u64 {
        self.next_seq.saturating_sub(1)
    }

    /// Appends `records` as sequences `first_seq..` and, when configured, fdatasyncs them:
    /// durable on return. Returns the last sequence written.
    pub fn append(&mut self, first_seq: u64, records: &[Vec<u8>]) -> Result<u64, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned(self.dir.clone()));
        }
        if records.is_empty() {
            return Ok(first_seq.saturating_sub(1));
        }
        if self.next_seq != 0 && first_seq != self.next_seq {
            return Err(WalError::Damaged {
                path: self.dir.clone(),
                offset: 0,
                reason: format!(
                    "append of sequence {first_seq} where {} comes next",
                    self.next_seq
                ),
            });
        }
        let roll = self
            .current
            .as_ref()
            .is_none_or(|(_, _, len)| *len >= self.segment_bytes);
        if roll {
            self.start_segment(first_seq)?;
        }
        self.buf.clear();
        let mut seq = first_seq;
        for r in records {
            frame(&mut self.buf, seq, r);
            seq += 1;
        }
        let Some((file, path, len)) = self.current.as_mut() else {
            return Err(WalError::Poisoned(self.dir.clone()));
        };
        let written =
            file.write_all(&self.buf)
                .and_then(|()| if self.fsync { file.sync_data() } else { Ok(()) });
        if let Err(source) = written {
            // Undo a partial frame, or later good frames would follow a bad one.
            if file.set_len(*len).and_then(|()| file.sync_data()).is_err() {
                self.poisoned = true;
            }
            return Err(io_at(path)(source));
        }
        *len += self.buf.len() as u64;
        self.next_seq = seq;
        Ok(seq - 1)
    }

    fn start_segment(&mut self, first_seq: u64) -> Result<(), WalError> {
        let path = self.dir.join(format!("{first_seq:020}{SUFFIX}"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io_at(&path))?;
        if self.fsync {
            sync_dir(&self.dir)?;
        }
        self.current = Some((file, path, 0));
        Ok(())
    }

    /// Calls `f` with every record after sequence `after`, in order.
    pub fn replay<E: From<WalError>>(
        &self,
        after: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let segments = segments(&self.dir)?;
        // Skip segments whose successor starts at or below the first record wanted.
        let start = segments
            .iter()
            .rposition(|s| s.first <= after + 1)
            .unwrap_or(0);
        let mut expect = 0;
        for seg in &segments[start..] {
            let bytes = std::fs::read(&seg.path).map_err(io_at(&seg.path))?;
            let mut at = 0;
            while at < bytes.len() {
                // `open` checked every frame; a change since is damage, not a tail.
                let frame = read_frame(&bytes, at).filter(|f| expect == 0 || f.0 == expect);
                let Some((seq, payload, next)) = frame else {
                    return Err(WalError::Damaged {
                        path: seg.path.clone(),
                        offset: at as u64,
                        reason: "changed since the log was opened".into(),
                    }
                    .into());
                };
                if seq > after {
                    f(seq, payload)?;
                }
                expect = seq + 1;
                at = next;
            }
        }
        Ok(())
    }

    /// Deletes every segment whose records all lie at or below `upto` (a checkpoint covers
    /// them), oldest first. Never the newest segment. Safe beside appends: it goes by file
    /// names only. With `fsync`, each deletion is made durable before the next, so a power
    /// loss can bring back only a prefix of them, never leave a gap.
    pub fn trim(dir: &Path, upto: u64, fsync: bool) -> Result<usize, WalError> {
        let segments = segments(dir)?;
        let mut deleted = 0;
        for pair in segments.windows(2) {
            if pair[1].first > upto + 1 {
                break;
            }
            std::fs::remove_file(&pair[0].path).map_err(io_at(&pair[0].path))?;
            if fsync {
                sync_dir(dir)?;
            }
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Deletes every segment (a migration that starts over).
    pub fn clear(&mut self) -> Result<(), WalError> {
        for seg in segments(&self.dir)? {
            std::fs::remove_file(&seg.path).map_err(io_at(&seg.path))?;
        }
        if self.fsync {
            sync_dir(&self.dir)?;
        }
        self.current = None;
        self.next_seq = 0;
        Ok(())
    }
}

/// The segments in `dir`, oldest first; other files are ignored.
fn segments(dir: &Path) -> Result<Vec<Segment>, WalError> {
    let entries = std::fs::read_dir(dir).map_err(io_at(dir))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_at(dir))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push(Segment {
            first,
            path: entry.path(),
        });
    }
    out.sort_unstable_by_key(|s| s.first);
    Ok(out)
}

/// The error for an I/O failure on `path`.
fn io_at(path: &Path) -> impl FnOnce(io::Error) -> WalError {
    let path = path.to_path_buf();
    move |source| WalError::Io { path, source }
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

fn crc(seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn frame(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    // A record is ≤ 64 KiB (records::encode_wal), far below u32.
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc(seq, payload).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// The frame at `at`: (seq, payload, offset after it), or `None` if it is not a whole,
/// intact frame.
fn read_frame(bytes: &[u8], at: usize) -> Option<(u64, &[u8], usize)> {
    let header = bytes.get(at..at.checked_add(HEADER)?)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let sum = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let seq = u64::from_le_bytes(header[8..16].try_into().ok()?);
    if len > MAX_PAYLOAD {
        return None;
    }
    let end = at + HEADER + len;
    let payload = bytes.get(at + HEADER..end)?;
    (crc(seq, payload) == sum).then_some((seq, payload, end))
}

/// What checking one segment found.
struct Scan {
    next_seq: u64,
    /// The first bad frame: offset and why.
    bad: Option<(usize, String)>,
    /// An intact frame with a later sequence somewhere after the bad one.
    more_after_bad: bool,
    /// The bad frame is cut short or fails its checksum (what an interrupted append leaves);
    /// an intact frame out of sequence never is.
    torn: bool,
}

fn scan(bytes: &[u8], seg: &Segment, mut next_seq: u64) -> Scan {
    let mut at = 0;
    let mut torn = false;
    let bad = loop {
        if at == bytes.len() {
            break None;
        }
        let Some((seq, _, next)) = read_frame(bytes, at) else {
            torn = true;
            break Some((
                at,
                "a frame that is cut short or fails its checksum".to_string(),
            ));
        };
        let want = if at == 0 { seg.first } else { next_seq };
        if seq != want || (next_seq != 0 && seq != next_seq) {
            break Some((
                at,
                format!(
                    "sequence {seq} where {} belongs: records are missing",
                    want.max(next_seq)
                ),
            ));
        }
        next_seq = seq + 1;
        at = next;
    };
    // Cheap test first: only a header whose sequence could come next is checksummed.
    let later = |o: usize| {
        bytes
            .get(o + 8..o + HEADER)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
            .is_some_and(|seq| seq >= next_seq && seq - next_seq < 1 << 32)
            && read_frame(bytes, o).is_some()
    };
    let more_after_bad = bad
        .as_ref()
        .is_some_and(|(from, _)| (from + 1..bytes.len()).any(later));
    Scan {
        next_seq,
        bad,
        more_after_bad,
        torn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize, size: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8; size]).collect()
    }

    /// A log of `groups` appends of `per_group` records of `len` bytes, in segments of
    /// `segment_bytes`.
    fn rolled(dir: &Path, segment_bytes: u64, groups: u64, per_group: usize, len: usize) -> Wal {
        let mut wal = Wal::open(dir, false)
            .expect("open")
            .with_segment_bytes(segment_bytes);
        let group = records(per_group, len);
        for g in 0..groups {
            wal.append(g * per_group as u64 + 1, &group)
                .expect("append");
        }
        wal
    }

    fn collected(wal: &Wal, after: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        wal.replay::<WalError>(after, |s, p| {
            out.push((s, p.to_vec()));
            Ok(())
        })
        .expect("replay");
        out
    }

    #[test]
    fn records_come_back_in_order_after_a_reopen() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("wal");
        let mut wal = Wal::open(&dir, true).expect("open");
        assert_eq!(wal.append(1, &records(3, 10)).expect("append"), 3);
        assert_eq!(wal.append(4, &records(2, 5)).expect("append"), 5);
        let wal = Wal::open(&dir, true).expect("reopen");
        assert_eq!(wal.last_seq(), 5);
        let got = collected(&wal, 2);
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(got[0].1, vec![2u8; 10]);
        assert_eq!(got[2].1, vec![1u8; 5]);
    }

    #[test]
    fn an_append_out_of_sequence_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut wal = Wal::open(&tmp.path().join("wal"), false).expect("open");
        wal.append(1, &records(1, 1)).expect("append");
        assert!(wal.append(3, &records(1, 1)).is_err());
        assert_eq!(wal.append(2, &records(1, 1)).expect("append"), 2);
    }

    #[test]
    fn segments_roll_and_trim_keeps_everything_after_the_checkpoint() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("wal");
        // 40 groups of 2 KiB: about 20 segments.
        let _wal = rolled(&dir, 4096, 40, 2, 1 << 10);
        let n = segments(&dir).expect("list").len();
        assert!(n >= 2, "{n} segments");
        // Nothing is covered: nothing goes.
        assert_eq!(Wal::trim(&dir, 0, false).expect("trim"), 0);
        let second = segments(&dir).expect("list")[1].first;
        assert_eq!(Wal::trim(&dir, second - 1, false).expect("trim"), 1);
        // The newest segment stays even when everything is covered.
        Wal::trim(&dir, 80, false).expect("trim");
        assert_eq!(segments(&dir).expect("list").len(), 1);
        let wal = Wal::open(&dir, false).expect("reopen");
        assert_eq!(wal.last_seq(), 80);
        let after = segments(&dir).expect("list")[0].first - 1;
        let got = collected(&wal, after);
        assert_eq!(got.first().map(|r| r.0), Some(after + 1));
        assert_eq!(got.last().map(|r| r.0), Some(80));
    }

    #[test]
    fn a_torn_tail_is_cut_and_appends_go_on_after_it() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("wal");
        let mut wal = Wal::open(&dir, true).expect("open");
        wal.append(1, &records(2, 100)).expect("append");
        let seg = segments(&dir).expect("list")[0].path.clone();
        let whole = std::fs::metadata(&seg).expect("meta").len();
        // Half of a third frame, then zeros (what a crash mid-append can leave).
        let mut torn = Vec::new();
        frame(&mut torn, 3, &[7u8; 100]);
        torn.truncate(60);
        torn.extend_from_slice(&[0u8; 300]);
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .and_then(|mut f| f.write_all(&torn))
            .expect("tear");
        let mut wal = Wal::open(&dir, true).expect("reopen");
        assert_eq!(std::fs::metadata(&seg).expect("meta").len(), whole);
        assert_eq!(wal.last_seq(), 2);
        wal.append(3, &records(1, 100)).expect("append");
        let wal = Wal::open(&dir, true).expect("reopen");
        assert_eq!(collected(&wal, 0).len(), 3);
    }

    #[test]
    fn a_bad_frame_with_good_ones_after_it_is_damage() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("wal");
        let mut wal = Wal::open(&dir, false).expect("open");
        wal.append(1, &records(3, 100)).expect("append");
        let seg = segments(&dir).expect("list")[0].path.clone();
        let mut bytes = std::fs::read(&seg).expect("read");
        // Flip a byte in the second record's payload.
        bytes[HEADER + 100 + HEADER + 50] ^= 0xff;
        std::fs::write(&seg, &bytes).expect("write");
        let err = Wal::open(&dir, false).expect_err("damaged");
        assert!(
            matches!(err, WalError::Damaged { offset, .. } if offset == (HEADER + 100) as u64),
            "{err}"
        );
    }

    #[test]
    fn a_missing_middle_segment_is_damage() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("wal");
        let _wal = rolled(&dir, 1000, 5, 1, 900);
        let segs = segments(&dir).expect("list");
        assert!(segs.len() >= 3, "{} segments", segs.len());
        std::fs::remove_file(&segs[1].path).expect("rm");
        let err = Wal::open(&dir, false).expect_err("gap");
        assert!(err.to_string().contains("records are missing"), "{err}");
    }
}
