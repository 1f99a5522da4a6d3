//! The reader thread: every file in turn through its format's parser, the events cut into
//! batches for the stream, each event remembering the file and line it came from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{
    csv_mapped, jsonl, shopify, BadRow, Format, ImportArgs, ImportError, Item, Loc, Mapping, Sink,
};
use crate::proto::v1::Event;

/// A batch on its way from the reader thread to the stream.
pub(super) struct Batch {
    pub(super) events: Vec<Event>,
    pub(super) locs: Vec<Loc>,
    /// Parse errors met while filling the batch (they come before its remaining events in
    /// strict mode, where reading stops at the first one).
    pub(super) bad: Vec<(Loc, BadRow)>,
    pub(super) rows: u64,
}

/// Feeds batches to the channel from the reader thread.
pub(super) struct Batcher {
    tx: mpsc::Sender<Batch>,
    batch_size: usize,
    strict: bool,
    file: u32,
    cur: Batch,
    /// Bytes of the files before the current one plus the position in it.
    done_before: u64,
    read: Arc<AtomicU64>,
    /// Set once the stream side went away or strict mode hit a bad row.
    stopped: bool,
}

impl Batcher {
    /// A batcher for the reader thread of an import with `args`; `read` is where it reports
    /// the bytes read so far, for progress.
    pub(super) fn new(tx: mpsc::Sender<Batch>, args: &ImportArgs, read: Arc<AtomicU64>) -> Self {
        Self {
            tx,
            batch_size: args.batch_size,
            strict: args.strict,
            file: 0,
            cur: Batch {
                events: Vec::new(),
                locs: Vec::new(),
                bad: Vec::new(),
                rows: 0,
            },
            done_before: 0,
            read,
            stopped: false,
        }
    }

    fn empty(&self) -> Batch {
        Batch {
            events: Vec::with_capacity(self.batch_size),
            locs: Vec::with_capacity(self.batch_size),
            bad: Vec::new(),
            rows: 0,
        }
    }

    fn flush(&mut self) {
        if self.cur.events.is_empty() && self.cur.bad.is_empty() && self.cur.rows == 0 {
            return;
        }
        let next = self.empty();
        let batch = std::mem::replace(&mut self.cur, next);
        if self.tx.blocking_send(batch).is_err() {
            self.stopped = true;
        }
    }
}

impl Sink for Batcher {
    fn push(&mut self, item: Item, pos: u64) -> bool {
        self.read.store(self.done_before + pos, Ordering::Relaxed);
        let file = self.file;
        match item {
            Item::Event(line, event) => {
                self.cur.events.push(event);
                self.cur.locs.push(Loc { file, line });
            }
            Item::Bad(bad) => {
                self.cur.bad.push((
                    Loc {
                        file,
                        line: bad.line,
                    },
                    bad,
                ));
                if self.strict {
                    self.flush();
                    self.stopped = true;
                }
            }
        }
        if self.cur.events.len() >= self.batch_size {
            self.flush();
        }
        !self.stopped
    }

    fn row(&mut self) {
        self.cur.rows += 1;
    }
}

/// The reader thread: every file in turn through its format's parser.
pub(super) fn read_files(
    args: &ImportArgs,
    mapping: Option<&Mapping>,
    mut batcher: Batcher,
) -> Result<(), ImportError> {
    for (idx, path) in args.files.iter().enumerate() {
        batcher.file = u32::try_from(idx).unwrap_or(u32::MAX);
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        match args.format {
            Format::Jsonl => jsonl::read(path, &mut batcher)?,
            Format::ShopifyOrders => shopify::read(path, &mut batcher)?,
            Format::Csv => {
                let mapping = mapping
                    .ok_or_else(|| ImportError::Args("--format csv needs --mapping FILE".into()))?;
                csv_mapped::read(path, mapping, &mut batcher)?
            }
        }
        if batcher.stopped {
            break;
        }
        batcher.done_before += size;
    }
    batcher.flush();
    Ok(())
}
