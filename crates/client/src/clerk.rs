//! The Clerk: every decision a kvraft client makes (which server to ask, what an answer means,
//! when to retry and how long to wait first, when a session must be renewed), as a sans-IO
//! state machine. Its drivers only carry requests and answers: the network client in
//! [`crate::remote`] and the simulator's clerks run this same policy.
//!
//! | answer from the server asked                    | what the Clerk decides                         |
//! |-------------------------------------------------|------------------------------------------------|
//! | a reply (a value, done)                          | done; a write confirms the session             |
//! | `WrongLeader` with a hint it can follow          | retry at the hinted server                     |
//! | `WrongLeader` otherwise                          | retry at the next server                       |
//! | failed (no answer, broken connection, timeout)   | mark the server failing; retry at the next one |
//! | overloaded (refused for load, not executed)      | retry the same server after 50, 100, 200, 400 ms; then give up |
//! | `SessionExpired`, `Stale`                        | done with that error; the session must be renewed |
//!
//! After a full round of refusals and failures (no leader yet, say during an election) it
//! waits before the next round, longer each round up to a bound.
//!
//! **Leader hints** name a node id. The Clerk follows one if it knows which of its servers is
//! that node (given at construction, or learned: [`Clerk::learn_node`]), unless that server was
//! learned from a hint and its last call failed (its address may be one only the cluster can
//! resolve, such as a container name): then it rotates through the others instead.
//!
//! **Reads from a chosen server** ([`Clerk::read_from`]): a Get first goes there (unless it is
//! failing, or already the leader guess). If that server refuses, fails or is overloaded, the
//! Get goes on to the leader guess, which the detour leaves untouched.
//!
//! **Sessions.** Writes are numbered 1, 2, 3... in a session (a Get carries the next number
//! without using it up). The cluster knows a session once one of its writes was applied. An
//! operation given up on ([`Clerk::abandon`]) before that, or one that ended in
//! `SessionExpired` or `Stale`, leaves the session unusable: [`Clerk::wants_new_session`] says
//! so, and the driver supplies a fresh client id with [`Clerk::renew_session`] before the next
//! operation (ids come from the driver: the Clerk has no randomness).

use kvraft_kv::{ClientId, ClientRequest, KvError, NodeId, Op, Reply, Sequence};

/// What came back from one attempt at `target()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The server answered: an outcome, or a refusal such as `WrongLeader`.
    Reply(Reply),
    /// No usable answer: the call failed or timed out, the connection broke, the reply was
    /// malformed. The request may or may not have been executed.
    Failed,
    /// The server refused the request for load; it was not executed.
    Overloaded,
}

/// What the driver should do after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// The operation finished with this reply (success, or an error that retrying cannot fix).
    Done(Reply),
    /// Send the same request to server `target` after waiting `backoff_ms` (0: at once).
    Retry { target: usize, backoff_ms: u64 },
    /// The server stayed overloaded through `attempts` attempts: the operation is given up
    /// (it was not executed there).
    Overloaded { attempts: u32 },
}

/// What the Clerk knows of one server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Server {
    /// The node it is, if known.
    node: Option<NodeId>,
    /// Learned from a leader hint rather than configured.
    from_hint: bool,
    /// Its last call failed.
    failing: bool,
}

#[derive(Debug, Clone)]
pub struct Clerk {
    client: ClientId,
    servers: Vec<Server>,
    /// The server believed to lead.
    leader: usize,
    /// Where Gets go first, if anywhere but the leader.
    read_server: Option<usize>,
    next_seq: Sequence,
    current: Option<ClientRequest>,
    /// The server the current attempt goes to.
    target: usize,
    /// The current attempt is a Get's detour to the read server: its answer does not move the
    /// leader guess.
    detour: bool,
    /// Failed or refused attempts since the last success, to back off once every server has
    /// had its turn.
    failures: usize,
    /// Overloaded answers to the current operation.
    overloaded: u32,
    /// The cluster has applied a write of this session.
    session_confirmed: bool,
    /// The session is unusable; a new one must start before the next operation.
    renew: bool,
}

/// Pause after a full round of refusals (no leader yet, e.g. during an election), times the
/// number of rounds, up to the maximum.
const ROUND_BACKOFF_MS: u64 = 20;
const MAX_BACKOFF_MS: u64 = 200;
/// Retries of an overloaded server, and the first pause (doubled after each refusal).
const OVERLOADED_RETRIES: u32 = 4;
const OVERLOADED_BACKOFF_MS: u64 = 50;

impl Clerk {
    /// A clerk for servers `0..nodes.len()`, with the node id of each if known.
    pub fn new(client: ClientId, nodes: Vec<Option<NodeId>>) -> Clerk {
        assert!(!nodes.is_empty(), "a clerk needs at least one server");
        let servers = nodes.into_iter().map(|node| Server { node, ..Server::default() }).collect();
        Clerk {
            client,
            servers,
            leader: 0,
            read_server: None,
            next_seq: Sequence(1),
            current: None,
            target: 0,
            detour: false,
            failures: 0,
            overloaded: 0,
            session_confirmed: false,
            renew: false,
        }
    }

    pub fn client_id(&self) -> ClientId {
        self.client
    }

    /// The number of servers (indices `0..servers()`).
    pub fn servers(&self) -> usize {
        self.servers.len()
    }

    /// Adds a server (one a leader hint named that the driver had no endpoint for); returns its
    /// index. Existing indices keep their meaning.
    pub fn add_server(&mut self, node: Option<NodeId>, from_hint: bool) -> usize {
        self.servers.push(Server { node, from_hint, failing: false });
        self.servers.len() - 1
    }

    /// Server `index` is node `node` (a hint carried both an address the driver maps to
    /// `index` and the node id). Another server believed to be that node forgets it.
    pub fn learn_node(&mut self, index: usize, node: NodeId) {
        for server in &mut self.servers {
            if server.node == Some(node) {
                server.node = None;
            }
        }
        self.servers[index].node = Some(node);
    }

    /// The server known to be node `node`.
    pub fn index_of(&self, node: NodeId) -> Option<usize> {
        self.servers.iter().position(|s| s.node == Some(node))
    }

    /// Sends Gets first to server `index` (e.g. the nearest), or to the leader (None).
    pub fn read_from(&mut self, index: Option<usize>) {
        assert!(index.is_none_or(|i| i < self.servers.len()), "no server {index:?}");
        self.read_server = index;
    }

    /// Starts an operation; returns the tagged request to send to `target()`. Writes take the
    /// next sequence number; a Get is served without the log or the session table (ReadIndex),
    /// so it carries the next number without using it up: the servers' sessions must see a
    /// client's writes numbered 1, 2, 3... with no gaps.
    pub fn begin(&mut self, op: Op) -> ClientRequest {
        let read_server = match op {
            Op::Get { .. } => {
                self.read_server.filter(|&i| !self.servers[i].failing && i != self.leader)
            }
            _ => None,
        };
        let request = self.start(op);
        self.target = read_server.unwrap_or(self.leader);
        self.detour = read_server.is_some();
        request
    }

    /// Starts an operation whose first attempt goes to server `first` (a driver that spreads
    /// operations over servers, as a load balancer would); answers then count as usual.
    pub fn begin_at(&mut self, op: Op, first: usize) -> ClientRequest {
        assert!(first < self.servers.len(), "no server {first}");
        let request = self.start(op);
        self.target = first;
        self.detour = false;
        request
    }

    fn start(&mut self, op: Op) -> ClientRequest {
        assert!(self.current.is_none(), "one operation at a time per clerk");
        assert!(!self.renew, "the session must be renewed before the next operation");
        let consumes = !matches!(op, Op::Get { .. });
        let request = ClientRequest { client: self.client, seq: self.next_seq, op };
        if consumes {
            self.next_seq = Sequence(self.next_seq.0 + 1);
        }
        self.current = Some(request.clone());
        self.failures = 0;
        self.overloaded = 0;
        request
    }

    /// The request in progress.
    pub fn request(&self) -> &ClientRequest {
        self.current.as_ref().expect("no operation in progress")
    }

    /// The server to send the current attempt to.
    pub fn target(&self) -> usize {
        self.target
    }

    /// The server believed to lead.
    pub fn leader_guess(&self) -> usize {
        self.leader
    }

    /// Whether an operation is in progress (begun, not yet done or abandoned).
    pub fn is_busy(&self) -> bool {
        self.current.is_some()
    }

    /// Gives up on the operation in progress, if any (the driver's deadline passed, or its
    /// caller went away). Its outcome stays unknown. The next operation gets the next sequence
    /// number, so once that one is applied, a late copy of the abandoned one is refused as
    /// stale rather than applied after it; unless the cluster may not know the session yet, in
    /// which case a new one must start ([`Clerk::wants_new_session`]).
    pub fn abandon(&mut self) {
        if self.current.take().is_some() && !self.session_confirmed {
            self.renew = true;
        }
        self.detour = false;
        self.target = self.leader;
    }

    /// The session cannot be used for another operation: call [`Clerk::renew_session`].
    pub fn wants_new_session(&self) -> bool {
        self.renew
    }

    /// Starts a new session under `client`: sequence numbers restart at 1. Keeps the leader
    /// guess and what is known of the servers.
    pub fn renew_session(&mut self, client: ClientId) {
        assert!(self.current.is_none(), "renewing the session during an operation");
        self.client = client;
        self.next_seq = Sequence(1);
        self.session_confirmed = false;
        self.renew = false;
    }

    /// Feeds the answer from `target()`.
    pub fn on_answer(&mut self, answer: Answer) -> NextStep {
        let request = self.current.as_ref().expect("answer without an operation");
        let is_write = !matches!(request.op, Op::Get { .. });
        let target = self.target;
        self.servers[target].failing = matches!(answer, Answer::Failed);
        if std::mem::take(&mut self.detour) {
            // The read server could not serve it: on to the leader, whose guess stands.
            if let Answer::Reply(Ok(_))
            | Answer::Reply(Err(KvError::SessionExpired | KvError::Stale)) = answer
            {
                return self.finish(answer, is_write);
            }
            self.target = self.leader;
            return NextStep::Retry { target: self.target, backoff_ms: 0 };
        }
        match answer {
            Answer::Reply(Err(KvError::WrongLeader { leader })) => {
                let next = (target + 1) % self.servers.len();
                self.leader = leader
                    .and_then(|node| self.index_of(node))
                    .filter(|&i| i != target && !self.followed_hint_failed(i))
                    .unwrap_or(next);
                self.retry_after_refusal()
            }
            Answer::Failed => {
                self.leader = (target + 1) % self.servers.len();
                self.retry_after_refusal()
            }
            Answer::Overloaded => {
                self.overloaded += 1;
                if self.overloaded > OVERLOADED_RETRIES {
                    let attempts = self.overloaded;
                    self.abandon();
                    return NextStep::Overloaded { attempts };
                }
                let backoff_ms = OVERLOADED_BACKOFF_MS << (self.overloaded - 1);
                NextStep::Retry { target, backoff_ms }
            }
            Answer::Reply(_) => self.finish(answer, is_write),
        }
    }

    /// A server learned from a hint whose last call failed is not followed again.
    fn followed_hint_failed(&self, index: usize) -> bool {
        let server = &self.servers[index];
        server.from_hint && server.failing
    }

    fn retry_after_refusal(&mut self) -> NextStep {
        self.failures += 1;
        self.target = self.leader;
        let n = self.servers.len();
        let backoff_ms = if self.failures.is_multiple_of(n) {
            (ROUND_BACKOFF_MS * (self.failures / n) as u64).min(MAX_BACKOFF_MS)
        } else {
            0
        };
        NextStep::Retry { target: self.target, backoff_ms }
    }

    fn finish(&mut self, answer: Answer, is_write: bool) -> NextStep {
        let Answer::Reply(reply) = answer else { unreachable!("only replies finish") };
        self.current = None;
        self.failures = 0;
        self.overloaded = 0;
        match &reply {
            Ok(_) if is_write => self.session_confirmed = true,
            Ok(_) => {}
            Err(KvError::SessionExpired | KvError::Stale) => self.renew = true,
            Err(KvError::WrongLeader { .. }) => unreachable!("retried, not finished"),
        }
        NextStep::Done(reply)
    }
}

#[cfg(test)]
mod tests;
