//! SimDisk-specific behaviour: crashes, fault injection, capacity, determinism.

use kvraft_raft::DetRng;
use kvraft_storage::{CrashPolicy, Disk, DiskError, FaultPlan, FileFate, SimDisk};

const SEEDS: u64 = 300;

/// A disk with `name` durably created (entry synced) and holding `synced` durably.
fn disk_with(name: &str, synced: &[u8]) -> SimDisk {
    let mut d = SimDisk::new(1);
    d.create(name).unwrap();
    d.append(name, synced).unwrap();
    d.sync_data(name).unwrap();
    d.sync_dir().unwrap();
    d
}

#[test]
fn unsynced_data_is_readable_but_a_synced_only_crash_drops_it() {
    let mut d = disk_with("f", b"abc");
    d.append("f", b"def").unwrap();
    d.write_at("f", 0, b"X").unwrap();
    assert_eq!(d.read("f").unwrap(), b"Xbcdef", "reads see the page cache");
    assert!(!d.is_durable("f"));
    for seed in 0..SEEDS {
        let mut crashed = d.clone();
        let report = crashed.crash_with(&mut DetRng::new(seed), CrashPolicy::SYNCED_ONLY);
        assert_eq!(crashed.read("f").unwrap(), b"abc");
        assert_eq!(report.files["f"], FileFate::SyncedOnly);
        assert!(crashed.is_durable("f"));
    }
    // With every outcome allowed, a crash that chose "nothing more" keeps exactly the synced bytes.
    let mut synced_only_seen = false;
    for seed in 0..SEEDS {
        let mut crashed = d.clone();
        if crashed.crash(&mut DetRng::new(seed)).files["f"] == FileFate::SyncedOnly {
            synced_only_seen = true;
            assert_eq!(crashed.read("f").unwrap(), b"abc");
        }
    }
    assert!(synced_only_seen);
}

#[test]
fn fully_synced_disk_survives_every_crash_unchanged() {
    let mut d = disk_with("a", b"alpha");
    d.create("b").unwrap();
    d.append("b", b"beta").unwrap();
    d.sync_data("b").unwrap();
    d.sync_dir().unwrap();
    for seed in 0..50 {
        let mut crashed = d.clone();
        crashed.crash(&mut DetRng::new(seed));
        assert_eq!(crashed.list().unwrap(), vec!["a", "b"]);
        assert_eq!(crashed.read("a").unwrap(), b"alpha");
        assert_eq!(crashed.read("b").unwrap(), b"beta");
    }
}

#[test]
fn torn_tails_are_prefixes_of_the_unsynced_appends() {
    let synced = b"record-0;".to_vec();
    let mut d = disk_with("wal", &synced);
    let records: Vec<&[u8]> = vec![b"record-1;", b"record-22;", b"record-333;"];
    for r in &records {
        d.append("wal", r).unwrap();
    }
    let written = d.read("wal").unwrap();
    let mut lengths = std::collections::BTreeSet::new();
    for seed in 0..SEEDS {
        let mut crashed = d.clone();
        crashed.crash_with(&mut DetRng::new(seed), CrashPolicy::TORN_PREFIX);
        let got = crashed.read("wal").unwrap();
        assert!(got.len() >= synced.len(), "seed {seed}: lost synced bytes");
        assert_eq!(got[..], written[..got.len()], "seed {seed}: not a prefix of what was written");
        lengths.insert(got.len());
    }
    // Both extremes and some mid-record cut happen.
    assert!(lengths.contains(&synced.len()));
    assert!(lengths.contains(&written.len()));
    let boundaries = [9, 18, 28, 39];
    assert!(lengths.iter().any(|l| !boundaries.contains(l)), "never tore mid-record: {lengths:?}");
}

/// The WAL's write path with preallocation: records overwrite synced zeros in place. A crash
/// must treat those writes like appends: lost (the old zeros back), kept, or torn at any byte,
/// with the rest of the range still holding the old bytes, and the file length unchanged.
#[test]
fn unsynced_overwrites_of_synced_zeros_are_lost_kept_or_torn() {
    let mut d = disk_with("wal", b"HDR;");
    d.write_at("wal", 4, &[0; 60]).unwrap();
    d.sync_data("wal").unwrap();
    d.write_at("wal", 4, b"record-1;").unwrap();
    d.sync_data("wal").unwrap();
    let durable = d.read("wal").unwrap();
    d.write_at("wal", 13, b"record-22;").unwrap();
    d.write_at("wal", 23, b"record-333;").unwrap();
    let written = d.read("wal").unwrap();
    assert_eq!(written.len(), 64);
    for policy in [CrashPolicy::TORN_PREFIX, CrashPolicy::ALL] {
        let mut kept_bytes = std::collections::BTreeSet::new();
        for seed in 0..SEEDS {
            let mut crashed = d.clone();
            let report = crashed.crash_with(&mut DetRng::new(seed), policy);
            let got = crashed.read("wal").unwrap();
            assert_eq!(got.len(), 64, "seed {seed}: an overwrite changed the length");
            assert_eq!(got[..13], durable[..13], "seed {seed}: lost synced bytes");
            // Each byte is the old (zero) one or the one written there.
            for p in 13..64 {
                assert!(got[p] == durable[p] || got[p] == written[p], "seed {seed} byte {p}");
            }
            let new_bytes = (13..34).filter(|&p| got[p] == written[p]).count();
            if let FileFate::Prefix { .. } = report.files["wal"] {
                // In order: a prefix of the writes, then the old bytes.
                assert_eq!(got[13..13 + new_bytes], written[13..13 + new_bytes], "seed {seed}");
                assert!(got[13 + new_bytes..34].iter().all(|&b| b == 0), "seed {seed}");
            }
            kept_bytes.insert(new_bytes);
        }
        // Lost entirely, kept entirely, and torn within a write all happen.
        assert!(kept_bytes.contains(&0) && kept_bytes.contains(&21), "{policy:?}");
        assert!(kept_bytes.iter().any(|&n| n != 0 && n != 10 && n != 21), "{policy:?}");
    }
}

#[test]
fn reordered_crashes_can_keep_a_later_write_without_an_earlier_one() {
    let mut d = disk_with("wal", b"");
    d.append("wal", b"AAAA").unwrap();
    d.append("wal", b"BBBB").unwrap();
    let mut hole_seen = false;
    for seed in 0..SEEDS {
        let mut crashed = d.clone();
        let report = crashed.crash(&mut DetRng::new(seed));
        let got = crashed.read("wal").unwrap();
        // Every byte is either what was written there or a zero from a hole.
        for (p, b) in got.iter().enumerate() {
            let written = if p < 4 { b'A' } else { b'B' };
            assert!(*b == written || *b == 0, "seed {seed}: byte {p} = {b} ({report:?})");
        }
        assert!(got.len() <= 8);
        if got.len() > 4 && got[..4] == [0; 4] {
            hole_seen = true;
        }
    }
    assert!(hole_seen, "reordering never kept the second write without the first");
}

#[test]
fn unsynced_create_may_be_lost_until_the_directory_is_synced() {
    let mut d = SimDisk::new(1);
    d.create("f").unwrap();
    d.append("f", b"data").unwrap();
    d.sync_data("f").unwrap();
    let (mut lost, mut kept) = (0, 0);
    for seed in 0..SEEDS {
        let mut crashed = d.clone();
        crashed.crash(&mut DetRng::new(seed));
        match crashed.read("f") {
            Ok(data) => {
                assert_eq!(data, b"data", "synced data comes back with the entry");
                kept += 1;
            }
            Err(DiskError::NotFound { .. }) => lost += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(lost > 0 && kept > 0, "lost {lost} kept {kept}");

    d.sync_dir().unwrap();
    for seed in 0..SEEDS {
        let mut crashed = d.clone();
        crashed.crash(&mut DetRng::new(seed));
        assert_eq!(crashed.read("f").unwrap(), b"data");
    }
}

#[test]
fn unsynced_rename_is_atomic_and_durable_after_sync_dir() {
    // The snapshot install sequence: write tmp, fsync it, rename over the old snapshot.
    let mut d = disk_with("snap", b"old");
    d.create("snap.tmp").unwrap();
    d.append("snap.tmp", b"new").unwrap();
    d.sync_data("snap.tmp").unwrap();
    d.sync_dir().unwrap();
    d.rename("snap.tmp", "snap").unwrap();
    let (mut old, mut new) = (0, 0);
    for seed in 0..SEEDS {
        let mut crashed = d.clone();
        crashed.crash(&mut DetRng::new(seed));
        let names = crashed.list().unwrap();
        if names == ["snap"] {
            assert_eq!(crashed.read("snap").unwrap(), b"new");
            new += 1;
        } else {
            assert_eq!(names, ["snap", "snap.tmp"], "seed {seed}: half a rename");
            assert_eq!(crashed.read("snap").unwrap(), b"old");
            assert_eq!(crashed.read("snap.tmp").unwrap(), b"new");
            old += 1;
        }
    }
    assert!(old > 0 && new > 0, "old {old} new {new}");

    d.sync_dir().unwrap();
    for seed in 0..SEEDS {
        let mut crashed = d.clone();
        crashed.crash(&mut DetRng::new(seed));
        assert_eq!(crashed.list().unwrap(), ["snap"]);
        assert_eq!(crashed.read("snap").unwrap(), b"new");
    }
}

#[test]
fn dependent_directory_changes_survive_as_a_prefix() {
    // create a; rename a -> b; remove b: a crash may stop after any of them, but can never
    // keep a later change without the earlier ones on the same name.
    let mut d = SimDisk::new(1);
    d.create("a").unwrap();
    d.rename("a", "b").unwrap();
    d.create("c").unwrap(); // independent of the others
    d.remove("b").unwrap();
    let mut outcomes = std::collections::BTreeSet::new();
    for seed in 0..SEEDS {
        let mut crashed = d.clone();
        crashed.crash(&mut DetRng::new(seed));
        let mut names = crashed.list().unwrap();
        names.retain(|n| n != "c");
        assert!(
            names.is_empty() || names == ["a"] || names == ["b"],
            "seed {seed}: impossible directory {names:?}"
        );
        outcomes.insert(crashed.list().unwrap());
    }
    // "c" is kept or lost independently of the a/b chain.
    assert!(outcomes.iter().any(|o| o.contains(&"c".to_string()) && o.len() == 1));
    assert!(outcomes.iter().any(|o| o == &["a"]));
}

#[test]
fn unsynced_remove_may_be_undone_by_a_crash() {
    let mut d = disk_with("old-wal", b"entries");
    d.remove("old-wal").unwrap();
    assert!(d.list().unwrap().is_empty());
    let mut back = 0;
    for seed in 0..SEEDS {
        let mut crashed = d.clone();
        crashed.crash(&mut DetRng::new(seed));
        if let Ok(data) = crashed.read("old-wal") {
            assert_eq!(data, b"entries");
            back += 1;
        }
    }
    assert!(back > 0 && back < SEEDS);
    d.sync_dir().unwrap();
    let mut crashed = d.clone();
    crashed.crash(&mut DetRng::new(3));
    assert!(crashed.list().unwrap().is_empty());
}

#[test]
fn failed_sync_leaves_the_data_not_durable_even_after_a_retry() {
    let mut d = disk_with("wal", b"durable;");
    d.append("wal", b"lost;").unwrap();
    d.set_faults(FaultPlan { sync_error_per_mille: 1000, ..FaultPlan::NONE });
    let err = d.sync_data("wal").unwrap_err();
    assert_eq!(err, DiskError::InjectedSyncFault { name: "wal".into() });
    assert!(err.is_sync_failure() && err.is_injected());
    assert_eq!(d.read("wal").unwrap(), b"durable;lost;", "still readable from the page cache");

    // The retry "succeeds", as on Linux, but the failed pages were already dropped.
    d.set_faults(FaultPlan::NONE);
    d.sync_data("wal").unwrap();
    assert!(!d.is_durable("wal"));
    for seed in 0..SEEDS {
        let mut crashed = d.clone();
        crashed.crash(&mut DetRng::new(seed));
        assert_eq!(crashed.read("wal").unwrap(), b"durable;", "seed {seed}");
    }
    assert_eq!(d.stats().failed_syncs, 1);
}

#[test]
fn failed_write_writes_nothing_or_a_torn_prefix() {
    let mut torn_seen = false;
    for seed in 0..100 {
        let mut d = SimDisk::with_faults(seed, FaultPlan::NONE);
        d.create("f").unwrap();
        d.append("f", b"ok;").unwrap();
        d.set_faults(FaultPlan { write_error_per_mille: 1000, ..FaultPlan::NONE });
        match d.append("f", b"0123456789") {
            Err(DiskError::InjectedWriteFault { name, offset, len, persisted }) => {
                assert_eq!((name.as_str(), offset, len), ("f", 3, 10));
                assert!(persisted < len);
                let mut expected = b"ok;".to_vec();
                expected.extend_from_slice(&b"0123456789"[..persisted]);
                assert_eq!(d.read("f").unwrap(), expected);
                torn_seen |= persisted > 0;
            }
            other => panic!("expected an injected fault, got {other:?}"),
        }
    }
    assert!(torn_seen);
}

#[test]
fn capacity_gives_out_of_space_and_writes_nothing() {
    let plan = FaultPlan { capacity_bytes: Some(10), ..FaultPlan::NONE };
    let mut d = SimDisk::with_faults(1, plan);
    d.create("a").unwrap();
    d.append("a", b"12345678").unwrap();
    assert_eq!(d.append("a", b"abc"), Err(DiskError::OutOfSpace { name: "a".into() }));
    assert_eq!(d.read("a").unwrap(), b"12345678");
    d.write_at("a", 0, b"xxxxxxxx").unwrap(); // overwriting needs no new space
    d.create("b").unwrap();
    d.append("b", b"yz").unwrap();
    assert_eq!(d.used_bytes(), 10);
    assert_eq!(d.write_at("b", 2, b"!"), Err(DiskError::OutOfSpace { name: "b".into() }));
    assert_eq!(d.truncate("b", 3), Err(DiskError::OutOfSpace { name: "b".into() }));
    // Freeing space makes room again.
    d.remove("a").unwrap();
    d.append("b", b"more").unwrap();
    // A huge offset is an error, never an allocation.
    let mut unlimited = SimDisk::new(1);
    unlimited.create("f").unwrap();
    assert!(matches!(
        unlimited.write_at("f", u64::MAX - 1, b"xx"),
        Err(DiskError::OutOfSpace { .. })
    ));
}

/// A disk with a mix of synced and unsynced state, built the same way every time.
fn busy_disk(seed: u64, faults: FaultPlan) -> (SimDisk, Vec<Result<(), DiskError>>) {
    let mut d = SimDisk::with_faults(seed, faults);
    let mut results = Vec::new();
    for i in 0..20u8 {
        let name = format!("f{}", i % 4);
        if d.file_len(&name).is_err() {
            results.push(d.create(&name));
        }
        results.push(d.append(&name, &[i; 7]).map(|_| ()));
        if i % 3 == 0 {
            results.push(d.sync_data(&name));
        }
        if i % 7 == 0 {
            results.push(d.sync_dir());
        }
        if i == 11 {
            results.push(d.rename("f1", "f9"));
        }
    }
    (d, results)
}

#[test]
fn the_same_seed_gives_the_same_faults_and_crash_image() {
    let faults =
        FaultPlan { write_error_per_mille: 100, sync_error_per_mille: 100, capacity_bytes: None };
    let (a, results_a) = busy_disk(42, faults);
    let (b, results_b) = busy_disk(42, faults);
    assert_eq!(results_a, results_b);
    assert_eq!(a.stats(), b.stats());
    let image = |mut d: SimDisk, seed: u64| {
        let report = d.crash(&mut DetRng::new(seed));
        let files: Vec<_> =
            d.list().unwrap().into_iter().map(|n| (n.clone(), d.read(&n).unwrap())).collect();
        (report, files)
    };
    for seed in 0..20 {
        assert_eq!(image(a.clone(), seed), image(b.clone(), seed));
    }
    let distinct: std::collections::BTreeSet<_> =
        (0..20).map(|seed| image(a.clone(), seed).1).collect();
    assert!(distinct.len() > 1, "crash images should depend on the seed");
}

#[test]
fn clone_is_independent_and_stats_count() {
    let mut a = SimDisk::new(1);
    a.create("f").unwrap();
    a.append("f", b"abc").unwrap();
    let mut b = a.clone();
    b.append("f", b"def").unwrap();
    b.create("g").unwrap();
    assert_eq!(a.read("f").unwrap(), b"abc");
    assert_eq!(a.list().unwrap(), ["f"]);
    a.sync_data("f").unwrap();
    a.sync_dir().unwrap();
    let stats = a.stats();
    assert_eq!(
        (stats.writes, stats.bytes_written, stats.data_syncs, stats.dir_syncs),
        (1, 3, 1, 1)
    );
    assert_eq!(b.stats().bytes_written, 6);
}
