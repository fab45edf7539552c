//! Raft lab part 2D: snapshots and InstallSnapshot.

use bytes::Bytes;

use crate::raft_tester::{int_cmd, RaftTester, SNAPSHOT_INTERVAL};

/// The lab's MAXLOGSIZE: the Raft state must stay below this with snapshots every 10 entries.
const MAX_LOG_SIZE: usize = 2000;

fn rand_cmd(t: &RaftTester) -> Bytes {
    int_cmd(t.rand(1 << 62))
}

async fn snapcommon(t: RaftTester, name: &str, disconnect: bool, crash: bool) {
    let n = t.n;
    t.begin(name);
    t.one(rand_cmd(&t), n, true).await;
    let mut leader1 = t.check_one_leader().await;
    for i in 0..30 {
        let (mut victim, mut sender) = ((leader1 + 1) % n, leader1);
        if i % 3 == 1 {
            sender = (leader1 + 1) % n;
            victim = leader1;
        }
        if disconnect {
            t.disconnect(victim);
            t.one(rand_cmd(&t), n - 1, true).await;
        }
        if crash {
            t.crash1(victim);
            t.one(rand_cmd(&t), n - 1, true).await;
        }
        // Perhaps send enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + t.rand(SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let _ = t.start(sender, rand_cmd(&t));
        }
        // Let the appliers catch up with the Start()s.
        if !disconnect && !crash {
            // Everyone must catch up, without InstallSnapshot.
            t.one(rand_cmd(&t), n, true).await;
        } else {
            t.one(rand_cmd(&t), n - 1, true).await;
        }
        let size = t.log_size();
        assert!(size < MAX_LOG_SIZE, "log size too large: {size} bytes");
        if disconnect {
            // Reconnect a follower, who may be behind and need to receive a snapshot.
            t.connect(victim);
            t.one(rand_cmd(&t), n, true).await;
            leader1 = t.check_one_leader().await;
        }
        if crash {
            t.start1(victim);
            t.connect(victim);
            t.one(rand_cmd(&t), n, true).await;
            leader1 = t.check_one_leader().await;
        }
    }
    t.end();
}

pub async fn snapshot_basic_2d(t: RaftTester) {
    snapcommon(t, "Test (2D): snapshots basic", false, false).await;
}

pub async fn snapshot_install_2d(t: RaftTester) {
    snapcommon(t, "Test (2D): install snapshots (disconnect)", true, false).await;
}

pub async fn snapshot_install_unreliable_2d(t: RaftTester) {
    snapcommon(t, "Test (2D): install snapshots (disconnect+unreliable)", true, false).await;
}

pub async fn snapshot_install_crash_2d(t: RaftTester) {
    snapcommon(t, "Test (2D): install snapshots (crash)", false, true).await;
}

pub async fn snapshot_install_uncrash_2d(t: RaftTester) {
    snapcommon(t, "Test (2D): install snapshots (unreliable+crash)", false, true).await;
}

fn crash_and_restart_all(t: &RaftTester) {
    for i in 0..t.n {
        t.crash1(i);
    }
    for i in 0..t.n {
        t.start1(i);
        t.connect(i);
    }
}

pub async fn snapshot_all_crash_2d(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2D): crash and restart all servers");
    t.one(rand_cmd(&t), n, true).await;
    for _ in 0..5 {
        // Perhaps enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + t.rand(SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            t.one(rand_cmd(&t), n, true).await;
        }
        let index1 = t.one(rand_cmd(&t), n, true).await;
        crash_and_restart_all(&t);
        let index2 = t.one(rand_cmd(&t), n, true).await;
        assert!(index2 > index1, "index decreased from {index1} to {index2}");
    }
    t.end();
}

pub async fn snapshot_init_2d(t: RaftTester) {
    let n = t.n;
    t.begin("Test (2D): snapshot initialization after crash");
    t.one(rand_cmd(&t), n, true).await;
    // Enough ops to make a snapshot.
    for _ in 0..SNAPSHOT_INTERVAL + 1 {
        t.one(rand_cmd(&t), n, true).await;
    }
    crash_and_restart_all(&t);
    // A single op, to get something written back to persistent storage.
    t.one(rand_cmd(&t), n, true).await;
    crash_and_restart_all(&t);
    // Do another op to trigger potential bug.
    t.one(rand_cmd(&t), n, true).await;
    t.end();
}
