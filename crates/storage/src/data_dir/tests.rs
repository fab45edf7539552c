//! Tests of the data directory's identity file: first open, reopen, refusals that change
//! nothing, and crashes during the first write.

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
    let err =
        refused(disk_with(&[(META_FILE_NAME, &encode_metadata(theirs)), ("wal-1.log", b"x")]), ME);
    assert_eq!(err, DataDirError::ForeignNode { found: NodeId(3), expected: NodeId(2) });
    assert!(err.to_string().contains("belongs to node 3, not to node 2"), "{err}");
}

#[test]
fn unknown_version_is_refused() {
    for version in [0, 2, u32::MAX] {
        let file = encode_with_version(ME, version);
        let err = refused(disk_with(&[(META_FILE_NAME, &file)]), ME);
        assert_eq!(err, DataDirError::UnsupportedVersion { file: META_FILE_NAME.into(), version });
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
                matches!(err, DataDirError::Corrupt { reason: MetaCorruption::BadMagic { .. }, .. })
            }
            8..=11 => matches!(err, DataDirError::UnsupportedVersion { .. }),
            _ => {
                matches!(err, DataDirError::Corrupt { reason: MetaCorruption::Checksum { .. }, .. })
            }
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
    // A real directory for the FileDisk round trip, named uniquely by the clock; the WAL and
    // the data directory code under test never read it.
    #[allow(clippy::disallowed_methods)]
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
    assert!(matches!(open_data_dir(&mut disk, other), Err(DataDirError::ForeignCluster { .. })));
    assert_eq!(disk.list().unwrap(), vec![META_FILE_NAME.to_string()]);
}
