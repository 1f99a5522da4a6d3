//! The store: the write-ahead log ([`crate::ledger::wal`], files beside sled), the
//! checkpointed state trees in sled, and durability. Loading them at start is in
//! [`crate::ledger::recovery`], writing a checkpoint in [`crate::ledger::checkpoint`].
//!
//! | tree        | key                         | value                          |
//! |-------------|-----------------------------|--------------------------------|
//! | `customers` | the shop's customer id      | [`CustomerRecord`]             |
//! | `customers` | id, `0xFF`, chunk (u32 BE)  | a full chunk of its orders ([`crate::ledger::order_chunks`]) |
//! | `orders`    | key of the order id (16 B)  | [`OrderRecord`]                |
//! | `carts`     | key of the cart id (16 B)   | [`CartRecord`]                 |
//! | `dedup`     | newest second (i64 BE) + WAL seq + chunk | up to 4,096 event-id keys (16 B each) |
//! | `changes`   | change sequence (u64 BE)    | membership changes of a group  |
//! | `meta`      | `schema`, `checkpoint_seq`  | u64 BE                         |
//! | `meta`      | `holdout_salt`              | 16 random bytes, made once     |
//!
//! [`CustomerRecord`]: crate::ledger::customer_record::CustomerRecord
//! [`OrderRecord`]: crate::ledger::customer_record::OrderRecord
//! [`CartRecord`]: crate::ledger::customer_record::CartRecord

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::StorageConfig;
use crate::ledger::marker::{self, Marker};
use crate::ledger::records::{decode, CodecError};
use crate::ledger::wal::{Wal, WalError};

/// Layout version of the trees above. 2: the write-ahead log moved from the sled tree `wal`
/// to segment files (a version-1 store is migrated at open).
pub const SCHEMA_VERSION: u64 = 2;
/// Length of the holdout salt kept in `meta`.
pub const HOLDOUT_SALT_LEN: usize = 16;
/// Where version 1 kept the write-ahead log; read once to migrate it, then emptied.
const LEGACY_WAL_TREE: &str = "wal";
/// The write-ahead log's directory inside the data directory.
const WAL_DIR: &str = "wal";
const META_SCHEMA: &[u8] = b"schema";
pub(super) const META_CHECKPOINT: &[u8] = b"checkpoint_seq";
const META_HOLDOUT_SALT: &[u8] = b"holdout_salt";
/// Event ids per dedup chunk (64 KiB values, under sled's blob threshold).
pub(super) const DEDUP_CHUNK: usize = 4_096;
/// Most entries per sled batch: larger ones balloon sled's memory (see STACK.md).
pub(super) const MAX_SLED_BATCH: usize = 1_000;

/// A storage failure. Never silently ignored: a store that cannot be read stops the daemon.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled refused to open the directory.
    #[error("cannot open sled database at {path}: {source} (is another audiencesync using it? If not, the store is damaged: see docs/RELIABILITY.md, \"Recovering a damaged store\")")]
    Open {
        /// The directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// A sled operation failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// The write-ahead log could not be read, written or synced.
    #[error("{0} ({RECOVERY})")]
    Wal(#[from] WalError),
    /// A write-ahead record whose bytes are not facts.
    #[error("corrupt write-ahead record {seq}: {source} ({RECOVERY})")]
    CorruptWal {
        /// Its sequence.
        seq: u64,
        /// Why.
        source: CodecError,
    },
    /// fdatasync failed.
    #[error("syncing {path}: {source}")]
    Sync {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A record that does not decode.
    #[error("corrupt record in tree `{tree}` at key {key}: {source} ({RECOVERY})")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// The key, hex.
        key: String,
        /// Why.
        source: CodecError,
    },
    /// Written by an incompatible version.
    #[error("data directory has schema version {found}, this build understands {SCHEMA_VERSION}")]
    Schema {
        /// The version found.
        found: u64,
    },
    /// Data without a schema marker: not ours or damaged.
    #[error(
        "data directory {0} holds data but no schema marker: not an audiencesync store, or damaged"
    )]
    Unmarked(PathBuf),
    /// The directory was a store once but does not hold what it held (emptied, truncated,
    /// unreadable): starting on it would silently lose acknowledged facts.
    #[error("data directory {path} is damaged: {reason} ({RECOVERY})")]
    Damaged {
        /// The directory.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
}

/// What an operator does about a damaged store (docs/RELIABILITY.md has the steps).
const RECOVERY: &str = "refusing to start on it; move the directory aside, start on an empty one and replay the shop's history, then `audiencesync resync --full`: see docs/RELIABILITY.md, \"Recovering a damaged store\"";

/// Runs `f`, turning a panic inside sled (it panics on some damaged files instead of
/// returning an error) into [`StoreError::Damaged`]. The panic message is kept in the error
/// and not printed on its own.
pub(super) fn guarded<T>(
    dir: &Path,
    what: &str,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(StoreError::Damaged {
            path: dir.to_path_buf(),
            reason: format!("sled failed while {what}: {msg}"),
        })
    })
}

/// The sled database and its trees.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// The appending end of the log: the writer appends, recovery replays.
    pub(super) wal: Arc<Mutex<Wal>>,
    pub(super) wal_dir: PathBuf,
    /// Version 1's log tree: emptied by the migration.
    legacy_wal: sled::Tree,
    pub(super) customers: sled::Tree,
    pub(super) orders: sled::Tree,
    pub(super) carts: sled::Tree,
    pub(super) dedup: sled::Tree,
    pub(super) changes: sled::Tree,
    pub(super) meta: sled::Tree,
    pub(super) dir: PathBuf,
    pub(super) fsync: bool,
    /// The marker as found at open (or as written for a new store).
    pub(super) marker: Marker,
}

impl Store {
    /// Opens (or creates) the store.
    pub fn open(cfg: &StorageConfig) -> Result<Self, StoreError> {
        let dir = cfg.data_dir.clone();
        let found_marker = marker::read(&dir).map_err(|e| StoreError::Damaged {
            path: dir.clone(),
            reason: format!("unreadable store marker: {e}"),
        })?;
        let open_err = |source| StoreError::Open {
            path: dir.clone(),
            source,
        };
        let mut store = guarded(&dir, "opening the database", || {
            let db = sled::Config::new()
                .path(&dir)
                .cache_capacity(cfg.cache_capacity_bytes)
                .mode(sled::Mode::HighThroughput)
                .open()
                .map_err(open_err)?;
            let tree = |name: &str| db.open_tree(name).map_err(open_err);
            let wal_dir = dir.join(WAL_DIR);
            Ok(Self {
                wal: Arc::new(Mutex::new(Wal::open(&wal_dir, cfg.fsync)?)),
                wal_dir,
                legacy_wal: tree(LEGACY_WAL_TREE)?,
                customers: tree("customers")?,
                orders: tree("orders")?,
                carts: tree("carts")?,
                dedup: tree("dedup")?,
                changes: tree("changes")?,
                meta: tree("meta")?,
                db,
                dir: dir.clone(),
                fsync: cfg.fsync,
                marker: Marker {
                    schema: SCHEMA_VERSION,
                    checkpoint_seq: 0,
                },
            })
        })?;
        store.marker = guarded(&dir, "reading the schema", || {
            store.check_schema(found_marker)
        })?;
        Ok(store)
    }

    /// Checks the schema and the marker agree with what sled holds; starts a new store in an
    /// empty directory. Returns the marker in force.
    fn check_schema(&self, found: Option<Marker>) -> Result<Marker, StoreError> {
        let fresh = Marker {
            schema: SCHEMA_VERSION,
            checkpoint_seq: 0,
        };
        match self.meta.get(META_SCHEMA)? {
            Some(v) => {
                let found_schema = u64_from(&v);
                match found_schema {
                    1 => self.migrate_wal()?,
                    SCHEMA_VERSION => self.clear_legacy_wal()?,
                    _ => {
                        return Err(StoreError::Schema {
                            found: found_schema,
                        })
                    }
                }
                match found {
                    Some(m) if m.schema == SCHEMA_VERSION => Ok(m),
                    Some(m) => {
                        let m = Marker {
                            schema: SCHEMA_VERSION,
                            ..m
                        };
                        self.write_marker(m)?;
                        Ok(m)
                    }
                    None => {
                        // A store from before markers existed: mark it now.
                        let m = Marker {
                            checkpoint_seq: self.checkpoint_seq()?,
                            ..fresh
                        };
                        self.write_marker(m)?;
                        Ok(m)
                    }
                }
            }
            None => {
                if let Some(m) = found {
                    return Err(StoreError::Damaged {
                        path: self.dir.clone(),
                        reason: format!(
                            "its marker ({}) says a store with checkpoint {} lives here, but sled holds no schema: the database files were emptied, truncated or replaced",
                            marker::FILE_NAME,
                            m.checkpoint_seq
                        ),
                    });
                }
                let has_data = [&self.legacy_wal, &self.customers, &self.orders, &self.carts]
                    .iter()
                    .any(|t| !t.is_empty())
                    || self.wal.lock().last_seq() > 0;
                if has_data {
                    return Err(StoreError::Unmarked(self.dir.clone()));
                }
                self.meta
                    .insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
                self.sync()?;
                self.write_marker(fresh)?;
                Ok(fresh)
            }
        }
    }

    /// Version 1 → 2: the log tree's records move to the log files, then the schema says 2,
    /// then the tree is emptied. Interrupted anywhere, it starts over (or only empties the
    /// tree) at the next open.
    fn migrate_wal(&self) -> Result<(), StoreError> {
        let mut wal = self.wal.lock();
        // Files in a version-1 store can only be an interrupted migration's.
        wal.clear()?;
        let mut run: Vec<Vec<u8>> = Vec::new();
        let mut first = 0;
        let mut moved = 0;
        for item in self.legacy_wal.iter() {
            let (k, v) = item?;
            let seq = u64_from(&k);
            if !run.is_empty() && (seq != first + run.len() as u64 || run.len() == 256) {
                wal.append(first, &run)?;
                run.clear();
            }
            if run.is_empty() {
                first = seq;
            }
            run.push(v.to_vec());
            moved += 1;
        }
        if !run.is_empty() {
            wal.append(first, &run)?;
        }
        drop(wal);
        self.meta
            .insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
        self.sync()?;
        self.clear_legacy_wal()?;
        tracing::info!(
            records = moved,
            "moved the write-ahead log out of sled (store schema 1 → 2)"
        );
        Ok(())
    }

    /// Empties version 1's log tree (left over when a migration stopped after the schema).
    fn clear_legacy_wal(&self) -> Result<(), StoreError> {
        if self.legacy_wal.is_empty() {
            return Ok(());
        }
        self.legacy_wal.clear()?;
        self.sync()
    }

    pub(super) fn write_marker(&self, m: Marker) -> Result<(), StoreError> {
        marker::write(&self.dir, m, self.fsync).map_err(|e| StoreError::Sync {
            path: marker::path(&self.dir),
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// A tree for another component (the sync engine's confirmed lists).
    pub fn open_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends WAL records `first_seq..` and makes them durable before returning.
    pub fn append_wal(&self, first_seq: u64, records: &[Vec<u8>]) -> Result<u64, StoreError> {
        Ok(self.wal.lock().append(first_seq, records)?)
    }

    /// Flushes sled and, when configured, fdatasyncs its data file: sled's own flush is
    /// `sync_file_range` only, which survives a crash but not a power loss.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        if self.fsync {
            let path = self.dir.join("db");
            File::open(&path)
                .and_then(|f| f.sync_data())
                .map_err(|source| StoreError::Sync { path, source })?;
        }
        Ok(())
    }

    /// Syncs the main file and sled's blob files: what a checkpoint phase must have durable
    /// before the next one starts.
    pub(super) fn sync_with_blobs(&self) -> Result<(), StoreError> {
        self.sync_blobs()?;
        self.sync()
    }

    /// Syncs any sled blob files too (values over ~128 KiB live outside the main file).
    fn sync_blobs(&self) -> Result<(), StoreError> {
        if !self.fsync {
            return Ok(());
        }
        let blobs = self.dir.join("blobs");
        let Ok(entries) = std::fs::read_dir(&blobs) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match File::open(&path).and_then(|f| f.sync_data()) {
                Ok(()) => {}
                // sled deletes a blob once the page it held is rewritten; a blob gone between
                // the listing and the open holds nothing the store still needs.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::Sync { path, source }),
            }
        }
        Ok(())
    }

    /// Appends one record of membership changes. Not synced on its own (WAL appends no longer
    /// touch sled): sled's flusher writes it within half a second and the next checkpoint
    /// syncs it, and a change lost to a crash is found again by the start-up
    /// recompute, which compares with the checkpointed memberships.
    pub fn append_changes(&self, seq: u64, record: &[u8]) -> Result<(), StoreError> {
        self.changes.insert(seq.to_be_bytes(), record)?;
        Ok(())
    }

    /// Deletes change-log records whose newest change happened before `cutoff`, oldest first
    /// (records are in time order, so the scan stops at the first one to keep).
    pub fn prune_changes(&self, cutoff: crate::clock::Nanos) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut pruned = 0;
        for item in self.changes.iter() {
            let (k, v) = item?;
            let records: Vec<crate::ledger::records::ChangeRecord> =
                decode(&v).map_err(|e| corrupt("changes", &k, e))?;
            if records
                .iter()
                .map(|r| r.at)
                .max()
                .is_some_and(|t| t >= cutoff)
            {
                break;
            }
            batch.remove(k);
            pruned += 1;
            if pruned % MAX_SLED_BATCH == 0 {
                self.changes.apply_batch(std::mem::take(&mut batch))?;
            }
        }
        self.changes.apply_batch(batch)?;
        Ok(pruned)
    }

    /// The random salt of holdout assignment: made on first use and kept, so every start
    /// holds out the same customers (the salt's meaning lives with the holdout assignment).
    pub fn holdout_salt(&self) -> Result<[u8; HOLDOUT_SALT_LEN], StoreError> {
        if let Some(v) = self.meta.get(META_HOLDOUT_SALT)? {
            if let Ok(salt) = <[u8; HOLDOUT_SALT_LEN]>::try_from(v.as_ref()) {
                return Ok(salt);
            }
            return Err(corrupt("meta", META_HOLDOUT_SALT, CodecError::Empty));
        }
        let mut salt = [0u8; HOLDOUT_SALT_LEN];
        rand::Rng::fill(&mut rand::rng(), &mut salt[..]);
        self.meta.insert(META_HOLDOUT_SALT, &salt[..])?;
        self.sync()?;
        Ok(salt)
    }

    /// Sequence of the last completed checkpoint.
    pub fn checkpoint_seq(&self) -> Result<u64, StoreError> {
        Ok(self.meta.get(META_CHECKPOINT)?.map_or(0, |v| u64_from(&v)))
    }
}

pub(super) fn corrupt(tree: &'static str, key: &[u8], source: CodecError) -> StoreError {
    StoreError::Corrupt {
        tree,
        key: hex::encode(key),
        source,
    }
}

pub(super) fn u64_from(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[8 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    u64::from_be_bytes(buf)
}
