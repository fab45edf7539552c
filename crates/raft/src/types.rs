//! Newtypes for the integers Raft juggles, so that an index is never mistaken for a term.

use std::fmt;

/// The identity of one Raft peer in a cluster. Never 0 in a real cluster (0 means "none" on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u64);

/// Identifies one cluster: a non-zero 64-bit value fixed when the cluster is defined, carried
/// by every peer message batch and stored in every node's data directory, so that nodes of two
/// clusters that could share hosts never mix. Displayed as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ClusterId(pub u64);

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Names one `Ready` handed out by a node, counting up from 1, so that storage can report
/// which writes are durable (`RawNode::on_persisted`): reporting one reports every earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ReadyNumber(pub u64);

impl fmt::Display for ReadyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A Raft term: a logical clock that only ever grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Term(pub u64);

/// What a peer is in its current term. The public face of the node's role: the state each
/// role needs lives with the role inside `RawNode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one), answering its requests.
    Follower,
    /// Asking whether it could win an election, without changing its term (thesis 9.6).
    PreCandidate,
    /// Asks for votes in a term of its own.
    Candidate,
    /// Leads its term: the only role that accepts proposals.
    Leader,
}

/// A leader's ReadIndex heartbeat round (see `read_index`). Rounds only grow, across terms too,
/// so that an echo of an old round can never confirm a newer read. Messages carry the bare
/// number (`MessageBody::Heartbeat::read_round`), 0 meaning "no round".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ReadRound(pub u64);

impl ReadRound {
    /// No round: what heartbeats carry before the first read, and what a stale echo says.
    pub const NONE: ReadRound = ReadRound(0);
    /// Every round: what the leader has seen of its own rounds when a quorum is counted.
    pub const ALL: ReadRound = ReadRound(u64::MAX);

    /// The round after this one.
    pub fn next(self) -> ReadRound {
        ReadRound(self.0 + 1)
    }
}

/// A position in the replicated log. Index 0 is the empty prefix; the first entry is 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogIndex(pub u64);

impl LogIndex {
    /// The empty prefix: before the first entry.
    pub const ZERO: LogIndex = LogIndex(0);

    /// The index after this one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }

    /// The index before this one; the empty prefix has no predecessor and stays 0.
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }

    /// The index `n` positions after this one.
    pub fn plus(self, n: u64) -> LogIndex {
        LogIndex(self.0 + n)
    }
}

impl Term {
    /// The term after this one.
    pub fn next(self) -> Term {
        Term(self.0 + 1)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
