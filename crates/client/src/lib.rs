//! kvraft-client: the Clerk.
//!
//! [`Clerk`] is a sans-IO state machine: it decides which server to ask and what to do with
//! each answer, and its driver does the asking (the simulator's network today, gRPC later).
//! Per operation: `begin(op)` tags it with the client id and the next sequence number; then
//! repeatedly send the request to `target()` and feed the answer (or `None` for a failed or
//! timed-out call) to `on_answer`, until it says `Done`. Retries reuse the sequence number, so
//! the servers apply the operation exactly once.

mod clerk;

pub use clerk::{Clerk, NextStep};
