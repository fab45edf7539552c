//! Who belongs to the cluster and in what capacity, and when some of them make a quorum.
//!
//! A [`Membership`] holds the voters of the configuration being entered (`incoming`), the
//! voters of the configuration being left (`outgoing`), and the learners, which receive the log
//! but never count towards any quorum. Outside a joint configuration `outgoing` is empty, and
//! that is the only shape in use today (one static voter set, from `Config::voters`): the type
//! keeps the joint shape so that membership change (learners, single-server changes, then
//! joint consensus) changes configurations here rather than at every place that counts votes.
//!
//! The rule for every decision is the same (Raft thesis 4.3): it needs a majority of the
//! incoming voters *and* a majority of the outgoing voters, where an empty outgoing set agrees
//! with anything. The arithmetic of one majority lives in [`crate::quorum`]; the tracker asks
//! this type, and only this type, whether a set of answers is a quorum.

use std::collections::{BTreeMap, BTreeSet};

use crate::quorum::{self, VoteResult};
use crate::types::NodeId;

/// The voters and learners of a configuration (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    incoming: BTreeSet<NodeId>,
    outgoing: BTreeSet<NodeId>,
    learners: BTreeSet<NodeId>,
}

impl Membership {
    /// A configuration with one voter set and no learners.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership::joint(voters, [], [])
    }

    /// A configuration of any shape. Panics if `incoming` is empty or a learner is also a
    /// voter: a configuration without voters can decide nothing, and a member is either
    /// counted or not.
    pub fn joint(
        incoming: impl IntoIterator<Item = NodeId>,
        outgoing: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
    ) -> Membership {
        let membership = Membership {
            incoming: incoming.into_iter().collect(),
            outgoing: outgoing.into_iter().collect(),
            learners: learners.into_iter().collect(),
        };
        assert!(!membership.incoming.is_empty(), "a configuration needs at least one voter");
        if let Some(both) = membership.learners.iter().find(|l| membership.is_voter(**l)) {
            panic!("node {both} is both a voter and a learner");
        }
        membership
    }

    /// No configuration: no voters at all. What a peer holds before it is told its cluster's
    /// configuration; such a peer is never a voter, so it never counts anything, and every
    /// quorum question asked of it panics.
    pub fn unknown() -> Membership {
        Membership {
            incoming: BTreeSet::new(),
            outgoing: BTreeSet::new(),
            learners: BTreeSet::new(),
        }
    }

    /// The voters of the configuration being entered (the only voters outside joint consensus).
    pub fn incoming(&self) -> &BTreeSet<NodeId> {
        &self.incoming
    }

    /// The voters of the configuration being left; empty outside joint consensus.
    pub fn outgoing(&self) -> &BTreeSet<NodeId> {
        &self.outgoing
    }

    /// The non-voting members: they receive the log but are never counted in a quorum.
    pub fn learners(&self) -> &BTreeSet<NodeId> {
        &self.learners
    }

    /// True during joint consensus, while a configuration is being left.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Every voter of either half, each once, in id order.
    pub fn voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.incoming.union(&self.outgoing).copied()
    }

    /// True if `id` votes in either half of the configuration.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.incoming.contains(&id) || self.outgoing.contains(&id)
    }

    /// True if `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// Where an election stands, given the answers received so far (`true`: granted; voters
    /// missing from `votes` have not answered, and answers of non-voters are ignored). Won
    /// once each half has a granting majority; lost once some half has a refusing majority.
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        self.assert_known();
        let half = |voters: &BTreeSet<NodeId>| {
            if voters.is_empty() {
                return VoteResult::Won;
            }
            let answer =
                |granted: bool| voters.iter().filter(|v| votes.get(v) == Some(&granted)).count();
            quorum::vote_result(voters.len(), answer(true), answer(false))
        };
        match (half(&self.incoming), half(&self.outgoing)) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }

    /// An empty voter set would agree with anything: nobody may count with it.
    fn assert_known(&self) {
        assert!(!self.incoming.is_empty(), "a quorum question asked of an unknown configuration");
    }

    /// True if the voters for which `agrees` holds make a quorum.
    pub fn has_quorum(&self, agrees: impl Fn(NodeId) -> bool) -> bool {
        self.assert_known();
        let half = |voters: &BTreeSet<NodeId>| {
            voters.is_empty()
                || voters.iter().filter(|v| agrees(**v)).count() >= quorum::majority(voters.len())
        };
        half(&self.incoming) && half(&self.outgoing)
    }

    /// The highest value a quorum has reached, given each voter's value (a match index, or
    /// the ReadIndex round a voter echoed): a majority of each half holds at least this much.
    pub fn quorum_value<T: Ord + Copy>(&self, value_of: impl Fn(NodeId) -> T) -> T {
        let half = |voters: &BTreeSet<NodeId>| {
            let values: Vec<T> = voters.iter().map(|v| value_of(*v)).collect();
            (!values.is_empty()).then(|| quorum::majority_value(&values))
        };
        let incoming = half(&self.incoming).expect("a configuration has incoming voters");
        match half(&self.outgoing) {
            Some(outgoing) => incoming.min(outgoing),
            None => incoming,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(raw: &[u64]) -> Vec<NodeId> {
        raw.iter().copied().map(NodeId).collect()
    }

    /// The ids 1..=8 whose bit is set in `mask`.
    fn pick(mask: u8) -> Vec<NodeId> {
        (1..=8u64).filter(|i| mask >> (i - 1) & 1 == 1).map(NodeId).collect()
    }

    /// A vote per id from a pair of masks: granted, refused, or (neither bit) no answer yet.
    fn votes_from(granted: u8, refused: u8) -> BTreeMap<NodeId, bool> {
        let mut votes: BTreeMap<NodeId, bool> =
            pick(refused).into_iter().map(|v| (v, false)).collect();
        votes.extend(pick(granted).into_iter().map(|v| (v, true)));
        votes
    }

    fn majority_of(voters: &[NodeId], holds: impl Fn(NodeId) -> bool) -> bool {
        voters.iter().filter(|v| holds(**v)).count() >= quorum::majority(voters.len())
    }

    #[test]
    fn a_joint_decision_needs_both_halves() {
        let joint = Membership::joint(ids(&[1, 2, 3]), ids(&[3, 4, 5]), ids(&[6]));
        assert!(joint.is_joint());
        assert_eq!(joint.voters().collect::<Vec<_>>(), ids(&[1, 2, 3, 4, 5]));
        // A majority of the incoming half only: still pending.
        let votes: BTreeMap<NodeId, bool> = [(NodeId(1), true), (NodeId(2), true)].into();
        assert_eq!(joint.vote_result(&votes), VoteResult::Pending);
        // Then a majority of the outgoing half as well.
        let mut votes = votes;
        votes.extend([(NodeId(4), true), (NodeId(5), true)]);
        assert_eq!(joint.vote_result(&votes), VoteResult::Won);
        // A refusing majority of either half loses the election.
        let votes: BTreeMap<NodeId, bool> =
            [(NodeId(1), true), (NodeId(2), true), (NodeId(4), false), (NodeId(5), false)].into();
        assert_eq!(joint.vote_result(&votes), VoteResult::Lost);
        // The learner's answer never counts.
        let votes: BTreeMap<NodeId, bool> = [(NodeId(6), true), (NodeId(1), true)].into();
        assert_eq!(joint.vote_result(&votes), VoteResult::Pending);
        // Indices: the incoming half holds 7 on a majority, the outgoing half only 4.
        let matches: BTreeMap<NodeId, u64> = [(1, 9), (2, 7), (3, 4), (4, 6), (5, 0), (6, 99)]
            .into_iter()
            .map(|(id, m)| (NodeId(id), m))
            .collect();
        assert_eq!(joint.quorum_value(|id| matches[&id]), 4);
        assert!(joint.has_quorum(|id| matches[&id] >= 4));
        assert!(!joint.has_quorum(|id| matches[&id] >= 5));
    }

    #[test]
    fn a_single_voter_decides_alone() {
        let alone = Membership::new(ids(&[7]));
        assert!(!alone.is_joint());
        assert!(alone.has_quorum(|id| id == NodeId(7)));
        assert_eq!(alone.vote_result(&[(NodeId(7), true)].into()), VoteResult::Won);
        assert_eq!(alone.quorum_value(|_| 3u64), 3);
    }

    #[test]
    #[should_panic(expected = "both a voter and a learner")]
    fn a_learner_is_not_a_voter() {
        Membership::joint(ids(&[1, 2]), ids(&[3]), ids(&[3]));
    }

    proptest! {
        // Outside joint consensus the configuration decides exactly as one majority does.
        #[test]
        fn with_an_empty_outgoing_half_it_is_a_simple_majority(
            voters in 1u8..=255, learners in any::<u8>(), granted in any::<u8>(),
            refused in any::<u8>(), values in proptest::collection::vec(0u64..20, 8),
        ) {
            let voters = pick(voters);
            let learners: Vec<NodeId> =
                pick(learners).into_iter().filter(|l| !voters.contains(l)).collect();
            let simple = Membership::joint(voters.clone(), [], learners);
            let votes = votes_from(granted, refused);
            let count = |g: bool| voters.iter().filter(|v| votes.get(v) == Some(&g)).count();
            prop_assert_eq!(
                simple.vote_result(&votes),
                quorum::vote_result(voters.len(), count(true), count(false))
            );
            let value_of = |id: NodeId| values[id.0 as usize - 1];
            let voter_values: Vec<u64> = voters.iter().map(|v| value_of(*v)).collect();
            prop_assert_eq!(simple.quorum_value(value_of), quorum::majority_value(&voter_values));
            let agrees = |id: NodeId| votes.get(&id) == Some(&true);
            prop_assert_eq!(simple.has_quorum(agrees), majority_of(&voters, agrees));
        }

        // With both halves, each decision is the conjunction of the two halves' decisions,
        // checked against the definition by counting.
        #[test]
        fn a_joint_decision_is_a_majority_of_each_half(
            incoming in 1u8..=255, outgoing in any::<u8>(), granted in any::<u8>(),
            refused in any::<u8>(), values in proptest::collection::vec(0u64..20, 8),
        ) {
            let (incoming, outgoing) = (pick(incoming), pick(outgoing));
            let joint = Membership::joint(incoming.clone(), outgoing.clone(), []);
            let votes = votes_from(granted, refused);
            let agrees = |id: NodeId| votes.get(&id) == Some(&true);
            let both = |holds: &dyn Fn(NodeId) -> bool| {
                majority_of(&incoming, holds) && (outgoing.is_empty() || majority_of(&outgoing, holds))
            };
            prop_assert_eq!(joint.has_quorum(agrees), both(&agrees));
            let refuses = |id: NodeId| votes.get(&id) == Some(&false);
            let lost = majority_of(&incoming, refuses)
                || (!outgoing.is_empty() && majority_of(&outgoing, refuses));
            let want = if both(&agrees) {
                VoteResult::Won
            } else if lost {
                VoteResult::Lost
            } else {
                VoteResult::Pending
            };
            prop_assert_eq!(joint.vote_result(&votes), want);
            // The quorum value is reached by a quorum, and no higher value is.
            let value_of = |id: NodeId| values[id.0 as usize - 1];
            let v = joint.quorum_value(value_of);
            prop_assert!(both(&|id| value_of(id) >= v));
            prop_assert!(!both(&|id| value_of(id) > v));
        }

        // Learners receive the log but never count: adding them, whatever they answer or hold,
        // changes no decision.
        #[test]
        fn learners_never_count(
            incoming in 1u8..=255, outgoing in any::<u8>(), learners in any::<u8>(),
            granted in any::<u8>(), refused in any::<u8>(),
            values in proptest::collection::vec(0u64..20, 8),
        ) {
            let (incoming, outgoing) = (pick(incoming), pick(outgoing));
            let learners: Vec<NodeId> = pick(learners)
                .into_iter()
                .filter(|l| !incoming.contains(l) && !outgoing.contains(l))
                .collect();
            let without = Membership::joint(incoming.clone(), outgoing.clone(), []);
            let with = Membership::joint(incoming, outgoing, learners);
            let votes = votes_from(granted, refused);
            prop_assert_eq!(with.vote_result(&votes), without.vote_result(&votes));
            let value_of = |id: NodeId| values[id.0 as usize - 1];
            prop_assert_eq!(with.quorum_value(value_of), without.quorum_value(value_of));
            let agrees = |id: NodeId| votes.get(&id) == Some(&true);
            prop_assert_eq!(with.has_quorum(agrees), without.has_quorum(agrees));
        }

        // The root of safety under joint consensus: two quorums share a voter of the incoming
        // half and, when there is one, a voter of the outgoing half.
        #[test]
        fn two_quorums_meet_in_each_half(
            incoming in 1u8..=255, outgoing in any::<u8>(), a in any::<u8>(), b in any::<u8>(),
        ) {
            let joint = Membership::joint(pick(incoming), pick(outgoing), []);
            let (a, b) = (pick(a), pick(b));
            if joint.has_quorum(|id| a.contains(&id)) && joint.has_quorum(|id| b.contains(&id)) {
                let shared = |half: &BTreeSet<NodeId>| half.iter().any(|v| a.contains(v) && b.contains(v));
                prop_assert!(shared(joint.incoming()));
                prop_assert!(joint.outgoing().is_empty() || shared(joint.outgoing()));
            }
        }
    }
}
