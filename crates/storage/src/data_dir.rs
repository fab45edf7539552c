//! The data directory's identity: which cluster and which node a directory belongs to.
//!
//! A node's data directory holds, besides its WAL segments and snapshot files, one small
//! metadata file, [`META_FILE_NAME`]. [`open_data_dir`] checks it before anything else reads the
//! directory, so that a node started with another node's directory (a copy-paste slip in a
//! config file, a volume mounted on the wrong host) refuses to start instead of joining the
//! cluster with somebody else's log and vote, which would break Raft's safety silently.
//!
//! # Format (version 1)
//!
//! Every integer is fixed-width little-endian. The file is exactly [`META_LEN`] = 32 bytes:
//!
//! | offset | size | field                                          |
//! |-------:|-----:|------------------------------------------------|
//! |      0 |    8 | magic, [`META_MAGIC`] = `b"KVRAFTMD"`          |
//! |      8 |    4 | format version, u32 = [`META_VERSION`] (1)     |
//! |     12 |    8 | cluster id, u64 ([`ClusterId`])                |
//! |     20 |    8 | node id, u64                                   |
//! |     28 |    4 | CRC32C of bytes 0..28, u32                     |
//!
//! As for WAL segment headers, the version is checked before the checksum (a later version may
//! lay out the rest differently), so a flipped bit in the version field reads as an
//! unsupported version; both stop the node.
//!
//! # Creation, and why a torn file is never accepted
//!
//! The file is written under [`META_TMP_NAME`], synced, renamed into place and the directory
//! synced. The final name therefore only ever refers to complete, synced bytes; a crash leaves
//! either no metadata file (perhaps a torn temporary one, which is ignored and replaced) or a
//! complete one. The checksum and the exact length catch anything else (damage, a hand edit).
//!
//! # Refusing unidentified directories
//!
//! A directory with WAL segments or snapshot files but no metadata file is refused
//! ([`DataDirError::MissingMetadata`]): adopting it would stamp some unknown node's log with
//! this node's identity. Files kvraft does not own are ignored, so an empty mount point with a
//! `lost+found` is fine.

pub use kvraft_raft::ClusterId;
use kvraft_raft::NodeId;
use thiserror::Error;

use crate::disk::{Disk, DiskError};
use crate::le::{u32_at, u64_at};
use crate::snapshot_file::SNAPSHOT_TMP_NAME;

/// The metadata file's name.
pub const META_FILE_NAME: &str = "kvraft.meta";
/// The temporary name the metadata file is written under before it is renamed into place.
pub const META_TMP_NAME: &str = "kvraft.meta.tmp";
/// The first eight bytes of the metadata file.
pub const META_MAGIC: [u8; 8] = *b"KVRAFTMD";
/// The only metadata format version this code reads and writes.
pub const META_VERSION: u32 = 1;
/// Encoded size of the metadata file (version 1).
pub const META_LEN: usize = 32;

const VERSION_END: usize = 12;
const CRC_AT: usize = META_LEN - 4;

/// Who a data directory belongs to: one node of one cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeIdentity {
    /// The cluster the directory belongs to.
    pub cluster_id: ClusterId,
    /// The node of that cluster it belongs to.
    pub node_id: NodeId,
}

/// What [`open_data_dir`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataDirStatus {
    /// The directory had no kvraft files; the metadata file was created (durably).
    Created,
    /// The directory already belonged to this node of this cluster.
    Existing,
}

/// Why [`open_data_dir`] refused the directory. Apart from [`DataDirError::Disk`] (an IO error
/// while reading or creating), nothing on disk was changed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DataDirError {
    /// Reading the directory or writing its metadata failed.
    #[error(transparent)]
    Disk(#[from] DiskError),

    /// The directory belongs to another cluster.
    #[error(
        "this data directory belongs to another cluster (cluster id {found}, this node is \
         configured for cluster {expected}); refusing to start so as not to mix the two \
         clusters' logs. Point this node at its own data directory, or, if the old cluster's \
         data is no longer needed, move the directory away and start with an empty one"
    )]
    ForeignCluster {
        /// The cluster id in the directory.
        found: ClusterId,
        /// The cluster id this node is configured with.
        expected: ClusterId,
    },

    /// The directory belongs to another node of this cluster.
    #[error(
        "this data directory belongs to node {found}, not to node {expected} of the same \
         cluster; refusing to start, since running with another node's log and vote breaks \
         Raft's safety. Check the node id and the data directory in the configuration"
    )]
    ForeignNode {
        /// The node id in the directory.
        found: NodeId,
        /// This node's id.
        expected: NodeId,
    },

    /// The metadata file states a format version this build does not read.
    #[error(
        "{file}: data directory format version {version} is not supported (this build reads \
         version {META_VERSION}); was it written by a newer kvraft?"
    )]
    UnsupportedVersion {
        /// The metadata file.
        file: String,
        /// The version it states.
        version: u32,
    },

    /// The metadata file is damaged.
    #[error("{file}: corrupt data directory metadata: {reason}")]
    Corrupt {
        /// The metadata file.
        file: String,
        /// What is wrong with it.
        reason: MetaCorruption,
    },

    /// The directory holds kvraft files but no metadata file saying whose they are.
    #[error(
        "the data directory holds kvraft data ({}) but no {META_FILE_NAME} saying which cluster \
         and node it belongs to; refusing to adopt it. If you know it is this node's data, \
         restore its {META_FILE_NAME}; otherwise start with an empty directory",
        found.join(", ")
    )]
    MissingMetadata {
        /// The kvraft files found.
        found: Vec<String>,
    },
}

/// What is wrong with a metadata file that is not a valid version-1 file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum MetaCorruption {
    /// The file cannot even hold its magic and version.
    #[error("{len} bytes, too short to hold magic and version")]
    TooShort {
        /// The file's length.
        len: usize,
    },
    /// The file does not start with the metadata magic.
    #[error("bad magic {found:02x?}")]
    BadMagic {
        /// The first eight bytes.
        found: [u8; 8],
    },
    /// A version-1 file has another length.
    #[error("{len} bytes, expected exactly {META_LEN}")]
    WrongLength {
        /// The file's length.
        len: usize,
    },
    /// The contents do not match their checksum.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// The checksum in the file.
        stored: u32,
        /// The checksum of its contents.
        computed: u32,
    },
}

/// Encodes the metadata file for `identity`.
pub fn encode_metadata(identity: NodeIdentity) -> [u8; META_LEN] {
    encode_with_version(identity, META_VERSION)
}

fn encode_with_version(identity: NodeIdentity, version: u32) -> [u8; META_LEN] {
    let mut out = [0u8; META_LEN];
    out[..8].copy_from_slice(&META_MAGIC);
    out[8..12].copy_from_slice(&version.to_le_bytes());
    out[12..20].copy_from_slice(&identity.cluster_id.0.to_le_bytes());
    out[20..28].copy_from_slice(&identity.node_id.0.to_le_bytes());
    let crc = crc32c::crc32c(&out[..CRC_AT]);
    out[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes and verifies the contents of a metadata file. Errors name [`META_FILE_NAME`].
pub fn decode_metadata(buf: &[u8]) -> Result<NodeIdentity, DataDirError> {
    let corrupt = |reason| DataDirError::Corrupt { file: META_FILE_NAME.to_string(), reason };
    if buf.len() < VERSION_END {
        return Err(corrupt(MetaCorruption::TooShort { len: buf.len() }));
    }
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&buf[..8]);
    if magic != META_MAGIC {
        return Err(corrupt(MetaCorruption::BadMagic { found: magic }));
    }
    let version = u32_at(buf, 8);
    if version != META_VERSION {
        return Err(DataDirError::UnsupportedVersion { file: META_FILE_NAME.to_string(), version });
    }
    if buf.len() != META_LEN {
        return Err(corrupt(MetaCorruption::WrongLength { len: buf.len() }));
    }
    let stored = u32_at(buf, CRC_AT);
    let computed = crc32c::crc32c(&buf[..CRC_AT]);
    if stored != computed {
        return Err(corrupt(MetaCorruption::Checksum { stored, computed }));
    }
    Ok(NodeIdentity { cluster_id: ClusterId(u64_at(buf, 12)), node_id: NodeId(u64_at(buf, 20)) })
}

/// True for the files kvraft keeps in a data directory besides its metadata: WAL segments,
/// snapshot files and a snapshot being written. Matched loosely (by prefix and suffix), so a
/// file that merely looks like kvraft data also keeps an unidentified directory from being
/// adopted.
fn is_kvraft_data_file(name: &str) -> bool {
    (name.starts_with("wal-") && name.ends_with(".log"))
        || (name.starts_with("snapshot-") && name.ends_with(".snap"))
        || name == SNAPSHOT_TMP_NAME
}

/// The identity recorded in the directory, or `None` if it has no metadata file. Read-only;
/// for tools that inspect a directory (a status command). Does not compare with anything.
pub fn read_data_dir_identity<D: Disk>(disk: &D) -> Result<Option<NodeIdentity>, DataDirError> {
    if !disk.list()?.iter().any(|n| n == META_FILE_NAME) {
        return Ok(None);
    }
    decode_metadata(&disk.read(META_FILE_NAME)?).map(Some)
}

/// Checks that the data directory on `disk` belongs to `expected`, creating its metadata file
/// if the directory holds no kvraft data yet. Call before opening the WAL on the same disk.
///
/// - Metadata file present and valid: `Existing` if it names `expected`, else
///   [`DataDirError::ForeignCluster`] (checked first) or [`DataDirError::ForeignNode`].
/// - Metadata file present but unreadable: [`DataDirError::UnsupportedVersion`] or
///   [`DataDirError::Corrupt`].
/// - No metadata file but WAL segments or snapshot files: [`DataDirError::MissingMetadata`].
/// - No metadata file and no kvraft data: the file is written durably (temporary file,
///   `sync_data`, rename, `sync_dir`) and the result is `Created`.
///
/// A leftover [`META_TMP_NAME`] (from a crash during an earlier creation) is ignored and
/// removed on success. On every error but a disk error, nothing on disk changes; a disk error
/// during creation may leave the temporary file, which the next call replaces.
pub fn open_data_dir<D: Disk>(
    disk: &mut D,
    expected: NodeIdentity,
) -> Result<DataDirStatus, DataDirError> {
    let names = disk.list()?;
    let has_tmp = names.iter().any(|n| n == META_TMP_NAME);
    if names.iter().any(|n| n == META_FILE_NAME) {
        let found = decode_metadata(&disk.read(META_FILE_NAME)?)?;
        if found.cluster_id != expected.cluster_id {
            return Err(DataDirError::ForeignCluster {
                found: found.cluster_id,
                expected: expected.cluster_id,
            });
        }
        if found.node_id != expected.node_id {
            return Err(DataDirError::ForeignNode {
                found: found.node_id,
                expected: expected.node_id,
            });
        }
        if has_tmp {
            disk.remove(META_TMP_NAME)?;
            disk.sync_dir()?;
        }
        return Ok(DataDirStatus::Existing);
    }
    let data: Vec<String> = names.into_iter().filter(|n| is_kvraft_data_file(n)).collect();
    if !data.is_empty() {
        return Err(DataDirError::MissingMetadata { found: data });
    }
    if let Err(e) = create_metadata(disk, expected, has_tmp) {
        // Best effort: a failed step leaves a temporary file at most; try to tidy it up, but
        // the next call copes with it anyway. After a failed fsync, nothing more is retried.
        if !e.is_sync_failure() {
            let _ = disk.remove(META_TMP_NAME);
        }
        return Err(e.into());
    }
    Ok(DataDirStatus::Created)
}

fn create_metadata<D: Disk>(
    disk: &mut D,
    identity: NodeIdentity,
    has_tmp: bool,
) -> Result<(), DiskError> {
    if has_tmp {
        disk.remove(META_TMP_NAME)?;
    }
    disk.create(META_TMP_NAME)?;
    disk.append(META_TMP_NAME, &encode_metadata(identity))?;
    disk.sync_data(META_TMP_NAME)?;
    disk.rename(META_TMP_NAME, META_FILE_NAME)?;
    disk.sync_dir()
}

#[cfg(test)]
mod tests;
