//! kvraft-testkit: what the tests that run real `kvraft` processes share (the process tests and
//! the Docker test of the `kvraft` package), and the process cluster `kvraft-bench scale`
//! measures.
//!
//! - [`process_cluster`]: [`ProcessCluster`], `kvraft server` child processes on loopback,
//!   started, killed, stopped, wiped and polled; every child is killed when it is dropped;
//! - [`test_cluster`]: [`TestCluster`], the same with the tests' defaults, panicking with the
//!   nodes' logs on failure;
//! - [`workload`]: [`run_workload`], concurrent clients whose every call is recorded in a
//!   [`History`] ([`history`]), and [`read_final_values`];
//! - [`report`]: [`WorkloadReport`], what the workload did, checked with the shared checks of
//!   `kvraft_linearizability::history` (linearizable; every acknowledged append present once).
//!
//! The harness does not know where the `kvraft` binary is: every cluster is given its path.
//! Tests in the `kvraft` package pass `env!("CARGO_BIN_EXE_kvraft")`. [`free_ports`] is the
//! server's, re-exported: the in-process `kvraft_server::LocalCluster` uses the same one.

pub mod history;
pub mod process_cluster;
pub mod report;
pub mod test_cluster;
pub mod workload;

pub use history::History;
pub use kvraft_server::free_ports;
pub use process_cluster::ProcessCluster;
pub use report::{WorkloadReport, CHECK_STEP_BUDGET};
pub use test_cluster::{TestCluster, SMALL_RAFT_STATE_BYTES};
pub use workload::{read_final_values, run_workload, WorkloadOptions};
