//! Roles and elections: timers, (pre-)votes, becoming follower, candidate or leader.

use crate::message::{EntryKind, Message, MessageBody};
use crate::quorum::VoteResult;
use crate::raw_node::RawNode;
use crate::role::{LeaderState, RoleState};
use crate::tracker::{Poll, Tracker};
use crate::types::{LogIndex, NodeId, Role, Term};

impl RawNode {
    pub(crate) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.election_elapsed >= self.randomized_election_timeout {
            if self.promotable() {
                self.campaign();
            } else {
                // A learner, a removed peer or one that knows no configuration waits on. A
                // leader it has not heard from for an election timeout is gone as far as it
                // knows (crashed, deposed, or no longer talking to a removed peer): it stops
                // naming it to clients, who would otherwise be sent there for good.
                if let RoleState::Follower { leader } = &mut self.role {
                    *leader = None;
                }
                self.reset_election_timer();
            }
        }
    }

    /// True if this peer may stand for election: it is a voter of the configuration in its
    /// log, or of the latest one it knows committed, and does not know it was removed.
    ///
    /// A peer whose latest configuration drops it (a removal or a demotion not yet known to be
    /// committed) still campaigns, asking the voters of that configuration and not counting
    /// its own vote (design rule R8; thesis 4.2.2): it may hold the only copy that can commit
    /// the change. In a two-voter cluster whose leader removed itself and lost its leadership
    /// before the other voter got the new configuration, the other voter cannot win without
    /// this peer's vote, which its longer log refuses; only this peer can win, commit the
    /// change, and hand over. Once it knows the change committed it never campaigns again
    /// (invariant I8). Every peer still votes when asked (thesis 4.1: by term and log only).
    pub(crate) fn promotable(&self) -> bool {
        let me = self.id;
        (self.log.membership().is_voter(me)
            || self.log.committed_config().config.membership.is_voter(me))
            && !self.is_removed()
    }

    pub(crate) fn campaign(&mut self) {
        if self.config.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate(false);
        }
    }

    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(
            term >= self.term,
            "node {}: term would go back from {} to {term}",
            self.id,
            self.term
        );
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.enter_role(RoleState::Follower { leader });
        self.reset_election_timer();
    }

    /// Every change of role goes through here: the previous role's state ends with it, and
    /// a leadership's reads not yet confirmed fail.
    fn enter_role(&mut self, role: RoleState) {
        if let RoleState::Leader(state) = std::mem::replace(&mut self.role, role) {
            self.fail_leader_reads(state.reads);
        }
    }

    /// Asks the others whether we could win the next term, without changing ours.
    fn become_pre_candidate(&mut self) {
        self.enter_role(RoleState::PreCandidate { poll: Poll::new(self.id) });
        self.start_poll(true);
    }

    /// Starts a real election. `leadership_transfer`: the leader asked for it (`TimeoutNow`),
    /// so the voters vote even if they heard from that leader recently.
    pub(crate) fn become_candidate(&mut self, leadership_transfer: bool) {
        self.term = self.term.next();
        self.vote = Some(self.id);
        self.enter_role(RoleState::Candidate { poll: Poll::new(self.id) });
        self.start_poll_with(false, leadership_transfer);
    }

    /// Asks every other voter for its vote in the poll just opened (holding our own vote).
    fn start_poll(&mut self, pre_vote: bool) {
        self.start_poll_with(pre_vote, false);
    }

    fn start_poll_with(&mut self, pre_vote: bool, leadership_transfer: bool) {
        self.reset_election_timer();
        if self.tally_votes() {
            return;
        }
        let term = if pre_vote { self.term.next() } else { self.term };
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        let voters: Vec<NodeId> =
            self.log.membership().voters().filter(|v| *v != self.id).collect();
        for peer in voters {
            let m = Message {
                from: self.id,
                to: peer,
                term,
                body: MessageBody::Vote {
                    pre_vote,
                    last_log_index,
                    last_log_term,
                    leadership_transfer,
                },
            };
            // A real vote request carries our new term and self-vote: they must be durable first.
            if pre_vote {
                self.messages.push(m);
            } else {
                self.persisted_messages.push(m);
            }
        }
    }

    /// Counts the votes of the current poll and acts on a decision; true if one was reached.
    fn tally_votes(&mut self) -> bool {
        let poll = self.role.poll().unwrap_or_else(|| {
            unreachable!("node {}: tallying votes as {:?}", self.id, self.role.role())
        });
        match poll.result(self.log.membership()) {
            VoteResult::Won => {
                if self.role.role() == Role::PreCandidate {
                    self.become_candidate(false);
                } else {
                    self.become_leader();
                }
                true
            }
            VoteResult::Lost => {
                self.become_follower(self.term, None);
                true
            }
            VoteResult::Pending => false,
        }
    }

    pub(crate) fn become_leader(&mut self) {
        assert_eq!(
            self.role.role(),
            Role::Candidate,
            "node {}: only a candidate becomes leader",
            self.id
        );
        let tracker = Tracker::new(self.log.membership(), self.id, self.log.last_index());
        let committed = self.log.committed();
        self.enter_role(RoleState::Leader(Box::new(LeaderState::new(tracker, committed))));
        // Removals committed before this leadership are not announced again.
        let announced = self.log.committed_config().index;
        self.leader_state_mut().announced_config = announced;
        self.election_elapsed = 0;
        self.settle_forwarded_reads();
        // A leader that its own configuration no longer counts takes no proposals: it appends
        // the no-op itself, whatever the configuration says, so that the change that drops it
        // commits (under an entry of its term) and it can hand over.
        let leaving = !self.log.membership().is_voter(self.id);
        if self.config.append_noop_on_election || leaving {
            self.log.append_new(self.term, EntryKind::Normal, bytes::Bytes::new());
            let leader = self.leader_state_mut();
            if !leader.tracker.has_followers() {
                leader.pending_broadcast = true;
            }
        }
        for peer in self.tracker().followers() {
            self.send_append(peer, true);
        }
    }

    pub(crate) fn handle_vote(
        &mut self,
        m: &Message,
        pre_vote: bool,
        last_log_index: LogIndex,
        last_log_term: Term,
    ) {
        let log_ok =
            (last_log_term, last_log_index) >= (self.log.last_term(), self.log.last_index());
        #[cfg(feature = "bug-vote-without-log-check")]
        let log_ok = {
            let _ = log_ok;
            true
        };
        let can_vote = if pre_vote {
            // A pre-vote for a future term: grant unless we follow a live leader.
            (m.term > self.term && !self.in_leader_lease())
                || self.vote == Some(m.from)
                || (self.vote.is_none() && self.leader().is_none())
        } else {
            self.vote == Some(m.from) || (self.vote.is_none() && self.leader().is_none())
        };
        let granted = can_vote && log_ok;
        if granted && !pre_vote {
            self.vote = Some(m.from);
            self.reset_election_timer();
        }
        let term = if granted && pre_vote { m.term } else { self.term };
        self.respond_with_term(m, term, MessageBody::VoteResponse { pre_vote, granted });
    }

    pub(crate) fn handle_vote_response(&mut self, m: &Message, pre_vote: bool, granted: bool) {
        let expected = match self.role.role() {
            Role::PreCandidate => pre_vote,
            Role::Candidate => !pre_vote,
            Role::Follower | Role::Leader => return,
        };
        if !expected {
            return;
        }
        if let Some(poll) = self.role.poll_mut() {
            poll.record(self.log.membership(), m.from, granted);
        }
        self.tally_votes();
    }
}
