//! On-disk encodings of the state: one version byte, then postcard. Records name customers by
//! the shop's id (dense indices are assigned afresh at every start). Customer records, with
//! their orders and carts, are in [`crate::ledger::customer_record`].

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::clock::Nanos;
use crate::ledger::facts::Fact;
use crate::ledger::state::Key;

/// Version byte of every record written by this build (customer records: see
/// [`CUSTOMER_RECORD_VERSION`]).
pub const RECORD_VERSION: u8 = 1;

/// Version byte of customer records: version 2 added audience entries, version 3 the
/// customer's orders and carts, version 4 cut the orders into chunks with their own keys.
pub const CUSTOMER_RECORD_VERSION: u8 = 4;

/// A record that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Written by another (newer) version of audiencesync.
    #[error("unsupported record version {0} (this build reads {RECORD_VERSION})")]
    Version(u8),
    /// Empty value.
    #[error("empty record")]
    Empty,
    /// Bytes that do not decode.
    #[error("undecodable record: {0}")]
    Decode(#[from] postcard::Error),
}

/// Encodes a value with the version byte.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    postcard::to_extend(v, vec![RECORD_VERSION]).unwrap_or_else(|_| vec![RECORD_VERSION])
}

/// Decodes a value written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&RECORD_VERSION, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&v, _)) => Err(CodecError::Version(v)),
    }
}

/// Largest write-ahead record; larger sled values would go to unsynced blob files.
pub const MAX_WAL_RECORD_BYTES: usize = 64 * 1024;

/// Packs facts into write-ahead records of at most ~[`MAX_WAL_RECORD_BYTES`] each.
pub fn encode_wal(facts: &[Fact]) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    let mut cur = vec![RECORD_VERSION];
    for f in facts {
        if cur.len() > 1 && cur.len() >= MAX_WAL_RECORD_BYTES - 1024 {
            records.push(std::mem::replace(&mut cur, vec![RECORD_VERSION]));
        }
        cur = postcard::to_extend(f, cur).unwrap_or_else(|_| vec![RECORD_VERSION]);
    }
    if cur.len() > 1 {
        records.push(cur);
    }
    records
}

/// Unpacks a write-ahead record.
pub fn decode_wal(bytes: &[u8]) -> Result<Vec<Fact>, CodecError> {
    let mut rest = match bytes.split_first() {
        None => return Err(CodecError::Empty),
        Some((&RECORD_VERSION, rest)) => rest,
        Some((&v, _)) => return Err(CodecError::Version(v)),
    };
    let mut facts = Vec::new();
    while !rest.is_empty() {
        let (f, tail) = postcard::take_from_bytes::<Fact>(rest)?;
        facts.push(f);
        rest = tail;
    }
    Ok(facts)
}

/// One membership change as stored in the `changes` tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Position in `Audience::ALL`.
    pub audience: u8,
    /// The shop's customer id.
    pub customer: Box<str>,
    /// Entered (true) or left.
    pub added: bool,
    /// When.
    pub at: Nanos,
}

/// Big-endian bytes of a key, so sled orders keys as numbers.
pub fn key_bytes(k: Key) -> [u8; 16] {
    k.to_be_bytes()
}

/// A key back from its bytes.
pub fn key_from(bytes: &[u8]) -> Option<Key> {
    Some(Key::from_be_bytes(bytes.try_into().ok()?))
}
