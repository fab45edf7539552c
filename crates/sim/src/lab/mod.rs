//! The MIT 6.824 lab suites, ported onto the simulator. Names and thresholds follow the lab.

pub mod kv_3ab;
pub mod raft_2ab;
pub mod raft_2c;
pub mod raft_2d;

use crate::options::SimOptions;
use crate::run::{run_kv, run_raft, RunReport};

/// Which lab suite a test belongs to (and which `cargo test --test` target runs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    Raft,
    Kv,
    Swarm,
    /// The membership swarm (`membership::swarm`).
    Membership,
    /// The membership measurements (`membership::figures`), printed by `sweep --stats`.
    MembershipFigures,
}

impl Suite {
    /// The suite's name for `sweep --suite`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Raft => "raft",
            Suite::Kv => "kv",
            Suite::Swarm => "swarm",
            Suite::Membership => "membership",
            Suite::MembershipFigures => "membership-figures",
        }
    }

    /// The `cargo test --test` target whose wrappers run the suite's tests.
    pub fn test_target(self) -> &'static str {
        match self {
            Suite::MembershipFigures => "membership",
            other => other.name(),
        }
    }
}

/// One lab test: its name and how to run it under a seed and options (panics on failure).
#[derive(Debug, Clone, Copy)]
pub struct LabTest {
    pub name: &'static str,
    pub suite: Suite,
    pub run: fn(u64, &SimOptions) -> RunReport,
}

macro_rules! raft_tests {
    ($($module:ident :: $name:ident ($servers:expr, $unreliable:expr, $snapshots:expr)),* $(,)?) => {
        /// Every test of the Raft suite, in the lab's order: `make_config(servers, unreliable,
        /// snapshots)` and the script.
        pub const RAFT_SUITE: &[LabTest] = &[
            $(LabTest {
                name: stringify!($name),
                suite: Suite::Raft,
                run: |seed, options| run_raft(seed, options, $servers, $unreliable, $snapshots, |t| Box::pin($module::$name(t))),
            },)*
        ];
    };
}

raft_tests! {
    raft_2ab::initial_election_2a(3, false, false),
    raft_2ab::re_election_2a(3, false, false),
    raft_2ab::many_elections_2a(7, false, false),
    raft_2ab::basic_agree_2b(3, false, false),
    raft_2ab::rpc_bytes_2b(3, false, false),
    raft_2ab::follower_failure_2b(3, false, false),
    raft_2ab::leader_failure_2b(3, false, false),
    raft_2ab::fail_agree_2b(3, false, false),
    raft_2ab::fail_no_agree_2b(5, false, false),
    raft_2ab::concurrent_starts_2b(3, false, false),
    raft_2ab::rejoin_2b(3, false, false),
    raft_2ab::backup_2b(5, false, false),
    raft_2ab::count_2b(3, false, false),
    raft_2c::persist1_2c(3, false, false),
    raft_2c::persist2_2c(5, false, false),
    raft_2c::persist3_2c(3, false, false),
    raft_2c::figure8_2c(5, false, false),
    raft_2c::unreliable_agree_2c(5, true, false),
    raft_2c::figure8_unreliable_2c(5, true, false),
    raft_2c::reliable_churn_2c(5, false, false),
    raft_2c::unreliable_churn_2c(5, true, false),
    raft_2d::snapshot_basic_2d(3, false, true),
    raft_2d::snapshot_install_2d(3, false, true),
    raft_2d::snapshot_install_unreliable_2d(3, true, true),
    raft_2d::snapshot_install_crash_2d(3, false, true),
    raft_2d::snapshot_install_uncrash_2d(3, true, true),
    raft_2d::snapshot_all_crash_2d(3, false, true),
    raft_2d::snapshot_init_2d(3, false, true),
}

macro_rules! kv_generic_tests {
    ($($name:ident: $part:literal, clients $clients:expr, servers $servers:expr, unreliable $unreliable:expr,
       crash $crash:expr, partitions $partitions:expr, maxraftstate $max:expr, random_keys $random:expr;)*) => {
        const KV_GENERIC: &[LabTest] = &[
            $(LabTest {
                name: stringify!($name),
                suite: Suite::Kv,
                run: |seed, options| run_kv(seed, options, $servers, $unreliable, $max, |t| Box::pin(kv_3ab::generic_test(t, kv_3ab::Generic {
                    part: $part,
                    clients: $clients,
                    unreliable: $unreliable,
                    crash: $crash,
                    partitions: $partitions,
                    random_keys: $random,
                }))),
            },)*
        ];
    };
}

kv_generic_tests! {
    basic_3a: "3A", clients 1, servers 5, unreliable false, crash false, partitions false, maxraftstate -1, random_keys false;
    concurrent_3a: "3A", clients 5, servers 5, unreliable false, crash false, partitions false, maxraftstate -1, random_keys false;
    unreliable_3a: "3A", clients 5, servers 5, unreliable true, crash false, partitions false, maxraftstate -1, random_keys false;
    many_partitions_one_client_3a: "3A", clients 1, servers 5, unreliable false, crash false, partitions true, maxraftstate -1, random_keys false;
    many_partitions_many_clients_3a: "3A", clients 5, servers 5, unreliable false, crash false, partitions true, maxraftstate -1, random_keys false;
    persist_one_client_3a: "3A", clients 1, servers 5, unreliable false, crash true, partitions false, maxraftstate -1, random_keys false;
    persist_concurrent_3a: "3A", clients 5, servers 5, unreliable false, crash true, partitions false, maxraftstate -1, random_keys false;
    persist_concurrent_unreliable_3a: "3A", clients 5, servers 5, unreliable true, crash true, partitions false, maxraftstate -1, random_keys false;
    persist_partition_3a: "3A", clients 5, servers 5, unreliable false, crash true, partitions true, maxraftstate -1, random_keys false;
    persist_partition_unreliable_3a: "3A", clients 5, servers 5, unreliable true, crash true, partitions true, maxraftstate -1, random_keys false;
    persist_partition_unreliable_linearizable_3a: "3A", clients 15, servers 7, unreliable true, crash true, partitions true, maxraftstate -1, random_keys true;
    snapshot_recover_3b: "3B", clients 1, servers 5, unreliable false, crash true, partitions false, maxraftstate 1000, random_keys false;
    snapshot_recover_many_clients_3b: "3B", clients 20, servers 5, unreliable false, crash true, partitions false, maxraftstate 1000, random_keys false;
    snapshot_unreliable_3b: "3B", clients 5, servers 5, unreliable true, crash false, partitions false, maxraftstate 1000, random_keys false;
    snapshot_unreliable_recover_3b: "3B", clients 5, servers 5, unreliable true, crash true, partitions false, maxraftstate 1000, random_keys false;
    snapshot_unreliable_recover_concurrent_partition_3b: "3B", clients 5, servers 5, unreliable true, crash true, partitions true, maxraftstate 1000, random_keys false;
    snapshot_unreliable_recover_concurrent_partition_linearizable_3b: "3B", clients 15, servers 7, unreliable true, crash true, partitions true, maxraftstate 1000, random_keys true;
}

const KV_CUSTOM: &[LabTest] = &[
    LabTest {
        name: "speed_3a",
        suite: Suite::Kv,
        run: |seed, options| {
            run_kv(seed, options, 3, false, -1, |t| Box::pin(kv_3ab::generic_test_speed(t, "3A")))
        },
    },
    LabTest {
        name: "unreliable_one_key_3a",
        suite: Suite::Kv,
        run: |seed, options| {
            run_kv(seed, options, 3, true, -1, |t| Box::pin(kv_3ab::unreliable_one_key(t)))
        },
    },
    LabTest {
        name: "one_partition_3a",
        suite: Suite::Kv,
        run: |seed, options| {
            run_kv(seed, options, 5, false, -1, |t| Box::pin(kv_3ab::one_partition(t)))
        },
    },
    LabTest {
        name: "snapshot_rpc_3b",
        suite: Suite::Kv,
        run: |seed, options| {
            run_kv(seed, options, 3, false, 1000, |t| Box::pin(kv_3ab::snapshot_rpc(t)))
        },
    },
    LabTest {
        name: "snapshot_size_3b",
        suite: Suite::Kv,
        run: |seed, options| {
            run_kv(seed, options, 3, false, 1000, |t| Box::pin(kv_3ab::snapshot_size(t)))
        },
    },
    LabTest {
        name: "speed_3b",
        suite: Suite::Kv,
        run: |seed, options| {
            run_kv(seed, options, 3, false, 1000, |t| Box::pin(kv_3ab::generic_test_speed(t, "3B")))
        },
    },
];

/// The KV suite in the lab's order.
pub const KV_SUITE_ORDER: [&str; 23] = [
    "basic_3a",
    "speed_3a",
    "concurrent_3a",
    "unreliable_3a",
    "unreliable_one_key_3a",
    "one_partition_3a",
    "many_partitions_one_client_3a",
    "many_partitions_many_clients_3a",
    "persist_one_client_3a",
    "persist_concurrent_3a",
    "persist_concurrent_unreliable_3a",
    "persist_partition_3a",
    "persist_partition_unreliable_3a",
    "persist_partition_unreliable_linearizable_3a",
    "snapshot_rpc_3b",
    "snapshot_size_3b",
    "speed_3b",
    "snapshot_recover_3b",
    "snapshot_recover_many_clients_3b",
    "snapshot_unreliable_3b",
    "snapshot_unreliable_recover_3b",
    "snapshot_unreliable_recover_concurrent_partition_3b",
    "snapshot_unreliable_recover_concurrent_partition_linearizable_3b",
];

/// Every test of the KV suite, in the lab's order.
pub fn kv_suite() -> Vec<&'static LabTest> {
    KV_SUITE_ORDER
        .iter()
        .map(|name| {
            KV_GENERIC
                .iter()
                .chain(KV_CUSTOM)
                .find(|t| t.name == *name)
                .expect("every listed KV test is defined")
        })
        .collect()
}

/// The swarm "suite": one randomized scenario per seed (see `swarm`).
pub const SWARM_SUITE: &[LabTest] =
    &[LabTest { name: "swarm", suite: Suite::Swarm, run: crate::swarm::run_swarm }];

/// The membership swarm: one randomized scenario per seed (see `membership::swarm`).
pub const MEMBERSHIP_SUITE: &[LabTest] = &[LabTest {
    name: "membership",
    suite: Suite::Membership,
    run: crate::membership::swarm::run_membership_swarm,
}];

/// The membership measurements (see `membership::figures`): each prints its figures.
pub const MEMBERSHIP_FIGURES: &[LabTest] = &[
    LabTest {
        name: "replace_dead_voter_log",
        suite: Suite::MembershipFigures,
        run: |seed, options| crate::membership::figures::run_replace(seed, options, -1, false),
    },
    LabTest {
        name: "replace_dead_voter_snapshot",
        suite: Suite::MembershipFigures,
        run: |seed, options| crate::membership::figures::run_replace(seed, options, 100_000, false),
    },
    LabTest {
        name: "replace_dead_voter_auto_promote",
        suite: Suite::MembershipFigures,
        run: |seed, options| crate::membership::figures::run_replace(seed, options, -1, true),
    },
    LabTest {
        name: "transfer_unavailability",
        suite: Suite::MembershipFigures,
        run: crate::membership::figures::run_transfer,
    },
];

/// The tests of a suite by name ("raft", "kv", "swarm", "membership" or
/// "membership-figures").
pub fn suite(name: &str) -> Option<Vec<&'static LabTest>> {
    match name {
        "raft" => Some(RAFT_SUITE.iter().collect()),
        "kv" => Some(kv_suite()),
        "swarm" => Some(SWARM_SUITE.iter().collect()),
        "membership" => Some(MEMBERSHIP_SUITE.iter().collect()),
        "membership-figures" => Some(MEMBERSHIP_FIGURES.iter().collect()),
        _ => None,
    }
}

pub fn find_test(name: &str) -> Option<&'static LabTest> {
    RAFT_SUITE
        .iter()
        .chain(KV_GENERIC)
        .chain(KV_CUSTOM)
        .chain(SWARM_SUITE)
        .chain(MEMBERSHIP_SUITE)
        .chain(MEMBERSHIP_FIGURES)
        .find(|t| t.name == name)
}
