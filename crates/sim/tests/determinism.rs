//! One seed, one run: the same seed must replay the identical event trace, and different
//! seeds must explore different schedules.

use kvraft_sim::lab::find_test;
use kvraft_sim::options::SimOptions;

fn run(name: &str, seed: u64) -> kvraft_sim::run::RunReport {
    let options = SimOptions { quiet: true, ..SimOptions::from_env() };
    (find_test(name).expect("test exists").run)(seed, &options)
}

#[test]
fn same_seed_replays_the_identical_trace() {
    // Tests that use every source of randomness: elections, unreliable delivery, crashes,
    // long reordering and snapshots.
    for name in [
        "figure8_unreliable_2c",
        "unreliable_churn_2c",
        "snapshot_install_uncrash_2d",
        "snapshot_unreliable_recover_concurrent_partition_linearizable_3b",
    ] {
        let a = run(name, 42);
        let b = run(name, 42);
        assert_eq!(a, b, "{name}: two runs of seed 42 diverged");
        assert!(
            a.summary.events > 10_000,
            "{name}: suspiciously few events ({})",
            a.summary.events
        );
    }
}

#[test]
fn different_seeds_explore_different_schedules() {
    let a = run("unreliable_churn_2c", 1);
    let b = run("unreliable_churn_2c", 2);
    assert_ne!(a.summary.trace_hash, b.summary.trace_hash);
}
