//! The Raft lab suite (2A-2D) under `cargo test`. Each test runs seed 1 (or `SIM_SEED`)
//! and a fresh seed per run (`SIM_EXTRA_SEED`; see `kvraft_sim::options`).

kvraft_sim::lab_test_wrappers! {
    "raft":
    initial_election_2a, re_election_2a, many_elections_2a,
    basic_agree_2b, rpc_bytes_2b, follower_failure_2b, leader_failure_2b, fail_agree_2b,
    fail_no_agree_2b, concurrent_starts_2b, rejoin_2b, backup_2b, count_2b,
    persist1_2c, persist2_2c, persist3_2c, figure8_2c, unreliable_agree_2c, figure8_unreliable_2c,
    reliable_churn_2c, unreliable_churn_2c,
    snapshot_basic_2d, snapshot_install_2d, snapshot_install_unreliable_2d, snapshot_install_crash_2d,
    snapshot_install_uncrash_2d, snapshot_all_crash_2d, snapshot_init_2d,
}
