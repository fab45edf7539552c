//! Linearizable reads without a log write: ReadIndex (Raft thesis 6.4).
//!
//! A leader answers `read_index(ctx)` with a [`ReadState`] `{ctx, index}` once it has shown
//! that it still leads: the read takes the current commit index, and a heartbeat round sent
//! *after* the request must be echoed by a majority. The service then serves the read from its
//! state machine as soon as it has applied `index`.
//!
//! - A new leader may not know the latest commit index until it commits an entry of its own
//!   term, so reads wait for that (configure `Config::append_noop_on_election` so that it
//!   happens at once).
//! - Reads batch: every read requested between two `ready()` calls shares one heartbeat round,
//!   and a round confirms every earlier round too.
//! - A leader that steps down drops its unconfirmed reads; the service fails them (it sees
//!   the term or role change).

use std::collections::{BTreeMap, VecDeque};

use crate::quorum;
use crate::raw_node::{RawNode, Role};
use crate::types::{LogIndex, NodeId};

/// A confirmed read: serve the read `ctx` once the state machine has applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub ctx: u64,
    pub index: LogIndex,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadIndexError {
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("too many reads waiting for confirmation ({0})")]
    TooManyPending(usize),
}

/// The leader's reads in progress. Emptied whenever the role or term changes.
#[derive(Debug, Default)]
pub(crate) struct ReadQueue {
    /// Reads waiting for the first commit of this leader's term (their index is not known).
    awaiting_commit: Vec<u64>,
    /// Reads with their index and heartbeat round (0: the round has not been sent yet).
    pending: VecDeque<(u64, LogIndex, u64)>,
    /// The latest round sent.
    pub(crate) last_round: u64,
    /// The highest round each peer has echoed in this term.
    echoed: BTreeMap<NodeId, u64>,
    /// Confirmed reads, for the next Ready.
    pub(crate) confirmed: Vec<ReadState>,
}

impl ReadQueue {
    /// True if a heartbeat round must go out for reads that have none yet.
    pub(crate) fn needs_round(&self) -> bool {
        self.pending.back().is_some_and(|(_, _, round)| *round == 0)
    }

    pub(crate) fn has_unconfirmed(&self) -> bool {
        !self.pending.is_empty() || !self.awaiting_commit.is_empty()
    }

    fn len(&self) -> usize {
        self.awaiting_commit.len() + self.pending.len()
    }

    /// Forgets everything except the round counter (rounds only grow, so an echo of an old
    /// round can never confirm a newer read).
    pub(crate) fn reset(&mut self) {
        let last_round = self.last_round;
        *self = ReadQueue { last_round, ..ReadQueue::default() };
    }
}

/// Bound on reads waiting for confirmation.
pub(crate) const MAX_PENDING_READS: usize = 1 << 16;

impl RawNode {
    /// Asks to serve a linearizable read identified by `ctx`; a [`ReadState`] with the same
    /// `ctx` comes out of a later `Ready` once the read is confirmed. Only the leader can.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadIndexError> {
        if self.role != Role::Leader {
            return Err(ReadIndexError::NotLeader { leader: self.leader });
        }
        if self.reads.len() >= MAX_PENDING_READS {
            return Err(ReadIndexError::TooManyPending(MAX_PENDING_READS));
        }
        if !self.committed_in_current_term() {
            self.reads.awaiting_commit.push(ctx);
            return Ok(());
        }
        let index = self.log.committed();
        if self.peers.is_empty() {
            self.reads.confirmed.push(ReadState { ctx, index });
        } else {
            self.reads.pending.push_back((ctx, index, 0));
        }
        Ok(())
    }

    pub(crate) fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.committed()) == Some(self.term)
    }

    /// The leader committed something: reads waiting for its term's first commit get their
    /// index now.
    pub(crate) fn release_reads_awaiting_commit(&mut self) {
        if self.reads.awaiting_commit.is_empty() || !self.committed_in_current_term() {
            return;
        }
        let index = self.log.committed();
        for ctx in std::mem::take(&mut self.reads.awaiting_commit) {
            if self.peers.is_empty() {
                self.reads.confirmed.push(ReadState { ctx, index });
            } else {
                self.reads.pending.push_back((ctx, index, 0));
            }
        }
    }

    /// Starts a heartbeat round for the reads that have none; called from `ready()`.
    pub(crate) fn broadcast_read_round(&mut self) {
        if !self.reads.needs_round() {
            return;
        }
        self.reads.last_round += 1;
        let round = self.reads.last_round;
        for (_, _, r) in self.reads.pending.iter_mut().filter(|(_, _, r)| *r == 0) {
            *r = round;
        }
        for peer in self.peers.clone() {
            self.send_heartbeat(peer);
        }
    }

    /// A follower echoed `round`: confirm every read whose round a majority has now echoed.
    pub(crate) fn on_read_round_echo(&mut self, from: NodeId, round: u64) {
        if round == 0 || round > self.reads.last_round {
            return;
        }
        let echoed = self.reads.echoed.entry(from).or_default();
        *echoed = (*echoed).max(round);
        if self.reads.pending.is_empty() {
            return;
        }
        // One value per voter: the leader has seen every round it sent; a peer that has not
        // echoed in this term counts as round 0.
        let mut rounds: Vec<u64> =
            self.peers.iter().map(|p| self.reads.echoed.get(p).copied().unwrap_or(0)).collect();
        rounds.push(u64::MAX);
        let quorum_round = quorum::majority_value(&rounds);
        while let Some(&(ctx, index, r)) = self.reads.pending.front() {
            if r == 0 || r > quorum_round {
                break;
            }
            self.reads.pending.pop_front();
            self.reads.confirmed.push(ReadState { ctx, index });
        }
    }
}
