//! kvraft-server: the real-world driver of the sans-IO replica (`kvraft-replica`).
//!
//! One task ([`node`]) owns the replica and is the only owner of the state: it ticks it, feeds
//! it peer messages and client requests, and drives its `Ready`s exactly as the simulator
//! does. Around it:
//! - [`wal_thread`]: a dedicated thread that owns the WAL (`kvraft-storage` on real files),
//!   writes every batch queued meanwhile as one append and one fsync (group commit), and
//!   reports back;
//! - [`transport`]: per peer, a bounded send queue and a task that keeps one long-lived TCP
//!   connection open (reconnecting with backoff) and writes message batches down it, framed
//!   by [`peer_wire`];
//! - [`listener`]: the one port, shared by peers (to [`peer_inbound`], which refuses foreign
//!   clusters) and clients, over gRPC or client frames ([`client_inbound`]), both served by
//!   [`service`], the `KvService` with size and rate limits;
//! - [`config`]: flags, environment and TOML file, validated up front;
//! - [`peer_check`]: at startup, peers that report another cluster definition stop the node;
//! - [`cli`]: command-line conventions the `kvraft` and `kvraft-bench` binaries share.
//!
//! [`LocalCluster`] ([`local_cluster`]) runs N nodes in one process on loopback, for `kvraft
//! dev` and for tests.
//!
//! [`start`] brings a node up and returns a [`ServerHandle`]; [`run_until_signal`] is what
//! `kvraft server` runs. Every acknowledged write is fsynced first, so kill -9 at any point
//! loses nothing acknowledged.

pub mod cli;
pub mod client_inbound;
pub mod config;
pub mod listener;
pub mod local_cluster;
pub mod node;
pub mod peer_check;
pub mod peer_inbound;
pub mod peer_wire;
pub mod service;
pub mod transport;
pub mod wal_thread;

mod server;

pub use config::{ConfigError, Member, ServerArgs, ServerConfig};
pub use local_cluster::{free_ports, LocalCluster, LocalClusterError, LocalClusterSpec, Ports};
pub use server::{
    init_logging, run_until_signal, shutdown_signal, start, ServerError, ServerHandle,
};
