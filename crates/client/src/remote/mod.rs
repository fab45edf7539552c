//! The Clerk driven over the network: a [`Client`] for a real kvraft cluster (feature
//! `remote`).
//!
//! The [`Clerk`](crate::Clerk) decides everything (whom to ask, what an answer means, when to
//! retry, when a session must be renewed: see its module docs for the table); this module only
//! does the asking, over client frames (`frames.proto`, the default) or gRPC ([`Transport`]),
//! which carry the same calls, answers and statuses. Per attempt it sends the tagged request to
//! the Clerk's target with a per-call timeout and turns what came back into a Clerk `Answer`:
//!
//! | what came back                                                      | Clerk `Answer`   |
//! |---------------------------------------------------------------------|------------------|
//! | a reply (a value, done, or a refusal such as `NOT_LEADER`)          | `Reply`          |
//! | timeout, transport error, `UNAVAILABLE` and the other transport-like statuses, a malformed reply | `Failed` |
//! | `RESOURCE_EXHAUSTED`                                                | `Overloaded`     |
//! | `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, any other status          | (an error, not retried) |
//!
//! **Leader hints.** A hint carries the leader's node id and, usually, its address. The address
//! is looked up in the endpoint list; an address the list lacks is appended to it (up to
//! [`MAX_ENDPOINTS`]; the Clerk grows with it), so a client given one server finds the others,
//! and the Clerk learns that this endpoint is that node. A hint without an address is followed
//! only to an endpoint the client already knows as that node.
//!
//! **Timeouts.** With [`ClientOptions::op_timeout`] `None` an operation is retried until it
//! succeeds; otherwise it fails with [`ClientError::Timeout`] once the time is up. A write that
//! timed out may still take effect later: its outcome is unknown.
//!
//! **Sessions.** One [`Client`] is one session (client id + sequence numbers) and runs one
//! operation at a time (`&mut self`). An operation given up on (timeout, error, or a dropped
//! future: the methods are cancel-safe in that sense) is abandoned; when the Clerk says the
//! session can no longer be used, the client starts a fresh one (a new random client id).

mod client;
mod connections;
mod error;
mod frames;
mod options;
mod status;
mod wire;

pub use client::Client;
pub use connections::{parse_address, Connections, MAX_ENDPOINTS};
pub use error::{classify_status, format_duration, ClientError, StatusClass};
pub use options::{new_client_id, ClientOptions, Transport};
pub use status::status;
