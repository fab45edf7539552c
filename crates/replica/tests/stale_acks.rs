//! An acknowledgement must not outlive what it acknowledges.
//!
//! A follower accepts entries from a leader while an earlier write is on its disk, so the
//! acceptance waits behind it. In the same round of input, a leader of a later term overwrites
//! the same entries. Both Readies go to disk in one write, and once it is durable the pipeline
//! would send both acknowledgements, the first one promising entries that the write itself
//! replaced.
//!
//! Found by the simulator's durability check on swarm seeds 4161 and 445522375 ("acknowledges
//! entries through N in AppendResponse before they are durable"), once its reliable network
//! took time. Fixed by `RawNode::promise_holds`, which the pipeline asks before sending each
//! persisted message: an acknowledgement made in an earlier term is dropped.

use bytes::Bytes;
use kvraft_raft::{
    AppendResult, Config, Entry, LogIndex, MemStorage, Message, MessageBody, NodeId,
    RecoveredState, Storage, Term,
};
use kvraft_replica::{Output, Replica, ReplicaConfig, Write};

fn entry(index: u64, term: u64) -> Entry {
    Entry { term: Term(term), index: LogIndex(index), kind: Default::default(), data: Bytes::new() }
}

fn append(from: u64, term: u64, prev: (u64, u64), entries: Vec<Entry>) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(2),
        term: Term(term),
        body: MessageBody::Append {
            prev_log_index: LogIndex(prev.0),
            prev_log_term: Term(prev.1),
            entries,
            leader_commit: LogIndex(0),
        },
    }
}

/// The follower's outputs: writes are held (the disk is slow), sent messages collected.
fn poll_all(r: &mut Replica, writes: &mut Vec<Write>, sent: &mut Vec<Message>) {
    while let Some(output) = r.poll() {
        match output {
            Output::Write(write) => writes.push(write),
            Output::Send(msgs) => sent.extend(msgs),
            Output::Reply(..) | Output::Admin(..) => {}
        }
    }
}

#[test]
fn an_acknowledgement_never_promises_entries_its_own_write_replaced() {
    let config = Config::new(NodeId(2), vec![NodeId(1), NodeId(2), NodeId(3)]);
    let mut r = Replica::new(config, RecoveredState::default(), ReplicaConfig::default()).unwrap();
    let mut disk = MemStorage::new();
    let (mut writes, mut sent) = (Vec::new(), Vec::new());
    let complete = |r: &mut Replica, write: Write, disk: &mut MemStorage| {
        for batch in write.persist_batches() {
            disk.persist(batch).unwrap();
        }
        r.on_written(write.through, disk.raft_state_size());
    };

    // Leader 1 of term 1 sends entry 1: its write goes to disk and stays in flight.
    r.step(append(1, 1, (0, 0), vec![entry(1, 1)])).unwrap();
    poll_all(&mut r, &mut writes, &mut sent);
    let first = writes.pop().expect("the first write");
    // Then entries 2 and 3 of term 1: accepted, the acknowledgement waits behind the write.
    r.step(append(1, 1, (1, 1), vec![entry(2, 1), entry(3, 1)])).unwrap();
    // Leader 3 of term 3 overwrites entry 2 (and so 3) in the same round of input.
    r.step(append(3, 3, (1, 1), vec![entry(2, 3)])).unwrap();
    poll_all(&mut r, &mut writes, &mut sent);
    let second = writes.pop().expect("both Readies of the round in one write");
    assert!(writes.is_empty());

    complete(&mut r, first, &mut disk);
    poll_all(&mut r, &mut writes, &mut sent);
    complete(&mut r, second, &mut disk);
    poll_all(&mut r, &mut writes, &mut sent);

    // Every acceptance sent to leader 1 promises that the follower durably holds leader 1's
    // entries (all of term 1) through its match index.
    let durable = disk.recover().unwrap();
    for m in sent.iter().filter(|m| m.to == NodeId(1)) {
        let MessageBody::AppendResponse(AppendResult::Accepted { match_index }) = m.body else {
            continue;
        };
        let held = durable.entries.iter().find(|e| e.index == match_index).map(|e| e.term);
        assert_eq!(
            held,
            Some(Term(1)),
            "the follower acknowledges leader 1's entries through {match_index}, but its disk \
             holds {:?}",
            durable.entries.iter().map(|e| (e.index.0, e.term.0)).collect::<Vec<_>>()
        );
    }
}
