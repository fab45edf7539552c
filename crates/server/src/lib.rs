//! kvraft-server: the real-world driver of the sans-IO replica (`kvraft-replica`).
//!
//! One task (`node`) owns the replica and is the only owner of the state: it ticks it, feeds
//! it peer messages and client requests, and carries its outputs (from the Ready pipeline the
//! simulator runs too) to their IO. Around it:
//! - `wal_thread`: a dedicated thread that owns the WAL (`kvraft-storage` on real files) and
//!   makes each group write durable with one append and one fsync;
//! - `peer_outbound`: per peer, a bounded send queue and a task that keeps one long-lived TCP
//!   connection open (reconnecting with backoff) and writes message batches down it;
//!   `peer_inbound`: the receiving end, which refuses foreign clusters;
//! - `api`: the client API independent of any wire (size and rate checks, the round trip to
//!   the node task), with thin adapters per protocol: `grpc` (KvService) and `client_frames`,
//!   sharing the protobuf conversions of `pb_calls`;
//! - `listener`: the one port, shared by peers and clients, dispatching each connection by its
//!   first bytes;
//! - [`config`]: flags, environment and TOML file, validated up front;
//! - `peer_check`: at startup, peers that report another cluster definition stop the node;
//! - [`cli`]: command-line conventions the `kvraft` and `kvraft-bench` binaries share.
//!
//! Module dependencies go one way: `listener` → adapters → `api` → `context` → `node` →
//! `peer_outbound`, `wal_thread`; `conn` and `config` are leaves.
//!
//! [`LocalCluster`] ([`local_cluster`]) runs N nodes in one process on loopback, for `kvraft
//! dev` and for tests.
//!
//! [`start`] brings a node up and returns a [`ServerHandle`]; [`run_until_signal`] is what
//! `kvraft server` runs. Every acknowledged write is fsynced first, so kill -9 at any point
//! loses nothing acknowledged.

mod api;
pub mod cli;
mod client_frames;
pub mod config;
mod conn;
mod context;
mod grpc;
mod listener;
pub mod local_cluster;
mod node;
mod pb_calls;
mod peer_check;
mod peer_inbound;
mod peer_outbound;
mod rate_limit;
mod server;
mod wal_thread;

pub use config::{ConfigError, Member, ServerArgs, ServerConfig};
pub use local_cluster::{free_ports, LocalCluster, LocalClusterError, LocalClusterSpec, Ports};
pub use node::NodeError;
pub use server::{
    init_logging, run_until_signal, shutdown_signal, start, ServerError, ServerHandle,
};
