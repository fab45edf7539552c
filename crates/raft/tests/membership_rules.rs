//! The leader's membership and transfer rules, each asserted on a small cluster driven to the
//! point where the rule decides. Each test is the proof of one planted bug: it passes on a
//! real build and fails with the feature on (CI checks that):
//!
//! - `bug-config-before-term-commit` (R3, Ongaro's barrier): a fresh leader appends a config
//!   entry before it committed an entry of its term;
//! - `bug-two-pending-configs` (R2): a second config entry while one is uncommitted;
//! - `bug-reuse-removed-id` (R9): a removed id let back in;
//! - `bug-promote-without-catchup` (R11, R12): a learner that answers but lags counted as a
//!   live voter, so that a promotion the live voters could not carry is let through;
//! - `bug-transfer-keeps-lease` (T3): a leader keeps serving lease reads once it started
//!   handing over its leadership.

use std::collections::{BTreeMap, BTreeSet};

use kvraft_raft::{
    ChangeError, ChangeRequest, Config, LogIndex, MemStorage, MembershipChange, Message,
    MessageBody, NodeId, RawNode, Role, Storage,
};

struct Peer {
    raw: RawNode,
    storage: MemStorage,
}

/// Nodes in memory, a network that delivers everything except to or from `cut` nodes, and
/// (`appends_lost_to`) drops the appends to some nodes while their heartbeats get through.
struct Cluster {
    peers: BTreeMap<u64, Peer>,
    cut: BTreeSet<u64>,
    appends_lost_to: BTreeSet<u64>,
}

impl Cluster {
    /// Voters `1..=voters`, then `joiners` more nodes with no bootstrap configuration.
    fn new(voters: u64, joiners: u64, tweak: impl Fn(&mut Config)) -> Cluster {
        let ids: Vec<NodeId> = (1..=voters).map(NodeId).collect();
        let mut peers = BTreeMap::new();
        for id in 1..=voters + joiners {
            let bootstrap = if id <= voters { ids.clone() } else { Vec::new() };
            let mut config = Config::new(NodeId(id), bootstrap);
            tweak(&mut config);
            let storage = MemStorage::new();
            let raw = RawNode::new(config, storage.recover().unwrap()).unwrap();
            peers.insert(id, Peer { raw, storage });
        }
        Cluster { peers, cut: BTreeSet::new(), appends_lost_to: BTreeSet::new() }
    }

    fn node(&mut self, id: u64) -> &mut RawNode {
        &mut self.peers.get_mut(&id).unwrap().raw
    }

    fn delivered(&self, m: &Message) -> bool {
        let appends_lost = self.appends_lost_to.contains(&m.to.0)
            && matches!(m.body, MessageBody::Append { .. } | MessageBody::SnapshotChunk { .. });
        !self.cut.contains(&m.from.0) && !self.cut.contains(&m.to.0) && !appends_lost
    }

    /// Carries out every Ready (persisting at once) and delivers every message, until quiet.
    fn stabilize(&mut self) {
        for _ in 0..1000 {
            let mut messages = Vec::new();
            for peer in self.peers.values_mut() {
                while peer.raw.has_ready() {
                    let rd = peer.raw.ready();
                    peer.storage.persist(rd.persist_batch()).unwrap();
                    peer.raw.on_persisted(rd.number);
                    messages.extend(rd.messages);
                    messages.extend(rd.persisted_messages);
                }
            }
            if messages.is_empty() {
                return;
            }
            for m in messages {
                if self.delivered(&m) && self.peers.contains_key(&m.to.0) {
                    self.node(m.to.0).step(m).unwrap();
                }
            }
        }
        panic!("the cluster never settled");
    }

    fn tick(&mut self, id: u64, ticks: u32) {
        for _ in 0..ticks {
            self.node(id).tick();
        }
    }

    /// Ticks `id` until it campaigns, then lets the election run.
    fn elect(&mut self, id: u64) {
        for _ in 0..1000 {
            self.node(id).tick();
            if self.node(id).role() != Role::Follower {
                break;
            }
        }
        self.stabilize();
        assert!(self.node(id).is_leader(), "node {id} did not win its election");
    }

    fn change(&mut self, id: u64, change: MembershipChange) -> Result<LogIndex, ChangeError> {
        self.change_with(id, ChangeRequest::new(change))
    }

    fn change_with(&mut self, id: u64, request: ChangeRequest) -> Result<LogIndex, ChangeError> {
        self.node(id).propose_membership_change(request).map(|proposed| proposed.index)
    }
}

fn add_learner(id: u64) -> MembershipChange {
    MembershipChange::AddLearner {
        id: Some(NodeId(id)),
        address: format!("n{id}"),
        auto_promote: false,
    }
}

/// R3: a new leader (lab mode: no no-op on election) refuses a change until an entry of its
/// own term is committed, and appends that entry itself.
#[test]
fn a_fresh_leader_commits_an_entry_of_its_term_before_a_config_entry() {
    let mut c = Cluster::new(3, 0, |config| config.append_noop_on_election = false);
    c.elect(1);
    let last = c.node(1).last_index();
    assert_eq!(
        c.change(1, add_learner(4)),
        Err(ChangeError::TermBarrier),
        "a config entry before the leader committed an entry of its term \
         (planted bug bug-config-before-term-commit?)"
    );
    assert_eq!(c.node(1).last_index(), last.next(), "the barrier appends the no-op itself");
    c.stabilize();
    assert!(c.change(1, add_learner(4)).is_ok(), "once the no-op committed, the change goes");
}

/// R2: one uncommitted config entry at a time.
#[test]
fn a_second_change_waits_for_the_first_to_commit() {
    let mut c = Cluster::new(3, 0, |config| config.append_noop_on_election = true);
    c.elect(1);
    let first = c.change(1, add_learner(4)).expect("the first change");
    assert_eq!(
        c.change(1, add_learner(5)),
        Err(ChangeError::ChangePending { pending: first }),
        "a second config entry while one is uncommitted (planted bug bug-two-pending-configs?)"
    );
    c.stabilize();
    assert!(c.change(1, add_learner(5)).is_ok(), "once the first committed, the second goes");
}

/// R9: a removed id is tombstoned; it can never be a member again.
#[test]
fn a_removed_id_never_comes_back() {
    let mut c = Cluster::new(3, 0, |config| config.append_noop_on_election = true);
    c.elect(1);
    let remove = ChangeRequest {
        change: MembershipChange::Remove { id: NodeId(3) },
        expected_config_index: None,
        force: true, // down to two voters
    };
    c.change_with(1, remove).expect("removing node 3");
    c.stabilize();
    assert!(c.node(1).committed_cluster_config().config.removed.contains(&NodeId(3)));
    assert_eq!(
        c.change(1, add_learner(3)),
        Err(ChangeError::IdRemoved(NodeId(3))),
        "a removed id let back in (planted bug bug-reuse-removed-id?)"
    );
    let voter = MembershipChange::AddVoter { id: Some(NodeId(3)), address: "n3".into() };
    let forced = ChangeRequest { change: voter, expected_config_index: None, force: true };
    assert_eq!(c.change_with(1, forced), Err(ChangeError::IdRemoved(NodeId(3))));
}

/// R11/R12: a learner that answers heartbeats but holds none of the log does not count as a
/// live voter. With node 3 silent, promoting learner 4 would make {1,2,3,4} whose live,
/// caught-up voters (1 and 2) are no majority: refused.
#[test]
fn a_lagging_learner_is_not_counted_alive_for_its_promotion() {
    let mut c = Cluster::new(3, 1, |config| config.append_noop_on_election = true);
    c.cut.insert(3);
    c.elect(1);
    c.change(1, add_learner(4)).expect("adding learner 4");
    c.stabilize();
    // The leader probes learner 4 on its next heartbeat round and catches it up.
    let heartbeat = c.node(1).config().heartbeat_interval_ticks;
    c.tick(1, heartbeat);
    c.stabilize();
    // Then learner 4 loses the appends (its heartbeats still get through): it falls behind
    // the commit index while it keeps answering.
    c.appends_lost_to.insert(4);
    c.node(1).propose(bytes::Bytes::from_static(b"x")).expect("a proposal");
    c.stabilize();
    c.tick(1, heartbeat);
    c.stabilize();
    let (last_ack, match_index) = {
        let progress = c.node(1).progress(NodeId(4)).expect("learner 4 is tracked");
        (progress.last_ack_tick, progress.match_index)
    };
    assert_eq!(last_ack, Some(c.node(1).progress(NodeId(2)).unwrap().last_ack_tick.unwrap()));
    assert!(match_index < c.node(1).commit_index(), "learner 4 lags");
    assert_eq!(
        c.change(1, MembershipChange::Promote { id: NodeId(4) }),
        Err(ChangeError::WouldLoseQuorum { alive: 2, voters: 4, needed: 3 }),
        "a lagging learner counted as a live voter (planted bug bug-promote-without-catchup?)"
    );
    // Once it has caught up, the same promotion passes.
    c.appends_lost_to.clear();
    c.tick(1, heartbeat);
    c.stabilize();
    assert!(c.change(1, MembershipChange::Promote { id: NodeId(4) }).is_ok());
}

/// T3: a leader stops serving lease reads as soon as it starts a transfer (the target may win
/// while the lease would still run).
#[test]
fn a_transfer_ends_the_lease() {
    let mut c = Cluster::new(3, 0, |config| {
        config.append_noop_on_election = true;
        config.lease_reads = true;
    });
    // With lease reads a peer refuses votes for its first election timeout (it may have
    // echoed a round just before a restart): let that pass on the voters first.
    let timeout = c.node(2).config().election_timeout_ticks;
    c.tick(2, timeout);
    c.tick(3, timeout);
    c.elect(1);
    let heartbeat = c.node(1).config().heartbeat_interval_ticks;
    c.tick(1, heartbeat);
    c.stabilize();
    assert!(c.node(1).in_read_lease(), "a heartbeat round echoed by all gives a lease");
    assert_eq!(c.node(1).transfer_leadership(Some(NodeId(2))), Ok(NodeId(2)));
    assert!(
        !c.node(1).in_read_lease(),
        "a leader handing over keeps its lease (planted bug bug-transfer-keeps-lease?)"
    );
}
