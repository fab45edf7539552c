//! A simulated server's write pipeline, shaped like the real server's WAL thread: Readies wait
//! in order; one group write (every Ready queued when it starts, one append and one fsync) is
//! in flight at a time, and its completion is a later event, so network events, ticks and
//! crashes interleave with fsyncs.

use std::collections::VecDeque;

use kvraft_raft::{PersistBatch, Ready};

#[derive(Debug, Default)]
pub(crate) struct PersistQueue {
    /// Readies whose durable part (and so their `persisted_messages` and committed entries)
    /// waits for the disk, oldest first.
    readies: VecDeque<Ready>,
    /// The first `writing` of them are in the write under way.
    writing: usize,
}

impl PersistQueue {
    pub(crate) fn push(&mut self, ready: Ready) {
        self.readies.push_back(ready);
    }

    pub(crate) fn is_writing(&self) -> bool {
        self.writing > 0
    }

    /// The oldest Ready, if no write is under way and it has nothing to write: it is done as
    /// soon as everything before it is.
    pub(crate) fn pop_without_write(&mut self) -> Option<Ready> {
        match self.readies.front() {
            Some(ready) if !self.is_writing() && !ready.must_persist() => self.readies.pop_front(),
            _ => None,
        }
    }

    /// Starts a group write of everything queued; returns its batches, or None if a write is
    /// already under way or nothing waits.
    pub(crate) fn start_group(&mut self) -> Option<Vec<PersistBatch<'_>>> {
        if self.is_writing() || self.readies.is_empty() {
            return None;
        }
        self.writing = self.readies.len();
        Some(self.in_flight())
    }

    /// The batches of the write under way.
    pub(crate) fn in_flight(&self) -> Vec<PersistBatch<'_>> {
        self.readies.iter().take(self.writing).map(Ready::persist_batch).collect()
    }

    /// Ends the write under way, handing back its Readies in order.
    pub(crate) fn take_written(&mut self) -> Vec<Ready> {
        let n = std::mem::take(&mut self.writing);
        self.readies.drain(..n).collect()
    }

    /// Forgets everything (the server crashed).
    pub(crate) fn clear(&mut self) {
        self.readies.clear();
        self.writing = 0;
    }
}
