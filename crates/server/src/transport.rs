//! Outbound peer traffic: a bounded queue per peer, and a task per peer that keeps one
//! long-lived gRPC stream (`RaftService.Send`) open and pushes batches of messages down it.
//!
//! Raft tolerates lost messages, so the node never waits on a peer: when a queue is full, or
//! the peer is unreachable, messages are dropped. A broken stream is reopened
//! with exponential backoff.

use std::collections::BTreeMap;
use std::time::Duration;

use kvraft_proto::v1 as pb;
use kvraft_proto::v1::raft_service_client::RaftServiceClient;
use kvraft_proto::{ClusterId, PeerBatch};
use kvraft_raft::{size, Message, NodeId};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use crate::config::Member;

/// Messages waiting for one peer's sender task.
const PEER_QUEUE_LEN: usize = 4096;
/// A batch closes at this many payload bytes (a snapshot chunk or large entries), well under
/// the receiver's message-size limit.
const MAX_BATCH_BYTES: usize = 4 << 20;
const MAX_BATCH_MESSAGES: usize = 1024;
/// The largest gRPC message a peer sends or accepts.
pub const MAX_PEER_MESSAGE_BYTES: usize = 4 * MAX_BATCH_BYTES + (1 << 20);

/// The node's side of the peer queues.
#[derive(Debug)]
pub struct PeerQueues {
    queues: BTreeMap<NodeId, mpsc::Sender<Message>>,
}

impl PeerQueues {
    /// Queues each message for its peer; drops it if that queue is full.
    pub fn send(&mut self, msgs: Vec<Message>) {
        for msg in msgs {
            let Some(queue) = self.queues.get(&msg.to) else {
                tracing::warn!("message to unknown node {}", msg.to);
                continue;
            };
            if let Err(e) = queue.try_send(msg) {
                tracing::trace!("peer queue full, dropped {}", e.into_inner().body.kind());
            }
        }
    }
}

/// Starts one sender task per peer; returns the node's queues and the tasks.
pub fn start_peer_senders(
    me: NodeId,
    cluster_id: u64,
    peers: &[Member],
    shutdown: watch::Receiver<bool>,
) -> (PeerQueues, Vec<tokio::task::JoinHandle<()>>) {
    let mut queues = BTreeMap::new();
    let mut tasks = Vec::new();
    for peer in peers {
        let (tx, rx) = mpsc::channel(PEER_QUEUE_LEN);
        queues.insert(peer.id, tx);
        let sender = PeerSender { me, cluster_id, peer: peer.clone(), shutdown: shutdown.clone() };
        tasks.push(tokio::spawn(sender.run(rx)));
    }
    (PeerQueues { queues }, tasks)
}

struct PeerSender {
    me: NodeId,
    cluster_id: u64,
    peer: Member,
    shutdown: watch::Receiver<bool>,
}

const MIN_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl PeerSender {
    async fn run(mut self, mut queue: mpsc::Receiver<Message>) {
        let endpoint = match Endpoint::from_shared(format!("http://{}", self.peer.address)) {
            Ok(e) => e
                .connect_timeout(Duration::from_secs(1))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(5))
                .keep_alive_timeout(Duration::from_secs(5)),
            Err(e) => {
                tracing::error!("node {}: bad address {:?}: {e}", self.peer.id, self.peer.address);
                return;
            }
        };
        let mut backoff = MIN_BACKOFF;
        let mut connected_before = false;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            match endpoint.connect().await {
                Ok(channel) => {
                    if connected_before {
                        tracing::info!("reconnected to node {}", self.peer.id);
                    }
                    connected_before = true;
                    backoff = MIN_BACKOFF;
                    match self.stream(channel, &mut queue).await {
                        StreamEnd::Shutdown => return,
                        StreamEnd::Broken(why) => {
                            tracing::debug!("stream to node {} broke: {why}", self.peer.id);
                        }
                        StreamEnd::Refused(why) => {
                            // A configuration error, not a network one: say so loudly.
                            tracing::error!("node {} refuses our messages: {why}", self.peer.id);
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(
                        "cannot reach node {} at {}: {e}",
                        self.peer.id,
                        self.peer.address
                    );
                }
            }
            // Unreachable: what is queued is stale by the time we connect; Raft resends.
            while queue.try_recv().is_ok() {}
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Pushes batches down one stream until it breaks or the node shuts down.
    async fn stream(
        &mut self,
        channel: tonic::transport::Channel,
        queue: &mut mpsc::Receiver<Message>,
    ) -> StreamEnd {
        let mut client = RaftServiceClient::new(channel)
            .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES)
            .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES);
        let (batches, outgoing) = mpsc::channel::<pb::MessageBatch>(8);
        let mut call =
            tokio::spawn(async move { client.send(ReceiverStream::new(outgoing)).await });
        loop {
            let first = tokio::select! {
                msg = queue.recv() => match msg {
                    Some(msg) => msg,
                    None => return StreamEnd::Shutdown,
                },
                ended = &mut call => {
                    return match ended {
                        Ok(Ok(_)) => StreamEnd::Broken("closed by the peer".to_string()),
                        Ok(Err(status)) if status.code() == tonic::Code::FailedPrecondition => {
                            StreamEnd::Refused(status.message().to_string())
                        }
                        Ok(Err(status)) => StreamEnd::Broken(status.to_string()),
                        Err(e) => StreamEnd::Broken(e.to_string()),
                    };
                }
                _ = self.shutdown.changed() => return StreamEnd::Shutdown,
            };
            let mut bytes = size::message_len(&first);
            let mut messages = vec![first];
            while messages.len() < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES {
                match queue.try_recv() {
                    Ok(msg) => {
                        bytes += size::message_len(&msg);
                        messages.push(msg);
                    }
                    Err(_) => break,
                }
            }
            let batch = PeerBatch {
                cluster_id: ClusterId(self.cluster_id),
                from: self.me,
                to: self.peer.id,
                messages,
            };
            if batches.send(batch.into()).await.is_err() {
                call.abort();
                return StreamEnd::Broken("stream closed".into());
            }
        }
    }
}

enum StreamEnd {
    Shutdown,
    Broken(String),
    /// The peer refused the stream (another cluster, or a different id-to-address mapping).
    Refused(String),
}
