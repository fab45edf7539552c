//! The data Raft persists and exchanges: entries, hard state, snapshots, messages.

use bytes::Bytes;

use crate::cluster_config::ConfigState;
use crate::types::{LogIndex, NodeId, Term};

/// One log entry. A normal entry's `data` is opaque to Raft; a config entry's is a
/// [`crate::ClusterConfig`] in its encoded form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// Its position in the log.
    pub index: LogIndex,
    /// What the entry carries.
    pub kind: EntryKind,
    /// The application's command (empty for a new leader's no-op), or the encoded
    /// configuration of a config entry.
    pub data: Bytes,
}

/// What a log entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum EntryKind {
    /// An application command, or (empty) a new leader's no-op.
    #[default]
    Normal,
    /// A whole new cluster configuration ([`crate::ClusterConfig::encode`]), in effect on a
    /// peer from the moment the peer appends it.
    Config,
}

impl Entry {
    /// A normal entry: an application command, or an empty no-op.
    pub fn normal(term: Term, index: LogIndex, data: Bytes) -> Entry {
        Entry { term, index, kind: EntryKind::Normal, data }
    }
}

/// What must survive a crash besides the log: current term, vote in it, and known commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HardState {
    /// The latest term this peer has seen.
    pub term: Term,
    /// The candidate this peer voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The highest index known committed (volatile: relearned after a restart, stored only
    /// alongside other writes).
    pub commit: LogIndex,
}

/// The position a snapshot covers: everything up to and including `index`, whose term was `term`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    /// The last index the snapshot covers.
    pub index: LogIndex,
    /// The term of the entry at `index`.
    pub term: Term,
}

/// A snapshot of the service's state as of `meta.index`. `data` is opaque to Raft.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The position the snapshot covers.
    pub meta: SnapshotMeta,
    /// The latest configuration at or below `meta.index` (committed, as the index is).
    pub config: ConfigState,
    /// The service's state as of `meta.index`.
    pub data: Bytes,
}

impl Snapshot {
    /// The snapshot at index 0 that holds a new cluster's first configuration: what a driver
    /// writes to an initial member's empty storage before its first start, so that the
    /// configuration is durable from the start (index 1 stays the first command).
    pub fn bootstrap(config: crate::ClusterConfig) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta::default(),
            config: ConfigState { index: LogIndex::ZERO, config },
            data: Bytes::new(),
        }
    }
}

/// A message between two peers. Requests (`Vote`, `Append`, `Heartbeat`, `SnapshotChunk`) are
/// answered by exactly one response each, so a transport may pair them as RPC calls. The
/// one-way messages (`ReadIndexRequest`, `ReadIndexResponse`, see
/// [`MessageBody::is_one_way`]) are neither: a transport sends each on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The recipient.
    pub to: NodeId,
    /// The sender's term (for a pre-vote and a granted pre-vote response: the term the candidate
    /// hopes for).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The kinds of message, with what each carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageBody {
    /// RequestVote; with `pre_vote` the sender asks whether it *could* win `term` without
    /// disturbing anyone (Raft thesis 9.6).
    Vote {
        /// A pre-vote poll rather than a real vote.
        pre_vote: bool,
        /// The index of the candidate's last entry.
        last_log_index: LogIndex,
        /// The term of the candidate's last entry: voters refuse a candidate whose log is behind
        /// theirs.
        last_log_term: Term,
        /// The leader handed its leadership to the candidate (`TimeoutNow`): voters that heard
        /// from that leader recently vote anyway (thesis 3.10).
        leadership_transfer: bool,
    },
    /// The answer to `Vote`.
    VoteResponse {
        /// Answers a pre-vote poll.
        pre_vote: bool,
        /// The vote (or pre-vote) is granted.
        granted: bool,
    },
    /// AppendEntries with any number of entries (zero for a probe).
    Append {
        /// The index of the entry just before `entries`.
        prev_log_index: LogIndex,
        /// Its term: the follower accepts only if its log holds that entry.
        prev_log_term: Term,
        /// The entries to append, in order.
        entries: Vec<Entry>,
        /// The leader's commit index, at most the last index sent.
        leader_commit: LogIndex,
    },
    /// The answer to `Append`.
    AppendResponse(AppendResult),
    /// Keeps followers' election timers at bay and tells them the commit index up to what they
    /// are known to hold (`commit` is at most the follower's match index).
    ///
    /// `read_round` is the leader's latest ReadIndex round: a follower echoes it, and a quorum
    /// of echoes confirms that the leader still led when the round began (0: no read yet).
    Heartbeat {
        /// The commit index, at most what this follower is known to hold.
        commit: LogIndex,
        /// The leader's latest ReadIndex round (0: none).
        read_round: u64,
    },
    /// The answer to `Heartbeat`.
    HeartbeatResponse {
        /// The round of the heartbeat answered, echoed.
        read_round: u64,
    },
    /// One piece of an InstallSnapshot transfer. Chunks are sent in order; `done` marks the last.
    SnapshotChunk {
        /// The position the whole snapshot covers.
        meta: SnapshotMeta,
        /// The snapshot's configuration (see [`Snapshot::config`]).
        config: ConfigState,
        /// Where this chunk starts in the snapshot's data.
        offset: u64,
        /// The chunk's bytes.
        data: Bytes,
        /// This is the last chunk.
        done: bool,
    },
    /// The answer to `SnapshotChunk`.
    SnapshotResponse(SnapshotResult),
    /// A follower forwards reads to its leader (Raft thesis 6.4): "tell me a read index".
    /// `ctx` names the batch of reads on the follower; it is the follower's own number (a
    /// random per-incarnation base mixed with a counter), not the application's read context,
    /// so that an answer meant for an earlier incarnation of the follower matches nothing.
    /// One-way: the leader answers with a `ReadIndexResponse` when it can, perhaps never.
    ReadIndexRequest {
        /// The follower's number for the batch of reads.
        ctx: u64,
    },
    /// The leader hands its leadership to the recipient: campaign now, skipping PreVote, and
    /// tell the voters so (thesis 3.10). Sent only once the recipient holds the leader's whole
    /// log. One-way.
    TimeoutNow {
        /// The index the recipient's log must reach (the leader's last, frozen).
        last_index: LogIndex,
    },
    /// The recipient of `TimeoutNow` will not campaign; the leader stops the transfer at once.
    /// One-way.
    TimeoutNowRejected {
        /// Why.
        reason: TransferRefusal,
    },
    /// The sender's committed configuration says the recipient was removed from the cluster:
    /// it must stop campaigning and serving for good. One-way.
    Removed {
        /// The index of the sender's latest committed configuration, which lists the
        /// recipient as removed (the removal itself may be at an earlier index).
        config_index: LogIndex,
    },
    /// The leader's answer to `ReadIndexRequest { ctx }`, in the term of the request:
    /// `Some(index)` once a heartbeat round started after the request (or, with lease reads,
    /// a valid lease) confirmed the leadership that `index` (the leader's commit index when the
    /// request arrived) needs; `None` if this peer is not (or no longer) the leader. One-way.
    ReadIndexResponse {
        /// The `ctx` of the request answered.
        ctx: u64,
        /// The read index, or `None` if refused.
        index: Option<LogIndex>,
    },
}

/// Why a peer refused to take over leadership on `TimeoutNow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferRefusal {
    /// It is not a voter in its latest configuration.
    NotAVoter,
    /// Its log is behind the leader's (a reordered or stale `TimeoutNow`).
    LogBehind,
    /// It is receiving a snapshot.
    SnapshotInFlight,
    /// It knows it was removed from the cluster.
    Removed,
}

/// A follower's answer to `Append`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendResult {
    /// The follower's log now matches the leader's up to `match_index`.
    Accepted {
        /// The last index the follower's log now shares with the leader's.
        match_index: LogIndex,
    },
    /// The follower has no entry `(prev_log_index, prev_log_term)`. `hint_index`/`hint_term`
    /// name the follower's last entry that could still match (term at most the leader's
    /// `prev_log_term`), so the leader skips a whole term per round trip.
    Rejected {
        /// The `prev_log_index` of the `Append` refused, so the leader can tell a stale
        /// rejection from a current one.
        rejected_prev: LogIndex,
        /// The follower's last entry that could still match.
        hint_index: LogIndex,
        /// The term of that entry.
        hint_term: Term,
    },
}

/// A follower's answer to `SnapshotChunk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotResult {
    /// The snapshot is installed (or the follower already had everything it covers); the
    /// follower's log matches the leader's up to `match_index`.
    Installed {
        /// The last index the follower's log now shares with the leader's.
        match_index: LogIndex,
    },
    /// Send the chunk starting at `offset` next (the first missing byte, or 0 to restart).
    NeedOffset {
        /// The index of the snapshot being received, so that an answer about another
        /// transfer is ignored.
        snapshot_index: LogIndex,
        /// The first byte the follower still needs.
        offset: u64,
    },
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
        matches!(
            self,
            MessageBody::ReadIndexRequest { .. }
                | MessageBody::ReadIndexResponse { .. }
                | MessageBody::TimeoutNow { .. }
                | MessageBody::TimeoutNowRejected { .. }
                | MessageBody::Removed { .. }
        )
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
            MessageBody::TimeoutNow { .. } => "TimeoutNow",
            MessageBody::TimeoutNowRejected { .. } => "TimeoutNowRejected",
            MessageBody::Removed { .. } => "Removed",
        }
    }
}
