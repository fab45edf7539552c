//! Every decision that needs a quorum, in one place: the leader's [`Tracker`] (what it knows of
//! each follower: the commit index, whether a quorum is recently active, which ReadIndex round
//! a quorum has echoed) and a candidate's [`Poll`] (how an election stands).
//!
//! Both count through [`Membership`], so a configuration change reaches every decision by
//! changing the membership and the tracker's set of followers, and nothing else. The leader is
//! never one of its own followers: what its storage made durable stands for its match index,
//! it is always recently active, and it has seen every read round it sent.

use std::collections::{BTreeMap, BTreeSet};

use crate::log::RaftLog;
use crate::membership::Membership;
use crate::progress::{Progress, ReplicationMode};
use crate::quorum::{self, VoteResult};
use crate::types::{LogIndex, NodeId, ReadRound, Term};

/// The leader's view of its followers. It exists only while its owner leads.
#[derive(Debug)]
pub(crate) struct Tracker {
    /// The leader itself.
    leader: NodeId,
    /// One entry per member (voter or learner) other than the leader.
    progress: BTreeMap<NodeId, Progress>,
}

impl Tracker {
    /// A new leader's view: nothing known of any follower, and the next entry to send to each
    /// is the one after the leader's last.
    pub(crate) fn new(membership: &Membership, leader: NodeId, last_index: LogIndex) -> Tracker {
        let mut tracker = Tracker { leader, progress: BTreeMap::new() };
        tracker.follow_membership(membership, last_index);
        tracker
    }

    /// The configuration changed: track every member other than the leader, keeping what is
    /// known of those that stay; a new member starts with nothing known, probed from the
    /// leader's last index.
    pub(crate) fn follow_membership(&mut self, membership: &Membership, last_index: LogIndex) {
        let members = tracked_members(membership, self.leader);
        self.progress.retain(|id, _| members.contains(id));
        for id in members {
            self.progress.entry(id).or_insert_with(|| Progress::new(last_index));
        }
    }

    /// The follower's progress, if it is tracked (answers from others are ignored).
    pub(crate) fn get_mut(&mut self, peer: NodeId) -> Option<&mut Progress> {
        self.progress.get_mut(&peer)
    }

    /// The followers in id order: a copy, so that the caller may send to them as it goes.
    pub(crate) fn followers(&self) -> Vec<NodeId> {
        self.progress.keys().copied().collect()
    }

    pub(crate) fn has_followers(&self) -> bool {
        !self.progress.is_empty()
    }

    pub(crate) fn get(&self, peer: NodeId) -> Option<&Progress> {
        self.progress.get(&peer)
    }

    /// Every follower's progress, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (NodeId, &Progress)> {
        self.progress.iter().map(|(peer, progress)| (*peer, progress))
    }

    pub(crate) fn progress(&self, peer: NodeId) -> &Progress {
        self.progress.get(&peer).expect("progress for every peer")
    }

    pub(crate) fn progress_mut(&mut self, peer: NodeId) -> &mut Progress {
        self.progress.get_mut(&peer).expect("progress for every peer")
    }

    // ----- quorum decisions -----

    /// The index this leader may commit now, if any: the highest index a quorum holds (the
    /// leader counting what its own storage made durable), provided the commit rule of
    /// [`quorum::committable_index`] lets an entry of that term commit.
    pub(crate) fn committable_index(
        &self,
        membership: &Membership,
        log: &RaftLog,
        term: Term,
    ) -> Option<LogIndex> {
        let held = membership.quorum_value(|id| {
            if id == self.leader {
                log.persisted()
            } else {
                self.progress.get(&id).map_or(LogIndex::ZERO, |p| p.match_index)
            }
        });
        quorum::committable_index(held, log.committed(), term, |i| log.term(i))
    }

    /// True if a quorum has been heard from since the last check-quorum round (thesis 6.2).
    pub(crate) fn quorum_recently_active(&self, membership: &Membership) -> bool {
        membership.has_quorum(|id| {
            id == self.leader || self.progress.get(&id).is_some_and(|p| p.recent_active)
        })
    }

    /// A new check-quorum round starts: every follower must be heard from again.
    pub(crate) fn forget_recent_activity(&mut self) {
        for progress in self.progress.values_mut() {
            progress.recent_active = false;
        }
    }

    /// The latest ReadIndex round a quorum has echoed in this term. The leader has seen every
    /// round it sent; a follower that has not echoed in this term counts as no round.
    pub(crate) fn quorum_read_round(&self, membership: &Membership) -> ReadRound {
        membership.quorum_value(|id| {
            if id == self.leader {
                ReadRound::ALL
            } else {
                self.progress.get(&id).map_or(ReadRound::NONE, |p| p.echoed_read_round)
            }
        })
    }

    /// True if the leader's own say is a quorum (a single-voter cluster): reads need no round.
    pub(crate) fn leader_alone_is_quorum(&self, membership: &Membership) -> bool {
        membership.has_quorum(|id| id == self.leader)
    }

    // ----- not quorum decisions, but about every follower -----

    /// True if `peer` holds committed entries that it has not been told are committed.
    pub(crate) fn owes_commit_news(&self, peer: NodeId, committed: LogIndex) -> bool {
        let progress = self.progress(peer);
        progress.sent_commit < progress.match_index.min(committed)
    }

    /// True if some follower is owed commit news.
    pub(crate) fn commit_news_pending(&self, committed: LogIndex) -> bool {
        self.progress.keys().any(|peer| self.owes_commit_news(*peer, committed))
    }

    /// Panics if the tracker does not describe `membership` as seen by its leader, or a
    /// follower's progress is inconsistent with the leader's log or its own bookkeeping.
    pub(crate) fn check_invariants(
        &self,
        membership: &Membership,
        log: &RaftLog,
        max_inflight: usize,
    ) {
        let leader = self.leader;
        let members = tracked_members(membership, leader);
        assert!(
            self.progress.keys().eq(members.iter()),
            "node {leader}: tracks {:?}, but the other members are {members:?}",
            self.progress.keys().collect::<Vec<_>>(),
        );
        let (last_index, committed) = (log.last_index(), log.committed());
        for (peer, progress) in &self.progress {
            assert!(
                progress.match_index < progress.next_index,
                "node {leader}: peer {peer} match >= next"
            );
            assert!(
                progress.next_index <= last_index.next(),
                "node {leader}: peer {peer} next beyond the log"
            );
            assert!(
                progress.sent_commit <= committed,
                "node {leader}: peer {peer} was told of a commit beyond ours"
            );
            if let ReplicationMode::Replicate { inflight } = &progress.mode {
                assert!(inflight.len() <= max_inflight, "node {leader}: peer {peer} overflows");
                let mut last = progress.match_index;
                for &(sent, _) in inflight {
                    assert!(
                        last < sent && sent < progress.next_index,
                        "node {leader}: peer {peer} has appends in flight out of order"
                    );
                    last = sent;
                }
            }
        }
    }
}

/// Every member but the leader: the peers a leader replicates to.
fn tracked_members(membership: &Membership, leader: NodeId) -> BTreeSet<NodeId> {
    membership
        .voters()
        .chain(membership.learners().iter().copied())
        .filter(|id| *id != leader)
        .collect()
}

/// The answers to one election (or pre-election) poll. It exists only while its owner is a
/// (pre-)candidate.
#[derive(Debug)]
pub(crate) struct Poll {
    votes: BTreeMap<NodeId, bool>,
}

impl Poll {
    /// A poll in which `candidate` has voted for itself.
    pub(crate) fn new(candidate: NodeId) -> Poll {
        Poll { votes: BTreeMap::from([(candidate, true)]) }
    }

    /// Records `voter`'s answer; a repeated answer (a duplicated message) changes nothing,
    /// and an answer from a non-voter (a learner, a removed peer) is not counted.
    pub(crate) fn record(&mut self, membership: &Membership, voter: NodeId, granted: bool) {
        if membership.is_voter(voter) {
            self.votes.entry(voter).or_insert(granted);
        }
    }

    pub(crate) fn result(&self, membership: &Membership) -> VoteResult {
        membership.vote_result(&self.votes)
    }

    /// Panics unless the candidate voted for itself, only voters answered, and the poll is
    /// still open (a decided poll ends the candidacy at once). The candidate's own vote counts
    /// only if it is a voter: a peer whose configuration drops it campaigns without it.
    pub(crate) fn check_invariants(&self, membership: &Membership, candidate: NodeId) {
        assert_eq!(
            self.votes.get(&candidate),
            Some(&true),
            "node {candidate}: a poll without the candidate's own vote"
        );
        assert!(
            self.votes.keys().all(|v| *v == candidate || membership.is_voter(*v)),
            "node {candidate}: a vote from a non-voter in {:?}",
            self.votes
        );
        assert_eq!(
            self.result(membership),
            VoteResult::Pending,
            "node {candidate}: a decided poll is still open"
        );
    }
}
