//! The client API of a node, independent of any wire: one [`ClientApi::execute`] path takes a
//! domain request through the checks every protocol owes its clients (rate, sizes) to the node
//! task and back. The protocols on the shared port (gRPC, client frames) are thin adapters that
//! decode their wire into a [`ClientRequest`], call it, and encode the [`Reply`] or
//! [`ApiError`]; a new protocol is a new adapter, and the same bad input gets the same answer
//! on every wire.

use std::net::SocketAddr;

use kvraft_kv::{ClientRequest, Op, Reply};
use kvraft_raft::NodeId;
use tokio::sync::oneshot;

use crate::context::NodeContext;
use crate::node::{Input, NodeStatus, Refusal};
use crate::rate_limit::RateLimiter;

/// Why a request got no reply from the state machine. Each maps to one status code on every
/// wire (the gRPC code in brackets, which client frames carry too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApiError {
    /// Malformed or too large; retrying the same request cannot help (INVALID_ARGUMENT).
    #[error("{0}")]
    InvalidArgument(String),
    /// Too many requests (this connection's rate, or the node's queue); retry later, the
    /// request was not executed (RESOURCE_EXHAUSTED).
    #[error("{0}")]
    Overloaded(String),
    /// The node is stopping, or stopped before answering: the outcome is unknown, retry
    /// elsewhere with the same sequence number (UNAVAILABLE).
    #[error("{0}")]
    Unavailable(String),
}

/// A node's client API: shared by every connection of every client protocol.
#[derive(Debug)]
pub(crate) struct ClientApi {
    node: NodeContext,
    limiter: Option<RateLimiter>,
}

impl ClientApi {
    pub(crate) fn new(node: NodeContext) -> ClientApi {
        let limiter = node.config.max_requests_per_sec.map(RateLimiter::new);
        ClientApi { node, limiter }
    }

    pub(crate) fn node(&self) -> &NodeContext {
        &self.node
    }

    /// Runs one request from the connection at `remote` (None: unknown, no rate limit).
    pub(crate) async fn execute(
        &self,
        remote: Option<SocketAddr>,
        request: ClientRequest,
    ) -> Result<Reply, ApiError> {
        self.check_rate(remote)?;
        self.check_sizes(&request.op)?;
        let (reply, decided) = oneshot::channel();
        self.node
            .to_node(Input::Client { request, reply })
            .await
            .map_err(|_| ApiError::Unavailable("the node is shutting down".into()))?;
        match decided.await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(refusal @ Refusal::Overloaded)) => {
                Err(ApiError::Overloaded(refusal.to_string()))
            }
            // The node stopped (shutdown) before deciding: the outcome is unknown, the client
            // retries elsewhere with the same sequence number.
            Err(_) => Err(ApiError::Unavailable("the node stopped before answering".into())),
        }
    }

    /// The node's view of the cluster.
    pub(crate) async fn status(&self) -> Result<NodeStatus, ApiError> {
        let (reply, answered) = oneshot::channel();
        let stopped = |_| ApiError::Unavailable("the node stopped".into());
        self.node.to_node(Input::Status(reply)).await.map_err(|_| stopped(()))?;
        answered.await.map_err(|_| stopped(()))
    }

    /// The address of member `id` (for leader hints).
    pub(crate) fn address_of(&self, id: NodeId) -> Option<String> {
        self.node.address_of(id)
    }

    /// The largest encoded request a wire should accept: the largest key and value, and room
    /// for the rest of the request.
    pub(crate) fn max_request_bytes(&self) -> usize {
        let c = &self.node.config;
        c.max_key_bytes + c.max_value_bytes + 4096
    }

    fn check_rate(&self, remote: Option<SocketAddr>) -> Result<(), ApiError> {
        let (Some(limiter), Some(peer)) = (&self.limiter, remote) else {
            return Ok(());
        };
        if limiter.admit(peer) {
            Ok(())
        } else {
            Err(ApiError::Overloaded(format!(
                "more than {} requests per second on this connection",
                limiter.per_sec
            )))
        }
    }

    fn check_sizes(&self, op: &Op) -> Result<(), ApiError> {
        let c = &self.node.config;
        let key = op.key();
        if key.len() > c.max_key_bytes {
            return Err(ApiError::InvalidArgument(format!(
                "key of {} bytes exceeds the limit of {} bytes",
                key.len(),
                c.max_key_bytes
            )));
        }
        if let Op::Put { value, .. } | Op::Append { value, .. } = op {
            if value.len() > c.max_value_bytes {
                return Err(ApiError::InvalidArgument(format!(
                    "value of {} bytes exceeds the limit of {} bytes",
                    value.len(),
                    c.max_value_bytes
                )));
            }
        }
        Ok(())
    }
}
