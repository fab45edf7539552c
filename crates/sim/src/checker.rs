//! Cross-peer safety invariants, checked after every event (Raft paper, Figure 3):
//! election safety, log matching, leader completeness, state machine safety, and monotonic
//! terms and commit indices. A violation panics with the details; the runner adds the seed.

use std::collections::HashMap;

use kvraft_raft::{Entry, HardState, LogIndex, RawNode, Role, Term};

use crate::trace::hash_bytes;
use crate::world::ServerSlot;

#[derive(Debug)]
pub struct Checker {
    /// The one server that led each term.
    leader_of_term: HashMap<Term, usize>,
    /// Highest term each server's current incarnation has reported.
    max_term: Vec<Term>,
    /// The last hard state each server's storage acknowledged as durable. A term reached but
    /// not yet durable may be lost in a crash (nothing that depends on it has been sent).
    durable: Vec<HardState>,
    /// Commit index each server's current incarnation has reached.
    seen_commit: Vec<LogIndex>,
    /// The term of the entry committed at each index, as first observed.
    committed_term: HashMap<LogIndex, Term>,
    /// The highest committed index, its entry's term, and the term of the peer that first saw
    /// it committed (at least the term in which it was committed).
    highest_committed: Option<(LogIndex, Term, Term)>,
    /// Identity of every (index, term) ever persisted: data hash and the previous entry's term.
    /// If all peers agree on these, Log Matching holds by induction.
    entry_identity: HashMap<(LogIndex, Term), (u64, Term)>,
}

impl Checker {
    pub fn new(servers: usize) -> Checker {
        Checker {
            leader_of_term: HashMap::new(),
            max_term: vec![Term(0); servers],
            durable: vec![HardState::default(); servers],
            seen_commit: vec![LogIndex(0); servers],
            committed_term: HashMap::new(),
            highest_committed: None,
            entry_identity: HashMap::new(),
        }
    }

    /// The server's storage made `hard_state` durable.
    pub fn on_durable(&mut self, server: usize, hard_state: HardState) {
        self.durable[server] = hard_state;
    }

    pub fn on_restart(&mut self, server: usize, node: &RawNode) {
        let durable = self.durable[server];
        assert!(
            node.term() >= durable.term,
            "server {server} restarted at term {} after its storage acknowledged term {}",
            node.term(),
            durable.term
        );
        // A vote, once durable, holds for its term (a crash may also keep an unacknowledged
        // later write, so a durable "no vote" proves nothing).
        if node.term() == durable.term && durable.vote.is_some() {
            assert_eq!(
                node.vote(),
                durable.vote,
                "server {server} restarted with another vote in term {} than it persisted",
                durable.term
            );
        }
        self.max_term[server] = node.term();
        self.seen_commit[server] = node.log().snapshot_meta().index;
    }

    /// Entries a server is about to persist must agree with every other copy of the same
    /// (index, term): same data, same predecessor term.
    pub fn on_persist(&mut self, server: usize, node: &RawNode, entries: &[Entry]) {
        let mut prev_term = match entries.first() {
            Some(first) => {
                node.log().term(first.index.prev()).expect("predecessor of a new entry is known")
            }
            None => return,
        };
        for e in entries {
            let identity = (hash_bytes(&e.data), prev_term);
            let first_seen = *self.entry_identity.entry((e.index, e.term)).or_insert(identity);
            assert_eq!(
                first_seen, identity,
                "log matching violated: server {server} persists entry {}@{} that differs from another copy",
                e.index, e.term
            );
            prev_term = e.term;
        }
    }

    pub fn after_event(&mut self, servers: &[ServerSlot]) {
        for (server, slot) in servers.iter().enumerate() {
            let Some(node) = slot.peer.as_ref().map(|p| p.raft()) else { continue };
            node.check_invariants();
            self.check_term(server, node);
            self.check_commit(server, node);
            if node.role() == Role::Leader {
                self.check_leader(server, node);
            }
        }
    }

    fn check_term(&mut self, server: usize, node: &RawNode) {
        assert!(
            node.term() >= self.max_term[server],
            "server {server}: term went back from {} to {}",
            self.max_term[server],
            node.term()
        );
        self.max_term[server] = node.term();
    }

    fn check_commit(&mut self, server: usize, node: &RawNode) {
        let commit = node.commit_index();
        let seen = self.seen_commit[server];
        assert!(commit >= seen, "server {server}: commit went back from {seen} to {commit}");
        for i in seen.0 + 1..=commit.0 {
            let index = LogIndex(i);
            let Some(term) = node.log().term(index) else { continue };
            let first = *self.committed_term.entry(index).or_insert(term);
            assert_eq!(
                first, term,
                "state machine safety violated: server {server} committed term {term} at index {index}, another server term {first}"
            );
            if self.highest_committed.is_none_or(|(h, _, _)| index > h) {
                self.highest_committed = Some((index, term, node.term()));
            }
        }
        self.seen_commit[server] = commit;
    }

    fn check_leader(&mut self, server: usize, node: &RawNode) {
        let term = node.term();
        let leader = *self.leader_of_term.entry(term).or_insert(server);
        assert_eq!(
            leader, server,
            "election safety violated: servers {leader} and {server} both led term {term}"
        );
        // Every leader of a term after the commit must hold the entry (a deposed leader of an
        // older term, still unaware, need not).
        if let Some((index, committed, commit_term)) = self.highest_committed {
            if term > commit_term && index > node.log().snapshot_meta().index {
                assert_eq!(
                    node.log().term(index),
                    Some(committed),
                    "leader completeness violated: leader {server} of term {term} lacks committed entry {index}@{committed}"
                );
            }
        }
    }
}
