//! Raft lab part 2C: persistence, Figure 8, unreliable networks and churn.

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;

use crate::raft_tester::{int_cmd, RaftTester, RAFT_ELECTION_TIMEOUT_MS};

fn rand_cmd(t: &RaftTester) -> Bytes {
    int_cmd(t.rand(1 << 62))
}

/// Restart and reconnect every crashed server (and connect all).
fn revive_all(t: &RaftTester) {
    for i in 0..t.n {
        if !t.is_alive(i) {
            t.start1(i);
        }
        t.connect(i);
    }
}

pub async fn persist1_2c(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2C): basic persistence");
    t.one(int_cmd(11), n, true).await;
    // Crash and restart all.
    for i in 0..n {
        t.start1(i);
    }
    for i in 0..n {
        t.disconnect(i);
        t.connect(i);
    }
    t.one(int_cmd(12), n, true).await;
    let leader1 = t.check_one_leader().await;
    t.disconnect(leader1);
    t.start1(leader1);
    t.connect(leader1);
    t.one(int_cmd(13), n, true).await;
    let leader2 = t.check_one_leader().await;
    t.disconnect(leader2);
    t.one(int_cmd(14), n - 1, true).await;
    t.start1(leader2);
    t.connect(leader2);
    // Wait for leader2 to join before killing i3.
    t.wait(4, n, None).await;
    let i3 = (t.check_one_leader().await + 1) % n;
    t.disconnect(i3);
    t.one(int_cmd(15), n - 1, true).await;
    t.start1(i3);
    t.connect(i3);
    t.one(int_cmd(16), n, true).await;
    t.end();
}

pub async fn persist2_2c(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2C): more persistence");
    let mut index = 1;
    for _ in 0..5 {
        t.one(int_cmd(10 + index), n, true).await;
        index += 1;
        let leader1 = t.check_one_leader().await;
        t.disconnect((leader1 + 1) % n);
        t.disconnect((leader1 + 2) % n);
        t.one(int_cmd(10 + index), n - 2, true).await;
        index += 1;
        t.disconnect(leader1 % n);
        t.disconnect((leader1 + 3) % n);
        t.disconnect((leader1 + 4) % n);
        t.start1((leader1 + 1) % n);
        t.start1((leader1 + 2) % n);
        t.connect((leader1 + 1) % n);
        t.connect((leader1 + 2) % n);
        t.sleep(RAFT_ELECTION_TIMEOUT_MS).await;
        t.start1((leader1 + 3) % n);
        t.connect((leader1 + 3) % n);
        t.one(int_cmd(10 + index), n - 2, true).await;
        index += 1;
        t.connect((leader1 + 4) % n);
        t.connect(leader1 % n);
    }
    t.one(int_cmd(1000), n, true).await;
    t.end();
}

pub async fn persist3_2c(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2C): partitioned leader and one follower crash, leader restarts");
    t.one(int_cmd(101), 3, true).await;
    let leader = t.check_one_leader().await;
    t.disconnect((leader + 2) % n);
    t.one(int_cmd(102), 2, true).await;
    t.crash1(leader % n);
    t.crash1((leader + 1) % n);
    t.connect((leader + 2) % n);
    t.start1(leader % n);
    t.connect(leader % n);
    t.one(int_cmd(103), 2, true).await;
    t.start1((leader + 1) % n);
    t.connect((leader + 1) % n);
    t.one(int_cmd(104), n, true).await;
    t.end();
}

/// The lab's pause between rounds of Figure 8: usually short, sometimes half an election timeout.
fn figure8_pause(t: &RaftTester) -> u64 {
    if t.rand(1000) < 100 {
        t.rand(RAFT_ELECTION_TIMEOUT_MS / 2)
    } else {
        t.rand(13)
    }
}

pub async fn figure8_2c(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2C): Figure 8");
    t.one(rand_cmd(&t), 1, true).await;
    let mut nup = n;
    for _ in 0..1000 {
        let mut leader = None;
        for i in 0..n {
            if t.is_alive(i) && t.start(i, rand_cmd(&t)).is_some() {
                leader = Some(i);
            }
        }
        t.sleep(figure8_pause(&t)).await;
        if let Some(l) = leader {
            t.crash1(l);
            nup -= 1;
        }
        if nup < 3 {
            let s = t.rand(n as u64) as usize;
            if !t.is_alive(s) {
                t.start1(s);
                t.connect(s);
                nup += 1;
            }
        }
    }
    revive_all(&t);
    t.one(rand_cmd(&t), n, true).await;
    t.end();
}

pub async fn unreliable_agree_2c(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2C): unreliable agreement");
    let mut handles = Vec::new();
    for iters in 1..50u64 {
        for j in 0..4u64 {
            let t2 = t.clone();
            handles.push(t.sim.spawn(async move {
                t2.one(int_cmd(100 * iters + j), 1, true).await;
            }));
        }
        t.one(int_cmd(iters), 1, true).await;
    }
    t.set_unreliable(false);
    for h in handles {
        h.await;
    }
    t.one(int_cmd(100), n, true).await;
    t.end();
}

pub async fn figure8_unreliable_2c(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2C): Figure 8 (unreliable)");
    t.one(int_cmd(t.rand(10_000)), 1, true).await;
    let mut nup = n;
    for iters in 0..1000 {
        if iters == 200 {
            t.set_long_reordering(true);
        }
        let mut leader = None;
        for i in 0..n {
            if t.start(i, int_cmd(t.rand(10_000))).is_some() && t.is_connected(i) {
                leader = Some(i);
            }
        }
        t.sleep(figure8_pause(&t)).await;
        if let Some(l) = leader {
            if t.rand(1000) < RAFT_ELECTION_TIMEOUT_MS / 2 {
                t.disconnect(l);
                nup -= 1;
            }
        }
        if nup < 3 {
            let s = t.rand(n as u64) as usize;
            if !t.is_connected(s) {
                t.connect(s);
                nup += 1;
            }
        }
    }
    for i in 0..n {
        if !t.is_connected(i) {
            t.connect(i);
        }
    }
    t.one(int_cmd(t.rand(10_000)), n, true).await;
    t.end();
}

/// One churn client: proposes to every live server and records the values it saw committed.
async fn churn_client(t: RaftTester, me: u64, stop: Rc<Cell<bool>>) -> Vec<Bytes> {
    let mut values = Vec::new();
    while !stop.get() {
        let x = rand_cmd(&t);
        let mut index = None;
        for i in 0..t.n {
            if t.is_alive(i) {
                if let Some((index1, _)) = t.start(i, x.clone()) {
                    index = Some(index1);
                }
            }
        }
        match index {
            Some(index) => {
                // Maybe leader will commit our value, maybe not.
                for delay in [10, 20, 50, 100, 200] {
                    let (nd, cmd) = t.n_committed(index);
                    if nd > 0 {
                        if cmd.as_ref() == Some(&x) {
                            values.push(x.clone());
                        }
                        break;
                    }
                    t.sleep(delay).await;
                }
            }
            None => t.sleep(79 + me * 17).await,
        }
    }
    values
}

async fn churn(t: RaftTester, unreliable: bool) {
    let n = t.n;
    t.begin(if unreliable { "Test (2C): unreliable churn" } else { "Test (2C): churn" });
    let stop = Rc::new(Cell::new(false));
    let clients: Vec<_> =
        (0..3).map(|me| t.sim.spawn(churn_client(t.clone(), me, stop.clone()))).collect();
    for _ in 0..20 {
        if t.rand(1000) < 200 {
            let i = t.rand(n as u64) as usize;
            t.disconnect(i);
        }
        if t.rand(1000) < 500 {
            let i = t.rand(n as u64) as usize;
            if !t.is_alive(i) {
                t.start1(i);
            }
            t.connect(i);
        }
        if t.rand(1000) < 200 {
            let i = t.rand(n as u64) as usize;
            if t.is_alive(i) {
                t.crash1(i);
            }
        }
        // Long enough for a leader to arise at times, short enough to keep churning.
        t.sleep(RAFT_ELECTION_TIMEOUT_MS * 7 / 10).await;
    }
    t.sleep(RAFT_ELECTION_TIMEOUT_MS).await;
    t.set_unreliable(false);
    revive_all(&t);
    stop.set(true);
    let mut values = Vec::new();
    for c in clients {
        values.extend(c.await);
    }
    t.sleep(RAFT_ELECTION_TIMEOUT_MS).await;
    let last_index = t.one(rand_cmd(&t), n, true).await;
    let mut really = Vec::new();
    for index in 1..=last_index {
        really.push(t.wait(index, n, None).await.expect("no term bound"));
    }
    for v in &values {
        assert!(really.contains(v), "didn't find a value {v:?} a client saw committed");
    }
    t.end();
}

pub async fn reliable_churn_2c(t: RaftTester) {
    churn(t, false).await;
}

pub async fn unreliable_churn_2c(t: RaftTester) {
    churn(t, true).await;
}
