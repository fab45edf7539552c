//! [`Client`]: the Clerk's decisions carried out over the network, one session, one operation
//! at a time.

use std::time::{Duration, Instant};

use kvraft_kv::{ClientId, KvError, NodeId, Op, Outcome, Reply};
use kvraft_proto::KvRequest;

use crate::clerk::{Answer, Clerk, NextStep};
use crate::remote::connections::{parse_address, Connections, Server, MAX_ENDPOINTS};
use crate::remote::error::{
    classify_status, describe_status, fatal_error, format_duration, ClientError, StatusClass,
};
use crate::remote::options::{new_client_id, ClientOptions};
use crate::remote::wire::{call, CallFailure};

/// A kvraft client: one session, one operation at a time. See the [module docs](super) for
/// how answers are read; the [`Clerk`] decides the rest. Needs a tokio runtime (with the time
/// driver) when its operations run; constructing it does not.
#[derive(Debug)]
pub struct Client {
    clerk: Clerk,
    servers: Vec<Server>,
    call_timeout: Duration,
    op_timeout: Option<Duration>,
}

/// What one attempt brought back, before the Clerk reads it.
enum Attempt {
    Answer(Answer, Option<String>),
    /// Stop the operation: retrying cannot help.
    Fatal(ClientError),
}

impl Client {
    /// Checks the options; connects lazily, on first use of each endpoint. Duplicate endpoints
    /// are dropped.
    pub fn new(options: ClientOptions) -> Result<Client, ClientError> {
        Ok(Client::over(&Connections::new(&options)?, &options))
    }

    /// A client with its own session over shared `connections`; `options` gives the timeouts
    /// and client id (its endpoints are those of `connections`).
    pub fn over(connections: &Connections, options: &ClientOptions) -> Client {
        let servers: Vec<Server> = connections.servers.to_vec();
        let client_id = options.client_id.unwrap_or_else(new_client_id);
        Client {
            clerk: Clerk::new(client_id, vec![None; servers.len()]),
            servers,
            call_timeout: options.call_timeout,
            op_timeout: options.op_timeout,
        }
    }

    /// Sends Gets first to `endpoint` (one of this client's, e.g. the nearest server) rather
    /// than to the leader. A server with follower reads on (`kvraft server
    /// --follower-reads`, the default) answers there, still linearizably: it asks the leader
    /// for the read index and serves once it has applied that far. If that server refuses
    /// or fails, the Get goes on to the leader as usual. Writes always go to the leader.
    pub fn read_from(&mut self, endpoint: &str) -> Result<(), ClientError> {
        let address = parse_address(endpoint)?;
        let index = self.servers.iter().position(|s| s.address == address).ok_or_else(|| {
            ClientError::InvalidEndpoint {
                endpoint: endpoint.to_string(),
                reason: "not one of the client's endpoints".into(),
            }
        })?;
        self.clerk.read_from(Some(index));
        Ok(())
    }

    /// The current session's client id.
    pub fn client_id(&self) -> ClientId {
        self.clerk.client_id()
    }

    /// The endpoints as `host:port`: the configured ones, then those learned from hints.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        self.servers.iter().map(|s| s.address.as_str())
    }

    /// Sets `key` to `value`.
    pub async fn put(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), ClientError> {
        self.execute(Op::Put { key: key.into(), value: value.into() }).await.map(drop)
    }

    /// Appends `value` to the value of `key` (a missing key holds "").
    pub async fn append(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), ClientError> {
        self.execute(Op::Append { key: key.into(), value: value.into() }).await.map(drop)
    }

    /// The value of `key` ("" if it was never written); linearizable.
    pub async fn get(&mut self, key: impl Into<String>) -> Result<String, ClientError> {
        match self.execute(Op::Get { key: key.into() }).await? {
            Outcome::Value(v) => Ok(v),
            Outcome::Done => unreachable!("a GetReply carries a value"),
        }
    }

    async fn execute(&mut self, op: Op) -> Result<Outcome, ClientError> {
        // The previous operation's future was dropped mid-flight.
        self.clerk.abandon();
        self.renew_session_if_needed();
        let started = Instant::now();
        let deadline = self.op_timeout.map(|t| started + t);
        let request = KvRequest::from(self.clerk.begin(op));
        let mut tried: Vec<usize> = Vec::new();
        let mut last_error: Option<String> = None;
        loop {
            let target = self.clerk.target();
            if !tried.contains(&target) {
                tried.push(target);
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                self.give_up();
                let tried = tried.iter().map(|&i| self.servers[i].address.clone()).collect();
                return Err(ClientError::Timeout { after: started.elapsed(), tried, last_error });
            }
            let timeout = left.map_or(self.call_timeout, |left| left.min(self.call_timeout));
            let (answer, why) = match self.attempt(target, request.clone(), timeout).await {
                Attempt::Answer(answer, why) => (answer, why),
                Attempt::Fatal(e) => {
                    self.give_up();
                    return Err(e);
                }
            };
            if let Some(why) = why {
                last_error = Some(format!("{}: {why}", self.servers[target].address));
            }
            match self.clerk.on_answer(answer) {
                NextStep::Done(Ok(outcome)) => return Ok(outcome),
                NextStep::Done(Err(e)) => {
                    self.renew_session_if_needed();
                    return Err(e.into());
                }
                NextStep::Overloaded { attempts } => {
                    self.renew_session_if_needed();
                    let message = last_error.unwrap_or_default();
                    return Err(ClientError::Overloaded { message, attempts });
                }
                NextStep::Retry { backoff_ms, .. } => {
                    let pause = Duration::from_millis(backoff_ms);
                    let pause = left.map_or(pause, |left| pause.min(left));
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }

    /// Gives up on the operation in progress (see the Clerk on sessions).
    fn give_up(&mut self) {
        self.clerk.abandon();
        self.renew_session_if_needed();
    }

    fn renew_session_if_needed(&mut self) {
        if self.clerk.wants_new_session() {
            self.clerk.renew_session(new_client_id());
        }
    }

    /// Sends `request` to server `target` once; the answer, and why it was not a reply.
    async fn attempt(&mut self, target: usize, request: KvRequest, timeout: Duration) -> Attempt {
        let called = tokio::time::timeout(timeout, call(&self.servers[target], request, timeout));
        let result = match called.await {
            Ok(result) => result,
            Err(_) => {
                let why = format!("no answer within {}", format_duration(timeout));
                return Attempt::Answer(Answer::Failed, Some(why));
            }
        };
        match result {
            Ok(wire) => {
                if let (Err(KvError::WrongLeader { leader: Some(node) }), Some(address)) =
                    (&wire.reply, &wire.leader_address)
                {
                    self.learn_leader_address(*node, address);
                }
                let why = refusal_text(&wire.reply);
                Attempt::Answer(Answer::Reply(wire.reply), why)
            }
            Err(CallFailure::Malformed(why)) => {
                Attempt::Answer(Answer::Failed, Some(format!("malformed reply: {why}")))
            }
            Err(CallFailure::Status(status)) => match classify_status(status.code()) {
                StatusClass::Retry => {
                    Attempt::Answer(Answer::Failed, Some(describe_status(&status)))
                }
                StatusClass::Overloaded => Attempt::Answer(
                    Answer::Overloaded,
                    Some(format!("overloaded: {}", status.message())),
                ),
                StatusClass::Fatal => Attempt::Fatal(fatal_error(&status)),
            },
        }
    }

    /// A hint said node `node` leads at `address`: the Clerk learns which endpoint that is,
    /// appending the address to the endpoints if it is new (up to [`MAX_ENDPOINTS`]).
    fn learn_leader_address(&mut self, node: NodeId, address: &str) {
        let Ok(address) = parse_address(address) else { return };
        let index = match self.servers.iter().position(|s| s.address == address) {
            Some(index) => index,
            None => {
                if self.servers.len() >= MAX_ENDPOINTS {
                    return;
                }
                let transport = self.servers[0].transport();
                let Ok(server) = Server::new(address, self.call_timeout, transport) else { return };
                self.servers.push(server);
                let index = self.clerk.add_server(None, true);
                debug_assert_eq!(index + 1, self.servers.len());
                index
            }
        };
        self.clerk.learn_node(index, node);
    }
}

/// What a refusal says, for the error a timeout reports.
fn refusal_text(reply: &Reply) -> Option<String> {
    reply.as_ref().err().map(|e| e.to_string())
}
