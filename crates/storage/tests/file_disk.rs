//! FileDisk-specific behaviour the shared conformance suite cannot express.

mod common;

use common::TempDir;
use kvraft_storage::{Disk, DiskError, FileDisk};

#[test]
fn a_reopened_disk_sees_synced_files() {
    let dir = TempDir::new("reopen");
    {
        let mut d = FileDisk::open(dir.path().join("nested")).unwrap();
        d.create("wal").unwrap();
        d.append("wal", b"entry").unwrap();
        d.sync_data("wal").unwrap();
        d.create("snap.tmp").unwrap();
        d.append("snap.tmp", b"state").unwrap();
        d.sync_data("snap.tmp").unwrap();
        d.rename("snap.tmp", "snap").unwrap();
        // The cached handle followed the rename: syncing under the new name works.
        d.sync_data("snap").unwrap();
        d.sync_dir().unwrap();
    }
    let d = FileDisk::open(dir.path().join("nested")).unwrap();
    assert_eq!(d.list().unwrap(), ["snap", "wal"]);
    assert_eq!(d.read("wal").unwrap(), b"entry");
    assert_eq!(d.read("snap").unwrap(), b"state");
}

#[test]
fn list_skips_subdirectories_and_os_errors_name_the_file() {
    let dir = TempDir::new("subdir");
    let mut d = FileDisk::open(dir.path()).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    d.create("f").unwrap();
    assert_eq!(d.list().unwrap(), ["f"]);
    let err = d.read("sub").unwrap_err();
    assert_eq!(err.name(), "sub");
    assert!(matches!(err, DiskError::Io { op: "read", .. }), "{err:?}");
}
