//! What every connection handler of a node shares: the way to the node task, the node's
//! configuration, and the shutdown signal.

use std::sync::Arc;
use std::time::Instant;

use kvraft_raft::NodeId;
use tokio::sync::{mpsc, watch};

use crate::config::ServerConfig;
use crate::node::Input;

#[derive(Debug, Clone)]
pub(crate) struct NodeContext {
    pub(crate) inputs: mpsc::Sender<Input>,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) started: Instant,
    /// Flips to true when the server shuts down: long-lived connections end then.
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// The node task has ended (shutdown, or a fatal error): nothing reaches it any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeGone;

impl NodeContext {
    /// Queues an input for the node task, waiting for room.
    pub(crate) async fn to_node(&self, input: Input) -> Result<(), NodeGone> {
        self.inputs.send(input).await.map_err(|_| NodeGone)
    }

    /// The address of cluster member `id`, as the configuration gives it.
    pub(crate) fn address_of(&self, id: NodeId) -> Option<String> {
        self.config.member(id).map(|m| m.address.clone())
    }

    /// Resolves once the server starts shutting down.
    pub(crate) async fn stopping(&self) {
        let mut shutdown = self.shutdown.clone();
        let _ = shutdown.wait_for(|stop| *stop).await;
    }
}
