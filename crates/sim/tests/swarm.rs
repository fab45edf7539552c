//! Swarm simulation under `cargo test`: `swarm` runs the scenario of `SIM_SEED` (default 1);
//! `swarm_first_seeds` runs a handful more. The sweep runs thousands.

#[test]
fn swarm() {
    kvraft_sim::runner::run_test_from_env("swarm");
}

#[test]
fn swarm_first_seeds() {
    std::env::set_var("SIM_QUIET", "1");
    for seed in 2..=9 {
        if let Err(f) =
            kvraft_sim::runner::run_catching(kvraft_sim::lab::find_test("swarm").unwrap(), seed)
        {
            panic!(
                "swarm seed {seed} failed ({}): {}\n  reproduce: {}",
                kvraft_sim::swarm::SwarmParams::derive(seed),
                f.message,
                f.reproduce_command()
            );
        }
    }
}
