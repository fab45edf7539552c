//! kvraft-raft: the Raft consensus algorithm as a deterministic, sans-IO state machine.
//!
//! [`RawNode`] is one peer. Its driver (the simulator in `kvraft-sim`, or the server) feeds it
//! ticks, messages from peers and proposals, and repeatedly takes a [`Ready`]: what to persist,
//! what to send (and what may be sent only after persisting), and what to apply. The node never
//! reads a clock, touches a socket or file, or uses ambient randomness, so the same code runs
//! byte-for-byte identically under simulation and in production.
//!
//! Parts: [`log`] (snapshot + retained entries and their watermarks), [`progress`] (the
//! leader's view of each follower: probe / pipelined replicate / snapshot transfer),
//! [`membership`] (the voters and learners, and when some of them are a quorum; joint-capable),
//! [`quorum`] (the majority maths of one voter set), [`storage`] (the durability contract and
//! an in-memory implementation), [`message`] (what peers exchange), [`read_index`]
//! (linearizable reads without log writes: ReadIndex on the leader, reads forwarded by
//! followers, opt-in leader leases), and the `RawNode` itself, whose logic is split into
//! elections, leader-side replication and follower-side handling.
//!
//! Inside the crate: the state a role needs lives with the role (`role`: a leader's tracker and
//! reads exist only while it leads, a poll only while it campaigns); every decision that needs
//! a quorum (commit, election, check-quorum, ReadIndex rounds) is taken in one place,
//! `tracker`, through [`membership::Membership`]; and the read bookkeeping (`read_queue` on the
//! leader, `forwarded_reads` on a follower) only decides, leaving the sending to `read_index`.

#![warn(missing_docs)]
// The sans-IO core: no wall clock, no sleeping, no ambient randomness, no hash-map iteration
// order (the lists are in clippy.toml). Denied here, so that a violation fails clippy outright.
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod cluster_config;
pub mod conf_change;
pub mod config;
mod election;
mod follower;
mod forwarded_reads;
mod invariants;
pub mod log;
pub mod membership;
mod membership_change;
pub mod message;
pub mod progress;
mod promotion;
pub mod quorum;
pub mod raw_node;
pub mod read_index;
mod read_queue;
pub mod ready;
mod replication;
pub mod rng;
mod role;
pub mod size;
pub mod storage;
mod tracker;
mod transfer;
pub mod types;

/// The planted-bug features this build was compiled with (empty in any real build). The
/// simulator names them in reproduce commands.
pub const PLANTED_BUGS: &[&str] = &[
    #[cfg(feature = "bug-vote-without-log-check")]
    "bug-vote-without-log-check",
    #[cfg(feature = "bug-commit-old-term-by-count")]
    "bug-commit-old-term-by-count",
    #[cfg(feature = "bug-lease-too-long")]
    "bug-lease-too-long",
    #[cfg(feature = "bug-config-before-term-commit")]
    "bug-config-before-term-commit",
    #[cfg(feature = "bug-two-pending-configs")]
    "bug-two-pending-configs",
    #[cfg(feature = "bug-promote-without-catchup")]
    "bug-promote-without-catchup",
    #[cfg(feature = "bug-reuse-removed-id")]
    "bug-reuse-removed-id",
    #[cfg(feature = "bug-transfer-keeps-lease")]
    "bug-transfer-keeps-lease",
];

pub use cluster_config::{ClusterConfig, ConfigDecodeError, ConfigState};
pub use conf_change::{ChangeError, ChangeRequest, MembershipChange};
pub use config::{Config, ConfigError};
pub use membership_change::ProposedChange;
pub use message::{
    AppendResult, Entry, EntryKind, HardState, Message, MessageBody, Snapshot, SnapshotMeta,
    SnapshotResult, TransferRefusal,
};
pub use promotion::MemberStatus;
pub use raw_node::{ProposeError, RawNode, SnapshotError, StepError};
pub use read_index::ReadIndexError;
pub use ready::{PersistBatch, ReadState, Ready};
pub use rng::DetRng;
pub use storage::{MemStorage, RecoveredState, Storage};
pub use transfer::TransferError;
pub use types::{ClusterId, LogIndex, NodeId, ReadRound, ReadyNumber, Role, Term};
