//! One call to one server over its transport, its reply decoded with `kvraft-proto`'s
//! conversions (the one place wire and domain types meet), keeping the leader hint's address,
//! which the domain error does not carry.

use std::time::Duration;

use kvraft_kv::Reply;
use kvraft_proto::v1 as pb;
use kvraft_proto::KvRequest;
use tonic::Status;

use crate::remote::connections::{Server, ServerChannel};

/// A server's reply, decoded.
#[derive(Debug)]
pub(crate) struct WireReply {
    pub(crate) reply: Reply,
    /// The address a NOT_LEADER hint gave, if any.
    pub(crate) leader_address: Option<String>,
}

/// Why a call brought back no reply.
#[derive(Debug)]
pub(crate) enum CallFailure {
    /// The status the call ended with (a transport failure is UNAVAILABLE).
    Status(Status),
    /// A reply that does not decode.
    Malformed(String),
}

/// The reply messages' refusals, for the hint's address.
trait RefusalOf {
    fn refusal(&self) -> Option<&pb::Error>;
}

impl RefusalOf for pb::PutReply {
    fn refusal(&self) -> Option<&pb::Error> {
        match &self.result {
            Some(pb::put_reply::Result::Error(e)) => Some(e),
            _ => None,
        }
    }
}

impl RefusalOf for pb::AppendReply {
    fn refusal(&self) -> Option<&pb::Error> {
        match &self.result {
            Some(pb::append_reply::Result::Error(e)) => Some(e),
            _ => None,
        }
    }
}

impl RefusalOf for pb::GetReply {
    fn refusal(&self) -> Option<&pb::Error> {
        match &self.result {
            Some(pb::get_reply::Result::Error(e)) => Some(e),
            _ => None,
        }
    }
}

fn decode<R>(reply: R) -> Result<WireReply, CallFailure>
where
    R: RefusalOf,
    Reply: TryFrom<R, Error = kvraft_proto::ConvertError>,
{
    let leader_address = reply
        .refusal()
        .and_then(|e| e.leader_hint.as_ref())
        .map(|hint| hint.address.clone())
        .filter(|address| !address.is_empty());
    let reply = Reply::try_from(reply).map_err(|e| CallFailure::Malformed(e.to_string()))?;
    Ok(WireReply { reply, leader_address })
}

/// Sends `request` to `server` once; gRPC calls carry `timeout` as their deadline (the caller
/// bounds the whole call by it too).
pub(crate) async fn call(
    server: &Server,
    request: KvRequest,
    timeout: Duration,
) -> Result<WireReply, CallFailure> {
    match &server.channel {
        ServerChannel::Grpc(grpc) => call_grpc(grpc.client(), request, timeout).await,
        ServerChannel::Frames(frames) => call_frames(frames, request).await,
    }
}

async fn call_grpc(
    mut client: pb::kv_service_client::KvServiceClient<tonic::transport::Channel>,
    request: KvRequest,
    timeout: Duration,
) -> Result<WireReply, CallFailure> {
    fn req<T>(message: T, timeout: Duration) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.set_timeout(timeout);
        r
    }
    let failed = CallFailure::Status;
    match request {
        KvRequest::Put(r) => {
            decode(client.put(req(r, timeout)).await.map_err(failed)?.into_inner())
        }
        KvRequest::Append(r) => {
            decode(client.append(req(r, timeout)).await.map_err(failed)?.into_inner())
        }
        KvRequest::Get(r) => {
            decode(client.get(req(r, timeout)).await.map_err(failed)?.into_inner())
        }
    }
}

async fn call_frames(
    frames: &crate::remote::frames::FramesChannel,
    request: KvRequest,
) -> Result<WireReply, CallFailure> {
    use pb::client_frame::Call;
    use pb::server_frame::Result as R;
    let call = match request {
        KvRequest::Put(r) => Call::Put(r),
        KvRequest::Append(r) => Call::Append(r),
        KvRequest::Get(r) => Call::Get(r),
    };
    match frames.call(call).await.map_err(CallFailure::Status)? {
        R::Put(r) => decode(r),
        R::Append(r) => decode(r),
        R::Get(r) => decode(r),
        R::Error(_) => unreachable!("FramesChannel::call turns errors into a Status"),
    }
}
