//! The snapshot file format: one file per snapshot, `snapshot-{index:016x}-{term:016x}.snap`.
//!
//! # Format (version 2)
//!
//! Every integer is fixed-width little-endian. Header ([`SNAPSHOT_HEADER_LEN`] = 52 bytes, then
//! the configuration, then the header's checksum):
//!
//! | offset | size | field                                                      |
//! |-------:|-----:|------------------------------------------------------------|
//! |      0 |    8 | magic, [`SNAPSHOT_MAGIC`] = `b"KVRAFTSN"`                  |
//! |      8 |    4 | format version, u32 = [`SNAPSHOT_VERSION`] (2)             |
//! |     12 |    8 | index of the last entry covered, u64                       |
//! |     20 |    8 | term of that entry, u64                                    |
//! |     28 |    8 | data length, u64                                           |
//! |     36 |    4 | CRC32C of the data, u32                                    |
//! |     40 |    8 | index of the configuration's entry (0: bootstrap), u64     |
//! |     48 |    4 | configuration length `c`, u32 (0: none known)              |
//! |     52 |    c | the configuration (`ClusterConfig::encode`)                |
//! | 52 + c |    4 | CRC32C of bytes 0..52 + c, u32                             |
//!
//! The data follows the header; the file ends exactly where the data does. Version 1 (no
//! configuration) is refused with [`SnapshotFileError::UnknownVersion`]: a version-1 snapshot
//! cannot say which configuration it was taken under.

use crate::le::{u32_at, u64_at};
use bytes::Bytes;
use kvraft_raft::{ClusterConfig, ConfigState, LogIndex, Snapshot, SnapshotMeta, Term};
use thiserror::Error;

/// The first eight bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"KVRAFTSN";
/// The only snapshot format version this code reads and writes.
pub const SNAPSHOT_VERSION: u32 = 2;
/// Encoded size of the fixed part of the snapshot file header (before the configuration).
pub const SNAPSHOT_HEADER_LEN: usize = 52;
/// The temporary name a snapshot is written under before it is renamed into place.
pub const SNAPSHOT_TMP_NAME: &str = "snap.tmp";

/// Largest configuration a snapshot header may hold (a bound on what a damaged length claims).
const MAX_CONFIG_LEN: usize = 1 << 20;

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
    /// The configuration in the header cannot be read.
    #[error("snapshot configuration unreadable: {0}")]
    BadConfig(String),
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
pub fn encode_snapshot_header(snapshot: &Snapshot) -> Vec<u8> {
    let config =
        if snapshot.config.is_unknown() { Bytes::new() } else { snapshot.config.config.encode() };
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + config.len() + 4);
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.extend_from_slice(&snapshot.meta.index.0.to_le_bytes());
    out.extend_from_slice(&snapshot.meta.term.0.to_le_bytes());
    out.extend_from_slice(&(snapshot.data.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&snapshot.data).to_le_bytes());
    out.extend_from_slice(&snapshot.config.index.0.to_le_bytes());
    out.extend_from_slice(&(config.len() as u32).to_le_bytes());
    out.extend_from_slice(&config);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
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
    let config_len = u32_at(buf, 48) as usize;
    let crc_at = SNAPSHOT_HEADER_LEN + config_len;
    if config_len > MAX_CONFIG_LEN || buf.len() < crc_at + 4 {
        return Err(SnapshotFileError::TooShort { len: buf.len() });
    }
    let stored = u32_at(buf, crc_at);
    let computed = crc32c::crc32c(&buf[..crc_at]);
    if stored != computed {
        return Err(SnapshotFileError::HeaderChecksum { stored, computed });
    }
    let index = u64_at(buf, 12);
    let term = u64_at(buf, 20);
    let len = u64_at(buf, 28);
    let config_index = LogIndex(u64_at(buf, 40));
    let config = if config_len == 0 {
        ConfigState::default()
    } else {
        let config = ClusterConfig::decode(&buf[SNAPSHOT_HEADER_LEN..crc_at])
            .map_err(|e| SnapshotFileError::BadConfig(e.to_string()))?;
        ConfigState { index: config_index, config }
    };
    let data_at = crc_at + 4;
    let data = &buf[data_at..];
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
        config,
        data: file.slice(data_at..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        let voters = [kvraft_raft::NodeId(1), kvraft_raft::NodeId(2), kvraft_raft::NodeId(3)];
        Snapshot {
            meta: SnapshotMeta { index: LogIndex(42), term: Term(7) },
            config: ConfigState { index: LogIndex(40), config: ClusterConfig::bootstrap(voters) },
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
        let config_len = s.config.config.encode().len();
        assert_eq!(file.len(), SNAPSHOT_HEADER_LEN + config_len + 4 + s.data.len());
        assert_eq!(decode_snapshot(file), Ok(s.clone()));
        // A snapshot taken before any configuration was known keeps saying so.
        let bare = Snapshot { config: ConfigState::default(), ..s.clone() };
        assert_eq!(decode_snapshot(file_of(&bare)), Ok(bare));
        let name = snapshot_file_name(s.meta);
        assert_eq!(name, "snapshot-000000000000002a-0000000000000007.snap");
        assert_eq!(parse_snapshot_file_name(&name), Some(s.meta));
        assert_eq!(parse_snapshot_file_name("wal-0000000000000001.log"), None);
    }

    #[test]
    fn a_version_1_snapshot_is_refused_by_name() {
        let mut buf = file_of(&snap());
        buf[8..12].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(decode_snapshot(buf), Err(SnapshotFileError::UnknownVersion { version: 1 }));
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
