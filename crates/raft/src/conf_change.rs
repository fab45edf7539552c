//! Membership changes as requests, and the pure rules that turn the current configuration and
//! a request into the next configuration, or a refusal that names the rule.
//!
//! Only single-server changes exist for now (Raft thesis 4.1): the voter sets of two
//! consecutive configurations differ by at most one id, so any majority of the old and any
//! majority of the new share a voter. Learners come and go freely: they never count. New
//! members should come in as learners and be promoted once caught up (a voter with an empty
//! log is a voter that cannot yet help commit anything).
//!
//! The rules that need the leader's state (one change at a time, the term barrier, the
//! quorum-safety check, a transfer in progress) live with the leader in `membership_change`.

use crate::cluster_config::ClusterConfig;
use crate::membership::Membership;
use crate::types::{LogIndex, NodeId};

/// One change to the cluster's membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// A new member that receives the log but does not vote. Without an id the
    /// configuration's next free id is used. With `auto_promote` the leader promotes it
    /// once it has caught up.
    AddLearner {
        /// The new member's id (`None`: the next free one).
        id: Option<NodeId>,
        /// Where it listens (opaque to Raft).
        address: String,
        /// Promote it to voter once it has caught up.
        auto_promote: bool,
    },
    /// A new voter added directly, with whatever log it has (usually none). The quorum-safety
    /// check counts it alive only if it is up and caught up, so the change is refused when the
    /// other voters alone are no majority of the new set; otherwise it goes through, and the
    /// cluster commits without it until it catches up. The learner path is the safe one.
    AddVoter {
        /// The new member's id (`None`: the next free one).
        id: Option<NodeId>,
        /// Where it listens.
        address: String,
    },
    /// A learner becomes a voter.
    Promote {
        /// The learner.
        id: NodeId,
    },
    /// A voter becomes a learner.
    Demote {
        /// The voter.
        id: NodeId,
    },
    /// A member leaves for good: its id is tombstoned and never used again.
    Remove {
        /// The member.
        id: NodeId,
    },
    /// A member's address changes; its role does not.
    SetAddress {
        /// The member.
        id: NodeId,
        /// Its new address.
        address: String,
    },
}

/// A membership change as a client asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRequest {
    /// The change.
    pub change: MembershipChange,
    /// Compare-and-set: refuse unless the current configuration is the one at this index.
    pub expected_config_index: Option<LogIndex>,
    /// Skip the quorum-safety check (and the two-voter rule). For operators who know the
    /// cluster better than the leader's recent contacts do.
    pub force: bool,
}

impl ChangeRequest {
    /// `change`, unconditionally and with every safety check.
    pub fn new(change: MembershipChange) -> ChangeRequest {
        ChangeRequest { change, expected_config_index: None, force: false }
    }
}

/// Why a membership change was refused. Every refusal leaves the configuration as it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// Only the leader changes the configuration.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this peer knows of.
        leader: Option<NodeId>,
    },
    /// An earlier change is not committed yet: one change at a time.
    #[error("the change at index {pending} is not committed yet; retry once it is")]
    ChangePending {
        /// The index of the uncommitted config entry.
        pending: LogIndex,
    },
    /// The leader has not committed an entry of its term yet (Ongaro's barrier); it has
    /// appended one if it needed to. Retry shortly.
    #[error("the new leader has not committed an entry of its term yet; retry shortly")]
    TermBarrier,
    /// Compare-and-set failed: the configuration changed since the caller read it.
    #[error("the configuration is at index {current}, not {expected}")]
    ConfigIndexMismatch {
        /// The index the caller expected.
        expected: LogIndex,
        /// The current configuration's index.
        current: LogIndex,
    },
    /// A leadership transfer is under way; retry once it ends.
    #[error("leadership is being transferred to {target}; retry")]
    Transferring {
        /// The transfer's target.
        target: NodeId,
    },
    /// The id was removed from this cluster: ids are never reused.
    #[error("node {0} was removed from this cluster and can never rejoin under that id")]
    IdRemoved(NodeId),
    /// The id was handed out before (it is below the next free id) but is not a member.
    #[error("node id {id} was handed out before (next free id: {next_id}); ids are never reused")]
    IdReused {
        /// The id asked for.
        id: NodeId,
        /// The lowest id never handed out.
        next_id: NodeId,
    },
    /// Node id 0 is reserved.
    #[error("node id 0 is reserved")]
    ZeroId,
    /// The id already belongs to a member.
    #[error("node {0} is already a member")]
    AlreadyMember(NodeId),
    /// The id belongs to no member.
    #[error("node {0} is not a member")]
    NotAMember(NodeId),
    /// The change needs a learner and the member is a voter.
    #[error("node {0} is a voter, not a learner")]
    NotALearner(NodeId),
    /// The change needs a voter and the member is a learner.
    #[error("node {0} is a learner, not a voter")]
    NotAVoter(NodeId),
    /// The cluster must keep at least one voter.
    #[error("node {0} is the last voter")]
    LastVoter(NodeId),
    /// The new configuration would not have a majority of voters that the leader heard from
    /// recently (and, for a new voter, one that has caught up): it could not commit anything.
    #[error(
        "the new configuration would have {alive} live voters of {voters}, and needs {needed}; \
         use force to override"
    )]
    WouldLoseQuorum {
        /// Voters of the new configuration the leader counts as alive.
        alive: usize,
        /// Voters of the new configuration.
        voters: usize,
        /// A majority of them.
        needed: usize,
    },
    /// The change would leave two voters or fewer (where one failure stops the cluster).
    #[error("the change leaves {voters} voter(s): one failure would stop the cluster; use force")]
    TooFewVoters {
        /// Voters left.
        voters: usize,
    },
    /// Joint configurations are not changed by single-server steps.
    #[error("the configuration is joint; single-server changes need a simple one")]
    JointConfiguration,
}

/// The configuration `change` leads to from `current`, by the rules that need nothing but the
/// two configurations (ids, roles, one voter at a time). Also returns the id the change is
/// about (the allocated one for an add without an id).
pub fn next_config(
    current: &ClusterConfig,
    change: &MembershipChange,
) -> Result<(ClusterConfig, NodeId), ChangeError> {
    let m = &current.membership;
    if m.is_joint() {
        return Err(ChangeError::JointConfiguration);
    }
    let mut voters = m.incoming().clone();
    let mut learners = m.learners().clone();
    let mut next = current.clone();
    let subject = match change {
        MembershipChange::AddLearner { id, address, .. }
        | MembershipChange::AddVoter { id, address } => {
            let id = new_member_id(current, *id)?;
            if matches!(change, MembershipChange::AddVoter { .. }) {
                voters.insert(id);
            } else {
                learners.insert(id);
            }
            if let MembershipChange::AddLearner { auto_promote: true, .. } = change {
                next.auto_promote.insert(id);
            }
            next.removed.remove(&id); // a no-op unless the planted bug let a removed id in
            next.addresses.insert(id, address.clone());
            next.next_id = NodeId(next.next_id.0.max(id.0 + 1));
            id
        }
        MembershipChange::Promote { id } => {
            member(current, *id)?;
            if !learners.remove(id) {
                return Err(ChangeError::NotALearner(*id));
            }
            voters.insert(*id);
            next.auto_promote.remove(id);
            *id
        }
        MembershipChange::Demote { id } => {
            member(current, *id)?;
            if !voters.remove(id) {
                return Err(ChangeError::NotAVoter(*id));
            }
            learners.insert(*id);
            *id
        }
        MembershipChange::Remove { id } => {
            member(current, *id)?;
            voters.remove(id);
            learners.remove(id);
            next.auto_promote.remove(id);
            next.addresses.remove(id);
            next.removed.insert(*id);
            *id
        }
        MembershipChange::SetAddress { id, address } => {
            member(current, *id)?;
            next.addresses.insert(*id, address.clone());
            *id
        }
    };
    if voters.is_empty() {
        return Err(ChangeError::LastVoter(subject));
    }
    next.membership = Membership::joint(voters, [], learners);
    debug_assert!(single_server_step(m, &next.membership));
    debug_assert_eq!(next.validate(), Ok(()));
    Ok((next, subject))
}

/// True if the voter sets of `a` and `b` (both simple) differ by at most one id: the rule
/// that makes every majority of one meet every majority of the other (invariant I2).
pub fn single_server_step(a: &Membership, b: &Membership) -> bool {
    a.incoming().symmetric_difference(b.incoming()).count() <= 1
}

fn member(config: &ClusterConfig, id: NodeId) -> Result<(), ChangeError> {
    if config.removed.contains(&id) {
        return Err(ChangeError::IdRemoved(id));
    }
    if !config.is_member(id) {
        return Err(ChangeError::NotAMember(id));
    }
    Ok(())
}

/// The id a new member gets: the one asked for if it was never handed out, else the next free.
fn new_member_id(config: &ClusterConfig, asked: Option<NodeId>) -> Result<NodeId, ChangeError> {
    let Some(id) = asked else {
        return Ok(config.next_id);
    };
    if id == NodeId(0) {
        return Err(ChangeError::ZeroId);
    }
    if config.is_member(id) {
        return Err(ChangeError::AlreadyMember(id));
    }
    // The planted bug lets a removed id back in (tombstones forgotten), as etcd once did.
    if cfg!(feature = "bug-reuse-removed-id") {
        return Ok(id);
    }
    if config.removed.contains(&id) {
        return Err(ChangeError::IdRemoved(id));
    }
    if id < config.next_id {
        return Err(ChangeError::IdReused { id, next_id: config.next_id });
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn three() -> ClusterConfig {
        ClusterConfig::bootstrap([NodeId(1), NodeId(2), NodeId(3)])
    }

    fn add_learner(id: Option<u64>) -> MembershipChange {
        MembershipChange::AddLearner { id: id.map(NodeId), address: "a".into(), auto_promote: true }
    }

    #[test]
    fn a_learner_is_added_promoted_demoted_and_removed() {
        let (c, id) = next_config(&three(), &add_learner(None)).unwrap();
        assert_eq!(id, NodeId(4));
        assert!(c.membership.is_learner(NodeId(4)) && c.auto_promote.contains(&NodeId(4)));
        assert_eq!(c.next_id, NodeId(5));
        let (c, _) = next_config(&c, &MembershipChange::Promote { id: NodeId(4) }).unwrap();
        assert!(c.membership.is_voter(NodeId(4)) && c.auto_promote.is_empty());
        let (c, _) = next_config(&c, &MembershipChange::Demote { id: NodeId(1) }).unwrap();
        assert!(c.membership.is_learner(NodeId(1)));
        let (c, _) = next_config(&c, &MembershipChange::Remove { id: NodeId(1) }).unwrap();
        assert!(!c.is_member(NodeId(1)) && c.removed.contains(&NodeId(1)));
        assert_eq!(next_config(&c, &add_learner(Some(1))), Err(ChangeError::IdRemoved(NodeId(1))));
        assert_eq!(
            next_config(&c, &MembershipChange::Promote { id: NodeId(1) }),
            Err(ChangeError::IdRemoved(NodeId(1)))
        );
    }

    #[test]
    fn ids_are_never_handed_out_twice() {
        assert_eq!(
            next_config(&three(), &add_learner(Some(2))),
            Err(ChangeError::AlreadyMember(NodeId(2)))
        );
        let (c, _) = next_config(&three(), &add_learner(Some(9))).unwrap();
        assert_eq!(c.next_id, NodeId(10));
        assert_eq!(
            next_config(&c, &add_learner(Some(7))),
            Err(ChangeError::IdReused { id: NodeId(7), next_id: NodeId(10) })
        );
        assert_eq!(next_config(&c, &add_learner(Some(0))), Err(ChangeError::ZeroId));
    }

    #[test]
    fn the_last_voter_stays() {
        let one = ClusterConfig::bootstrap([NodeId(1)]);
        assert_eq!(
            next_config(&one, &MembershipChange::Remove { id: NodeId(1) }),
            Err(ChangeError::LastVoter(NodeId(1)))
        );
        assert_eq!(
            next_config(&one, &MembershipChange::Demote { id: NodeId(1) }),
            Err(ChangeError::LastVoter(NodeId(1)))
        );
    }

    fn change_from(kind: u8, id: u64) -> MembershipChange {
        let id = NodeId(id);
        match kind % 6 {
            0 => MembershipChange::AddLearner {
                id: Some(id),
                address: "x".into(),
                auto_promote: true,
            },
            1 => MembershipChange::AddVoter { id: None, address: "y".into() },
            2 => MembershipChange::Promote { id },
            3 => MembershipChange::Demote { id },
            4 => MembershipChange::Remove { id },
            _ => MembershipChange::SetAddress { id, address: "z".into() },
        }
    }

    proptest! {
        // Whatever sequence of changes is asked for, every accepted step is a single-server
        // step to a valid configuration, and a removed id never comes back.
        #[test]
        fn every_accepted_change_is_one_valid_step(
            changes in proptest::collection::vec((any::<u8>(), 0u64..12), 1..40)
        ) {
            let mut config = three();
            for (kind, id) in changes {
                if let Ok((next, _)) = next_config(&config, &change_from(kind, id)) {
                    prop_assert!(single_server_step(&config.membership, &next.membership));
                    prop_assert_eq!(next.validate(), Ok(()));
                    prop_assert!(config.removed.is_subset(&next.removed));
                    prop_assert!(next.next_id >= config.next_id);
                    config = next;
                }
            }
        }
    }
}
