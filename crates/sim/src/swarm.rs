//! Swarm simulation: beyond the lab's scripts, each seed derives its own cluster, workload and
//! fault mix (Groce et al.'s "swarm testing": varied configurations find more bugs than one
//! tuned one). A run has three phases:
//! 1. safety: clients run while faults strike (drops, delays, duplicates, reordering,
//!    symmetric and one-way partitions, crashes and restarts, paused servers, slow disks, and on
//!    a minority of servers, disks whose writes and fsyncs fail and stop the server); the
//!    checkers run after every event, and every crash checks what the WAL recovers. Seeds
//!    also pick the read paths (follower reads, leader leases) and how clients route: some
//!    only read, each from a server of its own, some send each operation to a random server;
//! 2. liveness: every fault is healed; the clients' pending operations and a fresh client's
//!    put and get must complete within a bound;
//! 3. the whole history must be linearizable, and every acknowledged append must be in its
//!    key's final value exactly once.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use kvraft_kv::Op;
use kvraft_raft::DetRng;
use kvraft_storage::FaultPlan;

use crate::kv_tester::KvTester;
use crate::network::{Unreliability, MS};
use crate::options::SimOptions;
use crate::run::RunReport;
use crate::world::{sim_raft_config, DiskLatency};

/// Virtual time the safety phase lasts.
const SAFETY_MS: u64 = 20_000;
/// After healing, how long the cluster has to finish every pending operation and serve a new one.
const LIVENESS_BOUND_MS: u64 = 30_000;

/// Everything a seed decides about its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmParams {
    pub servers: usize,
    pub clients: usize,
    pub keys: usize,
    pub read_per_mille: u64,
    pub put_per_mille: u64,
    pub maxraftstate: i64,
    /// None: a reliable network.
    pub unreliability: Option<Unreliability>,
    pub long_reordering: bool,
    /// Mean pause between two faults.
    pub fault_every_ms: u64,
    /// Relative weights of the fault kinds: partition, one-way link cut, crash, restart,
    /// pause, heal, leader isolation.
    pub fault_weights: [u64; 7],
    /// Raft options under test (both on by default in production).
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub disk_latency: DiskLatency,
    /// How many servers (a minority) have a failing disk during the safety phase, and how it
    /// fails: a failed write or fsync stops the server, which stays down until restarted.
    pub faulty_disks: usize,
    pub disk_faults: FaultPlan,
    /// Followers serve Gets through a ReadIndex forwarded to their leader
    /// (`ReplicaConfig::follower_reads`).
    pub follower_reads: bool,
    /// Leaders answer reads from a lease (`Config::lease_reads`; forces check_quorum on). A
    /// lease trusts the leader's clock, which a paused process stops: these seeds strike no
    /// pauses (with pauses a lease *can* serve stale reads, by design; see the README).
    pub lease_reads: bool,
    /// How many clients only read, each sending every Get first to one server of its own,
    /// chosen at random, rather than to the leader the clerk tracks ("pinned readers", through
    /// the clerk's read server, as production clients do: they exercise follower reads, and
    /// keep asking a deposed leader that believes it leads).
    pub pinned_readers: usize,
    /// How many of the other clients send each operation first to a random server, as behind
    /// a load balancer (a refusal's leader hint then leads them on): unlike clerks that stick
    /// to the leader they know, they reach a new leader while an old one still believes it
    /// leads, which is when stale reads happen.
    pub roaming_clients: usize,
}

const FAULT_NAMES: [&str; 7] =
    ["partition", "one-way cut", "crash", "restart", "pause", "heal", "isolate-leader"];

impl SwarmParams {
    pub fn derive(seed: u64) -> SwarmParams {
        let mut r = DetRng::new(seed ^ 0x5157_4152_4d00_0000);
        let pick =
            |r: &mut DetRng, options: &[u64]| options[r.below(options.len() as u64) as usize];
        let servers = pick(&mut r, &[3, 5, 7]) as usize;
        let clients = r.range(1, 11) as usize;
        // From one hot key shared by every client to twice as many keys as clients.
        let keys = r.range(1, 2 * clients as u64 + 1) as usize;
        let read_per_mille = r.range(100, 700);
        let put_per_mille = r.range(0, 300);
        let maxraftstate = [-1, 1000, 4000, 20_000][r.below(4) as usize];
        let unreliability = r.chance(2, 3).then(|| Unreliability {
            request_drop_per_mille: pick(&mut r, &[0, 10, 50, 100, 200]),
            reply_drop_per_mille: pick(&mut r, &[0, 10, 50, 100, 200]),
            max_delay_ms: pick(&mut r, &[1, 5, 27, 100]),
            duplicate_per_mille: pick(&mut r, &[0, 10, 50]),
        });
        let long_reordering = r.chance(1, 4);
        let fault_every_ms = pick(&mut r, &[300, 1000, 3000]);
        let mut fault_weights = [0; 7];
        for w in &mut fault_weights {
            *w = pick(&mut r, &[0, 1, 3]);
        }
        fault_weights[5] += 1; // always some healing
        let pre_vote = r.chance(3, 4);
        let check_quorum = r.chance(3, 4);
        let disk_latency = [
            DiskLatency::SSD,
            // A disk behind a busy controller: usually quick, sometimes very slow.
            DiskLatency { min_us: 50, max_us: 500, spike_per_mille: 20, spike_max_us: 80_000 },
            // A spinning disk.
            DiskLatency { min_us: 2_000, max_us: 12_000, spike_per_mille: 0, spike_max_us: 0 },
        ][r.below(3) as usize];
        let faulty_disks =
            if r.chance(1, 2) { r.range(1, (servers as u64 - 1) / 2 + 1) } else { 0 };
        let disk_faults = FaultPlan {
            write_error_per_mille: pick(&mut r, &[0, 2, 10]) as u32,
            sync_error_per_mille: pick(&mut r, &[1, 5, 20]) as u32,
            capacity_bytes: None,
        };
        // Drawn last, so that the options above stay what they were for every seed.
        let follower_reads = r.chance(1, 2);
        let lease_reads = r.chance(1, 3);
        // At least one client keeps writing.
        let pinned_readers =
            if clients > 1 && r.chance(2, 3) { r.range(1, clients as u64) as usize } else { 0 };
        let roaming_clients = if r.chance(1, 2) {
            r.range(0, (clients - pinned_readers) as u64 + 1) as usize
        } else {
            0
        };
        let check_quorum = check_quorum || lease_reads;
        if lease_reads {
            fault_weights[4] = 0;
        }
        SwarmParams {
            servers,
            clients,
            keys,
            read_per_mille,
            put_per_mille,
            maxraftstate,
            unreliability,
            long_reordering,
            fault_every_ms,
            fault_weights,
            pre_vote,
            check_quorum,
            disk_latency,
            faulty_disks: faulty_disks as usize,
            disk_faults,
            follower_reads,
            lease_reads,
            pinned_readers,
            roaming_clients,
        }
    }
}

impl fmt::Display for SwarmParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "servers={} clients={} keys={} reads={}‰ puts={}‰ maxraftstate={} ",
            self.servers,
            self.clients,
            self.keys,
            self.read_per_mille,
            self.put_per_mille,
            self.maxraftstate
        )?;
        match &self.unreliability {
            None => write!(f, "net=reliable ")?,
            Some(u) => write!(
                f,
                "net=drop-req {}‰ drop-reply {}‰ delay<{}ms dup {}‰ ",
                u.request_drop_per_mille,
                u.reply_drop_per_mille,
                u.max_delay_ms,
                u.duplicate_per_mille
            )?,
        }
        write!(
            f,
            "reorder={} fault-every={}ms faults=",
            self.long_reordering, self.fault_every_ms
        )?;
        let faults: Vec<String> = FAULT_NAMES
            .iter()
            .zip(self.fault_weights)
            .filter(|(_, w)| *w > 0)
            .map(|(n, w)| format!("{n}:{w}"))
            .collect();
        write!(f, "{}", faults.join(","))?;
        let d = &self.disk_latency;
        write!(f, " disk={}-{}us", d.min_us, d.max_us)?;
        if d.spike_per_mille > 0 {
            write!(f, "+{}‰<{}ms", d.spike_per_mille, d.spike_max_us / 1000)?;
        }
        if self.faulty_disks > 0 {
            write!(
                f,
                " faulty-disks={} (write {}‰ fsync {}‰)",
                self.faulty_disks,
                self.disk_faults.write_error_per_mille,
                self.disk_faults.sync_error_per_mille
            )?;
        }
        if self.follower_reads {
            write!(f, " follower-reads")?;
        }
        if self.lease_reads {
            write!(f, " lease-reads")?;
        }
        if self.pinned_readers > 0 {
            write!(f, " pinned-readers={}", self.pinned_readers)?;
        }
        if self.roaming_clients > 0 {
            write!(f, " roaming-clients={}", self.roaming_clients)?;
        }
        Ok(())
    }
}

/// What a swarm seed sets up in the world before its clients start (the plain swarm's and the
/// membership swarm's alike): Raft options, the servers started and connected, the network's
/// and the disks' faults.
pub(crate) struct WorldSetup {
    pub(crate) pre_vote: bool,
    pub(crate) check_quorum: bool,
    pub(crate) lease_reads: bool,
    /// None: a reliable network.
    pub(crate) unreliability: Option<Unreliability>,
    pub(crate) long_reordering: bool,
    pub(crate) disk_latency: DiskLatency,
    /// The first this many servers get `disk_faults`.
    pub(crate) faulty_disks: usize,
    pub(crate) disk_faults: FaultPlan,
}

impl WorldSetup {
    pub(crate) fn apply(&self, t: &KvTester) {
        let (pre_vote, check_quorum, lease_reads) =
            (self.pre_vote, self.check_quorum, self.lease_reads);
        t.sim.world_mut().raft_config = Box::new(move |id, voters| {
            let mut c = sim_raft_config(id, voters);
            c.pre_vote = pre_vote;
            c.check_quorum = check_quorum;
            c.lease_reads = lease_reads;
            c
        });
        // Restart the (still empty) servers with these Raft options.
        for i in 0..t.n {
            t.start_server(i);
        }
        t.connect_all();
        let mut w = t.sim.world_mut();
        if let Some(u) = self.unreliability {
            w.net.reliable = false;
            w.net.unreliability = u;
        }
        w.net.long_reordering = self.long_reordering;
        w.disk_latency = self.disk_latency;
        for server in 0..self.faulty_disks {
            w.servers[server].storage.set_faults(self.disk_faults);
        }
    }
}

/// A key's name: the first half are append-only (so acknowledged appends can be checked in the
/// final value), the rest take puts too.
pub(crate) fn key_name(k: usize, keys: usize) -> (String, bool) {
    if k < keys.div_ceil(2) {
        (format!("a{k}"), true)
    } else {
        (format!("p{k}"), false)
    }
}

async fn swarm_client(
    t: KvTester,
    cli: usize,
    p: SwarmParams,
    stop: Rc<Cell<bool>>,
    acked: Rc<RefCell<Vec<(String, String)>>>,
) {
    let ck = t.make_client(&t.all());
    let pinned = (cli < p.pinned_readers).then(|| t.rand(t.n as u64) as usize);
    if let Some(server) = pinned {
        t.read_from(&ck, server);
    }
    let roaming = (p.pinned_readers..p.pinned_readers + p.roaming_clients).contains(&cli);
    let mut j = 0;
    while !stop.get() {
        let (key, append_only) = key_name(t.rand(p.keys as u64) as usize, p.keys);
        let r = t.rand(1000);
        let token = format!("c{cli}.{j};");
        let first = if roaming { Some(t.rand(t.n as u64) as usize) } else { None };
        if r < p.read_per_mille || pinned.is_some() {
            t.get_from(&ck, first, &key, true, cli as u64).await;
        } else if !append_only && r < p.read_per_mille + p.put_per_mille {
            let op = Op::Put { key: key.clone(), value: token.clone() };
            t.write(&ck, first, op, true, cli as u64).await;
            j += 1;
        } else {
            let op = Op::Append { key: key.clone(), value: token.clone() };
            t.write(&ck, first, op, true, cli as u64).await;
            if append_only {
                acked.borrow_mut().push((key, token));
            }
            j += 1;
        }
    }
}

/// Strikes faults at random until told to stop.
async fn fault_injector(t: KvTester, p: SwarmParams, stop: Rc<Cell<bool>>) {
    let total: u64 = p.fault_weights.iter().sum();
    while !stop.get() {
        t.sleep(1 + t.rand(2 * p.fault_every_ms)).await;
        if stop.get() {
            break;
        }
        let mut roll = t.rand(total);
        let kind = p.fault_weights.iter().position(|w| {
            if roll < *w {
                true
            } else {
                roll -= w;
                false
            }
        });
        let n = t.n as u64;
        match kind.expect("weights sum to total") {
            0 => {
                t.random_partition();
            }
            1 => {
                let (a, b) = (t.rand(n) as usize, t.rand(n) as usize);
                t.sim.world_mut().net.set_one_way(a, b, false);
            }
            2 => t.shutdown_server(t.rand(n) as usize),
            3 => {
                let s = t.rand(n) as usize;
                if !t.sim.world().is_alive(s) {
                    t.start_server(s);
                    let mut w = t.sim.world_mut();
                    for other in 0..t.n {
                        w.net.set_link(s, other, true);
                    }
                    // The disk is still the faulty one (a crash image comes back fault-free).
                    if s < p.faulty_disks {
                        w.servers[s].storage.set_faults(p.disk_faults);
                    }
                }
            }
            4 => {
                let until = t.sim.now_us() + (100 + t.rand(3000)) * MS;
                let server = t.rand(n) as usize;
                t.sim.world_mut().pause(server, until);
            }
            5 => heal(&t),
            _ => {
                // Cut the leader off from every other server while clients still reach it
                // (each client on the leader's side of the cut or not, at random): a deposed
                // leader that still believes it leads must not serve a stale read, while
                // clients on the other side write through the new leader.
                let leader =
                    (0..t.n).find(|&i| t.sim.world().node(i).is_some_and(|r| r.is_leader()));
                if let Some(leader) = leader {
                    let clients = t.sim.world().client_count();
                    let cut: Vec<usize> = (0..clients).filter(|_| t.rand(2) == 0).collect();
                    let mut w = t.sim.world_mut();
                    for other in (0..t.n).filter(|&o| o != leader) {
                        w.net.set_link(leader, other, false);
                    }
                    for client in cut {
                        w.set_client_end(client, leader, false);
                    }
                }
            }
        }
    }
}

/// Every link between servers, and every client's end to every server, enabled.
fn heal(t: &KvTester) {
    t.connect_all();
    let mut w = t.sim.world_mut();
    for client in 0..w.client_count() {
        for server in 0..t.n {
            w.set_client_end(client, server, true);
        }
    }
}

// One randomized scenario read top to bottom (setup, the fault loop, the final checks). The
// simulator is being reshaped on another branch; splitting this belongs there.
#[allow(clippy::too_many_lines)]
async fn swarm(t: KvTester, p: SwarmParams) {
    t.begin(&format!("Swarm: {p}"));
    WorldSetup {
        pre_vote: p.pre_vote,
        check_quorum: p.check_quorum,
        lease_reads: p.lease_reads,
        unreliability: p.unreliability,
        long_reordering: p.long_reordering,
        disk_latency: p.disk_latency,
        faulty_disks: p.faulty_disks,
        disk_faults: p.disk_faults,
    }
    .apply(&t);
    let stop_clients = Rc::new(Cell::new(false));
    let stop_faults = Rc::new(Cell::new(false));
    let acked = Rc::new(RefCell::new(Vec::new()));
    let done = Rc::new(Cell::new(0usize));
    for cli in 0..p.clients {
        let (t2, p2, stop, acked, done) =
            (t.clone(), p.clone(), stop_clients.clone(), acked.clone(), done.clone());
        t.sim.spawn(async move {
            swarm_client(t2, cli, p2, stop, acked).await;
            done.set(done.get() + 1);
        });
    }
    let injector = t.sim.spawn(fault_injector(t.clone(), p.clone(), stop_faults.clone()));

    // Phase 1: safety under faults.
    t.sleep(SAFETY_MS).await;
    stop_faults.set(true);
    stop_clients.set(true);
    injector.await;

    // Phase 2: heal everything (the failing disks are replaced); the cluster must converge
    // and serve.
    {
        let mut w = t.sim.world_mut();
        w.net.reliable = true;
        w.net.long_reordering = false;
        for server in 0..p.faulty_disks {
            w.servers[server].storage.set_faults(FaultPlan::NONE);
        }
    }
    for i in 0..t.n {
        if !t.sim.world().is_alive(i) {
            t.start_server(i);
        }
    }
    heal(&t);
    let healed_at = t.sim.now_ms();
    while done.get() < p.clients {
        assert!(
            t.sim.now_ms() - healed_at < LIVENESS_BOUND_MS,
            "liveness: {} of {} clients still blocked {} s after healing",
            p.clients - done.get(),
            p.clients,
            LIVENESS_BOUND_MS / 1000
        );
        t.sleep(100).await;
    }
    let fresh = t.make_client(&t.all());
    let cli = p.clients as u64;
    t.put(&fresh, "liveness", "ok", true, cli).await;
    assert_eq!(t.get(&fresh, "liveness", true, cli).await, "ok");
    assert!(
        t.sim.now_ms() - healed_at < LIVENESS_BOUND_MS,
        "liveness: a new request took until {} ms after healing",
        t.sim.now_ms() - healed_at
    );

    // Phase 3: every acknowledged append is present exactly once; the history is linearizable.
    let mut final_values = std::collections::HashMap::new();
    for k in 0..p.keys {
        let (key, append_only) = key_name(k, p.keys);
        if append_only {
            let value = t.get(&fresh, &key, true, cli).await;
            final_values.insert(key, value);
        }
    }
    kvraft_linearizability::assert_appends_once(&final_values, &acked.borrow());
    t.end();
    t.check_history();
}

/// Runs the swarm scenario of `seed`.
pub fn run_swarm(seed: u64, options: &SimOptions) -> RunReport {
    let p = SwarmParams::derive(seed);
    if !options.quiet {
        println!("swarm seed {seed}: {p}");
    }
    let tester = KvTester::with_follower_reads(
        seed,
        options,
        p.servers,
        false,
        p.maxraftstate,
        p.follower_reads,
    );
    let summary = tester.sim.block_on(swarm(tester.clone(), p), crate::raft_tester::TEST_LIMIT_MS);
    let w = tester.sim.world();
    let figures = format!(
        "{:5.1} s  {} events  {} disk failures",
        w.now_us as f64 / 1e6,
        w.events_processed,
        w.disk_failures.len()
    );
    RunReport { summary, figures: Some(figures) }
}
