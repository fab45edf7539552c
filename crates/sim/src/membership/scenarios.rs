//! Seeded scenarios for the moments the membership planted bugs need, which the swarm reaches
//! only now and then (`crates/sim/tests/membership.rs` runs each over a few seeds; each fails
//! with its bug and passes without):
//!
//! - [`change_right_after_transfer`] (`bug-config-before-term-commit`): a change reaches a
//!   leader elected a moment ago, before it committed an entry of its term (I3).
//! - [`concurrent_changes`] (`bug-two-pending-configs`): two changes without compare-and-set
//!   reach the leader together; the second must wait for the first to commit (I1).
//! - [`removed_id_added_again`] (`bug-reuse-removed-id`): a removed server is set up again
//!   (on a wiped disk) under its old id and added back; ids are never reused (I7).
//! - [`transfer_with_leases`] (`bug-transfer-keeps-lease`): the leadership moves off a leader
//!   that serves lease reads; it must hold no lease once it sent TimeoutNow (I9).
//! - [`promotion_waits_for_catch_up`] (`bug-promote-without-catchup`, the design's scenario
//!   13): a learner marked for automatic promotion is added to a cluster holding 10,000 keys;
//!   it must stay a learner until it has caught up, and a voter crashing meanwhile must not
//!   stall writes.
//!
//! The peers are slow in the first two (30 ms per message on average), so that a commit takes
//! a long time next to the operator's round trip.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use kvraft_raft::{ChangeError, ChangeRequest, MembershipChange};
use kvraft_replica::{AdminError, AdminOutcome, AdminRequest};

use super::operator::{ChangeOutcome, Operator, TransferOutcome};
use crate::kv_tester::KvTester;
use crate::network::MS;
use crate::options::SimOptions;
use crate::raft_tester::TEST_LIMIT_MS;
use crate::world::{node_id, sim_raft_config};

async fn wait_for_leader(op: &Operator) -> usize {
    loop {
        if let Some(l) = op.leader() {
            return l;
        }
        op.t.sleep(20).await;
    }
}

/// A KV cluster of `servers` voters under `seed`, started and connected; `lease_reads` for the
/// lease scenario.
pub fn cluster(
    seed: u64,
    options: &SimOptions,
    servers: usize,
    maxraftstate: i64,
    lease_reads: bool,
) -> KvTester {
    let t = KvTester::new(seed, options, servers, false, maxraftstate);
    if lease_reads {
        t.sim.world_mut().raft_config = Box::new(|id, voters| {
            let mut c = sim_raft_config(id, voters);
            c.lease_reads = true;
            c
        });
        for i in 0..servers {
            t.start_server(i);
        }
        t.connect_all();
    }
    t
}

/// Runs `body` on `t` to completion (panics on failure, as the scenario asserts).
pub fn run(t: &KvTester, body: impl std::future::Future<Output = ()> + 'static) {
    t.sim.block_on(body, TEST_LIMIT_MS);
}

fn add_learner(server: usize) -> MembershipChange {
    MembershipChange::AddLearner {
        id: Some(node_id(server)),
        address: format!("sim-{server}"),
        auto_promote: false,
    }
}

/// Three times: the operator moves the leadership to a named voter while a second operator
/// keeps asking that voter for a change (a learner, forced) every few milliseconds. Once elected,
/// the new leader must hold the change back until its first commit (the term barrier: the
/// second operator is told to retry), and then take it.
pub async fn change_right_after_transfer(t: KvTester) {
    t.sim.world_mut().net.processing_delay_us = 30 * MS;
    let op = Operator::new(t.clone());
    let ck = t.make_client(&t.all());
    t.put(&ck, "k", "0", true, 0).await;
    for round in 0..3 {
        let leader = wait_for_leader(&op).await;
        let target = (leader + 1) % t.n;
        let server = op.start_new_server(None);
        let (t2, done) = (t.clone(), Rc::new(Cell::new(false)));
        let done2 = done.clone();
        let asker = t.sim.spawn(async move {
            loop {
                // Forced: a leader elected a moment ago has heard from no one yet, and the
                // quorum-safety check would refuse any change; the barrier is never skipped.
                let change =
                    ChangeRequest { force: true, ..ChangeRequest::new(add_learner(server)) };
                let req = AdminRequest::ChangeMembership(change);
                match t2.sim.admin_call(target, req, 5000).await {
                    Some(Ok(AdminOutcome::Changed { .. })) => break,
                    Some(Err(AdminError::NotLeader { .. }))
                    | Some(Err(AdminError::Refused(
                        ChangeError::TermBarrier | ChangeError::Transferring { .. },
                    )))
                    | None => t2.sleep(3).await,
                    other => panic!("round {round}: the change answered {other:?}"),
                }
            }
            done2.set(true);
        });
        let moved = op.transfer(Some(node_id(target))).await;
        assert!(matches!(moved, TransferOutcome::Done { .. }), "round {round}: {moved:?}");
        asker.await;
        assert!(done.get());
        t.append(&ck, "k", &format!("{}", round + 1), true, 0).await;
    }
    assert_eq!(t.get(&ck, "k", true, 0).await, "0123");
    t.check_history();
}

/// Two changes without compare-and-set reach the leader at once, three times: one is
/// appended, the other refused as pending; never two at a time. (Retried, the refused one
/// would be refused again: its id is below the next free id now, and ids are never reused.)
pub async fn concurrent_changes(t: KvTester) {
    t.sim.world_mut().net.processing_delay_us = 30 * MS;
    let op = Operator::new(t.clone());
    let ck = t.make_client(&t.all());
    t.put(&ck, "k", "0", true, 0).await;
    for round in 0..3 {
        let leader = wait_for_leader(&op).await;
        let servers = [op.start_new_server(None), op.start_new_server(None)];
        let answers = Rc::new(RefCell::new(Vec::new()));
        let mut calls = Vec::new();
        for server in servers {
            let request = ChangeRequest::new(add_learner(server));
            let (t2, answers) = (t.clone(), answers.clone());
            calls.push(t.sim.spawn(async move {
                let req = AdminRequest::ChangeMembership(request);
                let reply = t2.sim.admin_call(leader, req, 5000).await;
                answers.borrow_mut().push((server, reply));
            }));
        }
        for call in calls {
            call.await;
        }
        let answers = answers.take();
        let changed = answers
            .iter()
            .filter(|(_, reply)| matches!(reply, Some(Ok(AdminOutcome::Changed { .. }))))
            .count();
        for (server, reply) in answers.iter() {
            assert!(
                matches!(
                    reply,
                    Some(Ok(AdminOutcome::Changed { .. }))
                        | Some(Err(AdminError::Refused(ChangeError::ChangePending { .. })))
                ),
                "round {round}: adding server {server} answered {reply:?}"
            );
        }
        assert_eq!(changed, 1, "round {round}: {answers:?}");
        t.append(&ck, "k", &format!("{}", round + 1), true, 0).await;
    }
    assert_eq!(t.get(&ck, "k", true, 0).await, "0123");
    t.check_history();
}

/// A learner and a voter are removed; the learner's disk is then wiped and the server set
/// up again under its old id (the design's scenario 10), and the operator asks to add both
/// ids back: refused, since ids are never reused.
pub async fn removed_id_added_again(t: KvTester) {
    let op = Operator::new(t.clone());
    let ck = t.make_client(&t.all());
    t.put(&ck, "k", "0", true, 0).await;
    let learner = op.add_learner(false, None).await.expect("a learner is added");
    let removed = op.change(MembershipChange::Remove { id: node_id(learner) }, false).await;
    assert!(matches!(removed, ChangeOutcome::Done(_)), "{removed:?}");
    let leader = wait_for_leader(&op).await;
    let voter = (0..t.n).find(|&s| s != leader).expect("a follower");
    let removed = op.change(MembershipChange::Remove { id: node_id(voter) }, true).await;
    assert!(matches!(removed, ChangeOutcome::Done(_)), "{removed:?}");
    {
        let mut w = t.sim.world_mut();
        w.wipe(learner);
        w.start(learner);
        for other in 0..w.servers.len() {
            if other != learner {
                w.net.set_link(learner, other, true);
            }
        }
    }
    for server in [learner, voter] {
        let id = node_id(server);
        let again = op.change(add_learner(server), false).await;
        assert_eq!(again, ChangeOutcome::Refused(ChangeError::IdRemoved(id)), "node {id}");
    }
    t.append(&ck, "k", "1", true, 0).await;
    assert_eq!(t.get(&ck, "k", true, 0).await, "01");
    t.check_history();
}

/// Lease reads on: the leadership moves three times (to a named voter, then to the most
/// caught-up one) while a reader reads; every read stays linearizable.
pub async fn transfer_with_leases(t: KvTester) {
    let op = Operator::new(t.clone());
    let ck = t.make_client(&t.all());
    t.put(&ck, "k", "0", true, 0).await;
    let stop = Rc::new(Cell::new(false));
    let (t2, stop2) = (t.clone(), stop.clone());
    let reader = t.sim.spawn(async move {
        let ck = t2.make_client(&t2.all());
        while !stop2.get() {
            t2.get(&ck, "k", true, 1).await;
        }
    });
    for round in 0..3 {
        // Long enough for the leader to hold a lease.
        t.sleep(500).await;
        let leader = wait_for_leader(&op).await;
        let target = (round % 2 == 0).then(|| node_id((leader + 1) % t.n));
        let moved = op.transfer(target).await;
        assert!(matches!(moved, TransferOutcome::Done { .. }), "round {round}: {moved:?}");
        t.append(&ck, "k", &format!("{}", round + 1), true, 0).await;
    }
    stop.set(true);
    reader.await;
    assert_eq!(t.get(&ck, "k", true, 0).await, "0123");
    t.check_history();
}

/// The design's scenario 13, learner-first: a cluster of three holding 10,000 keys (in
/// snapshots) gets a learner marked for automatic promotion; while it catches up (a long
/// snapshot transfer), the leader must not promote it, and once a voter crashes the other two
/// must still commit writes at once. Promoted early, it would be a voter that cannot yet
/// help commit: with one old voter down, writes would stall until it caught up.
pub async fn promotion_waits_for_catch_up(t: KvTester) {
    let op = Operator::new(t.clone());
    wait_for_leader(&op).await;
    super::figures::load(&t, 10_000, 50).await;
    let server = op.start_new_server(None);
    let id = node_id(server);
    let change = MembershipChange::AddLearner {
        id: Some(id),
        address: format!("sim-{server}"),
        auto_promote: true,
    };
    let added = op.change(change, false).await;
    assert!(matches!(added, ChangeOutcome::Done(_)), "{added:?}");
    let started = t.sim.now_ms();
    // A voter crashes right after the learner was added: the other two commit at once.
    let leader = wait_for_leader(&op).await;
    let follower = (0..t.n).find(|&s| s != leader).expect("a follower");
    t.shutdown_server(follower);
    let ck = t.make_client(&t.all());
    t.put(&ck, "after-crash", "ok", true, 0).await;
    let took = t.sim.now_ms() - started;
    assert!(took < 1000, "a write took {took} ms with one of three voters down");
    // Until it has caught up, the learner stays a learner.
    while !op.caught_up(id) {
        let voter = op.config().is_some_and(|c| c.config.membership.is_voter(id));
        let since = t.sim.now_ms() - started;
        assert!(
            !voter,
            "node {id} was promoted within {since} ms of being added, before it caught up"
        );
        assert!(since < 60_000, "node {id} never caught up");
        t.sleep(10).await;
    }
    let since = t.sim.now_ms() - started;
    assert!(since > 200, "the snapshot transfer ({since} ms) was too short to tell");
    t.start_server(follower);
    t.connect_all();
    while !op.committed_config().is_some_and(|c| c.config.membership.is_voter(id)) {
        assert!(t.sim.now_ms() - started < 60_000, "node {id} was never promoted");
        t.sleep(10).await;
    }
    t.check_history();
}
