//! The simulated world: virtual clock, event queue, hosted peers (Raft plus what sits on it),
//! the network, client calls ([`clients`]) and the operator's administration calls
//! ([`admin`]). Single-threaded; one seed determines everything.
//!
//! Servers can join a world after it starts ([`World::add_server`]: an empty disk and no
//! bootstrap configuration, so the new peer learns its configuration from a leader) and lose
//! their disk ([`World::wipe`]: a crash, then an empty disk under the same id). Server `i` is
//! node `i + 1`, always.

pub mod admin;
pub mod clients;
pub mod scripted;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use kvraft_raft::size::message_len;
use kvraft_raft::{
    Config, DetRng, LogIndex, Message, NodeId, ProposeError, RawNode, RecoveredState, Term,
};
use kvraft_storage::WalError;

use kvraft_replica::{AdminReply, Output, Write};

use self::admin::{AdminCalls, AdminEvent};
use self::clients::{ClientCalls, ClientEvent};
use self::scripted::{MessageRules, RuleAction};
use crate::census::Census;
use crate::checker::Checker;
use crate::network::{Network, ReplyFate, RequestFate, MS};
use crate::options::SimOptions;
use crate::peer::Peer;
use crate::sim_storage::SimStorage;
use crate::trace::Trace;

/// How long a peer's tick is.
pub const TICK_US: u64 = 10 * MS;

/// Builds the peer for server `server` from its Raft config and what its storage recovered.
pub type PeerFactory = Box<dyn FnMut(usize, Config, RecoveredState) -> Box<dyn Peer>>;

impl std::fmt::Debug for ServerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerSlot(alive={}, incarnation={})", self.peer.is_some(), self.incarnation)
    }
}

/// One server's place in the world: its Raft peer while it runs, and its storage, which
/// survives crashes (the lab persister).
pub struct ServerSlot {
    pub peer: Option<Box<dyn Peer>>,
    pub storage: SimStorage,
    /// Bumped at every crash and restart: calls to or from an older incarnation are void.
    pub incarnation: u64,
    /// Requests dispatched to the current incarnation (labrpc's per-server count).
    pub rpc_count: u64,
    /// Writes the peer handed out that its disk has not begun yet, oldest first (the WAL
    /// thread's queue).
    disk_queue: VecDeque<Write>,
    /// The group write under way on its disk (every write queued when it began, as one),
    /// from the write until its fsync returns.
    writing: Option<Write>,
    /// Requests whose handler has run but whose response waits (for the disk, usually): per
    /// caller, the callers' incarnations in request order. Responses leave in that order.
    open_calls: BTreeMap<usize, VecDeque<u64>>,
    /// Starts with the world's bootstrap voters (a server the world began with, on the disk it
    /// began with); false for a server added later or whose disk was wiped: it starts with no
    /// configuration and waits for a leader to tell it one.
    bootstrap: bool,
}

impl ServerSlot {
    fn new(storage: SimStorage, bootstrap: bool) -> ServerSlot {
        ServerSlot {
            peer: None,
            storage,
            incarnation: 0,
            rpc_count: 0,
            disk_queue: VecDeque::new(),
            writing: None,
            open_calls: BTreeMap::new(),
            bootstrap,
        }
    }

    /// True if the server starts with the world's bootstrap voters (see the field).
    pub fn bootstraps(&self) -> bool {
        self.bootstrap
    }
}

#[derive(Debug)]
pub(crate) enum Event {
    Tick {
        server: usize,
        incarnation: u64,
    },
    Request {
        caller: usize,
        caller_incarnation: u64,
        callee: usize,
        callee_incarnation: u64,
        msg: Message,
    },
    Reply {
        caller: usize,
        caller_incarnation: u64,
        msg: Message,
    },
    /// The write under way on a server's disk completes (its fsync returns).
    Persisted {
        server: usize,
        incarnation: u64,
    },
    Wake(std::task::Waker),
    Client(ClientEvent),
    Admin(AdminEvent),
}

pub fn node_id(server: usize) -> NodeId {
    NodeId(server as u64 + 1)
}

pub fn server_index(id: NodeId) -> usize {
    id.0 as usize - 1
}

pub struct World {
    /// The options the run was started with (storage, trace, output).
    pub options: SimOptions,
    /// The seed the world was made with (new disks derive theirs from it).
    seed: u64,
    /// The voters every server the world began with bootstraps with: all of them.
    initial_voters: Vec<NodeId>,
    /// Disks wiped so far (each new disk gets a seed of its own).
    wipes: u64,
    pub now_us: u64,
    next_seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    pub rng: DetRng,
    pub net: Network,
    pub servers: Vec<ServerSlot>,
    make_peer: PeerFactory,
    pub checker: Checker,
    /// Counts the scenarios the run created (see `census`).
    pub census: Census,
    pub trace: Trace,
    /// Raft settings for every peer; the seed is replaced per incarnation.
    pub raft_config: Box<dyn Fn(NodeId, Vec<NodeId>) -> Config>,
    /// Peers with proposals waiting for their next `ready()`.
    dirty: BTreeSet<usize>,
    /// Servers driven since the last invariant check: the ones whose own state changed.
    driven: BTreeSet<usize>,
    pub events_processed: u64,
    pub(crate) client_calls: ClientCalls,
    pub(crate) admin_calls: AdminCalls,
    /// A paused server (think SIGSTOP or a long GC pause) does nothing until this time; events
    /// for it wait.
    paused_until: Vec<u64>,
    /// How long a group write (append plus fsync) takes.
    pub disk_latency: DiskLatency,
    /// Servers stopped by a disk error (a failed write or fsync), in order; each stays down
    /// until restarted.
    pub disk_failures: Vec<usize>,
    /// Answers to administration requests (membership changes, transfers): the server that
    /// answered, the request's id, the answer; in the order they came (whether or not the
    /// operator's call was still waiting for it: see [`admin`]).
    pub admin_replies: Vec<(usize, u64, AdminReply)>,
    /// Scenario tests' rules for dropping, delaying or counting peer messages ([`scripted`]).
    pub(crate) message_rules: MessageRules,
}

/// The time a simulated group write takes: uniform in `[min_us, max_us]`, except that one in
/// `1000 / spike_per_mille` takes up to `spike_max_us` (a slow fsync behind other IO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskLatency {
    pub min_us: u64,
    pub max_us: u64,
    pub spike_per_mille: u32,
    pub spike_max_us: u64,
}

impl DiskLatency {
    /// An SSD's fsync, without spikes: what the lab tests run on.
    pub const SSD: DiskLatency =
        DiskLatency { min_us: 50, max_us: 500, spike_per_mille: 0, spike_max_us: 0 };

    fn sample(&self, rng: &mut DetRng) -> u64 {
        if self.spike_per_mille > 0 && rng.chance(u64::from(self.spike_per_mille), 1000) {
            return self.max_us + rng.below(self.spike_max_us.saturating_sub(self.max_us) + 1);
        }
        self.min_us + rng.below(self.max_us - self.min_us + 1)
    }
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "World(t={}us, {} servers)", self.now_us, self.servers.len())
    }
}

/// The Raft settings of the simulated peers: 10 ms ticks, 300-600 ms elections, 100 ms
/// heartbeats, small snapshot chunks so that every transfer takes several.
pub fn sim_raft_config(id: NodeId, voters: Vec<NodeId>) -> Config {
    let mut c = Config::new(id, voters);
    c.snapshot_chunk_bytes = 1024;
    c.max_append_bytes = 64 * 1024;
    c
}

impl World {
    /// A world of `servers` servers, not started, whose peers `make_peer` builds.
    pub fn new(seed: u64, servers: usize, make_peer: PeerFactory, options: SimOptions) -> World {
        World {
            seed,
            initial_voters: (0..servers).map(node_id).collect(),
            wipes: 0,
            now_us: 0,
            next_seq: 0,
            queue: BTreeMap::new(),
            rng: DetRng::new(seed),
            net: Network::new(servers),
            servers: (0..servers)
                .map(|i| {
                    ServerSlot::new(SimStorage::new(options.storage, seed ^ (i as u64 + 1)), true)
                })
                .collect(),
            make_peer,
            checker: Checker::new(servers),
            census: Census::new(servers),
            trace: Trace::new(options.trace),
            raft_config: Box::new(sim_raft_config),
            dirty: BTreeSet::new(),
            driven: BTreeSet::new(),
            events_processed: 0,
            client_calls: ClientCalls::default(),
            admin_calls: AdminCalls::default(),
            paused_until: vec![0; servers],
            disk_latency: DiskLatency::SSD,
            disk_failures: Vec::new(),
            admin_replies: Vec::new(),
            message_rules: MessageRules::default(),
            options,
        }
    }

    pub(crate) fn schedule(&mut self, at_us: u64, event: Event) {
        self.next_seq += 1;
        self.queue.insert((at_us, self.next_seq), event);
    }

    pub fn schedule_wake(&mut self, at_us: u64, waker: std::task::Waker) {
        self.schedule(at_us, Event::Wake(waker));
    }

    pub fn is_alive(&self, server: usize) -> bool {
        self.servers[server].peer.is_some()
    }

    /// A new server with an empty disk, not started and not connected, that will start with
    /// no configuration (`Config::voters` empty): it waits for a leader to replicate one to it
    /// once an operator has added its id. Returns its index (its node id is `index + 1`).
    /// Every client gets an end to it, enabled.
    pub fn add_server(&mut self) -> usize {
        let server = self.servers.len();
        let storage = SimStorage::new(self.options.storage, self.seed ^ (server as u64 + 1));
        self.servers.push(ServerSlot::new(storage, false));
        self.net.add_server();
        self.checker.add_server();
        self.census.add_server();
        self.paused_until.push(0);
        self.client_calls.add_server();
        self.trace.record(self.now_us, "add-server", server as u64, 0);
        server
    }

    /// The server's disk dies: the server crashes (if it runs) and comes back, when started,
    /// on an empty disk under the same id and with no bootstrap configuration, as a new
    /// machine would. (Restarting it under that id is what operators must not do: see the
    /// membership design's scenario 10.)
    pub fn wipe(&mut self, server: usize) {
        self.crash(server);
        self.wipes += 1;
        let seed = self.seed ^ (server as u64 + 1) ^ (self.wipes << 32);
        let slot = &mut self.servers[server];
        let old_disk = slot.storage.durable_state().clone();
        slot.storage = SimStorage::new(self.options.storage, seed);
        slot.bootstrap = false;
        self.checker.on_wipe(server, old_disk);
        self.trace.record(self.now_us, "wipe", server as u64, 0);
    }

    /// The node ids the servers the world began with bootstrap with.
    pub fn initial_voters(&self) -> &[NodeId] {
        &self.initial_voters
    }

    /// The Raft peer of a running server.
    pub fn node(&self, server: usize) -> Option<&RawNode> {
        self.servers[server].peer.as_ref().map(|p| p.raft())
    }

    /// Kills a server: disconnected, its in-flight calls void; its storage stays (a copy, in
    /// the lab's terms: the dead instance can never write to it again).
    ///
    /// Proposals the server took and has not yet handed out are persisted first (see
    /// `persist_proposals`), so that a crash right after the lab's `Start()` behaves as in Go.
    pub fn crash(&mut self, server: usize) {
        // The lab's crash1 disconnects before anything else.
        self.net.disconnect(server);
        if self.dirty.remove(&server) && self.is_alive(server) {
            self.persist_proposals(server);
        }
        self.kill(server);
    }

    /// The lab's `Start()` persists the command before it returns, and `crash1` begins by
    /// disconnecting the server, so a crash right after `Start()` finds the entry in the
    /// persisted log, and usually not yet sent: the replication goroutines lose the race with
    /// the disconnect. Here proposals reach the disk and the network only when the script
    /// yields, which a 0 ms pause does not. So the disconnected server hands out what its
    /// proposals produced (the messages are lost on the disabled ends) and its writes complete
    /// before the power goes (the write in flight, then the one holding the proposals), as Go's
    /// synchronous persister would have had them. A crash that follows no fresh proposal
    /// still finds whatever write is in flight, and may lose it.
    fn persist_proposals(&mut self, server: usize) {
        self.drive(server);
        while self.is_alive(server) && self.servers[server].writing.is_some() {
            let incarnation = self.servers[server].incarnation;
            self.handle_persisted(server, incarnation);
        }
    }

    /// Kills a server at once (see `crash`), whatever its peers have yet to hand out.
    fn kill(&mut self, server: usize) {
        self.net.disconnect(server);
        let slot = &mut self.servers[server];
        // Writes the disk had not begun are simply gone; the one under way may leave a prefix.
        slot.disk_queue.clear();
        let writing = slot.writing.take();
        if let Some(peer) = slot.peer.take() {
            let in_flight = writing.as_ref().map(Write::persist_batches).unwrap_or_default();
            slot.storage.crash(&mut self.rng, &in_flight);
            let stored = self.servers.iter().map(|s| s.storage.durable_state());
            let kept = self.servers[server].storage.durable_state();
            self.census.on_crash(server, peer.raft(), kept, stored);
            self.trace.record(self.now_us, "crash", server as u64, 0);
        }
        let slot = &mut self.servers[server];
        slot.open_calls.clear();
        slot.incarnation += 1;
        self.client_calls.forget_server(server);
        self.fail_admin_calls_to(server);
        self.dirty.remove(&server);
    }

    /// (Re)starts a server from its storage, not connected (the lab's start1).
    pub fn start(&mut self, server: usize) {
        self.crash(server);
        let voters =
            if self.servers[server].bootstrap { self.initial_voters.clone() } else { Vec::new() };
        let mut config = (self.raft_config)(node_id(server), voters);
        config.seed = self.rng.next_u64();
        let slot = &mut self.servers[server];
        let recovered = slot.storage.recover();
        slot.incarnation += 1;
        slot.rpc_count = 0;
        let peer = (self.make_peer)(server, config, recovered);
        self.checker.on_restart(server, peer.raft());
        self.census.on_start(server);
        slot.peer = Some(peer);
        self.driven.insert(server);
        let incarnation = slot.incarnation;
        let phase = self.rng.below(TICK_US);
        self.schedule(self.now_us + phase, Event::Tick { server, incarnation });
        self.trace.record(self.now_us, "start", server as u64, incarnation);
    }

    /// The lab's `Start(cmd)`: (index, term) if this server is the leader.
    pub fn propose(
        &mut self,
        server: usize,
        data: Bytes,
    ) -> Result<(LogIndex, Term), ProposeError> {
        let peer =
            self.servers[server].peer.as_mut().ok_or(ProposeError::NotLeader { leader: None })?;
        let result = peer.propose(data);
        if result.is_ok() {
            self.dirty.insert(server);
        }
        result
    }

    /// Hands every peer with pending proposals its `Ready` (proposals made in between batch).
    pub fn flush_proposals(&mut self) {
        while let Some(server) = self.dirty.pop_first() {
            if self.is_alive(server) {
                self.drive(server);
            }
        }
    }

    /// Carries the peer's outputs to the simulated network, disk and clients until it has
    /// none: exactly what the real server's node task does with the same outputs.
    pub(crate) fn drive(&mut self, server: usize) {
        self.driven.insert(server);
        // A peer that stops (its disk failed) has no more outputs.
        while let Some(output) = self.servers[server].peer.as_mut().and_then(|p| p.poll()) {
            match output {
                Output::Send(msgs) => {
                    let slot = &self.servers[server];
                    let node = slot.peer.as_ref().expect("polled above").raft();
                    self.checker.on_send(server, node, slot.storage.durable_state(), &msgs);
                    self.census.on_send(server, &msgs);
                    self.dispatch(server, msgs);
                }
                Output::Write(write) => {
                    self.servers[server].disk_queue.push_back(write);
                    if let Err(e) = self.start_disk_group(server) {
                        self.stop_on_disk_failure(server, &e);
                        break;
                    }
                }
                Output::Reply(id, reply) => self.client_calls.on_server_reply(id, reply),
                Output::Admin(id, reply) => self.on_admin_reply(server, id, reply),
            }
        }
        self.route_client_replies();
    }

    /// If `server`'s disk is idle, starts writing every write queued for it as one group (one
    /// append, then one fsync, which returns at a later event), as the server's WAL thread
    /// takes every write queued while its last fsync ran.
    fn start_disk_group(&mut self, server: usize) -> Result<(), WalError> {
        let slot = &mut self.servers[server];
        let Some(last) = slot.disk_queue.back() else { return Ok(()) };
        if slot.writing.is_some() {
            return Ok(());
        }
        let through = last.through;
        let batches = slot.disk_queue.drain(..).flat_map(|w| w.batches).collect();
        let group = Write { through, batches };
        self.checker.on_write(server, slot.storage.durable_state(), &group);
        // In flight from here on, even if writing fails half way: a crash may keep a prefix.
        let group = slot.writing.insert(group);
        slot.storage.begin(&group.persist_batches())?;
        let at = self.now_us + self.disk_latency.sample(&mut self.rng);
        let incarnation = slot.incarnation;
        self.schedule(at, Event::Persisted { server, incarnation });
        Ok(())
    }

    /// The group write under way on `server` is durable: the disk starts on the writes queued
    /// meanwhile, and the peer learns what is durable and finishes the Readies it covered.
    fn handle_persisted(&mut self, server: usize, incarnation: u64) {
        let slot = &mut self.servers[server];
        if slot.incarnation != incarnation {
            return;
        }
        let group = slot.writing.as_ref().expect("a live incarnation's fsync has a write");
        if let Err(e) = slot.storage.finish(&group.persist_batches()) {
            // Still in flight: the crash that stops the server may keep some of it.
            self.stop_on_disk_failure(server, &e);
            return;
        }
        let group = slot.writing.take().expect("checked above");
        self.trace.record(self.now_us, "persisted", server as u64, 0);
        for batch in &group.batches {
            if let Some(hard_state) = batch.hard_state {
                self.checker.on_durable(server, hard_state);
            }
        }
        let size = self.servers[server].storage.raft_state_size();
        if let Err(e) = self.start_disk_group(server) {
            self.stop_on_disk_failure(server, &e);
            return;
        }
        let peer = self.servers[server].peer.as_mut().expect("live incarnation has a peer");
        peer.on_written(group.through, size);
        self.drive(server);
    }

    /// A disk error stops the server, as the real server stops: never retry an fsync. It
    /// stays down, with what its disk kept, until restarted.
    fn stop_on_disk_failure(&mut self, server: usize, error: &WalError) {
        self.trace.record(self.now_us, "disk-failure", server as u64, 0);
        if self.options.verbose {
            eprintln!("t={}us server {server} stops: {error}", self.now_us);
        }
        self.disk_failures.push(server);
        self.kill(server);
    }

    /// Sends a server's output: requests as new calls, responses as the replies of the calls
    /// they answer, one-way messages (follower-read forwarding) as calls nobody answers.
    fn dispatch(&mut self, from: usize, msgs: Vec<Message>) {
        for msg in msgs {
            if msg.body.is_request() || msg.body.is_one_way() {
                self.call(from, msg);
            } else {
                self.reply(from, msg);
            }
        }
    }

    /// The reply to the oldest open call from the response's addressee (labrpc: the
    /// handler's return value, dropped or delayed on the way back).
    fn reply(&mut self, callee: usize, msg: Message) {
        let caller = server_index(msg.to);
        let caller_incarnation = self.servers[callee]
            .open_calls
            .get_mut(&caller)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| panic!("server {callee} responds to {caller} with no call open"));
        if !self.net.is_enabled(caller, callee) {
            return;
        }
        let extra_us = match self.message_rules.apply(&msg) {
            Some(RuleAction::Drop) => {
                self.trace.record(self.now_us, "rule-drop", callee as u64, caller as u64);
                return;
            }
            Some(RuleAction::Delay(us)) => us,
            Some(RuleAction::Count) | None => 0,
        };
        match self.net.reply_fate(&mut self.rng) {
            ReplyFate::Dropped => {
                self.trace.record(self.now_us, "lost-reply", callee as u64, caller as u64)
            }
            ReplyFate::Deliver { delay_us } => {
                self.schedule(
                    self.now_us + delay_us + extra_us,
                    Event::Reply { caller, caller_incarnation, msg },
                );
            }
        }
    }

    /// One labrpc call: the message is the request; the callee's response is its reply. A
    /// one-way message travels the same way (same drops, delays, duplicates), but opens no
    /// call: nothing answers it.
    fn call(&mut self, caller: usize, msg: Message) {
        debug_assert!(
            msg.body.is_request() || msg.body.is_one_way(),
            "responses travel as replies, not calls"
        );
        self.net.total_rpcs += 1;
        self.net.total_bytes += message_len(&msg) as u64;
        let callee = server_index(msg.to);
        if callee >= self.servers.len() {
            // An id no server was ever made for (a member added but never started): nothing
            // answers.
            self.trace.record(self.now_us, "lost-request", caller as u64, callee as u64);
            return;
        }
        let extra_us = match self.message_rules.apply(&msg) {
            Some(RuleAction::Drop) => {
                self.trace.record(self.now_us, "rule-drop", caller as u64, callee as u64);
                return;
            }
            Some(RuleAction::Delay(us)) => us,
            Some(RuleAction::Count) | None => 0,
        };
        let (enabled, alive) = (self.net.is_enabled(caller, callee), self.is_alive(callee));
        let request = |msg| Event::Request {
            caller,
            caller_incarnation: self.servers[caller].incarnation,
            callee,
            callee_incarnation: self.servers[callee].incarnation,
            msg,
        };
        let duplicate = match (enabled, alive) {
            (true, true) => {
                self.net.duplicate(&mut self.rng).map(|delay| (delay, request(msg.clone())))
            }
            _ => None,
        };
        let fate = self.net.request_fate(&mut self.rng, enabled, alive);
        let original = request(msg);
        if let Some((delay_us, event)) = duplicate {
            self.schedule(self.now_us + delay_us + extra_us, event);
        }
        match fate {
            RequestFate::Unreachable | RequestFate::Dropped { .. } => {
                self.trace.record(self.now_us, "lost-request", caller as u64, callee as u64);
            }
            RequestFate::Deliver { delay_us } => {
                self.schedule(self.now_us + delay_us + extra_us, original)
            }
        }
    }

    /// Runs the earliest event; None when the queue is empty. Returns wakers for the executor.
    pub fn step(&mut self) -> Option<Option<std::task::Waker>> {
        let ((at, _), event) = self.queue.pop_first()?;
        debug_assert!(at >= self.now_us, "time went backwards");
        self.now_us = at;
        if let Some(server) = self.event_target(&event) {
            if self.paused_until[server] > at {
                let resume = self.paused_until[server];
                self.schedule(resume, event);
                return Some(None);
            }
        }
        self.events_processed += 1;
        let waker = match event {
            Event::Wake(waker) => Some(waker),
            Event::Tick { server, incarnation } => {
                self.handle_tick(server, incarnation);
                None
            }
            Event::Request { caller, caller_incarnation, callee, callee_incarnation, msg } => {
                self.handle_request(caller, caller_incarnation, callee, callee_incarnation, msg);
                None
            }
            Event::Reply { caller, caller_incarnation, msg } => {
                self.handle_reply(caller, caller_incarnation, msg);
                None
            }
            Event::Client(event) => {
                self.handle_client_event(event);
                None
            }
            Event::Admin(event) => {
                self.handle_admin_event(event);
                None
            }
            Event::Persisted { server, incarnation } => {
                self.handle_persisted(server, incarnation);
                None
            }
        };
        self.check_invariants();
        Some(waker)
    }

    /// Each server's own invariants (its Raft node's, what sits on it, its storage's) on the
    /// servers driven since the last check (the others' own state is as it was when last
    /// checked); then the cross-server invariants on every server.
    fn check_invariants(&mut self) {
        for server in std::mem::take(&mut self.driven) {
            let slot = &self.servers[server];
            if let Some(peer) = slot.peer.as_ref() {
                peer.check_invariants();
                slot.storage.check_invariants();
            }
        }
        let servers = self.servers.iter();
        self.checker.after_event(
            servers.map(|s| (s.peer.as_ref().map(|p| p.raft()), s.storage.durable_state())),
        );
    }

    /// The server an event runs on, if any (for pauses).
    fn event_target(&self, event: &Event) -> Option<usize> {
        match event {
            Event::Tick { server, .. } => Some(*server),
            Event::Request { callee, .. } => Some(*callee),
            Event::Reply { caller, .. } => Some(*caller),
            Event::Persisted { server, .. } => Some(*server),
            Event::Client(e) => self.client_event_target(e),
            Event::Admin(e) => self.admin_event_target(e),
            Event::Wake(_) => None,
        }
    }

    /// Freezes a server until `until_us`: it neither ticks nor handles anything meanwhile.
    pub fn pause(&mut self, server: usize, until_us: u64) {
        self.trace.record(self.now_us, "pause", server as u64, until_us);
        self.paused_until[server] = self.paused_until[server].max(until_us);
    }

    fn handle_tick(&mut self, server: usize, incarnation: u64) {
        if self.servers[server].incarnation != incarnation {
            return;
        }
        self.trace.record(self.now_us, "tick", server as u64, 0);
        self.servers[server].peer.as_mut().expect("live incarnation has a peer").tick();
        self.drive(server);
        self.schedule(self.now_us + TICK_US, Event::Tick { server, incarnation });
    }

    fn handle_request(
        &mut self,
        caller: usize,
        caller_incarnation: u64,
        callee: usize,
        callee_incarnation: u64,
        msg: Message,
    ) {
        let slot = &mut self.servers[callee];
        if slot.incarnation != callee_incarnation {
            // The server died after the call was sent: the handler never runs.
            self.trace.record(self.now_us, "request-to-dead", caller as u64, callee as u64);
            return;
        }
        slot.rpc_count += 1;
        self.trace.record_message(self.now_us, "request", &msg);
        if msg.body.is_request() {
            slot.open_calls.entry(caller).or_default().push_back(caller_incarnation);
        }
        self.step_peer(callee, msg);
        self.drive(callee);
    }

    /// Hands a message to a live server's peer, with the checker watching how a leader treats
    /// messages from removed nodes.
    fn step_peer(&mut self, server: usize, msg: Message) {
        let from = msg.from;
        let peer = self.servers[server].peer.as_mut().expect("live incarnation has a peer");
        let led = self.checker.before_step(peer.raft(), &msg);
        peer.step(msg);
        self.checker.after_step(server, peer.raft(), from, led);
    }

    fn handle_reply(&mut self, caller: usize, caller_incarnation: u64, msg: Message) {
        self.net.total_bytes += message_len(&msg) as u64;
        if self.servers[caller].incarnation != caller_incarnation {
            return;
        }
        self.trace.record_message(self.now_us, "reply", &msg);
        self.step_peer(caller, msg);
        self.drive(caller);
    }
}
