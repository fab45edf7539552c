//! kvraft-proto: kvraft's gRPC schema, the Rust code generated from it, and the conversions
//! between wire messages and kvraft's domain types.
//!
//! The schema lives in `proto/kvraft/v1/` (protobuf package `kvraft.v1`) and is the contract
//! for anything that talks to a kvraft server; its comments are written so that a client in
//! another language can be built from the `.proto` files alone:
//!
//! - `kv.proto`: the **client service** `KvService` (`Put`, `Append`, `Get`, `Status`), with
//!   the exactly-once rules (client id + sequence), structured errors and leader hints.
//! - `peer.proto`: the **peer protocol**: each node keeps one long-lived TCP connection to
//!   every peer and pushes [`v1::MessageBatch`]es down it, one length-prefixed frame each (no
//!   HTTP/2: the framing is described in the file). A batch names its cluster, sender and
//!   recipient, and carries [`v1::RaftMessage`]s that mirror the Raft core's `Message` one to
//!   one (snapshots travel as `SnapshotChunk` messages).
//! - `frames.proto`: the client calls of `KvService` (`Put`, `Append`, `Get`) as frames on a
//!   plain TCP connection, without HTTP/2, which the Rust client uses by default.
//!
//! [`frame`] reads and writes the length-prefixed frames both plain-TCP protocols use, and
//! [`peer_wire`] what the peer protocol puts in them.
//!
//! `build.rs` runs prost + tonic code generation at build time, with `protoc` taken from the
//! `protoc-bin-vendored` crate (no system protoc needed) and every `bytes` field generated as
//! [`bytes::Bytes`], so entry and snapshot payloads are never copied. Everything generated is
//! in [`v1`]: the messages, plus the tonic modules [`v1::kv_service_client`] and
//! [`v1::kv_service_server`].
//!
//! [`convert`] is the one place that maps wire types to domain types (`kvraft-raft`'s
//! `Message`, `kvraft-kv`'s `ClientRequest` and `Reply`, the Raft `Role`) and back. Domain to
//! wire is infallible; wire to domain returns [`ConvertError`] for anything malformed, since
//! bytes from the network are untrusted: no input makes it panic. The server decodes with
//! tonic, converts with `TryFrom`, and answers a conversion error with gRPC
//! `INVALID_ARGUMENT`.

pub mod convert;
pub mod frame;
pub mod peer_wire;

/// The generated code for protobuf package `kvraft.v1`: both services and their messages.
pub mod v1 {
    tonic::include_proto!("kvraft.v1");
}

pub use convert::{ClusterId, ConvertError, KvRequest, OutcomeMismatch, PeerBatch};
