//! Cross-peer safety invariants, checked after every event (Raft paper, Figure 3):
//! election safety, log matching, leader completeness, state machine safety, and monotonic
//! terms and commit indices; and the membership invariants that need the whole cluster (the
//! design's I1, I3, I4, I6-I10, `../shared/specs/membership.md` section 8; each peer checks
//! I2, I5, I8 and I10 on itself, in `RawNode::check_invariants`). A violation panics with the
//! details; the runner adds the seed.
//!
//! | invariant | checked in |
//! |---|---|
//! | I1 at most one config entry above the highest commit index the cluster has reached, in any log | `check_membership` |
//! | I3 a leader appends a config entry only once it has committed an entry of its term | `check_leader` |
//! | I4 what a leader commits is durable on a majority of the voters of the configuration it counts with | `check_commit` (`committed_on_quorum`) |
//! | I6 a peer's committed configuration index never decreases (within an incarnation) | `check_membership` |
//! | I7 no tombstoned id is a member of a later configuration in the same history | `check_membership` |
//! | I8 a peer that knows its removal is committed never campaigns nor asks for votes | `check_membership`, `on_send` |
//! | I9 no leader holds a read lease in a term in which it sent `TimeoutNow` | `check_leader` (`on_send` records the sends) |
//! | I10 a transferring leader's log does not grow | `check_leader` |
//!
//! The cluster's membership is whatever the peers' logs say: the voters that count for a
//! commit are those of the committing leader's configuration (I4), and the checker holds no
//! voter set of its own, so servers that join a world (`World::add_server`) or lose their disk
//! (`World::wipe`) need nothing else.

use std::collections::{BTreeMap, HashMap};

use kvraft_raft::{
    quorum, AppendResult, HardState, LogIndex, Message, MessageBody, NodeId, RawNode,
    RecoveredState, Role, SnapshotResult, Term,
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
    /// Per server, what its disk durably held when it was wiped: it stands in for the server
    /// in the I4 count until the server starts again (on the new disk, under the same id). A
    /// wiped server that never comes back under its id can never vote or acknowledge again, so
    /// quorums its acknowledgements from before the wipe made still intersect every later
    /// quorum through it; one that comes back under its id is counted with what it holds.
    ghosts: Vec<Option<RecoveredState>>,
    /// Per server: the committed configuration index its current incarnation has reached (I6).
    seen_committed_config: Vec<LogIndex>,
    /// Ids a committed configuration removed: the index and term of the first such
    /// configuration seen (I7).
    tombstones: BTreeMap<NodeId, (LogIndex, Term)>,
    /// Per server: the term in which its current incarnation learned that its removal is
    /// committed (I8).
    knew_removed: Vec<Option<Term>>,
    /// Per server: the latest term in which it sent `TimeoutNow` (I9).
    timeout_now_term: Vec<Option<Term>>,
    /// Per server: the transfer it was last seen leading under, with its log's last index
    /// then (I10).
    transferring: Vec<Option<(Term, LogIndex)>>,
    /// Per server: the term it was last seen leading in, the index of its first entry of that
    /// term, and the highest config entry of that term checked against the barrier (I3).
    leading: Vec<Option<(Term, LogIndex, LogIndex)>>,
    /// Vote and pre-vote requests from ids a committed configuration removed that a peer not
    /// removed itself handled (the membership swarm wants none at the end; removed nodes that
    /// do not know it may go on asking each other).
    pub removed_votes_delivered: u64,
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
            ghosts: vec![None; servers],
            seen_committed_config: vec![LogIndex(0); servers],
            tombstones: BTreeMap::new(),
            knew_removed: vec![None; servers],
            timeout_now_term: vec![None; servers],
            transferring: vec![None; servers],
            leading: vec![None; servers],
            removed_votes_delivered: 0,
        }
    }

    /// One more server (see `World::add_server`).
    pub fn add_server(&mut self) {
        self.max_term.push(Term(0));
        self.durable.push(HardState::default());
        self.seen_commit.push(LogIndex(0));
        self.ghosts.push(None);
        self.seen_committed_config.push(LogIndex(0));
        self.knew_removed.push(None);
        self.timeout_now_term.push(None);
        self.transferring.push(None);
        self.leading.push(None);
    }

    /// The server's disk was replaced by an empty one (it is down): nothing it persisted
    /// holds any more, and what the old disk held stands in for it in I4 until it restarts.
    pub fn on_wipe(&mut self, server: usize, old_disk: RecoveredState) {
        self.durable[server] = HardState::default();
        self.ghosts[server] = Some(old_disk);
    }

    /// The ids a committed configuration removed, each with the index of the first such
    /// configuration the checker saw.
    pub fn tombstones(&self) -> impl Iterator<Item = (NodeId, LogIndex)> + '_ {
        self.tombstones.iter().map(|(id, (index, _))| (*id, *index))
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
        self.seen_committed_config[server] = node.committed_cluster_config().index;
        self.knew_removed[server] = None;
        self.transferring[server] = None;
        self.leading[server] = None;
        // Back under its id on the new disk: from now on it counts with what it holds.
        self.ghosts[server] = None;
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
            self.check_sent_membership(server, node, m);
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

    /// What a message a server sends says about membership: a peer that knows its removal
    /// is committed asks for no vote (I8: no pre-vote at all, and no vote in a term after the
    /// one it learned it in; the vote requests of an election it started before may still
    /// leave once their term is durable); a `TimeoutNow` ends the sender's leases for its
    /// term (I9, checked in `check_leader`).
    fn check_sent_membership(&mut self, server: usize, node: &RawNode, m: &Message) {
        match m.body {
            MessageBody::Vote { pre_vote, .. } => {
                let learned =
                    self.knew_removed[server].or_else(|| node.is_removed().then_some(node.term()));
                assert!(
                    learned.is_none_or(|t| !pre_vote && m.term <= t),
                    "I8 violated: server {server} (node {}) sends a {} in term {} after learning \
                     that its removal is committed (in term {learned:?})",
                    node.id(),
                    if pre_vote { "pre-vote request" } else { "vote request" },
                    m.term
                );
            }
            MessageBody::TimeoutNow { .. } => {
                let sent = &mut self.timeout_now_term[server];
                *sent = Some(sent.map_or(m.term, |t| t.max(m.term)));
            }
            _ => {}
        }
    }

    /// Before `node` handles `msg`: counts a vote request from a removed id that a peer not
    /// removed handles, and returns `node`'s term if it leads and its committed configuration
    /// removed the sender (it must not act on the message: see `after_step`).
    pub fn before_step(&mut self, node: &RawNode, msg: &Message) -> Option<Term> {
        if matches!(msg.body, MessageBody::Vote { .. })
            && self.tombstones.contains_key(&msg.from)
            && !self.tombstones.contains_key(&node.id())
        {
            self.removed_votes_delivered += 1;
        }
        let removed = |n: &RawNode| n.committed_cluster_config().config.removed.contains(&msg.from);
        (node.is_leader() && removed(node)).then(|| node.term())
    }

    /// After a leader whose committed configuration removed `from` handled a message from it
    /// (`before_step` returned its term): it still leads the same term (a removed node is
    /// answered `Removed` and otherwise ignored).
    pub fn after_step(&self, server: usize, node: &RawNode, from: NodeId, led: Option<Term>) {
        if let Some(term) = led {
            assert!(
                node.is_leader() && node.term() == term,
                "leader {server} (node {}) of term {term} acted on a message from removed node \
                 {from}: it is now a {:?} of term {}",
                node.id(),
                node.role(),
                node.term()
            );
        }
    }

    /// The cross-server invariants, given every server's Raft node in server order (None for a
    /// server that is down) with what its storage holds durably. Each server's own invariants
    /// are its host's to check.
    pub fn after_event<'a>(
        &mut self,
        servers: impl Iterator<Item = (Option<&'a RawNode>, &'a RecoveredState)>,
    ) {
        let servers: Vec<(Option<&RawNode>, &RecoveredState)> = servers.collect();
        for (server, (node, _)) in servers.iter().enumerate() {
            let Some(node) = node else { continue };
            self.check_term(server, node);
            self.check_commit(server, node, &servers);
        }
        for (server, (node, _)) in servers.iter().enumerate() {
            let Some(node) = node else { continue };
            self.check_membership(server, node);
            if node.role() == Role::Leader {
                self.check_leader(server, node);
            } else {
                self.transferring[server] = None;
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

    fn check_commit(
        &mut self,
        server: usize,
        node: &RawNode,
        servers: &[(Option<&RawNode>, &RecoveredState)],
    ) {
        let commit = node.commit_index();
        let seen = self.seen_commit[server];
        assert!(commit >= seen, "server {server}: commit went back from {seen} to {commit}");
        for i in seen.0 + 1..=commit.0 {
            let index = LogIndex(i);
            let Some(term) = node.log().term(index) else { continue };
            if node.role() == Role::Leader {
                self.committed_on_quorum(server, node, index, term, servers);
            }
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

    /// I4 (openraft's CommittedOnQuorum, config-aware): the entry `index@term` that leader
    /// `server` just committed is durable on a majority of the voters of the configuration it
    /// counts with: its latest, committed or not (thesis 4.1). Not necessarily on a majority
    /// of the configuration at `index`: once `{1, 2}` becomes `{1}`, node 1 alone commits
    /// what came before the change, rightly (every later quorum of either meets node 1). A
    /// server counts with its disk's acknowledged state (or, wiped and not back, the state of
    /// its old disk: see `ghosts`).
    fn committed_on_quorum(
        &self,
        server: usize,
        node: &RawNode,
        index: LogIndex,
        term: Term,
        servers: &[(Option<&RawNode>, &RecoveredState)],
    ) {
        let config = node.cluster_config();
        let voters: Vec<NodeId> = config.config.membership.voters().collect();
        let holders: Vec<NodeId> = voters
            .iter()
            .copied()
            .filter(|id| {
                let slot = id.0 as usize - 1;
                servers.get(slot).is_some_and(|(_, disk)| stores(disk, index, term))
                    || self
                        .ghosts
                        .get(slot)
                        .and_then(Option::as_ref)
                        .is_some_and(|disk| stores(disk, index, term))
            })
            .collect();
        assert!(
            holders.len() >= quorum::majority(voters.len()),
            "I4 violated: server {server} (node {}) commits {index}@{term}, durable on only \
             {holders:?} of the voters {voters:?} of the configuration at {}",
            node.id(),
            config.index
        );
    }

    /// The membership invariants of one server: I1, I6, I7, I8.
    fn check_membership(&mut self, server: usize, node: &RawNode) {
        let log = node.log();
        // I1: one configuration change in flight at a time, in every log.
        if let Some((highest, _, _)) = self.highest_committed {
            let above: Vec<LogIndex> = log
                .config_entries()
                .iter()
                .rev()
                .take_while(|c| c.index > highest)
                .map(|c| c.index)
                .collect();
            assert!(
                above.len() <= 1,
                "I1 violated: server {server} (node {}) holds config entries at {above:?}, all \
                 above the highest commit index {highest}",
                node.id()
            );
        }
        // I6: the committed configuration never goes back.
        let committed = node.committed_cluster_config();
        assert!(
            committed.index >= self.seen_committed_config[server],
            "I6 violated: server {server}: committed configuration went back from index {} to {}",
            self.seen_committed_config[server],
            committed.index
        );
        self.seen_committed_config[server] = committed.index;
        // I7: tombstones are forever, in the history that holds them.
        for id in &committed.config.removed {
            if !self.tombstones.contains_key(id) {
                let term = self
                    .committed_term
                    .get(&committed.index)
                    .copied()
                    .or_else(|| log.term(committed.index));
                if let Some(term) = term {
                    self.tombstones.insert(*id, (committed.index, term));
                }
            }
        }
        for (id, (at, at_term)) in &self.tombstones {
            // Only a log that holds the removal (or compacted past it) must agree: a stale log
            // may hold an uncommitted configuration from another branch at a higher index.
            if log.term(*at) != Some(*at_term) && *at >= log.snapshot_meta().index {
                continue;
            }
            let later = log.config_entries().iter().rev().take_while(|c| c.index > *at);
            for config in later.chain(std::iter::once(&log.snapshot().config)) {
                assert!(
                    config.index <= *at || !config.config.is_member(*id),
                    "I7 violated: server {server} (node {}) holds a configuration at {} in which \
                     node {id} is a member, after the configuration at {at} removed it",
                    node.id(),
                    config.index
                );
            }
        }
        // I8: a peer that knows it was removed never campaigns (a leader that removed itself
        // leads on until its hand-over ends).
        if node.is_removed() && self.knew_removed[server].is_none() {
            self.knew_removed[server] = Some(node.term());
        }
        if self.knew_removed[server].is_some() {
            assert!(
                !matches!(node.role(), Role::PreCandidate | Role::Candidate),
                "I8 violated: server {server} (node {}) is a {:?} after learning that its \
                 removal is committed",
                node.id(),
                node.role()
            );
        }
    }

    fn check_leader(&mut self, server: usize, node: &RawNode) {
        let term = node.term();
        let leader = *self.leader_of_term.entry(term).or_insert(server);
        assert_eq!(
            leader, server,
            "election safety violated: servers {leader} and {server} both led term {term}"
        );
        self.check_barrier(server, node);
        // I9: once it sent TimeoutNow, a leader serves no lease read for the rest of its term.
        if self.timeout_now_term[server] == Some(term) {
            assert!(
                !node.in_read_lease(),
                "I9 violated: server {server} (node {}) holds a read lease in term {term}, in \
                 which it sent TimeoutNow",
                node.id()
            );
        }
        // I10: nothing enters a transferring leader's log.
        match (node.transfer_target(), self.transferring[server]) {
            (Some(_), Some((t, last))) if t == term => assert_eq!(
                node.last_index(),
                last,
                "I10 violated: server {server} (node {}) appended entries while transferring \
                 its leadership in term {term}",
                node.id()
            ),
            (Some(_), _) => self.transferring[server] = Some((term, node.last_index())),
            (None, _) => self.transferring[server] = None,
        }
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

impl Checker {
    /// I3: a leader's config entries of its own term come after it committed an entry of
    /// that term (Ongaro's barrier): checked when each is first seen, against the commit
    /// index then (which can only be higher than when the entry was appended).
    fn check_barrier(&mut self, server: usize, node: &RawNode) {
        let term = node.term();
        let log = node.log();
        let (first_of_term, checked) = match self.leading[server] {
            Some((t, first, checked)) if t == term => (first, checked),
            _ => {
                // Newly seen leading: its first entry of the term (a new leader has at most a
                // few, so the walk back is short).
                let mut first = log.last_index().next();
                while first.prev() > log.snapshot_meta().index
                    && log.term(first.prev()) == Some(term)
                {
                    first = first.prev();
                }
                if first.prev() == log.snapshot_meta().index && log.snapshot_meta().term == term {
                    // Entries of the term are compacted already, hence committed.
                    first = log.snapshot_meta().index;
                }
                (first, LogIndex::ZERO)
            }
        };
        let mut highest = checked;
        for config in log.config_entries().iter().rev().take_while(|c| c.index > checked) {
            if log.term(config.index) != Some(term) {
                break;
            }
            highest = highest.max(config.index);
            assert!(
                first_of_term < config.index && node.commit_index() >= first_of_term,
                "I3 violated: leader {server} (node {}) of term {term} holds a config entry at \
                 {} with its first entry of the term at {first_of_term} uncommitted (commit \
                 {})",
                node.id(),
                config.index,
                node.commit_index()
            );
        }
        self.leading[server] = Some((term, first_of_term, highest));
    }
}

/// Whether a stored state holds the committed entry `index@term`: as an entry, or compacted
/// into its snapshot (which holds only committed entries, and so this one).
fn stores(state: &RecoveredState, index: LogIndex, term: Term) -> bool {
    index <= state.snapshot.meta.index || stored_term_at(state, index) == Some(term)
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
