//! kvraft-replica: one KV server as a deterministic state machine (no IO).
//!
//! A [`Replica`] composes a Raft peer ([`kvraft_raft::RawNode`]), the KV state machine
//! ([`kvraft_kv::KvStateMachine`]) with the client requests waiting for it (`applier`), and the
//! [`pipeline`] that carries each Raft `Ready` to the disk, the network and the state machine
//! in the order safety needs. The simulator and the real server drive the very same code, and
//! only do IO:
//!
//! 1. feed input: `tick`, `step` (peer messages), `submit` (client requests), and
//!    `on_written` when the disk has made a write durable;
//! 2. after each input, call `poll` until it returns None, and do what each [`Output`] says:
//!    send messages, start a group write (at most one is handed out at a time), answer a
//!    client.
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

#![warn(missing_docs)]
// The sans-IO core: no wall clock, no sleeping, no ambient randomness, no hash-map iteration
// order (the lists are in clippy.toml). Denied here, so that a violation fails clippy outright.
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod admin;
mod applier;
mod leader_hint;
pub mod pipeline;
mod reads;
mod replica;

pub use admin::{AdminError, AdminOutcome, AdminReply, AdminRequest};
pub use pipeline::{Apply, DurableBatch, Output, ReadyPipeline, Write};
pub use replica::{Replica, ReplicaConfig, ReplicaError, RequestId};

/// The planted-bug features this build was compiled with (empty in any real build).
pub const PLANTED_BUGS: &[&str] = &[
    #[cfg(feature = "bug-get-from-local-state")]
    "bug-get-from-local-state",
    #[cfg(feature = "bug-send-before-durable")]
    "bug-send-before-durable",
];
