//! The KV lab tester (the lab's kvraft `config`): a cluster of replicas, clerks with their own
//! network ends, partitions, crash/restart, op counting, and the history every operation is
//! recorded into for the linearizability check.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use kvraft_client::{Answer, Clerk, NextStep};
use kvraft_kv::{ClientId, KvError, Op, Outcome, SessionLimits};
use kvraft_linearizability::{check_kv_with_stats, CheckResult, KvInput, Operation};
use kvraft_replica::{Replica, ReplicaConfig};

use crate::network::MS;
use crate::options::SimOptions;
use crate::sim::{Sim, Sleep};
use crate::world::{node_id, server_index, PeerFactory, World};

/// The lab's electionTimeout for the KV tests.
pub const ELECTION_TIMEOUT_MS: u64 = 1000;
/// Mean time a simulated server takes per request (see `Network::processing_delay_us`).
pub const KV_PROCESSING_DELAY_US: u64 = 5 * MS;
/// Search steps the linearizability check may take before it gives up ("unknown" fails).
pub const LINEARIZABILITY_STEP_BUDGET: u64 = 10_000_000;

/// A clerk with its own network ends. As the lab's `random_handles` does, the clerk gets the
/// servers in a shuffled order: `ends[i]` is the server behind the clerk's server `i`. It knows
/// each end's node id (as a real client knows its endpoints' addresses), so leader hints lead
/// it on. Servers that join later are added at the end (`KvTester::add_server_to_client`, or
/// when a leader hint names one it lacks, as the network client learns a hinted address).
#[derive(Debug)]
pub struct KvClient {
    endpoint: usize,
    ends: RefCell<Vec<usize>>,
    clerk: RefCell<Clerk>,
}

impl KvClient {
    /// The clerk's index of `server`.
    fn index_of(&self, server: usize) -> usize {
        self.ends.borrow().iter().position(|&s| s == server).expect("every server has an end")
    }

    /// The servers the clerk knows, in its order.
    pub fn servers(&self) -> Vec<usize> {
        self.ends.borrow().clone()
    }

    /// Adds `server` (node `server + 1`) to the clerk's servers if it lacks it; `from_hint`:
    /// learned from a leader hint rather than told.
    fn learn_server(&self, server: usize, from_hint: bool) {
        let mut ends = self.ends.borrow_mut();
        if ends.contains(&server) {
            return;
        }
        ends.push(server);
        let mut clerk = self.clerk.borrow_mut();
        let index = clerk.add_server(Some(node_id(server)), from_hint);
        debug_assert_eq!(index + 1, ends.len());
    }
}

/// The lab's end-of-test figures for KV tests: virtual seconds, peers, RPCs, ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvFigures {
    pub virtual_ms: u64,
    pub peers: usize,
    pub rpcs: u64,
    pub ops: u64,
}

#[derive(Debug, Clone)]
pub struct KvTester {
    pub sim: Sim,
    pub n: usize,
    pub maxraftstate: i64,
    ops: Rc<Cell<u64>>,
    history: Rc<RefCell<Vec<Operation>>>,
    begin: Rc<RefCell<(String, u64, u64, u64)>>,
    figures: Rc<RefCell<Option<KvFigures>>>,
}

impl KvTester {
    /// The lab's `make_config(n, unreliable, maxraftstate)`: all servers started and connected.
    pub fn new(
        seed: u64,
        options: &SimOptions,
        n: usize,
        unreliable: bool,
        maxraftstate: i64,
    ) -> KvTester {
        KvTester::with_follower_reads(seed, options, n, unreliable, maxraftstate, false)
    }

    /// `new`, with followers serving Gets (`ReplicaConfig::follower_reads`) if asked.
    pub fn with_follower_reads(
        seed: u64,
        options: &SimOptions,
        n: usize,
        unreliable: bool,
        maxraftstate: i64,
        follower_reads: bool,
    ) -> KvTester {
        let config = ReplicaConfig {
            max_raft_state_bytes: usize::try_from(maxraftstate).ok(),
            sessions: SessionLimits::default(),
            follower_reads,
            ..ReplicaConfig::default()
        };
        let make_peer: PeerFactory = Box::new(move |_server, raft_config, recovered| {
            Box::new(
                Replica::new(raft_config, recovered, config)
                    .expect("replica starts from its own storage"),
            )
        });
        let mut world = World::new(seed, n, make_peer, options.clone());
        world.net.processing_delay_us = KV_PROCESSING_DELAY_US;
        let sim = Sim::new(world, seed);
        let t = KvTester {
            sim,
            n,
            maxraftstate,
            ops: Rc::new(Cell::new(0)),
            history: Rc::new(RefCell::new(Vec::new())),
            begin: Rc::new(RefCell::new((String::new(), 0, 0, 0))),
            figures: Rc::new(RefCell::new(None)),
        };
        for i in 0..n {
            t.start_server(i);
        }
        t.connect_all();
        t.set_unreliable(unreliable);
        t
    }

    fn world(&self) -> std::cell::RefMut<'_, World> {
        self.sim.world_mut()
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.n).collect()
    }

    pub fn rand(&self, below: u64) -> u64 {
        self.world().rng.below(below)
    }

    pub fn sleep(&self, ms: u64) -> Sleep {
        self.sim.sleep(ms)
    }

    pub fn set_unreliable(&self, unreliable: bool) {
        self.world().net.reliable = !unreliable;
    }

    pub fn connect_all(&self) {
        self.world().net.connect_all();
    }

    /// Links within each group enabled, links across disabled. Client ends are untouched.
    pub fn partition(&self, p1: &[usize], p2: &[usize]) {
        let mut w = self.world();
        for (group, other) in [(p1, p2), (p2, p1)] {
            for &a in group {
                for &b in group {
                    w.net.set_link(a, b, true);
                }
                for &b in other {
                    w.net.set_link(a, b, false);
                }
            }
        }
    }

    /// Puts each server in one of two groups at random (either may be empty) and partitions.
    pub fn random_partition(&self) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..self.n {
            if self.rand(2) == 0 {
                a.push(i);
            } else {
                b.push(i);
            }
        }
        self.partition(&a, &b);
    }

    /// Kills server i (disconnected from all servers); its storage survives.
    pub fn shutdown_server(&self, i: usize) {
        self.world().crash(i);
    }

    /// Restarts server i from its storage; not connected to the other servers.
    pub fn start_server(&self, i: usize) {
        self.world().start(i);
    }

    /// A new clerk with an end to every server, in a shuffled order; those to the servers in
    /// `to` are connected.
    pub fn make_client(&self, to: &[usize]) -> KvClient {
        self.make_client_of(&self.all(), to)
    }

    /// A new clerk that knows `servers`, in a shuffled order; its ends to the servers in `to`
    /// are connected (its ends to servers added to the world later are enabled).
    pub fn make_client_of(&self, servers: &[usize], to: &[usize]) -> KvClient {
        let mut w = self.world();
        let endpoint = w.add_client(to);
        let id = ClientId(w.rng.next_u64());
        let mut ends: Vec<usize> = servers.to_vec();
        for i in (1..ends.len()).rev() {
            let j = w.rng.below(i as u64 + 1) as usize;
            ends.swap(i, j);
        }
        let nodes = ends.iter().map(|&s| Some(node_id(s))).collect();
        KvClient { endpoint, ends: RefCell::new(ends), clerk: RefCell::new(Clerk::new(id, nodes)) }
    }

    /// A new clerk that knows `servers` in this order (no shuffle); its ends to the servers in
    /// `to` are connected.
    pub fn make_client_in_order(&self, servers: &[usize], to: &[usize]) -> KvClient {
        let mut w = self.world();
        let endpoint = w.add_client(to);
        let id = ClientId(w.rng.next_u64());
        let ends = servers.to_vec();
        let nodes = ends.iter().map(|&s| Some(node_id(s))).collect();
        KvClient { endpoint, ends: RefCell::new(ends), clerk: RefCell::new(Clerk::new(id, nodes)) }
    }

    /// Tells the clerk of a server that joined the cluster (as a client is given a new
    /// member's address).
    pub fn add_server_to_client(&self, ck: &KvClient, server: usize) {
        ck.learn_server(server, false);
    }

    /// Sends the clerk's Gets first to `server` (its read server), not to the leader.
    pub fn read_from(&self, ck: &KvClient, server: usize) {
        ck.clerk.borrow_mut().read_from(Some(ck.index_of(server)));
    }

    pub fn connect_client(&self, ck: &KvClient, to: &[usize]) {
        let mut w = self.world();
        for &s in to {
            w.set_client_end(ck.endpoint, s, true);
        }
    }

    pub fn disconnect_client(&self, ck: &KvClient, from: &[usize]) {
        let mut w = self.world();
        for &s in from {
            w.set_client_end(ck.endpoint, s, false);
        }
    }

    /// The first server whose Raft believes it leads.
    pub fn leader(&self) -> Option<usize> {
        (0..self.n).find(|&i| self.world().node(i).is_some_and(|n| n.is_leader()))
    }

    /// The lab's make_partition: a majority without the leader, and a minority with it.
    pub fn make_partition(&self) -> (Vec<usize>, Vec<usize>) {
        let leader = self.leader().unwrap_or(0);
        let mut p1 = Vec::new();
        let mut p2 = vec![leader];
        for i in 0..self.n {
            if i == leader {
                continue;
            }
            if p1.len() < self.n / 2 + 1 {
                p1.push(i);
            } else {
                p2.push(i);
            }
        }
        (p1, p2)
    }

    pub fn log_size(&self) -> usize {
        self.world().servers.iter().map(|s| s.storage.raft_state_size()).max().unwrap_or(0)
    }

    pub fn snapshot_size(&self) -> usize {
        self.world().servers.iter().map(|s| s.storage.snapshot_size()).max().unwrap_or(0)
    }

    /// Runs one operation through the clerk until it completes; the first attempt goes to
    /// `first` if given (as behind a load balancer), the rest where the clerk says.
    async fn run(&self, ck: &KvClient, op: Op, first: Option<usize>) -> Outcome {
        self.ops.set(self.ops.get() + 1);
        let req = {
            let mut clerk = ck.clerk.borrow_mut();
            match first {
                Some(server) => clerk.begin_at(op, ck.index_of(server)),
                None => clerk.begin(op),
            }
        };
        loop {
            let server = ck.ends.borrow()[ck.clerk.borrow().target()];
            let answer = match self.sim.client_call(ck.endpoint, server, req.clone()).await {
                Some(reply) => Answer::Reply(reply),
                None => Answer::Failed,
            };
            if let Answer::Reply(Err(KvError::WrongLeader { leader: Some(leader) })) = &answer {
                // A hint naming a server the clerk lacks (one that joined): learn it, as the
                // network client learns a hinted address. Never so in the lab's fixed clusters.
                let hinted = server_index(*leader);
                let known = ck.clerk.borrow().index_of(*leader).is_some();
                if !known && hinted < self.world().servers.len() {
                    ck.learn_server(hinted, true);
                }
            }
            let next = ck.clerk.borrow_mut().on_answer(answer);
            match next {
                NextStep::Done(Ok(outcome)) => return outcome,
                NextStep::Done(Err(e)) => {
                    panic!("{:?} failed with a non-retryable error: {e}", req.op)
                }
                NextStep::Overloaded { attempts } => {
                    panic!("{:?}: overloaded {attempts} times; simulated servers never are", req.op)
                }
                NextStep::Retry { backoff_ms, .. } => {
                    if backoff_ms > 0 {
                        self.sleep(backoff_ms).await;
                    }
                }
            }
        }
    }

    /// Get, recorded in the history as client `cli` when `log` is set.
    pub async fn get(&self, ck: &KvClient, key: &str, log: bool, cli: u64) -> String {
        self.get_from(ck, None, key, log, cli).await
    }

    /// Get whose first attempt goes to `server`, if given (then where the clerk says).
    pub async fn get_from(
        &self,
        ck: &KvClient,
        server: Option<usize>,
        key: &str,
        log: bool,
        cli: u64,
    ) -> String {
        let call = self.sim.now_us();
        let value = match self.run(ck, Op::Get { key: key.to_string() }, server).await {
            Outcome::Value(v) => v,
            Outcome::Done => panic!("Get answered without a value"),
        };
        if log {
            self.history.borrow_mut().push(Operation::get(
                cli,
                key,
                value.clone(),
                call,
                self.sim.now_us(),
            ));
        }
        value
    }

    pub async fn put(&self, ck: &KvClient, key: &str, value: &str, log: bool, cli: u64) {
        let op = Op::Put { key: key.to_string(), value: value.to_string() };
        self.write(ck, None, op, log, cli).await;
    }

    pub async fn append(&self, ck: &KvClient, key: &str, value: &str, log: bool, cli: u64) {
        let op = Op::Append { key: key.to_string(), value: value.to_string() };
        self.write(ck, None, op, log, cli).await;
    }

    /// A Put or Append whose first attempt goes to `first` if given (then where the clerk
    /// says), recorded in the history as client `cli` when `log` is set.
    pub async fn write(&self, ck: &KvClient, first: Option<usize>, op: Op, log: bool, cli: u64) {
        let call = self.sim.now_us();
        let recorded = log.then(|| match &op {
            Op::Put { key, value } => Operation::put(cli, key, value, call, 0),
            Op::Append { key, value } => Operation::append(cli, key, value, call, 0),
            Op::Get { .. } => unreachable!("writes only"),
        });
        self.run(ck, op, first).await;
        if let Some(mut entry) = recorded {
            entry.ret = self.sim.now_us();
            self.history.borrow_mut().push(entry);
        }
    }

    /// Get must return exactly `value`.
    pub async fn check(&self, ck: &KvClient, key: &str, value: &str) {
        let v = self.get(ck, key, false, 0).await;
        assert_eq!(v, value, "Get({key}): expected:\n{value}\nreceived:\n{v}");
    }

    /// Checks the recorded history for linearizability; "unknown" fails too.
    pub fn check_history(&self) {
        let history = self.history.borrow();
        if let Some(path) = self.sim.world().options.dump_history.clone() {
            // One operation per line: client, kind, key, value/output, call, return (us).
            let lines: Vec<String> = history
                .iter()
                .map(|op| {
                    let (kind, key, value) = match &op.input {
                        KvInput::Get { key } => ("get", key, &op.output),
                        KvInput::Put { key, value } => ("put", key, value),
                        KvInput::Append { key, value } => ("append", key, value),
                    };
                    format!("{}\t{kind}\t{key}\t{value}\t{}\t{}", op.client_id, op.call, op.ret)
                })
                .collect();
            std::fs::write(&path, lines.join("\n")).expect("SIM_DUMP_HISTORY is writable");
        }
        kvraft_linearizability::assert_linearizable(&history, LINEARIZABILITY_STEP_BUDGET);
    }

    /// The linearizability checker's verdict on the recorded history, without panicking.
    pub fn history_check(&self) -> CheckResult {
        check_kv_with_stats(&self.history.borrow(), LINEARIZABILITY_STEP_BUDGET).0
    }

    pub fn history_len(&self) -> usize {
        self.history.borrow().len()
    }

    pub fn begin(&self, description: &str) {
        let rpcs = self.world().net.total_rpcs;
        *self.begin.borrow_mut() =
            (description.to_string(), self.sim.now_ms(), rpcs, self.ops.get());
    }

    /// The lab's end(): prints time, peers, RPCs and ops since begin().
    pub fn end(&self) -> KvFigures {
        let (description, t0, rpcs0, ops0) = self.begin.borrow().clone();
        let figures = KvFigures {
            virtual_ms: self.sim.now_ms() - t0,
            peers: self.n,
            rpcs: self.world().net.total_rpcs - rpcs0,
            ops: self.ops.get() - ops0,
        };
        if !self.sim.world().options.quiet {
            println!(
                "{description}\n  ... Passed --  {:5.1}  {}  {:5}  {:4}",
                figures.virtual_ms as f64 / 1000.0,
                figures.peers,
                figures.rpcs,
                figures.ops
            );
        }
        *self.figures.borrow_mut() = Some(figures.clone());
        figures
    }

    pub fn last_figures(&self) -> Option<KvFigures> {
        self.figures.borrow().clone()
    }
}

/// The lab's checkClntAppends: every "x clnt j y" for j < count appears exactly once, in order.
pub fn check_clnt_appends(clnt: usize, v: &str, count: usize) {
    let mut last: Option<usize> = None;
    for j in 0..count {
        let wanted = format!("x {clnt} {j} y");
        let off = v
            .find(&wanted)
            .unwrap_or_else(|| panic!("{clnt} missing element {wanted} in Append result {v}"));
        let off1 = v.rfind(&wanted).expect("found above");
        assert_eq!(off1, off, "duplicate element {wanted} in Append result");
        if let Some(l) = last {
            assert!(off > l, "wrong order for element {wanted} in Append result");
        }
        last = Some(off);
    }
}

/// The lab's checkConcurrentAppends.
pub fn check_concurrent_appends(v: &str, counts: &[usize]) {
    for (i, &n) in counts.iter().enumerate() {
        check_clnt_appends(i, v, n);
    }
}
