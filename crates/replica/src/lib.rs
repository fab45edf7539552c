//! kvraft-replica: one KV server as a deterministic state machine (no IO).
//!
//! A [`Replica`] composes a Raft peer ([`kvraft_raft::RawNode`]), the KV state machine
//! ([`kvraft_kv::KvStateMachine`]), the client requests waiting for their log entries, and the
//! snapshot policy. The simulator and the real server drive the very same code:
//!
//! 1. feed input: `tick`, `step` (peer messages), `submit` (client requests);
//! 2. while `has_ready()`: take `ready()`, persist it, call `on_persisted`, send its messages
//!    (see `kvraft_raft::Ready` for the order), then `apply(ready, raft_state_size)`;
//! 3. deliver `take_replies()` to the clients.
//!
//! A write is answered only when its own entry is applied at the index it was proposed at.
//! If another entry lands there, or this peer stops leading, the request fails at once with
//! `WrongLeader` so the client retries elsewhere; dedup makes the retry safe.
//!
//! A Get takes no log entry: Raft's ReadIndex confirms it (one heartbeat round per batch of
//! reads, or at once under an opt-in leader lease: `kvraft_raft::Config::lease_reads`), and
//! the replica serves it once its state machine has applied the read index. With
//! [`ReplicaConfig::follower_reads`] followers serve Gets too, forwarding the ReadIndex request
//! to their leader. A read Raft cannot confirm fails with `WrongLeader`, never a stale value.

mod replica;

pub use replica::{Replica, ReplicaConfig, ReplicaError, RequestId};

/// The planted-bug features this build was compiled with (empty in any real build).
pub const PLANTED_BUGS: &[&str] = &[
    #[cfg(feature = "bug-get-from-local-state")]
    "bug-get-from-local-state",
];
