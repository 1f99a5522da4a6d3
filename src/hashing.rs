//! Hashed identifiers: the SHA-256 digests both ad networks match on, and their hex form.
//!
//! A leaf: ingest makes the digests, the ledger stores them, sync and every destination send
//! them, so the type lives below all of them and imports nothing of the crate.

use sha2::{Digest as _, Sha256};

/// A SHA-256 digest; rendered as lowercase hex only when sent.
pub type Digest = [u8; 32];

/// The same identifier hashed under each network's normalization.
///
/// Kept per network because the rules differ (Gmail dots, `+` on phones, name prefixes), so one
/// hash cannot serve both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct NetworkHashes {
    /// SHA-256 of the Google Data Manager normalization.
    pub google: Digest,
    /// SHA-256 of the Meta Custom Audiences normalization.
    pub meta: Digest,
}

/// SHA-256 of the normalized UTF-8 string; the only hash both networks accept.
pub fn sha256(normalized: &str) -> Digest {
    Sha256::digest(normalized.as_bytes()).into()
}

/// Lower-case hex into a caller buffer without allocating (hot path: request bodies for
/// thousands of members). Lowercase because Meta requires it and Google accepts it.
pub fn hex_into<'a>(d: &Digest, out: &'a mut [u8; 64]) -> &'a str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(d) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
    std::str::from_utf8(out).expect("hex digits are ASCII")
}

/// Lower-case hex as an owned string, for code off the hot path.
pub fn hex_lower(d: &Digest) -> String {
    hex::encode(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARY: &str = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79";

    #[test]
    fn hex_encoding() {
        let d = sha256("mary@example.com");
        let mut buf = [0u8; 64];
        assert_eq!(hex_into(&d, &mut buf), MARY);
        assert_eq!(hex_lower(&d), MARY);
        let mut zero = [b'x'; 64];
        assert_eq!(hex_into(&[0xab; 32], &mut zero), "ab".repeat(32));
    }
}
