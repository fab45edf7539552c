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

use std::collections::{BTreeMap, VecDeque};

use crate::message::MessageBody;
use crate::raw_node::RawNode;
pub use crate::ready::ReadState;
use crate::types::Role;
use crate::types::{LogIndex, NodeId, Term};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadIndexError {
    /// Neither the leader nor a follower that knows one.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("too many reads waiting for confirmation ({0})")]
    TooManyPending(usize),
}

/// Whose read the leader is confirming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadOrigin {
    /// This node's service asked; `ctx` is the service's.
    Local(u64),
    /// A follower's forwarded batch; `ctx` is the follower's batch number.
    Remote { from: NodeId, ctx: u64 },
}

/// A batch of reads a follower forwarded (or is about to forward) to its leader.
#[derive(Debug)]
struct ForwardedBatch {
    ctxs: Vec<u64>,
    /// When the batch was opened; it fails an election timeout later if still unanswered.
    created_tick: u64,
    /// False while the batch is open: reads join it until the next `ready()` sends it.
    sent: bool,
}

/// Reads in progress, on both sides.
#[derive(Debug, Default)]
pub(crate) struct ReadQueue {
    // ----- the leader's side: emptied whenever the role or term changes -----
    /// Reads waiting for the first commit of this leader's term (their index is not known).
    awaiting_commit: Vec<ReadOrigin>,
    /// Reads with their index and heartbeat round (0: the round has not been sent yet).
    pending: VecDeque<(ReadOrigin, LogIndex, u64)>,
    /// The latest round sent. Never reset: rounds only grow, so an echo of an old round can
    /// never confirm a newer read.
    pub(crate) last_round: u64,
    /// Lease reads: rounds sent in this term that no majority has echoed yet, with the tick
    /// each was first sent at.
    round_sent_ticks: VecDeque<(u64, u64)>,
    /// Lease reads: the tick at which the latest round a majority echoed in this term was sent.
    lease_from_tick: Option<u64>,

    // ----- the follower's side -----
    /// Forwarded batches by number, oldest first.
    forwarded: BTreeMap<u64, ForwardedBatch>,
    /// The term and leader every batch in `forwarded` was (or will be) sent to.
    forward_to: Option<(Term, NodeId)>,
    next_batch: u64,
    /// Mixed into batch numbers on the wire, so that a restarted follower (another nonce)
    /// never takes an answer meant for its previous incarnation.
    batch_nonce: u64,

    // ----- output for the next Ready -----
    pub(crate) confirmed: Vec<ReadState>,
    pub(crate) failed: Vec<u64>,
}

impl ReadQueue {
    pub(crate) fn new(batch_nonce: u64) -> ReadQueue {
        ReadQueue { batch_nonce, ..ReadQueue::default() }
    }

    /// True if a heartbeat round must go out for reads that have none yet.
    pub(crate) fn needs_round(&self) -> bool {
        self.pending.back().is_some_and(|(_, _, round)| *round == 0)
    }

    pub(crate) fn has_unconfirmed(&self) -> bool {
        !self.pending.is_empty() || !self.awaiting_commit.is_empty()
    }

    /// True if a follower has a batch to send in the next Ready.
    pub(crate) fn has_open_batch(&self) -> bool {
        self.forwarded.last_key_value().is_some_and(|(_, b)| !b.sent)
    }

    /// True if the next Ready has reads to report.
    pub(crate) fn has_output(&self) -> bool {
        !self.confirmed.is_empty() || !self.failed.is_empty()
    }

    fn len(&self) -> usize {
        let forwarded: usize = self.forwarded.values().map(|b| b.ctxs.len()).sum();
        self.awaiting_commit.len() + self.pending.len() + forwarded
    }

    /// A batch number to its `ctx` on the wire, and back (an XOR with the nonce).
    fn mix_nonce(&self, value: u64) -> u64 {
        value ^ self.batch_nonce
    }
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
        if self.reads.len() >= MAX_PENDING_READS {
            return Err(ReadIndexError::TooManyPending(MAX_PENDING_READS));
        }
        match (self.role(), self.leader()) {
            (Role::Leader, _) => {
                self.leader_read(ReadOrigin::Local(ctx));
                Ok(())
            }
            (Role::Follower, Some(leader)) => {
                self.forward_read(leader, ctx);
                Ok(())
            }
            _ => Err(ReadIndexError::NotLeader { leader: self.leader() }),
        }
    }

    pub(crate) fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.committed()) == Some(self.term)
    }

    /// True if this leader holds a lease: a round that a majority echoed in this term was sent
    /// at most `Config::lease_duration_ticks` ago.
    pub fn in_read_lease(&self) -> bool {
        self.is_leader()
            && self.config.lease_duration_ticks().is_some_and(|lease| {
                self.reads.lease_from_tick.is_some_and(|sent| self.now_tick - sent <= lease as u64)
            })
    }

    // ----- the leader's side -----

    fn leader_read(&mut self, origin: ReadOrigin) {
        if !self.committed_in_current_term() {
            self.reads.awaiting_commit.push(origin);
            return;
        }
        let index = self.log.committed();
        let alone = self.tracker().leader_alone_is_quorum(&self.membership);
        if alone || self.in_read_lease() {
            self.confirm_read(origin, index);
        } else {
            self.reads.pending.push_back((origin, index, 0));
        }
    }

    fn confirm_read(&mut self, origin: ReadOrigin, index: LogIndex) {
        match origin {
            ReadOrigin::Local(ctx) => self.reads.confirmed.push(ReadState { ctx, index }),
            ReadOrigin::Remote { from, ctx } => {
                self.send(from, MessageBody::ReadIndexResponse { ctx, index: Some(index) })
            }
        }
    }

    /// The leader committed something: reads waiting for its term's first commit get their
    /// index now.
    pub(crate) fn release_reads_awaiting_commit(&mut self) {
        if self.reads.awaiting_commit.is_empty() || !self.committed_in_current_term() {
            return;
        }
        for origin in std::mem::take(&mut self.reads.awaiting_commit) {
            self.leader_read(origin);
        }
    }

    /// Starts a heartbeat round: every read without a round joins it. The caller sends the
    /// heartbeats.
    pub(crate) fn start_read_round(&mut self) {
        self.reads.last_round += 1;
        let round = self.reads.last_round;
        for (_, _, r) in self.reads.pending.iter_mut().filter(|(_, _, r)| *r == 0) {
            *r = round;
        }
        if self.config.lease_reads {
            // Bounded: rounds leave once echoed, and a leader that hears from no majority
            // steps down within two election timeouts (check_quorum); dropping the oldest
            // only ever loses a lease, never grants one.
            if self.reads.round_sent_ticks.len() >= 1024 {
                self.reads.round_sent_ticks.pop_front();
            }
            self.reads.round_sent_ticks.push_back((round, self.now_tick));
        }
    }

    /// Starts a heartbeat round for the reads that have none; called from `ready()`.
    pub(crate) fn broadcast_read_round(&mut self) {
        if !self.reads.needs_round() {
            return;
        }
        self.start_read_round();
        for peer in self.tracker().followers() {
            self.send_heartbeat(peer);
        }
    }

    /// A follower echoed `round`: confirm every read whose round a majority has now echoed,
    /// and extend the lease.
    pub(crate) fn on_read_round_echo(&mut self, from: NodeId, round: u64) {
        if round == 0 || round > self.reads.last_round {
            return;
        }
        let progress = self.tracker_mut().progress_mut(from);
        progress.echoed_read_round = progress.echoed_read_round.max(round);
        if self.reads.pending.is_empty() && self.reads.round_sent_ticks.is_empty() {
            return;
        }
        let quorum_round = self.tracker().quorum_read_round(&self.membership);
        // A majority each received a heartbeat carrying `quorum_round` or later, so sent no
        // earlier than any round up to it: the latest such round's send tick starts the lease.
        while let Some(&(r, sent)) = self.reads.round_sent_ticks.front() {
            if r > quorum_round {
                break;
            }
            self.reads.round_sent_ticks.pop_front();
            self.reads.lease_from_tick = Some(self.reads.lease_from_tick.unwrap_or(0).max(sent));
        }
        while let Some(&(origin, index, r)) = self.reads.pending.front() {
            if r == 0 || r > quorum_round {
                break;
            }
            self.reads.pending.pop_front();
            self.confirm_read(origin, index);
        }
    }

    /// A follower forwards reads to us (we are in its term).
    pub(crate) fn handle_read_index_request(&mut self, from: NodeId, ctx: u64) {
        if !self.is_leader() || self.reads.len() >= MAX_PENDING_READS {
            self.send(from, MessageBody::ReadIndexResponse { ctx, index: None });
            return;
        }
        self.leader_read(ReadOrigin::Remote { from, ctx });
    }

    /// Leadership ends or a new term begins: this peer's own unconfirmed reads fail, the
    /// forwarded ones are refused, and the round bookkeeping of the term is forgotten. Reads
    /// already confirmed stay confirmed (they were linearizable when confirmed).
    pub(crate) fn drop_leader_reads(&mut self) {
        let origins: Vec<ReadOrigin> = std::mem::take(&mut self.reads.awaiting_commit)
            .into_iter()
            .chain(std::mem::take(&mut self.reads.pending).into_iter().map(|(o, _, _)| o))
            .collect();
        for origin in origins {
            match origin {
                ReadOrigin::Local(ctx) => self.reads.failed.push(ctx),
                ReadOrigin::Remote { from, ctx } => {
                    self.send(from, MessageBody::ReadIndexResponse { ctx, index: None })
                }
            }
        }
        self.reads.round_sent_ticks.clear();
        self.reads.lease_from_tick = None;
    }

    // ----- the follower's side -----

    fn forward_read(&mut self, leader: NodeId, ctx: u64) {
        debug_assert!(self.reads.forward_to.is_none_or(|t| t == (self.term, leader)));
        self.reads.forward_to = Some((self.term, leader));
        if !self.reads.has_open_batch() {
            self.reads.next_batch += 1;
            let batch =
                ForwardedBatch { ctxs: Vec::new(), created_tick: self.now_tick, sent: false };
            self.reads.forwarded.insert(self.reads.next_batch, batch);
        }
        let mut batch = self.reads.forwarded.last_entry().expect("just opened");
        batch.get_mut().ctxs.push(ctx);
    }

    /// Sends the open batch, if any, to the leader; called from `ready()`.
    pub(crate) fn send_forwarded_reads(&mut self) {
        self.settle_forwarded_reads();
        let Some(mut batch) = self.reads.forwarded.last_entry() else { return };
        if batch.get().sent {
            return;
        }
        batch.get_mut().sent = true;
        let number = *batch.key();
        let (_, leader) = self.reads.forward_to.expect("batches have a destination");
        let ctx = self.reads.mix_nonce(number);
        self.send(leader, MessageBody::ReadIndexRequest { ctx });
    }

    /// The leader answered a batch (the message is of our term).
    pub(crate) fn handle_read_index_response(
        &mut self,
        from: NodeId,
        ctx: u64,
        index: Option<LogIndex>,
    ) {
        let number = self.reads.mix_nonce(ctx);
        if self.reads.forward_to != Some((self.term, from))
            || !self.reads.forwarded.get(&number).is_some_and(|b| b.sent)
        {
            // A duplicate, an answer to an earlier incarnation, or from a peer we did not ask.
            return;
        }
        let batch = self.reads.forwarded.remove(&number).expect("just checked");
        match index {
            Some(index) => self
                .reads
                .confirmed
                .extend(batch.ctxs.into_iter().map(|ctx| ReadState { ctx, index })),
            None => self.reads.failed.extend(batch.ctxs),
        }
    }

    /// Forwarded batches still unanswered an election timeout after they were opened fail
    /// (their request or its answer was lost, or the leader cannot confirm); called per tick.
    pub(crate) fn expire_forwarded_reads(&mut self) {
        let timeout = self.config.election_timeout_ticks as u64;
        while let Some((_, batch)) = self.reads.forwarded.first_key_value() {
            if self.now_tick - batch.created_tick < timeout {
                break;
            }
            let (_, batch) = self.reads.forwarded.pop_first().expect("just seen");
            self.reads.failed.extend(batch.ctxs);
        }
    }

    /// Forwarded reads fail as soon as this peer is no longer a follower of the leader and
    /// term they were sent to. O(1) unless there is something to fail.
    pub(crate) fn settle_forwarded_reads(&mut self) {
        let Some((term, leader)) = self.reads.forward_to else { return };
        if self.role() == Role::Follower && self.term == term && self.leader() == Some(leader) {
            return;
        }
        for (_, batch) in std::mem::take(&mut self.reads.forwarded) {
            self.reads.failed.extend(batch.ctxs);
        }
        self.reads.forward_to = None;
    }

    /// Panics if the read bookkeeping is inconsistent (part of `check_invariants`).
    pub(crate) fn check_read_invariants(&self) {
        let r = &self.reads;
        if !self.is_leader() {
            assert!(
                r.pending.is_empty() && r.awaiting_commit.is_empty() && r.lease_from_tick.is_none(),
                "node {}: a {:?} holds leader reads",
                self.id,
                self.role()
            );
        }
        if !r.forwarded.is_empty() {
            let (term, leader) = r.forward_to.expect("forwarded reads have a destination");
            assert!(
                self.role() == Role::Follower && self.term == term && self.leader() == Some(leader),
                "node {}: forwarded reads outlive their leader {leader} in term {term}",
                self.id
            );
        }
        assert!(
            r.forwarded.values().all(|b| !b.ctxs.is_empty()),
            "node {}: an empty forwarded batch",
            self.id
        );
        assert!(
            r.forwarded.values().rev().skip(1).all(|b| b.sent),
            "node {}: only the newest forwarded batch may be unsent",
            self.id
        );
        let mut last = 0;
        for &(_, index, round) in &r.pending {
            assert!(index <= self.log.committed(), "node {}: read index beyond commit", self.id);
            assert!(round <= r.last_round, "node {}: read round not sent yet", self.id);
            assert!(round == 0 || round >= last, "node {}: read rounds go back", self.id);
            last = last.max(round);
        }
        if let Some(sent) = r.lease_from_tick {
            assert!(sent <= self.now_tick, "node {}: lease from the future", self.id);
            assert!(self.config.check_quorum, "node {}: a lease without check_quorum", self.id);
        }
    }
}
