//! Swarm simulation under `cargo test`: `swarm` runs the scenario of `SIM_SEED` (default 1, plus
//! a fresh seed, see `kvraft_sim::options`); `swarm_first_seeds` runs a handful more. The sweep
//! runs thousands.

#[test]
fn swarm() {
    kvraft_sim::runner::run_test_from_env("swarm");
}

#[test]
fn swarm_first_seeds() {
    let options = kvraft_sim::options::SimOptions {
        quiet: true,
        ..kvraft_sim::options::SimOptions::from_env()
    };
    for seed in 2..=9 {
        if let Err(f) = kvraft_sim::runner::run_catching(
            kvraft_sim::lab::find_test("swarm").unwrap(),
            seed,
            &options,
        ) {
            panic!(
                "swarm seed {seed} failed ({}): {}\n  reproduce: {}",
                kvraft_sim::swarm::SwarmParams::derive(seed),
                f.message,
                f.reproduce_command()
            );
        }
    }
}
