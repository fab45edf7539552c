//! kvraft-bench: a closed-loop load generator for kvraft, and for etcd with the identical
//! workload (`--target etcd`, cargo feature `etcd-client`), so that the two systems face the
//! same client loop, key choices, histogram and report; and the scale figures (`scale`).
//! The `kvraft-bench` binary is [`cli`]; the `kvraft` binary links none of this.
//!
//! - [`cli`]: the command line and the dispatch to a load run, `compare` or `scale`;
//! - [`options`]: the options of a load run and the validated [`options::Plan`];
//! - [`workload`]: operations, keys (uniform or zipfian) and values, from seeded streams;
//! - [`driver`]: what the loop needs from a system; [`kvraft_driver`] (one client-library
//!   `Client` per bench client, over shared connections) and `etcd_driver`;
//! - [`runner`]: prefill, warmup, the closed loop, the progress bar;
//! - [`run`]: one load run, from the options to the printed report;
//! - [`report`]: throughput and latency percentiles, as text or JSON;
//! - [`compare`], [`summary`] and [`chart`]: `kvraft-bench compare`, the side-by-side table
//!   of the medians of several rounds and the latency-throughput SVG (used by
//!   `bench/vs-etcd.sh`);
//! - [`scale`]: `kvraft-bench scale`, memory, snapshot, restart and catch-up figures with N
//!   keys on a cluster of `kvraft server` child processes (used by `bench/scale.sh`).

pub mod chart;
pub mod cli;
pub mod compare;
pub mod driver;
#[cfg(feature = "etcd-client")]
pub mod etcd_driver;
pub mod kvraft_driver;
pub mod options;
pub mod report;
pub mod run;
pub mod runner;
pub mod scale;
pub mod summary;
pub mod workload;

pub use cli::Cli;
