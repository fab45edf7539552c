//! The data Raft persists and exchanges: entries, hard state, snapshots, messages.

use bytes::Bytes;

use crate::types::{LogIndex, NodeId, Term};

/// One log entry. `data` is opaque to Raft.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub term: Term,
    pub index: LogIndex,
    pub data: Bytes,
}

/// What must survive a crash besides the log: current term, vote in it, and known commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
    pub commit: LogIndex,
}

/// The position a snapshot covers: everything up to and including `index`, whose term was `term`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    pub index: LogIndex,
    pub term: Term,
}

/// A snapshot of the service's state as of `meta.index`. `data` is opaque to Raft.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Bytes,
}

/// A message between two peers. Requests (`Vote`, `Append`, `Heartbeat`, `SnapshotChunk`) are
/// answered by exactly one response each, so a transport may pair them as RPC calls. The
/// one-way messages (`ReadIndexRequest`, `ReadIndexResponse`, see
/// [`MessageBody::is_one_way`]) are neither: a transport sends each on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageBody {
    /// RequestVote; with `pre_vote` the sender asks whether it *could* win `term` without
    /// disturbing anyone (Raft thesis 9.6).
    Vote {
        pre_vote: bool,
        last_log_index: LogIndex,
        last_log_term: Term,
    },
    VoteResponse {
        pre_vote: bool,
        granted: bool,
    },
    /// AppendEntries with any number of entries (zero for a probe).
    Append {
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
    },
    AppendResponse(AppendResult),
    /// Keeps followers' election timers at bay and tells them the commit index up to what they
    /// are known to hold (`commit` is at most the follower's match index).
    ///
    /// `read_round` is the leader's latest ReadIndex round: a follower echoes it, and a quorum
    /// of echoes confirms that the leader still led when the round began (0: no read yet).
    Heartbeat {
        commit: LogIndex,
        read_round: u64,
    },
    HeartbeatResponse {
        read_round: u64,
    },
    /// One piece of an InstallSnapshot transfer. Chunks are sent in order; `done` marks the last.
    SnapshotChunk {
        meta: SnapshotMeta,
        offset: u64,
        data: Bytes,
        done: bool,
    },
    SnapshotResponse(SnapshotResult),
    /// A follower forwards reads to its leader (Raft thesis 6.4): "tell me a read index".
    /// `ctx` names the batch of reads on the follower; it is the follower's own number (a
    /// random per-incarnation base mixed with a counter), not the application's read context,
    /// so that an answer meant for an earlier incarnation of the follower matches nothing.
    /// One-way: the leader answers with a `ReadIndexResponse` when it can, perhaps never.
    ReadIndexRequest {
        ctx: u64,
    },
    /// The leader's answer to `ReadIndexRequest { ctx }`, in the term of the request:
    /// `Some(index)` once a heartbeat round started after the request (or, with lease reads,
    /// a valid lease) confirmed the leadership that `index` (the leader's commit index when the
    /// request arrived) needs; `None` if this peer is not (or no longer) the leader. One-way.
    ReadIndexResponse {
        ctx: u64,
        index: Option<LogIndex>,
    },
}

/// A follower's answer to `Append`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendResult {
    /// The follower's log now matches the leader's up to `match_index`.
    Accepted { match_index: LogIndex },
    /// The follower has no entry `(prev_log_index, prev_log_term)`. `hint_index`/`hint_term`
    /// name the follower's last entry that could still match (term at most the leader's
    /// `prev_log_term`), so the leader skips a whole term per round trip.
    Rejected { rejected_prev: LogIndex, hint_index: LogIndex, hint_term: Term },
}

/// A follower's answer to `SnapshotChunk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotResult {
    /// The snapshot is installed (or the follower already had everything it covers); the
    /// follower's log matches the leader's up to `match_index`.
    Installed { match_index: LogIndex },
    /// Send the chunk starting at `offset` next (the first missing byte, or 0 to restart).
    NeedOffset { snapshot_index: LogIndex, offset: u64 },
}

impl MessageBody {
    /// True for the messages that expect a response.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            MessageBody::Vote { .. }
                | MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::SnapshotChunk { .. }
        )
    }

    /// True for the messages that neither expect a response nor answer a request (the
    /// follower-read forwarding pair): a transport that pairs requests with responses as RPC
    /// calls sends these on their own.
    pub fn is_one_way(&self) -> bool {
        matches!(self, MessageBody::ReadIndexRequest { .. } | MessageBody::ReadIndexResponse { .. })
    }

    /// A short name for traces and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::Vote { pre_vote: true, .. } => "PreVote",
            MessageBody::Vote { .. } => "Vote",
            MessageBody::VoteResponse { pre_vote: true, .. } => "PreVoteResponse",
            MessageBody::VoteResponse { .. } => "VoteResponse",
            MessageBody::Append { .. } => "Append",
            MessageBody::AppendResponse(_) => "AppendResponse",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResponse",
            MessageBody::SnapshotChunk { .. } => "SnapshotChunk",
            MessageBody::SnapshotResponse(_) => "SnapshotResponse",
            MessageBody::ReadIndexRequest { .. } => "ReadIndexRequest",
            MessageBody::ReadIndexResponse { .. } => "ReadIndexResponse",
        }
    }
}
