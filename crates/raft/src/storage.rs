//! The storage contract, and an in-memory implementation with the lab persister's semantics.

use std::convert::Infallible;

use crate::message::{Entry, HardState, Snapshot};
use crate::ready::PersistBatch;
use crate::size;

/// What a restarted peer finds in its storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveredState {
    /// The last hard state stored.
    pub hard_state: HardState,
    /// The last snapshot stored (empty at index 0 if none).
    pub snapshot: Snapshot,
    /// Entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}

/// Durable home of a peer's hard state, log and snapshot.
///
/// `persist` applies a batch atomically with respect to crashes and is durable when it returns:
/// 1. a snapshot replaces the stored one; stored entries after it survive only if the store
///    holds the snapshot's last entry (same index and term), the others are dropped;
/// 2. entries at or below the snapshot index are ignored; the rest replace any stored entry at
///    or after the first of them, then are appended;
/// 3. the hard state replaces the stored one.
pub trait Storage {
    /// Why a read or write of the storage failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// What a restarted peer starts from: everything persisted so far.
    fn recover(&self) -> Result<RecoveredState, Self::Error>;
    /// Applies `batch` as described above, durably and atomically with respect to crashes.
    fn persist(&mut self, batch: PersistBatch<'_>) -> Result<(), Self::Error>;
    /// Encoded size of the hard state plus the retained entries: what a restart must read
    /// besides the snapshot. The snapshot policy and the lab's size limits read this.
    fn raft_state_size(&self) -> usize;
    /// The size of the stored snapshot's data.
    fn snapshot_size(&self) -> usize;
}

/// Storage in memory. `Clone` gives an independent copy, as the lab persister's `Copy()`: the
/// simulator keeps a node's storage across a crash by cloning it.
///
/// MemStorage is the model; WalStorage must not share its code. `kvraft_storage::WalStorage`
/// implements the same batch semantics a second time, on purpose: the simulator compares the
/// WAL after every restart with a MemStorage fed the acknowledged batches (`sim_storage.rs` in
/// kvraft-sim), and `storage_conformance.rs` in kvraft-storage runs both. A shared
/// implementation would make a bug in it invisible to that comparison.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    state: RecoveredState,
    entry_bytes: usize,
}

impl MemStorage {
    /// Empty storage: what a brand-new peer starts from.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Everything stored, as a restart would recover it.
    pub fn state(&self) -> &RecoveredState {
        &self.state
    }

    /// Position of `index` in the stored entries (they are contiguous).
    fn position(&self, index: crate::types::LogIndex) -> Option<usize> {
        let first = self.state.entries.first()?.index;
        let pos = index.0.checked_sub(first.0)? as usize;
        (pos < self.state.entries.len()).then_some(pos)
    }

    fn drop_entries(&mut self, range: impl std::ops::RangeBounds<usize>) {
        let removed: usize = self.state.entries.drain(range).map(|e| size::entry_len(&e)).sum();
        self.entry_bytes -= removed;
    }
}

impl Storage for MemStorage {
    type Error = Infallible;

    fn recover(&self) -> Result<RecoveredState, Infallible> {
        Ok(self.state.clone())
    }

    fn persist(&mut self, batch: PersistBatch<'_>) -> Result<(), Infallible> {
        if let Some(snapshot) = batch.snapshot {
            let meta = snapshot.meta;
            match self.position(meta.index) {
                Some(pos) if self.state.entries[pos].term == meta.term => {
                    self.drop_entries(..pos + 1)
                }
                _ => self.drop_entries(..),
            }
            self.state.snapshot = snapshot.clone();
        }
        let snapshot_index = self.state.snapshot.meta.index;
        let skip = batch.entries.iter().take_while(|e| e.index <= snapshot_index).count();
        let new = &batch.entries[skip..];
        if let Some(first) = new.first() {
            if let Some(pos) = self.position(first.index) {
                self.drop_entries(pos..);
            }
            let expected = self.state.entries.last().map_or(snapshot_index, |e| e.index).next();
            assert_eq!(first.index, expected, "persisting entries with a gap in the log");
            self.entry_bytes += new.iter().map(size::entry_len).sum::<usize>();
            self.state.entries.extend_from_slice(new);
        }
        if let Some(hard_state) = batch.hard_state {
            self.state.hard_state = hard_state;
        }
        Ok(())
    }

    fn raft_state_size(&self) -> usize {
        size::HARD_STATE_LEN + self.entry_bytes
    }

    fn snapshot_size(&self) -> usize {
        self.state.snapshot.data.len()
    }
}
