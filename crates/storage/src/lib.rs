//! kvraft-storage: the disk under the write-ahead log and snapshot files.
//!
//! - [`data_dir`]: the data directory's identity file ([`open_data_dir`]), checked before the
//!   WAL is opened so a node never runs on another node's or another cluster's data.
//! - [`disk`]: the [`Disk`] trait, a flat directory of named files with exactly the POSIX
//!   durability points (`sync_data` for a file's bytes, `sync_dir` for creates, renames and
//!   removes), and [`DiskError`], whose variants all name the file.
//! - [`file_disk`]: [`FileDisk`], the trait over `std::fs` for real nodes.
//! - [`sim_disk`]: [`SimDisk`], an in-memory disk for the deterministic simulator, with
//!   seeded fault injection ([`FaultPlan`]) and counters ([`DiskStats`]).
//! - [`record`]: the WAL record codec (checksummed, versioned records), built on top of these.
//! - [`snapshot_file`]: the checksummed snapshot file format and its file names.
//! - [`wal`]: [`WalStorage`], the durable `kvraft_raft::Storage`: a segmented WAL (group commit,
//!   one write and one fsync per batch, into preallocated space) plus snapshot files, with
//!   crash recovery.
//! - [`sim_crash`]: [`SimDisk::crash`], power loss that keeps the synced state and a random,
//!   seed-determined part of the rest.
//!
//! Why `SimDisk` keeps *written* and *synced* state apart: a real disk returns freshly written
//! bytes to readers long before they are durable, so a storage layer that forgets an fsync
//! (or fsyncs the file but not the directory after a rename) passes every test that never
//! loses power. Modelling the page cache and the durable media separately, and letting a
//! crash keep any prefix or subset of what was unsynced, is what lets the simulator find
//! those bugs, and the torn tails and reordered writes that WAL recovery must survive.

#![warn(missing_docs)]
// The sans-IO core: no wall clock, no sleeping, no ambient randomness, no hash-map iteration
// order (the lists are in clippy.toml). Denied here, so that a violation fails clippy outright.
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod data_dir;
pub mod disk;
// FileDisk is the real disk: its table of open write handles is only looked up, never
// iterated, so a HashMap's order cannot leak into anything.
#[allow(clippy::disallowed_types)]
pub mod file_disk;
mod le;
pub mod record;
pub mod sim_crash;
pub mod sim_disk;
pub mod snapshot_file;
pub mod wal;

pub use data_dir::{
    open_data_dir, read_data_dir_identity, ClusterId, DataDirError, DataDirStatus, NodeIdentity,
};
pub use disk::{Disk, DiskError};
pub use file_disk::FileDisk;
pub use sim_crash::{CrashPolicy, CrashReport, FileFate};
pub use sim_disk::{DiskStats, FaultPlan, SimDisk};
pub use wal::{RecoveryReport, WalConfig, WalError, WalStorage};
