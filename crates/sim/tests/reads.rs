//! The read fast paths under their most dangerous moments (see `kvraft_sim::read_scenarios`):
//! a leader cut off from its peers while clients still reach it, and a leader process that
//! stalls. Linearizability is checked on every history.

use std::cell::Cell;
use std::rc::Rc;

use kvraft_sim::options::SimOptions;
use kvraft_sim::raft_tester::TEST_LIMIT_MS;
use kvraft_sim::read_scenarios::{
    isolated_leader_reads, paused_leader_reads, read_tester, ReadOptions,
};

const SEEDS: std::ops::RangeInclusive<u64> = 1..=4;

/// The environment's options, without the lab's per-test figures.
fn quiet() -> SimOptions {
    SimOptions { quiet: true, ..SimOptions::from_env() }
}

fn isolated(options: ReadOptions) {
    for seed in SEEDS {
        let t = read_tester(seed, &quiet(), options);
        let body = isolated_leader_reads(t.clone(), 12, 1200);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            t.sim.block_on(body, TEST_LIMIT_MS);
        }));
        if let Err(e) = outcome {
            eprintln!("isolated leader reads failed with {options:?}, seed {seed}");
            std::panic::resume_unwind(e);
        }
    }
}

#[test]
fn read_index_survives_leader_isolation() {
    isolated(ReadOptions { lease_reads: false, follower_reads: false });
}

#[test]
fn lease_reads_survive_leader_isolation() {
    isolated(ReadOptions { lease_reads: true, follower_reads: false });
}

#[test]
fn follower_and_lease_reads_survive_leader_isolation() {
    isolated(ReadOptions { lease_reads: true, follower_reads: true });
}

fn paused(options: ReadOptions, seed: u64) -> bool {
    let t = read_tester(seed, &quiet(), options);
    let verdict = Rc::new(Cell::new(false));
    let v = verdict.clone();
    let t2 = t.clone();
    t.sim.block_on(async move { v.set(paused_leader_reads(t2, 2000).await) }, TEST_LIMIT_MS);
    verdict.get()
}

/// ReadIndex needs no clock: a stalled leader confirms nothing when it resumes.
#[test]
fn read_index_survives_a_paused_leader() {
    for seed in SEEDS {
        assert!(paused(ReadOptions { lease_reads: false, follower_reads: false }, seed));
    }
}

/// Leases trust the leader's clock: a leader that stalls while the others' clocks run serves a
/// stale read when it resumes. This is the documented limit of `Config::lease_reads`.
#[test]
fn a_paused_leader_breaks_lease_reads_as_documented() {
    for seed in SEEDS {
        assert!(
            !paused(ReadOptions { lease_reads: true, follower_reads: false }, seed),
            "seed {seed}: a paused leader's lease read was linearizable; did the scenario change?"
        );
    }
}
