//! Gets on their way through ReadIndex: waiting for Raft to confirm them, then for the state
//! machine to reach their read index.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kvraft_raft::LogIndex;

use crate::RequestId;

/// The replica's reads in progress. Raft reports each accepted read exactly once, confirmed or
/// failed; a confirmed read is served once the state machine has applied its index, or fails
/// at its deadline.
#[derive(Debug, Default)]
pub(crate) struct PendingReads {
    /// Reads Raft has accepted and not yet reported on, by request id (the read's context),
    /// with their key.
    unconfirmed: BTreeMap<RequestId, String>,
    /// Confirmed reads waiting for the state machine to reach their read index, in index
    /// order (answers from the leader may arrive in any order).
    confirmed: BTreeMap<(LogIndex, RequestId), String>,
    /// When each confirmed read gives up waiting, in confirmation (so deadline) order; reads
    /// served meanwhile are skipped when their deadline comes.
    deadlines: VecDeque<(u64, LogIndex, RequestId)>,
}

impl PendingReads {
    pub(crate) fn len(&self) -> usize {
        self.unconfirmed.len() + self.confirmed.len()
    }

    /// Raft accepted read `id` of `key`.
    pub(crate) fn accepted(&mut self, id: RequestId, key: String) {
        let displaced = self.unconfirmed.insert(id, key);
        assert!(displaced.is_none(), "read {id} accepted twice");
    }

    /// Raft confirmed read `id` at `index`; it fails if not served by tick `deadline`.
    pub(crate) fn confirmed(&mut self, id: RequestId, index: LogIndex, deadline: u64) {
        let key = self
            .unconfirmed
            .remove(&id)
            .unwrap_or_else(|| panic!("read {id} confirmed but not asked for"));
        self.confirmed.insert((index, id), key);
        self.deadlines.push_back((deadline, index, id));
    }

    /// Raft could not confirm read `id`.
    pub(crate) fn failed(&mut self, id: RequestId) {
        self.unconfirmed
            .remove(&id)
            .unwrap_or_else(|| panic!("read {id} failed but not asked for"));
    }

    /// Removes and returns the confirmed reads whose index is at most `applied`, in index
    /// order.
    pub(crate) fn take_servable(&mut self, applied: LogIndex) -> Vec<(RequestId, String)> {
        let mut servable = Vec::new();
        while let Some(entry) = self.confirmed.first_entry() {
            if entry.key().0 > applied {
                break;
            }
            let ((_, id), key) = entry.remove_entry();
            servable.push((id, key));
        }
        servable
    }

    /// Removes and returns the confirmed reads whose deadline has come by tick `now`.
    pub(crate) fn take_expired(&mut self, now: u64) -> Vec<RequestId> {
        let mut expired = Vec::new();
        while let Some(&(deadline, index, id)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if self.confirmed.remove(&(index, id)).is_some() {
                expired.push(id);
            }
        }
        if self.confirmed.is_empty() {
            self.deadlines.clear();
        }
        expired
    }

    /// Panics if the bookkeeping is inconsistent: a read is in one place only, and every
    /// confirmed read still has its deadline queued, deadlines in order.
    pub(crate) fn check_invariants(&self, applied: LogIndex) {
        for (_, id) in self.confirmed.keys() {
            assert!(!self.unconfirmed.contains_key(id), "read {id} both confirmed and unconfirmed");
        }
        let queued: BTreeSet<(LogIndex, RequestId)> =
            self.deadlines.iter().map(|&(_, index, id)| (index, id)).collect();
        for key in self.confirmed.keys() {
            assert!(queued.contains(key), "confirmed read {} at {} has no deadline", key.1, key.0);
        }
        assert!(
            self.deadlines.iter().zip(self.deadlines.iter().skip(1)).all(|(a, b)| a.0 <= b.0),
            "read deadlines out of order"
        );
        if let Some(((index, id), _)) = self.confirmed.first_key_value() {
            // Served as soon as the state machine reaches them: none may lag behind it.
            assert!(
                *index > applied,
                "read {id} at {index} not served though {applied} is applied"
            );
        }
    }
}
