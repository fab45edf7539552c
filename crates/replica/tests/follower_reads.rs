//! Follower reads through the replica: a follower serves a Get only once the leader confirmed
//! a read index and the follower's own state machine has applied it; every way the read can
//! go wrong ends in `WrongLeader` (the client retries), never in a stale value or a hang.

use kvraft_kv::{ClientId, ClientRequest, KvError, Op, Outcome, Reply, Sequence};
use kvraft_raft::{Config, Message, MessageBody, NodeId, RecoveredState};
use kvraft_replica::{Output, Replica, ReplicaConfig, RequestId};

/// Three replicas with instant disks and a network that delivers at once, except what `drop`
/// says.
struct Cluster {
    replicas: Vec<Replica>,
    replies: Vec<(RequestId, Reply)>,
    drop: Box<dyn Fn(&Message) -> bool>,
}

const ELECTION_TIMEOUT: u64 = 30;

impl Cluster {
    fn new(follower_reads: bool, lease_reads: bool) -> Cluster {
        let voters: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let replicas = voters
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, voters.clone());
                config.seed = 1000 + id.0;
                config.lease_reads = lease_reads;
                let replica_config = ReplicaConfig { follower_reads, ..ReplicaConfig::default() };
                Replica::new(config, RecoveredState::default(), replica_config).unwrap()
            })
            .collect();
        let mut c = Cluster { replicas, replies: Vec::new(), drop: Box::new(|_| false) };
        for _ in 0..200 {
            if c.leader().is_some() {
                break;
            }
            c.tick();
        }
        let leader = c.leader().expect("a leader within 200 ticks");
        // Let the new leader commit its no-op and tell everyone.
        for _ in 0..20 {
            c.tick();
        }
        assert_eq!(c.leader(), Some(leader));
        c
    }

    fn leader(&self) -> Option<usize> {
        self.replicas.iter().position(|r| r.raft().is_leader())
    }

    fn follower(&self) -> usize {
        let leader = self.leader().expect("a leader");
        (0..3).find(|&i| i != leader).unwrap()
    }

    fn tick(&mut self) {
        for r in &mut self.replicas {
            r.tick();
        }
        self.pump();
    }

    /// Runs every replica's outputs (writes are durable at once) and delivers every message
    /// until nothing moves.
    fn pump(&mut self) {
        loop {
            let mut msgs = Vec::new();
            for r in &mut self.replicas {
                while let Some(output) = r.poll() {
                    match output {
                        Output::Send(mut sent) => msgs.append(&mut sent),
                        Output::Write(write) => r.on_written(write.through, 0),
                        Output::Reply(id, reply) => self.replies.push((id, reply)),
                        Output::Admin(..) => {}
                    }
                }
                r.check_invariants();
            }
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                if !(self.drop)(&m) {
                    let to = m.to.0 as usize - 1;
                    self.replicas[to].step(m).unwrap();
                }
            }
        }
    }

    fn submit(&mut self, server: usize, id: RequestId, op: Op) {
        let req = ClientRequest { client: ClientId(7), seq: Sequence(id), op };
        self.replicas[server].submit(id, req);
        self.pump();
    }

    fn reply(&mut self, id: RequestId) -> Option<Reply> {
        let i = self.replies.iter().position(|(r, _)| *r == id)?;
        Some(self.replies.remove(i).1)
    }

    /// Cuts `follower` off from the leader's entries (heartbeats and read answers still
    /// reach it), so that a read index the leader confirms lies beyond what it has applied.
    fn starve_of_entries(&mut self, follower: usize) {
        let to = NodeId(follower as u64 + 1);
        self.drop = Box::new(move |m| m.to == to && matches!(m.body, MessageBody::Append { .. }));
    }

    fn put(&mut self, id: RequestId, value: &str) {
        let leader = self.leader().unwrap();
        self.submit(leader, id, Op::Put { key: "k".into(), value: value.into() });
        assert_eq!(self.reply(id), Some(Ok(Outcome::Done)));
    }
}

fn node(server: usize) -> NodeId {
    NodeId(server as u64 + 1)
}

fn get() -> Op {
    Op::Get { key: "k".into() }
}

fn value(v: &str) -> Option<Reply> {
    Some(Ok(Outcome::Value(v.into())))
}

#[test]
fn a_follower_refuses_gets_unless_follower_reads_are_on() {
    let mut c = Cluster::new(false, false);
    c.put(1, "v1");
    let (follower, leader) = (c.follower(), c.leader().unwrap());
    c.submit(follower, 100, get());
    assert_eq!(c.reply(100), Some(Err(KvError::WrongLeader { leader: Some(node(leader)) })));
}

#[test]
fn a_follower_serves_a_get_the_leader_confirmed() {
    let mut c = Cluster::new(true, false);
    c.put(1, "v1");
    let follower = c.follower();
    c.submit(follower, 100, get());
    assert_eq!(c.reply(100), value("v1"));
    // Writes still go to the leader.
    c.submit(follower, 2, Op::Put { key: "k".into(), value: "v2".into() });
    assert!(matches!(c.reply(2), Some(Err(KvError::WrongLeader { .. }))));
}

#[test]
fn a_follower_waits_for_its_own_state_machine_to_reach_the_read_index() {
    let mut c = Cluster::new(true, false);
    c.put(1, "v1");
    let follower = c.follower();
    c.starve_of_entries(follower);
    c.put(2, "v2");
    assert_eq!(c.replicas[follower].state_machine().get("k"), "v1");
    c.submit(follower, 100, get());
    assert_eq!(c.reply(100), None, "served before applying the read index (stale v1)");
    // Once the entries arrive, the read is served with the new value.
    c.drop = Box::new(|_| false);
    for _ in 0..20 {
        c.tick();
    }
    assert_eq!(c.reply(100), value("v2"));
}

#[test]
fn a_confirmed_read_the_follower_cannot_apply_in_time_fails() {
    let mut c = Cluster::new(true, false);
    c.put(1, "v1");
    let follower = c.follower();
    c.starve_of_entries(follower);
    c.put(2, "v2");
    c.submit(follower, 100, get());
    for _ in 0..2 * ELECTION_TIMEOUT - 1 {
        c.tick();
    }
    assert_eq!(c.reply(100), None);
    c.tick();
    assert!(matches!(c.reply(100), Some(Err(KvError::WrongLeader { .. }))));
}

#[test]
fn a_forwarded_read_without_an_answer_fails_after_an_election_timeout() {
    let mut c = Cluster::new(true, false);
    c.put(1, "v1");
    let follower = c.follower();
    let leader = c.leader().unwrap();
    // The read answers are lost; heartbeats still keep the follower following.
    c.drop = Box::new(|m| matches!(m.body, MessageBody::ReadIndexResponse { .. }));
    c.submit(follower, 100, get());
    for _ in 0..ELECTION_TIMEOUT - 1 {
        c.tick();
    }
    assert_eq!(c.reply(100), None);
    c.tick();
    assert_eq!(c.reply(100), Some(Err(KvError::WrongLeader { leader: Some(node(leader)) })));
    // Nothing else went wrong: the next read is served.
    c.drop = Box::new(|_| false);
    c.submit(follower, 101, get());
    assert_eq!(c.reply(101), value("v1"));
}

#[test]
fn lease_reads_are_served_without_a_round() {
    let mut c = Cluster::new(true, true);
    c.put(1, "v1");
    let leader = c.leader().unwrap();
    assert!(c.replicas[leader].raft().in_read_lease());
    // With heartbeats lost, a lease read still succeeds, and a follower's forwarded read too.
    c.drop = Box::new(|m| matches!(m.body, MessageBody::Heartbeat { .. }));
    c.submit(leader, 100, get());
    assert_eq!(c.reply(100), value("v1"));
    let follower = c.follower();
    c.submit(follower, 101, get());
    assert_eq!(c.reply(101), value("v1"));
}
