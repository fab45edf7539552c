//! `RawNode`: one Raft peer as a deterministic state machine. Input: `tick`, `step`, `propose`,
//! `snapshot`, `on_persisted`. Output: `ready`. It never touches a clock, socket or file.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::cluster_config::{ClusterConfig, ConfigState};
use crate::config::{Config, ConfigError};
use crate::forwarded_reads::ForwardedReads;
use crate::log::RaftLog;
use crate::message::{
    AppendResult, EntryKind, HardState, Message, MessageBody, Snapshot, SnapshotMeta,
    SnapshotResult,
};
use crate::progress::Progress;
use crate::ready::{ReadState, Ready};
use crate::rng::DetRng;
use crate::role::{LeaderState, RoleState};
use crate::storage::RecoveredState;
use crate::tracker::Tracker;
pub use crate::types::Role;
use crate::types::{LogIndex, NodeId, ReadRound, ReadyNumber, Term};

/// Why `RawNode::propose` refused an entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProposeError {
    /// Only the leader accepts proposals.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this peer knows of, if any: where the client should go.
        leader: Option<NodeId>,
    },
    /// Leadership is being handed to `target`: retry there shortly.
    #[error("leadership is being transferred to {target}")]
    Transferring {
        /// The transfer's target, the likely next leader.
        target: NodeId,
    },
    /// The uncommitted tail would outgrow its limit: back-pressure while a quorum lags.
    #[error("too many uncommitted bytes ({uncommitted} + {proposed} > {limit})")]
    TooManyUncommitted {
        /// Bytes already appended and not yet committed.
        uncommitted: usize,
        /// Bytes of the refused proposal.
        proposed: usize,
        /// `Config::max_uncommitted_bytes`.
        limit: usize,
    },
}

/// Why `RawNode::step` refused a message (a routing mistake by the driver).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StepError {
    /// The message is addressed to another peer.
    #[error("message for {to} delivered to {me}")]
    WrongRecipient {
        /// This peer.
        me: NodeId,
        /// The recipient the message names.
        to: NodeId,
    },
    /// The message claims to come from this peer itself.
    #[error("message from {0} to itself")]
    FromItself(NodeId),
}

/// Why `RawNode::snapshot` refused to compact the log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// The application cannot have a state at an index it was not given yet.
    #[error("cannot snapshot at {index}: only {applied} has been handed to the application")]
    NotApplied {
        /// The index asked for.
        index: LogIndex,
        /// The last index handed out for applying.
        applied: LogIndex,
    },
}

/// A snapshot arriving from the leader, chunk by chunk.
#[derive(Debug)]
pub(crate) struct IncomingSnapshot {
    pub meta: SnapshotMeta,
    pub config: ConfigState,
    pub data: Vec<u8>,
}

/// One Raft peer as a deterministic state machine: the driver feeds it ticks, messages and
/// proposals, and carries out the `Ready`s it hands back (see the crate docs).
#[derive(Debug)]
pub struct RawNode {
    pub(crate) config: Config,
    pub(crate) id: NodeId,
    /// A peer of the cluster told this one that its committed configuration removed it (the
    /// index of that configuration). Such a peer never campaigns again.
    pub(crate) removed_at: Option<LogIndex>,
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    /// The role, with the state that lives exactly as long as the role does.
    pub(crate) role: RoleState,
    pub(crate) log: RaftLog,
    pub(crate) election_elapsed: u32,
    pub(crate) randomized_election_timeout: u32,
    /// Ticks since this node started; in-flight bookkeeping is stamped with it.
    pub(crate) now_tick: u64,
    pub(crate) rng: DetRng,
    /// Messages for the next Ready's `messages`: they promise nothing durable.
    pub(crate) messages: Vec<Message>,
    /// Messages for the next Ready's `persisted_messages`: they may leave only once this
    /// node's state up to that Ready is durable.
    pub(crate) persisted_messages: Vec<Message>,
    /// The hard state as last handed to storage.
    pub(crate) persisted_hard_state: HardState,
    pub(crate) snapshot_to_persist: Option<Snapshot>,
    pub(crate) snapshot_to_apply: Option<Snapshot>,
    /// Kept across role changes: a follower that briefly campaigned may resume a transfer
    /// from the same leader where it stopped.
    pub(crate) incoming_snapshot: Option<IncomingSnapshot>,
    pub(crate) next_ready_number: ReadyNumber,
    /// Readies handed out but not yet persisted, with the last entry each wrote.
    pub(crate) unpersisted: VecDeque<(ReadyNumber, Option<(LogIndex, Term)>)>,
    /// The latest ReadIndex round this peer sent as leader (rounds outlive leaderships).
    pub(crate) read_round: ReadRound,
    /// Reads this peer forwarded to its leader as a follower. They are failed, in
    /// `settle_forwarded_reads`, once it no longer follows the leader and term they went to.
    pub(crate) forwarded_reads: ForwardedReads,
    /// Reads confirmed since the last Ready, for the next one.
    pub(crate) read_states: Vec<ReadState>,
    /// Reads failed since the last Ready, for the next one.
    pub(crate) failed_reads: Vec<u64>,
}

impl RawNode {
    /// A peer starting from what its storage recovered (empty for a brand-new peer).
    pub fn new(config: Config, recovered: RecoveredState) -> Result<RawNode, ConfigError> {
        config.validate()?;
        let RecoveredState { hard_state, snapshot, entries } = recovered;
        let mut log = RaftLog::restore(snapshot, entries, hard_state.commit);
        // Storage without a configuration: the bootstrap voters, in memory. A driver that wants
        // the first configuration durable writes `Snapshot::bootstrap` to the empty storage
        // before the first start (as etcd and raft-rs bootstrap their storage), so that a
        // restart never needs the bootstrap voters again.
        if !config.voters.is_empty() {
            log.bootstrap_config(ClusterConfig::bootstrap(config.voters.iter().copied()));
        }
        let mut node = RawNode {
            id: config.id,
            removed_at: None,
            term: hard_state.term,
            vote: hard_state.vote,
            role: RoleState::Follower { leader: None },
            log,
            election_elapsed: 0,
            randomized_election_timeout: config.election_timeout_ticks,
            now_tick: 0,
            rng: DetRng::new(config.seed),
            messages: Vec::new(),
            persisted_messages: Vec::new(),
            persisted_hard_state: hard_state,
            snapshot_to_persist: None,
            snapshot_to_apply: None,
            incoming_snapshot: None,
            next_ready_number: ReadyNumber(1),
            unpersisted: VecDeque::new(),
            read_round: ReadRound::NONE,
            // Its own generator: forwarded reads draw nothing from the election timers' one.
            forwarded_reads: ForwardedReads::new(
                DetRng::new(config.seed ^ 0x5245_4144_494e_4458).next_u64(),
            ),
            read_states: Vec::new(),
            failed_reads: Vec::new(),
            config,
        };
        node.persisted_hard_state.commit = node.log.committed();
        node.reset_election_timer();
        Ok(node)
    }

    // ----- queries -----

    /// This peer's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }
    /// The current role.
    pub fn role(&self) -> Role {
        self.role.role()
    }
    /// True if this peer leads in its current term.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
    }
    /// The leader this peer currently follows (itself, if it leads), if it knows one.
    pub fn leader(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Follower { leader } => *leader,
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => None,
            RoleState::Leader(_) => Some(self.id),
        }
    }
    /// The candidate voted for in the current term, if any.
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }
    /// The current term, vote and commit index, as storage would hold them.
    pub fn hard_state(&self) -> HardState {
        HardState { term: self.term, vote: self.vote, commit: self.log.committed() }
    }
    /// The highest index known committed.
    pub fn commit_index(&self) -> LogIndex {
        self.log.committed()
    }
    /// The last committed entry handed out in a `Ready`. The driver may not have applied it
    /// yet (its Ready can be waiting for the disk): a state machine keeps its own index.
    pub fn applied_index(&self) -> LogIndex {
        self.log.applied()
    }
    /// The index of the last entry in the log.
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }
    /// The log, for inspection.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    /// What this peer, if it leads, knows of `peer`'s log.
    pub fn progress(&self, peer: NodeId) -> Option<&Progress> {
        self.role.leader_state()?.tracker.get(peer)
    }
    /// The configuration this peer runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The cluster configuration in effect on this peer (the latest in its log, committed or
    /// not), with the index of the entry that carries it.
    pub fn cluster_config(&self) -> &ConfigState {
        self.log.config()
    }
    /// The latest cluster configuration this peer knows to be committed.
    pub fn committed_cluster_config(&self) -> &ConfigState {
        self.log.committed_config()
    }
    /// True if this peer knows it was removed from the cluster (by its own committed
    /// configuration, or because a member told it so): it will never campaign again.
    pub fn is_removed(&self) -> bool {
        self.removed_at.is_some() || self.log.committed_config().config.removed.contains(&self.id)
    }

    // ----- input -----

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        self.now_tick += 1;
        if self.is_leader() {
            self.tick_leader();
        } else {
            self.tick_election();
        }
        self.expire_forwarded_reads();
        self.settle_forwarded_reads();
    }

    /// Proposes `data` for the log. On success, returns the index and term it will have if it
    /// commits; it commits only if the entry found at that index later carries that term.
    pub fn propose(&mut self, data: Bytes) -> Result<(LogIndex, Term), ProposeError> {
        let limit = self.config.max_uncommitted_bytes;
        let voter = self.log.membership().is_voter(self.id);
        let RoleState::Leader(leader) = &mut self.role else {
            return Err(ProposeError::NotLeader { leader: self.leader() });
        };
        if let Some(transfer) = &leader.transfer {
            return Err(ProposeError::Transferring { target: transfer.target });
        }
        if !voter {
            // A leader on its way out (its configuration no longer counts it) takes nothing
            // new: it only finishes committing the change, then hands over (thesis 4.2.2).
            return Err(ProposeError::NotLeader { leader: None });
        }
        if let Err(uncommitted) = leader.admit_proposal(data.len(), limit) {
            return Err(ProposeError::TooManyUncommitted {
                uncommitted,
                proposed: data.len(),
                limit,
            });
        }
        let index = self.log.append_new(self.term, EntryKind::Normal, data);
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
        if m.from == self.id {
            return Err(StepError::FromItself(m.from));
        }
        // Messages are handled whatever this peer's configuration says of the sender (thesis
        // 4.1: a learner promoted by an entry it lacks must still be able to vote, and a
        // leader may replicate to peers it is removing). Only a removed peer is turned away.
        if self.turn_away_removed(&m) {
            return Ok(());
        }
        if let MessageBody::Removed { config_index } = m.body {
            self.handle_removed(config_index);
            return Ok(());
        }
        if m.term > self.term {
            match &m.body {
                // A pre-vote never changes anyone's term; a granted pre-vote comes back with
                // the term the candidate hopes for.
                MessageBody::Vote { pre_vote: true, .. } => {}
                MessageBody::VoteResponse { pre_vote: true, granted: true } => {}
                // A vote asked for on the leader's behalf (`TimeoutNow`) is the exception.
                MessageBody::Vote { pre_vote: false, leadership_transfer: false, .. }
                    if self.in_leader_lease() =>
                {
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
            MessageBody::Vote { pre_vote, last_log_index, last_log_term, .. } => {
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
                self.handle_heartbeat_response(m.from, ReadRound(read_round))
            }
            MessageBody::SnapshotChunk { meta, config, offset, data, done } => {
                self.handle_snapshot_chunk(&m, meta, config, offset, data, done)
            }
            MessageBody::SnapshotResponse(result) => self.handle_snapshot_response(m.from, result),
            MessageBody::ReadIndexRequest { ctx } => self.handle_read_index_request(m.from, ctx),
            MessageBody::ReadIndexResponse { ctx, index } => {
                self.handle_read_index_response(m.from, ctx, index)
            }
            MessageBody::TimeoutNow { last_index } => self.handle_timeout_now(&m, last_index),
            MessageBody::TimeoutNowRejected { reason } => {
                self.handle_transfer_refused(m.from, reason)
            }
            MessageBody::Removed { .. } => unreachable!("handled above"),
        }
        self.settle_forwarded_reads();
        Ok(())
    }

    // ----- output -----

    /// Whether a message from `Ready::persisted_messages` may still leave now that its write is
    /// durable. An acknowledgement of entries (an accepted append, an installed snapshot)
    /// speaks for the log as it was in the term it was made in. If this peer has since moved to
    /// a later term, a later leader may have replaced the acknowledged entries, possibly in the
    /// very group write that just became durable: sent now, it would let the old leader count
    /// entries this peer no longer holds towards a commit. Such an acknowledgement is dropped
    /// (the old leader is deposed anyway). Nothing else goes stale: a vote's promise holds
    /// across terms, since a peer never votes in an earlier term again.
    pub fn promise_holds(&self, message: &Message) -> bool {
        let acknowledges_entries = matches!(
            message.body,
            MessageBody::AppendResponse(AppendResult::Accepted { .. })
                | MessageBody::SnapshotResponse(SnapshotResult::Installed { .. })
        );
        !acknowledges_entries || message.term == self.term
    }

    /// True if `ready()` has something for the driver.
    pub fn has_ready(&self) -> bool {
        !self.messages.is_empty()
            || !self.persisted_messages.is_empty()
            || self.term_or_vote_unpersisted()
            || self.snapshot_to_persist.is_some()
            || self.snapshot_to_apply.is_some()
            || self.log.has_unstable()
            || self.log.has_committed_to_hand_out()
            || !self.read_states.is_empty()
            || !self.failed_reads.is_empty()
            || self.forwarded_reads.has_open_batch()
            || self.role.leader_state().is_some_and(|leader| {
                leader.pending_broadcast
                    || leader.tracker.commit_news_pending(self.log.committed())
                    || leader.reads.needs_round()
            })
    }

    /// Takes the pending work. See [`Ready`] for what the driver must do with it.
    pub fn ready(&mut self) -> Ready {
        if self.is_leader() {
            self.flush_leader_sends();
        } else {
            self.send_forwarded_reads();
        }
        let number = self.next_ready_number;
        self.next_ready_number = ReadyNumber(number.0 + 1);
        let entries = self.log.take_unstable();
        let snapshot = self.snapshot_to_persist.take();
        // The commit index is volatile state (it is relearned from the leader after a
        // restart), so a change of it alone asks for no write and no fsync: it rides along
        // with the next write of entries, a snapshot, the term or the vote. Writing it on its
        // own would cost the leader a second fsync per proposal, serialised behind the first.
        let current = self.hard_state();
        let write_hard_state = self.term_or_vote_unpersisted()
            || ((!entries.is_empty() || snapshot.is_some())
                && current != self.persisted_hard_state);
        let hard_state = write_hard_state.then_some(current);
        if write_hard_state {
            self.persisted_hard_state = current;
        }
        let mut ready = Ready {
            number,
            hard_state,
            snapshot,
            entries,
            messages: std::mem::take(&mut self.messages),
            persisted_messages: std::mem::take(&mut self.persisted_messages),
            apply_snapshot: self.snapshot_to_apply.take(),
            committed_entries: self.log.take_committed(),
            read_states: std::mem::take(&mut self.read_states),
            failed_reads: std::mem::take(&mut self.failed_reads),
        };
        if ready.must_persist() || !self.unpersisted.is_empty() {
            // The promises in `persisted_messages` hold once this write *and every earlier
            // one still in flight* is durable: a Ready with nothing to write must still wait
            // for its predecessors.
            let last = ready.entries.last().map(|e| (e.index, e.term));
            self.unpersisted.push_back((number, last));
        } else {
            // Nothing to wait for: the promises these messages make are already durable.
            ready.messages.append(&mut ready.persisted_messages);
        }
        ready
    }

    /// Storage made every Ready up to `number` durable.
    pub fn on_persisted(&mut self, number: ReadyNumber) {
        while let Some(&(n, last)) = self.unpersisted.front() {
            if n > number {
                break;
            }
            self.unpersisted.pop_front();
            if let Some((index, term)) = last {
                self.log.mark_persisted(index, term);
            }
        }
        if self.is_leader() {
            self.maybe_commit();
        }
    }

    // ----- shared helpers -----

    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.messages.push(Message { from: self.id, to, term: self.term, body });
    }

    /// Queues a response; responses are sent once this node's state is durable.
    pub(crate) fn respond(&mut self, request: &Message, body: MessageBody) {
        self.respond_with_term(request, self.term, body);
    }

    pub(crate) fn respond_with_term(&mut self, request: &Message, term: Term, body: MessageBody) {
        debug_assert!(request.body.is_request());
        self.persisted_messages.push(Message { from: self.id, to: request.from, term, body });
    }

    /// The leader's own state; only code that runs while leading asks for it.
    pub(crate) fn leader_state(&self) -> &LeaderState {
        match &self.role {
            RoleState::Leader(state) => state,
            other => unreachable!("node {}: a {:?} has no leader state", self.id, other.role()),
        }
    }

    pub(crate) fn leader_state_mut(&mut self) -> &mut LeaderState {
        match &mut self.role {
            RoleState::Leader(state) => state,
            other => unreachable!("node {}: a {:?} has no leader state", self.id, other.role()),
        }
    }

    /// The leader's view of its followers; only code that runs while leading asks for it.
    pub(crate) fn tracker(&self) -> &Tracker {
        &self.leader_state().tracker
    }

    pub(crate) fn tracker_mut(&mut self) -> &mut Tracker {
        &mut self.leader_state_mut().tracker
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
            && (self.leader().is_some()
                || (self.config.lease_reads && self.now_tick < timeout as u64))
    }
}
