//! One behavioural suite, run against every `Disk`: the simulator is only useful if code that
//! works on `SimDisk` works on `FileDisk`, so both must agree on results and errors.

mod common;

use kvraft_storage::{Disk, DiskError};

fn not_found(name: &str) -> DiskError {
    DiskError::NotFound { name: name.to_string() }
}

fn create_append_read(d: &mut dyn Disk) {
    d.create("a").unwrap();
    assert_eq!(d.read("a").unwrap(), b"");
    assert_eq!(d.file_len("a").unwrap(), 0);
    assert_eq!(d.append("a", b"hello").unwrap(), 0);
    assert_eq!(d.append("a", b" world").unwrap(), 5);
    assert_eq!(d.append("a", b"").unwrap(), 11);
    assert_eq!(d.read("a").unwrap(), b"hello world");
    assert_eq!(d.file_len("a").unwrap(), 11);
    assert_eq!(d.read_at("a", 6, 5).unwrap(), b"world");
    assert_eq!(d.read_at("a", 11, 0).unwrap(), b"");
    assert_eq!(
        d.read_at("a", 8, 10),
        Err(DiskError::ShortRead { name: "a".into(), offset: 8, len: 10, file_len: 11 })
    );
    assert!(matches!(d.read_at("a", u64::MAX, 2), Err(DiskError::ShortRead { .. })));
    assert_eq!(d.create("a"), Err(DiskError::AlreadyExists { name: "a".into() }));
    // The failed create must not have truncated the file.
    assert_eq!(d.read("a").unwrap(), b"hello world");
    d.sync_data("a").unwrap();
    d.sync_dir().unwrap();
}

fn write_at_and_truncate(d: &mut dyn Disk) {
    d.create("f").unwrap();
    d.append("f", b"abcdef").unwrap();
    d.write_at("f", 2, b"XY").unwrap();
    assert_eq!(d.read("f").unwrap(), b"abXYef");
    d.write_at("f", 4, b"1234").unwrap();
    assert_eq!(d.read("f").unwrap(), b"abXY1234");
    // Past the end: a hole of zeros.
    d.write_at("f", 10, b"Z").unwrap();
    assert_eq!(d.read("f").unwrap(), b"abXY1234\0\0Z");
    assert_eq!(d.append("f", b"!").unwrap(), 11);
    d.truncate("f", 3).unwrap();
    assert_eq!(d.read("f").unwrap(), b"abX");
    assert_eq!(d.append("f", b"c").unwrap(), 3);
    d.truncate("f", 6).unwrap();
    assert_eq!(d.read("f").unwrap(), b"abXc\0\0");
    d.sync_data("f").unwrap();
}

fn rename_over_and_remove(d: &mut dyn Disk) {
    d.create("tmp").unwrap();
    d.append("tmp", b"new").unwrap();
    d.create("snap").unwrap();
    d.append("snap", b"old contents").unwrap();
    d.rename("tmp", "snap").unwrap();
    assert_eq!(d.read("snap").unwrap(), b"new");
    assert_eq!(d.read("tmp"), Err(not_found("tmp")));
    assert_eq!(d.list().unwrap(), vec!["snap".to_string()]);
    // Writes go to the renamed file under its new name.
    d.append("snap", b"er").unwrap();
    assert_eq!(d.read("snap").unwrap(), b"newer");
    d.rename("snap", "snap").unwrap();
    assert_eq!(d.read("snap").unwrap(), b"newer");
    d.rename("snap", "moved").unwrap();
    assert_eq!(d.list().unwrap(), vec!["moved".to_string()]);
    d.sync_dir().unwrap();

    d.remove("moved").unwrap();
    assert_eq!(d.read("moved"), Err(not_found("moved")));
    assert_eq!(d.remove("moved"), Err(not_found("moved")));
    assert!(d.list().unwrap().is_empty());
    // A name can be reused after removal and starts empty.
    d.create("moved").unwrap();
    assert_eq!(d.read("moved").unwrap(), b"");
    d.sync_dir().unwrap();
}

fn list_is_sorted(d: &mut dyn Disk) {
    assert!(d.list().unwrap().is_empty());
    for name in ["wal-0002", "b", "wal-0001", "a.tmp", "snapshot"] {
        d.create(name).unwrap();
    }
    assert_eq!(d.list().unwrap(), vec!["a.tmp", "b", "snapshot", "wal-0001", "wal-0002"]);
}

fn errors_name_the_file(d: &mut dyn Disk) {
    let missing = "missing";
    assert_eq!(d.read(missing), Err(not_found(missing)));
    assert_eq!(d.read_at(missing, 0, 1), Err(not_found(missing)));
    assert_eq!(d.file_len(missing), Err(not_found(missing)));
    assert_eq!(d.append(missing, b"x"), Err(not_found(missing)));
    assert_eq!(d.write_at(missing, 0, b"x"), Err(not_found(missing)));
    assert_eq!(d.truncate(missing, 0), Err(not_found(missing)));
    assert_eq!(d.sync_data(missing), Err(not_found(missing)));
    assert_eq!(d.remove(missing), Err(not_found(missing)));
    assert_eq!(d.rename(missing, "other"), Err(not_found(missing)));
    assert!(d.list().unwrap().is_empty(), "failed ops must not create files");

    for bad in ["", ".", "..", "a/b", "/abs", "nul\0"] {
        let invalid = Err(DiskError::InvalidName { name: bad.to_string() });
        assert_eq!(d.create(bad), invalid);
        assert_eq!(d.read(bad).map(|_| ()), invalid);
        assert_eq!(d.append(bad, b"x").map(|_| ()), invalid);
    }
    d.create("ok").unwrap();
    assert!(matches!(d.rename("ok", "../escape"), Err(DiskError::InvalidName { .. })));
    assert_eq!(d.list().unwrap(), vec!["ok".to_string()]);

    let err = d.read("missing").unwrap_err();
    assert_eq!(err.name(), "missing");
    assert!(err.to_string().contains("missing"), "{err}");
}

/// Generates one `#[test]` per check and per disk implementation.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod file_disk {
            $(
                #[test]
                fn $check() {
                    let dir = super::common::TempDir::new(stringify!($check));
                    let mut disk = kvraft_storage::FileDisk::open(dir.path()).unwrap();
                    super::$check(&mut disk);
                }
            )*
        }
        mod sim_disk {
            $(
                #[test]
                fn $check() {
                    let mut disk = kvraft_storage::SimDisk::new(7);
                    super::$check(&mut disk);
                }
            )*
        }
    };
}

conformance!(
    create_append_read,
    write_at_and_truncate,
    rename_over_and_remove,
    list_is_sorted,
    errors_name_the_file,
);
