//! A slow disk: writes pile up behind the one being made durable, and some Readies hand out
//! committed entries that the state machine applies only once the writes before them are
//! durable. The snapshot policy must snapshot what the state machine holds, not what Raft
//! handed out.

use std::collections::BTreeMap;

use kvraft_kv::codec::decode_command;
use kvraft_kv::{ClientId, ClientRequest, Command, KvStateMachine, Op, Sequence};
use kvraft_raft::{Config, LogIndex, NodeId, RecoveredState};
use kvraft_replica::{Output, Replica, ReplicaConfig, Write};

/// Runs the replica's outputs; writes are held, not reported (the disk is slow).
fn poll_all(r: &mut Replica, held: &mut Vec<Write>) {
    while let Some(output) = r.poll() {
        match output {
            Output::Write(write) => held.push(write),
            Output::Send(_) | Output::Reply(..) | Output::Admin(..) => {}
        }
    }
    r.check_invariants();
}

fn single_node_leader(max_raft_state_bytes: Option<usize>) -> Replica {
    let config = Config::new(NodeId(1), vec![NodeId(1)]);
    let replica_config = ReplicaConfig { max_raft_state_bytes, ..ReplicaConfig::default() };
    let mut r = Replica::new(config, RecoveredState::default(), replica_config).unwrap();
    let mut held = Vec::new();
    for _ in 0..1000 {
        if r.raft().is_leader() {
            break;
        }
        r.tick();
        poll_all(&mut r, &mut held);
        for write in held.drain(..) {
            r.on_written(write.through, 0);
            poll_all(&mut r, &mut Vec::new());
        }
    }
    assert!(r.raft().is_leader());
    r
}

fn put(r: &mut Replica, seq: u64) {
    let op = Op::Put { key: format!("k{seq}"), value: "v".into() };
    r.submit(seq, ClientRequest { client: ClientId(7), seq: Sequence(seq), op });
}

/// Records the keys a write's entries set, and checks each snapshot it carries against them.
fn check_write(write: &Write, keys: &mut BTreeMap<LogIndex, String>) -> usize {
    let mut snapshots = 0;
    for batch in &write.batches {
        for entry in batch.entries.iter().filter(|e| !e.data.is_empty()) {
            let Command::Client(req) = decode_command(&entry.data).unwrap();
            keys.insert(entry.index, req.op.key().to_string());
        }
        let Some(snapshot) = &batch.snapshot else { continue };
        snapshots += 1;
        let sm = KvStateMachine::decode_snapshot(&snapshot.data, Default::default()).unwrap();
        assert_eq!(LogIndex(sm.applied()), snapshot.meta.index);
        for (index, key) in keys.iter() {
            let expected = if *index <= snapshot.meta.index { "v" } else { "" };
            assert_eq!(
                sm.get(key),
                expected,
                "{key} (index {index}) in a snapshot at {}",
                snapshot.meta.index
            );
        }
    }
    snapshots
}

#[test]
fn every_snapshot_covers_exactly_what_the_state_machine_applied() {
    let mut r = single_node_leader(Some(1));
    // Which key each log index wrote, as the writes carry them.
    let mut keys: BTreeMap<LogIndex, String> = BTreeMap::new();
    let mut snapshots = 0;
    let mut held: Vec<Write> = Vec::new();
    for seq in 1..=20 {
        put(&mut r, seq);
        poll_all(&mut r, &mut held);
        // The disk lags one write behind: every write but the newest becomes durable.
        while held.len() > 1 {
            let write = held.remove(0);
            snapshots += check_write(&write, &mut keys);
            r.on_written(write.through, 1000);
            poll_all(&mut r, &mut held);
        }
    }
    while !held.is_empty() {
        let write = held.remove(0);
        snapshots += check_write(&write, &mut keys);
        r.on_written(write.through, 1000);
        poll_all(&mut r, &mut held);
    }
    assert!(snapshots >= 3, "only {snapshots} snapshots taken");
    assert_eq!(r.state_machine().get("k20"), "v");
}

#[test]
fn writes_go_out_as_readies_come_and_readies_finish_in_order() {
    let mut r = single_node_leader(None);
    let mut held = Vec::new();
    put(&mut r, 1);
    poll_all(&mut r, &mut held);
    put(&mut r, 2);
    put(&mut r, 3);
    poll_all(&mut r, &mut held);
    // Each round of input hands out its own write, without waiting for the disk; proposals of
    // one round share one.
    assert_eq!(held.len(), 2);
    let entries: usize = held[1].batches.iter().map(|b| b.entries.len()).sum();
    assert_eq!(entries, 2);
    // Nothing is applied before its write is durable.
    assert_eq!(r.state_machine().get("k1"), "");
    r.on_written(held[0].through, 0);
    let mut replies = Vec::new();
    while let Some(output) = r.poll() {
        match output {
            Output::Write(write) => held.push(write),
            Output::Reply(id, _) => replies.push(id),
            Output::Send(_) | Output::Admin(..) => {}
        }
    }
    // Put 1 is committed now, but its entry is handed out in a Ready that waits behind the
    // second write.
    assert!(replies.is_empty());
    assert_eq!(r.state_machine().get("k1"), "");
    r.on_written(held[1].through, 0);
    poll_all(&mut r, &mut Vec::new());
    for key in ["k1", "k2", "k3"] {
        assert_eq!(r.state_machine().get(key), "v");
    }
}

#[test]
fn one_report_covers_every_earlier_write() {
    let mut r = single_node_leader(None);
    let mut held = Vec::new();
    for seq in 1..=3 {
        put(&mut r, seq);
        poll_all(&mut r, &mut held);
    }
    assert_eq!(held.len(), 3);
    // A group write: the storage made all three durable with one fsync and reports the last.
    r.on_written(held[2].through, 0);
    poll_all(&mut r, &mut Vec::new());
    for key in ["k1", "k2", "k3"] {
        assert_eq!(r.state_machine().get(key), "v");
    }
}

#[test]
#[should_panic(expected = "names no write in flight")]
fn reporting_a_write_that_was_not_handed_out_is_a_bug() {
    let mut r = single_node_leader(None);
    r.on_written(kvraft_raft::ReadyNumber(12345), 0);
}
