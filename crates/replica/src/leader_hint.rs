//! The leader a refusal points a client (or an operator) to.

use kvraft_raft::{NodeId, RawNode};

/// The hint a refusal carries: the leader this peer follows, if it knows one (never itself).
/// A peer that knows it was removed from the cluster gives none: no leader talks to it any
/// more, so the one it remembers is stale, and a client sent back and forth between it and
/// that (stale, or removed) leader would never try the servers that lead now.
pub(crate) fn leader_hint(raft: &RawNode) -> Option<NodeId> {
    raft.leader().filter(|l| *l != raft.id() && !raft.is_removed())
}
