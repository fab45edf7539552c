//! One behavioural suite for the `kvraft_raft::Storage` contract, written once and run against
//! every implementation: `MemStorage` (the reference the simulator and the lab ports use),
//! `WalStorage<FileDisk>` on a temporary directory (with the default configuration, which
//! preallocates), and `WalStorage<SimDisk>` (also with tiny segments, so rollover and segment
//! clean-up run under the same checks, with and without preallocated space). Where the WAL
//! preallocates, every persist is followed by `preallocate()`, as the drivers do.
//!
//! Every check states the expected state in full (entries, hard state, snapshot, sizes); the
//! sizes are computed here from the documented encoding (hard state 24 bytes, an entry 20 bytes
//! plus its data), not taken from the implementation. For the WAL harnesses, `reopen` reopens
//! the WAL on the same disk (the SimDisk after a crash as well) and checks that recovery yields
//! exactly what `recover()` returned before.

mod common;

use bytes::Bytes;
use common::TempDir;
use kvraft_raft::{
    DetRng, Entry, HardState, LogIndex, MemStorage, NodeId, PersistBatch, RecoveredState, Snapshot,
    SnapshotMeta, Storage, Term,
};
use kvraft_storage::{Disk, FileDisk, SimDisk, WalConfig, WalStorage};

// --- harnesses ------------------------------------------------------------------------------

/// A storage implementation under test, plus a way to restart it from what is durable.
trait Harness {
    type S: Storage;

    fn storage(&mut self) -> &mut Self::S;

    /// Restarts from durable state; must recover exactly what `recover()` returned.
    fn reopen(&mut self);

    /// What a driver does after each acknowledged persist (the WAL prepares its space).
    fn after_persist(&mut self) {}
}

/// In memory there is nothing to reopen: the simulator keeps a MemStorage across a crash by
/// cloning it, which is what this does.
struct MemHarness(MemStorage);

impl Harness for MemHarness {
    type S = MemStorage;

    fn storage(&mut self) -> &mut MemStorage {
        &mut self.0
    }

    fn reopen(&mut self) {
        let copy = self.0.clone();
        assert_eq!(copy.recover().unwrap(), self.0.recover().unwrap());
        self.0 = copy;
    }
}

struct WalHarness<D: Disk> {
    wal: Option<WalStorage<D>>,
    config: WalConfig,
    /// Turns the disk the old WAL leaves behind into the one the next open sees.
    remount: fn(D, u64) -> D,
    reopens: u64,
    _dir: Option<TempDir>,
}

impl<D: Disk> WalHarness<D> {
    fn new(disk: D, config: WalConfig, remount: fn(D, u64) -> D, dir: Option<TempDir>) -> Self {
        let wal = WalStorage::open_with(disk, config).unwrap();
        WalHarness { wal: Some(wal), config, remount, reopens: 0, _dir: dir }
    }
}

fn wal_sim(segment_size: u64, preallocate_bytes: u64) -> WalHarness<SimDisk> {
    // A power loss before every reopen: each persist is durable when it returns, so any crash
    // must keep all of it.
    let crash = |mut disk: SimDisk, n: u64| {
        disk.crash(&mut DetRng::new(0xC0FF_EE00 + n));
        disk
    };
    let config = WalConfig { segment_size, preallocate_bytes };
    WalHarness::new(SimDisk::new(11), config, crash, None)
}

fn wal_file(label: &str) -> WalHarness<FileDisk> {
    let dir = TempDir::new(label);
    let disk = FileDisk::open(dir.path()).unwrap();
    // A fresh FileDisk on the same directory: no cached handles survive.
    let remount = |disk: FileDisk, _| {
        let path = disk.dir().to_path_buf();
        drop(disk);
        FileDisk::open(path).unwrap()
    };
    WalHarness::new(disk, WalConfig::default(), remount, Some(dir))
}

impl<D: Disk> Harness for WalHarness<D> {
    type S = WalStorage<D>;

    fn storage(&mut self) -> &mut WalStorage<D> {
        self.wal.as_mut().expect("WAL is open")
    }

    fn reopen(&mut self) {
        let old = self.wal.take().expect("WAL is open");
        let before = old.recover().unwrap();
        let sizes = (old.raft_state_size(), old.snapshot_size());
        self.reopens += 1;
        let disk = (self.remount)(old.into_disk(), self.reopens);
        let wal = WalStorage::open_with(disk, self.config).unwrap();
        assert_eq!(
            wal.recover().unwrap(),
            before,
            "reopen #{} recovered other state",
            self.reopens
        );
        assert_eq!((wal.raft_state_size(), wal.snapshot_size()), sizes);
        // The files on disk are the WAL's own: listing works and names at least one segment.
        assert!(wal.disk().list().unwrap().iter().any(|n| n.starts_with("wal-")));
        // Every persist was acknowledged: nothing is torn, preallocated space included.
        assert_eq!(wal.recovery_report().truncated, None, "reopen #{}", self.reopens);
        self.wal = Some(wal);
    }

    fn after_persist(&mut self) {
        self.storage().preallocate().unwrap();
    }
}

// --- values and expectations ----------------------------------------------------------------

const HARD_STATE_LEN: usize = 24;

fn entry_len(e: &Entry) -> usize {
    8 + 8 + 4 + e.data.len()
}

fn ent(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        kind: Default::default(),
        data: Bytes::copy_from_slice(data),
    }
}

/// Entries `lo..=hi` in `term`, each holding its own index as text.
fn run(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    (lo..=hi).map(|i| ent(i, term, format!("e{i}").as_bytes())).collect()
}

fn hs(term: u64, vote: Option<u64>, commit: u64) -> HardState {
    HardState { term: Term(term), vote: vote.map(NodeId), commit: LogIndex(commit) }
}

fn snap(index: u64, term: u64, data: &[u8]) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta { index: LogIndex(index), term: Term(term) },
        config: Default::default(),
        data: Bytes::copy_from_slice(data),
    }
}

fn persist<H: Harness>(
    h: &mut H,
    hard_state: Option<HardState>,
    snapshot: Option<&Snapshot>,
    entries: &[Entry],
) {
    h.storage().persist(PersistBatch { hard_state, snapshot, entries }).unwrap();
    h.after_persist();
}

fn append<H: Harness>(h: &mut H, entries: &[Entry]) {
    persist(h, None, None, entries);
}

/// Asserts the full recovered state and both sizes.
fn expect<H: Harness>(h: &mut H, hard_state: HardState, snapshot: &Snapshot, entries: &[Entry]) {
    let got = h.storage().recover().unwrap();
    let want = RecoveredState { hard_state, snapshot: snapshot.clone(), entries: entries.to_vec() };
    assert_eq!(got, want);
    let entry_bytes: usize = entries.iter().map(entry_len).sum();
    assert_eq!(h.storage().raft_state_size(), HARD_STATE_LEN + entry_bytes, "raft_state_size");
    assert_eq!(h.storage().snapshot_size(), snapshot.data.len(), "snapshot_size");
}

/// [`expect`], then again after a reopen.
fn expect_durably<H: Harness>(
    h: &mut H,
    hard_state: HardState,
    snapshot: &Snapshot,
    entries: &[Entry],
) {
    expect(h, hard_state, snapshot, entries);
    h.reopen();
    expect(h, hard_state, snapshot, entries);
}

fn cat(parts: &[&[Entry]]) -> Vec<Entry> {
    parts.concat()
}

// --- checks ---------------------------------------------------------------------------------

fn fresh_storage_is_empty<H: Harness>(h: &mut H) {
    assert_eq!(h.storage().recover().unwrap(), RecoveredState::default());
    assert_eq!(h.storage().raft_state_size(), 24);
    assert_eq!(h.storage().snapshot_size(), 0);
    h.reopen();
    expect(h, HardState::default(), &Snapshot::default(), &[]);
}

fn empty_batch_changes_nothing<H: Harness>(h: &mut H) {
    persist(h, None, None, &[]);
    expect_durably(h, HardState::default(), &Snapshot::default(), &[]);
    let log = run(1, 2, 1);
    persist(h, Some(hs(1, Some(1), 1)), None, &log);
    persist(h, None, None, &[]);
    expect_durably(h, hs(1, Some(1), 1), &Snapshot::default(), &log);
}

fn hard_state_is_replaced_and_kept_when_absent<H: Harness>(h: &mut H) {
    persist(h, Some(hs(3, Some(2), 0)), None, &[]);
    expect_durably(h, hs(3, Some(2), 0), &Snapshot::default(), &[]);
    // A batch without a hard state keeps the stored one.
    let log = run(1, 3, 3);
    append(h, &log);
    expect_durably(h, hs(3, Some(2), 0), &Snapshot::default(), &log);
    // A new one replaces it entirely, including a vote going back to none.
    persist(h, Some(hs(4, None, 2)), None, &[]);
    expect_durably(h, hs(4, None, 2), &Snapshot::default(), &log);
    // Extreme values survive the encoding.
    let extreme = hs(u64::MAX, Some(u64::MAX), u64::MAX);
    persist(h, Some(extreme), None, &[]);
    expect_durably(h, extreme, &Snapshot::default(), &log);
}

fn entries_append_in_order<H: Harness>(h: &mut H) {
    let first = run(1, 3, 1);
    append(h, &first);
    expect(h, HardState::default(), &Snapshot::default(), &first);
    // 24 + 3 * (20 + 2): the sizes, spelled out once.
    assert_eq!(h.storage().raft_state_size(), 90);
    let second = run(4, 5, 2);
    persist(h, Some(hs(2, Some(1), 4)), None, &second);
    expect_durably(h, hs(2, Some(1), 4), &Snapshot::default(), &cat(&[&first, &second]));
    let third = run(6, 6, 2);
    append(h, &third);
    expect_durably(h, hs(2, Some(1), 4), &Snapshot::default(), &cat(&[&first, &second, &third]));
}

fn entry_data_round_trips_exactly<H: Harness>(h: &mut H) {
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let big: Vec<u8> =
        (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let log = vec![
        ent(1, 1, b""),
        ent(2, 1, &all_bytes),
        ent(3, 1, &big),
        ent(4, 1, &[0; 64]),
        ent(5, u64::MAX, b"max term"),
    ];
    append(h, &log[..3]);
    append(h, &log[3..]);
    expect_durably(h, HardState::default(), &Snapshot::default(), &log);
    assert_eq!(h.storage().raft_state_size(), 24 + 5 * 20 + 256 + 100_000 + 64 + 8);
}

fn conflicting_suffix_is_replaced<H: Harness>(h: &mut H) {
    let log = run(1, 5, 1);
    persist(h, Some(hs(1, Some(1), 2)), None, &log);
    // A new leader's entries from index 3 replace 3..=5, including the unconflicting 5.
    let new = vec![ent(3, 2, b"x3"), ent(4, 2, b"x4")];
    persist(h, Some(hs(2, Some(2), 2)), None, &new);
    let want = cat(&[&log[..2], &new]);
    expect_durably(h, hs(2, Some(2), 2), &Snapshot::default(), &want);
    // Replacing only the last entry.
    let last = vec![ent(4, 3, b"y4")];
    append(h, &last);
    let want = cat(&[&log[..2], &new[..1], &last]);
    expect_durably(h, hs(2, Some(2), 2), &Snapshot::default(), &want);
    // Replacing the whole log from its first entry, with a longer one.
    let whole = run(1, 7, 4);
    append(h, &whole);
    expect_durably(h, hs(2, Some(2), 2), &Snapshot::default(), &whole);
    // Appending right after a replacement continues from the new end.
    let more = run(8, 9, 4);
    append(h, &more);
    expect_durably(h, hs(2, Some(2), 2), &Snapshot::default(), &cat(&[&whole, &more]));
}

fn resent_entries_replace_the_suffix_after_them<H: Harness>(h: &mut H) {
    // Rule 2 of the contract: the batch's entries replace everything from their first index,
    // even when they match what is stored (same terms), so what followed them is dropped.
    let log = run(1, 5, 1);
    append(h, &log);
    append(h, &log[1..3]);
    expect_durably(h, HardState::default(), &Snapshot::default(), &log[..3]);
}

fn snapshot_covering_part_of_the_log<H: Harness>(h: &mut H) {
    let log = cat(&[&run(1, 4, 1), &run(5, 6, 2)]);
    persist(h, Some(hs(2, Some(1), 6)), None, &log);
    // The store holds entry 4 with term 1: entries after it survive.
    let s = snap(4, 1, b"state@4");
    persist(h, None, Some(&s), &[]);
    expect_durably(h, hs(2, Some(1), 6), &s, &log[4..]);
    assert_eq!(h.storage().snapshot_size(), 7);
    assert_eq!(h.storage().raft_state_size(), 24 + 2 * 22);
    // The log goes on after the snapshot.
    let more = run(7, 8, 2);
    append(h, &more);
    expect_durably(h, hs(2, Some(1), 6), &s, &cat(&[&log[4..], &more]));
    // A conflicting suffix after a snapshot is replaced as before.
    let new = run(6, 6, 3);
    append(h, &new);
    expect_durably(h, hs(2, Some(1), 6), &s, &cat(&[&log[4..5], &new]));
}

fn snapshot_covering_all_of_the_log<H: Harness>(h: &mut H) {
    let log = run(1, 4, 1);
    persist(h, Some(hs(1, None, 4)), None, &log);
    let s = snap(4, 1, b"all");
    persist(h, None, Some(&s), &[]);
    expect_durably(h, hs(1, None, 4), &s, &[]);
    assert_eq!(h.storage().raft_state_size(), 24);
    let next = run(5, 6, 1);
    append(h, &next);
    expect_durably(h, hs(1, None, 4), &s, &next);
}

fn snapshot_beyond_the_log<H: Harness>(h: &mut H) {
    let log = run(1, 3, 1);
    append(h, &log);
    // Installed from a leader: it covers entries this store never had.
    let s = snap(10, 3, b"from the leader");
    persist(h, Some(hs(3, None, 10)), Some(&s), &[]);
    expect_durably(h, hs(3, None, 10), &s, &[]);
    let next = run(11, 12, 3);
    append(h, &next);
    expect_durably(h, hs(3, None, 10), &s, &next);
}

fn snapshot_with_another_term_drops_every_entry<H: Harness>(h: &mut H) {
    let log = run(1, 5, 1);
    append(h, &log);
    // Entry 3 is stored with term 1; a snapshot ending at 3 in term 2 contradicts the log, so
    // the entries after it cannot be trusted either.
    let s = snap(3, 2, b"other history");
    persist(h, None, Some(&s), &[]);
    expect_durably(h, HardState::default(), &s, &[]);
    let next = run(4, 4, 2);
    append(h, &next);
    expect_durably(h, HardState::default(), &s, &next);
}

fn snapshot_entries_and_hard_state_in_one_batch<H: Harness>(h: &mut H) {
    let log = run(1, 6, 1);
    append(h, &log);
    // Entries at or below the snapshot index are ignored; the rest follow the snapshot.
    let s = snap(8, 2, b"s8");
    let entries = run(7, 11, 2);
    persist(h, Some(hs(2, Some(3), 8)), Some(&s), &entries);
    expect_durably(h, hs(2, Some(3), 8), &s, &entries[2..]);
    // Same with a snapshot that matches the stored log: the stored tail is kept, and then
    // replaced from the batch's first entry after the snapshot.
    let s2 = snap(9, 2, b"s9");
    let entries2 = vec![ent(9, 2, b"ignored"), ent(10, 5, b"n10")];
    persist(h, Some(hs(5, None, 9)), Some(&s2), &entries2);
    expect_durably(h, hs(5, None, 9), &s2, &entries2[1..]);
}

fn a_later_snapshot_replaces_the_earlier_one<H: Harness>(h: &mut H) {
    let log = run(1, 10, 1);
    append(h, &log);
    let s5 = snap(5, 1, b"five");
    persist(h, None, Some(&s5), &[]);
    expect_durably(h, HardState::default(), &s5, &log[5..]);
    let s8 = snap(8, 1, b"eight, longer");
    persist(h, None, Some(&s8), &[]);
    expect_durably(h, HardState::default(), &s8, &log[8..]);
    assert_eq!(h.storage().snapshot_size(), 13);
    // An empty snapshot payload is still a snapshot (its position counts).
    let s10 = snap(10, 1, b"");
    persist(h, None, Some(&s10), &[]);
    expect_durably(h, HardState::default(), &s10, &[]);
    assert_eq!(h.storage().snapshot_size(), 0);
}

/// Many batches, with periodic conflicts, compaction and reopens: the expected state is
/// rebuilt here by hand from the schedule, not by asking a model.
fn long_history_survives_reopens<H: Harness>(h: &mut H) {
    let mut log: Vec<Entry> = Vec::new();
    let mut snapshot = Snapshot::default();
    let mut hard = HardState::default();
    let mut term = 1;
    for round in 0u64..120 {
        let last = log.last().map_or(snapshot.meta.index.0, |e| e.index.0);
        if round % 17 == 16 && log.len() >= 2 {
            // A new term overwrites the last two entries.
            term += 1;
            let from = last - 1;
            let new: Vec<Entry> =
                (from..from + 3).map(|i| ent(i, term, &[round as u8; 40])).collect();
            hard = hs(term, Some(round % 3 + 1), hard.commit.0);
            persist(h, Some(hard), None, &new);
            log.truncate(log.len() - 2);
            log.extend(new);
        } else if round % 25 == 24 {
            // Compact up to the commit index (term of that stored entry).
            let at = hard.commit.0;
            let pos = log.iter().position(|e| e.index.0 == at).expect("commit is stored");
            snapshot = snap(at, log[pos].term.0, format!("state up to {at}").as_bytes());
            persist(h, None, Some(&snapshot), &[]);
            log.drain(..=pos);
        } else {
            let n = round % 4 + 1;
            let new: Vec<Entry> = (last + 1..=last + n)
                .map(|i| ent(i, term, &vec![i as u8; (i % 50) as usize]))
                .collect();
            hard = hs(term, hard.vote.map(|v| v.0), last + n - 1);
            persist(h, Some(hard), None, &new);
            log.extend(new);
        }
        if round % 10 == 9 {
            h.reopen();
        }
        expect(h, hard, &snapshot, &log);
    }
    assert!(snapshot.meta.index.0 > 100, "compaction must have run: {:?}", snapshot.meta);
    assert!(term >= 7, "conflicts must have run: term {term}");
    expect_durably(h, hard, &snapshot, &log);
}

// --- one test per check and implementation --------------------------------------------------

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod mem_storage {
            $(
                #[test]
                fn $check() {
                    super::$check(&mut super::MemHarness(kvraft_raft::MemStorage::new()));
                }
            )*
        }
        mod wal_file_disk {
            $(
                #[test]
                fn $check() {
                    super::$check(&mut super::wal_file(stringify!($check)));
                }
            )*
        }
        mod wal_sim_disk {
            $(
                #[test]
                fn $check() {
                    super::$check(&mut super::wal_sim(64 << 20, 0));
                }
            )*
        }
        /// Segments of 256 bytes: nearly every batch rolls over and old segments are removed.
        mod wal_sim_disk_small_segments {
            $(
                #[test]
                fn $check() {
                    super::$check(&mut super::wal_sim(256, 0));
                }
            )*
        }
        /// Preallocated space, more than one batch's worth, so batches land in zero-filled
        /// space, some overrun it, and segments roll over with unused space left behind.
        mod wal_sim_disk_preallocated {
            $(
                #[test]
                fn $check() {
                    super::$check(&mut super::wal_sim(64 << 20, 100));
                }
            )*
        }
        mod wal_sim_disk_preallocated_small_segments {
            $(
                #[test]
                fn $check() {
                    super::$check(&mut super::wal_sim(256, 100));
                }
            )*
        }
    };
}

conformance!(
    fresh_storage_is_empty,
    empty_batch_changes_nothing,
    hard_state_is_replaced_and_kept_when_absent,
    entries_append_in_order,
    entry_data_round_trips_exactly,
    conflicting_suffix_is_replaced,
    resent_entries_replace_the_suffix_after_them,
    snapshot_covering_part_of_the_log,
    snapshot_covering_all_of_the_log,
    snapshot_beyond_the_log,
    snapshot_with_another_term_drops_every_entry,
    snapshot_entries_and_hard_state_in_one_batch,
    a_later_snapshot_replaces_the_earlier_one,
    long_history_survives_reopens,
);
