//! The Raft lab tester: the apply-channel checks and the helpers the lab tests call
//! (`check_one_leader`, `one`, `wait`, `crash1`, `start1`, ...), over the simulated world.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kvraft_raft::{
    Entry, LogIndex, Message, ProposeError, RawNode, Ready, ReadyNumber, Snapshot, Term,
};
use kvraft_replica::{Apply, Output, ReadyPipeline};

use crate::options::SimOptions;
use crate::peer::Peer;
use crate::sim::Sim;
use crate::world::World;

/// The lab's SnapShotInterval: the snapshot applier snapshots after every 10 entries.
pub const SNAPSHOT_INTERVAL: u64 = 10;
/// The lab's RaftElectionTimeout.
pub const RAFT_ELECTION_TIMEOUT_MS: u64 = 1000;
/// The lab's per-test time limit, here in virtual time.
pub const TEST_LIMIT_MS: u64 = 120_000;

/// What each server has applied: `logs[i][index] = command`, as the lab's applier records it.
#[derive(Debug, Default)]
pub struct ApplyLogs {
    pub logs: Vec<HashMap<u64, Bytes>>,
    pub last_applied: Vec<u64>,
    pub max_index: u64,
    /// The lab's 2D applier: exact `last_applied + 1` order, snapshots every 10 entries.
    pub snapshots: bool,
}

/// Encodes the lab's test snapshot: the last included index and every command up to it.
pub fn encode_test_snapshot(index: u64, log: &HashMap<u64, Bytes>) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u64_le(index);
    for i in 0..=index {
        let v = log.get(&i).cloned().unwrap_or_default();
        buf.put_u32_le(v.len() as u32);
        buf.put_slice(&v);
    }
    buf.freeze()
}

pub fn decode_test_snapshot(mut data: &[u8]) -> (u64, HashMap<u64, Bytes>) {
    assert!(data.len() >= 8, "snapshot too short to hold an index");
    let index = data.get_u64_le();
    let mut log = HashMap::new();
    for i in 0..=index {
        assert!(data.len() >= 4, "snapshot truncated at entry {i}");
        let len = data.get_u32_le() as usize;
        assert!(data.len() >= len, "snapshot truncated in entry {i}");
        if i > 0 {
            log.insert(i, Bytes::copy_from_slice(&data[..len]));
        }
        data.advance(len);
    }
    assert!(data.is_empty(), "trailing bytes after the snapshot's entries");
    (index, log)
}

/// A lab peer: a bare Raft node whose applier runs the lab's checks, behind the same Ready
/// pipeline as the replica's. Violations are fatal at once, as in the lab.
#[derive(Debug)]
pub struct LabPeer {
    node: RawNode,
    pipeline: ReadyPipeline,
    applier: LabApplier,
}

/// The lab's applier ("applyCh" reader) for one server.
#[derive(Debug)]
struct LabApplier {
    server: usize,
    logs: Rc<RefCell<ApplyLogs>>,
}

impl LabPeer {
    /// The lab's start1: the tester forgets what the server applied and, if its storage holds a
    /// snapshot, ingests it itself ("mimic the KV server").
    pub fn start(
        server: usize,
        node: RawNode,
        snapshot: &Snapshot,
        logs: Rc<RefCell<ApplyLogs>>,
    ) -> LabPeer {
        {
            let mut l = logs.borrow_mut();
            l.last_applied[server] = 0;
            if l.snapshots && !snapshot.data.is_empty() {
                LabApplier::ingest_snapshot(&mut l, server, snapshot);
            }
        }
        LabPeer { node, pipeline: ReadyPipeline::default(), applier: LabApplier { server, logs } }
    }
}

impl LabApplier {
    fn ingest_snapshot(logs: &mut ApplyLogs, server: usize, snapshot: &Snapshot) {
        let (index, log) = decode_test_snapshot(&snapshot.data);
        assert_eq!(
            index, snapshot.meta.index.0,
            "server {server}: snapshot says index {index} but Raft delivered it as {}",
            snapshot.meta.index
        );
        logs.logs[server] = log;
        logs.last_applied[server] = index;
    }

    /// Checks one applied command; returns the snapshot to take now, if it is time.
    fn apply_entry(&self, entry: &Entry) -> Option<Bytes> {
        let server = self.server;
        let mut logs = self.logs.borrow_mut();
        let k = entry.index.0;
        if logs.snapshots {
            let expected = logs.last_applied[server] + 1;
            assert_eq!(
                k, expected,
                "server {server} apply out of order, expected index {expected}, got {k}"
            );
        }
        for (j, log) in logs.logs.iter().enumerate() {
            if let Some(old) = log.get(&k) {
                assert_eq!(
                    old, &entry.data,
                    "commit index={k} server={server} {:?} != server={j} {:?}",
                    entry.data, old
                );
            }
        }
        let prev_ok = k == 1 || logs.logs[server].contains_key(&(k - 1));
        logs.logs[server].insert(k, entry.data.clone());
        assert!(prev_ok, "server {server} apply out of order {k}");
        logs.last_applied[server] = k;
        logs.max_index = logs.max_index.max(k);
        (logs.snapshots && (k + 1).is_multiple_of(SNAPSHOT_INTERVAL))
            .then(|| encode_test_snapshot(k, &logs.logs[server]))
    }
}

impl Apply for LabApplier {
    fn on_ready(&mut self, _raft: &RawNode, _ready: &mut Ready) {}

    fn apply(&mut self, raft: &mut RawNode, ready: Ready, _raft_state_size: usize) {
        if let Some(snapshot) = &ready.apply_snapshot {
            let mut logs = self.logs.borrow_mut();
            assert!(
                logs.snapshots,
                "server {}: a snapshot was installed in a test that never takes one",
                self.server
            );
            Self::ingest_snapshot(&mut logs, self.server, snapshot);
        }
        for entry in &ready.committed_entries {
            if let Some(state) = self.apply_entry(entry) {
                raft.snapshot(entry.index, state).expect("snapshot of an applied entry");
            }
        }
    }
}

impl Peer for LabPeer {
    fn raft(&self) -> &RawNode {
        &self.node
    }
    fn tick(&mut self) {
        self.node.tick();
    }
    fn step(&mut self, msg: Message) {
        self.node.step(msg).expect("simulator delivers only well-addressed messages");
    }
    fn poll(&mut self) -> Option<Output> {
        self.pipeline.poll(&mut self.node, &mut self.applier)
    }
    fn on_written(&mut self, through: ReadyNumber, raft_state_size: usize) {
        self.pipeline.on_written(through, raft_state_size);
    }
    fn check_invariants(&self) {
        self.node.check_invariants();
    }
    fn propose(&mut self, data: Bytes) -> Result<(LogIndex, Term), ProposeError> {
        self.node.propose(data)
    }
}

/// A command as the lab's tests use them: an integer.
pub fn int_cmd(x: u64) -> Bytes {
    Bytes::copy_from_slice(&x.to_le_bytes())
}

/// The lab's `config`: a cluster of `n` peers under test.
#[derive(Debug, Clone)]
pub struct RaftTester {
    pub sim: Sim,
    pub n: usize,
    apply: Rc<RefCell<ApplyLogs>>,
    begin: Rc<RefCell<Stats>>,
    figures: Rc<RefCell<Option<LabFigures>>>,
}

#[derive(Debug, Default, Clone)]
struct Stats {
    description: String,
    t0_ms: u64,
    rpcs0: u64,
    bytes0: u64,
    max_index0: u64,
}

/// The lab's end-of-test figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabFigures {
    pub virtual_ms: u64,
    pub peers: usize,
    pub rpcs: u64,
    pub bytes: u64,
    pub agreements: u64,
}

impl RaftTester {
    /// The lab's `make_config(n, unreliable, snapshot)`: long delays on, all peers started and
    /// connected.
    pub fn new(
        seed: u64,
        options: &SimOptions,
        n: usize,
        unreliable: bool,
        snapshots: bool,
    ) -> RaftTester {
        let apply = Rc::new(RefCell::new(ApplyLogs {
            logs: vec![HashMap::new(); n],
            last_applied: vec![0; n],
            max_index: 0,
            snapshots,
        }));
        let logs = apply.clone();
        let make_peer: crate::world::PeerFactory = Box::new(move |server, config, recovered| {
            let node = RawNode::new(config, recovered.clone()).expect("simulator config is valid");
            Box::new(LabPeer::start(server, node, &recovered.snapshot, logs.clone()))
        });
        let mut world = World::new(seed, n, make_peer, options.clone());
        world.net.long_delays = true;
        world.net.reliable = !unreliable;
        let sim = Sim::new(world, seed);
        let t = RaftTester {
            sim,
            n,
            apply,
            begin: Rc::new(RefCell::new(Stats::default())),
            figures: Rc::new(RefCell::new(None)),
        };
        for i in 0..n {
            t.start1(i);
        }
        for i in 0..n {
            t.connect(i);
        }
        t
    }

    fn world(&self) -> std::cell::RefMut<'_, World> {
        self.sim.world_mut()
    }

    /// A random number from the simulation's generator.
    pub fn rand(&self, below: u64) -> u64 {
        self.world().rng.below(below)
    }

    pub fn sleep(&self, ms: u64) -> crate::sim::Sleep {
        self.sim.sleep(ms)
    }

    pub fn connect(&self, i: usize) {
        self.world().net.connect(i);
    }

    pub fn disconnect(&self, i: usize) {
        self.world().net.disconnect(i);
    }

    pub fn is_connected(&self, i: usize) -> bool {
        self.world().net.is_connected(i)
    }

    pub fn is_alive(&self, i: usize) -> bool {
        self.world().is_alive(i)
    }

    /// Kills server i; its storage survives.
    pub fn crash1(&self, i: usize) {
        self.world().crash(i);
    }

    /// Restarts server i from its storage, not connected.
    pub fn start1(&self, i: usize) {
        self.world().start(i);
    }

    pub fn set_unreliable(&self, unreliable: bool) {
        self.world().net.reliable = !unreliable;
    }

    pub fn set_long_reordering(&self, on: bool) {
        self.world().net.long_reordering = on;
    }

    /// The lab's `Start(cmd)`: Some((index, term)) if server i is the leader.
    pub fn start(&self, i: usize, cmd: Bytes) -> Option<(u64, u64)> {
        self.world().propose(i, cmd).ok().map(|(index, term)| (index.0, term.0))
    }

    /// The lab's `GetState()`: (term, is_leader), or None for a crashed server.
    pub fn get_state(&self, i: usize) -> Option<(u64, bool)> {
        self.world().node(i).map(|n| (n.term().0, n.is_leader()))
    }

    pub fn rpc_count(&self, i: usize) -> u64 {
        self.world().servers[i].rpc_count
    }

    pub fn rpc_total(&self) -> u64 {
        self.world().net.total_rpcs
    }

    pub fn bytes_total(&self) -> u64 {
        self.world().net.total_bytes
    }

    /// The lab's `LogSize()`: the largest Raft state among the servers.
    pub fn log_size(&self) -> usize {
        self.world().servers.iter().map(|s| s.storage.raft_state_size()).max().unwrap_or(0)
    }

    pub async fn check_one_leader(&self) -> usize {
        for _ in 0..10 {
            let ms = 450 + self.rand(100);
            self.sleep(ms).await;
            let mut leaders: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
            for i in 0..self.n {
                if self.is_connected(i) {
                    if let Some((term, true)) = self.get_state(i) {
                        leaders.entry(term).or_default().push(i);
                    }
                }
            }
            for (term, ls) in &leaders {
                assert!(ls.len() <= 1, "term {term} has {} (>1) leaders: {ls:?}", ls.len());
            }
            if let Some((_, ls)) = leaders.iter().next_back() {
                return ls[0];
            }
        }
        panic!("expected one leader, got none");
    }

    pub fn check_terms(&self) -> u64 {
        let mut term = None;
        for i in 0..self.n {
            if self.is_connected(i) {
                if let Some((t, _)) = self.get_state(i) {
                    match term {
                        None => term = Some(t),
                        Some(t0) => assert_eq!(t0, t, "servers disagree on term"),
                    }
                }
            }
        }
        term.unwrap_or(0)
    }

    pub fn check_no_leader(&self) {
        for i in 0..self.n {
            if self.is_connected(i) {
                if let Some((_, true)) = self.get_state(i) {
                    panic!(
                        "expected no leader among connected servers, but {i} claims to be leader"
                    );
                }
            }
        }
    }

    /// How many servers think index is committed, and the command there.
    pub fn n_committed(&self, index: u64) -> (usize, Option<Bytes>) {
        let apply = self.apply.borrow();
        let mut count = 0;
        let mut cmd: Option<Bytes> = None;
        for log in &apply.logs {
            if let Some(v) = log.get(&index) {
                if let Some(c) = &cmd {
                    assert_eq!(c, v, "committed values do not match: index {index}");
                }
                count += 1;
                cmd = Some(v.clone());
            }
        }
        (count, cmd)
    }

    /// Waits for at least n servers to commit index; None if some term moved past start_term.
    pub async fn wait(&self, index: u64, n: usize, start_term: Option<u64>) -> Option<Bytes> {
        let mut to_ms = 10;
        for _ in 0..30 {
            let (nd, _) = self.n_committed(index);
            if nd >= n {
                break;
            }
            self.sleep(to_ms).await;
            if to_ms < 1000 {
                to_ms *= 2;
            }
            if let Some(start) = start_term {
                for i in 0..self.n {
                    if let Some((t, _)) = self.get_state(i) {
                        if t > start {
                            return None;
                        }
                    }
                }
            }
        }
        let (nd, cmd) = self.n_committed(index);
        assert!(nd >= n, "only {nd} decided for index {index}; wanted {n}");
        cmd
    }

    /// The lab's `one()`: submit cmd until some leader commits it on `expected` servers;
    /// returns its index.
    pub async fn one(&self, cmd: Bytes, expected: usize, retry: bool) -> u64 {
        let t0 = self.sim.now_ms();
        let mut starts = 0;
        while self.sim.now_ms() - t0 < 10_000 {
            let mut index = None;
            for _ in 0..self.n {
                starts = (starts + 1) % self.n;
                if self.is_connected(starts) {
                    if let Some((i, _)) = self.start(starts, cmd.clone()) {
                        index = Some(i);
                        break;
                    }
                }
            }
            if let Some(index) = index {
                let t1 = self.sim.now_ms();
                while self.sim.now_ms() - t1 < 2_000 {
                    let (nd, got) = self.n_committed(index);
                    if nd > 0 && nd >= expected && got.as_ref() == Some(&cmd) {
                        return index;
                    }
                    self.sleep(20).await;
                }
                assert!(retry, "one({cmd:?}) failed to reach agreement");
            } else {
                self.sleep(50).await;
            }
        }
        panic!("one({cmd:?}) failed to reach agreement");
    }

    pub fn begin(&self, description: &str) {
        let max_index0 = self.apply.borrow().max_index;
        *self.begin.borrow_mut() = Stats {
            description: description.to_string(),
            t0_ms: self.sim.now_ms(),
            rpcs0: self.rpc_total(),
            bytes0: self.bytes_total(),
            max_index0,
        };
    }

    /// The lab's `end()`: the figures it prints (virtual seconds, peers, RPCs, bytes, agreements).
    pub fn end(&self) -> LabFigures {
        let b = self.begin.borrow().clone();
        let figures = LabFigures {
            virtual_ms: self.sim.now_ms() - b.t0_ms,
            peers: self.n,
            rpcs: self.rpc_total() - b.rpcs0,
            bytes: self.bytes_total() - b.bytes0,
            agreements: self.apply.borrow().max_index - b.max_index0,
        };
        if !self.sim.world().options.quiet {
            println!(
                "{}\n  ... Passed --  {:5.1}  {}  {:5}  {:8}  {:4}",
                b.description,
                figures.virtual_ms as f64 / 1000.0,
                figures.peers,
                figures.rpcs,
                figures.bytes,
                figures.agreements
            );
        }
        *self.figures.borrow_mut() = Some(figures.clone());
        figures
    }

    /// The figures of the last `end()`, if the test reached it.
    pub fn last_figures(&self) -> Option<LabFigures> {
        self.figures.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_snapshot_round_trips() {
        let mut log = HashMap::new();
        log.insert(1, int_cmd(7));
        log.insert(2, Bytes::from_static(b"hello"));
        let data = encode_test_snapshot(2, &log);
        assert_eq!(decode_test_snapshot(&data), (2, log));
    }
}
