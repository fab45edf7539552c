//! The node task: the one owner of the replica (Raft peer + state machine + pending requests).
//!
//! It drives the replica exactly as the simulator does: after every batch of inputs it carries
//! the replica's outputs to their IO (`kvraft_replica::pipeline` decides them and their order):
//! messages to the peer queues, writes to the WAL thread, replies to the waiting clients; and
//! when the WAL thread reports writes durable, it tells the replica.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kvraft_kv::{ClientRequest, Reply};
use kvraft_raft::{LogIndex, Message, NodeId, SnapshotMeta, Term};
use kvraft_replica::{Output, Replica, RequestId};
use kvraft_storage::WalError;
use tokio::sync::{mpsc, oneshot, watch};

use crate::peer_outbound::PeerQueues;
use crate::wal_thread::{WalDone, WalThread};

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
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit_index: LogIndex,
    pub applied_index: LogIndex,
    pub last_log_index: LogIndex,
    pub snapshot: SnapshotMeta,
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
    clients: HashMap<RequestId, oneshot::Sender<Result<Reply, Refusal>>>,
    next_request: RequestId,
    max_pending_requests: usize,
    /// Inputs taken per wake-up before driving the replica: requests arriving together share a
    /// Ready, and so one log append, one fsync and one AppendEntries per follower.
    max_batch_inputs: usize,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({}, {} clients waiting)", self.replica.raft().id(), self.clients.len())
    }
}

impl Node {
    pub fn new(
        replica: Replica,
        wal: WalThread,
        wal_done: mpsc::UnboundedReceiver<Result<WalDone, WalError>>,
        peers: PeerQueues,
        max_pending_requests: usize,
    ) -> Node {
        Node {
            replica,
            wal,
            wal_done,
            peers,
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
        NodeStatus {
            role: raft.role(),
            term: raft.term(),
            leader: raft.leader(),
            commit_index: raft.commit_index(),
            applied_index: LogIndex(self.replica.state_machine().applied()),
            last_log_index: raft.last_index(),
            snapshot: raft.log().snapshot_meta(),
        }
    }

    /// Carries the replica's outputs to their IO until it has none.
    fn drive(&mut self) -> Result<(), NodeError> {
        let started = Instant::now();
        while let Some(output) = self.replica.poll() {
            match output {
                Output::Send(msgs) => self.peers.send(msgs),
                Output::Write(write) => {
                    if !self.wal.submit(write) {
                        return Err(NodeError::WalThreadGone);
                    }
                }
                Output::Reply(id, reply) => {
                    if let Some(client) = self.clients.remove(&id) {
                        let _ = client.send(Ok(reply));
                    }
                }
                // The server takes no administration requests yet (membership for operators
                // is its own issue), so no request can be waiting for this.
                Output::Admin(id, reply) => {
                    tracing::warn!("administration reply for request {id}, unasked: {reply:?}");
                }
            }
        }
        // Applying is the only work here that grows with the data (a large snapshot to
        // install or take): worth knowing when it stalls the node.
        let took = started.elapsed();
        if took > Duration::from_millis(100) {
            tracing::warn!("one round of the node's work took {took:?}");
        }
        Ok(())
    }

    /// The WAL made the write it was handed durable.
    fn on_durable(&mut self, done: WalDone) {
        self.replica.on_written(done.through, done.raft_state_size);
    }
}
