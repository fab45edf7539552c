//! The MIT 6.824 lab suites, ported onto the simulator. Names and thresholds follow the lab.

pub mod raft_2ab;
pub mod raft_2c;
pub mod raft_2d;

use std::future::Future;
use std::pin::Pin;

use crate::raft_tester::RaftTester;

type Body = fn(RaftTester) -> Pin<Box<dyn Future<Output = ()>>>;

/// One Raft lab test: its cluster (`make_config(servers, unreliable, snapshots)`) and script.
#[derive(Debug, Clone, Copy)]
pub struct RaftLabTest {
    pub name: &'static str,
    pub servers: usize,
    pub unreliable: bool,
    pub snapshots: bool,
    pub body: Body,
}

macro_rules! raft_tests {
    ($($module:ident :: $name:ident ($servers:expr, $unreliable:expr, $snapshots:expr)),* $(,)?) => {
        /// Every test of the Raft suite, in the lab's order.
        pub const RAFT_SUITE: &[RaftLabTest] = &[
            $(RaftLabTest {
                name: stringify!($name),
                servers: $servers,
                unreliable: $unreliable,
                snapshots: $snapshots,
                body: |t| Box::pin($module::$name(t)),
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

pub fn find_raft_test(name: &str) -> Option<&'static RaftLabTest> {
    RAFT_SUITE.iter().find(|t| t.name == name)
}
