//! WalStorage: conformance with MemStorage, crash recovery, corruption, fsync failure, FileDisk.

use bytes::Bytes;
use kvraft_raft::{
    DetRng, Entry, HardState, LogIndex, MemStorage, NodeId, PersistBatch, RecoveredState, Snapshot,
    SnapshotMeta, Storage, Term,
};
use kvraft_storage::record::{encode_record, WalRecord, SEGMENT_HEADER_LEN};
use kvraft_storage::wal::segment_file_name;
use kvraft_storage::{
    Disk, DiskError, FaultPlan, FileDisk, SimDisk, WalConfig, WalError, WalStorage,
};
use proptest::prelude::*;

/// An owned batch, built against the model's current state.
#[derive(Clone, Debug)]
struct Batch {
    hard_state: Option<HardState>,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl Batch {
    fn as_batch(&self) -> PersistBatch<'_> {
        PersistBatch {
            hard_state: self.hard_state,
            snapshot: self.snapshot.as_ref(),
            entries: &self.entries,
        }
    }
}

/// Raw randomness for one step; interpreted against the model so every batch is one RawNode
/// could produce (appends never below commit, no gaps, snapshots at or below the last entry).
#[derive(Clone, Debug)]
enum Op {
    Append { back: u64, count: u64, data_len: usize, new_term: bool, hs: bool },
    HardState { commit: u64, new_term: bool, vote: u64 },
    Snapshot { at: u64, mismatch: bool, data_len: usize, with_entries: bool },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u64..4, 1u64..5, 0usize..40, any::<bool>(), any::<bool>()).prop_map(
            |(back, count, data_len, new_term, hs)| Op::Append { back, count, data_len, new_term, hs }
        ),
        2 => (any::<u64>(), any::<bool>(), 0u64..4)
            .prop_map(|(commit, new_term, vote)| Op::HardState { commit, new_term, vote }),
        1 => (any::<u64>(), prop::bool::weighted(0.2), 0usize..64, any::<bool>()).prop_map(
            |(at, mismatch, data_len, with_entries)| Op::Snapshot { at, mismatch, data_len, with_entries }
        ),
    ]
}

fn data(rng: &mut DetRng, len: usize) -> Bytes {
    Bytes::from((0..len).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>())
}

fn last_index(s: &RecoveredState) -> LogIndex {
    s.entries.last().map_or(s.snapshot.meta.index, |e| e.index)
}

fn make_batch(op: &Op, s: &RecoveredState, rng: &mut DetRng) -> Batch {
    let hs = s.hard_state;
    let last = last_index(s);
    // Never overwrite at or below the commit (a mismatched snapshot may leave it past the log).
    let floor = hs.commit.max(s.snapshot.meta.index).min(last);
    match *op {
        Op::Append { back, count, data_len, new_term, hs: with_hs } => {
            let start = LogIndex((last.0 + 1).saturating_sub(back).max(floor.0 + 1));
            let term = if new_term { hs.term.next() } else { hs.term.max(Term(1)) };
            let entries = (0..count)
                .map(|i| Entry {
                    term,
                    index: start.plus(i),
                    kind: Default::default(),
                    data: data(rng, data_len),
                })
                .collect();
            let hard_state = (with_hs || term != hs.term).then_some(HardState {
                term,
                vote: hs.vote,
                commit: hs.commit,
            });
            Batch { hard_state, snapshot: None, entries }
        }
        Op::HardState { commit, new_term, vote } => {
            let lo = hs.commit.min(last).0;
            let commit = hs.commit.max(LogIndex(lo + commit % (last.0 - lo + 1)));
            let term = if new_term { hs.term.next() } else { hs.term };
            let vote = if vote == 0 { None } else { Some(NodeId(vote)) };
            Batch {
                hard_state: Some(HardState { term, vote, commit }),
                snapshot: None,
                entries: vec![],
            }
        }
        Op::Snapshot { at, mismatch, data_len, with_entries } => {
            // RawNode only persists a snapshot newer than the stored one.
            let lo = s.snapshot.meta.index.0 + 1;
            if lo > last.0 {
                return Batch { hard_state: Some(hs), snapshot: None, entries: vec![] };
            }
            let index = LogIndex(lo + at % (last.0 - lo + 1));
            let stored_term = s
                .entries
                .iter()
                .find(|e| e.index == index)
                .map_or(s.snapshot.meta.term, |e| e.term);
            let term = if mismatch { Term(stored_term.0 + 1) } else { stored_term };
            let snapshot = Snapshot {
                meta: SnapshotMeta { index, term },
                config: Default::default(),
                data: data(rng, data_len),
            };
            let commit = hs.commit.max(index);
            let hard_state = Some(HardState { term: hs.term.max(term), vote: hs.vote, commit });
            // A snapshot from a leader may come with entries after it (and before it, ignored).
            let entries = if with_entries {
                let term = hs.term.max(term);
                (index.0.saturating_sub(1).max(1)..=index.0 + 2)
                    .map(|i| Entry {
                        term,
                        index: LogIndex(i),
                        kind: Default::default(),
                        data: data(rng, 3),
                    })
                    .collect()
            } else {
                vec![]
            };
            Batch { hard_state, snapshot: Some(snapshot), entries }
        }
    }
}

const SMALL: WalConfig = WalConfig { segment_size: 400, preallocate_bytes: 0 };
/// Preallocation of about two batches' worth, so that batches land in zero-filled space, some
/// overrun it, and segments roll over (early, in `preallocate`) with unused space behind.
const SMALL_PREALLOCATED: WalConfig = WalConfig { segment_size: 400, preallocate_bytes: 150 };

fn small(preallocate: bool) -> WalConfig {
    if preallocate {
        SMALL_PREALLOCATED
    } else {
        SMALL
    }
}

fn reopen(disk: SimDisk, config: WalConfig) -> RecoveredState {
    let wal = WalStorage::open_with(disk, config).expect("reopen");
    wal.recover().unwrap()
}

/// Rebuilds a model holding exactly `state`.
fn model_from(state: &RecoveredState) -> MemStorage {
    let mut m = MemStorage::new();
    m.persist(PersistBatch {
        hard_state: Some(state.hard_state),
        snapshot: Some(&state.snapshot),
        entries: &state.entries,
    })
    .unwrap();
    assert_eq!(m.state(), state);
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn conforms_to_mem_storage(
        ops in prop::collection::vec(op_strategy(), 1..40),
        seed in any::<u64>(),
        preallocate in any::<bool>(),
    ) {
        let config = small(preallocate);
        let mut rng = DetRng::new(seed);
        let mut model = MemStorage::new();
        let mut wal = WalStorage::open_with(SimDisk::new(seed), config).unwrap();
        for op in &ops {
            let batch = make_batch(op, model.state(), &mut rng);
            model.persist(batch.as_batch()).unwrap();
            wal.persist(batch.as_batch()).unwrap();
            wal.preallocate().unwrap();
            prop_assert_eq!(&wal.recover().unwrap(), model.state());
            prop_assert_eq!(wal.raft_state_size(), model.raft_state_size());
            prop_assert_eq!(wal.snapshot_size(), model.snapshot_size());
            let (data_len, file_len) = wal.current_segment_lengths();
            prop_assert!(file_len >= data_len + config.preallocate_bytes);
            let reopened = WalStorage::open_with(wal.disk().clone(), config).unwrap();
            prop_assert_eq!(reopened.current_segment_lengths(), (data_len, file_len));
            prop_assert_eq!(&reopened.recover().unwrap(), model.state());
            prop_assert_eq!(reopened.raft_state_size(), model.raft_state_size());
            prop_assert!(reopened.recovery_report().truncated.is_none());
        }
        // Segments wholly covered by snapshots are deleted: at most one snapshot file stays.
        let snaps = wal.disk().list().unwrap().iter().filter(|n| n.starts_with("snapshot-")).count();
        prop_assert!(snaps <= 1);
    }
}

/// A SimDisk that can capture an image of itself just before its `n`th mutating operation.
#[derive(Debug, Clone)]
struct Tap {
    inner: SimDisk,
    ops: u64,
    capture_at: Option<u64>,
    captured: Option<SimDisk>,
}

impl Tap {
    fn tick(&mut self) {
        if self.capture_at == Some(self.ops) {
            self.captured = Some(self.inner.clone());
        }
        self.ops += 1;
    }
}

impl Disk for Tap {
    fn create(&mut self, name: &str) -> Result<(), DiskError> {
        self.tick();
        self.inner.create(name)
    }
    fn append(&mut self, name: &str, data: &[u8]) -> Result<u64, DiskError> {
        self.tick();
        self.inner.append(name, data)
    }
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        self.tick();
        self.inner.write_at(name, offset, data)
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        self.tick();
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
        self.tick();
        self.inner.sync_data(name)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.tick();
        self.inner.rename(from, to)
    }
    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        self.tick();
        self.inner.remove(name)
    }
    fn list(&self) -> Result<Vec<String>, DiskError> {
        self.inner.list()
    }
    fn sync_dir(&mut self) -> Result<(), DiskError> {
        self.tick();
        self.inner.sync_dir()
    }
}

fn tap(inner: SimDisk) -> Tap {
    Tap { inner, ops: 0, capture_at: None, captured: None }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Crash at a random disk operation of each persist and the `preallocate` after it (or
    /// after both). Precisely:
    /// - a crash after `persist` returned Ok recovers exactly the state after it;
    /// - a crash during `persist` k (before it returned) recovers either the state before k or
    ///   the state after k, never a mixture, never anything older.
    /// Sometimes the run continues on the crashed-and-recovered disk, so writes after a torn
    /// tail truncation are covered too.
    #[test]
    fn crash_recovers_last_acknowledged_state(
        ops in prop::collection::vec(op_strategy(), 1..30),
        seed in any::<u64>(),
        preallocate in any::<bool>(),
    ) {
        let config = small(preallocate);
        let mut rng = DetRng::new(seed);
        let mut crash_rng = DetRng::new(seed ^ 0x5eed);
        let mut model = MemStorage::new();
        let mut wal = WalStorage::open_with(tap(SimDisk::new(seed)), config).unwrap();
        for op in &ops {
            let batch = make_batch(op, model.state(), &mut rng);
            let before = model.state().clone();
            model.persist(batch.as_batch()).unwrap();
            let after = model.state().clone();

            let ops_before = wal.disk().ops;
            wal.disk_mut().capture_at = Some(ops_before + crash_rng.below(16));
            wal.disk_mut().captured = None;
            wal.persist(batch.as_batch()).unwrap();

            // Crash after the acknowledgement.
            let mut acked = wal.disk().inner.clone();
            acked.crash(&mut crash_rng);
            prop_assert_eq!(&reopen(acked, config), &after);

            wal.preallocate().unwrap();
            let mut prepared = wal.disk().inner.clone();
            prepared.crash(&mut crash_rng);
            prop_assert_eq!(&reopen(prepared, config), &after);

            // Crash during the persist (or the preallocation after it).
            if let Some(mut image) = wal.disk_mut().captured.take() {
                image.crash(&mut crash_rng);
                let recovered = WalStorage::open_with(tap(image), config).unwrap();
                let state = recovered.recover().unwrap();
                prop_assert!(state == before || state == after,
                    "recovered {:?}\nbefore {:?}\nafter {:?}", state, before, after);
                if crash_rng.chance(1, 3) {
                    model = model_from(&state);
                    wal = recovered;
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Group commit: several batches written as one append, then one sync. A crash between
    /// the write and the sync recovers the state after some prefix of the group (whole batches
    /// only); a crash after the sync recovers the state after all of them.
    #[test]
    fn group_commit_crash_keeps_a_prefix_of_whole_batches(
        groups in prop::collection::vec(prop::collection::vec(op_strategy(), 1..5), 1..10),
        seed in any::<u64>(),
        preallocate in any::<bool>(),
    ) {
        let config = small(preallocate);
        let mut rng = DetRng::new(seed);
        let mut crash_rng = DetRng::new(seed ^ 0x9c);
        let mut model = MemStorage::new();
        let mut wal = WalStorage::open_with(SimDisk::new(seed), config).unwrap();
        for group in &groups {
            let mut states = vec![model.state().clone()];
            let mut batches = Vec::new();
            for op in group {
                let batch = make_batch(op, model.state(), &mut rng);
                model.persist(batch.as_batch()).unwrap();
                states.push(model.state().clone());
                batches.push(batch);
            }
            let views: Vec<PersistBatch<'_>> = batches.iter().map(Batch::as_batch).collect();
            wal.write_batches(&views).unwrap();
            prop_assert!(wal.has_unsynced() || views.iter().all(PersistBatch::is_empty));
            prop_assert_eq!(wal.state(), states.last().unwrap());

            let mut unsynced = wal.disk().clone();
            unsynced.crash(&mut crash_rng);
            let state = reopen(unsynced, config);
            prop_assert!(states.contains(&state), "recovered a state that is no prefix: {:?}", state);

            wal.sync().unwrap();
            prop_assert!(!wal.has_unsynced());
            let mut synced = wal.disk().clone();
            synced.crash(&mut crash_rng);
            prop_assert_eq!(&reopen(synced, config), states.last().unwrap());
            wal.preallocate().unwrap();
        }
    }
}

#[test]
#[should_panic(expected = "before the previous write was synced")]
fn a_second_write_before_the_sync_is_refused() {
    let mut wal = WalStorage::open(SimDisk::new(3)).unwrap();
    let hs = |commit| HardState { term: Term(1), vote: None, commit: LogIndex(commit) };
    let batch = |hs| PersistBatch { hard_state: Some(hs), snapshot: None, entries: &[] };
    wal.write_batches(&[batch(hs(0))]).unwrap();
    let _ = wal.write_batches(&[batch(hs(0))]);
}

/// Builds a WAL of several small batches in one segment, without preallocation; returns the
/// WAL and the model.
fn build(batches: u64) -> (WalStorage<SimDisk>, MemStorage) {
    build_with(batches, WalConfig { preallocate_bytes: 0, ..WalConfig::default() })
}

fn build_with(batches: u64, config: WalConfig) -> (WalStorage<SimDisk>, MemStorage) {
    let mut model = MemStorage::new();
    let mut wal = WalStorage::open_with(SimDisk::new(7), config).unwrap();
    for i in 1..=batches {
        let entries = vec![Entry {
            term: Term(1),
            index: LogIndex(i),
            kind: Default::default(),
            data: Bytes::from(vec![i as u8; 10]),
        }];
        let batch = PersistBatch {
            hard_state: Some(HardState {
                term: Term(1),
                vote: Some(NodeId(1)),
                commit: LogIndex(i - 1),
            }),
            snapshot: None,
            entries: &entries,
        };
        model.persist(batch).unwrap();
        wal.persist(batch).unwrap();
        wal.preallocate().unwrap();
    }
    (wal, model)
}

fn files(disk: &SimDisk) -> Vec<(String, Vec<u8>)> {
    disk.list()
        .unwrap()
        .into_iter()
        .map(|n| {
            let d = disk.read(&n).unwrap();
            (n, d)
        })
        .collect()
}

#[test]
fn corruption_before_the_tail_is_an_error_naming_file_and_offset() {
    let (wal, _) = build(5);
    let mut disk = wal.into_disk();
    let seg = segment_file_name(1);
    // Flip a byte inside the first record's payload (an Entry record starts right after the header).
    let at = SEGMENT_HEADER_LEN as u64 + 12;
    let byte = disk.read_at(&seg, at, 1).unwrap()[0];
    disk.write_at(&seg, at, &[byte ^ 0x40]).unwrap();
    disk.sync_data(&seg).unwrap();
    let before = files(&disk);
    let err = WalStorage::open(disk.clone()).unwrap_err();
    match &err {
        WalError::Corrupt { file, offset, .. } => {
            assert_eq!(file, &seg);
            assert_eq!(*offset, SEGMENT_HEADER_LEN as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&seg) && msg.contains(&format!("offset {SEGMENT_HEADER_LEN}")), "{msg}");
    assert_eq!(files(&disk), before, "a failed open must not change the disk");
}

#[test]
fn unknown_segment_version_is_an_error() {
    // Version 1 (entries without a kind byte) is an older format, 3 a newer one: both refused,
    // by name, leaving the disk as it was.
    for version in [1u32, 3] {
        let (wal, _) = build(2);
        let mut disk = wal.into_disk();
        let seg = segment_file_name(1);
        disk.write_at(&seg, 8, &version.to_le_bytes()).unwrap();
        let before = files(&disk);
        let err = WalStorage::open(disk.clone()).unwrap_err();
        assert!(matches!(&err, WalError::SegmentHeader { file, .. } if file == &seg), "{err:?}");
        assert!(err.to_string().contains(&format!("version {version}")), "{err}");
        assert_eq!(files(&disk), before);
    }
}

#[test]
fn missing_segment_is_an_error() {
    let mut model = MemStorage::new();
    let config = WalConfig { segment_size: 64, preallocate_bytes: 0 };
    let mut wal = WalStorage::open_with(SimDisk::new(3), config).unwrap();
    for i in 1..=6u64 {
        let entries = vec![Entry {
            term: Term(1),
            index: LogIndex(i),
            kind: Default::default(),
            data: Bytes::from(vec![0; 50]),
        }];
        let batch = PersistBatch { hard_state: None, snapshot: None, entries: &entries };
        model.persist(batch).unwrap();
        wal.persist(batch).unwrap();
    }
    assert!(wal.segment_files().len() >= 3, "{:?}", wal.segment_files());
    let mut disk = wal.into_disk();
    disk.remove(&segment_file_name(2)).unwrap();
    let err = WalStorage::open(disk).unwrap_err();
    assert!(
        matches!(&err, WalError::MissingSegment { file, .. } if file == &segment_file_name(2)),
        "{err:?}"
    );
}

#[test]
fn torn_tail_is_truncated_and_reported() {
    let (wal, model) = build(3);
    let mut disk = wal.into_disk();
    let seg = segment_file_name(1);
    let good_len = disk.file_len(&seg).unwrap();
    // Half of a further batch: a complete Entry record, then a torn HardState.
    let mut buf = Vec::new();
    encode_record(
        &WalRecord::Entry(Entry {
            term: Term(1),
            index: LogIndex(4),
            kind: Default::default(),
            data: Bytes::from_static(b"xyz"),
        }),
        &mut buf,
    )
    .unwrap();
    encode_record(
        &WalRecord::HardState(HardState { term: Term(2), vote: None, commit: LogIndex(3) }),
        &mut buf,
    )
    .unwrap();
    buf.truncate(buf.len() - 5);
    disk.append(&seg, &buf).unwrap();
    let mut wal = WalStorage::open(disk).unwrap();
    let report = wal.recovery_report().clone();
    let tail = report.truncated.expect("truncation reported");
    assert_eq!(tail.file, seg);
    assert_eq!(tail.offset, good_len);
    assert_eq!(tail.dropped_bytes, buf.len() as u64);
    assert_eq!(wal.disk().file_len(&seg).unwrap(), good_len);
    assert_eq!(&wal.recover().unwrap(), model.state());
    // The WAL keeps working after the truncation.
    let entries = vec![Entry {
        term: Term(1),
        index: LogIndex(4),
        kind: Default::default(),
        data: Bytes::from_static(b"ok"),
    }];
    wal.persist(PersistBatch { hard_state: None, snapshot: None, entries: &entries }).unwrap();
    let reopened = WalStorage::open(wal.disk().clone()).unwrap();
    assert_eq!(reopened.recover().unwrap().entries.len(), 4);
}

#[test]
fn bad_snapshot_file_is_an_error_naming_it() {
    let mut wal = WalStorage::open(SimDisk::new(1)).unwrap();
    let entries = vec![Entry {
        term: Term(1),
        index: LogIndex(1),
        kind: Default::default(),
        data: Bytes::new(),
    }];
    wal.persist(PersistBatch { hard_state: None, snapshot: None, entries: &entries }).unwrap();
    let snap = Snapshot {
        meta: SnapshotMeta { index: LogIndex(1), term: Term(1) },
        config: Default::default(),
        data: Bytes::from_static(b"state"),
    };
    wal.persist(PersistBatch { hard_state: None, snapshot: Some(&snap), entries: &[] }).unwrap();
    let mut disk = wal.into_disk();
    let name = kvraft_storage::snapshot_file::snapshot_file_name(snap.meta);
    let len = disk.file_len(&name).unwrap();
    disk.write_at(&name, len - 1, b"X").unwrap();
    let err = WalStorage::open(disk).unwrap_err();
    assert!(matches!(&err, WalError::BadSnapshot { file, .. } if file == &name), "{err:?}");
}

#[test]
fn failed_fsync_poisons_the_wal() {
    let mut wal = WalStorage::open(SimDisk::new(9)).unwrap();
    wal.disk_mut().set_faults(FaultPlan { sync_error_per_mille: 1000, ..FaultPlan::NONE });
    let entries = vec![Entry {
        term: Term(1),
        index: LogIndex(1),
        kind: Default::default(),
        data: Bytes::from_static(b"a"),
    }];
    let batch = PersistBatch { hard_state: None, snapshot: None, entries: &entries };
    let err = wal.persist(batch).unwrap_err();
    assert!(matches!(&err, WalError::Disk(e) if e.is_sync_failure()), "{err:?}");
    assert!(wal.is_poisoned());
    // Even with a healthy disk again, it never writes (or re-syncs) again.
    wal.disk_mut().set_faults(FaultPlan::NONE);
    let syncs = wal.disk().stats().data_syncs;
    assert_eq!(wal.persist(batch).unwrap_err(), WalError::Poisoned);
    assert_eq!(wal.disk().stats().data_syncs, syncs);
}

#[test]
fn file_disk_smoke() {
    let dir = std::env::temp_dir().join(format!(
        "kvraft-wal-smoke-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // Preallocation on, so a real filesystem sees zero-filled tails in every segment.
    let config = WalConfig { segment_size: 256, preallocate_bytes: 512 };
    let mut model = MemStorage::new();
    {
        let mut wal = WalStorage::open_with(FileDisk::open(&dir).unwrap(), config).unwrap();
        for i in 1..=20u64 {
            let entries = vec![Entry {
                term: Term(1),
                index: LogIndex(i),
                kind: Default::default(),
                data: Bytes::from(vec![i as u8; 30]),
            }];
            let hs = HardState { term: Term(1), vote: Some(NodeId(2)), commit: LogIndex(i - 1) };
            let batch = PersistBatch { hard_state: Some(hs), snapshot: None, entries: &entries };
            model.persist(batch).unwrap();
            wal.persist(batch).unwrap();
            if i % 7 == 0 {
                let snap = Snapshot {
                    meta: SnapshotMeta { index: LogIndex(i - 2), term: Term(1) },
                    config: Default::default(),
                    data: Bytes::from(vec![1; 100]),
                };
                let batch = PersistBatch { hard_state: None, snapshot: Some(&snap), entries: &[] };
                model.persist(batch).unwrap();
                wal.persist(batch).unwrap();
            }
        }
        assert_eq!(&wal.recover().unwrap(), model.state());
    }
    let wal = WalStorage::open_with(FileDisk::open(&dir).unwrap(), config).unwrap();
    assert_eq!(&wal.recover().unwrap(), model.state());
    assert_eq!(wal.raft_state_size(), model.raft_state_size());
    drop(wal);
    std::fs::remove_dir_all(&dir).unwrap();
}
