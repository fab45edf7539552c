//! What clients ask and what they are told.

use std::fmt;

pub use kvraft_raft::NodeId;

/// A client session's identity, chosen by the client (randomly, so that clients never clash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ClientId(pub u64);

/// A client's request number: 1 for its first request, then +1 for each new one. A retry of a
/// request reuses its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sequence(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// What a client asks the store to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read `key`'s value.
    Get {
        /// The key read.
        key: String,
    },
    /// Set `key` to `value`.
    Put {
        /// The key written.
        key: String,
        /// Its new value.
        value: String,
    },
    /// Append `value` to `key`'s value (a missing key counts as empty).
    Append {
        /// The key written.
        key: String,
        /// What is appended to its value.
        value: String,
    },
}

impl Op {
    /// The key the operation reads or writes.
    pub fn key(&self) -> &str {
        match self {
            Op::Get { key } | Op::Put { key, .. } | Op::Append { key, .. } => key,
        }
    }
}

/// One client operation, tagged for exactly-once execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    /// The client's session.
    pub client: ClientId,
    /// The request's number in that session: a retry reuses it, so it is applied at most once.
    pub seq: Sequence,
    /// What to do.
    pub op: Op,
}

/// A command in the replicated log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A client's operation.
    Client(ClientRequest),
}

/// The result of an applied operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A Get's value ("" for a missing key).
    Value(String),
    /// A Put or Append took effect.
    Done,
}

/// Why a request was not executed (or may not have been).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// This server cannot serve the request; try `leader` (the node this server believes
    /// leads, never itself) or another. Safe to retry: the request was not applied by this
    /// attempt, or will be deduplicated.
    #[error("{}", match .leader { Some(id) => format!("not the leader (node {id} is)"), None => "not the leader (leader unknown)".to_string() })]
    WrongLeader {
        /// The node this server believes leads, if it knows one.
        leader: Option<NodeId>,
    },
    /// The client's session was expired (it was idle too long, or the table was full): the
    /// server can no longer tell whether a retried request was applied. Not retryable.
    #[error("client session expired; the outcome of this request is unknown")]
    SessionExpired,
    /// The request is older than the client's latest: the client has moved on. Not retryable.
    #[error("stale request: the client has already issued a newer one")]
    Stale,
}

impl KvError {
    /// True if sending the same request again (same client and sequence) is safe and may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, KvError::WrongLeader { .. })
    }
}

/// What the state machine answers to one request.
pub type Reply = Result<Outcome, KvError>;
