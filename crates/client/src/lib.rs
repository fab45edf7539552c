//! kvraft-client: the Clerk, and (feature `grpc`) a client for real clusters.
//!
//! [`Clerk`] is a sans-IO state machine: it decides which server to ask and what to do with
//! each answer, and its driver does the asking (the simulator's network, or gRPC below).
//! Per operation: `begin(op)` tags it with the client id and the next sequence number; then
//! repeatedly send the request to `target()` and feed the answer (or `None` for a failed or
//! timed-out call) to `on_answer`, until it says `Done`. Retries reuse the sequence number, so
//! the servers apply the operation exactly once. A driver may also grow the server list
//! (`add_server`), give up on an operation (`abandon`) and start a new session
//! (`renew_session`).
//!
//! With the `grpc` feature, [`remote`] drives the Clerk over tonic: [`remote::Client`] (`put`,
//! `append`, `get`, with per-call and per-operation timeouts, leader hints by address, and
//! typed [`remote::ClientError`]s) and [`remote::status`] (one node's `Status`). Without the
//! feature this crate depends on `kvraft-kv` alone.

mod clerk;
#[cfg(feature = "grpc")]
mod frames;
#[cfg(feature = "grpc")]
pub mod remote;

pub use clerk::{Clerk, NextStep};
#[cfg(feature = "grpc")]
pub use remote::{Client, ClientError, ClientOptions, Connections, Transport};
