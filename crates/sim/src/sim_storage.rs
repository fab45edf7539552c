//! The storage of a simulated server: the real write-ahead log over a simulated disk (the
//! default, so every lab test and swarm seed exercises crash recovery of the storage code the
//! server runs), or the in-memory store with the lab persister's semantics (`SIM_STORAGE=mem`,
//! see `options`).
//!
//! Writes are asynchronous, as in the server's WAL thread: [`SimStorage::begin`] writes a group
//! of batches, and [`SimStorage::finish`] (a later event) makes them durable. A crash in between
//! finds them unsynced: the disk may keep none, all, or a torn prefix of them. Like the WAL
//! thread, `finish` then prepares zero-filled space for the next writes (`preallocate`), so
//! every crash and restart also recovers segments with zero-filled tails.

use kvraft_raft::{DetRng, MemStorage, PersistBatch, RecoveredState, Storage};
use kvraft_storage::{FaultPlan, SimDisk, WalConfig, WalError, WalStorage};

use crate::options::StorageKind;

/// Small segments, so that rolling and segment deletion happen in every test.
const SIM_SEGMENT_BYTES: u64 = 16 * 1024;
/// A quarter segment of preallocated space: most batches land in zero-filled space, some
/// overrun it, and every segment is left with an unused zero-filled tail when it rolls over.
const SIM_PREALLOCATE_BYTES: u64 = SIM_SEGMENT_BYTES / 4;

#[derive(Debug)]
pub enum SimStorage {
    /// Batches are kept only once finished: a crash before that loses them whole.
    Mem(MemStorage),
    Wal {
        wal: Box<WalStorage<SimDisk>>,
        /// What has been acknowledged (finished), for checking what a crash recovers.
        acked: MemStorage,
    },
}

impl SimStorage {
    /// A fresh, empty store of the given kind; `seed` drives the simulated disk.
    pub fn new(kind: StorageKind, seed: u64) -> SimStorage {
        match kind {
            StorageKind::Mem => SimStorage::Mem(MemStorage::new()),
            StorageKind::Wal => SimStorage::Wal {
                wal: Box::new(open_wal(SimDisk::new(seed))),
                acked: MemStorage::new(),
            },
        }
    }

    /// The acknowledged state: what a restart recovers.
    pub fn recover(&self) -> RecoveredState {
        match self {
            SimStorage::Mem(m) => m.state().clone(),
            SimStorage::Wal { wal, acked } => {
                debug_assert!(!wal.has_unsynced(), "recovering while a write is in flight");
                assert_eq!(wal.state(), acked.state(), "the WAL's state differs from the model's");
                acked.state().clone()
            }
        }
    }

    /// What the storage has acknowledged as durable: what a crash keeps for sure.
    pub fn durable_state(&self) -> &RecoveredState {
        match self {
            SimStorage::Mem(m) => m.state(),
            SimStorage::Wal { acked, .. } => acked.state(),
        }
    }

    /// Panics if the WAL's in-memory index is inconsistent (the in-memory store has none).
    pub fn check_invariants(&self) {
        if let SimStorage::Wal { wal, .. } = self {
            wal.check_invariants();
        }
    }

    /// Starts writing `batches` (one append, no fsync yet). An error means the disk failed:
    /// the server must stop.
    pub fn begin(&mut self, batches: &[PersistBatch<'_>]) -> Result<(), WalError> {
        match self {
            SimStorage::Mem(_) => Ok(()),
            SimStorage::Wal { wal, .. } => wal.write_batches(batches),
        }
    }

    /// Makes the batches of the last `begin` durable (the fsync), then prepares the space for
    /// the next writes. An error means the disk failed: the server must stop, and the batches
    /// were never acknowledged (if the fsync succeeded, they are durable all the same).
    pub fn finish(&mut self, batches: &[PersistBatch<'_>]) -> Result<(), WalError> {
        match self {
            SimStorage::Mem(m) => {
                for batch in batches {
                    m.persist(*batch).expect("in-memory storage cannot fail");
                }
                Ok(())
            }
            SimStorage::Wal { wal, acked } => {
                wal.sync()?;
                for batch in batches {
                    acked.persist(*batch).expect("in-memory storage cannot fail");
                }
                // (The two are compared at every restart, in `recover`: comparing whole logs
                // after every fsync made long runs quadratic.)
                wal.preallocate()
            }
        }
    }

    pub fn raft_state_size(&self) -> usize {
        match self {
            SimStorage::Mem(m) => m.raft_state_size(),
            SimStorage::Wal { wal, .. } => wal.raft_state_size(),
        }
    }

    pub fn snapshot_size(&self) -> usize {
        match self {
            SimStorage::Mem(m) => m.snapshot_size(),
            SimStorage::Wal { wal, .. } => wal.snapshot_size(),
        }
    }

    /// Sets the disk's fault plan (no-op for the in-memory store).
    pub fn set_faults(&mut self, faults: FaultPlan) {
        if let SimStorage::Wal { wal, .. } = self {
            wal.disk_mut().set_faults(faults);
        }
    }

    /// Power loss while `in_flight` (begun, not finished) was being written, then the storage
    /// as a restarted server finds it: the disk keeps what was synced and maybe some of the
    /// rest, and the WAL is reopened through recovery. Nothing acknowledged may be lost and
    /// nothing half-written may appear: recovery must give the acknowledged state plus some
    /// prefix of whole in-flight batches.
    pub fn crash(&mut self, rng: &mut DetRng, in_flight: &[PersistBatch<'_>]) {
        let SimStorage::Wal { wal, acked } = self else { return };
        let mut disk = wal.disk().clone();
        disk.set_faults(FaultPlan::NONE);
        disk.crash(rng);
        let reopened = open_wal(disk);
        let after = reopened.recover().expect("a reopened WAL recovers its state");
        let mut candidate = acked.clone();
        let mut matched = candidate.state() == &after;
        for batch in in_flight {
            if matched {
                break;
            }
            candidate.persist(*batch).expect("in-memory storage cannot fail");
            matched = candidate.state() == &after;
        }
        assert!(
            matched,
            "WAL recovery after a crash lost acknowledged state or kept part of a batch:\n\
             recovered {after:?}\nacknowledged {:?}",
            acked.state()
        );
        *acked = candidate;
        **wal = reopened;
    }
}

fn open_wal(disk: SimDisk) -> WalStorage<SimDisk> {
    let config =
        WalConfig { segment_size: SIM_SEGMENT_BYTES, preallocate_bytes: SIM_PREALLOCATE_BYTES };
    WalStorage::open_with(disk, config)
        .unwrap_or_else(|e| panic!("WAL recovery failed after a crash: {e}"))
}
