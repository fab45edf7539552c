//! The client service, `KvService`, over gRPC and over client frames
//! ([`crate::client_inbound`]): it only checks, converts and forwards to the node task; the
//! node decides everything. (Peers use their own wire: [`crate::peer_inbound`].)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kvraft_kv::{ClientRequest, KvError, Reply};
use kvraft_proto::v1 as pb;
use kvraft_proto::v1::kv_service_server::KvService;
use kvraft_raft::NodeId;
use tokio::sync::{mpsc, oneshot, watch};
use tonic::{Request, Response, Status};

use crate::config::ServerConfig;
use crate::node::{Input, NodeStatus, Refusal};

/// What the client service and the peer receivers share: the way to the node task and the
/// static facts they report.
#[derive(Debug, Clone)]
pub struct Shared {
    pub inputs: mpsc::Sender<Input>,
    pub config: Arc<ServerConfig>,
    pub started: Instant,
    /// Flips to true when the server shuts down: long-lived peer connections end then.
    pub shutdown: watch::Receiver<bool>,
}

impl Shared {
    async fn to_node(&self, input: Input) -> Result<(), Status> {
        self.inputs.send(input).await.map_err(|_| Status::unavailable("the node is shutting down"))
    }

    fn address_of(&self, id: NodeId) -> Option<String> {
        self.config.member(id).map(|m| m.address.clone())
    }
}

/// The client service.
#[derive(Debug)]
pub struct KvServer {
    shared: Shared,
    limiter: Option<RateLimiter>,
}

impl KvServer {
    pub fn new(shared: Shared) -> KvServer {
        let limiter = shared.config.max_requests_per_sec.map(RateLimiter::new);
        KvServer { shared, limiter }
    }

    fn check_rate(&self, remote: Option<SocketAddr>) -> Result<(), Status> {
        let (Some(limiter), Some(peer)) = (&self.limiter, remote) else {
            return Ok(());
        };
        if limiter.admit(peer) {
            Ok(())
        } else {
            Err(Status::resource_exhausted(format!(
                "more than {} requests per second on this connection",
                limiter.per_sec
            )))
        }
    }

    fn check_sizes(&self, key: &str, value: Option<&str>) -> Result<(), Status> {
        let c = &self.shared.config;
        if key.len() > c.max_key_bytes {
            return Err(Status::invalid_argument(format!(
                "key of {} bytes exceeds the limit of {} bytes",
                key.len(),
                c.max_key_bytes
            )));
        }
        if let Some(value) = value {
            if value.len() > c.max_value_bytes {
                return Err(Status::invalid_argument(format!(
                    "value of {} bytes exceeds the limit of {} bytes",
                    value.len(),
                    c.max_value_bytes
                )));
            }
        }
        Ok(())
    }

    /// Hands a request to the node and waits for its decision.
    async fn execute(&self, request: ClientRequest) -> Result<Reply, Status> {
        let (reply, decided) = oneshot::channel();
        self.shared.to_node(Input::Client { request, reply }).await?;
        match decided.await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(Refusal::Overloaded)) => {
                Err(Status::resource_exhausted(Refusal::Overloaded.to_string()))
            }
            // The node stopped (shutdown) before deciding: the outcome is unknown, the client
            // retries elsewhere with the same sequence number.
            Err(_) => Err(Status::unavailable("the node stopped before answering")),
        }
    }

    fn error(&self, e: KvError) -> pb::Error {
        pb::Error::from(e).with_leader_address(|id| self.shared.address_of(id))
    }
}

fn invalid(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
}

/// Converts a domain reply to a wire reply; a client reusing a sequence number for another
/// kind of operation gets its mistake named.
fn wire_reply<T>(
    server: &KvServer,
    reply: Reply,
    from_error: impl FnOnce(pb::Error) -> T,
) -> Result<T, Status>
where
    T: TryFrom<Reply, Error = kvraft_proto::OutcomeMismatch>,
{
    match reply {
        Err(e) => Ok(from_error(server.error(e))),
        ok => T::try_from(ok).map_err(invalid),
    }
}

impl KvServer {
    async fn put_reply(&self, r: pb::PutRequest) -> Result<pb::PutReply, Status> {
        self.check_sizes(&r.key, Some(&r.value))?;
        let reply = self.execute(ClientRequest::try_from(r).map_err(invalid)?).await?;
        let error = |e| pb::PutReply { result: Some(pb::put_reply::Result::Error(e)) };
        wire_reply(self, reply, error)
    }

    async fn append_reply(&self, r: pb::AppendRequest) -> Result<pb::AppendReply, Status> {
        self.check_sizes(&r.key, Some(&r.value))?;
        let reply = self.execute(ClientRequest::try_from(r).map_err(invalid)?).await?;
        let error = |e| pb::AppendReply { result: Some(pb::append_reply::Result::Error(e)) };
        wire_reply(self, reply, error)
    }

    async fn get_reply(&self, r: pb::GetRequest) -> Result<pb::GetReply, Status> {
        self.check_sizes(&r.key, None)?;
        let reply = self.execute(ClientRequest::try_from(r).map_err(invalid)?).await?;
        let error = |e| pb::GetReply { result: Some(pb::get_reply::Result::Error(e)) };
        wire_reply(self, reply, error)
    }

    /// One call from a client-frames connection (`frames.proto`): the same checks and answers
    /// as the gRPC methods, with a status turned into a `CallError`.
    pub async fn call(
        &self,
        remote: Option<SocketAddr>,
        call: pb::client_frame::Call,
    ) -> pb::server_frame::Result {
        use pb::client_frame::Call;
        use pb::server_frame::Result as R;
        let result = async {
            self.check_rate(remote)?;
            Ok(match call {
                Call::Put(r) => R::Put(self.put_reply(r).await?),
                Call::Append(r) => R::Append(self.append_reply(r).await?),
                Call::Get(r) => R::Get(self.get_reply(r).await?),
            })
        };
        result.await.unwrap_or_else(|status: Status| R::Error(call_error(&status)))
    }

    /// The largest client frame this server accepts: the largest key and value, and room for
    /// the rest of the request (the same limit as a gRPC message).
    pub fn max_request_bytes(&self) -> usize {
        let c = &self.shared.config;
        c.max_key_bytes + c.max_value_bytes + 4096
    }
}

/// A gRPC status as a client frame carries it.
pub fn call_error(status: &Status) -> pb::CallError {
    pb::CallError { code: status.code() as i32, message: status.message().to_string() }
}

#[tonic::async_trait]
impl KvService for KvServer {
    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutReply>, Status> {
        self.check_rate(request.remote_addr())?;
        self.put_reply(request.into_inner()).await.map(Response::new)
    }

    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendReply>, Status> {
        self.check_rate(request.remote_addr())?;
        self.append_reply(request.into_inner()).await.map(Response::new)
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetReply>, Status> {
        self.check_rate(request.remote_addr())?;
        self.get_reply(request.into_inner()).await.map(Response::new)
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        let (reply, answered) = oneshot::channel();
        self.shared.to_node(Input::Status(reply)).await?;
        let status = answered.await.map_err(|_| Status::unavailable("the node stopped"))?;
        Ok(Response::new(status_reply(&self.shared, status)))
    }
}

fn status_reply(shared: &Shared, s: NodeStatus) -> pb::StatusReply {
    let c = &shared.config;
    pb::StatusReply {
        node_id: c.id.0,
        address: c.address().to_string(),
        cluster_id: c.cluster_id,
        role: pb::Role::from(s.role).into(),
        term: s.term,
        leader_id: s.leader.map_or(0, |l| l.0),
        leader_address: s.leader.and_then(|l| shared.address_of(l)).unwrap_or_default(),
        commit_index: s.commit_index,
        applied_index: s.applied_index,
        last_log_index: s.last_log_index,
        snapshot_index: s.snapshot_index,
        snapshot_term: s.snapshot_term,
        members: c
            .cluster
            .iter()
            .map(|m| pb::Member { node_id: m.id.0, address: m.address.clone() })
            .collect(),
        uptime_ms: shared.started.elapsed().as_millis() as u64,
        server_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// A token bucket per client connection (remote address), refilled every second.
#[derive(Debug)]
struct RateLimiter {
    per_sec: u32,
    buckets: Mutex<HashMap<SocketAddr, (Instant, u32)>>,
}

impl RateLimiter {
    fn new(per_sec: u32) -> RateLimiter {
        RateLimiter { per_sec, buckets: Mutex::new(HashMap::new()) }
    }

    fn admit(&self, peer: SocketAddr) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() > 100_000 {
            // Forget idle connections rather than grow without bound.
            buckets.retain(|_, (since, _)| now.duration_since(*since) < Duration::from_secs(1));
        }
        let (since, used) = buckets.entry(peer).or_insert((now, 0));
        if now.duration_since(*since) >= Duration::from_secs(1) {
            *since = now;
            *used = 0;
        }
        if *used < self.per_sec {
            *used += 1;
            true
        } else {
            false
        }
    }
}
