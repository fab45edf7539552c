//! Property: whatever the op sequence and the crash seed, each file recovers as its synced
//! contents extended by some of the later writes, and never holds a byte nobody wrote. The same
//! holds for the WAL's preallocated pattern, records overwriting synced zeros in place.

use kvraft_raft::DetRng;
use kvraft_storage::{Disk, FileFate, SimDisk};
use proptest::prelude::*;

const FILES: [&str; 3] = ["wal-1", "wal-2", "snap"];

#[derive(Debug, Clone)]
enum Op {
    Append(usize, Vec<u8>),
    WriteAt(usize, u64, Vec<u8>),
    Sync(usize),
    Crash(u64),
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    // Non-zero bytes, so a zero in a recovered file can only come from a hole.
    prop::collection::vec(1u8..=255, 1..24)
}

fn appends_only() -> impl Strategy<Value = Op> {
    let file = 0..FILES.len();
    prop_oneof![
        5 => (file.clone(), bytes()).prop_map(|(f, b)| Op::Append(f, b)),
        2 => file.prop_map(Op::Sync),
        1 => any::<u64>().prop_map(Op::Crash),
    ]
}

fn any_write() -> impl Strategy<Value = Op> {
    let file = 0..FILES.len();
    prop_oneof![
        4 => (file.clone(), bytes()).prop_map(|(f, b)| Op::Append(f, b)),
        3 => (file.clone(), 0u64..64, bytes()).prop_map(|(f, o, b)| Op::WriteAt(f, o, b)),
        2 => file.prop_map(Op::Sync),
        1 => any::<u64>().prop_map(Op::Crash),
    ]
}

/// The test's own model of one file: what is durable and what was written since.
#[derive(Debug, Clone, Default)]
struct Model {
    durable: Vec<u8>,
    /// (offset, bytes) of every write since the last sync.
    since_sync: Vec<(usize, Vec<u8>)>,
}

/// Runs `ops` on a fresh disk, checking every crash image against the model.
fn run(ops: &[Op], appends_only: bool) -> Result<(), TestCaseError> {
    let mut disk = SimDisk::new(0);
    for name in FILES {
        disk.create(name).unwrap();
    }
    disk.sync_dir().unwrap();
    let mut models = vec![Model::default(); FILES.len()];

    for op in ops {
        match op {
            Op::Append(f, data) => {
                let offset = disk.append(FILES[*f], data).unwrap();
                models[*f].since_sync.push((offset as usize, data.clone()));
            }
            Op::WriteAt(f, offset, data) => {
                disk.write_at(FILES[*f], *offset, data).unwrap();
                models[*f].since_sync.push((*offset as usize, data.clone()));
            }
            Op::Sync(f) => {
                disk.sync_data(FILES[*f]).unwrap();
                let m = &mut models[*f];
                m.durable = disk.read(FILES[*f]).unwrap();
                m.since_sync.clear();
            }
            Op::Crash(seed) => {
                let written: Vec<Vec<u8>> =
                    FILES.iter().map(|name| disk.read(name).unwrap()).collect();
                let report = disk.crash(&mut DetRng::new(*seed));
                prop_assert_eq!(disk.list().unwrap().len(), FILES.len(), "synced entries lost");
                for (f, name) in FILES.iter().enumerate() {
                    let got = disk.read(name).unwrap();
                    let m = &models[f];
                    let fate = &report.files[*name];
                    check_provenance(&got, m, fate)?;
                    if appends_only {
                        check_appends(&got, m, &written[f], fate)?;
                    }
                    models[f] = Model { durable: got, since_sync: Vec::new() };
                }
            }
        }
    }
    Ok(())
}

/// Every byte is the durable byte at that position, a byte some later write put there, or a
/// zero from a hole; the file is never longer than the writes reach.
fn check_provenance(got: &[u8], m: &Model, fate: &FileFate) -> Result<(), TestCaseError> {
    let reach = m.since_sync.iter().map(|(o, d)| o + d.len()).max().unwrap_or(0);
    prop_assert!(got.len() <= m.durable.len().max(reach), "too long: {:?}", fate);
    for (p, &b) in got.iter().enumerate() {
        let durable = m.durable.get(p) == Some(&b);
        let written = m.since_sync.iter().any(|(o, d)| p >= *o && p < o + d.len() && d[p - o] == b);
        prop_assert!(durable || written || b == 0, "byte {} = {} never written ({:?})", p, b, fate);
    }
    if *fate == FileFate::SyncedOnly {
        prop_assert_eq!(got, &m.durable[..]);
    }
    Ok(())
}

/// With appends only: the durable bytes survive intact, and an ordered crash keeps exactly a
/// prefix of the unsynced tail.
fn check_appends(
    got: &[u8],
    m: &Model,
    written: &[u8],
    fate: &FileFate,
) -> Result<(), TestCaseError> {
    prop_assert!(got.len() >= m.durable.len() && got[..m.durable.len()] == m.durable[..]);
    if let FileFate::Prefix { .. } = fate {
        prop_assert_eq!(got, &written[..got.len()], "not a prefix of the writes");
    }
    Ok(())
}

/// The WAL's pattern with preallocation: a file of synced zeros, overwritten front to back by
/// records, with syncs in between and crashes anywhere. After each crash the file keeps its
/// length and its synced bytes; every other byte is the durable one or one written since; and
/// an ordered crash keeps a prefix of the unsynced writes over the durable bytes.
fn run_preallocated(ops: &[(Vec<u8>, bool, Option<u64>)]) -> Result<(), TestCaseError> {
    const LEN: usize = 512;
    let mut disk = SimDisk::new(0);
    disk.create("wal").unwrap();
    disk.write_at("wal", 0, &[0; LEN]).unwrap();
    disk.sync_data("wal").unwrap();
    disk.sync_dir().unwrap();
    let mut durable = vec![0; LEN];
    let (mut synced_end, mut end) = (0, 0);
    for (record, sync, crash) in ops {
        if end + record.len() <= LEN {
            disk.write_at("wal", end as u64, record).unwrap();
            end += record.len();
        }
        if *sync {
            disk.sync_data("wal").unwrap();
            durable = disk.read("wal").unwrap();
            synced_end = end;
        }
        if let Some(seed) = crash {
            let written = disk.read("wal").unwrap();
            let report = disk.crash(&mut DetRng::new(*seed));
            let got = disk.read("wal").unwrap();
            prop_assert_eq!(got.len(), LEN, "the length changed");
            prop_assert_eq!(&got[..synced_end], &written[..synced_end], "synced records lost");
            for p in synced_end..LEN {
                prop_assert!(got[p] == durable[p] || got[p] == written[p], "byte {} made up", p);
            }
            if report.files["wal"] == FileFate::SyncedOnly {
                prop_assert_eq!(&got, &durable);
            }
            if let FileFate::Prefix { .. } = report.files["wal"] {
                let kept = (synced_end..end).take_while(|&p| got[p] == written[p]).count();
                let from = synced_end + kept;
                prop_assert_eq!(&got[from..], &durable[from..], "not a prefix over the old bytes");
            }
            // The driver reopens and carries on after the records that survived whole: here,
            // simply after the unsynced bytes that survived in order.
            end = synced_end + (synced_end..end).take_while(|&p| got[p] == written[p]).count();
            synced_end = end;
            durable = got;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn overwrites_of_preallocated_zeros_recover_as_synced_plus_a_prefix_or_subset(
        ops in prop::collection::vec(
            (bytes(), prop::bool::weighted(0.3), prop::option::weighted(0.15, any::<u64>())),
            1..60,
        )
    ) {
        run_preallocated(&ops)?;
    }

    #[test]
    fn appends_recover_as_synced_plus_a_prefix_or_subset(
        ops in prop::collection::vec(appends_only(), 1..60)
    ) {
        run(&ops, true)?;
    }

    #[test]
    fn overwrites_never_recover_unwritten_bytes(
        ops in prop::collection::vec(any_write(), 1..60)
    ) {
        run(&ops, false)?;
    }
}
