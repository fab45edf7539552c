//! kvraft-sim: a deterministic simulator for kvraft, and the MIT 6.824 lab suites on it.
//!
//! One seed drives everything. [`world::World`] holds the virtual clock, an event queue
//! (ticks, RPC requests and replies, client calls, timer wake-ups), the hosted servers
//! ([`peer::Peer`]: the lab's bare Raft peer, or a `kvraft_replica::Replica`) with their storage,
//! the labrpc-faithful [`network::Network`] and client calls ([`world::clients`]), and the
//! [`checker::Checker`] that verifies Raft's safety invariants after every event. Test scripts
//! are async functions on a tiny deterministic executor ([`exec`]) driven by [`sim::Sim`], so
//! the lab's sleeps and "goroutines" run in virtual time: a 120 s lab test takes a fraction of a
//! second. [`raft_tester::RaftTester`] and [`kv_tester::KvTester`] are the lab's harnesses,
//! [`lab`] holds the ported tests (each built with [`run`]), [`swarm`] the randomized
//! scenarios, [`membership`] the membership swarm with its operator and measurements, [`read_scenarios`] targeted scenarios for follower reads and leader leases, and
//! [`runner`] runs them under seeds for `cargo test` and the `sweep` binary. [`census`] counts
//! the scenarios a run created.

pub mod census;
pub mod checker;
pub mod exec;
pub mod kv_tester;
pub mod lab;
pub mod membership;
pub mod network;
pub mod options;
pub mod peer;
pub mod raft_tester;
pub mod read_scenarios;
pub mod run;
pub mod runner;
pub mod sim;
pub mod sim_storage;
pub mod swarm;
pub mod trace;
pub mod world;

/// The planted-bug features this build has (as `crate/feature`), for reproduce commands.
pub fn planted_bugs() -> Vec<String> {
    let mut bugs: Vec<String> =
        kvraft_raft::PLANTED_BUGS.iter().map(|b| format!("kvraft-raft/{b}")).collect();
    bugs.extend(kvraft_kv::PLANTED_BUGS.iter().map(|b| format!("kvraft-kv/{b}")));
    bugs.extend(kvraft_replica::PLANTED_BUGS.iter().map(|b| format!("kvraft-replica/{b}")));
    bugs
}

/// Declares one `#[test]` per lab test of a suite (each running the seeds the environment asks
/// for, see `options::SimOptions::wrapper_seeds`), plus a test that the list matches the suite
/// exactly.
#[macro_export]
macro_rules! lab_test_wrappers {
    ($suite:literal: $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::runner::run_test_from_env(stringify!($name));
            }
        )*

        #[test]
        fn every_lab_test_is_wrapped() {
            let wrapped = [$(stringify!($name)),*];
            let suite: Vec<&str> =
                $crate::lab::suite($suite).expect("known suite").iter().map(|t| t.name).collect();
            assert_eq!(wrapped.to_vec(), suite);
        }
    };
}
