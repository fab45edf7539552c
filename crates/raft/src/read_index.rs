//! Linearizable reads without a log write: ReadIndex (Raft thesis 6.4), reads forwarded by
//! followers (also 6.4), and opt-in leader leases (6.4.1).
//!
//! **Leader.** `read_index(ctx)` is answered with a [`ReadState`] `{ctx, index}` once the
//! leader has shown that it still leads: the read takes the current commit index, and a
//! heartbeat round sent *after* the request must be echoed by a majority. The service then
//! serves the read from its state machine as soon as it has applied `index`.
//! - A new leader may not know the latest commit index until it commits an entry of its own
//!   term, so reads wait for that (configure `Config::append_noop_on_election` so that it
//!   happens at once).
//! - Reads batch: every read requested between two `ready()` calls shares one heartbeat round,
//!   and a round confirms every earlier round too.
//! - With `Config::lease_reads`, every heartbeat starts a round, and while the latest round a
//!   majority echoed was *sent* at most `Config::lease_duration_ticks` ago, reads are confirmed
//!   at once at the commit index (still only after the first commit of the term). Followers
//!   that echoed refuse votes for an election timeout after receiving the round, and the lease
//!   ends before that (see `Config::lease_reads` for the clock assumption).
//!
//! **Follower.** `read_index(ctx)` on a follower that knows its leader forwards the read: reads
//! requested between two `ready()` calls form one batch, sent as one `ReadIndexRequest`. The
//! leader runs it through the same machinery (same rounds, same first-commit rule, same lease)
//! and answers `ReadIndexResponse { index }`; the follower then emits a `ReadState` per read,
//! and the service serves each once *its own* state machine has applied `index`.
//!
//! **Failures are explicit.** Every read that `read_index` accepted ends up exactly once in
//! `Ready::read_states` or in `Ready::failed_reads`. A leader that steps down fails its own
//! reads and refuses the forwarded ones; a follower fails its forwarded reads when its term or
//! leader changes, when the leader refuses, and when no answer came within an election timeout
//! (messages are lost). Answers are matched by batch number, leader and term.
//!
//! **Where the parts live.** This module is the node's glue: it asks the tracker which round a
//! quorum has echoed, feeds the answer to the bookkeeping, and carries out its decisions
//! (answers to followers, `read_states`, `failed_reads`). The bookkeeping itself is plain:
//! `read_queue` on the leader (held by the leader's role state, so it ends with the
//! leadership) and `forwarded_reads` on a follower.

use crate::message::MessageBody;
use crate::raw_node::RawNode;
use crate::read_queue::{ConfirmedRead, ReadOrigin, ReadQueue};
pub use crate::ready::ReadState;
use crate::role::RoleState;
use crate::types::{LogIndex, NodeId, ReadRound, Role, Term};

/// Why `RawNode::read_index` refused a read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadIndexError {
    /// Neither the leader nor a follower that knows one.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this peer knows of, if any.
        leader: Option<NodeId>,
    },
    /// Too many reads wait for confirmation already; holds the limit.
    #[error("too many reads waiting for confirmation ({0})")]
    TooManyPending(usize),
}

/// Bound on reads waiting for confirmation.
pub(crate) const MAX_PENDING_READS: usize = 1 << 16;

impl RawNode {
    /// Asks to serve a linearizable read identified by `ctx`; a [`ReadState`] with the same
    /// `ctx` comes out of a later `Ready` once the read is confirmed, or `ctx` comes out in
    /// `Ready::failed_reads`. The leader confirms reads itself; a follower that knows its
    /// leader forwards them to it (see the module docs). Other peers refuse.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadIndexError> {
        self.settle_forwarded_reads();
        if self.unconfirmed_reads() >= MAX_PENDING_READS {
            return Err(ReadIndexError::TooManyPending(MAX_PENDING_READS));
        }
        match (self.role(), self.leader()) {
            (Role::Leader, _) => {
                self.leader_read(ReadOrigin::Local(ctx));
                Ok(())
            }
            (Role::Follower, Some(leader)) => {
                self.forwarded_reads.add(self.term, leader, ctx, self.now_tick);
                Ok(())
            }
            _ => Err(ReadIndexError::NotLeader { leader: self.leader() }),
        }
    }

    /// True if this leader holds a lease: a round that a quorum echoed in this term was sent
    /// at most `Config::lease_duration_ticks` ago.
    pub fn in_read_lease(&self) -> bool {
        self.role.leader_state().is_some_and(|leader| {
            !leader.leases_off
                && leader.reads.in_lease(
                    self.now_tick,
                    self.config.lease_duration_ticks(),
                    leader.lease_floor_tick,
                )
        })
    }

    pub(crate) fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.committed()) == Some(self.term)
    }

    /// Reads accepted and neither confirmed nor failed yet, on either side.
    fn unconfirmed_reads(&self) -> usize {
        let leader = self.role.leader_state().map_or(0, |leader| leader.reads.len());
        leader + self.forwarded_reads.len()
    }

    // ----- the leader's side -----

    /// True if reads need no heartbeat round: the leader alone is a quorum, or holds a lease.
    fn reads_confirmed_at_once(&self) -> bool {
        self.tracker().leader_alone_is_quorum(self.log.membership()) || self.in_read_lease()
    }

    fn leader_read(&mut self, origin: ReadOrigin) {
        let committed = self.committed_in_current_term().then(|| self.log.committed());
        let at_once = self.reads_confirmed_at_once();
        if let Some(read) = self.leader_state_mut().reads.add(origin, committed, at_once) {
            self.confirm_read(read);
        }
    }

    fn confirm_read(&mut self, ConfirmedRead { origin, index }: ConfirmedRead) {
        match origin {
            ReadOrigin::Local(ctx) => self.read_states.push(ReadState { ctx, index }),
            ReadOrigin::Remote { from, ctx } => {
                self.send(from, MessageBody::ReadIndexResponse { ctx, index: Some(index) })
            }
        }
    }

    /// The leader committed something: reads waiting for its term's first commit get their
    /// index now.
    pub(crate) fn release_reads_awaiting_commit(&mut self) {
        if !self.leader_state().reads.has_awaiting_commit() || !self.committed_in_current_term() {
            return;
        }
        let (committed, at_once) = (self.log.committed(), self.reads_confirmed_at_once());
        for read in self.leader_state_mut().reads.release_awaiting_commit(committed, at_once) {
            self.confirm_read(read);
        }
    }

    /// Starts a heartbeat round: every read without a round joins it. The caller sends the
    /// heartbeats.
    pub(crate) fn start_read_round(&mut self) {
        self.read_round = self.read_round.next();
        let (round, now, lease) = (self.read_round, self.now_tick, self.config.lease_reads);
        self.leader_state_mut().reads.start_round(round, now, lease);
    }

    /// Starts a heartbeat round for the reads that have none; called from `ready()`.
    pub(crate) fn broadcast_read_round(&mut self) {
        if !self.leader_state().reads.needs_round() {
            return;
        }
        self.start_read_round();
        for peer in self.tracker().followers() {
            self.send_heartbeat(peer);
        }
    }

    /// A follower echoed `round`: confirm every read whose round a quorum has now echoed,
    /// and extend the lease.
    pub(crate) fn on_read_round_echo(&mut self, from: NodeId, round: ReadRound) {
        if round == ReadRound::NONE || round > self.read_round {
            return;
        }
        let Some(progress) = self.tracker_mut().get_mut(from) else { return };
        progress.echoed_read_round = progress.echoed_read_round.max(round);
        if !self.leader_state().reads.awaits_echoes() {
            return;
        }
        let quorum_round = self.tracker().quorum_read_round(self.log.membership());
        for read in self.leader_state_mut().reads.on_quorum_round(quorum_round) {
            self.confirm_read(read);
        }
    }

    /// The leader appended a config entry: the reads waiting for a round are counted again,
    /// by the new voters (design rule R13, as raft-rs `post_conf_change`). Without this they
    /// would wait for the next echo, and a leader left a quorum alone (no follower ever echoes
    /// again) would never confirm them. Such a leader puts the reads whose round is not sent
    /// yet in one that needs no echo. (The lease is not renewed by this: it counts only rounds
    /// sent after the change.)
    pub(crate) fn recount_reads(&mut self) {
        if !self.leader_state().reads.awaits_echoes() {
            return;
        }
        if self.tracker().leader_alone_is_quorum(self.log.membership())
            && self.leader_state().reads.needs_round()
        {
            self.start_read_round();
        }
        let quorum_round = self.tracker().quorum_read_round(self.log.membership());
        for read in self.leader_state_mut().reads.on_quorum_round(quorum_round) {
            self.confirm_read(read);
        }
    }

    /// A follower forwards reads to us (we are in its term).
    pub(crate) fn handle_read_index_request(&mut self, from: NodeId, ctx: u64) {
        if !self.is_leader() || self.unconfirmed_reads() >= MAX_PENDING_READS {
            self.send(from, MessageBody::ReadIndexResponse { ctx, index: None });
            return;
        }
        self.leader_read(ReadOrigin::Remote { from, ctx });
    }

    /// A leadership ended with these reads unconfirmed: this peer's own reads fail and the
    /// forwarded ones are refused.
    pub(crate) fn fail_leader_reads(&mut self, reads: ReadQueue) {
        for origin in reads.into_unconfirmed() {
            match origin {
                ReadOrigin::Local(ctx) => self.failed_reads.push(ctx),
                ReadOrigin::Remote { from, ctx } => {
                    self.send(from, MessageBody::ReadIndexResponse { ctx, index: None })
                }
            }
        }
    }

    // ----- the follower's side -----

    /// Sends the open batch, if any, to the leader; called from `ready()`.
    pub(crate) fn send_forwarded_reads(&mut self) {
        self.settle_forwarded_reads();
        if let Some((leader, ctx)) = self.forwarded_reads.send_open_batch() {
            self.send(leader, MessageBody::ReadIndexRequest { ctx });
        }
    }

    /// The leader answered a batch (the message is of our term).
    pub(crate) fn handle_read_index_response(
        &mut self,
        from: NodeId,
        ctx: u64,
        index: Option<LogIndex>,
    ) {
        let Some(ctxs) = self.forwarded_reads.answer(self.term, from, ctx) else { return };
        match index {
            Some(index) => {
                self.read_states.extend(ctxs.into_iter().map(|ctx| ReadState { ctx, index }))
            }
            None => self.failed_reads.extend(ctxs),
        }
    }

    /// Forwarded batches still unanswered an election timeout after they were opened fail
    /// (their request or its answer was lost, or the leader cannot confirm); called per tick.
    pub(crate) fn expire_forwarded_reads(&mut self) {
        let timeout = self.config.election_timeout_ticks as u64;
        let expired = self.forwarded_reads.expire(self.now_tick, timeout);
        self.failed_reads.extend(expired);
    }

    /// Forwarded reads fail as soon as this peer is no longer a follower of the leader and
    /// term they were sent to.
    pub(crate) fn settle_forwarded_reads(&mut self) {
        let following = self.following();
        let failed = self.forwarded_reads.settle(following);
        self.failed_reads.extend(failed);
    }

    /// The term and leader this peer follows, if it is a follower that knows its leader.
    fn following(&self) -> Option<(Term, NodeId)> {
        match self.role {
            RoleState::Follower { leader } => leader.map(|leader| (self.term, leader)),
            _ => None,
        }
    }

    /// Panics if the read bookkeeping is inconsistent (part of `check_invariants`).
    pub(crate) fn check_read_invariants(&self) {
        if let Some(leader) = self.role.leader_state() {
            let reads = &leader.reads;
            reads.check_invariants(self.id, self.log.committed(), self.read_round, self.now_tick);
            assert!(
                !reads.has_awaiting_commit() || !self.committed_in_current_term(),
                "node {}: reads still wait for a commit the term already has",
                self.id
            );
            assert!(
                self.config.check_quorum || reads.lease_from_tick().is_none(),
                "node {}: a lease without check_quorum",
                self.id
            );
            for (peer, progress) in leader.tracker.iter() {
                assert!(
                    progress.echoed_read_round <= self.read_round,
                    "node {}: peer {peer} echoed a round not sent yet",
                    self.id
                );
            }
        }
        self.forwarded_reads.check_invariants(self.id, self.following());
    }
}
