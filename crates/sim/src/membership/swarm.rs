//! The membership swarm (`sweep --suite membership`): the swarm's workload and faults, with an
//! operator that changes the cluster while they strike. Each seed derives its own mix
//! ([`MembershipParams::derive`]):
//!
//! 1. safety: 1 to 7 voters at the start; clients run a linearizable KV workload (reads,
//!    puts, appends; some send each operation to a random server they know); faults strike
//!    (symmetric and one-way partitions, an isolated leader, loss, duplication, reordering,
//!    crashes and restarts, pauses, failing disks, crashes in the middle of a write, and disk
//!    wipes); and one or two operators add servers as learners (promoted automatically or by
//!    the operator), add voters directly, promote, demote, remove (the leader included),
//!    replace voters (learner, caught up, promoted, old one removed), transfer the leadership
//!    (to a named voter or to the most caught-up one), and try to add removed ids back. A wiped
//!    server never comes back under its id: the operator replaces it with a new server (a new
//!    id) and removes the old id. The checkers (I1-I10 among them) run after every event.
//! 2. liveness: every fault is healed (every server that still has its disk restarted); the
//!    operator removes the ids whose disk was lost; then, within a bound, exactly one server
//!    leads, its configuration is committed and every member runs it, no learner marked for
//!    automatic promotion is left, every client's operation completes, a new client's put and
//!    get complete, and for two election timeouts no node that was not removed handles a vote
//!    request from a removed node, nor does the leadership move.
//! 3. the whole history is linearizable, and every acknowledged append is in its key's final
//!    value exactly once.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use kvraft_kv::Op;
use kvraft_raft::{quorum, ClusterConfig, DetRng, MembershipChange, NodeId};
use kvraft_storage::FaultPlan;

use super::operator::{ChangeOutcome, Operator};
use crate::kv_tester::{KvClient, KvTester};
use crate::network::{Unreliability, MS};
use crate::options::SimOptions;
use crate::run::RunReport;
use crate::swarm::{key_name, WorldSetup};
use crate::world::{node_id, server_index, DiskLatency};

/// Virtual time the safety phase lasts.
const SAFETY_MS: u64 = 25_000;
/// After healing, how long the cluster has to converge and serve.
const LIVENESS_BOUND_MS: u64 = 40_000;
/// At most this many members (voters and learners) at a time, and this many servers ever.
const MAX_MEMBERS: usize = 9;
const MAX_SERVERS: usize = 24;
/// At most this many voters.
const MAX_VOTERS: usize = 7;

const FAULT_NAMES: [&str; 8] =
    ["partition", "one-way cut", "crash", "restart", "pause", "heal", "isolate-leader", "wipe"];
const CHANGE_NAMES: [&str; 10] = [
    "add-learner-auto",
    "add-learner",
    "add-voter",
    "promote",
    "demote",
    "remove",
    "replace",
    "transfer-to",
    "transfer",
    "re-add-removed",
];

/// Everything a seed decides about its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipParams {
    /// Voters at the start (every server the world begins with).
    pub voters: usize,
    pub clients: usize,
    pub keys: usize,
    pub read_per_mille: u64,
    pub put_per_mille: u64,
    pub maxraftstate: i64,
    pub unreliability: Option<Unreliability>,
    pub long_reordering: bool,
    pub fault_every_ms: u64,
    /// Relative weights of the faults (see `FAULT_NAMES`).
    pub fault_weights: [u64; 8],
    pub change_every_ms: u64,
    /// Relative weights of the operator's changes (see `CHANGE_NAMES`).
    pub change_weights: [u64; 10],
    /// Operators working at once (two make their compare-and-set race).
    pub operators: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub lease_reads: bool,
    pub follower_reads: bool,
    pub disk_latency: DiskLatency,
    /// Servers the world begins with whose disk fails now and then (a minority).
    pub faulty_disks: usize,
    pub disk_faults: FaultPlan,
    /// Clients that send each operation to a random server they know.
    pub roaming_clients: usize,
}

impl MembershipParams {
    pub fn derive(seed: u64) -> MembershipParams {
        let mut r = DetRng::new(seed ^ 0x4d45_4d42_4552_0000);
        let pick =
            |r: &mut DetRng, options: &[u64]| options[r.below(options.len() as u64) as usize];
        let voters = r.range(1, 8) as usize;
        let clients = r.range(1, 8) as usize;
        let keys = r.range(1, 2 * clients as u64 + 1) as usize;
        let read_per_mille = r.range(100, 600);
        let put_per_mille = r.range(0, 300);
        let maxraftstate = [-1, 2000, 8000, 30_000][r.below(4) as usize];
        let unreliability = r.chance(1, 2).then(|| Unreliability {
            request_drop_per_mille: pick(&mut r, &[0, 10, 50, 100]),
            reply_drop_per_mille: pick(&mut r, &[0, 10, 50, 100]),
            max_delay_ms: pick(&mut r, &[1, 5, 27]),
            duplicate_per_mille: pick(&mut r, &[0, 10, 50]),
        });
        let long_reordering = r.chance(1, 6);
        let fault_every_ms = pick(&mut r, &[500, 1500, 4000]);
        let mut fault_weights = [0; 8];
        for w in &mut fault_weights {
            *w = pick(&mut r, &[0, 1, 3]);
        }
        fault_weights[5] += 1; // always some healing
        let change_every_ms = pick(&mut r, &[200, 700, 2000]);
        let mut change_weights = [0; 10];
        for w in &mut change_weights {
            *w = pick(&mut r, &[0, 1, 3]);
        }
        change_weights[0] += 1; // the cluster always grows now and then
        let operators = if r.chance(1, 4) { 2 } else { 1 };
        let pre_vote = r.chance(3, 4);
        let check_quorum = r.chance(3, 4);
        let lease_reads = r.chance(1, 3);
        let follower_reads = r.chance(1, 2);
        let disk_latency = [
            DiskLatency::SSD,
            DiskLatency { min_us: 50, max_us: 500, spike_per_mille: 20, spike_max_us: 80_000 },
            DiskLatency { min_us: 2_000, max_us: 12_000, spike_per_mille: 0, spike_max_us: 0 },
        ][r.below(3) as usize];
        let faulty_disks =
            if voters >= 3 && r.chance(1, 3) { r.range(1, (voters as u64 - 1) / 2 + 1) } else { 0 };
        let disk_faults = FaultPlan {
            write_error_per_mille: pick(&mut r, &[0, 2, 10]) as u32,
            sync_error_per_mille: pick(&mut r, &[1, 5, 20]) as u32,
            capacity_bytes: None,
        };
        let roaming_clients = r.range(0, clients as u64 + 1) as usize;
        let check_quorum = check_quorum || lease_reads;
        if lease_reads {
            // A lease trusts the leader's clock, which a pause stops (see the swarm).
            fault_weights[4] = 0;
        }
        MembershipParams {
            voters,
            clients,
            keys,
            read_per_mille,
            put_per_mille,
            maxraftstate,
            unreliability,
            long_reordering,
            fault_every_ms,
            fault_weights,
            change_every_ms,
            change_weights,
            operators,
            pre_vote,
            check_quorum,
            lease_reads,
            follower_reads,
            disk_latency,
            faulty_disks: faulty_disks as usize,
            disk_faults,
            roaming_clients,
        }
    }
}

fn weighted(names: &[&str], weights: &[u64]) -> String {
    let parts: Vec<String> = names
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0)
        .map(|(n, w)| format!("{n}:{w}"))
        .collect();
    parts.join(",")
}

impl fmt::Display for MembershipParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "voters={} clients={} keys={} reads={}‰ puts={}‰ maxraftstate={} ",
            self.voters,
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
            "reorder={} fault-every={}ms faults={} change-every={}ms changes={} operators={}",
            self.long_reordering,
            self.fault_every_ms,
            weighted(&FAULT_NAMES, &self.fault_weights),
            self.change_every_ms,
            weighted(&CHANGE_NAMES, &self.change_weights),
            self.operators
        )?;
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
        for (on, name) in [
            (!self.pre_vote, "no-pre-vote"),
            (!self.check_quorum, "no-check-quorum"),
            (self.lease_reads, "lease-reads"),
            (self.follower_reads, "follower-reads"),
        ] {
            if on {
                write!(f, " {name}")?;
            }
        }
        if self.roaming_clients > 0 {
            write!(f, " roaming-clients={}", self.roaming_clients)?;
        }
        Ok(())
    }
}

/// What the tasks of one run share.
#[derive(Clone)]
struct Run {
    t: KvTester,
    p: MembershipParams,
    op: Operator,
}

impl Run {
    fn servers(&self) -> usize {
        self.op.server_count()
    }

    fn pick<T: Copy>(&self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.t.rand(items.len() as u64) as usize])
    }

    /// A server starts (again) on its disk, linked to every server; a faulty disk stays
    /// faulty while `faults` (the safety phase). Never a wiped server under its old id.
    fn restart(&self, server: usize, faults: bool) {
        debug_assert!(!self.op.is_wiped(server));
        let mut w = self.t.sim.world_mut();
        w.start(server);
        for other in 0..w.servers.len() {
            if other != server {
                w.net.set_link(server, other, true);
            }
        }
        if faults && server < self.p.faulty_disks {
            w.servers[server].storage.set_faults(self.p.disk_faults);
        }
    }

    /// Ids of wiped servers that are still members of the leader's configuration.
    fn wiped_members(&self) -> Vec<NodeId> {
        let Some(config) = self.op.config() else { return Vec::new() };
        config.config.members().into_iter().filter(|id| self.wiped_id(*id)).collect()
    }

    fn wiped_id(&self, id: NodeId) -> bool {
        self.op.is_wiped(server_index(id))
    }

    /// Voters of `config` whose disk is intact, other than `except`.
    fn intact_voters(&self, config: &ClusterConfig, except: NodeId) -> usize {
        config.membership.voters().filter(|v| *v != except && !self.wiped_id(*v)).count()
    }

    /// Wipes a server's disk, if the cluster keeps a majority of intact voters in its latest
    /// and committed configurations even if the server were a voter (a promotion of it may be
    /// on its way: the leader's view of who is alive lags by up to an election timeout), and
    /// no other wiped server is still a voter, and no operator is forcing a change (see
    /// `Operator::is_forcing`). Beyond that, no quorum could ever form again: a lost disk is
    /// not a crash.
    fn maybe_wipe(&self) {
        let server = self.t.rand(self.servers() as u64) as usize;
        if self.op.is_wiped(server) || self.op.is_forcing() {
            return;
        }
        let (Some(latest), Some(committed)) = (self.op.config(), self.op.committed_config()) else {
            return;
        };
        let id = node_id(server);
        for config in [&latest.config, &committed.config] {
            let voters = config.membership.voters().filter(|v| *v != id).count() + 1;
            if config.membership.voters().any(|v| self.wiped_id(v))
                || self.intact_voters(config, id) < quorum::majority(voters)
            {
                return;
            }
        }
        self.t.sim.world_mut().wipe(server);
        self.op.mark_wiped(server);
        self.op
            .log
            .borrow_mut()
            .push(format!("{:>7} ms  wiped server {server} (node {id})", self.t.sim.now_ms()));
    }

    /// Links within each group enabled, across disabled; every server in one of two groups.
    fn random_partition(&self) {
        let n = self.servers();
        let groups: Vec<u64> = (0..n).map(|_| self.t.rand(2)).collect();
        let mut w = self.t.sim.world_mut();
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    w.net.set_one_way(a, b, groups[a] == groups[b]);
                }
            }
        }
    }

    fn isolate_leader(&self) {
        let Some(leader) = self.op.leader() else { return };
        let clients = self.t.sim.world().client_count();
        let cut: Vec<usize> = (0..clients).filter(|_| self.t.rand(2) == 0).collect();
        let mut w = self.t.sim.world_mut();
        for other in (0..w.servers.len()).filter(|&o| o != leader) {
            w.net.set_link(leader, other, false);
        }
        for client in cut {
            w.set_client_end(client, leader, false);
        }
    }

    /// Every link between servers and every client end enabled.
    fn heal(&self) {
        let mut w = self.t.sim.world_mut();
        let n = w.servers.len();
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    w.net.set_one_way(a, b, true);
                }
            }
        }
        for client in 0..w.client_count() {
            for server in 0..n {
                w.set_client_end(client, server, true);
            }
        }
    }

    fn new_disk_faults(&self) -> Option<FaultPlan> {
        (self.p.faulty_disks > 0 && self.t.rand(4) == 0).then_some(self.p.disk_faults)
    }
}

async fn client(
    r: Run,
    cli: usize,
    ck: Rc<KvClient>,
    stop: Rc<Cell<bool>>,
    acked: Rc<RefCell<Vec<(String, String)>>>,
) {
    let p = &r.p;
    let roaming = cli < p.roaming_clients;
    let mut j = 0;
    while !stop.get() {
        let (key, append_only) = key_name(r.t.rand(p.keys as u64) as usize, p.keys);
        let roll = r.t.rand(1000);
        let token = format!("c{cli}.{j};");
        let first = if roaming { r.pick(&ck.servers()) } else { None };
        if roll < p.read_per_mille {
            r.t.get_from(&ck, first, &key, true, cli as u64).await;
        } else if !append_only && roll < p.read_per_mille + p.put_per_mille {
            let op = Op::Put { key: key.clone(), value: token.clone() };
            r.t.write(&ck, first, op, true, cli as u64).await;
            j += 1;
        } else {
            let op = Op::Append { key: key.clone(), value: token.clone() };
            r.t.write(&ck, first, op, true, cli as u64).await;
            if append_only {
                acked.borrow_mut().push((key, token));
            }
            j += 1;
        }
    }
}

/// Strikes faults at random until told to stop.
async fn fault_injector(r: Run, stop: Rc<Cell<bool>>) {
    let total: u64 = r.p.fault_weights.iter().sum();
    while !stop.get() {
        r.t.sleep(1 + r.t.rand(2 * r.p.fault_every_ms)).await;
        if stop.get() {
            break;
        }
        let mut roll = r.t.rand(total);
        let kind = r.p.fault_weights.iter().position(|w| {
            if roll < *w {
                true
            } else {
                roll -= w;
                false
            }
        });
        let n = r.servers() as u64;
        match kind.expect("weights sum to total") {
            0 => r.random_partition(),
            1 => {
                let (a, b) = (r.t.rand(n) as usize, r.t.rand(n) as usize);
                r.t.sim.world_mut().net.set_one_way(a, b, false);
            }
            2 => r.t.shutdown_server(r.t.rand(n) as usize),
            3 => {
                let s = r.t.rand(n) as usize;
                if !r.t.sim.world().is_alive(s) && !r.op.is_wiped(s) {
                    r.restart(s, true);
                }
            }
            4 => {
                let until = r.t.sim.now_us() + (100 + r.t.rand(3000)) * MS;
                let server = r.t.rand(n) as usize;
                r.t.sim.world_mut().pause(server, until);
            }
            5 => r.heal(),
            6 => r.isolate_leader(),
            _ => r.maybe_wipe(),
        }
    }
}

/// A member whose disk was lost is replaced (a voter: by a new server, under a new id) or
/// removed (a learner). True if there was one.
async fn replace_lost_member(r: &Run) -> bool {
    let Some(lost) = r.wiped_members().first().copied() else { return false };
    let op = &r.op;
    let voter = op.config().is_some_and(|c| c.config.membership.is_voter(lost));
    if voter {
        op.replace(lost, r.t.rand(2) == 0, r.new_disk_faults()).await;
    } else {
        op.change(MembershipChange::Remove { id: lost }, true).await;
    }
    true
}

/// An operator re-adds a removed id (say, a wiped server set up again under its old name):
/// refused, since ids are never reused (scenario 10; a configuration that let it back in would
/// break I7 as soon as the leader appended it).
async fn readd_removed(r: &Run, config: &ClusterConfig) {
    let removed: Vec<NodeId> = config.removed.iter().copied().collect();
    if let Some(id) = r.pick(&removed) {
        let server = server_index(id);
        let change = MembershipChange::AddLearner {
            id: Some(id),
            address: format!("sim-{server}"),
            auto_promote: false,
        };
        r.op.change(change, false).await;
    }
}

/// One change of the operator's, drawn by weight (some draws find nothing to do). A server
/// that lost its disk is replaced first.
async fn one_change(r: &Run) {
    let op = &r.op;
    if replace_lost_member(r).await {
        return;
    }
    let Some(config) = op.config() else { return };
    let m = &config.config.membership;
    let voters: Vec<NodeId> = m.voters().filter(|v| !r.wiped_id(*v)).collect();
    let learners: Vec<NodeId> = m.learners().iter().copied().collect();
    let members = config.config.members().len();
    let room = members < MAX_MEMBERS && r.servers() < MAX_SERVERS;
    let total: u64 = r.p.change_weights.iter().sum();
    let mut roll = r.t.rand(total);
    let kind = r.p.change_weights.iter().position(|w| {
        if roll < *w {
            true
        } else {
            roll -= w;
            false
        }
    });
    match kind.expect("weights sum to total") {
        0 | 1 if room => {
            op.add_learner(kind == Some(0), r.new_disk_faults()).await;
        }
        2 if room && voters.len() < MAX_VOTERS => {
            // A voter with an empty log: accepted only if the voters the leader heard from are
            // a majority of the new configuration (R12; the new server does not count).
            let server = op.start_new_server(r.new_disk_faults());
            let id = node_id(server);
            let change =
                MembershipChange::AddVoter { id: Some(id), address: format!("sim-{server}") };
            op.change(change, false).await;
        }
        3 if m.voters().count() < MAX_VOTERS => {
            if let Some(id) = r.pick(&learners) {
                op.change(MembershipChange::Promote { id }, false).await;
            }
        }
        4 if voters.len() > 1 => {
            if let Some(id) = r.pick(&voters) {
                op.change(MembershipChange::Demote { id }, true).await;
            }
        }
        5 => {
            let all: Vec<NodeId> = config.config.members().into_iter().collect();
            if let Some(id) = r.pick(&all) {
                if !(m.is_voter(id) && m.voters().count() == 1) {
                    op.change(MembershipChange::Remove { id }, true).await;
                }
            }
        }
        6 if room => {
            if let Some(old) = r.pick(&voters) {
                op.replace(old, r.t.rand(2) == 0, r.new_disk_faults()).await;
            }
        }
        7 => {
            let leader = op.leader().map(node_id);
            let others: Vec<NodeId> =
                voters.iter().copied().filter(|v| Some(*v) != leader).collect();
            if let Some(target) = r.pick(&others) {
                op.transfer(Some(target)).await;
            }
        }
        8 => {
            op.transfer(None).await;
        }
        9 => readd_removed(r, &config.config).await,
        _ => {}
    }
}

async fn operator(r: Run, stop: Rc<Cell<bool>>) {
    while !stop.get() {
        r.t.sleep(1 + r.t.rand(2 * r.p.change_every_ms)).await;
        if stop.get() {
            break;
        }
        one_change(&r).await;
    }
}

/// Why the cluster has not converged yet (None once it has): one leader, its configuration
/// committed and run by every member, no learner waiting for automatic promotion.
fn not_converged(r: &Run) -> Option<String> {
    let w = r.t.sim.world();
    let leaders: Vec<usize> =
        (0..w.servers.len()).filter(|&s| w.node(s).is_some_and(|n| n.is_leader())).collect();
    let [leader] = leaders[..] else {
        return Some(format!("servers {leaders:?} lead"));
    };
    let node = w.node(leader).expect("leads");
    let config = node.cluster_config();
    if node.committed_cluster_config() != config {
        return Some(format!("the configuration at {} is not committed", config.index));
    }
    if !config.config.auto_promote.is_empty() {
        return Some(format!("learners {:?} wait for promotion", config.config.auto_promote));
    }
    for id in config.config.members() {
        let s = server_index(id);
        match w.servers.get(s).and_then(|_| w.node(s)) {
            None => return Some(format!("member {id} does not run")),
            Some(n) if n.cluster_config() != config => {
                return Some(format!(
                    "member {id} runs the configuration at {}, the leader {}",
                    n.cluster_config().index,
                    config.index
                ))
            }
            Some(_) => {}
        }
    }
    None
}

/// Phase 2's first half: heal every fault, restart every server that has its disk, and have
/// the operator remove the ids whose disk was lost.
async fn heal_all(r: &Run) {
    {
        let mut w = r.t.sim.world_mut();
        w.net.reliable = true;
        w.net.long_reordering = false;
        for s in 0..w.servers.len() {
            w.servers[s].storage.set_faults(FaultPlan::NONE);
        }
    }
    for s in 0..r.servers() {
        if !r.t.sim.world().is_alive(s) && !r.op.is_wiped(s) {
            r.restart(s, false);
        }
    }
    r.heal();
}

async fn reconcile(r: &Run, healed_at: u64) {
    loop {
        let lost = r.wiped_members();
        if lost.is_empty() && r.op.leader().is_some() {
            return;
        }
        if r.op.leader().is_none() {
            assert!(
                r.t.sim.now_ms() - healed_at < LIVENESS_BOUND_MS,
                "liveness: no leader {} s after healing\n{}",
                LIVENESS_BOUND_MS / 1000,
                context(r)
            );
            r.t.sleep(100).await;
            continue;
        }
        assert!(
            r.t.sim.now_ms() - healed_at < LIVENESS_BOUND_MS,
            "liveness: the ids {lost:?} of lost disks are still members {} s after healing\n{}",
            LIVENESS_BOUND_MS / 1000,
            context(r)
        );
        for id in lost {
            if let ChangeOutcome::Refused(e) =
                r.op.change(MembershipChange::Remove { id }, true).await
            {
                r.op.log.borrow_mut().push(format!("removing lost node {id} refused: {e}"));
                r.t.sleep(200).await;
            }
        }
    }
}

/// The world as the seed wants it: Raft options, servers started and connected, the network's
/// and the disks' faults set.
fn setup(t: &KvTester, p: &MembershipParams) -> Run {
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
    .apply(t);
    Run { t: t.clone(), p: p.clone(), op: Operator::new(t.clone()) }
}

/// Phase 2 after the heal: the cluster converges, every client finishes, a new client is
/// served, and removed nodes stay silent. Returns the new client.
async fn converge(r: &Run, healed_at: u64, done: &Cell<usize>) -> KvClient {
    let (t, p) = (&r.t, &r.p);
    while let Some(why) = not_converged(r) {
        assert!(
            t.sim.now_ms() - healed_at < LIVENESS_BOUND_MS,
            "liveness: not converged {} s after healing: {why}\n{}",
            LIVENESS_BOUND_MS / 1000,
            context(r)
        );
        t.sleep(100).await;
    }
    while done.get() < p.clients {
        assert!(
            t.sim.now_ms() - healed_at < LIVENESS_BOUND_MS,
            "liveness: {} of {} clients still blocked {} s after healing\n{}",
            p.clients - done.get(),
            p.clients,
            LIVENESS_BOUND_MS / 1000,
            context(r)
        );
        t.sleep(100).await;
    }
    let members: Vec<usize> =
        r.op.config()
            .map(|c| c.config.members().into_iter().map(server_index).collect())
            .unwrap_or_default();
    let fresh = t.make_client_of(&members, &members);
    let cli = p.clients as u64;
    t.put(&fresh, "liveness", "ok", true, cli).await;
    assert_eq!(t.get(&fresh, "liveness", true, cli).await, "ok");
    assert!(
        t.sim.now_ms() - healed_at < LIVENESS_BOUND_MS,
        "liveness: a new request took until {} ms after healing",
        t.sim.now_ms() - healed_at
    );

    // Removed nodes are silent: once each removed node that was restarted had the time to
    // campaign once and be told it was removed, for two long election timeouts no node that
    // was not removed handles a vote request from one, and the leadership stays where it is.
    t.sleep(2000).await;
    let before = (t.sim.world().checker.removed_votes_delivered, r.op.leader(), leader_term(r));
    t.sleep(2 * 2 * 600).await;
    let after = (t.sim.world().checker.removed_votes_delivered, r.op.leader(), leader_term(r));
    assert_eq!(
        before,
        after,
        "removed nodes are not silent: (vote requests from removed nodes handled by nodes not \
         removed, leader, term) went from {before:?} to {after:?}\n{}",
        context(r)
    );
    fresh
}

async fn membership_swarm(t: KvTester, p: MembershipParams) {
    t.begin(&format!("Membership swarm: {p}"));
    let r = setup(&t, &p);
    let stop_clients = Rc::new(Cell::new(false));
    let stop_faults = Rc::new(Cell::new(false));
    let stop_operators = Rc::new(Cell::new(false));
    let acked = Rc::new(RefCell::new(Vec::new()));
    let done = Rc::new(Cell::new(0usize));
    for cli in 0..p.clients {
        let ck = Rc::new(t.make_client(&t.all()));
        r.op.register_client(ck.clone());
        let (r2, stop, acked, done) =
            (r.clone(), stop_clients.clone(), acked.clone(), done.clone());
        t.sim.spawn(async move {
            client(r2, cli, ck, stop, acked).await;
            done.set(done.get() + 1);
        });
    }
    let injector = t.sim.spawn(fault_injector(r.clone(), stop_faults.clone()));
    let operators: Vec<_> = (0..p.operators)
        .map(|_| t.sim.spawn(operator(r.clone(), stop_operators.clone())))
        .collect();

    // Phase 1: safety under faults and changes.
    t.sleep(SAFETY_MS).await;
    stop_faults.set(true);
    stop_clients.set(true);
    stop_operators.set(true);
    injector.await;

    // Phase 2: heal; the operators finish what they were doing; lost ids are removed; the
    // cluster must converge and serve.
    heal_all(&r).await;
    let healed_at = t.sim.now_ms();
    for o in operators {
        o.await;
    }
    reconcile(&r, healed_at).await;
    // Servers an operator started meanwhile are up; make sure every link is.
    heal_all(&r).await;
    let fresh = converge(&r, healed_at, &done).await;

    // Phase 3: every acknowledged append is present exactly once; the history is linearizable.
    let mut final_values = std::collections::HashMap::new();
    let cli = p.clients as u64;
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

/// Every server's state, one line each, for failure messages.
fn cluster_summary(r: &Run) -> String {
    let w = r.t.sim.world();
    let mut lines = Vec::new();
    for s in 0..w.servers.len() {
        let line = match w.node(s) {
            None if r.op.is_wiped(s) => format!("server {s} (node {}): wiped", node_id(s)),
            None => format!("server {s} (node {}): down", node_id(s)),
            Some(n) => {
                let c = n.cluster_config();
                format!(
                    "server {s} (node {}): {:?} term {} leader {:?} commit {} last {} removed {} \
                     config@{} voters {:?} learners {:?} auto {:?} removed {:?} (committed @{})",
                    n.id(),
                    n.role(),
                    n.term(),
                    n.leader(),
                    n.commit_index(),
                    n.last_index(),
                    n.is_removed(),
                    c.index,
                    c.config.membership.voters().map(|v| v.0).collect::<Vec<_>>(),
                    c.config.membership.learners().iter().map(|v| v.0).collect::<Vec<_>>(),
                    c.config.auto_promote.iter().map(|v| v.0).collect::<Vec<_>>(),
                    c.config.removed.iter().map(|v| v.0).collect::<Vec<_>>(),
                    n.committed_cluster_config().index
                )
            }
        };
        lines.push(line);
    }
    lines.join("\n")
}

/// The failure message's context: the cluster, and what the operators did last.
fn context(r: &Run) -> String {
    format!("cluster:\n{}\noperator, last actions:\n{}", cluster_summary(r), r.op.recent_log(25))
}

fn leader_term(r: &Run) -> Option<u64> {
    let leader = r.op.leader()?;
    r.t.sim.world().node(leader).map(|n| n.term().0)
}

/// Runs the membership swarm scenario of `seed`.
pub fn run_membership_swarm(seed: u64, options: &SimOptions) -> RunReport {
    let p = MembershipParams::derive(seed);
    if !options.quiet {
        println!("membership swarm seed {seed}: {p}");
    }
    let tester = KvTester::with_follower_reads(
        seed,
        options,
        p.voters,
        false,
        p.maxraftstate,
        p.follower_reads,
    );
    let summary =
        tester.sim.block_on(membership_swarm(tester.clone(), p), crate::raft_tester::TEST_LIMIT_MS);
    let w = tester.sim.world();
    let figures = format!(
        "{:5.1} s  {} events  {} servers  {} disk failures",
        w.now_us as f64 / 1e6,
        w.events_processed,
        w.servers.len(),
        w.disk_failures.len()
    );
    RunReport { summary, figures: Some(figures) }
}
