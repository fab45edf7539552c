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
    pub cluster_id: ClusterId,
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
    #[error(transparent)]
    Disk(#[from] DiskError),

    #[error(
        "this data directory belongs to another cluster (cluster id {found}, this node is \
         configured for cluster {expected}); refusing to start so as not to mix the two \
         clusters' logs. Point this node at its own data directory, or, if the old cluster's \
         data is no longer needed, move the directory away and start with an empty one"
    )]
    ForeignCluster { found: ClusterId, expected: ClusterId },

    #[error(
        "this data directory belongs to node {found}, not to node {expected} of the same \
         cluster; refusing to start, since running with another node's log and vote breaks \
         Raft's safety. Check the node id and the data directory in the configuration"
    )]
    ForeignNode { found: NodeId, expected: NodeId },

    #[error(
        "{file}: data directory format version {version} is not supported (this build reads \
         version {META_VERSION}); was it written by a newer kvraft?"
    )]
    UnsupportedVersion { file: String, version: u32 },

    #[error("{file}: corrupt data directory metadata: {reason}")]
    Corrupt { file: String, reason: MetaCorruption },

    #[error(
        "the data directory holds kvraft data ({}) but no {META_FILE_NAME} saying which cluster \
         and node it belongs to; refusing to adopt it. If you know it is this node's data, \
         restore its {META_FILE_NAME}; otherwise start with an empty directory",
        found.join(", ")
    )]
    MissingMetadata { found: Vec<String> },
}

/// What is wrong with a metadata file that is not a valid version-1 file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum MetaCorruption {
    #[error("{len} bytes, too short to hold magic and version")]
    TooShort { len: usize },
    #[error("bad magic {found:02x?}")]
    BadMagic { found: [u8; 8] },
    #[error("{len} bytes, expected exactly {META_LEN}")]
    WrongLength { len: usize },
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
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
mod tests {
    use std::path::PathBuf;

    use kvraft_raft::DetRng;

    use super::*;
    use crate::{FaultPlan, FileDisk, SimDisk};

    const ME: NodeIdentity = NodeIdentity { cluster_id: ClusterId(0xC1), node_id: NodeId(2) };

    /// Every file's name and contents, to show that a refused open changed nothing.
    fn snapshot_of(disk: &SimDisk) -> Vec<(String, Vec<u8>)> {
        disk.list().unwrap().into_iter().map(|n| (n.clone(), disk.read(&n).unwrap())).collect()
    }

    fn disk_with(files: &[(&str, &[u8])]) -> SimDisk {
        let mut disk = SimDisk::new(1);
        for (name, data) in files {
            disk.create(name).unwrap();
            disk.append(name, data).unwrap();
            disk.sync_data(name).unwrap();
        }
        disk.sync_dir().unwrap();
        disk
    }

    /// Opens with `expected` and asserts it fails without changing the disk.
    fn refused(mut disk: SimDisk, expected: NodeIdentity) -> DataDirError {
        let before = snapshot_of(&disk);
        let err = open_data_dir(&mut disk, expected).unwrap_err();
        assert_eq!(snapshot_of(&disk), before, "a refused open changed the disk: {err}");
        err
    }

    #[test]
    fn layout_is_fixed_width_little_endian() {
        let id = NodeIdentity { cluster_id: ClusterId(0x0102_0304_0506_0708), node_id: NodeId(9) };
        let buf = encode_metadata(id);
        assert_eq!(&buf[..8], b"KVRAFTMD");
        assert_eq!(&buf[8..12], &[1, 0, 0, 0]);
        assert_eq!(&buf[12..20], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&buf[20..28], &[9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&buf[28..], &crc32c::crc32c(&buf[..28]).to_le_bytes());
        assert_eq!(decode_metadata(&buf), Ok(id));
        assert_eq!(ClusterId(0xC1).to_string(), "00000000000000c1");
    }

    #[test]
    fn empty_directory_is_created_durably_then_existing() {
        let mut disk = SimDisk::new(1);
        assert_eq!(open_data_dir(&mut disk, ME), Ok(DataDirStatus::Created));
        assert_eq!(disk.list().unwrap(), vec![META_FILE_NAME.to_string()]);
        assert!(disk.is_durable(META_FILE_NAME));
        assert_eq!(disk.read(META_FILE_NAME).unwrap(), encode_metadata(ME));
        assert_eq!(read_data_dir_identity(&disk), Ok(Some(ME)));
        // Durable: every crash keeps it.
        for seed in 0..20 {
            let mut crashed = disk.clone();
            crashed.crash(&mut DetRng::new(seed));
            assert_eq!(open_data_dir(&mut crashed, ME), Ok(DataDirStatus::Existing));
        }
        let before = snapshot_of(&disk);
        assert_eq!(open_data_dir(&mut disk, ME), Ok(DataDirStatus::Existing));
        assert_eq!(snapshot_of(&disk), before);
    }

    #[test]
    fn files_kvraft_does_not_own_do_not_block_creation() {
        let mut disk = disk_with(&[("lost+found", b""), ("README", b"notes")]);
        assert_eq!(read_data_dir_identity(&disk), Ok(None));
        assert_eq!(open_data_dir(&mut disk, ME), Ok(DataDirStatus::Created));
        assert_eq!(disk.list().unwrap(), vec!["README", "kvraft.meta", "lost+found"]);
    }

    #[test]
    fn wal_storage_ignores_the_metadata_file() {
        let mut disk = SimDisk::new(1);
        open_data_dir(&mut disk, ME).unwrap();
        let wal = crate::WalStorage::open(disk).unwrap();
        let mut disk = wal.into_disk();
        assert_eq!(open_data_dir(&mut disk, ME), Ok(DataDirStatus::Existing));
        assert!(crate::WalStorage::open(disk).is_ok());
    }

    #[test]
    fn another_cluster_is_refused_with_a_clear_message() {
        let theirs = NodeIdentity { cluster_id: ClusterId(0xAB), node_id: ME.node_id };
        let err = refused(disk_with(&[(META_FILE_NAME, &encode_metadata(theirs))]), ME);
        assert_eq!(
            err,
            DataDirError::ForeignCluster { found: ClusterId(0xAB), expected: ClusterId(0xC1) }
        );
        let msg = err.to_string();
        assert!(msg.contains("belongs to another cluster"), "{msg}");
        assert!(msg.contains("00000000000000ab") && msg.contains("00000000000000c1"), "{msg}");
        assert!(msg.contains("Point this node at its own data directory"), "{msg}");
        // Both ids differ: the cluster is what is reported.
        let stranger = NodeIdentity { cluster_id: ClusterId(0xAB), node_id: NodeId(7) };
        let err = refused(disk_with(&[(META_FILE_NAME, &encode_metadata(stranger))]), ME);
        assert!(matches!(err, DataDirError::ForeignCluster { .. }), "{err}");
    }

    #[test]
    fn another_node_is_refused() {
        let theirs = NodeIdentity { cluster_id: ME.cluster_id, node_id: NodeId(3) };
        let err = refused(
            disk_with(&[(META_FILE_NAME, &encode_metadata(theirs)), ("wal-1.log", b"x")]),
            ME,
        );
        assert_eq!(err, DataDirError::ForeignNode { found: NodeId(3), expected: NodeId(2) });
        assert!(err.to_string().contains("belongs to node 3, not to node 2"), "{err}");
    }

    #[test]
    fn unknown_version_is_refused() {
        for version in [0, 2, u32::MAX] {
            let file = encode_with_version(ME, version);
            let err = refused(disk_with(&[(META_FILE_NAME, &file)]), ME);
            assert_eq!(
                err,
                DataDirError::UnsupportedVersion { file: META_FILE_NAME.into(), version }
            );
        }
    }

    #[test]
    fn damaged_files_are_corrupt() {
        let good = encode_metadata(ME);
        let corrupt = |reason| DataDirError::Corrupt { file: META_FILE_NAME.into(), reason };
        for len in 0..META_LEN {
            let expected = if len < VERSION_END {
                corrupt(MetaCorruption::TooShort { len })
            } else {
                corrupt(MetaCorruption::WrongLength { len })
            };
            assert_eq!(refused(disk_with(&[(META_FILE_NAME, &good[..len])]), ME), expected);
        }
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(
            refused(disk_with(&[(META_FILE_NAME, &long)]), ME),
            corrupt(MetaCorruption::WrongLength { len: META_LEN + 1 })
        );
        let mut bad_magic = good;
        bad_magic[0] = b'X';
        assert!(matches!(
            refused(disk_with(&[(META_FILE_NAME, &bad_magic)]), ME),
            DataDirError::Corrupt { reason: MetaCorruption::BadMagic { .. }, .. }
        ));
        // Every flipped bit is caught: as a bad magic, an unsupported version (the version
        // field is read before the checksum), or a checksum mismatch. Never accepted.
        for bit in 0..META_LEN * 8 {
            let mut bad = good;
            bad[bit / 8] ^= 1 << (bit % 8);
            let err = refused(disk_with(&[(META_FILE_NAME, &bad)]), ME);
            let ok = match bit / 8 {
                0..=7 => {
                    matches!(
                        err,
                        DataDirError::Corrupt { reason: MetaCorruption::BadMagic { .. }, .. }
                    )
                }
                8..=11 => matches!(err, DataDirError::UnsupportedVersion { .. }),
                _ => matches!(
                    err,
                    DataDirError::Corrupt { reason: MetaCorruption::Checksum { .. }, .. }
                ),
            };
            assert!(ok, "bit {bit}: {err:?}");
        }
        let err = refused(disk_with(&[(META_FILE_NAME, b"")]), ME);
        assert!(err.to_string().starts_with("kvraft.meta: corrupt"), "{err}");
    }

    #[test]
    fn kvraft_data_without_metadata_is_refused() {
        let cases: [&[(&str, &[u8])]; 4] = [
            &[("wal-0000000000000001.log", b"seg")],
            &[("snapshot-0000000000000005-0000000000000001.snap", b"snap")],
            &[(SNAPSHOT_TMP_NAME, b"partial")],
            &[("wal-0000000000000003.log", b"seg"), (META_TMP_NAME, b"torn")],
        ];
        for files in cases {
            let err = refused(disk_with(files), ME);
            let expected: Vec<String> =
                files.iter().map(|(n, _)| n.to_string()).filter(|n| n != META_TMP_NAME).collect();
            assert_eq!(err, DataDirError::MissingMetadata { found: expected.clone() });
            let msg = err.to_string();
            assert!(msg.contains(&expected[0]) && msg.contains("refusing to adopt"), "{msg}");
        }
    }

    #[test]
    fn a_leftover_temporary_file_is_ignored_and_removed() {
        // A torn temporary file from a crash during creation, even one that would decode as
        // another node's metadata, is never read.
        let other = encode_metadata(NodeIdentity { cluster_id: ClusterId(9), node_id: NodeId(9) });
        for tmp in [&b"KVRAFT"[..], &other[..]] {
            let mut disk = disk_with(&[(META_TMP_NAME, tmp)]);
            assert_eq!(open_data_dir(&mut disk, ME), Ok(DataDirStatus::Created));
            assert_eq!(disk.list().unwrap(), vec![META_FILE_NAME.to_string()]);
            assert_eq!(read_data_dir_identity(&disk), Ok(Some(ME)));
        }
        let mut disk = disk_with(&[(META_FILE_NAME, &encode_metadata(ME)), (META_TMP_NAME, b"x")]);
        assert_eq!(open_data_dir(&mut disk, ME), Ok(DataDirStatus::Existing));
        assert_eq!(disk.list().unwrap(), vec![META_FILE_NAME.to_string()]);
    }

    /// A disk whose process "dies" after `budget` calls: every later call fails and does
    /// nothing, as if the rest of `open_data_dir` never ran. The crash itself comes after.
    #[derive(Debug)]
    struct Dying {
        inner: SimDisk,
        budget: usize,
    }

    impl Dying {
        fn step(&mut self, name: &str) -> Result<(), DiskError> {
            if self.budget == 0 {
                return Err(DiskError::Io {
                    name: name.to_string(),
                    op: "dead",
                    kind: std::io::ErrorKind::Other,
                    message: "process died".into(),
                });
            }
            self.budget -= 1;
            Ok(())
        }
    }

    impl Disk for Dying {
        fn create(&mut self, name: &str) -> Result<(), DiskError> {
            self.step(name)?;
            self.inner.create(name)
        }
        fn append(&mut self, name: &str, data: &[u8]) -> Result<u64, DiskError> {
            self.step(name)?;
            self.inner.append(name, data)
        }
        fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
            self.step(name)?;
            self.inner.write_at(name, offset, data)
        }
        fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
            self.step(name)?;
            self.inner.truncate(name, len)
        }
        fn read(&self, name: &str) -> Result<Vec<u8>, DiskError> {
            self.inner.read(name)
        }
        fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
            self.inner.read_at(name, offset, len)
        }
        fn file_len(&self, name: &str) -> Result<u64, DiskError> {
            self.inner.file_len(name)
        }
        fn sync_data(&mut self, name: &str) -> Result<(), DiskError> {
            self.step(name)?;
            self.inner.sync_data(name)
        }
        fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
            self.step(from)?;
            self.inner.rename(from, to)
        }
        fn remove(&mut self, name: &str) -> Result<(), DiskError> {
            self.step(name)?;
            self.inner.remove(name)
        }
        fn list(&self) -> Result<Vec<String>, DiskError> {
            self.inner.list()
        }
        fn sync_dir(&mut self) -> Result<(), DiskError> {
            self.step(".")?;
            self.inner.sync_dir()
        }
    }

    #[test]
    fn a_crash_during_creation_leaves_no_file_or_a_complete_one() {
        let mut outcomes = [0usize; 2]; // [no metadata after the crash, complete metadata]
                                        // Starting empty, and starting with a torn temporary file from an earlier crash.
        let starts = [(disk_with(&[]), 5), (disk_with(&[(META_TMP_NAME, b"KVRA")]), 6)];
        for (start, calls) in starts {
            // Creation makes `calls` mutating calls (one more to remove an old temporary file).
            for budget in 0..=calls {
                for seed in 0..40 {
                    let mut dying = Dying { inner: start.clone(), budget };
                    let result = open_data_dir(&mut dying, ME);
                    assert_eq!(result.is_ok(), budget == calls, "budget {budget}: {result:?}");
                    let mut disk = dying.inner;
                    disk.crash(&mut DetRng::new(seed));
                    let files = disk.list().unwrap();
                    match read_data_dir_identity(&disk) {
                        Ok(None) => outcomes[0] += 1,
                        Ok(Some(id)) => {
                            assert_eq!(id, ME);
                            outcomes[1] += 1;
                        }
                        Err(e) => panic!("budget {budget} seed {seed}: {e} ({files:?})"),
                    }
                    if budget == calls {
                        assert!(files.contains(&META_FILE_NAME.to_string()), "{files:?}");
                    }
                    // Restarting always works and always ends with exactly the metadata file.
                    let status = open_data_dir(&mut disk, ME).unwrap();
                    assert_eq!(
                        status == DataDirStatus::Existing,
                        files.contains(&META_FILE_NAME.to_string())
                    );
                    assert_eq!(disk.list().unwrap(), vec![META_FILE_NAME.to_string()]);
                    assert!(disk.is_durable(META_FILE_NAME));
                    assert_eq!(read_data_dir_identity(&disk), Ok(Some(ME)));
                }
            }
        }
        // Both outcomes must actually occur, or the test proves nothing.
        assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
    }

    #[test]
    fn a_failed_fsync_during_creation_is_an_error_and_nothing_is_accepted() {
        let faults = FaultPlan { sync_error_per_mille: 1000, ..FaultPlan::NONE };
        let mut disk = SimDisk::with_faults(3, faults);
        let err = open_data_dir(&mut disk, ME).unwrap_err();
        assert!(matches!(&err, DataDirError::Disk(e) if e.is_sync_failure()), "{err}");
        assert!(!disk.list().unwrap().contains(&META_FILE_NAME.to_string()));
        for seed in 0..20 {
            let mut crashed = disk.clone();
            crashed.crash(&mut DetRng::new(seed));
            crashed.set_faults(FaultPlan::NONE);
            assert_eq!(read_data_dir_identity(&crashed), Ok(None));
            assert_eq!(open_data_dir(&mut crashed, ME), Ok(DataDirStatus::Created));
        }
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(label: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let dir = std::env::temp_dir()
                .join(format!("kvraft-data-dir-{label}-{}-{nanos}", std::process::id()));
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn file_disk_round_trip() {
        let dir = TempDir::new("round-trip");
        let mut disk = FileDisk::open(&dir.0).unwrap();
        assert_eq!(open_data_dir(&mut disk, ME), Ok(DataDirStatus::Created));
        drop(disk);
        assert_eq!(std::fs::read(dir.0.join(META_FILE_NAME)).unwrap(), encode_metadata(ME));
        assert!(!dir.0.join(META_TMP_NAME).exists());

        let mut disk = FileDisk::open(&dir.0).unwrap();
        assert_eq!(open_data_dir(&mut disk, ME), Ok(DataDirStatus::Existing));
        let other = NodeIdentity { cluster_id: ME.cluster_id, node_id: NodeId(5) };
        assert_eq!(
            open_data_dir(&mut disk, other),
            Err(DataDirError::ForeignNode { found: ME.node_id, expected: NodeId(5) })
        );
        let other = NodeIdentity { cluster_id: ClusterId(1), node_id: ME.node_id };
        assert!(matches!(
            open_data_dir(&mut disk, other),
            Err(DataDirError::ForeignCluster { .. })
        ));
        assert_eq!(disk.list().unwrap(), vec![META_FILE_NAME.to_string()]);
    }
}
