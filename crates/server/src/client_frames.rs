//! The client-frames adapter of the client API (`frames.proto`): calls read as frames run
//! concurrently, each through [`pb_calls`] and so through the same checks and answers as a gRPC
//! call, and their answers are written back as they complete, several per write when they
//! complete together. A call refused by the API carries its status as a `CallError`.
//!
//! One task per connection does it all, so a call costs the node task's wake-up and this
//! task's, against tonic's connection task, a task per call, and HTTP/2 framing both ways.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use kvraft_proto::frame::{encode_frame, FrameReader, WireError};
use kvraft_proto::v1 as pb;
use prost::Message as _;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::api::{ApiError, ClientApi};
use crate::conn::close_after;
use crate::pb_calls;

/// Calls one connection may have in flight; beyond it the connection is not read until some
/// complete (TCP flow control then slows the client). Each holds its request (values up to
/// `--max-value-bytes`), so this bounds a connection's memory, as HTTP/2's limit of 200
/// concurrent streams does for a gRPC connection.
const MAX_CALLS_IN_FLIGHT: usize = 256;

/// Serves one client-frames connection (its magic already read) until the client closes it,
/// breaks the protocol, or the node shuts down.
pub(crate) async fn serve_client_connection(stream: TcpStream, api: Arc<ClientApi>) {
    let remote = stream.peer_addr().ok();
    let (mut reader, mut writer) = stream.into_split();
    let mut frames = FrameReader::new(api.max_request_bytes());
    let mut calls = FuturesUnordered::new();
    let mut out = BytesMut::new();
    let node = api.node().clone();
    let stopping = node.stopping();
    tokio::pin!(stopping);
    let fatal = loop {
        tokio::select! {
            frame = frames.next_frame(&mut reader), if calls.len() < MAX_CALLS_IN_FLIGHT => {
                let frame = match frame {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break None,
                    Err(e @ WireError::FrameTooLarge { .. }) => {
                        break Some(ApiError::InvalidArgument(e.to_string()))
                    }
                    Err(e) => {
                        tracing::debug!("client connection from {remote:?} ends: {e}");
                        break None;
                    }
                };
                match pb::ClientFrame::decode(frame) {
                    Ok(pb::ClientFrame { id, call: Some(call) }) => {
                        let api = api.clone();
                        calls.push(async move { (id, answer(&api, remote, call).await) });
                    }
                    Ok(pb::ClientFrame { id, call: None }) => {
                        let refusal = ApiError::InvalidArgument("a ClientFrame without a call".into());
                        let error = pb::server_frame::Result::Error(call_error(&refusal));
                        encode_frame(&pb::ServerFrame { id, result: Some(error) }, &mut out);
                        if writer.write_all(&out).await.is_err() {
                            break None;
                        }
                        out.clear();
                    }
                    Err(e) => {
                        break Some(ApiError::InvalidArgument(format!("a frame does not decode: {e}")))
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
    if let Some(refusal) = fatal {
        tracing::warn!("closing client connection from {remote:?}: {refusal}");
        out.clear();
        let error = pb::server_frame::Result::Error(call_error(&refusal));
        encode_frame(&pb::ServerFrame { id: 0, result: Some(error) }, &mut out);
        if let Ok(stream) = reader.reunite(writer) {
            close_after(stream, &out).await;
        }
    }
}

/// One call through the client API, its answer as a frame carries it.
async fn answer(
    api: &ClientApi,
    remote: Option<SocketAddr>,
    call: pb::client_frame::Call,
) -> pb::server_frame::Result {
    use pb::client_frame::Call;
    use pb::server_frame::Result as R;
    let result = match call {
        Call::Put(r) => pb_calls::put(api, remote, r).await.map(R::Put),
        Call::Append(r) => pb_calls::append(api, remote, r).await.map(R::Append),
        Call::Get(r) => pb_calls::get(api, remote, r).await.map(R::Get),
    };
    result.unwrap_or_else(|refusal| R::Error(call_error(&refusal)))
}

/// A refusal as a frame carries it: the gRPC status code the API error maps to, and why.
fn call_error(refusal: &ApiError) -> pb::CallError {
    pb::CallError { code: pb_calls::code_of(refusal) as i32, message: refusal.to_string() }
}
