//! The KV lab suite (3A and 3B) under `cargo test`. Each test runs seed 1 (or `SIM_SEED`)
//! and a fresh seed per run (`SIM_EXTRA_SEED`; see `kvraft_sim::options`).

kvraft_sim::lab_test_wrappers! {
    "kv":
    basic_3a, speed_3a, concurrent_3a, unreliable_3a, unreliable_one_key_3a, one_partition_3a,
    many_partitions_one_client_3a, many_partitions_many_clients_3a, persist_one_client_3a,
    persist_concurrent_3a, persist_concurrent_unreliable_3a, persist_partition_3a,
    persist_partition_unreliable_3a, persist_partition_unreliable_linearizable_3a,
    snapshot_rpc_3b, snapshot_size_3b, speed_3b, snapshot_recover_3b,
    snapshot_recover_many_clients_3b, snapshot_unreliable_3b, snapshot_unreliable_recover_3b,
    snapshot_unreliable_recover_concurrent_partition_3b,
    snapshot_unreliable_recover_concurrent_partition_linearizable_3b,
}
