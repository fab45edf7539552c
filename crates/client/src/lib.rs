//! kvraft-client: the Clerk, and (feature `remote`) a client for real clusters.
//!
//! [`Clerk`] is a sans-IO state machine that makes every decision a client makes: which server
//! to ask, what each answer means, when to retry and how long to wait, when a session must be
//! renewed. Its driver only does the asking: the simulator's network, or the network client
//! below. Per operation: `begin(op)` tags it with the client id and the next sequence number;
//! then repeatedly send the request to `target()` and feed the [`Answer`] to `on_answer`, until
//! it says `Done` (or gives up on an overloaded server). Retries reuse the sequence number, so
//! the servers apply the operation exactly once.
//!
//! With the `remote` feature, [`remote`] drives the Clerk over client frames or gRPC:
//! [`remote::Client`] (`put`, `append`, `get`, with per-call and per-operation timeouts, leader
//! hints by address, and typed [`remote::ClientError`]s) and [`remote::status`] (one node's
//! `Status`). Without the feature this crate depends on `kvraft-kv` alone.

// The Clerk is sans-IO: no wall clock, no sleeping, no ambient randomness, no hash-map
// iteration order (the lists are in clippy.toml). `remote` drives it over the network and
// reads clocks, so the ban covers the Clerk only.
#[deny(clippy::disallowed_methods, clippy::disallowed_types)]
mod clerk;
#[cfg(feature = "remote")]
pub mod remote;

pub use clerk::{Answer, Clerk, NextStep};
#[cfg(feature = "remote")]
pub use remote::{Client, ClientError, ClientOptions, Connections, Transport};
