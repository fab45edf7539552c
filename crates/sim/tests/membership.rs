//! Membership change and leadership transfer on the simulator: the membership swarm under
//! `cargo test` (`membership` runs the scenario of `SIM_SEED`, default 1, plus a fresh seed;
//! `membership_first_seeds` a handful more; the sweep runs thousands), the figures
//! (`--nocapture` prints them), and scripted scenarios.

use kvraft_raft::{MembershipChange, NodeId};
use kvraft_sim::kv_tester::KvTester;
use kvraft_sim::membership::operator::{ChangeOutcome, Operator, TransferOutcome};
use kvraft_sim::membership::scenarios;
use kvraft_sim::network::MS;
use kvraft_sim::options::SimOptions;
use kvraft_sim::raft_tester::TEST_LIMIT_MS;
use kvraft_sim::world::node_id;

kvraft_sim::lab_test_wrappers!("membership-figures":
    replace_dead_voter_log,
    replace_dead_voter_snapshot,
    replace_dead_voter_auto_promote,
    transfer_unavailability,
);

#[test]
fn membership() {
    kvraft_sim::runner::run_test_from_env("membership");
}

#[test]
fn membership_first_seeds() {
    let options = SimOptions { quiet: true, ..SimOptions::from_env() };
    let test = kvraft_sim::lab::find_test("membership").expect("the membership swarm");
    for seed in 2..=9 {
        if let Err(f) = kvraft_sim::runner::run_catching(test, seed, &options) {
            panic!(
                "membership seed {seed} failed ({}): {}\n  reproduce: {}",
                kvraft_sim::membership::swarm::MembershipParams::derive(seed),
                f.message,
                f.reproduce_command()
            );
        }
    }
}

/// The environment's options, without the lab's per-test figures.
fn quiet() -> SimOptions {
    SimOptions { quiet: true, ..SimOptions::from_env() }
}

async fn leader(op: &Operator) -> usize {
    loop {
        if let Some(l) = op.leader() {
            return l;
        }
        op.t.sleep(20).await;
    }
}

/// A leader that removes itself (forced: three voters down to two) keeps leading until the
/// removal commits, hands over, and never campaigns again; writes go on at the new leader.
async fn leader_removes_itself(t: KvTester) {
    let op = Operator::new(t.clone());
    let ck = t.make_client(&t.all());
    t.put(&ck, "a", "1", true, 0).await;
    let old = node_id(leader(&op).await);
    let removed = op.change(MembershipChange::Remove { id: old }, true).await;
    assert!(matches!(removed, ChangeOutcome::Done(_)), "{removed:?}");
    // Three heartbeat rounds of removal notices, and a hand-over.
    t.sleep(2000).await;
    let new = node_id(leader(&op).await);
    assert_ne!(new, old);
    t.put(&ck, "b", "2", true, 0).await;
    assert_eq!(t.get(&ck, "a", true, 0).await, "1");
    t.check_history();
}

/// A core bug the membership swarm found (about one seed in twenty of
/// `sweep --suite membership` before 9060f14): a leader whose committed configuration removed
/// itself counted itself among the peers to tell `Removed`, and sent a message to itself,
/// which a transport cannot deliver (`StepError::FromItself`).
#[test]
fn a_leader_that_removes_itself_hands_over_without_messaging_itself() {
    for seed in 1..=5 {
        let t = KvTester::new(seed, &quiet(), 3, false, -1);
        // Slow peers (30 ms per message on average): the hand-over spans a heartbeat round.
        t.sim.world_mut().net.processing_delay_us = 30 * MS;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            t.sim.block_on(leader_removes_itself(t.clone()), TEST_LIMIT_MS);
        }));
        if let Err(e) = outcome {
            eprintln!("leader_removes_itself failed with seed {seed}");
            std::panic::resume_unwind(e);
        }
    }
}

/// A leadership transfer to a named voter and to the most caught-up one, under writes.
#[test]
fn transfers_move_the_leadership_and_lose_no_write() {
    for seed in 1..=5 {
        let t = KvTester::new(seed, &quiet(), 5, false, -1);
        let t2 = t.clone();
        t.sim.block_on(
            async move {
                let op = Operator::new(t2.clone());
                let ck = t2.make_client(&t2.all());
                t2.put(&ck, "k", "0", true, 0).await;
                let old = leader(&op).await;
                let target = NodeId(((old + 2) % 5) as u64 + 1);
                let moved = op.transfer(Some(target)).await;
                assert!(
                    matches!(moved, TransferOutcome::Done { leader, .. } if leader == target),
                    "{moved:?}"
                );
                t2.append(&ck, "k", "1", true, 0).await;
                let moved = op.transfer(None).await;
                assert!(matches!(moved, TransferOutcome::Done { .. }), "{moved:?}");
                t2.append(&ck, "k", "2", true, 0).await;
                assert_eq!(t2.get(&ck, "k", true, 0).await, "012");
                t2.check_history();
            },
            TEST_LIMIT_MS,
        );
    }
}

/// Runs a scenario of `kvraft_sim::membership::scenarios` over seeds 1 to 3, naming the seed
/// that fails.
fn scenario<F: std::future::Future<Output = ()> + 'static>(
    name: &str,
    servers: usize,
    maxraftstate: i64,
    lease_reads: bool,
    body: fn(KvTester) -> F,
) {
    for seed in 1..=3 {
        let t = scenarios::cluster(seed, &quiet(), servers, maxraftstate, lease_reads);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scenarios::run(&t, body(t.clone()));
        }));
        if let Err(e) = outcome {
            eprintln!("scenario {name} failed with seed {seed}");
            std::panic::resume_unwind(e);
        }
    }
}

/// Caught by I3 with `bug-config-before-term-commit`.
#[test]
fn a_new_leader_changes_the_configuration_only_after_its_first_commit() {
    scenario("change_right_after_transfer", 3, -1, false, scenarios::change_right_after_transfer);
}

/// Caught by I1 with `bug-two-pending-configs`.
#[test]
fn concurrent_changes_wait_for_each_other() {
    scenario("concurrent_changes", 3, -1, false, scenarios::concurrent_changes);
}

/// Caught by I7 with `bug-reuse-removed-id`.
#[test]
fn a_removed_id_is_never_added_again() {
    scenario("removed_id_added_again", 3, -1, false, scenarios::removed_id_added_again);
}

/// Caught by I9 with `bug-transfer-keeps-lease`.
#[test]
fn a_transfer_ends_the_leases() {
    scenario("transfer_with_leases", 3, -1, true, scenarios::transfer_with_leases);
}

/// Caught with `bug-promote-without-catchup` (the design's scenario 13).
#[test]
fn a_learner_is_promoted_only_once_caught_up() {
    scenario(
        "promotion_waits_for_catch_up",
        3,
        100_000,
        false,
        scenarios::promotion_waits_for_catch_up,
    );
}

/// A learner is cut off while its removal commits and the leader it follows then crashes; the
/// learner, back on the network, never hears from anyone again (no leader replicates to a
/// non-member, and a learner never campaigns), so it keeps hinting the dead leader. A client
/// that knows the servers in the order [dead leader, learner, others] asks the learner first:
/// hint, the dead leader, fail, the next server (the learner), hint, ... and never reaches the
/// new leader.
async fn stale_hint_of_a_removed_learner(t: KvTester) {
    let op = Operator::new(t.clone());
    let old = leader(&op).await;
    let learner = op.add_learner(false, None).await.expect("the learner is added");
    assert!(op.wait_caught_up(node_id(learner), 5000).await);
    for other in 0..3 {
        t.sim.world_mut().net.set_link(learner, other, false);
    }
    let removed = op.change(MembershipChange::Remove { id: node_id(learner) }, false).await;
    assert!(matches!(removed, ChangeOutcome::Done(_)), "{removed:?}");
    t.shutdown_server(old);
    let new = leader(&op).await;
    for other in 0..3 {
        t.sim.world_mut().net.set_link(learner, other, true);
    }
    let others: Vec<usize> = (0..3).filter(|&s| s != old).collect();
    let order = [old, learner, others[0], others[1]];
    let ck = t.make_client_in_order(&order, &order);
    let done = std::rc::Rc::new(std::cell::Cell::new(false));
    let (t2, done2) = (t.clone(), done.clone());
    t.sim.spawn(async move {
        let op = kvraft_kv::Op::Put { key: "k".into(), value: "v".into() };
        t2.write(&ck, Some(learner), op, true, 0).await;
        done2.set(true);
    });
    t.sleep(5000).await;
    let hint = t.sim.world().node(learner).and_then(|n| n.leader());
    assert!(
        done.get(),
        "a write found no leader in 5 s: the removed learner still hints node {hint:?}, which \
         crashed; node {} leads",
        node_id(new)
    );
}

/// A liveness bug found by the membership swarm (seeds 2, 65, 84, 404, 418, 431 and 954 of
/// `sweep --suite membership --seeds 1..1001` at 9060f14): a learner that no leader talks to
/// any more (removed while cut off) never campaigns, so it named the leader it last heard from
/// forever, and a client could bounce between the two and never try the others. A peer that
/// does not campaign now forgets a leader not heard from for an election timeout.
#[test]
fn clients_find_the_leader_past_a_removed_learner() {
    for seed in 1..=3 {
        let t = KvTester::new(seed, &quiet(), 3, false, -1);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            t.sim.block_on(stale_hint_of_a_removed_learner(t.clone()), TEST_LIMIT_MS);
        }));
        if let Err(e) = outcome {
            eprintln!("stale_hint_of_a_removed_learner failed with seed {seed}");
            std::panic::resume_unwind(e);
        }
    }
}
