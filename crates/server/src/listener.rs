//! The node's one listening port, shared by gRPC clients, client-frames clients and peers: each
//! accepted connection is told apart by its first byte (the plain-TCP protocols start with a
//! magic beginning with `K`, HTTP/2 with `P`), then by its magic, and goes to the peer
//! receiver, the client-frames server or the gRPC server.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kvraft_proto::frame::{encode_raw_frame, read_magic, CLIENT_MAGIC, PEER_MAGIC};
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::client_inbound::serve_client_connection;
use crate::peer_inbound::serve_peer_connection;
use crate::service::{KvServer, Shared};

/// How long a new connection may stay silent before it is dropped unclassified.
const FIRST_BYTE_WITHIN: Duration = Duration::from_secs(10);
/// How long a connection closed with a last frame (a refusal, a protocol error) is drained,
/// so that closing it does not reset it before the other end has read that frame.
const LINGER_AFTER_LAST_FRAME: Duration = Duration::from_secs(1);

/// The connections for the gRPC server, as its `serve_with_incoming` takes them.
pub type GrpcIncoming = ReceiverStream<std::io::Result<TcpStream>>;

/// Starts accepting on `listener`; returns the gRPC server's share of the connections. The
/// accept loop ends when the node shuts down (which also ends the gRPC stream).
pub fn accept_connections(
    listener: TcpListener,
    shared: Shared,
    kv: Arc<KvServer>,
) -> GrpcIncoming {
    let (grpc, incoming) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut shutdown = shared.shutdown.clone();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            match accepted {
                Ok((stream, _)) => {
                    configure(&stream);
                    tokio::spawn(route(stream, grpc.clone(), shared.clone(), kv.clone()));
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

/// Without TCP_NODELAY a small reply can wait ~40 ms for the other side's delayed ACK (found
/// by `kvraft bench`: every Get took 44 ms). Keepalive finds peers that vanished.
pub fn configure(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(2));
    let _ = SockRef::from(stream).set_tcp_keepalive(&keepalive);
}

async fn route(
    mut stream: TcpStream,
    grpc: mpsc::Sender<std::io::Result<TcpStream>>,
    shared: Shared,
    kv: Arc<KvServer>,
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
        Ok(Ok(PEER_MAGIC)) => serve_peer_connection(stream, shared).await,
        Ok(Ok(CLIENT_MAGIC)) => serve_client_connection(stream, shared, kv).await,
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

/// Writes `last` (a frame saying why), closes our side, and drains the other side for a
/// while, so that closing does not reset the connection before the other end has read why.
pub async fn close_after(mut stream: TcpStream, last: &[u8]) {
    let _ = tokio::time::timeout(LINGER_AFTER_LAST_FRAME, async {
        stream.write_all(last).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}
