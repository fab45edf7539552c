//! The storage of a simulated server: the real write-ahead log over a simulated disk (the
//! default, so every lab test and swarm seed exercises crash recovery of the storage code the
//! server runs), or the in-memory store with the lab persister's semantics (`SIM_STORAGE=mem`).

use kvraft_raft::{DetRng, MemStorage, PersistBatch, RecoveredState, Storage};
use kvraft_storage::{SimDisk, WalConfig, WalStorage};

/// Small segments, so that rolling and segment deletion happen in every test.
const SIM_SEGMENT_BYTES: u64 = 16 * 1024;

#[derive(Debug)]
pub enum SimStorage {
    Mem(MemStorage),
    Wal(Box<WalStorage<SimDisk>>),
}

impl SimStorage {
    /// A fresh, empty store of the kind `SIM_STORAGE` asks for (the WAL unless it says "mem").
    pub fn from_env(seed: u64) -> SimStorage {
        match std::env::var("SIM_STORAGE").as_deref() {
            Ok("mem") => SimStorage::Mem(MemStorage::new()),
            Ok("wal") | Err(_) => SimStorage::Wal(Box::new(open_wal(SimDisk::new(seed)))),
            Ok(other) => panic!("SIM_STORAGE must be wal or mem, not {other:?}"),
        }
    }

    pub fn recover(&self) -> RecoveredState {
        match self {
            SimStorage::Mem(m) => m.recover().expect("in-memory storage cannot fail"),
            SimStorage::Wal(w) => w.recover().expect("an open WAL recovers its own state"),
        }
    }

    pub fn persist(&mut self, batch: PersistBatch<'_>) {
        match self {
            SimStorage::Mem(m) => m.persist(batch).expect("in-memory storage cannot fail"),
            SimStorage::Wal(w) => w
                .persist(batch)
                .unwrap_or_else(|e| panic!("WAL write failed on a fault-free disk: {e}")),
        }
    }

    pub fn raft_state_size(&self) -> usize {
        match self {
            SimStorage::Mem(m) => m.raft_state_size(),
            SimStorage::Wal(w) => w.raft_state_size(),
        }
    }

    pub fn snapshot_size(&self) -> usize {
        match self {
            SimStorage::Mem(m) => m.snapshot_size(),
            SimStorage::Wal(w) => w.snapshot_size(),
        }
    }

    /// Power loss, then the storage as a restarted server finds it: the disk keeps what was
    /// synced (and maybe some of the rest), and the WAL is reopened through recovery. What was
    /// acknowledged must survive: recovery must return exactly the state before the crash.
    pub fn crash(&mut self, rng: &mut DetRng) {
        if let SimStorage::Wal(w) = self {
            let before = w.recover().expect("an open WAL recovers its own state");
            let mut disk = w.disk().clone();
            disk.crash(rng);
            let reopened = open_wal(disk);
            let after = reopened.recover().expect("a reopened WAL recovers its state");
            assert_eq!(
                after, before,
                "WAL recovery after a crash lost or changed acknowledged state"
            );
            **w = reopened;
        }
    }
}

fn open_wal(disk: SimDisk) -> WalStorage<SimDisk> {
    WalStorage::open_with(disk, WalConfig { segment_size: SIM_SEGMENT_BYTES })
        .unwrap_or_else(|e| panic!("WAL recovery failed after a crash: {e}"))
}
