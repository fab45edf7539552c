//! Raft lab parts 2A (leader election) and 2B (log replication).

use bytes::Bytes;

use crate::raft_tester::{int_cmd, RaftTester, RAFT_ELECTION_TIMEOUT_MS};

pub async fn initial_election_2a(t: RaftTester) {
    t.begin("Test (2A): initial election");
    t.check_one_leader().await;
    // Let followers learn the leader's term.
    t.sleep(50).await;
    let term1 = t.check_terms();
    assert!(term1 >= 1, "term is {term1}, but should be at least 1");
    // With no failures, the leader and term must stay put.
    t.sleep(2 * RAFT_ELECTION_TIMEOUT_MS).await;
    let term2 = t.check_terms();
    if term1 != term2 {
        println!("warning: term changed even though there were no failures");
    }
    t.check_one_leader().await;
    t.end();
}

pub async fn re_election_2a(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2A): election after network failure");
    let leader1 = t.check_one_leader().await;
    // If the leader disconnects, a new one is elected.
    t.disconnect(leader1);
    t.check_one_leader().await;
    // The old leader rejoining must not disturb the new one.
    t.connect(leader1);
    let leader2 = t.check_one_leader().await;
    // Without a quorum, no leader.
    t.disconnect(leader2);
    t.disconnect((leader2 + 1) % n);
    t.sleep(2 * RAFT_ELECTION_TIMEOUT_MS).await;
    t.check_no_leader();
    // With a quorum again, a leader.
    t.connect((leader2 + 1) % n);
    t.check_one_leader().await;
    // Rejoining the last node keeps a leader.
    t.connect(leader2);
    t.check_one_leader().await;
    t.end();
}

pub async fn many_elections_2a(t: RaftTester) {
    let n = t.n as u64;
    t.begin("Test (2A): multiple elections");
    t.check_one_leader().await;
    for _ in 1..10 {
        let i1 = t.rand(n) as usize;
        let i2 = t.rand(n) as usize;
        let i3 = t.rand(n) as usize;
        t.disconnect(i1);
        t.disconnect(i2);
        t.disconnect(i3);
        // Either the current leader is still alive, or the remaining four elect one.
        t.check_one_leader().await;
        t.connect(i1);
        t.connect(i2);
        t.connect(i3);
    }
    t.check_one_leader().await;
    t.end();
}

pub async fn basic_agree_2b(t: RaftTester) {
    t.begin("Test (2B): basic agreement");
    for index in 1..=3u64 {
        let (nd, _) = t.n_committed(index);
        assert_eq!(nd, 0, "some have committed before Start()");
        let xindex = t.one(int_cmd(index * 100), t.n, false).await;
        assert_eq!(xindex, index, "got index {xindex} but expected {index}");
    }
    t.end();
}

/// A random printable string, as the lab's `randstring`.
pub fn rand_string(t: &RaftTester, len: usize) -> Bytes {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..len).map(|_| ALPHABET[t.rand(ALPHABET.len() as u64) as usize]).collect::<Vec<u8>>().into()
}

pub async fn rpc_bytes_2b(t: RaftTester) {
    t.begin("Test (2B): RPC byte count");
    t.one(int_cmd(99), t.n, false).await;
    let bytes0 = t.bytes_total();
    let mut sent = 0u64;
    for index in 2..12u64 {
        let cmd = rand_string(&t, 5000);
        sent += cmd.len() as u64;
        let xindex = t.one(cmd, t.n, false).await;
        assert_eq!(xindex, index, "got index {xindex} but expected {index}");
    }
    let got = t.bytes_total() - bytes0;
    let expected = t.n as u64 * sent;
    assert!(got <= expected + 50_000, "too many RPC bytes; got {got}, expected {expected}");
    t.end();
}

pub async fn follower_failure_2b(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2B): test progressive failure of followers");
    t.one(int_cmd(101), n, false).await;
    // One follower down: the rest still agree.
    let leader1 = t.check_one_leader().await;
    t.disconnect((leader1 + 1) % n);
    t.one(int_cmd(102), n - 1, false).await;
    t.sleep(RAFT_ELECTION_TIMEOUT_MS).await;
    t.one(int_cmd(103), n - 1, false).await;
    // Both followers down: the leader accepts but cannot commit.
    let leader2 = t.check_one_leader().await;
    t.disconnect((leader2 + 1) % n);
    t.disconnect((leader2 + 2) % n);
    let (index, _) = t.start(leader2, int_cmd(104)).expect("leader rejected Start()");
    assert_eq!(index, 4, "expected index 4, got {index}");
    t.sleep(2 * RAFT_ELECTION_TIMEOUT_MS).await;
    let (nd, _) = t.n_committed(index);
    assert_eq!(nd, 0, "{nd} committed but no majority");
    t.end();
}

pub async fn leader_failure_2b(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2B): test failure of leaders");
    t.one(int_cmd(101), n, false).await;
    let leader1 = t.check_one_leader().await;
    t.disconnect(leader1);
    // The remaining followers elect a new leader.
    t.one(int_cmd(102), n - 1, false).await;
    t.sleep(RAFT_ELECTION_TIMEOUT_MS).await;
    t.one(int_cmd(103), n - 1, false).await;
    // Disconnect the new leader too: nobody can commit.
    let leader2 = t.check_one_leader().await;
    t.disconnect(leader2);
    for i in 0..n {
        let _ = t.start(i, int_cmd(104));
    }
    t.sleep(2 * RAFT_ELECTION_TIMEOUT_MS).await;
    let (nd, _) = t.n_committed(4);
    assert_eq!(nd, 0, "{nd} committed but no majority");
    t.end();
}

pub async fn fail_agree_2b(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2B): agreement after follower reconnects");
    t.one(int_cmd(101), n, false).await;
    let leader = t.check_one_leader().await;
    t.disconnect((leader + 1) % n);
    // The leader and the remaining follower still agree.
    t.one(int_cmd(102), n - 1, false).await;
    t.one(int_cmd(103), n - 1, false).await;
    t.sleep(RAFT_ELECTION_TIMEOUT_MS).await;
    t.one(int_cmd(104), n - 1, false).await;
    t.one(int_cmd(105), n - 1, false).await;
    // The follower comes back and catches up.
    t.connect((leader + 1) % n);
    t.one(int_cmd(106), n, true).await;
    t.sleep(RAFT_ELECTION_TIMEOUT_MS).await;
    t.one(int_cmd(107), n, true).await;
    t.end();
}

pub async fn fail_no_agree_2b(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2B): no agreement if too many followers disconnect");
    t.one(int_cmd(10), n, false).await;
    // Three of five followers gone.
    let leader = t.check_one_leader().await;
    for k in 1..=3 {
        t.disconnect((leader + k) % n);
    }
    let (index, _) = t.start(leader, int_cmd(20)).expect("leader rejected Start()");
    assert_eq!(index, 2, "expected index 2, got {index}");
    t.sleep(2 * RAFT_ELECTION_TIMEOUT_MS).await;
    let (nd, _) = t.n_committed(index);
    assert_eq!(nd, 0, "{nd} committed but no majority");
    // Repair.
    for k in 1..=3 {
        t.connect((leader + k) % n);
    }
    // The disconnected majority may have chosen a leader among themselves, forgetting index 2.
    let leader2 = t.check_one_leader().await;
    let (index2, _) = t.start(leader2, int_cmd(30)).expect("leader2 rejected Start()");
    assert!((2..=3).contains(&index2), "unexpected index {index2}");
    t.one(int_cmd(1000), n, true).await;
    t.end();
}

pub async fn concurrent_starts_2b(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2B): concurrent Start()s");
    let mut success = false;
    'attempts: for attempt in 0..5 {
        if attempt > 0 {
            // Give the cluster a chance to settle.
            t.sleep(3000).await;
        }
        let leader = t.check_one_leader().await;
        let Some((_, term)) = t.start(leader, int_cmd(1)) else { continue };
        let handles: Vec<_> = (0..5u64)
            .map(|i| {
                let t = t.clone();
                t.sim.clone().spawn(async move {
                    match t.start(leader, int_cmd(100 + i)) {
                        Some((index, term1)) if term1 == term => Some(index),
                        _ => None,
                    }
                })
            })
            .collect();
        let mut indices = Vec::new();
        for h in handles {
            if let Some(i) = h.await {
                indices.push(i);
            }
        }
        for j in 0..n {
            if let Some((tj, _)) = t.get_state(j) {
                if tj != term {
                    // Term changed: cannot expect low RPC counts.
                    continue 'attempts;
                }
            }
        }
        let mut cmds = Vec::new();
        for index in indices {
            match t.wait(index, n, Some(term)).await {
                Some(cmd) => cmds.push(cmd),
                // Peers have moved on to later terms, so we cannot expect all Start()s to succeed.
                None => continue 'attempts,
            }
        }
        for i in 0..5u64 {
            assert!(cmds.contains(&int_cmd(100 + i)), "cmd {} missing in {cmds:?}", 100 + i);
        }
        success = true;
        break;
    }
    assert!(success, "term changed too often");
    t.end();
}

pub async fn rejoin_2b(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2B): rejoin of partitioned leader");
    t.one(int_cmd(101), n, true).await;
    // The leader's network fails; it keeps accepting commands it cannot commit.
    let leader1 = t.check_one_leader().await;
    t.disconnect(leader1);
    let _ = t.start(leader1, int_cmd(102));
    let _ = t.start(leader1, int_cmd(103));
    let _ = t.start(leader1, int_cmd(104));
    // The new leader commits, also at index 2.
    t.one(int_cmd(103), 2, true).await;
    let leader2 = t.check_one_leader().await;
    t.disconnect(leader2);
    // The old leader comes back and must discard its stale entries.
    t.connect(leader1);
    t.one(int_cmd(104), 2, true).await;
    t.connect(leader2);
    t.one(int_cmd(105), n, true).await;
    t.end();
}

fn rand_cmd(t: &RaftTester) -> Bytes {
    int_cmd(t.rand(1 << 62))
}

pub async fn backup_2b(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2B): leader backs up quickly over incorrect follower logs");
    t.one(rand_cmd(&t), n, true).await;
    // Put the leader and one follower in a partition.
    let leader1 = t.check_one_leader().await;
    for k in 2..=4 {
        t.disconnect((leader1 + k) % n);
    }
    // Lots of commands that will not commit.
    for _ in 0..50 {
        let _ = t.start(leader1, rand_cmd(&t));
    }
    t.sleep(RAFT_ELECTION_TIMEOUT_MS / 2).await;
    t.disconnect(leader1 % n);
    t.disconnect((leader1 + 1) % n);
    // Allow the other partition to recover and commit lots.
    for k in 2..=4 {
        t.connect((leader1 + k) % n);
    }
    for _ in 0..50 {
        t.one(rand_cmd(&t), 3, true).await;
    }
    // Now another partitioned leader and one follower.
    let leader2 = t.check_one_leader().await;
    let mut other = (leader1 + 2) % n;
    if leader2 == other {
        other = (leader2 + 1) % n;
    }
    t.disconnect(other);
    // Lots more commands that will not commit.
    for _ in 0..50 {
        let _ = t.start(leader2, rand_cmd(&t));
    }
    t.sleep(RAFT_ELECTION_TIMEOUT_MS / 2).await;
    // Bring the original leader back to life.
    for i in 0..n {
        t.disconnect(i);
    }
    t.connect(leader1 % n);
    t.connect((leader1 + 1) % n);
    t.connect(other);
    for _ in 0..50 {
        t.one(rand_cmd(&t), 3, true).await;
    }
    for i in 0..n {
        t.connect(i);
    }
    t.one(rand_cmd(&t), n, true).await;
    t.end();
}

fn total_rpcs(t: &RaftTester) -> u64 {
    (0..t.n).map(|j| t.rpc_count(j)).sum()
}

pub async fn count_2b(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2B): RPC counts aren't too high");
    t.check_one_leader().await;
    let total1 = total_rpcs(&t);
    assert!((1..=30).contains(&total1), "too many or few RPCs ({total1}) to elect initial leader");

    let mut success = false;
    let mut total2 = 0;
    'attempts: for attempt in 0..5 {
        if attempt > 0 {
            t.sleep(3000).await;
        }
        let leader = t.check_one_leader().await;
        let total1 = total_rpcs(&t);
        let iters = 10u64;
        let Some((starti, term)) = t.start(leader, int_cmd(1)) else { continue };
        let mut cmds = Vec::new();
        for i in 1..iters + 2 {
            let x = int_cmd(t.rand(1 << 31));
            cmds.push(x.clone());
            let Some((index1, term1)) = t.start(leader, x) else { continue 'attempts };
            if term1 != term {
                continue 'attempts;
            }
            assert_eq!(starti + i, index1, "Start() failed");
        }
        for i in 1..=iters {
            match t.wait(starti + i, n, Some(term)).await {
                None => continue 'attempts,
                Some(cmd) => assert_eq!(
                    cmd,
                    cmds[i as usize - 1],
                    "wrong value {cmd:?} committed for index {}",
                    starti + i
                ),
            }
        }
        total2 = 0;
        for j in 0..n {
            if let Some((tj, _)) = t.get_state(j) {
                if tj != term {
                    continue 'attempts;
                }
            }
            total2 += t.rpc_count(j);
        }
        assert!(
            total2 - total1 <= (iters + 1 + 3) * 3,
            "too many RPCs ({}) for {iters} entries",
            total2 - total1
        );
        success = true;
        break;
    }
    assert!(success, "term changed too often");
    t.sleep(RAFT_ELECTION_TIMEOUT_MS).await;
    let total3 = total_rpcs(&t);
    assert!(
        total3 - total2 <= 3 * 20,
        "too many RPCs ({}) for 1 second of idleness",
        total3 - total2
    );
    t.end();
}
