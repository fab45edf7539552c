//! Targeted scenarios for the read fast paths (follower reads, leader leases), where the swarm
//! only stumbles on the dangerous moment now and then:
//!
//! - [`isolated_leader_reads`]: again and again, the leader is cut off from its peers while a
//!   reader keeps asking it and a writer goes to the new leader. An old leader must stop
//!   answering reads before a new one can commit; the history must stay linearizable. This is
//!   where a lease longer than the followers' vote refusal shows (`bug-lease-too-long`), and a
//!   leader answering from local state (`bug-get-from-local-state`).
//! - [`paused_leader_reads`]: the leader *process* stalls (think GC pause, SIGSTOP, `docker
//!   pause`) while a new leader takes writes, and a reader's Get reaches the old leader during
//!   the stall. When it resumes, it handles the Get before any news of the new term (here its
//!   peer links are cut too; in a real process the order of two sockets is anyone's).
//!   ReadIndex stays linearizable; a lease read does not, because the stalled leader's clock
//!   stood still while the followers' ran. That is the clock assumption leases make, shown,
//!   and why they are opt-in.

use std::cell::Cell;
use std::rc::Rc;

use kvraft_kv::Op;

use crate::kv_tester::KvTester;
use crate::network::MS;
use crate::options::SimOptions;
use crate::world::sim_raft_config;

/// Which read paths a scenario's cluster runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    pub lease_reads: bool,
    pub follower_reads: bool,
}

/// A three-server cluster with the given read options, servers started and connected.
pub fn read_tester(seed: u64, sim_options: &SimOptions, options: ReadOptions) -> KvTester {
    let t = KvTester::with_follower_reads(seed, sim_options, 3, false, -1, options.follower_reads);
    let lease_reads = options.lease_reads;
    t.sim.world_mut().raft_config = Box::new(move |id, voters| {
        let mut c = sim_raft_config(id, voters);
        c.lease_reads = lease_reads;
        c
    });
    for i in 0..t.n {
        t.start_server(i);
    }
    t.connect_all();
    t
}

async fn wait_for_leader(t: &KvTester) -> usize {
    loop {
        if let Some(l) = t.leader() {
            return l;
        }
        t.sleep(50).await;
    }
}

/// `cycles` times: let the cluster settle, cut the leader off from its peers (its clients
/// still reach it) for `isolated_ms`, with a reader pinned to it and a writer that cannot
/// reach it; then heal. Panics if the history is not linearizable.
pub async fn isolated_leader_reads(t: KvTester, cycles: usize, isolated_ms: u64) {
    t.begin("isolated leader: reads at the old leader, writes at the new one");
    let writer = t.make_client(&t.all());
    let reader = t.make_client(&t.all());
    // Settle, and have something to read.
    t.put(&writer, "k", "", true, 0).await;
    let mut j = 0;
    for _ in 0..cycles {
        t.sleep(500 + t.rand(500)).await;
        let old = wait_for_leader(&t).await;
        // Strike at a random point between two heartbeats.
        t.sleep(t.rand(100)).await;
        {
            let mut w = t.sim.world_mut();
            for other in (0..t.n).filter(|&o| o != old) {
                w.net.set_link(old, other, false);
            }
        }
        t.disconnect_client(&writer, &[old]);
        let stop = Rc::new(Cell::new(false));
        let reads = {
            let (t2, stop, reader) = (t.clone(), stop.clone(), t.make_client(&t.all()));
            t.sim.spawn(async move {
                while !stop.get() {
                    t2.get_from(&reader, Some(old), "k", true, 1).await;
                    t2.sleep(1 + t2.rand(5)).await;
                }
            })
        };
        let until = t.sim.now_ms() + isolated_ms;
        while t.sim.now_ms() < until {
            let op = Op::Append { key: "k".into(), value: format!("w{j};") };
            t.write(&writer, None, op, true, 0).await;
            j += 1;
        }
        stop.set(true);
        reads.await;
        t.connect_all();
        t.connect_client(&writer, &t.all());
    }
    // The reader client of the main task reads once more after healing.
    t.get_from(&reader, None, "k", true, 2).await;
    t.end();
    t.check_history();
}

/// Pauses the leader for `pause_ms` while a writer commits through the new leader; then a
/// reader asks the paused leader (the Get waits in its queue until it resumes). Returns the
/// history's verdict rather than panicking: with leases it is expected to be a violation.
pub async fn paused_leader_reads(t: KvTester, pause_ms: u64) -> bool {
    t.begin("paused leader: a Get reaches it during the pause");
    let writer = t.make_client(&t.all());
    let reader = t.make_client(&t.all());
    t.put(&writer, "k", "old", true, 0).await;
    // Let the leader hold a lease (a few acknowledged heartbeats).
    t.sleep(300).await;
    let old = wait_for_leader(&t).await;
    let pause_until = t.sim.now_us() + pause_ms * MS;
    {
        let mut w = t.sim.world_mut();
        w.pause(old, pause_until);
        for other in (0..t.n).filter(|&o| o != old) {
            w.net.set_link(old, other, false);
        }
    }
    t.disconnect_client(&writer, &[old]);
    // A new leader is elected (about an election timeout) and takes the write.
    t.put(&writer, "k", "new", true, 0).await;
    assert!(t.sim.now_us() < pause_until, "the write took longer than the pause");
    // Invoked after the write completed (strictly: the checker takes touching intervals as
    // concurrent), so it must see "new".
    t.sleep(1).await;
    t.get_from(&reader, Some(old), "k", true, 1).await;
    t.connect_all();
    t.end();
    matches!(t.history_check(), kvraft_linearizability::CheckResult::Ok)
}
