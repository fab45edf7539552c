//! The scenario of Figure 8 in the Raft paper, replayed step by step: a leader must not commit
//! an entry of an older term by counting replicas, because a later leader may still overwrite
//! it. With the planted bug `bug-commit-old-term-by-count` this test fails (CI checks that).

use std::collections::BTreeSet;

use bytes::Bytes;
use kvraft_raft::{
    Config, Entry, HardState, LogIndex, MemStorage, Message, NodeId, RawNode, RecoveredState, Role,
    Storage, Term,
};

struct Cluster {
    nodes: Vec<RawNode>,
    storages: Vec<MemStorage>,
    up: BTreeSet<u64>,
}

fn entry(index: u64, term: u64) -> Entry {
    Entry::normal(Term(term), LogIndex(index), Bytes::from(format!("{index}@{term}")))
}

fn config(id: u64) -> Config {
    let mut c = Config::new(NodeId(id), (1..=5).map(NodeId).collect());
    // Plain Raft, as in the paper: no pre-vote, no leases.
    c.pre_vote = false;
    c.check_quorum = false;
    c
}

impl Cluster {
    /// Five peers, each with the given (term, vote, log terms).
    fn new(states: [(u64, u64, &[u64]); 5]) -> Cluster {
        let mut nodes = Vec::new();
        let mut storages = Vec::new();
        for (i, (term, vote, terms)) in states.into_iter().enumerate() {
            let id = i as u64 + 1;
            let recovered = RecoveredState {
                hard_state: HardState {
                    term: Term(term),
                    vote: (vote > 0).then_some(NodeId(vote)),
                    commit: LogIndex(1),
                },
                snapshot: Default::default(),
                entries: terms.iter().enumerate().map(|(k, t)| entry(k as u64 + 1, *t)).collect(),
            };
            let mut storage = MemStorage::new();
            storage
                .persist(kvraft_raft::PersistBatch {
                    hard_state: Some(recovered.hard_state),
                    snapshot: None,
                    entries: &recovered.entries,
                })
                .unwrap();
            nodes.push(RawNode::new(config(id), storage.recover().unwrap()).unwrap());
            storages.push(storage);
        }
        Cluster { nodes, storages, up: (1..=5).collect() }
    }

    fn node(&self, id: u64) -> &RawNode {
        &self.nodes[id as usize - 1]
    }

    /// Ticks `id` until it starts an election for a new term (no pre-vote here).
    fn campaign(&mut self, id: u64) {
        let node = &mut self.nodes[id as usize - 1];
        let term = node.term();
        for _ in 0..1000 {
            node.tick();
            if node.term() > term {
                assert_eq!(node.role(), Role::Candidate);
                return;
            }
        }
        panic!("node {id} never campaigned");
    }

    /// Runs elections for `id` until it leads (it may need a few terms to outbid the others).
    fn elect(&mut self, id: u64) {
        for _ in 0..10 {
            self.campaign(id);
            self.stabilize();
            if self.node(id).is_leader() {
                return;
            }
        }
        panic!("node {id} never won an election");
    }

    /// Delivers messages among the live peers until nothing moves.
    fn stabilize(&mut self) {
        loop {
            let mut inflight: Vec<Message> = Vec::new();
            for id in self.up.clone() {
                let i = id as usize - 1;
                while self.nodes[i].has_ready() {
                    let mut rd = self.nodes[i].ready();
                    inflight.append(&mut rd.messages);
                    self.storages[i].persist(rd.persist_batch()).unwrap();
                    self.nodes[i].on_persisted(rd.number);
                    inflight.append(&mut rd.persisted_messages);
                }
            }
            if inflight.is_empty() {
                return;
            }
            for m in inflight {
                if self.up.contains(&m.to.0) {
                    self.nodes[m.to.0 as usize - 1].step(m).unwrap();
                }
            }
        }
    }
}

/// Figure 8 (b): S1 led term 2 and put 2@2 on S2; S5 led term 3 with 2@3 on itself only.
/// Then (c): S5 is down; S1 wins term 4 and copies 2@2 to S3, so a majority holds it.
fn figure8_c() -> Cluster {
    let mut c = Cluster::new([
        (2, 1, &[1, 2]),
        (2, 1, &[1, 2]),
        (3, 5, &[1]),
        (3, 5, &[1]),
        (3, 5, &[1, 3]),
    ]);
    c.up.remove(&5);
    c.elect(1);
    c
}

#[test]
fn a_leader_never_commits_an_old_term_entry_by_counting_replicas() {
    let mut c = figure8_c();
    assert_eq!(c.node(1).term(), Term(4));
    assert_eq!(c.node(3).log().term(LogIndex(2)), Some(Term(2)), "S3 should hold 2@2");
    assert_eq!(
        c.node(1).commit_index(),
        LogIndex(1),
        "S1 committed 2@2, an entry of an older term, by counting replicas"
    );
    // (d): S1 goes down; S5 can win (its last term 3 beats 2) and overwrite index 2. That is
    // only safe because 2@2 was never committed.
    c.up.remove(&1);
    c.up.insert(5);
    c.elect(5);
    assert_eq!(c.node(3).log().term(LogIndex(2)), Some(Term(3)), "S5 overwrote index 2 on S3");
    for id in [2, 3, 4] {
        assert!(
            c.node(id).commit_index() <= LogIndex(1)
                || c.node(id).log().term(LogIndex(2)) == Some(Term(3))
        );
    }
    // (e) instead: had S1 replicated an entry of its own term first, 2@2 commits with it.
}

#[test]
fn a_current_term_entry_commits_the_older_entries_before_it() {
    let mut c = figure8_c();
    let (index, term) = c.nodes[0].propose(Bytes::from_static(b"3@4")).unwrap();
    assert_eq!((index, term), (LogIndex(3), Term(4)));
    c.stabilize();
    assert_eq!(c.node(1).commit_index(), LogIndex(3), "3@4 on a majority commits 2@2 with it");
    // Now S5 can never win: a majority has a log more up to date than its own.
    c.up.remove(&1);
    c.up.insert(5);
    for _ in 0..5 {
        c.campaign(5);
        c.stabilize();
        assert!(!c.node(5).is_leader(), "S5 won without the committed entry 3@4");
    }
}
