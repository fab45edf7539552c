//! What the membership scenarios (`membership_scenarios.rs`) share: running a scenario under
//! seeds with a reproduce command, a KV cluster in the simulated world with handles to steer
//! it (crashes, partitions, message rules, stepping event by event to one precise moment),
//! administration calls with their exact answers, a KV workload whose appends are checked
//! exactly once, and the convergence check the design asks for after a heal.

#![allow(dead_code)] // each test binary uses its own part

use std::cell::{Cell, Ref, RefCell};
use std::collections::BTreeSet;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use kvraft_raft::{
    ChangeRequest, ConfigState, MembershipChange, Message, NodeId, RawNode, Role, Term,
};
use kvraft_replica::{AdminReply, AdminRequest};
use kvraft_sim::exec::JoinHandle;
use kvraft_sim::kv_tester::{check_clnt_appends, KvClient, KvTester};
use kvraft_sim::membership::operator::Operator;
use kvraft_sim::options::SimOptions;
use kvraft_sim::world::scripted::RuleAction;
use kvraft_sim::world::{node_id, server_index, sim_raft_config, World};

/// Virtual time a scenario may run, in all.
pub const LIMIT_MS: u64 = 600_000;
/// How long one administration call waits for its answer.
pub const ADMIN_TIMEOUT_MS: u64 = 3000;
/// The simulated peers' base election timeout (30 ticks of 10 ms).
pub const ELECTION_MS: u64 = 300;

/// The test file the scenarios live in, for reproduce commands.
const TARGET: &str = "membership_scenarios";

/// The environment's options (`SIM_SEED`, `SIM_STORAGE`, ...), quiet.
pub fn options() -> SimOptions {
    SimOptions { quiet: true, ..SimOptions::from_process_env().clone() }
}

/// The one-line command that runs scenario `name` under `seed` alone, with this build's planted
/// bugs.
pub fn reproduce_command(name: &str, seed: u64) -> String {
    let features: String =
        kvraft_sim::planted_bugs().iter().map(|bug| format!(" --features {bug}")).collect();
    format!(
        "SIM_SEED={seed} {}cargo test --release -p kvraft-sim{features} --test {TARGET} -- \
         --exact {name}",
        options().reproduce_env()
    )
}

/// Runs `body` under each of `seeds` (only `SIM_SEED` if set); each seed is announced before it
/// runs, and a failure names its seed and the command that reproduces it, then fails the test.
pub fn run_seeds(name: &str, seeds: impl IntoIterator<Item = u64>, body: impl Fn(u64)) {
    let options = options();
    let seeds: Vec<u64> = match options.seed {
        Some(seed) => vec![seed],
        None => seeds.into_iter().collect(),
    };
    for seed in seeds {
        eprintln!("{name}: seed {seed}, {options}");
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| body(seed))) {
            eprintln!(
                "FAILED {name} with seed {seed}, {options}\n  reproduce: {}",
                reproduce_command(name, seed)
            );
            panic::resume_unwind(payload);
        }
    }
}

/// The seeds each scenario runs (unless `SIM_SEED` names one).
pub const SEEDS: std::ops::RangeInclusive<u64> = 1..=3;

/// Runs `body` on a fresh cluster built by `setup`, under each seed (see `run_seeds`).
pub fn scenario<F: Future<Output = ()> + 'static>(name: &str, setup: Setup, body: fn(Cx) -> F) {
    run_seeds(name, SEEDS, |seed| {
        let cx = Cx::with(seed, setup);
        cx.run(body(cx.clone()));
    });
}

/// How a scenario's cluster is built.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// Servers started as the bootstrap voters.
    pub voters: usize,
    /// The replicas' snapshot threshold (`maxraftstate`; -1: never).
    pub maxraftstate: i64,
    /// Leader-lease reads on every peer.
    pub lease_reads: bool,
    /// labrpc's unreliable network (loss, delay) between everyone, clients included.
    pub unreliable: bool,
    /// The bootstrap configuration written to each initial server's disk before its first
    /// start, as the server does when it creates a data directory.
    pub durable_bootstrap: bool,
}

impl Setup {
    pub fn voters(voters: usize) -> Setup {
        Setup {
            voters,
            maxraftstate: -1,
            lease_reads: false,
            unreliable: false,
            durable_bootstrap: false,
        }
    }
}

/// A scenario's handle on its cluster (cheap to clone into tasks).
#[derive(Clone, Debug)]
pub struct Cx {
    pub t: KvTester,
    pub op: Operator,
    pub seed: u64,
    clients: Rc<Cell<u64>>,
    /// Servers cut off by `isolate` (until `reconnect` or `heal`): restarts and new servers
    /// do not link to them.
    isolated: Rc<RefCell<BTreeSet<usize>>>,
}

impl Cx {
    pub fn new(seed: u64, voters: usize) -> Cx {
        Cx::with(seed, Setup::voters(voters))
    }

    /// A cluster of `setup.voters` bootstrap voters, started and connected.
    pub fn with(seed: u64, setup: Setup) -> Cx {
        let t = KvTester::new(seed, &options(), setup.voters, setup.unreliable, setup.maxraftstate);
        if setup.lease_reads {
            t.sim.world_mut().raft_config = Box::new(|id, voters| {
                let mut c = sim_raft_config(id, voters);
                c.lease_reads = true;
                c
            });
        }
        if setup.lease_reads || setup.durable_bootstrap {
            // Started again before anything happened, as the setup asks.
            for i in 0..setup.voters {
                if setup.durable_bootstrap {
                    let mut w = t.sim.world_mut();
                    w.crash(i);
                    w.write_bootstrap_config(i);
                }
                t.start_server(i);
            }
            t.connect_all();
        }
        let op = Operator::new(t.clone());
        Cx { t, op, seed, clients: Rc::new(Cell::new(0)), isolated: Rc::default() }
    }

    /// Runs `body` to completion in virtual time.
    pub fn run(&self, body: impl Future<Output = ()> + 'static) {
        self.t.sim.block_on(body, LIMIT_MS);
    }

    pub fn world(&self) -> Ref<'_, World> {
        self.t.sim.world()
    }

    pub fn now_ms(&self) -> u64 {
        self.t.sim.now_ms()
    }

    pub fn servers(&self) -> usize {
        self.world().servers.len()
    }

    pub fn alive(&self, server: usize) -> bool {
        self.world().is_alive(server)
    }

    /// `f` of a running server's Raft node.
    pub fn with_node<R>(&self, server: usize, f: impl FnOnce(&RawNode) -> R) -> Option<R> {
        self.world().node(server).map(f)
    }

    /// `f` of a running server's Raft node; panics if it is down.
    pub fn node<R>(&self, server: usize, f: impl FnOnce(&RawNode) -> R) -> R {
        self.with_node(server, f).unwrap_or_else(|| panic!("server {server} is down"))
    }

    pub fn term(&self, server: usize) -> Term {
        self.node(server, |n| n.term())
    }

    pub fn role(&self, server: usize) -> Role {
        self.node(server, |n| n.role())
    }

    /// The configuration in effect on a running server.
    pub fn config(&self, server: usize) -> ConfigState {
        self.node(server, |n| n.cluster_config().clone())
    }

    pub fn committed_config(&self, server: usize) -> ConfigState {
        self.node(server, |n| n.committed_cluster_config().clone())
    }

    /// The running server that leads with the highest term.
    pub fn leader(&self) -> Option<usize> {
        self.op.leader()
    }

    /// Running servers whose configuration and commit index are whatever they are: those
    /// that lead, by term.
    pub fn leaders(&self) -> Vec<usize> {
        (0..self.servers())
            .filter(|&s| self.with_node(s, |n| n.is_leader()) == Some(true))
            .collect()
    }

    // ----- faults -----

    /// Kills a server (its disk stays).
    pub fn crash(&self, server: usize) {
        self.t.sim.world_mut().crash(server);
    }

    /// Starts a server from its disk and, unless it is isolated, links it to every server
    /// that is not.
    pub fn restart(&self, server: usize) {
        self.t.sim.world_mut().start(server);
        if !self.isolated.borrow().contains(&server) {
            self.link(server);
        }
    }

    /// Enables the links between `server` and every server not isolated.
    fn link(&self, server: usize) {
        let mut w = self.t.sim.world_mut();
        for other in 0..w.servers.len() {
            if other != server && !self.isolated.borrow().contains(&other) {
                w.net.set_link(server, other, true);
            }
        }
    }

    /// Starts a server from its disk, with (`--cluster`) or without its bootstrap voters, and
    /// links it as `restart` does.
    pub fn restart_with_bootstrap(&self, server: usize, bootstrap: bool) {
        self.t.sim.world_mut().set_bootstrap(server, bootstrap);
        self.restart(server);
    }

    /// Cuts every link of `server` (it runs on; clients and the operator still reach it).
    pub fn isolate(&self, server: usize) {
        self.isolated.borrow_mut().insert(server);
        let mut w = self.t.sim.world_mut();
        for other in 0..w.servers.len() {
            w.net.set_link(server, other, false);
        }
    }

    /// Links `server` to every server not isolated again.
    pub fn reconnect(&self, server: usize) {
        self.isolated.borrow_mut().remove(&server);
        self.link(server);
    }

    /// Links within each group, none across; servers in no group keep their links.
    pub fn partition(&self, groups: &[&[usize]]) {
        let mut w = self.t.sim.world_mut();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                for &x in a.iter() {
                    for &y in b.iter() {
                        if x != y {
                            w.net.set_link(x, y, i == j);
                        }
                    }
                }
            }
        }
    }

    /// Every link up, every rule gone.
    pub fn heal(&self) {
        self.isolated.borrow_mut().clear();
        let mut w = self.t.sim.world_mut();
        w.net.connect_all();
        w.clear_message_rules();
    }

    pub fn add_rule(
        &self,
        name: &str,
        action: RuleAction,
        matches: impl Fn(&Message) -> bool + 'static,
    ) {
        self.t.sim.world_mut().add_message_rule(name, action, matches);
    }

    pub fn remove_rule(&self, name: &str) {
        self.t.sim.world_mut().remove_message_rule(name);
    }

    pub fn rule_hits(&self, name: &str) -> u64 {
        self.world().message_rule_hits(name)
    }

    /// Runs the world one event at a time (outside any task) until `pred` holds, for at most
    /// `max_ms` of virtual time. Tasks woken meanwhile run at the next `run`.
    pub fn step_until(&self, what: &str, max_ms: u64, mut pred: impl FnMut(&Cx) -> bool) {
        let deadline = self.now_ms() + max_ms;
        while !pred(self) {
            let stepped = {
                let mut w = self.t.sim.world_mut();
                w.flush_proposals();
                w.step()
            };
            match stepped {
                None => panic!("{what}: the world ran out of events"),
                Some(Some(waker)) => waker.wake(),
                Some(None) => {}
            }
            assert!(self.now_ms() <= deadline, "{what}: not within {max_ms} ms");
        }
    }

    // ----- waiting -----

    pub fn sleep(&self, ms: u64) -> kvraft_sim::sim::Sleep {
        self.t.sleep(ms)
    }

    /// Waits (polling every 10 ms) until `pred` holds; panics after `bound_ms`.
    pub async fn wait_until(&self, what: &str, bound_ms: u64, pred: impl Fn(&Cx) -> bool) {
        let start = self.now_ms();
        while !pred(self) {
            assert!(self.now_ms() - start <= bound_ms, "{what}: not within {bound_ms} ms");
            self.sleep(10).await;
        }
    }

    /// Waits for a leader; panics after `bound_ms`.
    pub async fn wait_leader(&self, bound_ms: u64) -> usize {
        self.wait_until("a leader", bound_ms, |cx| cx.leader().is_some()).await;
        self.leader().expect("checked")
    }

    /// Waits until `server`'s disk holds its whole log (nothing in flight).
    pub fn durable_last_index(&self, server: usize) -> kvraft_raft::LogIndex {
        let w = self.world();
        let d = w.servers[server].storage.durable_state();
        d.entries.last().map_or(d.snapshot.meta.index, |e| e.index)
    }

    // ----- administration -----

    /// One administration call to `server`: its answer, or None (down, or no answer in time).
    pub async fn admin(&self, server: usize, req: AdminRequest) -> Option<AdminReply> {
        self.t.sim.admin_call(server, req, ADMIN_TIMEOUT_MS).await
    }

    /// A membership change sent to `server` as is.
    pub async fn change_at(&self, server: usize, request: ChangeRequest) -> Option<AdminReply> {
        self.admin(server, AdminRequest::ChangeMembership(request)).await
    }

    /// `change` (no compare-and-set, no force) sent to `server`.
    pub async fn change(&self, server: usize, change: MembershipChange) -> Option<AdminReply> {
        self.change_at(server, ChangeRequest::new(change)).await
    }

    /// `change` with force, sent to `server`.
    pub async fn force(&self, server: usize, change: MembershipChange) -> Option<AdminReply> {
        let request = ChangeRequest { change, expected_config_index: None, force: true };
        self.change_at(server, request).await
    }

    /// A leadership transfer asked of `server`.
    pub async fn transfer_at(&self, server: usize, target: Option<NodeId>) -> Option<AdminReply> {
        self.admin(server, AdminRequest::TransferLeadership { target }).await
    }

    /// Asks the leader for `request` until an answer other than "ask again" (no answer, not
    /// the leader, the term barrier, a change pending, a transfer, an interruption whose
    /// change did not take) comes; panics after `bound_ms`.
    pub async fn change_settled(&self, request: ChangeRequest, bound_ms: u64) -> AdminReply {
        use kvraft_raft::ChangeError as C;
        use kvraft_replica::AdminError as A;
        let start = self.now_ms();
        loop {
            assert!(
                self.now_ms() - start <= bound_ms,
                "{:?}: no settled answer within {bound_ms} ms",
                request.change
            );
            let Some(leader) = self.leader() else {
                self.sleep(20).await;
                continue;
            };
            match self.change_at(leader, request.clone()).await {
                None
                | Some(Err(A::NotLeader { .. }))
                | Some(Err(A::Interrupted { .. }))
                | Some(Err(A::Refused(
                    C::TermBarrier | C::ChangePending { .. } | C::Transferring { .. },
                ))) => self.sleep(50).await,
                Some(answer) => return answer,
            }
        }
    }

    /// `change` on the leader, retried until it is done; panics on a refusal.
    pub async fn must_change(&self, change: MembershipChange, force: bool) -> ConfigState {
        let request = ChangeRequest { change: change.clone(), expected_config_index: None, force };
        match self.change_settled(request, 30_000).await {
            Ok(kvraft_replica::AdminOutcome::Changed { config, .. }) => config,
            other => panic!("{change:?}: {other:?}"),
        }
    }

    // ----- servers joining -----

    /// A new server (empty disk, no configuration), started and linked to every server, known
    /// to every registered client. Returns its index (its node id is one more).
    pub fn new_server(&self) -> usize {
        let server = self.op.start_new_server(None);
        let mut w = self.t.sim.world_mut();
        for &cut in self.isolated.borrow().iter() {
            w.net.set_link(server, cut, false);
        }
        server
    }

    /// A new server added as a learner (`auto_promote` or not); returns it once the addition
    /// is committed.
    pub async fn add_learner(&self, auto_promote: bool) -> usize {
        let server = self.new_server();
        self.must_change(learner(server, auto_promote), false).await;
        server
    }

    /// Waits until the leader holds `server` caught up; panics after `bound_ms`.
    pub async fn wait_caught_up(&self, server: usize, bound_ms: u64) {
        assert!(
            self.op.wait_caught_up(node_id(server), bound_ms).await,
            "server {server} not caught up within {bound_ms} ms"
        );
    }

    // ----- clients -----

    /// A clerk that knows every server and is told of new ones.
    pub fn client(&self) -> Rc<KvClient> {
        let servers: Vec<usize> = (0..self.servers()).collect();
        let ck = Rc::new(self.t.make_client_of(&servers, &servers));
        self.op.register_client(ck.clone());
        ck
    }

    /// A fresh client number for the history.
    pub fn next_client_number(&self) -> u64 {
        let n = self.clients.get();
        self.clients.set(n + 1);
        n
    }

    // ----- convergence -----

    /// Waits until one leader runs a committed configuration that every running member runs
    /// too, with no learner marked for promotion left waiting, and returns it (the design's
    /// liveness after a heal). Panics after `bound_ms` with what is missing.
    pub async fn converge(&self, bound_ms: u64) -> ConfigState {
        let start = self.now_ms();
        loop {
            match self.not_converged() {
                None => return self.config(self.leader().expect("converged")),
                Some(why) => assert!(
                    self.now_ms() - start <= bound_ms,
                    "not converged within {bound_ms} ms: {why}\n{}",
                    self.summary()
                ),
            }
            self.sleep(20).await;
        }
    }

    fn not_converged(&self) -> Option<String> {
        let Some(leader) = self.leader() else { return Some("no leader".into()) };
        let (config, committed, commit) = self.node(leader, |n| {
            (n.cluster_config().clone(), n.committed_cluster_config().clone(), n.commit_index())
        });
        if self.node(leader, |n| n.log().term(n.commit_index()) != Some(n.term())) {
            return Some("the leader has not committed an entry of its term".into());
        }
        if config != committed {
            return Some(format!("the leader's configuration at {} is pending", config.index));
        }
        if config.config.auto_promote.iter().any(|l| config.config.membership.is_learner(*l)) {
            return Some("a learner waits for promotion".into());
        }
        for id in config.config.members() {
            let server = server_index(id);
            if server >= self.servers() {
                continue;
            }
            let Some((theirs, their_commit)) =
                self.with_node(server, |n| (n.cluster_config().clone(), n.commit_index()))
            else {
                continue;
            };
            if theirs != config || their_commit < commit {
                return Some(format!(
                    "server {server} runs the configuration at {} (commit {their_commit}), the \
                     leader the one at {} (commit {commit})",
                    theirs.index, config.index
                ));
            }
        }
        None
    }

    /// One line per server: role, term, configuration, commit.
    pub fn summary(&self) -> String {
        (0..self.servers())
            .map(|s| {
                match self.with_node(s, |n| {
                    format!(
                        "  server {s} (node {}): {:?} term {} commit {} config@{} voters {:?} \
                     learners {:?} removed {:?}{}",
                        n.id(),
                        n.role(),
                        n.term(),
                        n.commit_index(),
                        n.cluster_config().index,
                        n.cluster_config().config.membership.voters().collect::<Vec<_>>(),
                        n.cluster_config().config.membership.learners(),
                        n.cluster_config().config.removed,
                        if n.is_removed() { " (knows it was removed)" } else { "" }
                    )
                }) {
                    Some(line) => line,
                    None => format!("  server {s}: down"),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `AddLearner` for `server` under its own node id.
pub fn learner(server: usize, auto_promote: bool) -> MembershipChange {
    MembershipChange::AddLearner {
        id: Some(node_id(server)),
        address: format!("sim-{server}"),
        auto_promote,
    }
}

/// `AddVoter` for `server` under its own node id.
pub fn voter(server: usize) -> MembershipChange {
    MembershipChange::AddVoter { id: Some(node_id(server)), address: format!("sim-{server}") }
}

pub fn promote(server: usize) -> MembershipChange {
    MembershipChange::Promote { id: node_id(server) }
}

pub fn demote(server: usize) -> MembershipChange {
    MembershipChange::Demote { id: node_id(server) }
}

pub fn remove(server: usize) -> MembershipChange {
    MembershipChange::Remove { id: node_id(server) }
}

/// Node ids of servers.
pub fn ids(servers: &[usize]) -> Vec<NodeId> {
    servers.iter().map(|s| node_id(*s)).collect()
}

/// Asserts that `config` has exactly these voters and learners (by server).
#[track_caller]
pub fn assert_members(config: &ConfigState, voters: &[usize], learners: &[usize]) {
    let have_voters: Vec<NodeId> = config.config.membership.voters().collect();
    let have_learners: Vec<NodeId> = config.config.membership.learners().iter().copied().collect();
    let mut want_voters = ids(voters);
    want_voters.sort();
    let mut want_learners = ids(learners);
    want_learners.sort();
    assert_eq!(
        (have_voters, have_learners),
        (want_voters, want_learners),
        "the configuration at {} (voters, learners)",
        config.index
    );
}

/// Matches messages from `from` to `to` (servers).
pub fn between(m: &Message, from: usize, to: usize) -> bool {
    m.from == node_id(from) && m.to == node_id(to)
}

/// A leader's log shipping (appends and snapshot chunks), not its heartbeats.
pub fn is_shipping(m: &Message) -> bool {
    use kvraft_raft::MessageBody as B;
    matches!(m.body, B::Append { .. } | B::SnapshotChunk { .. })
}

/// An append that carries entries, or a snapshot chunk: what a follower catches up with.
pub fn carries_entries(m: &Message) -> bool {
    use kvraft_raft::MessageBody as B;
    match &m.body {
        B::Append { entries, .. } => !entries.is_empty(),
        B::SnapshotChunk { .. } => true,
        _ => false,
    }
}

/// A vote or pre-vote request.
pub fn is_vote_request(m: &Message) -> bool {
    matches!(m.body, kvraft_raft::MessageBody::Vote { .. })
}

/// The client workload: clients that append their own numbered tokens to their own key and
/// read it back now and then, every operation recorded for the linearizability check.
pub struct Workload {
    stop: Rc<Cell<bool>>,
    clients: Vec<(u64, JoinHandle<usize>)>,
}

impl Workload {
    /// `clients` clients, each pausing up to `pause_ms` between operations.
    pub fn start(cx: &Cx, clients: usize, pause_ms: u64) -> Workload {
        let stop = Rc::new(Cell::new(false));
        let handles = (0..clients)
            .map(|_| {
                let number = cx.next_client_number();
                let ck = cx.client();
                let (cx2, stop2) = (cx.clone(), stop.clone());
                let handle = cx.t.sim.spawn(async move {
                    let key = format!("w{number}");
                    let mut done = 0;
                    while !stop2.get() {
                        let token = format!("x {number} {done} y");
                        cx2.t.append(&ck, &key, &token, true, number).await;
                        done += 1;
                        if cx2.t.rand(4) == 0 {
                            cx2.t.get(&ck, &key, true, number).await;
                        }
                        if pause_ms > 0 {
                            cx2.sleep(cx2.t.rand(pause_ms + 1)).await;
                        }
                    }
                    done
                });
                (number, handle)
            })
            .collect();
        Workload { stop, clients: handles }
    }

    /// Stops the clients (each finishes its operation under way), then checks that every
    /// acknowledged append is in the store exactly once and in order, and that the history
    /// is linearizable. Returns the appends acknowledged.
    pub async fn finish(self, cx: &Cx) -> usize {
        self.stop.set(true);
        let mut total = 0;
        let ck = cx.client();
        for (number, handle) in self.clients {
            let done = handle.await;
            let value = cx.t.get(&ck, &format!("w{number}"), true, number + 1000).await;
            check_clnt_appends(number as usize, &value, done);
            let extra = format!("x {number} {done} y");
            assert!(
                !value.contains(&extra),
                "client {number}: an append beyond the last acknowledged"
            );
            total += done;
        }
        cx.t.check_history();
        total
    }
}

impl Cx {
    /// Sends an administration request to `server` without waiting for the answer (it is
    /// logged in `World::admin_replies`).
    pub fn send_admin(&self, server: usize, req: AdminRequest) -> u64 {
        self.t.sim.world_mut().start_admin_call(server, req, ADMIN_TIMEOUT_MS)
    }

    /// Makes `server` the leader (by a transfer, if another leads); panics after `bound_ms`.
    pub async fn make_leader(&self, server: usize, bound_ms: u64) {
        let start = self.now_ms();
        loop {
            let leader = self.wait_leader(bound_ms).await;
            if leader == server {
                return;
            }
            assert!(self.now_ms() - start <= bound_ms, "server {server} never led");
            self.transfer_at(leader, Some(node_id(server))).await;
            self.sleep(50).await;
        }
    }
}

impl Cx {
    /// A put sent once to `server` by a client of its own (not recorded in the history: use
    /// keys no recorded operation touches). Its answer, or None if the call failed.
    pub async fn raw_put(&self, server: usize, key: &str, value: &str) -> Option<kvraft_kv::Reply> {
        use kvraft_kv::{ClientId, ClientRequest, Op, Sequence};
        let (endpoint, client) = {
            let mut w = self.t.sim.world_mut();
            let all: Vec<usize> = (0..w.servers.len()).collect();
            let endpoint = w.add_client(&all);
            (endpoint, ClientId(w.rng.next_u64()))
        };
        let op = Op::Put { key: key.to_string(), value: value.to_string() };
        let req = ClientRequest { client, seq: Sequence(1), op };
        self.t.sim.client_call(endpoint, server, req).await
    }

    /// A put through a fresh clerk that must complete within `bound_ms` (recorded in the
    /// history as client `cli`); false if it did not.
    pub async fn put_within(&self, key: &str, value: &str, cli: u64, bound_ms: u64) -> bool {
        let done = Rc::new(Cell::new(false));
        let ck = self.client();
        let (c, d, key, value) = (self.clone(), done.clone(), key.to_string(), value.to_string());
        self.t.sim.spawn(async move {
            c.t.put(&ck, &key, &value, true, cli).await;
            d.set(true);
        });
        let start = self.now_ms();
        while !done.get() && self.now_ms() - start < bound_ms {
            self.sleep(10).await;
        }
        done.get()
    }

    /// Whether `server` runs and knows it was removed.
    pub fn knows_removed(&self, server: usize) -> bool {
        self.with_node(server, |n| n.is_removed()) == Some(true)
    }

    /// What the running leader knows of member `server`.
    pub fn member_status(&self, server: usize) -> Option<kvraft_raft::MemberStatus> {
        let leader = self.leader()?;
        self.node(leader, |n| n.member_status().into_iter().find(|m| m.id == node_id(server)))
    }
}

impl Cx {
    /// The server's disk dies: it crashes and, once started again, runs on an empty disk
    /// under the same id with no bootstrap configuration.
    pub fn wipe(&self, server: usize) {
        self.t.sim.world_mut().wipe(server);
    }

    /// Fills `n` keys (`{prefix}{i}`, 200 bytes each) through a fresh clerk, unrecorded.
    pub async fn fill(&self, prefix: &str, n: usize) {
        let ck = self.client();
        for i in 0..n {
            self.t.put(&ck, &format!("{prefix}{i}"), &"x".repeat(200), false, 0).await;
        }
    }

    /// Whether `server` runs as a voter of its own configuration.
    pub fn is_voter(&self, server: usize) -> bool {
        self.with_node(server, |n| n.cluster_config().config.membership.is_voter(node_id(server)))
            == Some(true)
    }

    /// Counts vote requests from `server` for `ms`; panics if there was any.
    pub async fn assert_asks_no_vote(&self, server: usize, ms: u64) {
        let name = format!("votes asked by server {server}");
        self.add_rule(&name, RuleAction::Count, move |m| {
            m.from == node_id(server) && is_vote_request(m)
        });
        self.sleep(ms).await;
        assert_eq!(self.rule_hits(&name), 0, "server {server} asked for votes");
        self.remove_rule(&name);
    }
}
