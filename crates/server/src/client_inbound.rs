//! The server end of a client-frames connection (`frames.proto`): calls read as frames run
//! concurrently, each through the same checks as a gRPC call ([`KvServer::call`]), and their
//! answers are written back as they complete, several per write when they complete together.
//!
//! One task per connection does it all, so a call costs the node task's wake-up and this
//! task's, against tonic's connection task, a task per call, and HTTP/2 framing both ways.

use std::sync::Arc;

use bytes::BytesMut;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use kvraft_proto::frame::{encode_frame, FrameReader, WireError};
use kvraft_proto::v1 as pb;
use prost::Message as _;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tonic::Status;

use crate::listener::close_after;
use crate::service::{call_error, KvServer, Shared};

/// Calls one connection may have in flight; beyond it the connection is not read until some
/// complete (TCP flow control then slows the client). Each holds its request (values up to
/// `--max-value-bytes`), so this bounds a connection's memory, as HTTP/2's limit of 200
/// concurrent streams does for a gRPC connection.
const MAX_CALLS_IN_FLIGHT: usize = 256;

/// Serves one client-frames connection (its magic already read) until the client closes it,
/// breaks the protocol, or the node shuts down.
pub async fn serve_client_connection(stream: TcpStream, shared: Shared, kv: Arc<KvServer>) {
    let remote = stream.peer_addr().ok();
    let (mut reader, mut writer) = stream.into_split();
    let mut frames = FrameReader::new(kv.max_request_bytes());
    let mut calls = FuturesUnordered::new();
    let mut out = BytesMut::new();
    let mut shutdown = shared.shutdown.clone();
    let stopping = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopping);
    let fatal = loop {
        tokio::select! {
            frame = frames.next_frame(&mut reader), if calls.len() < MAX_CALLS_IN_FLIGHT => {
                let frame = match frame {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break None,
                    Err(e @ WireError::FrameTooLarge { .. }) => {
                        break Some(Status::invalid_argument(e.to_string()))
                    }
                    Err(e) => {
                        tracing::debug!("client connection from {remote:?} ends: {e}");
                        break None;
                    }
                };
                match pb::ClientFrame::decode(frame) {
                    Ok(pb::ClientFrame { id, call: Some(call) }) => {
                        let kv = kv.clone();
                        calls.push(async move { (id, kv.call(remote, call).await) });
                    }
                    Ok(pb::ClientFrame { id, call: None }) => {
                        let status = Status::invalid_argument("a ClientFrame without a call");
                        let error = pb::server_frame::Result::Error(call_error(&status));
                        encode_frame(&pb::ServerFrame { id, result: Some(error) }, &mut out);
                        if writer.write_all(&out).await.is_err() {
                            break None;
                        }
                        out.clear();
                    }
                    Err(e) => {
                        break Some(Status::invalid_argument(format!("a frame does not decode: {e}")))
                    }
                }
            }
            Some((id, result)) = calls.next(), if !calls.is_empty() => {
                encode_frame(&pb::ServerFrame { id, result: Some(result) }, &mut out);
                // Answers that completed together go out in one write.
                while let Some(Some((id, result))) = calls.next().now_or_never() {
                    encode_frame(&pb::ServerFrame { id, result: Some(result) }, &mut out);
                }
                if writer.write_all(&out).await.is_err() {
                    break None;
                }
                out.clear();
                if out.capacity() > 1 << 20 {
                    out = BytesMut::new();
                }
            }
            _ = &mut stopping => break None,
        }
    };
    if let Some(status) = fatal {
        tracing::warn!("closing client connection from {remote:?}: {}", status.message());
        out.clear();
        let error = pb::server_frame::Result::Error(call_error(&status));
        encode_frame(&pb::ServerFrame { id: 0, result: Some(error) }, &mut out);
        if let Ok(stream) = reader.reunite(writer) {
            close_after(stream, &out).await;
        }
    }
}
