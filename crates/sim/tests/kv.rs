//! The KV lab suite (3A and 3B) under `cargo test`. Each test honours `SIM_SEED`.

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
            let suite: Vec<&str> = kvraft_sim::lab::kv_suite().iter().map(|t| t.name).collect();
            assert_eq!(wrapped.to_vec(), suite);
        }
    };
}

lab_tests! {
    basic_3a, speed_3a, concurrent_3a, unreliable_3a, unreliable_one_key_3a, one_partition_3a,
    many_partitions_one_client_3a, many_partitions_many_clients_3a, persist_one_client_3a,
    persist_concurrent_3a, persist_concurrent_unreliable_3a, persist_partition_3a,
    persist_partition_unreliable_3a, persist_partition_unreliable_linearizable_3a,
    snapshot_rpc_3b, snapshot_size_3b, speed_3b, snapshot_recover_3b,
    snapshot_recover_many_clients_3b, snapshot_unreliable_3b, snapshot_unreliable_recover_3b,
    snapshot_unreliable_recover_concurrent_partition_3b,
    snapshot_unreliable_recover_concurrent_partition_linearizable_3b,
}
