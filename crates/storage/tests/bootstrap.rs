//! A new cluster's first configuration, written as the snapshot at index 0 before an initial
//! member's first start, survives a restart in both storages, and the first command still
//! lands at index 1.

use bytes::Bytes;
use kvraft_raft::{
    ClusterConfig, Entry, HardState, LogIndex, MemStorage, NodeId, PersistBatch, Snapshot, Storage,
    Term,
};
use kvraft_storage::{SimDisk, WalStorage};

fn bootstrap_then_one_entry(storage: &mut impl Storage) -> Snapshot {
    let config = ClusterConfig::bootstrap([NodeId(1), NodeId(2), NodeId(3)]);
    let snapshot = Snapshot::bootstrap(config);
    let batch = PersistBatch { hard_state: None, snapshot: Some(&snapshot), entries: &[] };
    storage.persist(batch).unwrap();
    let entry = Entry::normal(Term(1), LogIndex(1), Bytes::from_static(b"first"));
    let hard_state = HardState { term: Term(1), vote: Some(NodeId(1)), commit: LogIndex(0) };
    let batch = PersistBatch { hard_state: Some(hard_state), snapshot: None, entries: &[entry] };
    storage.persist(batch).unwrap();
    snapshot
}

#[test]
fn the_bootstrap_configuration_survives_a_restart() {
    let mut mem = MemStorage::new();
    let snapshot = bootstrap_then_one_entry(&mut mem);
    let recovered = mem.recover().unwrap();
    assert_eq!(recovered.snapshot, snapshot);
    assert_eq!(recovered.entries[0].index, LogIndex(1));

    let mut wal = WalStorage::open(SimDisk::new(1)).unwrap();
    bootstrap_then_one_entry(&mut wal);
    let disk = wal.into_disk();
    let reopened = WalStorage::open(disk).unwrap();
    let recovered = reopened.recover().unwrap();
    assert_eq!(recovered.snapshot, snapshot);
    assert_eq!(recovered.entries.len(), 1);
    assert_eq!(recovered.entries[0].index, LogIndex(1));
}
