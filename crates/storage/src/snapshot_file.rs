//! The snapshot file format: one file per snapshot, `snapshot-{index:016x}-{term:016x}.snap`.
//!
//! # Format (version 1)
//!
//! Every integer is fixed-width little-endian. Header ([`SNAPSHOT_HEADER_LEN`] = 44 bytes):
//!
//! | offset | size | field                                          |
//! |-------:|-----:|------------------------------------------------|
//! |      0 |    8 | magic, [`SNAPSHOT_MAGIC`] = `b"KVRAFTSN"`      |
//! |      8 |    4 | format version, u32 = [`SNAPSHOT_VERSION`] (1) |
//! |     12 |    8 | index of the last entry covered, u64           |
//! |     20 |    8 | term of that entry, u64                        |
//! |     28 |    8 | data length, u64                               |
//! |     36 |    4 | CRC32C of the data, u32                        |
//! |     40 |    4 | CRC32C of bytes 0..40, u32                     |
//!
//! The data follows the header; the file ends exactly where the data does.

use crate::le::{u32_at, u64_at};
use bytes::Bytes;
use kvraft_raft::{LogIndex, Snapshot, SnapshotMeta, Term};
use thiserror::Error;

/// The first eight bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"KVRAFTSN";
/// The only snapshot format version this code reads and writes.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Encoded size of the snapshot file header.
pub const SNAPSHOT_HEADER_LEN: usize = 44;
/// The temporary name a snapshot is written under before it is renamed into place.
pub const SNAPSHOT_TMP_NAME: &str = "snap.tmp";

const HEADER_CRC_AT: usize = SNAPSHOT_HEADER_LEN - 4;

/// Why a snapshot file could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SnapshotFileError {
    /// The file is shorter than its header.
    #[error(
        "snapshot file is {len} bytes long, shorter than its {SNAPSHOT_HEADER_LEN}-byte header"
    )]
    TooShort {
        /// The file's length.
        len: usize,
    },
    /// The file does not start with the snapshot magic.
    #[error("bad snapshot magic {found:02x?}")]
    BadMagic {
        /// The first eight bytes.
        found: [u8; 8],
    },
    /// The file's format version is not one this build reads.
    #[error("unknown snapshot format version {version} (this build reads {SNAPSHOT_VERSION})")]
    UnknownVersion {
        /// The version found.
        version: u32,
    },
    /// The header does not match its checksum.
    #[error(
        "snapshot header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
    )]
    HeaderChecksum {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the header's fields.
        computed: u32,
    },
    /// The data is not as long as the header says.
    #[error("snapshot header says {expected} data bytes, file holds {found}")]
    LengthMismatch {
        /// The length the header states.
        expected: u64,
        /// The length the file holds.
        found: u64,
    },
    /// The data does not match its checksum.
    #[error("snapshot data checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    DataChecksum {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the data found.
        computed: u32,
    },
}

/// The file name of the snapshot covering `meta`.
pub fn snapshot_file_name(meta: SnapshotMeta) -> String {
    format!("snapshot-{:016x}-{:016x}.snap", meta.index.0, meta.term.0)
}

/// The position named by a snapshot file name, or `None` if `name` is not one.
pub fn parse_snapshot_file_name(name: &str) -> Option<SnapshotMeta> {
    let rest = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    let (index, term) = rest.split_once('-')?;
    if index.len() != 16 || term.len() != 16 {
        return None;
    }
    Some(SnapshotMeta {
        index: LogIndex(u64::from_str_radix(index, 16).ok()?),
        term: Term(u64::from_str_radix(term, 16).ok()?),
    })
}

/// A snapshot file's header; the data follows it. Written apart from the data, so that
/// saving a snapshot never makes a second copy of it in memory.
pub fn encode_snapshot_header(snapshot: &Snapshot) -> [u8; SNAPSHOT_HEADER_LEN] {
    let mut out = [0u8; SNAPSHOT_HEADER_LEN];
    out[..8].copy_from_slice(&SNAPSHOT_MAGIC);
    out[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out[12..20].copy_from_slice(&snapshot.meta.index.0.to_le_bytes());
    out[20..28].copy_from_slice(&snapshot.meta.term.0.to_le_bytes());
    out[28..36].copy_from_slice(&(snapshot.data.len() as u64).to_le_bytes());
    out[36..HEADER_CRC_AT].copy_from_slice(&crc32c::crc32c(&snapshot.data).to_le_bytes());
    let crc = crc32c::crc32c(&out[..HEADER_CRC_AT]);
    out[HEADER_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes and verifies a snapshot file. The snapshot's data is a slice of `file`, not a
/// copy (a snapshot can be most of a node's memory).
pub fn decode_snapshot(file: impl Into<Bytes>) -> Result<Snapshot, SnapshotFileError> {
    let file: Bytes = file.into();
    let buf = &file[..];
    if buf.len() < SNAPSHOT_HEADER_LEN {
        return Err(SnapshotFileError::TooShort { len: buf.len() });
    }
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&buf[..8]);
    if magic != SNAPSHOT_MAGIC {
        return Err(SnapshotFileError::BadMagic { found: magic });
    }
    let version = u32_at(buf, 8);
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotFileError::UnknownVersion { version });
    }
    let stored = u32_at(buf, HEADER_CRC_AT);
    let computed = crc32c::crc32c(&buf[..HEADER_CRC_AT]);
    if stored != computed {
        return Err(SnapshotFileError::HeaderChecksum { stored, computed });
    }
    let index = u64_at(buf, 12);
    let term = u64_at(buf, 20);
    let len = u64_at(buf, 28);
    let data = &buf[SNAPSHOT_HEADER_LEN..];
    if data.len() as u64 != len {
        return Err(SnapshotFileError::LengthMismatch { expected: len, found: data.len() as u64 });
    }
    let stored = u32_at(buf, 36);
    let computed = crc32c::crc32c(data);
    if stored != computed {
        return Err(SnapshotFileError::DataChecksum { stored, computed });
    }
    Ok(Snapshot {
        meta: SnapshotMeta { index: LogIndex(index), term: Term(term) },
        data: file.slice(SNAPSHOT_HEADER_LEN..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        Snapshot {
            meta: SnapshotMeta { index: LogIndex(42), term: Term(7) },
            data: Bytes::from_static(b"state machine bytes"),
        }
    }

    /// A snapshot file as `WalStorage` writes it: the header, then the data.
    fn file_of(s: &Snapshot) -> Vec<u8> {
        let mut file = encode_snapshot_header(s).to_vec();
        file.extend_from_slice(&s.data);
        file
    }

    #[test]
    fn round_trip_and_name() {
        let s = snap();
        let file = file_of(&s);
        assert_eq!(file.len(), SNAPSHOT_HEADER_LEN + s.data.len());
        assert_eq!(decode_snapshot(file), Ok(s.clone()));
        let name = snapshot_file_name(s.meta);
        assert_eq!(name, "snapshot-000000000000002a-0000000000000007.snap");
        assert_eq!(parse_snapshot_file_name(&name), Some(s.meta));
        assert_eq!(parse_snapshot_file_name("wal-0000000000000001.log"), None);
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let buf = file_of(&snap());
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            assert!(decode_snapshot(bad).is_err(), "flip at {i} not detected");
        }
        assert!(decode_snapshot(buf[..buf.len() - 1].to_vec()).is_err());
        assert!(decode_snapshot(buf[..10].to_vec()).is_err());
    }
}
