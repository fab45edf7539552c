//! Outbound peer traffic: a bounded queue per peer, and a task per peer that keeps one
//! long-lived TCP connection to it (the framing is in [`kvraft_proto::peer_wire`]) and writes
//! batches of messages down it.
//!
//! Raft tolerates lost messages, so the node never waits on a peer: when a queue is full, or
//! the peer is unreachable, messages are dropped. A broken connection is reopened with
//! exponential backoff.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::BytesMut;
use kvraft_proto::peer_wire::{
    encode_batch, FrameReader, MAX_BATCH_BYTES, MAX_PEER_FRAME_BYTES, PEER_MAGIC,
};
use kvraft_proto::{ClusterId, PeerBatch};
use kvraft_raft::{size, Message, NodeId};
use socket2::SockRef;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::config::Member;
use crate::conn::configure;

/// Messages waiting for one peer's sender task.
const PEER_QUEUE_LEN: usize = 4096;
const MAX_BATCH_MESSAGES: usize = 1024;
/// Sent data unacknowledged this long ends the connection, so a peer cut off by a partition is
/// noticed and reconnected to within seconds rather than TCP's default of many minutes.
const UNACKNOWLEDGED_FOR: Duration = Duration::from_secs(5);
/// The write buffer is shrunk back to this after a large batch (a snapshot chunk).
const WRITE_BUFFER_BYTES: usize = 64 << 10;

/// The node's side of the peer queues.
#[derive(Debug)]
pub(crate) struct PeerQueues {
    queues: BTreeMap<NodeId, mpsc::Sender<Message>>,
}

impl PeerQueues {
    /// Queues each message for its peer; drops it if that queue is full.
    pub(crate) fn send(&mut self, msgs: Vec<Message>) {
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
pub(crate) fn start_peer_senders(
    me: NodeId,
    cluster_id: ClusterId,
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
    cluster_id: ClusterId,
    peer: Member,
    shutdown: watch::Receiver<bool>,
}

const MIN_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl PeerSender {
    async fn run(mut self, mut queue: mpsc::Receiver<Message>) {
        let mut backoff = MIN_BACKOFF;
        let mut connected_before = false;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            match connect(&self.peer.address).await {
                Ok(stream) => {
                    if connected_before {
                        tracing::info!("reconnected to node {}", self.peer.id);
                    }
                    connected_before = true;
                    backoff = MIN_BACKOFF;
                    match self.stream(stream, &mut queue).await {
                        StreamEnd::Shutdown => return,
                        StreamEnd::Broken(why) => {
                            tracing::debug!("connection to node {} broke: {why}", self.peer.id);
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

    /// Writes batches down one connection until it breaks or the node shuts down.
    async fn stream(
        &mut self,
        stream: TcpStream,
        queue: &mut mpsc::Receiver<Message>,
    ) -> StreamEnd {
        let (mut reader, mut writer) = stream.into_split();
        // The peer writes nothing back but a refusal, then closes.
        let ended = async move {
            match FrameReader::new(MAX_PEER_FRAME_BYTES).next_frame(&mut reader).await {
                Ok(Some(why)) => StreamEnd::Refused(String::from_utf8_lossy(&why).into_owned()),
                Ok(None) => StreamEnd::Broken("closed by the peer".to_string()),
                Err(e) => StreamEnd::Broken(e.to_string()),
            }
        };
        tokio::pin!(ended);
        let mut out = BytesMut::with_capacity(WRITE_BUFFER_BYTES);
        out.extend_from_slice(&PEER_MAGIC);
        loop {
            if !out.is_empty() {
                tokio::select! {
                    written = writer.write_all(&out) => {
                        if let Err(e) = written {
                            return StreamEnd::Broken(e.to_string());
                        }
                    }
                    end = &mut ended => return end,
                    _ = self.shutdown.changed() => return StreamEnd::Shutdown,
                }
                out.clear();
                if out.capacity() > WRITE_BUFFER_BYTES {
                    out = BytesMut::with_capacity(WRITE_BUFFER_BYTES);
                }
            }
            let first = tokio::select! {
                msg = queue.recv() => match msg {
                    Some(msg) => msg,
                    None => return StreamEnd::Shutdown,
                },
                end = &mut ended => return end,
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
                cluster_id: self.cluster_id,
                from: self.me,
                to: self.peer.id,
                messages,
            };
            encode_batch(batch, &mut out);
        }
    }
}

/// Opens a connection to `address` (host:port, resolved each time: a peer's address may move).
async fn connect(address: &str) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    configure(&stream);
    SockRef::from(&stream).set_tcp_user_timeout(Some(UNACKNOWLEDGED_FOR))?;
    Ok(stream)
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

enum StreamEnd {
    Shutdown,
    Broken(String),
    /// The peer refused our batches (another cluster, or a different id-to-address mapping).
    Refused(String),
}
