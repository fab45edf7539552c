//! Running one lab script on a fresh tester under a seed, and what the run reports. The lab
//! registry (`lab`) builds its tests from these; `runner` runs the registry's tests.

use std::future::Future;
use std::pin::Pin;

use crate::kv_tester::KvTester;
use crate::options::SimOptions;
use crate::raft_tester::{RaftTester, TEST_LIMIT_MS};
use crate::sim::RunSummary;

/// What one successful run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub summary: RunSummary,
    /// The lab's statistics line (Raft: seconds, peers, RPCs, bytes, agreements; KV: seconds,
    /// peers, RPCs, ops).
    pub figures: Option<String>,
}

type Body<T> = fn(T) -> Pin<Box<dyn Future<Output = ()>>>;

/// Runs a Raft lab script on `make_config(servers, unreliable, snapshots)`; panics on failure.
pub fn run_raft(
    seed: u64,
    options: &SimOptions,
    servers: usize,
    unreliable: bool,
    snapshots: bool,
    body: Body<RaftTester>,
) -> RunReport {
    let tester = RaftTester::new(seed, options, servers, unreliable, snapshots);
    let summary = tester.sim.block_on(body(tester.clone()), TEST_LIMIT_MS);
    let figures = tester.last_figures().map(|f| {
        format!(
            "{:5.1}  {}  {:5}  {:8}  {:4}",
            f.virtual_ms as f64 / 1000.0,
            f.peers,
            f.rpcs,
            f.bytes,
            f.agreements
        )
    });
    RunReport { summary, figures }
}

/// Runs a KV lab script on `make_config(servers, unreliable, maxraftstate)`; panics on failure.
pub fn run_kv(
    seed: u64,
    options: &SimOptions,
    servers: usize,
    unreliable: bool,
    maxraftstate: i64,
    body: Body<KvTester>,
) -> RunReport {
    let tester = KvTester::new(seed, options, servers, unreliable, maxraftstate);
    let summary = tester.sim.block_on(body(tester.clone()), TEST_LIMIT_MS);
    let figures = tester.last_figures().map(|f| {
        format!("{:5.1}  {}  {:5}  {:4}", f.virtual_ms as f64 / 1000.0, f.peers, f.rpcs, f.ops)
    });
    RunReport { summary, figures }
}
