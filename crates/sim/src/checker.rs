//! Cross-peer safety invariants, checked after every event (Raft paper, Figure 3):
//! election safety, log matching, leader completeness, state machine safety, and monotonic
//! terms and commit indices. A violation panics with the details; the runner adds the seed.

use std::collections::HashMap;

use kvraft_raft::{
    AppendResult, HardState, LogIndex, Message, MessageBody, RawNode, RecoveredState, Role,
    SnapshotResult, Term,
};
use kvraft_replica::{DurableBatch, Write};

use crate::trace::hash_bytes;

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

    /// Entries a server is about to write must agree with every other copy of the same
    /// (index, term): same data, same predecessor term. `durable` is what its storage held
    /// before this write (the only write in flight).
    pub fn on_write(&mut self, server: usize, durable: &RecoveredState, write: &Write) {
        for (position, batch) in write.batches.iter().enumerate() {
            let Some(first) = batch.entries.first() else { continue };
            let earlier = &write.batches[..position];
            let mut prev_term = term_before_entries(durable, earlier, batch, first.index.prev())
                .unwrap_or_else(|| {
                    panic!("server {server} writes entry {} without its predecessor", first.index)
                });
            for e in &batch.entries {
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
    }

    /// Messages that promise durable state may leave only once the state is durable: a
    /// candidate's vote request (its term and self-vote), a granted vote, an accepted append
    /// and an installed snapshot (the entries they acknowledge). `durable` is what the
    /// server's storage has acknowledged.
    pub fn on_send(
        &mut self,
        server: usize,
        node: &RawNode,
        durable: &RecoveredState,
        msgs: &[Message],
    ) {
        let hs = durable.hard_state;
        for m in msgs {
            let promised = match &m.body {
                MessageBody::Vote { pre_vote: false, .. } => Some(m.from),
                MessageBody::VoteResponse { pre_vote: false, granted: true } => Some(m.to),
                _ => None,
            };
            if let Some(vote) = promised {
                // A later term on disk also keeps the promise: the server will never vote in
                // the message's term again.
                assert!(
                    hs.term > m.term || (hs.term == m.term && hs.vote == Some(vote)),
                    "server {server} sends {} in term {} voting for {vote} before its vote is \
                     durable (durable: term {}, vote {:?})",
                    m.body.kind(),
                    m.term,
                    hs.term,
                    hs.vote
                );
            }
            let acknowledged = match &m.body {
                MessageBody::AppendResponse(AppendResult::Accepted { match_index })
                | MessageBody::SnapshotResponse(SnapshotResult::Installed { match_index }) => {
                    Some(*match_index)
                }
                _ => None,
            };
            if let Some(index) = acknowledged {
                assert!(
                    durably_holds(durable, node, index),
                    "server {server} acknowledges entries through {index} in {} before they are \
                     durable (durable through {}, snapshot at {})",
                    m.body.kind(),
                    durable.entries.last().map_or(durable.snapshot.meta.index, |e| e.index),
                    durable.snapshot.meta.index
                );
            }
        }
    }

    /// The cross-server invariants, given every server's Raft node in server order (None for a
    /// server that is down). Each server's own invariants are its host's to check.
    pub fn after_event<'a>(&mut self, nodes: impl Iterator<Item = Option<&'a RawNode>>) {
        for (server, node) in nodes.enumerate() {
            let Some(node) = node else { continue };
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

/// The term of `index` in a stored state: its snapshot's last entry, or one of its entries.
/// None if the state does not hold it, or holds it only compacted into the snapshot.
fn stored_term_at(state: &RecoveredState, index: LogIndex) -> Option<Term> {
    let meta = state.snapshot.meta;
    if index == meta.index {
        return Some(meta.term);
    }
    let first = state.entries.first()?.index;
    let offset = index.0.checked_sub(first.0)? as usize;
    state.entries.get(offset).map(|e| e.term)
}

/// Whether durable storage holds the entry at `index` that the node's log has there (or, if
/// the node compacted it, any entry: both are then committed, so they are the same).
fn durably_holds(durable: &RecoveredState, node: &RawNode, index: LogIndex) -> bool {
    if index <= durable.snapshot.meta.index {
        return true;
    }
    stored_term_at(durable, index).is_some_and(|t| node.log().term(index).is_none_or(|n| n == t))
}

/// The term of the entry before `batch`'s entries (at `index`) in the log a server's storage
/// holds once `durable`, then the `earlier` batches of the same write, then `batch`'s own
/// snapshot are written (within a batch the snapshot goes first; entries replace the ones they
/// overlap).
fn term_before_entries(
    durable: &RecoveredState,
    earlier: &[DurableBatch],
    batch: &DurableBatch,
    index: LogIndex,
) -> Option<Term> {
    let snapshot_term = |b: &DurableBatch| {
        b.snapshot.as_ref().filter(|s| s.meta.index == index).map(|s| s.meta.term)
    };
    if let Some(term) = snapshot_term(batch) {
        return Some(term);
    }
    for earlier_batch in earlier.iter().rev() {
        if let Some(first) = earlier_batch.entries.first() {
            if first.index <= index {
                let offset = (index.0 - first.index.0) as usize;
                return earlier_batch.entries.get(offset).map(|e| e.term);
            }
        }
        if let Some(term) = snapshot_term(earlier_batch) {
            return Some(term);
        }
    }
    stored_term_at(durable, index)
}
