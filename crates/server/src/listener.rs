//! The node's one listening port, shared by gRPC clients, client-frames clients and peers: each
//! accepted connection is told apart by its first byte (the plain-TCP protocols start with a
//! magic beginning with `K`, HTTP/2 with `P`), then by its magic, and goes to the peer
//! receiver, the client-frames server or the gRPC server.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kvraft_proto::frame::{encode_raw_frame, read_magic, CLIENT_MAGIC, PEER_MAGIC};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::api::ClientApi;
use crate::client_frames::serve_client_connection;
use crate::conn::{close_after, configure};
use crate::peer_inbound::serve_peer_connection;

/// How long a new connection may stay silent before it is dropped unclassified.
const FIRST_BYTE_WITHIN: Duration = Duration::from_secs(10);

/// The connections for the gRPC server, as its `serve_with_incoming` takes them.
pub(crate) type GrpcIncoming = ReceiverStream<std::io::Result<TcpStream>>;

/// Starts accepting on `listener`; returns the gRPC server's share of the connections. The
/// accept loop ends when the node shuts down (which also ends the gRPC stream).
pub(crate) fn accept_connections(listener: TcpListener, api: Arc<ClientApi>) -> GrpcIncoming {
    let (grpc, incoming) = mpsc::channel(64);
    tokio::spawn(async move {
        let node = api.node().clone();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = node.stopping() => return,
            };
            match accepted {
                Ok((stream, _)) => {
                    configure(&stream);
                    tokio::spawn(route(stream, grpc.clone(), api.clone()));
                }
                Err(e) => {
                    // Out of file descriptors, most likely: pause rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    ReceiverStream::new(incoming)
}

async fn route(
    mut stream: TcpStream,
    grpc: mpsc::Sender<std::io::Result<TcpStream>>,
    api: Arc<ClientApi>,
) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(FIRST_BYTE_WITHIN, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == PEER_MAGIC[0] => {}
        Ok(Ok(1)) => {
            let _ = grpc.send(Ok(stream)).await;
            return;
        }
        // Closed, failed, or silent: nothing to serve.
        _ => return,
    }
    match tokio::time::timeout(FIRST_BYTE_WITHIN, read_magic(&mut stream)).await {
        Ok(Ok(PEER_MAGIC)) => serve_peer_connection(stream, api.node().clone()).await,
        Ok(Ok(CLIENT_MAGIC)) => serve_client_connection(stream, api).await,
        Ok(Ok(other)) => {
            let why = format!(
                "unknown protocol {:?}: this server speaks {:?}, {:?} and gRPC",
                String::from_utf8_lossy(&other),
                String::from_utf8_lossy(&PEER_MAGIC),
                String::from_utf8_lossy(&CLIENT_MAGIC)
            );
            tracing::warn!("refused a connection from {:?}: {why}", stream.peer_addr().ok());
            let mut frame = BytesMut::new();
            encode_raw_frame(why.as_bytes(), &mut frame);
            close_after(stream, &frame).await;
        }
        _ => {}
    }
}
