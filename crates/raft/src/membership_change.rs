//! The leader's side of membership change: the rules that need its state before a config entry
//! is appended (one change at a time, the term barrier, compare-and-set, quorum safety), what
//! the append changes at once (the peers replicated to, the lease), and what a committed
//! change does (a leader that removed itself hands over). Also the peers' side of removal:
//! tombstoned senders are answered `Removed`, and a peer told so stops for good.
//!
//! The design's rules R1-R13 are cited by number (`../shared/specs/membership.md`).

use crate::conf_change::{next_config, ChangeError, ChangeRequest};
use crate::message::{EntryKind, Message, MessageBody};
use crate::quorum;
use crate::raw_node::RawNode;
use crate::types::{LogIndex, NodeId};

/// A proposed membership change: where its config entry is, and which node it is about (the
/// allocated id for an add without one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProposedChange {
    /// The config entry's index; the change is in effect at once, and final once committed.
    pub index: LogIndex,
    /// The node the change is about.
    pub node: NodeId,
}

/// Heartbeat rounds in which a leader tells a peer whose removal it committed (a lost notice
/// is harmless: a removed peer that speaks is answered `Removed` anyway).
const REMOVAL_NOTICE_ROUNDS: u32 = 3;

impl RawNode {
    /// Proposes a membership change. On success the config entry is in the leader's log and in
    /// effect on it; it is final once committed (`committed_cluster_config`).
    pub fn propose_membership_change(
        &mut self,
        request: ChangeRequest,
    ) -> Result<ProposedChange, ChangeError> {
        let Some(leader) = self.role.leader_state() else {
            return Err(ChangeError::NotLeader { leader: self.leader() });
        };
        if let Some(transfer) = &leader.transfer {
            return Err(ChangeError::Transferring { target: transfer.target });
        }
        if !self.log.membership().is_voter(self.id) {
            // On its way out (R8): it finishes the change that drops it, and takes no other.
            return Err(ChangeError::NotLeader { leader: None });
        }
        let current = self.log.config();
        if let Some(expected) = request.expected_config_index {
            if expected != current.index {
                return Err(ChangeError::ConfigIndexMismatch { expected, current: current.index });
            }
        }
        // R3, Ongaro's barrier: before a new leader commits an entry of its own term, an
        // uncommitted config entry of an earlier leader may still be in some logs, and a change
        // from ours could be two voters away from it. Checked before R2: a config entry
        // inherited from an earlier term commits only under an entry of this one, which the
        // barrier's no-op provides (in lab mode nothing else might ever append one).
        if !self.committed_in_current_term() && !cfg!(feature = "bug-config-before-term-commit") {
            self.append_barrier_noop();
            return Err(ChangeError::TermBarrier);
        }
        // R2: one change at a time, so that two configurations in flight never disagree by
        // more than one voter.
        if current.index > self.log.committed() && !cfg!(feature = "bug-two-pending-configs") {
            return Err(ChangeError::ChangePending { pending: current.index });
        }
        let (next, node) = next_config(&current.config, &request.change)?;
        if !request.force {
            self.check_quorum_safety(&current.config.membership, &next.membership)?;
        }
        let index = self.log.append_new(self.term, EntryKind::Config, next.encode());
        self.after_config_append();
        Ok(ProposedChange { index, node })
    }

    /// A leader that has no entry of its term yet (with `append_noop_on_election` off) appends
    /// the no-op the barrier waits for.
    fn append_barrier_noop(&mut self) {
        if self.log.last_term() != self.term {
            self.log.append_new(self.term, EntryKind::Normal, bytes::Bytes::new());
            self.leader_state_mut().pending_broadcast = true;
        }
    }

    /// R12: refuse a change after which a majority of the new voters would not be known alive:
    /// heard from within an election timeout (the leader itself always is), and for a voter
    /// new to voting, also caught up to the commit index. A member never heard from is never
    /// alive. Going down to two voters or fewer also needs `force`: one failure would then
    /// stop the cluster.
    fn check_quorum_safety(
        &self,
        old: &crate::membership::Membership,
        new: &crate::membership::Membership,
    ) -> Result<(), ChangeError> {
        let voters: Vec<NodeId> = new.voters().collect();
        let old_count = old.voters().count();
        if voters.len() < old_count && voters.len() <= 2 {
            return Err(ChangeError::TooFewVoters { voters: voters.len() });
        }
        let alive = voters.iter().filter(|v| self.counts_as_alive(**v, old.is_voter(**v))).count();
        let needed = quorum::majority(voters.len());
        if alive < needed {
            return Err(ChangeError::WouldLoseQuorum { alive, voters: voters.len(), needed });
        }
        Ok(())
    }

    /// Whether the leader may count `peer` as a live voter of a new configuration.
    fn counts_as_alive(&self, peer: NodeId, already_voter: bool) -> bool {
        if peer == self.id {
            return true;
        }
        let Some(progress) = self.tracker().get(peer) else {
            return false;
        };
        let window = self.config.election_timeout_ticks as u64;
        let recent = progress.last_ack_tick.is_some_and(|at| self.now_tick - at < window);
        // The planted bug counts a voter-to-be that answers but lags as alive: promoted (or
        // added) before it caught up, it cannot help commit, and the cluster may stall.
        let caught_up = self.caught_up(peer) || cfg!(feature = "bug-promote-without-catchup");
        recent && (already_voter || caught_up)
    }

    /// A member holds everything committed and is not being sent a snapshot (R11 (b), R10).
    /// Under a steady write load a member that keeps up is usually a few entries behind the
    /// commit index, so holding the commit index now, or having finished its last catch-up
    /// round within an election timeout (R11 (a)), both count.
    pub(crate) fn caught_up(&self, peer: NodeId) -> bool {
        self.tracker().get(peer).is_some_and(|p| {
            (p.match_index >= self.log.committed() || p.catch_up.caught_up_since.is_some())
                && !matches!(p.mode, crate::progress::ReplicationMode::Snapshot(_))
        })
    }

    /// The leader appended a config entry, in effect at once: replicate to exactly its
    /// members, re-earn any lease from the new voters and count the waiting reads by them
    /// (R13), and commit what the new quorum already holds.
    fn after_config_append(&mut self) {
        let last = self.log.last_index();
        let now = self.now_tick;
        let membership = self.log.membership().clone();
        let leader = self.leader_state_mut();
        leader.tracker.follow_membership(&membership, last);
        leader.lease_floor_tick = Some(now);
        leader.pending_broadcast = true;
        self.recount_reads();
        self.maybe_commit();
    }

    /// After the commit index moved on a leader: a leader whose committed configuration no
    /// longer counts it hands its leadership to the most caught-up voter (R8), then steps down.
    pub(crate) fn after_leader_commit(&mut self) {
        self.announce_removals();
        if !self.leaving() || self.leader_state().transfer.is_some() {
            return;
        }
        match self.most_caught_up_voter() {
            Some(target) => self.start_transfer(target),
            None => self.become_follower(self.term, None),
        }
    }

    /// A removal committed: the removed peers are told `Removed` in the next few heartbeat
    /// rounds (R9), since the leader replicates to them no more and a removed learner, which
    /// never campaigns, would otherwise never hear of it. Removals committed before this
    /// leadership are answered when the removed peer speaks.
    fn announce_removals(&mut self) {
        // Runs at every commit: nothing is copied unless a configuration committed since.
        let committed = self.log.committed_config();
        if committed.index <= self.leader_state().announced_config {
            return;
        }
        let index = committed.index;
        let before = &self.log.config_at(index.prev()).config.removed;
        // The leader itself, if removed, hands over instead (R8): nobody sends to itself.
        let newly: Vec<NodeId> = committed
            .config
            .removed
            .difference(before)
            .copied()
            .filter(|id| *id != self.id)
            .collect();
        let leader = self.leader_state_mut();
        leader.announced_config = index;
        for id in newly {
            leader.removal_notices.insert(id, REMOVAL_NOTICE_ROUNDS);
        }
    }

    /// One heartbeat round of removal notices.
    pub(crate) fn send_removal_notices(&mut self) {
        let config_index = self.log.committed_config().index;
        let leader = self.leader_state_mut();
        let due: Vec<NodeId> = leader.removal_notices.keys().copied().collect();
        leader.removal_notices.retain(|_, rounds| {
            *rounds -= 1;
            *rounds > 0
        });
        for id in due {
            self.send(id, MessageBody::Removed { config_index });
        }
    }

    /// True on a leader whose committed configuration does not count it as a voter.
    pub(crate) fn leaving(&self) -> bool {
        let config = self.log.config();
        config.index <= self.log.committed() && !config.config.membership.is_voter(self.id)
    }

    /// The voter (other than this leader) with the highest match index, ties broken by the
    /// most recent answer.
    pub(crate) fn most_caught_up_voter(&self) -> Option<NodeId> {
        let tracker = self.tracker();
        self.log
            .membership()
            .voters()
            .filter(|v| *v != self.id)
            .filter_map(|v| tracker.get(v).map(|p| (p.match_index, p.last_ack_tick, v)))
            .max()
            .map(|(_, _, v)| v)
    }

    // ----- removed peers (R9) -----

    /// A message from a peer that this peer's committed configuration removed gets `Removed`
    /// and nothing else. True if `m` was turned away.
    pub(crate) fn turn_away_removed(&mut self, m: &Message) -> bool {
        let committed = self.log.committed_config();
        // A leader whose own removal committed hands its leadership over with TimeoutNow
        // (R8): that one message from a removed peer is the point, not a disruption.
        if !committed.config.removed.contains(&m.from)
            || matches!(m.body, MessageBody::TimeoutNow { .. })
        {
            return false;
        }
        if !matches!(m.body, MessageBody::Removed { .. }) {
            let config_index = committed.index;
            self.send(m.from, MessageBody::Removed { config_index });
        }
        true
    }

    /// A member says this peer was removed: stop standing for election for good.
    pub(crate) fn handle_removed(&mut self, config_index: LogIndex) {
        if self.removed_at.is_none() {
            self.removed_at = Some(config_index);
        }
        if !matches!(self.role, crate::role::RoleState::Follower { .. }) {
            self.become_follower(self.term, None);
        }
    }
}
