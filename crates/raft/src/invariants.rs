//! `RawNode::check_invariants`: what must hold of a peer between any two calls, checked by the
//! simulator after every event and by the interaction tests after every command. The read
//! bookkeeping's own checks live with it (`read_index`, `read_queue`, `forwarded_reads`), and
//! the tracker's and a poll's in `tracker`.

use crate::conf_change::single_server_step;
use crate::raw_node::RawNode;
use crate::role::RoleState;

impl RawNode {
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
        self.check_timer_invariants();
        self.check_config_invariants();
        match &self.role {
            RoleState::Leader(leader) => {
                assert_eq!(
                    self.vote,
                    Some(self.id),
                    "node {}: leader did not vote for itself",
                    self.id
                );
                let max_inflight = self.config.max_inflight_appends;
                leader.tracker.check_invariants(self.log.membership(), &self.log, max_inflight);
                if let Some(transfer) = &leader.transfer {
                    assert!(
                        self.log.last_index() == transfer.last_index,
                        "node {}: the log grew during a transfer (invariant I10)",
                        self.id
                    );
                }
                let committed = self.log.committed();
                assert!(
                    committed == leader.commit_at_election
                        || self.log.term(committed) == Some(self.term),
                    "node {}: leader of term {} committed index {committed} of term {:?} by \
                     counting (an entry of an earlier term commits only under one of its own)",
                    self.id,
                    self.term,
                    self.log.term(committed)
                );
            }
            RoleState::Candidate { poll } => {
                assert_eq!(
                    self.vote,
                    Some(self.id),
                    "node {}: candidate without self-vote",
                    self.id
                );
                poll.check_invariants(self.log.membership(), self.id);
                self.assert_may_campaign();
            }
            RoleState::PreCandidate { poll } => {
                poll.check_invariants(self.log.membership(), self.id);
                self.assert_may_campaign();
            }
            RoleState::Follower { leader: Some(leader) } => {
                assert_ne!(*leader, self.id, "node {}: a follower of itself", self.id);
            }
            RoleState::Follower { leader: None } => {}
        }
    }

    /// A candidate is a voter of its own configuration or of the latest one it knows
    /// committed (a removal or demotion not known to be committed), and not removed
    /// (invariant I8: a peer that knows its removal is committed never stands for election).
    fn assert_may_campaign(&self) {
        let me = self.id;
        assert!(
            self.log.membership().is_voter(me)
                || self.log.committed_config().config.membership.is_voter(me),
            "node {me}: campaigns without being a voter of its configuration or of the \
             committed one",
        );
        assert!(!self.is_removed(), "node {me}: campaigns after its removal");
    }

    /// The configurations in the log (design invariant I2): each differs from the one before
    /// it by at most one voter. (I1, one uncommitted configuration at a time, needs the
    /// cluster's commit index, which a peer may not know yet: the simulator checks it.)
    fn check_config_invariants(&self) {
        let mut previous = &self.log.snapshot().config;
        for config in self.log.config_entries() {
            assert!(
                previous.is_unknown()
                    || single_server_step(&previous.config.membership, &config.config.membership),
                "node {}: config at {} changes more than one voter from the one at {} (I2)",
                self.id,
                config.index,
                previous.index
            );
            previous = config;
        }
    }

    /// Panics unless the timers are where ticking leaves them: a timer that expires acts at
    /// once and starts over.
    fn check_timer_invariants(&self) {
        let base = self.config.election_timeout_ticks;
        assert!(
            (base..2 * base).contains(&self.randomized_election_timeout),
            "node {}: election timeout {} outside [{base}, {})",
            self.id,
            self.randomized_election_timeout,
            2 * base
        );
        if let Some(leader) = self.role.leader_state() {
            assert!(
                self.election_elapsed < base,
                "node {}: a leader's check-quorum round overran",
                self.id
            );
            assert!(
                leader.heartbeat_elapsed < self.config.heartbeat_interval_ticks,
                "node {}: a heartbeat round overran",
                self.id
            );
        } else {
            assert!(
                self.election_elapsed < self.randomized_election_timeout,
                "node {}: the election timer ran out without an election",
                self.id
            );
        }
    }
}
