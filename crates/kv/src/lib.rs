//! kvraft-kv: the replicated key/value state machine.
//!
//! [`command`] defines what clients send (`Put`, `Append`, `Get`, tagged with a client id and
//! sequence number) and what they get back; [`codec`] turns log commands into bytes and back;
//! [`sessions`] is the bounded table that makes client requests exactly-once;
//! [`state_machine::KvStateMachine`] applies commands in log order and snapshots itself,
//! sessions included. Everything here is deterministic and free of IO.

#![warn(missing_docs)]
// The sans-IO core: no wall clock, no sleeping, no ambient randomness, no hash-map iteration
// order (the lists are in clippy.toml). Denied here, so that a violation fails clippy outright.
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod codec;
pub mod command;
pub mod sessions;
pub mod state_machine;

pub use command::{
    ClientId, ClientRequest, Command, KvError, NodeId, Op, Outcome, Reply, Sequence,
};
pub use sessions::{Dedup, SessionLimits};
pub use state_machine::KvStateMachine;

/// The planted-bug features this build was compiled with (empty in any real build).
pub const PLANTED_BUGS: &[&str] = &[
    #[cfg(feature = "bug-no-duplicate-detection")]
    "bug-no-duplicate-detection",
    #[cfg(feature = "bug-snapshot-without-sessions")]
    "bug-snapshot-without-sessions",
    #[cfg(feature = "bug-session-activity-leak")]
    "bug-session-activity-leak",
];
