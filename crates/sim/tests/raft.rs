//! The Raft lab suite (2A-2D) under `cargo test`. Each test honours `SIM_SEED`.

macro_rules! lab_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                kvraft_sim::runner::run_test_from_env(stringify!($name));
            }
        )*

        /// Every test in the suite has a wrapper here, and nothing else does.
        #[test]
        fn every_lab_test_is_wrapped() {
            let wrapped = [$(stringify!($name)),*];
            let suite: Vec<&str> = kvraft_sim::lab::RAFT_SUITE.iter().map(|t| t.name).collect();
            assert_eq!(wrapped.to_vec(), suite);
        }
    };
}

lab_tests! {
    initial_election_2a, re_election_2a, many_elections_2a,
    basic_agree_2b, rpc_bytes_2b, follower_failure_2b, leader_failure_2b, fail_agree_2b,
    fail_no_agree_2b, concurrent_starts_2b, rejoin_2b, backup_2b, count_2b,
    persist1_2c, persist2_2c, persist3_2c, figure8_2c, unreliable_agree_2c, figure8_unreliable_2c,
    reliable_churn_2c, unreliable_churn_2c,
    snapshot_basic_2d, snapshot_install_2d, snapshot_install_unreliable_2d, snapshot_install_crash_2d,
    snapshot_install_uncrash_2d, snapshot_all_crash_2d, snapshot_init_2d,
}
