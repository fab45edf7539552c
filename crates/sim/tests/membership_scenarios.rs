//! The membership design's 26 scenarios (`../shared/specs/membership.md`, section 8) as seeded
//! simulator tests: a KV cluster of real replicas in the simulated world, driven by
//! administration calls, crashes, partitions, wipes, restarts and message rules to the moment
//! each scenario is about, with the outcome the design says asserted (and the checker's
//! invariants, I1-I10 among them, after every event).
//!
//! Each test runs a few seeds (`SIM_SEED=n` runs that one alone); a failure prints its seed and
//! the command that reproduces it. The tests named in the planted-bug table below pass on a
//! real build and fail with their bug:
//!
//! | scenario | test | fails with |
//! |---|---|---|
//! | 1 | `s01_ongaro_*` (three variants) | `kvraft-raft/bug-config-before-term-commit` |
//! | 2 | `s02_a_second_change_waits_for_the_first_to_commit` | `kvraft-raft/bug-two-pending-configs` |
//! | 10 | `s10_a_wiped_server_is_never_added_again_under_its_old_id` | `kvraft-raft/bug-reuse-removed-id` |
//! | 13 | `s13_a_lagging_learner_is_not_promoted_and_the_cluster_stays_available` | `kvraft-raft/bug-promote-without-catchup` |
//! | 23 | `s23_*` (both) | `kvraft-raft/bug-transfer-keeps-lease` |
//!
//! e.g. `cargo test --release -p kvraft-sim --features kvraft-raft/bug-two-pending-configs
//! --test membership_scenarios -- s02_` fails.
//!
//! Messages are steered with the world's message rules (`kvraft_sim::world::scripted`): a
//! leader's entries kept from one follower while its heartbeats get through, a vote request
//! dropped, a `TimeoutNow` delayed. Helpers are in `scenario_support`.

mod scenario_support;

use kvraft_raft::{ChangeError, ChangeRequest, ConfigState, LogIndex, MessageBody, NodeId, Term};
use kvraft_replica::{AdminError, AdminRequest};
use kvraft_sim::world::node_id;
use kvraft_sim::world::scripted::RuleAction;

use scenario_support::*;

// ----- 1. Ongaro's counter-examples -----

/// Which of Ongaro's three counter-examples (raft-dev, 2015): a change in term 1 that only the
/// leader (and the node it adds) holds, a change in term 2 by a leader that has not yet
/// committed an entry of its term, and the term-1 leader winning term 3 with the voters of its
/// configuration, which would overwrite the committed term-2 change.
#[derive(Clone, Copy, Debug)]
enum Ongaro {
    /// {S1..S4}: +S5 in term 1, -S1 in term 2.
    AddThenRemove,
    /// {S1..S4}: +S5 in term 1, +S6 in term 2.
    TwoAdds,
    /// {S1..S4}: -S4 in term 1, -S3 in term 2.
    TwoRemoves,
}

/// Servers by the counter-example's names: S1 is server 0, and so on.
const S1: usize = 0;
const S2: usize = 1;
const S3: usize = 2;
const S4: usize = 3;
const S6: usize = 5;

fn ongaro(seed: u64, variant: Ongaro) {
    let cx = Cx::new(seed, 4);
    let c = cx.clone();
    cx.run(async move {
        let c1 = ongaro_term1(&c, variant).await;
        let answer = ongaro_term2(&c, variant).await;
        ongaro_term3(&c, variant, c1, answer).await;
    });
}

/// Term 1: S1 leads and appends a change that only it (and the node it adds) holds durably,
/// then crashes. Returns the configuration it appended.
async fn ongaro_term1(c: &Cx, variant: Ongaro) -> kvraft_raft::ConfigState {
    c.make_leader(S1, 10_000).await;
    // The term-1 change, and the servers it reaches besides S1.
    let (change, reaches) = match variant {
        Ongaro::AddThenRemove => {
            let s5 = c.add_learner(false).await;
            c.wait_caught_up(s5, 10_000).await;
            (promote(s5), vec![s5])
        }
        Ongaro::TwoAdds => {
            let s5 = c.add_learner(false).await;
            let s6 = c.add_learner(false).await;
            c.wait_caught_up(s5, 10_000).await;
            c.wait_caught_up(s6, 10_000).await;
            (promote(s5), vec![s5])
        }
        Ongaro::TwoRemoves => (remove(S4), vec![]),
    };
    let reaches2 = reaches.clone();
    c.add_rule("term 1: S1 ships only to the node it adds", RuleAction::Drop, move |m| {
        m.from == node_id(S1) && !reaches2.iter().any(|s| m.to == node_id(*s)) && is_shipping(m)
    });
    c.send_admin(S1, AdminRequest::ChangeMembership(ChangeRequest::new(change)));
    let before = c.node(S1, |n| n.last_index());
    let holders: Vec<usize> = std::iter::once(S1).chain(reaches.iter().copied()).collect();
    c.step_until("the term-1 change durable on S1 and the node it adds", 5_000, |c| {
        let index = c.node(S1, |n| n.cluster_config().index);
        index > before && holders.iter().all(|s| c.durable_last_index(*s) >= index)
    });
    let c1 = c.config(S1);
    c.crash(S1);
    for s in reaches {
        c.isolate(s);
    }
    c.remove_rule("term 1: S1 ships only to the node it adds");
    c1
}

/// Term 2: S2 wins (S3 and S4 ask for no vote) and asks for the second change, while X, the
/// voter it needs to commit anything but that must lack its entries, gets none. Returns the
/// answer.
async fn ongaro_term2(c: &Cx, variant: Ongaro) -> Option<kvraft_replica::AdminReply> {
    let x = match variant {
        Ongaro::AddThenRemove | Ongaro::TwoAdds => S4,
        Ongaro::TwoRemoves => S3,
    };
    c.add_rule("only S2 campaigns", RuleAction::Drop, |m| {
        is_vote_request(m) && (m.from == node_id(S3) || m.from == node_id(S4))
    });
    c.add_rule("term 2: X gets no entries", RuleAction::Drop, move |m| {
        m.to == node_id(x) && is_shipping(m)
    });
    c.wait_until("S2 leads", 10_000, |c| c.leader() == Some(S2)).await;
    // A heartbeat round, so that S2 counts its followers alive (R12).
    c.sleep(250).await;
    let change = match variant {
        Ongaro::AddThenRemove => remove(S1),
        Ongaro::TwoAdds => promote(S6),
        Ongaro::TwoRemoves => remove(S3),
    };
    // The barrier: S2 has not committed an entry of its term (its no-op needs X or S1), so
    // the change is refused. Without the barrier, S2 appends it and commits it (with its
    // no-op) by the voters of the new configuration; the checker's I3 does not see it (the
    // no-op commits in the same step), but the lost entry in term 3 does.
    c.change(S2, change).await
}

/// Term 3: S1 comes back on the side of the voters of its configuration and wins; its change
/// commits; after the heal the cluster converges on it.
async fn ongaro_term3(
    c: &Cx,
    variant: Ongaro,
    c1: kvraft_raft::ConfigState,
    answer: Option<kvraft_replica::AdminReply>,
) {
    c.heal();
    let minority: Vec<usize> = match variant {
        Ongaro::AddThenRemove => vec![S2, S3],
        Ongaro::TwoAdds => vec![S2, S3, S6],
        Ongaro::TwoRemoves => vec![S2, S4],
    };
    let majority: Vec<usize> = (0..c.servers()).filter(|s| !minority.contains(s)).collect();
    c.restart(S1);
    c.partition(&[&minority, &majority]);
    let s2_term = c.term(S2);
    c.wait_until("S1's side elects a leader with the term-1 configuration", 10_000, |c| {
        c.leader().is_some_and(|l| majority.contains(&l) && c.term(l) > s2_term)
    })
    .await;
    let leader = c.leader().expect("checked");
    c.wait_until("the term-1 change commits", 5_000, |c| {
        c.committed_config(leader).index >= c1.index
    })
    .await;
    assert_eq!(
        answer,
        Some(Err(AdminError::Refused(ChangeError::TermBarrier))),
        "{variant:?}: S2 changed the configuration before committing an entry of its term"
    );
    c.heal();
    let config = c.converge(20_000).await;
    assert_eq!(config.config, c1.config, "{variant:?}: the configuration the cluster runs");
    if let Ongaro::TwoRemoves = variant {
        c.wait_until("S4 learns it was removed", 5_000, |c| c.knows_removed(S4)).await;
    }
    let ck = c.client();
    c.t.put(&ck, "k", "v", true, 0).await;
    assert_eq!(c.t.get(&ck, "k", true, 0).await, "v");
    c.t.check_history();
}

/// Scenario 1: Ongaro's counter-example (4 nodes, +S5 in term 1, -S1 in term 2, S1 wins term
/// 3). The term-2 leader's change is refused with `TermBarrier`; S1 then wins term 3, its
/// change commits, nothing committed is lost, and the cluster converges on S1's configuration.
/// With `bug-config-before-term-commit` the term-2 change commits, and S1's term 3 overwrites
/// it: the checker reports the lost committed entry.
#[test]
fn s01_ongaro_add_then_remove_is_refused_by_the_term_barrier() {
    run_seeds("s01_ongaro_add_then_remove_is_refused_by_the_term_barrier", SEEDS, |seed| {
        ongaro(seed, Ongaro::AddThenRemove)
    });
}

/// Scenario 1, two adds: +S5 in term 1, +S6 in term 2 (as above).
#[test]
fn s01_ongaro_two_adds_are_refused_by_the_term_barrier() {
    run_seeds("s01_ongaro_two_adds_are_refused_by_the_term_barrier", SEEDS, |seed| {
        ongaro(seed, Ongaro::TwoAdds)
    });
}

/// Scenario 1, two removes: -S4 in term 1, -S3 in term 2 (as above); S4 learns it was removed.
#[test]
fn s01_ongaro_two_removes_are_refused_by_the_term_barrier() {
    run_seeds("s01_ongaro_two_removes_are_refused_by_the_term_barrier", SEEDS, |seed| {
        ongaro(seed, Ongaro::TwoRemoves)
    });
}

// ----- 2. Two pipelined changes -----

/// Scenario 2: {A,B,C} promotes learners D and E with two requests at once, while the leader
/// A reaches only D and E. The second must be refused (`ChangePending`, naming the first's
/// entry) and the first cannot commit without B or C; cut A, D and E off, B and C carry on in
/// the old configuration, and after the heal both promotions go through one at a time. With
/// `bug-two-pending-configs` both entries are appended and {A,D,E} commits them, a majority of
/// {A..E} that no majority of {A,B,C} meets: B's leadership then commits another entry at the
/// same index (the checker's I1, or state machine safety, fails the run).
#[test]
fn s02_a_second_change_waits_for_the_first_to_commit() {
    scenario("s02_a_second_change_waits_for_the_first_to_commit", Setup::voters(3), two_changes);
}

async fn two_changes(c: Cx) {
    let (a, b, cc) = (0, 1, 2);
    c.make_leader(a, 10_000).await;
    let d = c.add_learner(false).await;
    let e = c.add_learner(false).await;
    c.wait_caught_up(d, 10_000).await;
    c.wait_caught_up(e, 10_000).await;
    c.add_rule("A ships only to D and E", RuleAction::Drop, move |m| {
        m.from == node_id(a) && (m.to == node_id(b) || m.to == node_id(cc)) && is_shipping(m)
    });
    let spawn_promotion = |server| {
        let c2 = c.clone();
        c.t.sim.spawn(async move { c2.change(a, promote(server)).await })
    };
    let (first, second) = (spawn_promotion(d), spawn_promotion(e));
    // Once both reached A (one is answered at once, or both appended), cut A, D and E off.
    c.wait_until("both promotions reached A", 2_000, |c| {
        !c.world().admin_replies.is_empty()
            || c.node(a, |n| n.cluster_config().config.membership.is_voter(node_id(e)))
    })
    .await;
    c.sleep(100).await;
    let uncommitted: Vec<_> = c.node(a, |n| {
        let entries = n.log().config_entries().iter();
        entries.filter(|x| x.index > n.commit_index()).map(|x| x.index).collect()
    });
    c.remove_rule("A ships only to D and E");
    c.partition(&[&[a, d, e], &[b, cc]]);
    let answers = [first.await, second.await];
    let refused: Vec<_> = answers
        .iter()
        .filter_map(|answer| match answer {
            Some(Err(AdminError::Refused(ChangeError::ChangePending { pending }))) => {
                Some(*pending)
            }
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1, "one of two concurrent promotions is refused: {answers:?}");
    assert_eq!(uncommitted, refused, "the refusal names the one uncommitted config entry");
    c.wait_until("B or C leads", 10_000, |c| c.leader().is_some_and(|l| l == b || l == cc)).await;
    let ck = c.client();
    c.t.put(&ck, "k", "old configuration", true, 0).await;
    c.heal();
    assert_members(&c.converge(20_000).await, &[a, b, cc], &[d, e]);
    c.must_change(promote(d), false).await;
    c.must_change(promote(e), false).await;
    assert_members(&c.converge(20_000).await, &[a, b, cc, d, e], &[]);
    assert_eq!(c.t.get(&ck, "k", true, 0).await, "old configuration");
    c.t.check_history();
}

// ----- 3. A config entry truncated by a new leader -----

/// Scenario 3: a peer that appended a config entry which a new leader then cuts reverts to
/// the configuration before it (R6; each peer's I5 recomputes it after every event). First a
/// truncated removal of itself: a leader appends its own removal (only the leader ever holds
/// the entry that removes it: it ships to the new members only), is cut off before it
/// commits, and the new leader's log replaces the entry; the old leader is a voter again and
/// can lead. Then a follower's truncated addition of a learner.
#[test]
fn s03_a_truncated_config_entry_is_reverted() {
    scenario("s03_a_truncated_config_entry_is_reverted", Setup::voters(5), truncated);
}

async fn truncated(c: Cx) {
    let original = c.converge(10_000).await;
    let old = c.wait_leader(5_000).await;
    c.add_rule("the leader ships nothing", RuleAction::Drop, move |m| {
        m.from == node_id(old) && is_shipping(m)
    });
    let c2 = c.clone();
    let answer = c.t.sim.spawn(async move { c2.change(old, remove(old)).await });
    c.wait_until("the leader appends its removal", 2_000, |c| {
        !c.config(old).config.is_member(node_id(old))
    })
    .await;
    c.isolate(old);
    c.remove_rule("the leader ships nothing");
    c.wait_until("another leader", 10_000, |c| c.leader().is_some_and(|l| l != old)).await;
    c.reconnect(old);
    c.wait_until("the old leader reverts", 10_000, |c| c.config(old) == original).await;
    assert!(!c.knows_removed(old), "an uncommitted removal is no removal");
    let answer = answer.await;
    assert!(
        matches!(answer, None | Some(Err(AdminError::Interrupted { .. }))),
        "the truncated removal was answered {answer:?}"
    );
    assert_eq!(c.converge(20_000).await, original);
    // The old leader is a voter like any other: it can lead again.
    let l = c.wait_leader(5_000).await;
    let moved = c.transfer_at(l, Some(node_id(old))).await;
    assert!(matches!(moved, Some(Ok(_))), "transfer to the reverted node: {moved:?}");
    // A truncated addition, on a follower.
    let learner_server = c.new_server();
    c.converge(10_000).await;
    let victim = (c.wait_leader(5_000).await + 1) % 5;
    let (leader, config) = truncate_on(&c, victim, learner(learner_server, false)).await;
    assert!(config.config.is_member(node_id(learner_server)));
    c.wait_until("the follower reverts", 10_000, |c| c.config(victim) == original).await;
    c.restart(leader);
    assert_eq!(c.converge(20_000).await, original);
    assert_eq!(c.with_node(learner_server, |n| n.cluster_config().is_unknown()), Some(true));
}

/// The leader appends `change`, shipped to `victim` alone; once the victim holds it, the
/// leader crashes and the others elect a leader that lacks it. Returns the crashed leader and
/// the configuration the victim appended.
async fn truncate_on(
    c: &Cx,
    victim: usize,
    change: kvraft_raft::MembershipChange,
) -> (usize, ConfigState) {
    c.converge(10_000).await;
    let leader = c.wait_leader(5_000).await;
    assert_ne!(leader, victim);
    c.add_rule("the leader ships only to the victim", RuleAction::Drop, move |m| {
        m.from == node_id(leader) && m.to != node_id(victim) && is_shipping(m)
    });
    let before = c.node(leader, |n| n.last_index());
    c.send_admin(leader, AdminRequest::ChangeMembership(ChangeRequest::new(change)));
    c.step_until("the victim appends the change", 5_000, |c| {
        let index = c.node(leader, |n| n.cluster_config().index);
        index > before && c.config(victim).index == index
    });
    let config = c.config(victim);
    assert!(c.committed_config(victim).index < config.index);
    // The victim's log is the longest: it must not win, or the entry commits.
    c.add_rule("the victim asks for no vote", RuleAction::Drop, move |m| {
        m.from == node_id(victim) && is_vote_request(m)
    });
    c.crash(leader);
    c.remove_rule("the leader ships only to the victim");
    c.wait_until("another leader", 10_000, |c| c.leader().is_some_and(|l| l != victim)).await;
    c.remove_rule("the victim asks for no vote");
    (leader, config)
}

// ----- 4. Crash and restart at each point of a change -----

/// Where the leader crashes in scenario 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CrashPoint {
    /// The config entry is appended, its write not yet durable.
    BeforeFsync,
    /// Durable on the leader, not committed (the leader ships it to nobody).
    AfterFsync,
    /// Committed, not yet in a snapshot.
    AfterCommit,
    /// Covered by the leader's durable snapshot.
    AfterSnapshot,
}

/// Scenario 4: the leader adding a learner crashes at each point of the change, and restarts
/// with (`--cluster`) and without its bootstrap voters: it comes back with the configuration
/// its disk holds (the change, once durable), the operator's retry finds the change done or
/// does it, and the cluster converges on it. After the snapshot, the whole cluster restarts
/// without `--cluster` and recovers from its snapshots.
#[test]
fn s04_a_leader_crashing_at_each_point_of_a_change_recovers_it() {
    run_seeds("s04_a_leader_crashing_at_each_point_of_a_change_recovers_it", SEEDS, |seed| {
        for point in [
            CrashPoint::BeforeFsync,
            CrashPoint::AfterFsync,
            CrashPoint::AfterCommit,
            CrashPoint::AfterSnapshot,
        ] {
            for bootstrap in [true, false] {
                let setup =
                    Setup { maxraftstate: 3000, durable_bootstrap: true, ..Setup::voters(3) };
                let cx = Cx::with(seed, setup);
                cx.run(crash_point(cx.clone(), point, bootstrap));
            }
        }
    });
}

async fn crash_point(c: Cx, point: CrashPoint, bootstrap: bool) {
    let what = format!("{point:?}, bootstrap {bootstrap}");
    eprintln!("  {what}");
    let leader = c.wait_leader(5_000).await;
    let ck = c.client();
    c.t.put(&ck, "before", "1", true, 0).await;
    let new = c.new_server();
    let index = crash_leader_at(&c, leader, new, point).await;
    let durable = c.durable_last_index(leader) >= index;
    c.restart_with_bootstrap(leader, bootstrap);
    let has_it = c.config(leader).config.is_member(node_id(new));
    match point {
        // A crash keeps a prefix of the write in flight: the entry may or may not be there.
        CrashPoint::BeforeFsync => assert_eq!(has_it, durable, "{what}"),
        _ => assert!(has_it, "{what}: the restarted leader lost a durable config entry"),
    }
    // The bootstrap configuration is on every initial member's disk: never none.
    assert!(!c.config(leader).is_unknown(), "{what}: restarted with no configuration");
    // The operator retries: the change is in or goes in, once.
    let config = c.change_settled(ChangeRequest::new(learner(new, false)), 20_000).await;
    let already = Err(AdminError::Refused(ChangeError::AlreadyMember(node_id(new))));
    assert!(config.is_ok() || config == already, "{what}: {config:?}");
    let config = c.converge(20_000).await;
    assert_members(&config, &[0, 1, 2], &[new]);
    if point == CrashPoint::AfterSnapshot {
        for s in 0..c.servers() {
            c.crash(s);
        }
        for s in 0..c.servers() {
            c.restart_with_bootstrap(s, false);
        }
        assert_eq!(c.converge(20_000).await.config, config.config, "{what}: after a full restart");
    }
    assert_eq!(c.t.get(&ck, "before", true, 0).await, "1");
    c.t.check_history();
}

/// Sends the change to `leader` and crashes it at `point`; returns the config entry's index.
async fn crash_leader_at(c: &Cx, leader: usize, new: usize, point: CrashPoint) -> LogIndex {
    let before = c.node(leader, |n| n.last_index());
    if point == CrashPoint::AfterFsync {
        c.add_rule("the leader ships nothing", RuleAction::Drop, move |m| {
            m.from == node_id(leader) && is_shipping(m)
        });
    }
    c.send_admin(leader, AdminRequest::ChangeMembership(ChangeRequest::new(learner(new, false))));
    let appended = |c: &Cx| c.node(leader, |n| n.cluster_config().index > before);
    c.step_until("the config entry appended", 5_000, appended);
    let index = c.config(leader).index;
    match point {
        CrashPoint::BeforeFsync => assert!(c.durable_last_index(leader) < index),
        CrashPoint::AfterFsync => {
            c.step_until("durable", 5_000, |c| c.durable_last_index(leader) >= index);
            assert!(c.node(leader, |n| n.commit_index()) < index);
        }
        CrashPoint::AfterCommit => {
            c.step_until("committed", 5_000, |c| c.node(leader, |n| n.commit_index()) >= index);
            assert!(c.node(leader, |n| n.log().snapshot_meta().index) < index);
        }
        CrashPoint::AfterSnapshot => {
            let ck = c.client();
            let mut i = 0;
            while c.world().servers[leader].storage.durable_state().snapshot.meta.index < index {
                c.t.put(&ck, &format!("fill{i}"), &"x".repeat(200), false, 0).await;
                i += 1;
                assert!(i < 200, "no snapshot covers the config entry");
            }
        }
    }
    c.crash(leader);
    c.remove_rule("the leader ships nothing");
    index
}

/// Scenario 4, restart without `--cluster` before any config entry: the design keeps the
/// bootstrap configuration in a snapshot at index 0 and reads `--cluster` only for an empty
/// data directory (7.3); the server writes that snapshot when it creates the data directory
/// (`Snapshot::bootstrap`), and so does this world. Every server of a fresh cluster restarts
/// without its bootstrap voters after a write: each knows its configuration, and a leader is
/// elected.
#[test]
fn s04_members_restarted_without_cluster_keep_the_bootstrap_configuration() {
    scenario(
        "s04_members_restarted_without_cluster_keep_the_bootstrap_configuration",
        Setup { durable_bootstrap: true, ..Setup::voters(3) },
        restart_without_cluster,
    );
}

async fn restart_without_cluster(c: Cx) {
    c.converge(10_000).await;
    let ck = c.client();
    c.t.put(&ck, "k", "v", true, 0).await;
    for s in 0..3 {
        c.crash(s);
    }
    for s in 0..3 {
        c.restart_with_bootstrap(s, false);
        assert!(!c.config(s).is_unknown(), "server {s} restarted with no configuration");
    }
    c.wait_leader(10_000).await;
    assert_eq!(c.t.get(&ck, "k", true, 0).await, "v");
    c.t.check_history();
}

// ----- 5. Snapshots and config entries -----

/// Scenario 5: a follower snapshots over a committed config entry while a newer, uncommitted
/// one sits in its log above the snapshot; a new leader cuts the newer one and the follower
/// reverts to its snapshot's configuration. Then a learner whose log holds an older
/// configuration installs a snapshot carrying the newest one. Then every config entry is
/// compacted away, and servers restarted with and without `--cluster` run the snapshot's
/// configuration.
#[test]
fn s05_snapshots_carry_the_configuration() {
    let setup = Setup { maxraftstate: 3000, ..Setup::voters(5) };
    scenario("s05_snapshots_carry_the_configuration", setup, snapshots_and_configs);
}

async fn snapshots_and_configs(c: Cx) {
    let learner_server = snapshot_over_config(&c).await;
    snapshot_to_stale_learner(&c, learner_server).await;
    every_config_entry_compacted(&c).await;
    c.t.check_history();
}

/// Puts `n` keys of 200 bytes through `ck` (not recorded).
async fn fill(c: &Cx, ck: &kvraft_sim::kv_tester::KvClient, prefix: &str, n: usize) {
    for i in 0..n {
        c.t.put(ck, &format!("{prefix}{i}"), &"x".repeat(200), false, 0).await;
    }
}

async fn snapshot_over_config(c: &Cx) -> usize {
    c.converge(10_000).await;
    let leader = c.wait_leader(5_000).await;
    let f = (leader + 1) % 5;
    let learner_server = c.add_learner(false).await;
    let c1 = c.committed_config(leader);
    c.add_rule("F gets nothing", RuleAction::Drop, move |m| {
        between(m, leader, f) && is_shipping(m)
    });
    let ck = c.client();
    fill(c, &ck, "a", 20).await;
    c.add_rule("L ships only to F", RuleAction::Drop, move |m| {
        m.from == node_id(leader) && m.to != node_id(f) && is_shipping(m)
    });
    let before = c.node(leader, |n| n.last_index());
    let change = kvraft_raft::MembershipChange::AddLearner {
        id: None,
        address: "nowhere".into(),
        auto_promote: false,
    };
    c.send_admin(leader, AdminRequest::ChangeMembership(ChangeRequest::new(change)));
    c.step_until("the second change appended", 5_000, |c| c.config(leader).index > before);
    let c2 = c.config(leader);
    c.remove_rule("F gets nothing");
    c.wait_until("F holds the second change over a snapshot of the first", 10_000, |c| {
        c.config(f) == c2 && c.node(f, |n| n.log().snapshot_meta().index) >= c1.index
    })
    .await;
    c.node(f, |n| {
        assert_eq!(n.log().snapshot().config, c1, "F's snapshot carries the committed config");
        assert_eq!(n.committed_cluster_config(), &c1);
        assert!(n.log().snapshot_meta().index < c2.index);
    });
    c.add_rule("F asks for no vote", RuleAction::Drop, move |m| {
        m.from == node_id(f) && is_vote_request(m)
    });
    c.crash(leader);
    c.remove_rule("L ships only to F");
    c.wait_until("another leader", 10_000, |c| c.leader().is_some_and(|l| l != f)).await;
    c.remove_rule("F asks for no vote");
    c.wait_until("F reverts to its snapshot's configuration", 10_000, |c| c.config(f) == c1).await;
    c.restart(leader);
    assert_eq!(c.converge(20_000).await, c1);
    learner_server
}

async fn snapshot_to_stale_learner(c: &Cx, learner_server: usize) {
    c.isolate(learner_server);
    let stale_last = c.node(learner_server, |n| n.last_index());
    let passing = c.new_server();
    c.must_change(learner(passing, false), false).await;
    c.must_change(remove(passing), false).await;
    let ck = c.client();
    let mut round = 0;
    while c.node(c.wait_leader(5_000).await, |n| n.log().snapshot_meta().index) <= stale_last {
        fill(c, &ck, &format!("b{round}-"), 10).await;
        round += 1;
        assert!(round < 20, "the leader never compacted past the isolated learner");
    }
    c.reconnect(learner_server);
    let config = c.converge(20_000).await;
    c.node(learner_server, |n| {
        assert!(n.log().snapshot_meta().index > stale_last, "the learner installed a snapshot");
        assert_eq!(n.cluster_config(), &config);
        assert!(n.cluster_config().config.removed.contains(&node_id(passing)));
    });
}

async fn every_config_entry_compacted(c: &Cx) {
    let ck = c.client();
    let mut round = 0;
    let running: Vec<usize> =
        (0..c.servers()).filter(|s| c.alive(*s) && !c.knows_removed(*s)).collect();
    while running.iter().any(|s| c.node(*s, |n| !n.log().config_entries().is_empty())) {
        fill(c, &ck, &format!("c{round}-"), 10).await;
        c.sleep(200).await;
        round += 1;
        assert!(round < 30, "config entries never compacted away\n{}", c.summary());
    }
    let config = c.converge(20_000).await;
    for &s in &running {
        c.node(s, |n| assert_eq!(n.log().snapshot().config.config, config.config));
    }
    let (a, b) = (running[0], running[1]);
    c.crash(a);
    c.restart_with_bootstrap(a, false);
    c.crash(b);
    c.restart_with_bootstrap(b, true);
    for s in [a, b] {
        assert_eq!(c.config(s).config, config.config, "server {s} restarted from its snapshot");
    }
    assert_eq!(c.converge(20_000).await.config, config.config);
}

// ----- 6. A promoted learner that lacks its promotion votes -----

/// Scenario 6 (`campaign_learner_must_vote`): a learner is promoted while the leader ships it
/// nothing, so its log lacks the promotion and it still thinks it is a learner; the leader
/// crashes, and the two other voters need its vote: it must grant (R7, votes by term and log
/// only), and a leader is elected.
#[test]
fn s06_a_promoted_learner_lacking_its_promotion_votes() {
    scenario("s06_a_promoted_learner_lacking_its_promotion_votes", Setup::voters(3), learner_votes);
}

async fn learner_votes(c: Cx) {
    c.make_leader(0, 10_000).await;
    let l = c.add_learner(false).await;
    c.wait_caught_up(l, 10_000).await;
    c.add_rule("the learner gets nothing", RuleAction::Drop, move |m| {
        m.to == node_id(l) && is_shipping(m)
    });
    c.must_change(promote(l), false).await;
    assert!(c.config(l).config.membership.is_learner(node_id(l)), "its log lacks the promotion");
    c.add_rule("the learner's votes", RuleAction::Count, move |m| {
        m.from == node_id(l) && matches!(m.body, MessageBody::VoteResponse { granted: true, .. })
    });
    c.crash(0);
    c.remove_rule("the learner gets nothing");
    c.wait_until("a leader needing the learner's vote", 10_000, |c| {
        c.leader().is_some_and(|x| x == 1 || x == 2)
    })
    .await;
    assert!(c.rule_hits("the learner's votes") > 0, "the promoted learner granted no vote");
    c.restart(0);
    assert_members(&c.converge(20_000).await, &[0, 1, 2, l], &[]);
}

// ----- 7. A leader removes itself -----

/// Scenario 7, three voters: the leader's removal of itself needs force (two voters left);
/// until the remaining two both hold it, it does not commit (the leader does not count
/// itself), and meanwhile the leader takes no write; once committed, the leader hands over at
/// once (no election timeout), knows it was removed, and never campaigns again.
#[test]
fn s07_a_leader_removes_itself_from_three() {
    scenario("s07_a_leader_removes_itself_from_three", Setup::voters(3), removes_itself_from_three);
}

async fn removes_itself_from_three(c: Cx) {
    removal_window(&c).await;
    c.wait_until("a new leader", 2_000, |c| c.leader().is_some_and(|l| l != 0)).await;
    removed_stays_silent(&c, 0).await;
    assert_members(&c.converge(10_000).await, &[1, 2], &[]);
}

/// Scenario 7, the hand-over (R8): once its removal commits, the leader sends `TimeoutNow`
/// to the most caught-up voter, which takes over at once: one campaign, no election timeout.
#[test]
fn s07_a_removed_leader_hands_over_without_an_election() {
    scenario("s07_a_removed_leader_hands_over_without_an_election", Setup::voters(3), hands_over);
}

async fn hands_over(c: Cx) {
    let (term, committed_at) = removal_window(&c).await;
    c.wait_until("a new leader", 2_000, |c| c.leader().is_some_and(|l| l != 0)).await;
    let new = c.leader().expect("checked");
    let took = c.now_ms() - committed_at;
    assert!(took < ELECTION_MS, "the hand-over took {took} ms, as long as an election");
    assert_eq!(c.term(new), Term(term.0 + 1), "one campaign, at the leader's word");
}

/// Server 0 leads {0, 1, 2} and removes itself; returns its term and when the removal was
/// answered (committed).
async fn removal_window(c: &Cx) -> (Term, u64) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let answer = c.change(0, remove(0)).await;
    assert_eq!(answer, Some(Err(AdminError::Refused(ChangeError::TooFewVoters { voters: 2 }))));
    // Node 3 gets the leader's entries 250 ms late (its heartbeats on time): for that long
    // only node 2 holds the removal, which is no majority of {2, 3}.
    c.add_rule("node 3's entries late", RuleAction::Delay(250 * 1000), |m| {
        between(m, 0, 2) && carries_entries(m)
    });
    let c2 = c.clone();
    let answer = c.t.sim.spawn(async move { c2.force(0, remove(0)).await });
    c.wait_until("appended", 2_000, |c| !c.config(0).config.is_member(node_id(0))).await;
    let index = c.config(0).index;
    let refused = c.raw_put(0, "raw", "x").await;
    assert!(
        matches!(refused, Some(Err(kvraft_kv::KvError::WrongLeader { .. }))),
        "a leader on its way out took a write: {refused:?}"
    );
    c.wait_until("node 2 holds the removal", 100, |c| c.durable_last_index(1) >= index).await;
    c.sleep(50).await;
    assert!(
        c.node(0, |n| n.is_leader() && n.commit_index() < index),
        "the removed leader counted itself: index {index}\n{}",
        c.summary()
    );
    let term = c.term(0);
    c.remove_rule("node 3's entries late");
    let answer = answer.await;
    assert!(matches!(answer, Some(Ok(_))), "{answer:?}");
    (term, c.now_ms())
}

/// `server` knows it was removed and asks for no vote for three election timeouts.
async fn removed_stays_silent(c: &Cx, server: usize) {
    c.wait_until("the removed node knows it", 5_000, |c| c.knows_removed(server)).await;
    let name = format!("votes asked by removed server {server}");
    c.add_rule(&name, RuleAction::Count, move |m| m.from == node_id(server) && is_vote_request(m));
    c.sleep(3 * 2 * ELECTION_MS).await;
    assert_eq!(c.rule_hits(&name), 0, "a removed node asked for votes");
    assert_eq!(c.role(server), kvraft_raft::Role::Follower);
    c.remove_rule(&name);
}

/// Scenario 7, two voters: the leader removes itself (force: one voter left); the removal
/// commits once the other holds it, which then leads alone; the old leader stays silent.
#[test]
fn s07_a_leader_removes_itself_from_two() {
    scenario("s07_a_leader_removes_itself_from_two", Setup::voters(2), removes_itself_from_two);
}

async fn removes_itself_from_two(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let ck = c.client();
    c.t.put(&ck, "k", "1", true, 0).await;
    let answer = c.change(0, remove(0)).await;
    assert_eq!(answer, Some(Err(AdminError::Refused(ChangeError::TooFewVoters { voters: 1 }))));
    let answer = c.force(0, remove(0)).await;
    assert!(matches!(answer, Some(Ok(_))), "{answer:?}");
    c.wait_until("node 2 leads", 2_000, |c| c.leader() == Some(1)).await;
    removed_stays_silent(&c, 0).await;
    assert_members(&c.converge(10_000).await, &[1], &[]);
    c.t.append(&ck, "k", "2", true, 0).await;
    assert_eq!(c.t.get(&ck, "k", true, 0).await, "12");
    c.t.check_history();
}

// ----- 8. A removed node cut off from the leader only -----

/// Scenario 8 (the thesis' disruptive server): a voter cut off from the leader (but not from
/// the others) is removed without hearing of it, its log up to date until then; it times out
/// and polls the others, who answer `Removed`. The leader keeps leading the same term (PreVote
/// and CheckQuorum), nobody's term moves, and the removed node stops.
#[test]
fn s08_a_removed_node_cut_off_from_the_leader_does_not_disrupt() {
    scenario(
        "s08_a_removed_node_cut_off_from_the_leader_does_not_disrupt",
        Setup::voters(5),
        disruptive,
    );
}

async fn disruptive(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let r = 4;
    let w = Workload::start(&c, 2, 20);
    c.sleep(300).await;
    c.partition(&[&[0], &[r]]);
    c.must_change(remove(r), false).await;
    let term = c.term(0);
    c.sleep(10 * ELECTION_MS).await;
    assert_eq!(c.leader(), Some(0), "the leader was disrupted");
    for s in 0..4 {
        assert_eq!(c.term(s), term, "server {s}'s term moved");
    }
    assert!(c.term(r) <= term, "the removed node's term inflated");
    assert!(c.knows_removed(r), "the removed node was never told");
    removed_stays_silent(&c, r).await;
    c.heal();
    assert_members(&c.converge(10_000).await, &[0, 1, 2, 3], &[]);
    w.finish(&c).await;
}

// ----- 9. A removed node restarts with its old data -----

/// Scenario 9: a voter is down while it is removed, then restarts with its old data (in which
/// it is a voter) and reconnects: the members answer it `Removed`, it stops, the leader's term
/// does not move, and clients asking it get no leader hint.
#[test]
fn s09_a_removed_node_restarting_with_old_data_is_told_and_stops() {
    scenario(
        "s09_a_removed_node_restarting_with_old_data_is_told_and_stops",
        Setup::voters(5),
        removed_restarts,
    );
}

async fn removed_restarts(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let r = 3;
    let w = Workload::start(&c, 2, 20);
    c.crash(r);
    c.must_change(remove(r), false).await;
    c.sleep(500).await;
    let term = c.term(0);
    c.restart(r);
    assert!(c.config(r).config.membership.is_voter(node_id(r)), "its old data");
    removed_stays_silent(&c, r).await;
    assert_eq!((c.leader(), c.term(0)), (Some(0), term), "the leader was disrupted");
    let answer = c.raw_put(r, "raw", "x").await;
    assert_eq!(answer, Some(Err(kvraft_kv::KvError::WrongLeader { leader: None })));
    assert_members(&c.converge(10_000).await, &[0, 1, 2, 4], &[]);
    w.finish(&c).await;
}

// ----- 10. A wiped node under its old id -----

/// Scenario 10: a removed voter's disk is wiped and the server comes back under its old id:
/// adding that id again, as a learner or (forced) as a voter, is refused `IdRemoved` (R9:
/// ids are never reused), and the server, in no configuration, stays silent. It joins under
/// a new id instead. With `bug-reuse-removed-id` the old id is let back in: a tombstoned id
/// is a member again (the checker's I7), the split-brain-prone state the tombstone prevents.
#[test]
fn s10_a_wiped_server_is_never_added_again_under_its_old_id() {
    scenario(
        "s10_a_wiped_server_is_never_added_again_under_its_old_id",
        Setup::voters(4),
        old_id_refused,
    );
}

async fn old_id_refused(c: Cx) {
    c.converge(10_000).await;
    let w = Workload::start(&c, 2, 20);
    let old = 3;
    c.must_change(remove(old), false).await;
    c.wipe(old);
    c.restart(old);
    let refused = Err(AdminError::Refused(ChangeError::IdRemoved(node_id(old))));
    let answer = c.change_settled(ChangeRequest::new(learner(old, false)), 10_000).await;
    assert_eq!(answer, refused, "the old id as a learner");
    let forced = ChangeRequest { change: voter(old), expected_config_index: None, force: true };
    assert_eq!(c.change_settled(forced, 10_000).await, refused, "the old id as a voter, forced");
    c.assert_asks_no_vote(old, 2_000).await;
    assert!(c.config(old).is_unknown(), "the wiped server has no configuration");
    let new = c.add_learner(false).await;
    c.wait_caught_up(new, 10_000).await;
    c.must_change(promote(new), false).await;
    let config = c.converge(20_000).await;
    assert_members(&config, &[0, 1, 2, new], &[]);
    assert!(config.config.removed.contains(&node_id(old)));
    w.finish(&c).await;
}

// ----- 11. Concurrent changes with compare-and-set -----

/// Scenario 11: two operators read the same configuration and each asks for a change against
/// it: one is applied, the other refused `ConfigIndexMismatch` naming the index the first
/// created; the stale request, retried as is, is refused again, and nothing unintended is in
/// the configuration. Re-read and retried, it goes in.
#[test]
fn s11_compare_and_set_refuses_the_stale_change() {
    scenario("s11_compare_and_set_refuses_the_stale_change", Setup::voters(3), compare_and_set);
}

async fn compare_and_set(c: Cx) {
    let base = c.converge(10_000).await.index;
    let leader = c.wait_leader(1_000).await;
    let (x, y) = (c.new_server(), c.new_server());
    let cas = |server: usize, expected: LogIndex| ChangeRequest {
        change: learner(server, false),
        expected_config_index: Some(expected),
        force: false,
    };
    let ask = |server: usize| {
        let (c2, request) = (c.clone(), cas(server, base));
        c.t.sim.spawn(async move { c2.change_at(leader, request).await })
    };
    let (ax, ay) = (ask(x), ask(y));
    let answers = [(x, ax.await), (y, ay.await)];
    let winner = answers.iter().find(|(_, a)| matches!(a, Some(Ok(_)))).map(|(s, _)| *s);
    let winner = winner.unwrap_or_else(|| panic!("neither change went in: {answers:?}"));
    let loser = if winner == x { y } else { x };
    let current = c.converge(10_000).await;
    let loser_answer = &answers.iter().find(|(s, _)| *s == loser).expect("both asked").1;
    let mismatch = Some(Err(AdminError::Refused(ChangeError::ConfigIndexMismatch {
        expected: base,
        current: current.index,
    })));
    assert_eq!(loser_answer, &mismatch, "the stale change");
    assert_members(&current, &[0, 1, 2], &[winner]);
    assert_eq!(c.change_at(leader, cas(loser, base)).await, mismatch, "retried as is");
    let stale_remove =
        ChangeRequest { change: remove(winner), expected_config_index: Some(base), force: false };
    assert_eq!(c.change_at(leader, stale_remove).await, mismatch);
    assert_eq!(c.converge(10_000).await, current, "nothing unintended");
    let answer = c.change_at(leader, cas(loser, current.index)).await;
    assert!(matches!(answer, Some(Ok(_))), "re-read and retried: {answer:?}");
    assert_members(&c.converge(10_000).await, &[0, 1, 2], &[x, y]);
}

// ----- 12. Churn under partitions and crashes -----

/// Scenario 12: membership churn between 3 and 7 voters (adds, removes, replacements, a host
/// that loses all its data and is replaced under a new id) under partitions and crashes,
/// with a KV workload throughout: after the heal the cluster converges, and every acknowledged
/// append is in the store exactly once, in a linearizable history.
#[test]
fn s12_churn_under_partitions_and_crashes_keeps_the_history_linearizable() {
    scenario(
        "s12_churn_under_partitions_and_crashes_keeps_the_history_linearizable",
        Setup { maxraftstate: 20_000, ..Setup::voters(3) },
        churn,
    );
}

async fn churn(c: Cx) {
    c.converge(10_000).await;
    let w = Workload::start(&c, 3, 10);
    for _ in 0..10 {
        churn_step(&c).await;
        c.sleep(200).await;
    }
    c.heal();
    for s in 0..c.servers() {
        if !c.alive(s) && !c.op.is_wiped(s) {
            c.restart(s);
        }
    }
    let config = c.converge(60_000).await;
    let voters = config.config.membership.voters().count();
    assert!((3..=7).contains(&voters), "{voters} voters");
    for s in (0..c.servers()).filter(|s| c.op.is_wiped(*s)) {
        assert!(!config.config.is_member(node_id(s)), "wiped server {s} is a member");
    }
    w.finish(&c).await;
}

/// One random step of churn (a change, or a fault that heals itself within a second).
async fn churn_step(c: &Cx) {
    use kvraft_sim::membership::operator::ChangeOutcome;
    let Some(config) = c.op.committed_config() else { return c.sleep(200).await };
    let voters: Vec<NodeId> = config.config.membership.voters().collect();
    let pick = |ids: &[NodeId]| ids[c.t.rand(ids.len() as u64) as usize];
    match c.t.rand(6) {
        0 if voters.len() < 7 => {
            if let Some(s) = c.op.add_learner(c.t.rand(2) == 0, None).await {
                c.op.wait_caught_up(node_id(s), 10_000).await;
                c.op.change(promote(s), false).await;
            }
        }
        1 if voters.len() > 3 => {
            let outcome =
                c.op.change(kvraft_raft::MembershipChange::Remove { id: pick(&voters) }, true)
                    .await;
            assert!(!matches!(outcome, ChangeOutcome::Refused(ChangeError::IdRemoved(_))));
        }
        2 => {
            c.op.replace(pick(&voters), c.t.rand(2) == 0, None).await;
        }
        3 => {
            c.t.random_partition();
            c.sleep(1_000).await;
            c.heal();
        }
        4 => {
            let s = kvraft_sim::world::server_index(pick(&voters));
            if c.alive(s) {
                c.crash(s);
                c.sleep(1_000).await;
                c.restart(s);
            }
        }
        5 => {
            // A host that loses all its data: replaced under a new id.
            let id = pick(&voters);
            let s = kvraft_sim::world::server_index(id);
            c.wipe(s);
            c.op.mark_wiped(s);
            c.op.replace(id, false, None).await;
        }
        _ => c.sleep(200).await,
    }
}

// ----- 13. Catch-up before a new voter counts -----

/// Scenario 13: a learner that answers heartbeats but lags (it is receiving a snapshot, slowly)
/// is not promoted while a voter is down: `WouldLoseQuorum` (R10-R12), and the cluster stays
/// available. Once it has caught up the promotion goes through, and the cluster, with that
/// voter still down, stays available. With `bug-promote-without-catchup` the lagging learner
/// counts as live, the promotion is let through and the cluster stalls until the learner has
/// caught up (the thesis figure).
#[test]
fn s13_a_lagging_learner_is_not_promoted_and_the_cluster_stays_available() {
    scenario(
        "s13_a_lagging_learner_is_not_promoted_and_the_cluster_stays_available",
        Setup { maxraftstate: 5_000, ..Setup::voters(3) },
        lagging_learner,
    );
}

async fn lagging_learner(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let l = slow_snapshot_learner(&c, false).await;
    c.crash(2);
    // Until its last answer is older than an election timeout, node 3 still counts as live.
    c.sleep(2 * ELECTION_MS).await;
    let answer = c.change(0, promote(l)).await;
    let refused = ChangeError::WouldLoseQuorum { alive: 2, voters: 4, needed: 3 };
    assert_eq!(answer, Some(Err(AdminError::Refused(refused))), "a lagging learner promoted");
    assert!(c.put_within("during", "1", 0, 2_000).await, "the cluster stalled");
    c.remove_rule("snapshot chunks to the learner are slow");
    c.wait_caught_up(l, 20_000).await;
    c.must_change(promote(l), false).await;
    assert!(c.put_within("after", "2", 1, 2_000).await, "the cluster stalled after promotion");
    c.restart(2);
    assert_members(&c.converge(20_000).await, &[0, 1, 2, l], &[]);
    c.t.check_history();
}

/// Fills the store until the leader (server 0) has compacted its log, then adds a new server
/// as a learner (`auto_promote` or not) whose snapshot chunks each take 150 ms: it answers
/// heartbeats throughout, and lags for seconds. Returns it once its snapshot is under way.
async fn slow_snapshot_learner(c: &Cx, auto_promote: bool) -> usize {
    c.fill("pre", 250).await;
    c.wait_until("a compacted log", 5_000, |c| {
        c.node(0, |n| n.log().snapshot_meta().index) > LogIndex(100)
    })
    .await;
    let l = c.new_server();
    c.add_rule(
        "snapshot chunks to the learner are slow",
        RuleAction::Delay(150 * 1000),
        move |m| m.to == node_id(l) && matches!(m.body, MessageBody::SnapshotChunk { .. }),
    );
    c.must_change(learner(l, auto_promote), false).await;
    c.wait_until("a snapshot on its way to the learner", 2_000, |c| {
        c.member_status(l).is_some_and(|s| s.receiving_snapshot)
    })
    .await;
    c.sleep(500).await;
    let status = c.member_status(l).expect("the leader tracks the learner");
    assert!(status.ticks_since_contact.is_some_and(|t| t < 30), "it answers: {status:?}");
    assert!(status.receiving_snapshot, "it lags: {status:?}");
    l
}

/// Scenario 13, the thesis figure itself: a voter added directly (allowed while the three
/// old voters answer: they are a majority of four) whose entries are lost, then an old voter
/// crashes: the cluster cannot commit until the new voter catches up. The learner path above
/// is the one that avoids this.
#[test]
fn s13_a_voter_added_directly_stalls_the_cluster_until_it_catches_up() {
    scenario(
        "s13_a_voter_added_directly_stalls_the_cluster_until_it_catches_up",
        Setup::voters(3),
        direct_voter,
    );
}

async fn direct_voter(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    c.fill("pre", 50).await;
    let v = c.new_server();
    c.add_rule("the new voter gets no entries", RuleAction::Drop, move |m| {
        m.to == node_id(v) && carries_entries(m)
    });
    let answer = c.change(0, voter(v)).await;
    assert!(matches!(answer, Some(Ok(_))), "{answer:?}");
    c.crash(2);
    assert!(!c.put_within("stalled", "1", 0, 2_000).await, "committed without the new voter");
    c.remove_rule("the new voter gets no entries");
    c.wait_until("the new voter catches up", 10_000, |c| {
        c.node(v, |n| n.commit_index()) >= c.node(0, |n| n.commit_index())
    })
    .await;
    assert!(c.put_within("after", "2", 1, 5_000).await, "still stalled after the catch-up");
    c.restart(2);
    assert_members(&c.converge(20_000).await, &[0, 1, 2, v], &[]);
    c.t.check_history();
}

// ----- 14. Learners that never answer -----

/// Scenario 14: a learner whose address leads nowhere and one that never starts, both marked
/// for automatic promotion: the cluster stays available, neither is ever promoted (R11), a
/// direct voter add or a promotion that would leave too few live voters is refused (R12), and
/// `member remove` takes both out.
#[test]
fn s14_learners_that_never_answer_are_harmless_and_removable() {
    scenario(
        "s14_learners_that_never_answer_are_harmless_and_removable",
        Setup::voters(3),
        silent_learners,
    );
}

async fn silent_learners(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let w = Workload::start(&c, 2, 20);
    let wrong = c.new_server();
    c.isolate(wrong);
    c.must_change(learner(wrong, true), false).await;
    let never = kvraft_raft::MembershipChange::AddLearner {
        id: None,
        address: "never-started".into(),
        auto_promote: true,
    };
    let config = c.must_change(never, false).await;
    let never = NodeId(node_id(wrong).0 + 1);
    assert!(config.config.membership.is_learner(never));
    c.sleep(5_000).await;
    assert_members(
        &c.committed_config(0),
        &[0, 1, 2],
        &[wrong, kvraft_sim::world::server_index(never)],
    );
    for id in [node_id(wrong), never] {
        let status = c.node(0, |n| n.member_status().into_iter().find(|m| m.id == id));
        assert_eq!(status.and_then(|s| s.ticks_since_contact), None, "node {id} answered");
    }
    assert!(c.put_within("available", "1", 100, 2_000).await);
    c.crash(2);
    c.sleep(2 * ELECTION_MS).await;
    let refused = Some(Err(AdminError::Refused(ChangeError::WouldLoseQuorum {
        alive: 2,
        voters: 4,
        needed: 3,
    })));
    let add = kvraft_raft::MembershipChange::AddVoter { id: None, address: "x".into() };
    assert_eq!(c.change(0, add).await, refused, "a direct voter add");
    let promote_never = kvraft_raft::MembershipChange::Promote { id: never };
    assert_eq!(c.change(0, promote_never).await, refused, "promoting the unstarted learner");
    c.restart(2);
    c.must_change(remove(wrong), false).await;
    c.must_change(kvraft_raft::MembershipChange::Remove { id: never }, false).await;
    let config = c.converge(10_000).await;
    assert_members(&config, &[0, 1, 2], &[]);
    assert!(config.config.removed.contains(&never));
    w.finish(&c).await;
}

// ----- 15. Learners catching up -----

/// Scenario 15, under load (redisraft#125): a learner marked for automatic promotion is added
/// while clients write as fast as they can; it catches up and is promoted all the same.
#[test]
fn s15_a_learner_under_a_steady_write_load_is_promoted() {
    scenario("s15_a_learner_under_a_steady_write_load_is_promoted", Setup::voters(3), under_load);
}

async fn under_load(c: Cx) {
    c.converge(10_000).await;
    let w = Workload::start(&c, 2, 0);
    c.sleep(500).await;
    let l = c.add_learner(true).await;
    c.wait_until("the learner is promoted under load", 20_000, |c| {
        c.op.committed_config().is_some_and(|x| x.config.membership.is_voter(node_id(l)))
    })
    .await;
    c.sleep(500).await;
    let appends = w.finish(&c).await;
    assert!(appends > 100, "the load was light: {appends} appends");
    assert_members(&c.converge(10_000).await, &[0, 1, 2, l], &[]);
}

/// Scenario 15, idle (openraft#1828): the leader has compacted its log into a snapshot and
/// takes no writes; a learner added then gets the snapshot and catches up.
#[test]
fn s15_a_learner_behind_an_idle_compacted_leader_gets_a_snapshot() {
    scenario(
        "s15_a_learner_behind_an_idle_compacted_leader_gets_a_snapshot",
        Setup { maxraftstate: 2_000, ..Setup::voters(3) },
        behind_snapshot,
    );
}

async fn behind_snapshot(c: Cx) {
    c.converge(10_000).await;
    let ck = c.client();
    c.t.put(&ck, "k", "v", true, 0).await;
    c.fill("pre", 60).await;
    let leader = c.wait_leader(1_000).await;
    c.wait_until("a compacted log", 5_000, |c| {
        c.node(leader, |n| n.log().snapshot_meta().index) > LogIndex(10)
    })
    .await;
    c.sleep(2_000).await;
    let snapshot = c.node(leader, |n| n.log().snapshot_meta().index);
    let l = c.add_learner(false).await;
    c.wait_caught_up(l, 5_000).await;
    assert!(c.node(l, |n| n.log().snapshot_meta().index) >= snapshot, "no snapshot installed");
    // Reads served by the learner's state machine once it is a voter and leads.
    c.must_change(promote(l), false).await;
    c.make_leader(l, 10_000).await;
    assert_eq!(c.t.get(&ck, "k", true, 0).await, "v");
    c.t.check_history();
}

// ----- 16. Promotion refused, then retried -----

/// Scenario 16, partitioned: with a voter down, a learner marked for promotion but cut off
/// cannot be promoted (`WouldLoseQuorum`), by hand or automatically; once reconnected and
/// caught up, the leader promotes it by itself.
#[test]
fn s16_a_partitioned_learner_is_promoted_only_once_back() {
    scenario(
        "s16_a_partitioned_learner_is_promoted_only_once_back",
        Setup { maxraftstate: 5_000, ..Setup::voters(3) },
        partitioned_learner,
    );
}

async fn partitioned_learner(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    c.fill("pre", 30).await;
    c.crash(2);
    c.sleep(2 * ELECTION_MS).await;
    let l = c.new_server();
    c.isolate(l);
    c.must_change(learner(l, true), false).await;
    let refused = ChangeError::WouldLoseQuorum { alive: 2, voters: 4, needed: 3 };
    assert_eq!(c.change(0, promote(l)).await, Some(Err(AdminError::Refused(refused))));
    c.sleep(3_000).await;
    assert!(c.committed_config(0).config.membership.is_learner(node_id(l)), "promoted, cut off");
    c.reconnect(l);
    c.wait_until("promoted once back", 15_000, |c| {
        c.committed_config(0).config.membership.is_voter(node_id(l))
    })
    .await;
    c.restart(2);
    assert_members(&c.converge(20_000).await, &[0, 1, 2, l], &[]);
}

/// Scenario 16, snapshot in flight: with a voter down, a learner receiving a (slow) snapshot
/// is not promotable (R10): refused by hand, not promoted automatically while the snapshot
/// is on its way; promoted by the leader once it has caught up.
#[test]
fn s16_a_learner_receiving_a_snapshot_is_promoted_only_once_caught_up() {
    scenario(
        "s16_a_learner_receiving_a_snapshot_is_promoted_only_once_caught_up",
        Setup { maxraftstate: 5_000, ..Setup::voters(3) },
        snapshot_in_flight,
    );
}

async fn snapshot_in_flight(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    c.crash(2);
    c.sleep(2 * ELECTION_MS).await;
    let l = slow_snapshot_learner(&c, true).await;
    let refused = ChangeError::WouldLoseQuorum { alive: 2, voters: 4, needed: 3 };
    assert_eq!(c.change(0, promote(l)).await, Some(Err(AdminError::Refused(refused))));
    while c.member_status(l).is_some_and(|s| s.receiving_snapshot) {
        assert!(c.committed_config(0).config.membership.is_learner(node_id(l)));
        c.sleep(20).await;
    }
    c.wait_until("promoted once caught up", 15_000, |c| {
        c.committed_config(0).config.membership.is_voter(node_id(l))
    })
    .await;
    c.restart(2);
    assert_members(&c.converge(20_000).await, &[0, 1, 2, l], &[]);
}

// ----- 17. Grow and shrink -----

/// Scenario 17: a one-node cluster grows to 2, 3 and 5 voters (learner, caught up,
/// promoted; a direct voter add of a node that is not up is refused at 1 -> 2, etcd#11633's
/// arithmetic), then shrinks to 3 and 1; going down to two voters and to one needs force.
/// Clients write throughout; every step leaves every member running the same configuration.
#[test]
fn s17_grow_from_one_to_five_and_shrink_back_to_one() {
    scenario("s17_grow_from_one_to_five_and_shrink_back_to_one", Setup::voters(1), grow_shrink);
}

async fn grow_shrink(c: Cx) {
    c.converge(10_000).await;
    let w = Workload::start(&c, 2, 20);
    let absent = kvraft_raft::MembershipChange::AddVoter { id: None, address: "down".into() };
    let refused = ChangeError::WouldLoseQuorum { alive: 1, voters: 2, needed: 2 };
    assert_eq!(c.change(0, absent).await, Some(Err(AdminError::Refused(refused))));
    let mut voters = vec![0];
    for target in [2, 3, 5] {
        while voters.len() < target {
            let s = c.add_learner(false).await;
            c.wait_caught_up(s, 10_000).await;
            c.must_change(promote(s), false).await;
            voters.push(s);
            assert_members(&c.converge(10_000).await, &voters, &[]);
        }
    }
    while voters.len() > 1 {
        let leader = c.wait_leader(5_000).await;
        let gone = *voters.iter().rev().find(|s| **s != leader).expect("another voter");
        voters.retain(|s| *s != gone);
        if voters.len() <= 2 {
            let refused = ChangeError::TooFewVoters { voters: voters.len() };
            let answer = c.change_settled(ChangeRequest::new(remove(gone)), 10_000).await;
            assert_eq!(answer, Err(AdminError::Refused(refused)));
        }
        c.must_change(remove(gone), voters.len() <= 2).await;
        assert_members(&c.converge(10_000).await, &voters, &[]);
    }
    w.finish(&c).await;
}

// ----- 18. Replace a dead voter -----

/// Scenario 18: a dead voter is replaced (learner, caught up, promoted, the dead one
/// removed) in 3- and 5-voter clusters whose leader is the dead one's neighbour; the leader
/// crashes mid-sequence, and the operator resumes from the configuration it reads, doing
/// each remaining step once.
#[test]
fn s18_a_dead_voter_is_replaced_and_the_replacement_resumes_after_a_crash() {
    for voters in [3, 5] {
        scenario(
            "s18_a_dead_voter_is_replaced_and_the_replacement_resumes_after_a_crash",
            Setup::voters(voters),
            replace_dead,
        );
    }
}

async fn replace_dead(c: Cx) {
    let n = c.servers();
    eprintln!("  {n} voters");
    let dead = 1;
    c.make_leader(dead + 1, 10_000).await;
    c.converge(10_000).await;
    let w = Workload::start(&c, 2, 20);
    c.crash(dead);
    c.sleep(2 * ELECTION_MS).await;
    let new = c.new_server();
    // The first run stops when the leader crashes after the promotion.
    replace_steps(&c, dead, new, true).await;
    replace_steps(&c, dead, new, false).await;
    let config = c.converge(20_000).await;
    let mut voters: Vec<usize> = (0..n).filter(|s| *s != dead).collect();
    voters.push(new);
    assert_members(&config, &voters, &[]);
    assert!(config.config.removed.contains(&node_id(dead)));
    // Resuming a finished replacement does nothing.
    replace_steps(&c, dead, new, false).await;
    assert_eq!(c.converge(10_000).await, config);
    w.finish(&c).await;
}

/// `member replace`, resumable: each step is taken only if the committed configuration does
/// not show it done. With `crash_after_promotion`, the leader crashes once the new server is
/// a voter, the operator's run ends there, and the crashed leader restarts a second later.
async fn replace_steps(c: &Cx, old: usize, new: usize, crash_after_promotion: bool) {
    let committed = |c: &Cx| c.op.committed_config().expect("a leader").config;
    c.wait_leader(10_000).await;
    if !committed(c).is_member(node_id(new)) {
        c.must_change(learner(new, false), false).await;
    }
    c.wait_leader(10_000).await;
    if committed(c).membership.is_learner(node_id(new)) {
        c.wait_caught_up(new, 10_000).await;
        c.must_change(promote(new), false).await;
    }
    if crash_after_promotion {
        let leader = c.wait_leader(5_000).await;
        c.crash(leader);
        c.sleep(1_000).await;
        c.restart(leader);
        return;
    }
    c.wait_leader(10_000).await;
    if committed(c).is_member(node_id(old)) {
        c.must_change(remove(old), false).await;
    }
}

// ----- 19. Joining -----

/// Scenario 19, what the core can show of a node joining: a new server (no configuration)
/// stays silent and answers an administration request "not the leader", without a hint; a
/// follower asked to add it answers "not the leader" naming the leader (the CLI follows
/// it), and the leader adds it. A removed node asked to add a member refuses (not the
/// leader; a hint, if any, names the leader), and gives clients no leader hint. (A node of
/// another cluster, and the join handshake itself, are the operators' issue.)
#[test]
fn s19_a_joining_node_is_redirected_or_refused() {
    scenario("s19_a_joining_node_is_redirected_or_refused", Setup::voters(4), joining);
}

async fn joining(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let joiner = c.new_server();
    c.assert_asks_no_vote(joiner, 2_000).await;
    assert_eq!((c.term(joiner), c.role(joiner)), (Term(0), kvraft_raft::Role::Follower));
    let at_joiner = c.change(joiner, learner(joiner, false)).await;
    assert_eq!(at_joiner, Some(Err(AdminError::NotLeader { leader: None })));
    let at_follower = c.change(1, learner(joiner, false)).await;
    assert_eq!(at_follower, Some(Err(AdminError::NotLeader { leader: Some(node_id(0)) })));
    let at_leader = c.change(0, learner(joiner, false)).await;
    assert!(matches!(at_leader, Some(Ok(_))), "{at_leader:?}");
    c.wait_until("the joiner learns its configuration", 5_000, |c| {
        c.config(joiner).config.membership.is_learner(node_id(joiner))
    })
    .await;
    let removed = 3;
    c.must_change(remove(removed), false).await;
    c.wait_until("the removed node knows", 5_000, |c| c.knows_removed(removed)).await;
    let late = c.new_server();
    let answer = c.change(removed, learner(late, false)).await;
    let leader = c.leader().map(node_id);
    assert!(
        matches!(answer, Some(Err(AdminError::NotLeader { leader: hint })) if hint.is_none() || hint == leader),
        "a removed node asked to add a member: {answer:?}"
    );
    let answer = c.raw_put(removed, "raw", "x").await;
    assert_eq!(answer, Some(Err(kvraft_kv::KvError::WrongLeader { leader: None })));
    let answer = c.transfer_at(removed, None).await;
    assert!(matches!(answer, Some(Err(AdminError::NotLeader { .. }))), "{answer:?}");
}

// ----- 20. Leadership transfer: targets -----

/// The answer a transfer that moved the leadership to `target` gets.
fn transferred_to(answer: &Option<kvraft_replica::AdminReply>, target: usize) -> bool {
    matches!(
        answer,
        Some(Ok(kvraft_replica::AdminOutcome::Transferred { leader, .. })) if *leader == node_id(target)
    )
}

/// Scenario 20: transfers to an up-to-date voter, and to one that lags (it needs appends
/// first): each target leads afterwards.
#[test]
fn s20_transfers_to_up_to_date_and_lagging_voters_succeed() {
    scenario(
        "s20_transfers_to_up_to_date_and_lagging_voters_succeed",
        Setup::voters(5),
        transfers_that_succeed,
    );
}

async fn transfers_that_succeed(c: Cx) {
    c.converge(10_000).await;
    let leader = c.wait_leader(1_000).await;
    let target = (leader + 1) % 5;
    let answer = c.transfer_at(leader, Some(node_id(target))).await;
    assert!(transferred_to(&answer, target), "to an up-to-date voter: {answer:?}");
    c.converge(10_000).await;
    let leader = c.wait_leader(1_000).await;
    let lagging = (leader + 2) % 5;
    c.isolate(lagging);
    c.fill("lag", 30).await;
    c.reconnect(lagging);
    let behind = c.member_status(lagging).expect("tracked").lag_entries;
    assert!(behind > 0, "the target does not lag");
    let answer = c.transfer_at(leader, Some(node_id(lagging))).await;
    assert!(transferred_to(&answer, lagging), "to a lagging voter ({behind} behind): {answer:?}");
    assert_eq!(c.leader(), Some(lagging));
}

/// Scenario 20: a transfer to a voter that needs a snapshot first (the leader compacted past
/// it): it gets the snapshot, then leads.
#[test]
fn s20_a_transfer_to_a_voter_needing_a_snapshot_succeeds() {
    scenario(
        "s20_a_transfer_to_a_voter_needing_a_snapshot_succeeds",
        Setup { maxraftstate: 3_000, ..Setup::voters(5) },
        transfer_needing_snapshot,
    );
}

async fn transfer_needing_snapshot(c: Cx) {
    c.converge(10_000).await;
    let leader = c.wait_leader(1_000).await;
    let target = (leader + 1) % 5;
    c.isolate(target);
    let stale = c.node(target, |n| n.last_index());
    let mut round = 0;
    while c.node(leader, |n| n.log().snapshot_meta().index) <= stale {
        c.fill(&format!("f{round}-"), 10).await;
        round += 1;
        assert!(round < 20, "the leader never compacted past the target");
    }
    c.reconnect(target);
    let answer = c.transfer_at(leader, Some(node_id(target))).await;
    assert!(transferred_to(&answer, target), "to a voter needing a snapshot: {answer:?}");
    assert!(c.node(target, |n| n.log().snapshot_meta().index) > stale, "no snapshot installed");
}

/// Scenario 20: transfers to the leader itself, to a learner, to an id no member has and to
/// a removed id are refused, each with its reason, and change nothing.
#[test]
fn s20_transfers_to_self_learners_and_unknown_or_removed_ids_are_refused() {
    scenario(
        "s20_transfers_to_self_learners_and_unknown_or_removed_ids_are_refused",
        Setup::voters(4),
        refused_transfers,
    );
}

async fn refused_transfers(c: Cx) {
    use kvraft_raft::TransferError as T;
    c.make_leader(0, 10_000).await;
    let l = c.add_learner(false).await;
    c.must_change(remove(3), false).await;
    let config = c.converge(10_000).await;
    let term = c.term(0);
    for (target, refusal) in [
        (NodeId(1), T::ToSelf(NodeId(1))),
        (node_id(l), T::NotAVoter(node_id(l))),
        (NodeId(99), T::NotAVoter(NodeId(99))),
        (node_id(3), T::Removed(node_id(3))),
    ] {
        let answer = c.transfer_at(0, Some(target)).await;
        assert_eq!(answer, Some(Err(AdminError::TransferRefused(refusal))), "to {target}");
    }
    assert_eq!((c.leader(), c.term(0)), (Some(0), term));
    assert_eq!(c.converge(5_000).await, config);
}

/// Scenario 20: a transfer to a partitioned target, then to a crashed one, aborts after one
/// election timeout; meanwhile the leader takes no write, and afterwards it leads on in the
/// same term and takes writes again.
#[test]
fn s20_a_transfer_to_an_unreachable_target_aborts_after_an_election_timeout() {
    scenario(
        "s20_a_transfer_to_an_unreachable_target_aborts_after_an_election_timeout",
        Setup::voters(5),
        unreachable_targets,
    );
}

async fn unreachable_targets(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    for (target, crash) in [(1, false), (2, true)] {
        if crash {
            c.crash(target);
        } else {
            c.isolate(target);
        }
        let term = c.term(0);
        let start = c.now_ms();
        let c2 = c.clone();
        let transfer = c.t.sim.spawn(async move { c2.transfer_at(0, Some(node_id(target))).await });
        c.sleep(50).await;
        let during = c.raw_put(0, "raw", "x").await;
        assert!(matches!(during, Some(Err(kvraft_kv::KvError::WrongLeader { .. }))), "{during:?}");
        let answer = transfer.await;
        let took = c.now_ms() - start;
        assert_eq!(answer, Some(Err(AdminError::TransferAborted { target: node_id(target) })));
        // One election timeout (30 ticks) from the tick the request arrived in.
        assert!((ELECTION_MS - 20..2 * ELECTION_MS).contains(&took), "aborted after {took} ms");
        assert_eq!((c.leader(), c.term(0)), (Some(0), term), "crash {crash}");
        assert!(c.put_within(&format!("after{target}"), "1", target as u64, 1_000).await);
        if crash {
            c.restart(target);
        } else {
            c.reconnect(target);
        }
    }
    c.converge(10_000).await;
    c.t.check_history();
}

/// Scenario 20: a target that refuses `TimeoutNow` makes the leader abort at once (T5, T6),
/// not after an election timeout. The target here lost its disk and came back under its old
/// id (what operators must not do) before the leader noticed: the leader, going by what the
/// target had acknowledged, sends `TimeoutNow` at once, and the target, holding nothing,
/// refuses.
#[test]
fn s20_a_transfer_to_a_target_that_refuses_aborts_at_once() {
    scenario(
        "s20_a_transfer_to_a_target_that_refuses_aborts_at_once",
        Setup::voters(5),
        refusing_target,
    );
}

async fn refusing_target(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let target = 1;
    // The leader must not hear from the target before the transfer, except its refusal.
    c.add_rule("the target speaks only to refuse", RuleAction::Drop, move |m| {
        m.from == node_id(target) && !matches!(m.body, MessageBody::TimeoutNowRejected { .. })
    });
    c.add_rule("refusals", RuleAction::Count, |m| {
        matches!(m.body, MessageBody::TimeoutNowRejected { .. })
    });
    c.wipe(target);
    c.restart(target);
    let term = c.term(0);
    let start = c.now_ms();
    let answer = c.transfer_at(0, Some(node_id(target))).await;
    let took = c.now_ms() - start;
    assert_eq!(answer, Some(Err(AdminError::TransferAborted { target: node_id(target) })));
    assert!(c.rule_hits("refusals") > 0, "the target did not refuse");
    assert!(took < ELECTION_MS / 3, "aborted after {took} ms: not at once");
    assert_eq!((c.leader(), c.term(0)), (Some(0), term));
    c.heal();
    assert!(c.put_within("after", "1", 0, 1_000).await);
    c.t.check_history();
}

// ----- 21. Writes during a transfer -----

/// Scenario 21 (hashicorp#581): writes arriving while the leader transfers are refused with
/// a retryable answer and never accepted (I10: the transferring leader's log does not grow),
/// the target's election succeeds, and clients' writes, retried, are each applied once.
#[test]
fn s21_writes_during_a_transfer_are_refused_and_retried() {
    scenario(
        "s21_writes_during_a_transfer_are_refused_and_retried",
        Setup::voters(5),
        writes_during_transfer,
    );
}

async fn writes_during_transfer(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let w = Workload::start(&c, 3, 0);
    c.sleep(300).await;
    let target = 3;
    // TimeoutNow takes 150 ms: the transfer lasts at least that long.
    c.add_rule("slow TimeoutNow", RuleAction::Delay(150 * 1000), |m| {
        matches!(m.body, MessageBody::TimeoutNow { .. })
    });
    let c2 = c.clone();
    let transfer = c.t.sim.spawn(async move { c2.transfer_at(0, Some(node_id(target))).await });
    c.wait_until("transferring", 100, |c| {
        c.with_node(0, |n| n.transfer_target()).flatten().is_some()
    })
    .await;
    let last = c.node(0, |n| n.last_index());
    let during = c.raw_put(0, "raw", "x").await;
    let Some(Err(e)) = &during else { panic!("a write accepted during a transfer: {during:?}") };
    assert!(e.is_retryable(), "{e}");
    if c.with_node(0, |n| n.transfer_target().is_some()) == Some(true) {
        assert_eq!(c.node(0, |n| n.last_index()), last, "the transferring leader's log grew");
    }
    let answer = transfer.await;
    assert!(transferred_to(&answer, target), "{answer:?}");
    c.sleep(500).await;
    w.finish(&c).await;
}

/// Scenario 21, the hint (T2): a write refused during a transfer names the target ("try N"),
/// so that the client goes there rather than around the servers.
#[test]
fn s21_a_write_refused_during_a_transfer_names_the_target() {
    scenario(
        "s21_a_write_refused_during_a_transfer_names_the_target",
        Setup::voters(3),
        transfer_hint,
    );
}

async fn transfer_hint(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    c.add_rule("slow TimeoutNow", RuleAction::Delay(150 * 1000), |m| {
        matches!(m.body, MessageBody::TimeoutNow { .. })
    });
    c.send_admin(0, AdminRequest::TransferLeadership { target: Some(node_id(2)) });
    c.wait_until("transferring", 100, |c| {
        c.with_node(0, |n| n.transfer_target()).flatten().is_some()
    })
    .await;
    let during = c.raw_put(0, "raw", "x").await;
    assert_eq!(during, Some(Err(kvraft_kv::KvError::WrongLeader { leader: Some(node_id(2)) })));
}

// ----- 22. Transfers asked twice, of a follower, of a candidate -----

/// Scenario 22: while a transfer to a target that cannot catch up runs, asking for the same
/// target again changes nothing (the transfer is not restarted: it aborts one election
/// timeout after the first request); asking for another target restarts the transfer towards
/// it (the first request is answered aborted); once `TimeoutNow` is on its way, another
/// target is refused (`HandedOver`). A follower asked for a transfer names the leader, which
/// does it; a candidate refuses.
#[test]
fn s22_second_transfers_followers_and_candidates() {
    scenario("s22_second_transfers_followers_and_candidates", Setup::voters(5), second_transfers);
}

async fn second_transfers(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let spawn_transfer = |to: usize| {
        let c2 = c.clone();
        c.t.sim.spawn(async move { c2.transfer_at(0, Some(node_id(to))).await })
    };
    // The same target again. It lags (a write it lacks), so the leader cannot hand over.
    c.isolate(1);
    c.fill("lag", 1).await;
    let start = c.now_ms();
    let first = spawn_transfer(1);
    c.sleep(150).await;
    let again = c.transfer_at(0, Some(node_id(1))).await;
    let took = c.now_ms() - start;
    assert_eq!(again, Some(Err(AdminError::TransferAborted { target: node_id(1) })));
    assert!(took < ELECTION_MS + 100, "the repeated request restarted the transfer ({took} ms)");
    first.await;
    // Another target, while the first catches up (it still lags).
    let first = spawn_transfer(1);
    c.sleep(50).await;
    let other = c.transfer_at(0, Some(node_id(2))).await;
    assert!(transferred_to(&other, 2), "{other:?}");
    assert_eq!(first.await, Some(Err(AdminError::TransferAborted { target: node_id(1) })));
    c.reconnect(1);
    c.converge(10_000).await;
    handed_over_then_follower_then_candidate(&c).await;
}

async fn handed_over_then_follower_then_candidate(c: &Cx) {
    let leader = c.wait_leader(1_000).await;
    let (t1, t2) = ((leader + 1) % 5, (leader + 2) % 5);
    c.add_rule("slow TimeoutNow", RuleAction::Delay(150 * 1000), |m| {
        matches!(m.body, MessageBody::TimeoutNow { .. })
    });
    c.add_rule("TimeoutNow sent", RuleAction::Count, |_| false);
    let c2 = c.clone();
    let first = c.t.sim.spawn(async move { c2.transfer_at(leader, Some(node_id(t1))).await });
    c.wait_until("TimeoutNow on its way", 100, |c| {
        c.with_node(leader, |n| n.transfer_target() == Some(node_id(t1))) == Some(true)
    })
    .await;
    c.sleep(20).await;
    let other = c.transfer_at(leader, Some(node_id(t2))).await;
    let handed = kvraft_raft::TransferError::HandedOver(node_id(t1));
    assert_eq!(other, Some(Err(AdminError::TransferRefused(handed))));
    assert!(transferred_to(&first.await, t1));
    c.heal();
    c.converge(10_000).await;
    // A follower names the leader; the leader does it.
    let leader = c.wait_leader(1_000).await;
    let follower = (leader + 1) % 5;
    let target = (leader + 2) % 5;
    let answer = c.transfer_at(follower, Some(node_id(target))).await;
    assert_eq!(answer, Some(Err(AdminError::NotLeader { leader: Some(node_id(leader)) })));
    assert!(transferred_to(&c.transfer_at(leader, Some(node_id(target))).await, target));
    // A candidate refuses.
    let cut = (target + 1) % 5;
    c.isolate(cut);
    c.wait_until("a candidate", 5_000, |c| c.role(cut) != kvraft_raft::Role::Follower).await;
    let answer = c.transfer_at(cut, Some(node_id(target))).await;
    assert_eq!(answer, Some(Err(AdminError::NotLeader { leader: None })), "a candidate");
    c.reconnect(cut);
    c.converge(10_000).await;
}

/// Scenario 22, the first request of two for the same target: the second changes nothing
/// (T1), so the first should be answered with the transfer's outcome, not "aborted" while
/// the transfer goes on.
#[test]
fn s22_both_requests_for_the_same_target_get_the_outcome() {
    scenario(
        "s22_both_requests_for_the_same_target_get_the_outcome",
        Setup::voters(3),
        same_target_twice,
    );
}

async fn same_target_twice(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    c.add_rule("slow TimeoutNow", RuleAction::Delay(150 * 1000), |m| {
        matches!(m.body, MessageBody::TimeoutNow { .. })
    });
    let c2 = c.clone();
    let first = c.t.sim.spawn(async move { c2.transfer_at(0, Some(node_id(1))).await });
    c.sleep(50).await;
    let second = c.transfer_at(0, Some(node_id(1))).await;
    assert!(transferred_to(&second, 1), "{second:?}");
    let first = first.await;
    assert!(transferred_to(&first, 1), "the first request: {first:?}");
}

// ----- 23. Transfers and leases -----

/// Scenario 23: with CheckQuorum and lease reads on, a transfer's target wins despite the
/// followers' stickiness, and the old leader holds no lease from the moment the transfer
/// starts (I9 checks it after every event); reads go on, linearizable. With
/// `bug-transfer-keeps-lease` the old leader keeps its lease.
#[test]
fn s23_a_transfer_ends_the_old_leaders_lease_reads() {
    let setup = Setup { lease_reads: true, ..Setup::voters(3) };
    scenario("s23_a_transfer_ends_the_old_leaders_lease_reads", setup, lease_transfer);
}

async fn lease_transfer(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let w = Workload::start(&c, 3, 5);
    c.wait_until("a lease", 2_000, |c| c.node(0, |n| n.in_read_lease())).await;
    c.send_admin(0, AdminRequest::TransferLeadership { target: Some(node_id(1)) });
    c.step_until("the transfer starts", 1_000, |c| {
        c.with_node(0, |n| n.transfer_target().is_some() || !n.is_leader()) == Some(true)
    });
    assert!(!c.node(0, |n| n.in_read_lease()), "a leader handing over holds a lease");
    c.wait_until("the target leads", 2_000, |c| c.leader() == Some(1)).await;
    c.sleep(500).await;
    w.finish(&c).await;
}

/// Scenario 23, a `TimeoutNow` delivered after its transfer aborted: the old leader leads on
/// without a lease for the rest of its term (T3), so when the late `TimeoutNow` makes the
/// target campaign past the followers' stickiness, no stale lease read can be served; the
/// history stays linearizable. With `bug-transfer-keeps-lease` the lease survives.
#[test]
fn s23_a_late_timeout_now_after_an_abort_finds_no_lease() {
    let setup = Setup { lease_reads: true, ..Setup::voters(3) };
    scenario("s23_a_late_timeout_now_after_an_abort_finds_no_lease", setup, late_timeout_now);
}

async fn late_timeout_now(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let w = Workload::start(&c, 3, 5);
    c.wait_until("a lease", 2_000, |c| c.node(0, |n| n.in_read_lease())).await;
    c.add_rule("TimeoutNow arrives late", RuleAction::Delay(600 * 1000), |m| {
        matches!(m.body, MessageBody::TimeoutNow { .. })
    });
    let term = c.term(0);
    let answer = c.transfer_at(0, Some(node_id(1))).await;
    assert_eq!(answer, Some(Err(AdminError::TransferAborted { target: node_id(1) })));
    assert!(c.put_within("after-abort", "1", 100, 1_000).await, "proposals did not resume");
    let until = c.now_ms() + 1_000;
    while c.now_ms() < until {
        if c.with_node(0, |n| n.is_leader() && n.term() == term) == Some(true) {
            assert!(!c.node(0, |n| n.in_read_lease()), "a lease after TimeoutNow, in its term");
        }
        c.sleep(5).await;
    }
    c.remove_rule("TimeoutNow arrives late");
    w.finish(&c).await;
}

// ----- 24. Transfers and membership -----

/// Scenario 24: the target of a transfer under way cannot be removed or demoted (changes are
/// refused `Transferring`); once the transfer aborted, it can, and it is then no target.
#[test]
fn s24_a_transfer_target_is_not_removed_or_demoted_during_the_transfer() {
    scenario(
        "s24_a_transfer_target_is_not_removed_or_demoted_during_the_transfer",
        Setup::voters(5),
        target_changes,
    );
}

async fn target_changes(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let target = 1;
    c.isolate(target);
    let c2 = c.clone();
    let transfer = c.t.sim.spawn(async move { c2.transfer_at(0, Some(node_id(target))).await });
    c.sleep(50).await;
    let refused =
        Some(Err(AdminError::Refused(ChangeError::Transferring { target: node_id(target) })));
    assert_eq!(c.change(0, remove(target)).await, refused, "removal during the transfer");
    assert_eq!(c.change(0, demote(target)).await, refused, "demotion during the transfer");
    assert_eq!(transfer.await, Some(Err(AdminError::TransferAborted { target: node_id(target) })));
    c.must_change(demote(target), false).await;
    let answer = c.transfer_at(0, Some(node_id(target))).await;
    let not_a_voter = kvraft_raft::TransferError::NotAVoter(node_id(target));
    assert_eq!(answer, Some(Err(AdminError::TransferRefused(not_a_voter))));
    c.reconnect(target);
    assert_members(&c.converge(10_000).await, &[0, 2, 3, 4], &[target]);
}

/// Scenario 24: a leader of five removes itself (no force needed): a new leader takes over
/// and the old one, removed, stays silent; writes go on.
#[test]
fn s24_a_leader_removing_itself_hands_over() {
    scenario("s24_a_leader_removing_itself_hands_over", Setup::voters(5), leader_leaves);
}

async fn leader_leaves(c: Cx) {
    c.make_leader(0, 10_000).await;
    c.converge(10_000).await;
    let w = Workload::start(&c, 2, 10);
    let answer = c.change(0, remove(0)).await;
    assert!(matches!(answer, Some(Ok(_))), "{answer:?}");
    c.wait_until("a new leader", 2_000, |c| c.leader().is_some_and(|l| l != 0)).await;
    removed_stays_silent(&c, 0).await;
    assert_members(&c.converge(10_000).await, &[1, 2, 3, 4], &[]);
    w.finish(&c).await;
}

/// Scenario 24, graceful shutdown: the leader hands over (to the most caught-up voter), then
/// stops; writes go on at once, without an election.
#[test]
fn s24_a_graceful_shutdown_hands_over_first() {
    scenario("s24_a_graceful_shutdown_hands_over_first", Setup::voters(3), graceful_shutdown);
}

async fn graceful_shutdown(c: Cx) {
    c.converge(10_000).await;
    let w = Workload::start(&c, 2, 10);
    c.sleep(300).await;
    let old = c.wait_leader(1_000).await;
    let answer = c.transfer_at(old, None).await;
    let Some(Ok(kvraft_replica::AdminOutcome::Transferred { leader, term })) = answer else {
        panic!("{answer:?}")
    };
    c.crash(old);
    assert!(c.put_within("after-shutdown", "1", 100, ELECTION_MS).await, "writes waited");
    let new = kvraft_sim::world::server_index(leader);
    assert_eq!((c.leader(), c.term(new)), (Some(new), term), "an election after the hand-over");
    c.restart(old);
    c.converge(10_000).await;
    w.finish(&c).await;
}

// ----- 25. Client retries across transfers -----

/// Scenario 25: clients on a lossy network (lost requests and answers, so retries) write
/// while the leadership moves again and again and a follower restarts from its snapshot
/// (sessions travel in snapshots): each (client, sequence) is applied once.
#[test]
fn s25_client_retries_across_transfers_are_applied_once() {
    let setup = Setup { maxraftstate: 3_000, unreliable: true, ..Setup::voters(3) };
    scenario("s25_client_retries_across_transfers_are_applied_once", setup, retries);
}

async fn retries(c: Cx) {
    c.converge(20_000).await;
    let w = Workload::start(&c, 3, 0);
    for round in 0..8 {
        c.sleep(400).await;
        let Some(leader) = c.leader() else { continue };
        let target = (leader + 1 + c.t.rand(2) as usize) % 3;
        c.transfer_at(leader, Some(node_id(target))).await;
        if round == 4 {
            let follower = (target + 1) % 3;
            c.crash(follower);
            c.sleep(300).await;
            c.restart(follower);
        }
    }
    let appends = w.finish(&c).await;
    assert!(appends > 50, "few appends: {appends}");
}

// ----- 26. Seed sweeps -----

/// Scenario 26: the membership swarm (`kvraft_sim::membership::swarm`: changes of every kind,
/// transfers, partitions, loss, duplication, crashes, pauses, failing and wiped disks, checked
/// by I1-I10, linearizability and the liveness phase) over seeds the other test files do not
/// run. The sweep (`sweep --suite membership`) runs thousands.
#[test]
fn s26_the_membership_swarm_over_more_seeds() {
    let test = kvraft_sim::lab::find_test("membership").expect("the membership swarm");
    run_seeds("s26_the_membership_swarm_over_more_seeds", 10..=17, |seed| {
        eprintln!("  {}", kvraft_sim::membership::swarm::MembershipParams::derive(seed));
        (test.run)(seed, &options());
    });
}
