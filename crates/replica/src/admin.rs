//! Cluster administration through the replica: membership changes and leadership transfers,
//! submitted like client requests and answered like them, only once the outcome is known.
//!
//! A membership change is answered when its config entry is applied at the index it was given
//! (the change is then committed: final), or refused at once with the core's reason. If this
//! peer stops leading first, the answer is [`AdminError::Interrupted`]: the entry may or may
//! not commit, and the caller should read the configuration and retry with compare-and-set
//! (`ChangeRequest::expected_config_index`), which makes the retry safe.
//!
//! A transfer is answered once a leader of a later term is known (done), or once the
//! transfer ended with this peer still leading its term (the target refused, or stayed silent
//! for an election timeout), or when no leader emerged within two election timeouts.

use std::collections::{BTreeMap, VecDeque};

use kvraft_raft::{
    ChangeError, ChangeRequest, ConfigState, LogIndex, NodeId, RawNode, Term, TransferError,
};

use crate::RequestId;

/// A cluster administration request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminRequest {
    /// Change the membership (see `kvraft_raft::MembershipChange`).
    ChangeMembership(ChangeRequest),
    /// Hand leadership to `target` (or the most caught-up voter).
    TransferLeadership {
        /// The voter to hand leadership to; `None`: the most caught-up one.
        target: Option<NodeId>,
    },
}

/// What a finished administration request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    /// The change is committed: `config` is the cluster's configuration now, and `node` the
    /// member it was about (the allocated id for an add without one).
    Changed {
        /// The member the change was about.
        node: NodeId,
        /// The committed configuration, with its entry's index.
        config: ConfigState,
    },
    /// Leadership moved: `leader` leads `term`.
    Transferred {
        /// The new leader.
        leader: NodeId,
        /// Its term.
        term: Term,
    },
}

/// Why an administration request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// This peer does not lead: ask `leader`. Nothing was done.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this peer knows of.
        leader: Option<NodeId>,
    },
    /// The change was refused; nothing was done.
    #[error(transparent)]
    Refused(#[from] ChangeError),
    /// The transfer was refused; nothing was done.
    #[error(transparent)]
    TransferRefused(#[from] TransferError),
    /// The transfer ended without a new leader (the target refused, or did not take over
    /// within an election timeout); this peer still leads.
    #[error("the transfer to {target} ended without a new leader")]
    TransferAborted {
        /// The target.
        target: NodeId,
    },
    /// This peer stopped leading before the outcome was known: the change may or may not
    /// take effect. Read the configuration, and retry with compare-and-set.
    #[error("leadership changed before the outcome was known (leader hint: {leader:?})")]
    Interrupted {
        /// The leader this peer knows of now.
        leader: Option<NodeId>,
    },
}

/// The answer to an administration request.
pub type AdminReply = Result<AdminOutcome, AdminError>;

#[derive(Debug)]
struct PendingTransfer {
    /// Every request for this transfer: asking again for the same target joins it.
    ids: Vec<RequestId>,
    target: NodeId,
    term: Term,
    deadline: u64,
}

/// Administration requests waiting for their outcome.
#[derive(Debug, Default)]
pub(crate) struct PendingAdmin {
    /// Membership changes by the index of their config entry: the request, the term the
    /// entry was given in, and the member the change is about.
    changes: BTreeMap<LogIndex, (RequestId, Term, NodeId)>,
    transfer: Option<PendingTransfer>,
    pub(crate) replies: VecDeque<(RequestId, AdminReply)>,
}

impl PendingAdmin {
    pub(crate) fn submit(
        &mut self,
        raft: &mut RawNode,
        id: RequestId,
        req: AdminRequest,
        now: u64,
    ) {
        let reply = match req {
            AdminRequest::ChangeMembership(change) => {
                match raft.propose_membership_change(change) {
                    Ok(proposed) => {
                        self.changes.insert(proposed.index, (id, raft.term(), proposed.node));
                        return;
                    }
                    Err(ChangeError::NotLeader { .. }) => Err(not_leader(raft)),
                    Err(e) => Err(AdminError::Refused(e)),
                }
            }
            AdminRequest::TransferLeadership { target } => match raft.transfer_leadership(target) {
                Ok(target) => {
                    if let Some(same) = self.transfer.as_mut().filter(|t| t.target == target) {
                        // The same transfer asked for again: both requests get its outcome.
                        same.ids.push(id);
                        return;
                    }
                    if let Some(previous) = self.transfer.take() {
                        // A transfer to another target replaced it.
                        let aborted = AdminError::TransferAborted { target: previous.target };
                        for previous_id in previous.ids {
                            self.replies.push_back((previous_id, Err(aborted.clone())));
                        }
                    }
                    let deadline = now + 2 * u64::from(raft.config().election_timeout_ticks);
                    self.transfer = Some(PendingTransfer {
                        ids: vec![id],
                        target,
                        term: raft.term(),
                        deadline,
                    });
                    return;
                }
                Err(TransferError::NotLeader { .. }) => Err(not_leader(raft)),
                Err(e) => Err(AdminError::TransferRefused(e)),
            },
        };
        self.replies.push_back((id, reply));
    }

    /// The config entry at `index`, of term `term`, was applied: the change waiting there, if
    /// it is that entry, is committed.
    pub(crate) fn on_config_applied(&mut self, raft: &RawNode, index: LogIndex, term: Term) {
        let Some((id, proposed_in, node)) = self.changes.remove(&index) else { return };
        let reply = if proposed_in == term {
            let config = raft.log().config_at(index).clone();
            Ok(AdminOutcome::Changed { node, config })
        } else {
            Err(AdminError::Interrupted { leader: raft.leader() })
        };
        self.replies.push_back((id, reply));
    }

    /// After any input: settle what leadership changes decided.
    pub(crate) fn settle(&mut self, raft: &RawNode, now: u64) {
        if let Some((_, (_, term, _))) = self.changes.first_key_value() {
            if !raft.is_leader() || raft.term() != *term {
                let leader = raft.leader().filter(|l| *l != raft.id());
                for (_, (id, _, _)) in std::mem::take(&mut self.changes) {
                    self.replies.push_back((id, Err(AdminError::Interrupted { leader })));
                }
            }
        }
        let Some(transfer) = &self.transfer else { return };
        let reply = if raft.term() > transfer.term {
            match raft.leader() {
                Some(leader) => Ok(AdminOutcome::Transferred { leader, term: raft.term() }),
                None if now >= transfer.deadline => Err(AdminError::Interrupted { leader: None }),
                None => return,
            }
        } else if raft.is_leader() && raft.transfer_target() != Some(transfer.target) {
            Err(AdminError::TransferAborted { target: transfer.target })
        } else if !raft.is_leader() {
            // Stepped down in its own term without a successor known yet: wait for one.
            if now < transfer.deadline {
                return;
            }
            Err(AdminError::Interrupted { leader: raft.leader() })
        } else {
            return;
        };
        for id in self.transfer.take().expect("checked").ids {
            self.replies.push_back((id, reply.clone()));
        }
    }

    /// Requests waiting for an outcome.
    pub(crate) fn len(&self) -> usize {
        self.changes.len() + self.transfer.as_ref().map_or(0, |t| t.ids.len())
    }

    /// Panics unless every waiting change is above the applied index and of a current
    /// leadership.
    pub(crate) fn check_invariants(&self, raft: &RawNode, applied: LogIndex) {
        for (index, (id, term, _)) in &self.changes {
            assert!(*index > applied, "change {id} at {index} outlived the apply of its index");
            assert!(
                raft.is_leader() && raft.term() == *term,
                "change {id} outlived its leadership"
            );
        }
    }
}

/// "Not the leader", with the hint clients get (`leader_hint`: none from a peer that
/// knows it was removed, whose remembered leader no longer talks to it).
fn not_leader(raft: &RawNode) -> AdminError {
    AdminError::NotLeader { leader: crate::leader_hint::leader_hint(raft) }
}
