//! `RawNode`: one Raft peer as a deterministic state machine. Input: `tick`, `step`, `propose`,
//! `snapshot`, `on_persisted`. Output: `ready`. It never touches a clock, socket or file.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::config::{Config, ConfigError};
use crate::log::RaftLog;
use crate::message::{HardState, Message, MessageBody, Snapshot, SnapshotMeta};
use crate::progress::Progress;
use crate::ready::Ready;
use crate::rng::DetRng;
use crate::storage::RecoveredState;
pub use crate::types::Role;
use crate::types::{LogIndex, NodeId, Term};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProposeError {
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("too many uncommitted bytes ({uncommitted} + {proposed} > {limit})")]
    TooManyUncommitted { uncommitted: usize, proposed: usize, limit: usize },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StepError {
    #[error("message for {to} delivered to {me}")]
    WrongRecipient { me: NodeId, to: NodeId },
    #[error("message from {0}, which is not a voter of this cluster")]
    UnknownPeer(NodeId),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("cannot snapshot at {index}: only {applied} has been handed to the application")]
    NotApplied { index: LogIndex, applied: LogIndex },
}

/// A snapshot arriving from the leader, chunk by chunk.
#[derive(Debug)]
pub(crate) struct IncomingSnapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

#[derive(Debug)]
pub struct RawNode {
    pub(crate) config: Config,
    pub(crate) id: NodeId,
    /// The other voters, in id order.
    pub(crate) peers: Vec<NodeId>,
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    pub(crate) log: RaftLog,
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) votes: BTreeMap<NodeId, bool>,
    pub(crate) election_elapsed: u32,
    pub(crate) heartbeat_elapsed: u32,
    pub(crate) randomized_election_timeout: u32,
    /// Ticks since this node started; in-flight bookkeeping is stamped with it.
    pub(crate) now_tick: u64,
    pub(crate) rng: DetRng,
    pub(crate) msgs: Vec<Message>,
    pub(crate) msgs_after_persist: Vec<Message>,
    /// The hard state as last handed to storage.
    pub(crate) persisted_hard_state: HardState,
    pub(crate) snapshot_to_persist: Option<Snapshot>,
    pub(crate) snapshot_to_apply: Option<Snapshot>,
    pub(crate) incoming_snapshot: Option<IncomingSnapshot>,
    /// Leader: new entries wait here for the next `ready()` so that proposals batch.
    pub(crate) pending_broadcast: bool,
    pub(crate) next_ready_number: u64,
    /// Readies handed out but not yet persisted, with the last entry each wrote.
    pub(crate) unpersisted: VecDeque<(u64, Option<(LogIndex, Term)>)>,
    pub(crate) uncommitted_bytes: usize,
    /// Linearizable reads in progress: the leader's, and those a follower forwarded.
    pub(crate) reads: crate::read_index::ReadQueue,
}

impl RawNode {
    /// A peer starting from what its storage recovered (empty for a brand-new peer).
    pub fn new(config: Config, recovered: RecoveredState) -> Result<RawNode, ConfigError> {
        config.validate()?;
        let RecoveredState { hard_state, snapshot, entries } = recovered;
        let log = RaftLog::restore(snapshot, entries, hard_state.commit);
        let peers = config.voters.iter().copied().filter(|v| *v != config.id).collect::<Vec<_>>();
        let mut node = RawNode {
            id: config.id,
            peers,
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader: None,
            log,
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: config.election_timeout_ticks,
            now_tick: 0,
            rng: DetRng::new(config.seed),
            msgs: Vec::new(),
            msgs_after_persist: Vec::new(),
            persisted_hard_state: hard_state,
            snapshot_to_persist: None,
            snapshot_to_apply: None,
            incoming_snapshot: None,
            pending_broadcast: false,
            next_ready_number: 1,
            unpersisted: VecDeque::new(),
            uncommitted_bytes: 0,
            // Its own generator: forwarded reads draw nothing from the election timers' one.
            reads: crate::read_index::ReadQueue::new(
                DetRng::new(config.seed ^ 0x5245_4144_494e_4458).next_u64(),
            ),
            config,
        };
        node.persisted_hard_state.commit = node.log.committed();
        node.reset_election_timer();
        Ok(node)
    }

    // ----- queries -----

    pub fn id(&self) -> NodeId {
        self.id
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    /// The leader this peer currently follows, if it knows one.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }
    pub fn hard_state(&self) -> HardState {
        HardState { term: self.term, vote: self.vote, commit: self.log.committed() }
    }
    pub fn commit_index(&self) -> LogIndex {
        self.log.committed()
    }
    /// The last committed entry handed out in a `Ready`. The driver may not have applied it
    /// yet (its Ready can be waiting for the disk): a state machine keeps its own index.
    pub fn applied_index(&self) -> LogIndex {
        self.log.applied()
    }
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    pub fn progress(&self, peer: NodeId) -> Option<&Progress> {
        self.progress.get(&peer)
    }
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- input -----

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        self.now_tick += 1;
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
        self.expire_forwarded_reads();
        self.settle_forwarded_reads();
    }

    /// Proposes `data` for the log. On success, returns the index and term it will have if it
    /// commits; it commits only if the entry found at that index later carries that term.
    pub fn propose(&mut self, data: Bytes) -> Result<(LogIndex, Term), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader { leader: self.leader });
        }
        let limit = self.config.max_uncommitted_bytes;
        if self.uncommitted_bytes > 0 && self.uncommitted_bytes + data.len() > limit {
            return Err(ProposeError::TooManyUncommitted {
                uncommitted: self.uncommitted_bytes,
                proposed: data.len(),
                limit,
            });
        }
        self.uncommitted_bytes += data.len();
        let index = self.log.append_new(self.term, data);
        self.pending_broadcast = true;
        Ok((index, self.term))
    }

    /// The service has captured its state up to `index` (already handed to it): Raft keeps
    /// the snapshot and drops the log prefix it covers. An index at or below the current
    /// snapshot is ignored.
    pub fn snapshot(&mut self, index: LogIndex, data: Bytes) -> Result<(), SnapshotError> {
        if index > self.log.applied() {
            return Err(SnapshotError::NotApplied { index, applied: self.log.applied() });
        }
        if index <= self.log.snapshot_meta().index {
            return Ok(());
        }
        let snapshot = self.log.compact(index, data);
        self.snapshot_to_persist = Some(snapshot);
        Ok(())
    }

    /// Feeds a message from a peer.
    pub fn step(&mut self, m: Message) -> Result<(), StepError> {
        if m.to != self.id {
            return Err(StepError::WrongRecipient { me: self.id, to: m.to });
        }
        if !self.peers.contains(&m.from) {
            return Err(StepError::UnknownPeer(m.from));
        }
        if m.term > self.term {
            match &m.body {
                // A pre-vote never changes anyone's term; a granted pre-vote comes back with
                // the term the candidate hopes for.
                MessageBody::Vote { pre_vote: true, .. } => {}
                MessageBody::VoteResponse { pre_vote: true, granted: true } => {}
                MessageBody::Vote { pre_vote: false, .. } if self.in_leader_lease() => {
                    // We heard from a live leader recently: ignore the disruption (thesis 4.2.3).
                    self.respond(&m, MessageBody::VoteResponse { pre_vote: false, granted: false });
                    return Ok(());
                }
                body => {
                    let leader = matches!(
                        body,
                        MessageBody::Append { .. }
                            | MessageBody::Heartbeat { .. }
                            | MessageBody::SnapshotChunk { .. }
                    )
                    .then_some(m.from);
                    self.become_follower(m.term, leader);
                }
            }
        } else if m.term < self.term {
            // A stale sender: answer requests with our term so that it catches up; drop the rest.
            if m.body.is_request() {
                self.reject_stale_request(&m);
            } else if let MessageBody::ReadIndexRequest { ctx } = m.body {
                // Refused with our term: the follower learns it and fails its reads at once.
                self.send(m.from, MessageBody::ReadIndexResponse { ctx, index: None });
            }
            return Ok(());
        }
        match m.body.clone() {
            MessageBody::Vote { pre_vote, last_log_index, last_log_term } => {
                self.handle_vote(&m, pre_vote, last_log_index, last_log_term)
            }
            MessageBody::VoteResponse { pre_vote, granted } => {
                self.handle_vote_response(&m, pre_vote, granted)
            }
            MessageBody::Append { prev_log_index, prev_log_term, entries, leader_commit } => {
                self.handle_append(&m, prev_log_index, prev_log_term, entries, leader_commit)
            }
            MessageBody::AppendResponse(result) => self.handle_append_response(m.from, result),
            MessageBody::Heartbeat { commit, read_round } => {
                self.handle_heartbeat(&m, commit, read_round)
            }
            MessageBody::HeartbeatResponse { read_round } => {
                self.handle_heartbeat_response(m.from, read_round)
            }
            MessageBody::SnapshotChunk { meta, offset, data, done } => {
                self.handle_snapshot_chunk(&m, meta, offset, data, done)
            }
            MessageBody::SnapshotResponse(result) => self.handle_snapshot_response(m.from, result),
            MessageBody::ReadIndexRequest { ctx } => self.handle_read_index_request(m.from, ctx),
            MessageBody::ReadIndexResponse { ctx, index } => {
                self.handle_read_index_response(m.from, ctx, index)
            }
        }
        self.settle_forwarded_reads();
        Ok(())
    }

    // ----- output -----

    /// True if `ready()` has something for the driver.
    pub fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || !self.msgs_after_persist.is_empty()
            || self.term_or_vote_unpersisted()
            || self.snapshot_to_persist.is_some()
            || self.snapshot_to_apply.is_some()
            || self.log.has_unstable()
            || self.log.has_committed_to_hand_out()
            || self.reads.has_output()
            || self.reads.has_open_batch()
            || (self.role == Role::Leader
                && (self.pending_broadcast
                    || self.commit_news_pending()
                    || self.reads.needs_round()))
    }

    /// Takes the pending work. See [`Ready`] for what the driver must do with it.
    pub fn ready(&mut self) -> Ready {
        if self.role == Role::Leader {
            self.flush_leader_sends();
        } else {
            self.send_forwarded_reads();
        }
        let number = self.next_ready_number;
        self.next_ready_number += 1;
        let entries = self.log.take_unstable();
        let snapshot = self.snapshot_to_persist.take();
        // The commit index is volatile state (it is relearned from the leader after a
        // restart), so a change of it alone asks for no write and no fsync: it rides along
        // with the next write of entries, a snapshot, the term or the vote. Writing it on its
        // own would cost the leader a second fsync per proposal, serialised behind the first.
        let hs = self.hard_state();
        let write_hard_state = self.term_or_vote_unpersisted()
            || ((!entries.is_empty() || snapshot.is_some()) && hs != self.persisted_hard_state);
        let hard_state = write_hard_state.then_some(hs);
        if write_hard_state {
            self.persisted_hard_state = hs;
        }
        let mut rd = Ready {
            number,
            hard_state,
            snapshot,
            entries,
            messages: std::mem::take(&mut self.msgs),
            persisted_messages: std::mem::take(&mut self.msgs_after_persist),
            apply_snapshot: self.snapshot_to_apply.take(),
            committed_entries: self.log.take_committed(),
            read_states: std::mem::take(&mut self.reads.confirmed),
            failed_reads: std::mem::take(&mut self.reads.failed),
        };
        if rd.must_persist() || !self.unpersisted.is_empty() {
            // The promises in `persisted_messages` hold once this write *and every earlier
            // one still in flight* is durable: a Ready with nothing to write must still wait
            // for its predecessors.
            self.unpersisted.push_back((number, rd.entries.last().map(|e| (e.index, e.term))));
        } else {
            // Nothing to wait for: the promises these messages make are already durable.
            rd.messages.append(&mut rd.persisted_messages);
        }
        rd
    }

    /// Storage made every Ready up to `number` durable.
    pub fn on_persisted(&mut self, number: u64) {
        while let Some(&(n, last)) = self.unpersisted.front() {
            if n > number {
                break;
            }
            self.unpersisted.pop_front();
            if let Some((index, term)) = last {
                self.log.mark_persisted(index, term);
            }
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    // ----- shared helpers -----

    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.msgs.push(Message { from: self.id, to, term: self.term, body });
    }

    /// Queues a response; responses are sent once this node's state is durable.
    pub(crate) fn respond(&mut self, request: &Message, body: MessageBody) {
        self.respond_with_term(request, self.term, body);
    }

    pub(crate) fn respond_with_term(&mut self, request: &Message, term: Term, body: MessageBody) {
        debug_assert!(request.body.is_request());
        self.msgs_after_persist.push(Message { from: self.id, to: request.from, term, body });
    }

    pub(crate) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let base = self.config.election_timeout_ticks;
        self.randomized_election_timeout = base + self.rng.below(base as u64) as u32;
    }

    /// The term or vote changed since the last hard state handed out to be persisted.
    fn term_or_vote_unpersisted(&self) -> bool {
        self.term != self.persisted_hard_state.term || self.vote != self.persisted_hard_state.vote
    }

    /// A follower that heard from its leader within the election timeout: it refuses votes
    /// (thesis 4.2.3), which is also what leader leases rest on. With lease reads a peer
    /// refuses votes for its first election timeout too, as if it had just heard from a
    /// leader: it may have echoed a lease round just before it crashed, and that leader
    /// counts on the echo for an election timeout.
    pub(crate) fn in_leader_lease(&self) -> bool {
        let timeout = self.config.election_timeout_ticks;
        self.config.check_quorum
            && self.election_elapsed < timeout
            && (self.leader.is_some()
                || (self.config.lease_reads && self.now_tick < timeout as u64))
    }

    /// Panics with context if an invariant of this peer is broken. Cheap: the simulator calls
    /// it after every event.
    pub fn check_invariants(&self) {
        self.log.check_invariants();
        self.check_read_invariants();
        assert!(
            self.log.last_term() <= self.term,
            "node {}: last log term above current term",
            self.id
        );
        match self.role {
            Role::Leader => {
                assert_eq!(
                    self.leader,
                    Some(self.id),
                    "node {}: leader does not follow itself",
                    self.id
                );
                assert_eq!(
                    self.vote,
                    Some(self.id),
                    "node {}: leader did not vote for itself",
                    self.id
                );
                for (peer, pr) in &self.progress {
                    assert!(
                        pr.match_index < pr.next_index,
                        "node {}: peer {peer} match >= next",
                        self.id
                    );
                    assert!(
                        pr.match_index <= self.log.last_index(),
                        "node {}: peer {peer} match beyond log",
                        self.id
                    );
                }
            }
            Role::Candidate => assert_eq!(
                self.vote,
                Some(self.id),
                "node {}: candidate without self-vote",
                self.id
            ),
            Role::Follower | Role::PreCandidate => {}
        }
    }
}
