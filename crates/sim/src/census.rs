//! A census of the moments a run created, so that a change to the execution model can be judged
//! by whether the scenarios a test aims for actually arise.
//!
//! Today it counts the precondition of the Raft paper's Figure 8: a leader that dies holding an
//! entry of its own term, in what its storage kept, that it had sent to a follower but not yet
//! committed. Only then can a later leader find that entry on some logs and not others, and be
//! tempted to commit it by counting replicas (`bug-commit-old-term-by-count`).

use kvraft_raft::{LogIndex, Message, MessageBody, RawNode, RecoveredState, Role, Term};

/// What a run's leader crashes looked like.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LeaderCrashCensus {
    /// Crashes of a server that believed it led.
    pub leader_crashes: u64,
    /// Of those, the leaders whose storage, after the crash, holds an entry of their term that
    /// they had sent to a follower and not committed (Figure 8's precondition).
    pub uncommitted_sent: u64,
    /// Of those, the ones whose highest such entry no majority of the servers' storage held at
    /// the moment of the crash (requests still in flight may add copies later). This is the
    /// paper's picture exactly: the entry lives on a minority.
    pub on_minority: u64,
}

impl LeaderCrashCensus {
    /// Adds another run's counts to these.
    pub fn add(&mut self, other: &LeaderCrashCensus) {
        self.leader_crashes += other.leader_crashes;
        self.uncommitted_sent += other.uncommitted_sent;
        self.on_minority += other.on_minority;
    }
}

impl std::fmt::Display for LeaderCrashCensus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} leader crashes, {} holding a sent, uncommitted entry of their term, {} of them on a minority",
            self.leader_crashes, self.uncommitted_sent, self.on_minority
        )
    }
}

/// Follows what each server sends and counts leader crashes (see the module docs).
#[derive(Debug)]
pub struct Census {
    pub counts: LeaderCrashCensus,
    /// Per server: the highest index of an entry of the sender's term that its current
    /// incarnation sent in an append, with that term.
    sent: Vec<Option<(Term, LogIndex)>>,
}

impl Census {
    pub fn new(servers: usize) -> Census {
        Census { counts: LeaderCrashCensus::default(), sent: vec![None; servers] }
    }

    /// `server` hands `msgs` to the network.
    pub fn on_send(&mut self, server: usize, msgs: &[Message]) {
        for m in msgs {
            let MessageBody::Append { entries, .. } = &m.body else { continue };
            let Some(last) = entries.iter().rev().find(|e| e.term == m.term) else { continue };
            let sent = &mut self.sent[server];
            if sent.is_none_or(|(term, index)| term < m.term || index < last.index) {
                *sent = Some((m.term, last.index));
            }
        }
    }

    /// `server`, running `node` (as it was just before the crash), crashed; `kept` is what its
    /// storage holds after the crash, and `stored` what every server's storage holds now
    /// (`kept` included).
    pub fn on_crash<'a>(
        &mut self,
        server: usize,
        node: &RawNode,
        kept: &RecoveredState,
        stored: impl Iterator<Item = &'a RecoveredState>,
    ) {
        let sent = self.sent[server].take();
        if node.role() != Role::Leader {
            return;
        }
        self.counts.leader_crashes += 1;
        let Some((term, sent_through)) = sent.filter(|(term, _)| *term == node.term()) else {
            return;
        };
        let commit = node.commit_index();
        let held = kept
            .entries
            .iter()
            .rev()
            .find(|e| e.term == term && e.index > commit && e.index <= sent_through);
        let Some(entry) = held else { return };
        self.counts.uncommitted_sent += 1;
        let (mut holders, mut servers) = (0, 0);
        for state in stored {
            servers += 1;
            if stored_term_at(state, entry.index) == Some(term) {
                holders += 1;
            }
        }
        if holders <= servers / 2 {
            self.counts.on_minority += 1;
        }
    }

    /// One more server (see `World::add_server`).
    pub fn add_server(&mut self) {
        self.sent.push(None);
    }

    /// `server` (re)started: nothing sent yet.
    pub fn on_start(&mut self, server: usize) {
        self.sent[server] = None;
    }
}

/// The term of the entry at `index` in a stored state, if it holds it as an entry.
fn stored_term_at(state: &RecoveredState, index: LogIndex) -> Option<Term> {
    let first = state.entries.first()?.index;
    let offset = index.0.checked_sub(first.0)? as usize;
    state.entries.get(offset).map(|e| e.term)
}
