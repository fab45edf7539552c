//! The operator: what the `kvraft member` CLI will do, on the simulator. It sends
//! administration requests to a server (following leader hints), retries what is retryable,
//! reads the configuration as `member list` would (from the leader), uses compare-and-set,
//! and, after an answer that leaves the outcome unknown, reads the configuration again before
//! retrying. It also brings new servers into the world (an empty disk, started, connected,
//! its address given to every client) before asking the cluster to add them.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use kvraft_raft::{
    ChangeError, ChangeRequest, ClusterConfig, ConfigState, MembershipChange, NodeId, Term,
};
use kvraft_replica::{AdminError, AdminOutcome, AdminRequest};

use crate::kv_tester::{KvClient, KvTester};
use crate::world::{node_id, server_index};

/// How long the operator waits for one answer: a change is answered once committed, a
/// transfer within two election timeouts.
const CALL_TIMEOUT_MS: u64 = 3000;

/// What became of a membership change the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// The change is in a committed configuration (this one, or a later one that keeps it).
    Done(ConfigState),
    /// The cluster refused it for a reason retrying does not cure.
    Refused(ChangeError),
    /// No answer settled it within the operator's patience.
    GaveUp(String),
}

/// What became of a leadership transfer the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// `leader` leads `term`.
    Done { leader: NodeId, term: Term },
    /// Refused or aborted (the reason).
    Failed(String),
}

/// The servers the world knows to be the current cluster, as the operator sees it.
#[derive(Debug, Clone)]
pub struct Operator {
    pub t: KvTester,
    /// The clients to tell about new servers.
    clients: Rc<RefCell<Vec<Rc<KvClient>>>>,
    /// The server the operator asks first.
    guess: Rc<Cell<usize>>,
    /// Servers whose disk was wiped: never started again under their id.
    wiped: Rc<RefCell<Vec<usize>>>,
    /// Changes being forced right now (see `is_forcing`).
    forcing: Rc<Cell<u32>>,
    /// Everything the operator did, for failure reports.
    pub log: Rc<RefCell<Vec<String>>>,
}

/// True if `config` already has what `change` asks for (Some(false): it never can).
fn change_holds(change: &MembershipChange, config: &ClusterConfig) -> Option<bool> {
    let m = &config.membership;
    match change {
        MembershipChange::AddLearner { id: Some(id), .. }
        | MembershipChange::AddVoter { id: Some(id), .. } => {
            // A removed id is asked for all the same: the cluster must refuse it.
            if config.is_member(*id) && !config.removed.contains(id) {
                Some(true)
            } else {
                None
            }
        }
        MembershipChange::AddLearner { id: None, .. }
        | MembershipChange::AddVoter { id: None, .. } => None,
        MembershipChange::Promote { id } => {
            if m.is_voter(*id) {
                Some(true)
            } else if !m.is_learner(*id) {
                Some(false)
            } else {
                None
            }
        }
        MembershipChange::Demote { id } => {
            if m.is_learner(*id) {
                Some(true)
            } else if !m.is_voter(*id) {
                Some(false)
            } else {
                None
            }
        }
        MembershipChange::Remove { id } => {
            if config.removed.contains(id) {
                Some(true)
            } else if !config.is_member(*id) {
                Some(false)
            } else {
                None
            }
        }
        MembershipChange::SetAddress { id, address } => {
            if config.addresses.get(id) == Some(address) {
                Some(true)
            } else if !config.is_member(*id) {
                Some(false)
            } else {
                None
            }
        }
    }
}

impl Operator {
    pub fn new(t: KvTester) -> Operator {
        Operator {
            t,
            clients: Rc::new(RefCell::new(Vec::new())),
            guess: Rc::new(Cell::new(0)),
            wiped: Rc::new(RefCell::new(Vec::new())),
            forcing: Rc::new(Cell::new(0)),
            log: Rc::new(RefCell::new(Vec::new())),
        }
    }

    fn note(&self, what: String) {
        let line = format!("{:>7} ms  {what}", self.t.sim.now_ms());
        self.log.borrow_mut().push(line);
    }

    /// The last lines of the operator's log, for failure messages.
    pub fn recent_log(&self, lines: usize) -> String {
        let log = self.log.borrow();
        log[log.len().saturating_sub(lines)..].join("\n")
    }

    /// A client the operator tells about new servers.
    pub fn register_client(&self, client: Rc<KvClient>) {
        self.clients.borrow_mut().push(client);
    }

    /// Every server in the world, by index.
    pub fn server_count(&self) -> usize {
        self.t.sim.world().servers.len()
    }

    /// The server of the world that leads with the highest term, if one runs.
    pub fn leader(&self) -> Option<usize> {
        let w = self.t.sim.world();
        (0..w.servers.len())
            .filter_map(|i| w.node(i).filter(|n| n.is_leader()).map(|n| (n.term(), i)))
            .max()
            .map(|(_, i)| i)
    }

    /// The configuration in effect on the leader (`member list`), if there is a leader.
    pub fn config(&self) -> Option<ConfigState> {
        let leader = self.leader()?;
        self.t.sim.world().node(leader).map(|n| n.cluster_config().clone())
    }

    /// The latest configuration the leader knows committed.
    pub fn committed_config(&self) -> Option<ConfigState> {
        let leader = self.leader()?;
        self.t.sim.world().node(leader).map(|n| n.committed_cluster_config().clone())
    }

    /// Marks `server` as wiped (its disk lost): the operator never starts it again under its id.
    pub fn mark_wiped(&self, server: usize) {
        if !self.wiped.borrow().contains(&server) {
            self.wiped.borrow_mut().push(server);
        }
    }

    pub fn is_wiped(&self, server: usize) -> bool {
        self.wiped.borrow().contains(&server)
    }

    /// Sends one request, following hints and trying other servers, until some server gives
    /// an answer that is not "ask someone else" (or `attempts` calls were made). Every other
    /// attempt goes to the server the world says leads, if one does: the CLI is to forward to
    /// the leader, and removed nodes' stale hints must not keep the operator away from it.
    async fn call(
        &self,
        req: &AdminRequest,
        attempts: usize,
    ) -> Option<Result<AdminOutcome, AdminError>> {
        for attempt in 0..attempts {
            if attempt % 2 == 1 {
                if let Some(leader) = self.leader() {
                    self.guess.set(leader);
                }
            }
            let server = self.guess.get() % self.server_count();
            let reply = self.t.sim.admin_call(server, req.clone(), CALL_TIMEOUT_MS).await;
            match reply {
                None => {
                    self.guess.set(server + 1 + self.t.rand(self.server_count() as u64) as usize);
                    self.t.sleep(20).await;
                }
                Some(Err(AdminError::NotLeader { leader: Some(leader) }))
                    if server_index(leader) < self.server_count()
                        && server_index(leader) != server =>
                {
                    self.guess.set(server_index(leader));
                }
                Some(Err(AdminError::NotLeader { .. })) => {
                    self.guess.set(server + 1);
                    self.t.sleep(30).await;
                }
                Some(other) => return Some(other),
            }
        }
        None
    }

    /// Asks for `change` until it is in a committed configuration, refused for good, or the
    /// operator gives up. With `may_force`, a refusal for leaving too few voters is retried
    /// with force if every remaining voter runs.
    pub async fn change(&self, change: MembershipChange, may_force: bool) -> ChangeOutcome {
        self.note(format!("asks {change:?}"));
        let forced = Cell::new(false);
        let outcome = self.change_inner(change.clone(), may_force, &forced).await;
        if forced.get() {
            self.forcing.set(self.forcing.get() - 1);
        }
        self.note(format!("  {change:?}: {outcome:?}"));
        outcome
    }

    /// True while some change is being forced: the operator has vouched that the voters it
    /// leaves run, and the swarm's faults do not take a disk away meanwhile (a forced change
    /// and a lost disk together can leave a cluster no quorum can ever form in, which is the
    /// risk `force` is for, not a bug).
    pub fn is_forcing(&self) -> bool {
        self.forcing.get() > 0
    }

    async fn change_inner(
        &self,
        change: MembershipChange,
        may_force: bool,
        forced: &Cell<bool>,
    ) -> ChangeOutcome {
        let mut force = false;
        let mut quorum_refusals = 0;
        let mut last = String::from("nothing");
        for _ in 0..30 {
            if let Some(committed) = self.committed_config() {
                match change_holds(&change, &committed.config) {
                    Some(true) => return ChangeOutcome::Done(committed),
                    Some(false) => {
                        return ChangeOutcome::GaveUp(format!(
                            "no longer possible in the configuration at {}",
                            committed.index
                        ))
                    }
                    None => {}
                }
            }
            // Compare-and-set against the configuration just read, most of the time.
            let expected = if self.t.rand(4) == 0 { None } else { self.config().map(|c| c.index) };
            let request =
                ChangeRequest { change: change.clone(), expected_config_index: expected, force };
            let req = AdminRequest::ChangeMembership(request);
            let reply = self.call(&req, 8).await;
            last = format!("{reply:?}");
            match reply {
                Some(Ok(AdminOutcome::Changed { config, .. })) => {
                    return ChangeOutcome::Done(config)
                }
                Some(Ok(other)) => panic!("a membership change answered {other:?}"),
                Some(Err(AdminError::Refused(e))) => match e {
                    ChangeError::TermBarrier
                    | ChangeError::ChangePending { .. }
                    | ChangeError::Transferring { .. }
                    | ChangeError::ConfigIndexMismatch { .. }
                    | ChangeError::NotLeader { .. } => self.t.sleep(50 + self.t.rand(150)).await,
                    ChangeError::TooFewVoters { .. } if may_force && !force => {
                        if !self.remaining_voters_run(&change) {
                            return ChangeOutcome::Refused(e);
                        }
                        force = true;
                        forced.set(true);
                        self.forcing.set(self.forcing.get() + 1);
                    }
                    ChangeError::WouldLoseQuorum { .. } if quorum_refusals < 5 => {
                        // A new voter still catching up, or a voter briefly silent.
                        quorum_refusals += 1;
                        self.t.sleep(300).await;
                    }
                    e => return ChangeOutcome::Refused(e),
                },
                Some(Err(AdminError::Interrupted { .. })) | None => {
                    // The outcome is unknown: read the configuration again before retrying.
                    self.t.sleep(300).await;
                }
                Some(Err(e)) => panic!("a membership change answered {e:?}"),
            }
        }
        ChangeOutcome::GaveUp(format!("too many attempts; the last answer: {last}"))
    }

    /// True if every voter that `change` would leave runs (the operator's own judgement,
    /// before it forces a change the leader would refuse).
    fn remaining_voters_run(&self, change: &MembershipChange) -> bool {
        let Some(config) = self.config() else { return false };
        let gone = match change {
            MembershipChange::Remove { id } | MembershipChange::Demote { id } => Some(*id),
            _ => None,
        };
        let w = self.t.sim.world();
        let all_run = config.config.membership.voters().filter(|v| Some(*v) != gone).all(|v| {
            let s = server_index(v);
            s < w.servers.len() && w.is_alive(s) && !self.is_wiped(s)
        });
        all_run
    }

    /// Asks for leadership to move to `target` (or the most caught-up voter).
    pub async fn transfer(&self, target: Option<NodeId>) -> TransferOutcome {
        self.note(format!("asks transfer to {target:?}"));
        let req = AdminRequest::TransferLeadership { target };
        let outcome = match self.call(&req, 8).await {
            Some(Ok(AdminOutcome::Transferred { leader, term })) => {
                TransferOutcome::Done { leader, term }
            }
            Some(Ok(other)) => panic!("a transfer answered {other:?}"),
            Some(Err(e)) => TransferOutcome::Failed(e.to_string()),
            None => TransferOutcome::Failed("no server answered".into()),
        };
        self.note(format!("  transfer to {target:?}: {outcome:?}"));
        outcome
    }

    /// A new server in the world: empty disk, no configuration, started, linked to every
    /// server, and its address given to every client. Returns its index.
    pub fn start_new_server(&self, faulty_disk: Option<kvraft_storage::FaultPlan>) -> usize {
        let server = {
            let mut w = self.t.sim.world_mut();
            let server = w.add_server();
            w.start(server);
            for other in 0..w.servers.len() {
                if other != server {
                    w.net.set_link(server, other, true);
                }
            }
            if let Some(faults) = faulty_disk {
                w.servers[server].storage.set_faults(faults);
            }
            server
        };
        for client in self.clients.borrow().iter() {
            self.t.add_server_to_client(client, server);
        }
        self.note(format!("started new server {server} (node {})", node_id(server)));
        server
    }

    /// Brings a new server in as a learner: started first, then added. Returns the server if
    /// the cluster took it.
    pub async fn add_learner(
        &self,
        auto_promote: bool,
        faulty_disk: Option<kvraft_storage::FaultPlan>,
    ) -> Option<usize> {
        let server = self.start_new_server(faulty_disk);
        let change = MembershipChange::AddLearner {
            id: Some(node_id(server)),
            address: format!("sim-{server}"),
            auto_promote,
        };
        match self.change(change, false).await {
            ChangeOutcome::Done(_) => Some(server),
            _ => None,
        }
    }

    /// Waits until the leader reports `id` caught up (holding the commit index, answering,
    /// no snapshot in flight), up to `bound_ms`. True if it did.
    pub async fn wait_caught_up(&self, id: NodeId, bound_ms: u64) -> bool {
        let start = self.t.sim.now_ms();
        while self.t.sim.now_ms() - start < bound_ms {
            if self.caught_up(id) {
                return true;
            }
            self.t.sleep(50).await;
        }
        false
    }

    /// True if the leader holds `id` caught up: its match index at the leader's commit, it
    /// answered within an election timeout, and no snapshot is on its way to it.
    pub fn caught_up(&self, id: NodeId) -> bool {
        let Some(leader) = self.leader() else { return false };
        let w = self.t.sim.world();
        let Some(node) = w.node(leader) else { return false };
        let window = u64::from(node.config().election_timeout_ticks);
        node.member_status().iter().any(|m| {
            m.id == id
                && m.match_index >= node.commit_index()
                && !m.receiving_snapshot
                && m.ticks_since_contact.is_some_and(|t| t < window)
        })
    }

    /// Replaces voter `old` by a new server: a learner, caught up, promoted, then `old`
    /// removed (`member replace`). Each step is retried by `change`; a step that fails
    /// leaves what is done (the learner stays a learner). Returns the new server.
    pub async fn replace(
        &self,
        old: NodeId,
        auto_promote: bool,
        faulty_disk: Option<kvraft_storage::FaultPlan>,
    ) -> Option<usize> {
        self.note(format!("replaces node {old}"));
        let server = self.add_learner(auto_promote, faulty_disk).await?;
        let id = node_id(server);
        self.wait_caught_up(id, 10_000).await;
        if !matches!(
            self.change(MembershipChange::Promote { id }, false).await,
            ChangeOutcome::Done(_)
        ) {
            return Some(server);
        }
        self.change(MembershipChange::Remove { id: old }, true).await;
        Some(server)
    }
}
