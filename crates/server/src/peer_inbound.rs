//! The receiving end of a peer connection: frames in, batches checked, messages to the node.
//!
//! A batch from a foreign cluster, from a non-member, addressed to another node, or one that
//! does not decode is refused: the reason goes back as one frame (the sender logs it) and the
//! connection closes. That is a configuration error, so it is logged loudly on both ends.

use bytes::BytesMut;
use kvraft_proto::peer_wire::{
    decode_batch, encode_refusal, FrameReader, WireError, MAX_PEER_FRAME_BYTES,
};
use kvraft_proto::PeerBatch;
use tokio::net::TcpStream;

use crate::config::ServerConfig;
use crate::conn::close_after;
use crate::context::NodeContext;
use crate::node::Input;

enum Ended {
    /// The sender closed the connection, or the node is shutting down.
    Closed,
    Wire(WireError),
    Refused(String),
}

/// Serves one peer connection (its magic already read) until it closes, is refused, or the
/// node shuts down.
pub(crate) async fn serve_peer_connection(mut stream: TcpStream, node: NodeContext) {
    let remote = stream.peer_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
    let ended = tokio::select! {
        ended = receive(&mut stream, &node) => ended,
        _ = node.stopping() => Ended::Closed,
    };
    match ended {
        Ended::Closed => tracing::debug!("peer connection from {remote} closed"),
        Ended::Wire(e) => tracing::debug!("peer connection from {remote} ends: {e}"),
        Ended::Refused(why) => {
            tracing::error!("refused messages from {remote}: {why}");
            let mut frame = BytesMut::new();
            encode_refusal(&why, &mut frame);
            close_after(stream, &frame).await;
        }
    }
}

async fn receive(stream: &mut TcpStream, node: &NodeContext) -> Ended {
    let mut frames = FrameReader::new(MAX_PEER_FRAME_BYTES);
    loop {
        let frame = match frames.next_frame(stream).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ended::Closed,
            Err(e) => return Ended::Wire(e),
        };
        let batch = match decode_batch(frame) {
            Ok(batch) => batch,
            Err(e) => return Ended::Refused(format!("a batch does not decode: {e}")),
        };
        let batch = match PeerBatch::try_from(batch) {
            Ok(batch) => batch,
            Err(e) => return Ended::Refused(format!("malformed batch: {e}")),
        };
        if let Err(why) = check_batch(&node.config, &batch) {
            return Ended::Refused(why);
        }
        for msg in batch.messages {
            if node.to_node(Input::Peer(msg)).await.is_err() {
                return Ended::Closed;
            }
        }
    }
}

/// Whether this node accepts `batch`: same cluster, addressed to this node, from a member.
pub(crate) fn check_batch(c: &ServerConfig, batch: &PeerBatch) -> Result<(), String> {
    if batch.cluster_id != c.cluster_id {
        return Err(format!(
            "node {} belongs to cluster {}, not to cluster {} of node {}: check --cluster (and \
             --cluster-id) on both nodes",
            c.id.0, c.cluster_id, batch.cluster_id, batch.from.0
        ));
    }
    if batch.to != c.id {
        return Err(format!(
            "this is node {}, the batch is for node {}: the sender's --cluster maps addresses \
             differently",
            c.id.0, batch.to.0
        ));
    }
    if batch.from == c.id || c.member(batch.from).is_none() {
        return Err(format!("node {} is not a peer of node {}", batch.from.0, c.id.0));
    }
    Ok(())
}
