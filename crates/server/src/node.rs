//! The node task: the one owner of the replica (Raft peer + state machine + pending requests).
//!
//! It drives the replica exactly as the simulator does: every `Ready`'s `messages` go out at
//! once (the leader replicates while its own fsync runs, Raft thesis 10.2.1); its durable part
//! goes to the WAL thread; once that reports the Ready durable, the `persisted_messages` go out
//! and the committed entries apply, which answers the clients waiting for them.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use kvraft_kv::{ClientRequest, Reply};
use kvraft_raft::{Message, NodeId, Ready};
use kvraft_replica::{Replica, RequestId};
use kvraft_storage::WalError;
use tokio::sync::{mpsc, oneshot, watch};

use crate::transport::PeerQueues;
use crate::wal_thread::{WalDone, WalJob, WalThread};

/// Why a client request was not handed to the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("too many requests waiting for the log; retry later")]
    Overloaded,
}

/// A node's state as `kvraft status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub role: kvraft_raft::Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub snapshot_index: u64,
    pub snapshot_term: u64,
}

/// Input to the node task.
#[derive(Debug)]
pub enum Input {
    Client {
        request: ClientRequest,
        reply: oneshot::Sender<Result<Reply, Refusal>>,
    },
    Peer(Message),
    Status(oneshot::Sender<NodeStatus>),
    /// Stop with this error (e.g. the startup check found peers of another cluster).
    Fatal(String),
}

/// How the node task ended.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("the write-ahead log failed; the node stops (restart it to recover from disk): {0}")]
    Wal(#[from] WalError),
    #[error("the write-ahead log thread stopped unexpectedly")]
    WalThreadGone,
    #[error("{0}")]
    Fatal(String),
}

/// The node task's state.
pub struct Node {
    replica: Replica,
    wal: WalThread,
    wal_done: mpsc::UnboundedReceiver<Result<WalDone, WalError>>,
    peers: PeerQueues,
    /// Readies waiting for the WAL, oldest first, with whether each had anything to write.
    waiting: VecDeque<(bool, Ready)>,
    raft_state_size: usize,
    clients: HashMap<RequestId, oneshot::Sender<Result<Reply, Refusal>>>,
    next_request: RequestId,
    max_pending_requests: usize,
    /// Inputs taken per wake-up before driving the replica: requests arriving together share a
    /// Ready, and so one log append, one fsync and one AppendEntries per follower.
    max_batch_inputs: usize,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({}, {} waiting readies)", self.replica.raft().id(), self.waiting.len())
    }
}

impl Node {
    pub fn new(
        replica: Replica,
        wal: WalThread,
        wal_done: mpsc::UnboundedReceiver<Result<WalDone, WalError>>,
        peers: PeerQueues,
        raft_state_size: usize,
        max_pending_requests: usize,
    ) -> Node {
        Node {
            replica,
            wal,
            wal_done,
            peers,
            waiting: VecDeque::new(),
            raft_state_size,
            clients: HashMap::new(),
            next_request: 1,
            max_pending_requests,
            max_batch_inputs: 1024,
        }
    }

    /// Runs until `shutdown` flips or the WAL fails.
    pub async fn run(
        mut self,
        tick: Duration,
        mut inputs: mpsc::Receiver<Input>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            tokio::select! {
                _ = ticker.tick() => self.replica.tick(),
                input = inputs.recv() => {
                    let Some(input) = input else { break Ok(()) };
                    let mut handled = self.handle(input);
                    for _ in 1..self.max_batch_inputs {
                        match inputs.try_recv() {
                            Ok(input) if handled.is_ok() => handled = self.handle(input),
                            _ => break,
                        }
                    }
                    if let Err(e) = handled {
                        break Err(e);
                    }
                }
                done = self.wal_done.recv() => match done {
                    Some(Ok(done)) => self.on_durable(done),
                    Some(Err(e)) => break Err(NodeError::Wal(e)),
                    None => break Err(NodeError::WalThreadGone),
                },
                _ = shutdown.changed() => break Ok(()),
            }
            if let Err(e) = self.drive() {
                break Err(e);
            }
        };
        // Pending clients learn nothing more here; they retry elsewhere (their requests may
        // still commit, which the sessions make safe).
        self.clients.clear();
        self.wal.stop();
        match &result {
            Ok(()) => tracing::info!("node {} stopped", self.replica.raft().id()),
            Err(e) => tracing::error!("node {} stops: {e}", self.replica.raft().id()),
        }
        result
    }

    fn handle(&mut self, input: Input) -> Result<(), NodeError> {
        match input {
            Input::Client { request, reply } => {
                if self.clients.len() >= self.max_pending_requests {
                    let _ = reply.send(Err(Refusal::Overloaded));
                    return Ok(());
                }
                let id = self.next_request;
                self.next_request += 1;
                self.clients.insert(id, reply);
                self.replica.submit(id, request);
            }
            Input::Peer(msg) => {
                if let Err(e) = self.replica.step(msg) {
                    tracing::debug!("dropped a peer message: {e}");
                }
            }
            Input::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Input::Fatal(why) => return Err(NodeError::Fatal(why)),
        }
        Ok(())
    }

    fn status(&self) -> NodeStatus {
        let raft = self.replica.raft();
        let snapshot = raft.log().snapshot_meta();
        NodeStatus {
            role: raft.role(),
            term: raft.term().0,
            leader: raft.leader(),
            commit_index: raft.commit_index().0,
            applied_index: self.replica.state_machine().applied(),
            last_log_index: raft.last_index().0,
            snapshot_index: snapshot.index.0,
            snapshot_term: snapshot.term.0,
        }
    }

    /// Takes every Ready: sends what may go now, hands the durable part to the WAL thread,
    /// finishes Readies that wait for nothing; then answers decided client requests.
    fn drive(&mut self) -> Result<(), NodeError> {
        while self.replica.has_ready() {
            let mut rd = self.replica.ready();
            self.peers.send(std::mem::take(&mut rd.messages));
            let must_write = rd.must_persist();
            if must_write {
                let job = WalJob {
                    number: rd.number,
                    hard_state: rd.hard_state,
                    snapshot: rd.snapshot.take(),
                    entries: std::mem::take(&mut rd.entries),
                };
                if !self.wal.submit(job) {
                    return Err(NodeError::WalThreadGone);
                }
            }
            if !must_write && self.waiting.is_empty() {
                self.finish(rd);
            } else {
                self.waiting.push_back((must_write, rd));
            }
        }
        for (id, reply) in self.replica.take_replies() {
            if let Some(client) = self.clients.remove(&id) {
                let _ = client.send(Ok(reply));
            }
        }
        Ok(())
    }

    /// The WAL made Readies up to `done.through` durable.
    fn on_durable(&mut self, done: WalDone) {
        self.raft_state_size = done.raft_state_size;
        while let Some((must_write, rd)) = self.waiting.front() {
            if *must_write && rd.number > done.through {
                break;
            }
            let (_, rd) = self.waiting.pop_front().expect("front exists");
            self.finish(rd);
        }
    }

    fn finish(&mut self, mut rd: Ready) {
        self.replica.on_persisted(rd.number);
        self.peers.send(std::mem::take(&mut rd.persisted_messages));
        let started = Instant::now();
        self.replica.apply(&mut rd, self.raft_state_size);
        let took = started.elapsed();
        if took > Duration::from_millis(100) {
            tracing::warn!("applying one Ready took {took:?}");
        }
    }
}
