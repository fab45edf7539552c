//! The driver may take several Readies before it applies the first (the disk is slow): the
//! snapshot policy must snapshot what the state machine holds, not what Raft handed out.

use kvraft_kv::{ClientId, ClientRequest, KvStateMachine, Op, Sequence};
use kvraft_raft::{Config, LogIndex, NodeId, Ready, RecoveredState};
use kvraft_replica::{Replica, ReplicaConfig};

fn single_node_leader() -> Replica {
    let config = Config::new(NodeId(1), vec![NodeId(1)]);
    let replica_config =
        ReplicaConfig { max_raft_state_bytes: Some(1), ..ReplicaConfig::default() };
    let mut r = Replica::new(config, RecoveredState::default(), replica_config).unwrap();
    for _ in 0..1000 {
        if r.raft().is_leader() {
            break;
        }
        r.tick();
        while r.has_ready() {
            let rd = r.ready();
            r.on_persisted(rd.number);
        }
    }
    assert!(r.raft().is_leader());
    r
}

fn put(r: &mut Replica, seq: u64) {
    let op = Op::Put { key: format!("k{seq}"), value: "v".into() };
    r.submit(seq, ClientRequest { client: ClientId(7), seq: Sequence(seq), op });
}

/// Takes Readies, marking each durable, until one hands out committed entries; returns it
/// unapplied.
fn ready_with_committed(r: &mut Replica) -> Ready {
    loop {
        let rd = r.ready();
        r.on_persisted(rd.number);
        if !rd.committed_entries.is_empty() {
            return rd;
        }
    }
}

#[test]
fn snapshot_covers_only_what_the_state_machine_applied() {
    let mut r = single_node_leader();
    put(&mut r, 1);
    let mut first = ready_with_committed(&mut r);
    put(&mut r, 2);
    let mut second = ready_with_committed(&mut r);
    let first_index = first.committed_entries.last().unwrap().index;
    assert!(second.committed_entries.first().unwrap().index > first_index);

    // Apply only the first: the tiny maxraftstate makes the replica snapshot now.
    r.apply(&mut first, 1000);
    let snapshot = r.ready().snapshot.expect("the replica took a snapshot");
    assert_eq!(snapshot.meta.index, first_index, "snapshot claims entries not yet applied");
    let sm = KvStateMachine::decode_snapshot(&snapshot.data, Default::default()).unwrap();
    assert_eq!(LogIndex(sm.applied()), first_index);
    assert_eq!(sm.get("k1"), "v");
    assert_eq!(sm.get("k2"), "");

    r.apply(&mut second, 1000);
    assert_eq!(r.state_machine().get("k2"), "v");
}
