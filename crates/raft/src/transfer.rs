//! Leadership transfer (Raft thesis 3.10): the leader freezes its log, brings the target up to
//! date, and sends it `TimeoutNow`; the target campaigns at once, and its vote requests say
//! that the leader asked for this, so voters that heard from the leader recently vote anyway.
//!
//! Rules (T1-T7 of `../shared/specs/membership.md`): the target is another voter (or, without
//! one named, the most caught-up voter); proposals and config changes are refused with a
//! "transferring" answer while it runs (no entry can slip in after the target's catch-up
//! point); lease reads stop for the rest of the term once it starts, since the target may win
//! while a lease would still run; it ends when the target wins (this leader sees the higher
//! term), when the target refuses (`TimeoutNowRejected`, at once), or after one election timeout.

use crate::message::{Message, MessageBody, TransferRefusal};
use crate::raw_node::RawNode;
use crate::role::{RoleState, Transfer};
use crate::types::{LogIndex, NodeId};

/// Why a leadership transfer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// Only the leader transfers its leadership.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this peer knows of.
        leader: Option<NodeId>,
    },
    /// The target is this leader.
    #[error("node {0} already leads")]
    ToSelf(NodeId),
    /// The target is a learner or not a member.
    #[error("node {0} is not a voter")]
    NotAVoter(NodeId),
    /// The target was removed from the cluster.
    #[error("node {0} was removed from the cluster")]
    Removed(NodeId),
    /// There is no other voter to hand leadership to.
    #[error("no other voter to hand leadership to")]
    NoOtherVoter,
    /// The transfer under way already sent `TimeoutNow` to its target: that cannot be taken
    /// back (the target campaigns), so another target must wait for the outcome.
    #[error("leadership was already handed to {0} (TimeoutNow sent); wait for the outcome")]
    HandedOver(NodeId),
}

impl RawNode {
    /// Hands leadership to `target` (or, if `None`, to the most caught-up voter). Returns the
    /// target. Asking again for the transfer under way (or for any target, with `None`)
    /// changes nothing; asking for another target restarts the transfer towards it while the
    /// first target is still catching up, and is refused once it was sent `TimeoutNow`.
    pub fn transfer_leadership(&mut self, target: Option<NodeId>) -> Result<NodeId, TransferError> {
        if !self.is_leader() {
            return Err(TransferError::NotLeader { leader: self.leader() });
        }
        let under_way = self.leader_state().transfer;
        let target = match (target, under_way) {
            (Some(target), _) => target,
            (None, Some(transfer)) => return Ok(transfer.target),
            (None, None) => self.most_caught_up_voter().ok_or(TransferError::NoOtherVoter)?,
        };
        if target == self.id {
            return Err(TransferError::ToSelf(target));
        }
        if self.log.config().config.removed.contains(&target) {
            return Err(TransferError::Removed(target));
        }
        if !self.log.membership().is_voter(target) {
            return Err(TransferError::NotAVoter(target));
        }
        if let Some(transfer) = under_way {
            if transfer.target == target {
                return Ok(target);
            }
            // A TimeoutNow cannot be recalled: the first target will campaign whatever this
            // leader says, and a second one racing it would only split the vote.
            if transfer.timeout_now_sent {
                return Err(TransferError::HandedOver(transfer.target));
            }
        }
        self.start_transfer(target);
        Ok(target)
    }

    /// The target of the transfer under way, if this peer leads and is transferring.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.role.leader_state()?.transfer.map(|t| t.target)
    }

    pub(crate) fn start_transfer(&mut self, target: NodeId) {
        let last_index = self.log.last_index();
        let now = self.now_tick;
        let leader = self.leader_state_mut();
        leader.transfer =
            Some(Transfer { target, started_tick: now, last_index, timeout_now_sent: false });
        if !cfg!(feature = "bug-transfer-keeps-lease") {
            leader.leases_off = true;
        }
        self.maybe_send_timeout_now(target);
        if self.leader_state().transfer.is_some_and(|t| !t.timeout_now_sent) {
            self.send_append(target, false);
        }
    }

    /// Sends `TimeoutNow` to `peer` if it is the transfer's target and now holds the frozen log.
    pub(crate) fn maybe_send_timeout_now(&mut self, peer: NodeId) {
        let RoleState::Leader(leader) = &mut self.role else { return };
        let Some(transfer) = &mut leader.transfer else { return };
        if transfer.target != peer || transfer.timeout_now_sent {
            return;
        }
        let caught_up =
            leader.tracker.get(peer).is_some_and(|p| p.match_index >= transfer.last_index);
        if !caught_up {
            return;
        }
        transfer.timeout_now_sent = true;
        let last_index = transfer.last_index;
        self.send(peer, MessageBody::TimeoutNow { last_index });
    }

    /// One leader tick of the transfer: it gives up after an election timeout. True if this
    /// peer stepped down (a leader on its way out whose hand-over failed).
    pub(crate) fn tick_transfer(&mut self) -> bool {
        let Some(transfer) = self.leader_state().transfer else { return false };
        if self.now_tick - transfer.started_tick < self.config.election_timeout_ticks as u64 {
            return false;
        }
        self.end_transfer()
    }

    /// The transfer ended without a new leader: proposals resume (leases stay off for the
    /// term). A leader on its way out steps down instead. True if it stepped down.
    fn end_transfer(&mut self) -> bool {
        self.leader_state_mut().transfer = None;
        if self.leaving() {
            self.become_follower(self.term, None);
            return true;
        }
        false
    }

    pub(crate) fn handle_transfer_refused(&mut self, from: NodeId, _reason: TransferRefusal) {
        if self.transfer_target() == Some(from) {
            self.end_transfer();
        }
    }

    /// The leader asks this peer to take over: campaign now, skipping PreVote, unless this
    /// peer cannot win or should not (then say why, so the leader stops waiting).
    pub(crate) fn handle_timeout_now(&mut self, m: &Message, last_index: LogIndex) {
        if self.is_leader() {
            return;
        }
        let refusal = if self.is_removed() {
            Some(TransferRefusal::Removed)
        } else if !self.log.membership().is_voter(self.id) {
            Some(TransferRefusal::NotAVoter)
        } else if self.incoming_snapshot.is_some() && !self.snapshot_overtaken() {
            Some(TransferRefusal::SnapshotInFlight)
        } else if self.log.last_index() < last_index {
            Some(TransferRefusal::LogBehind)
        } else {
            None
        };
        match refusal {
            Some(reason) => self.send(m.from, MessageBody::TimeoutNowRejected { reason }),
            None => self.become_candidate(true),
        }
    }
}
