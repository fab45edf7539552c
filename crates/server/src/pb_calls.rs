//! The client calls as protobuf messages, shared by the two protocols that carry them (gRPC and
//! client frames): decode the wire request into a domain request (a malformed one is an
//! [`ApiError::InvalidArgument`]), run it through [`ClientApi::execute`], encode the reply,
//! with the leader's address filled into a NOT_LEADER hint.

use std::net::SocketAddr;

use kvraft_kv::{ClientRequest, KvError, Reply};
use kvraft_proto::v1 as pb;
use kvraft_proto::{ConvertError, OutcomeMismatch};

use crate::api::{ApiError, ClientApi};

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidArgument(e.to_string())
}

/// A domain refusal as the wire carries it, the leader hint with its address.
fn wire_error(api: &ClientApi, e: KvError) -> pb::Error {
    pb::Error::from(e).with_leader_address(|id| api.address_of(id))
}

/// One call: `Req` decoded, executed, and answered as `Rep` (`error` builds the reply that
/// carries a refusal). A client reusing a sequence number for another kind of operation gets
/// its mistake named rather than an invented answer.
async fn call<Req, Rep>(
    api: &ClientApi,
    remote: Option<SocketAddr>,
    request: Req,
    error: fn(pb::Error) -> Rep,
) -> Result<Rep, ApiError>
where
    ClientRequest: TryFrom<Req, Error = ConvertError>,
    Rep: TryFrom<Reply, Error = OutcomeMismatch>,
{
    let request = ClientRequest::try_from(request).map_err(invalid)?;
    match api.execute(remote, request).await? {
        Err(e) => Ok(error(wire_error(api, e))),
        ok => Rep::try_from(ok).map_err(invalid),
    }
}

pub(crate) async fn put(
    api: &ClientApi,
    remote: Option<SocketAddr>,
    r: pb::PutRequest,
) -> Result<pb::PutReply, ApiError> {
    call(api, remote, r, |e| pb::PutReply { result: Some(pb::put_reply::Result::Error(e)) }).await
}

pub(crate) async fn append(
    api: &ClientApi,
    remote: Option<SocketAddr>,
    r: pb::AppendRequest,
) -> Result<pb::AppendReply, ApiError> {
    let error = |e| pb::AppendReply { result: Some(pb::append_reply::Result::Error(e)) };
    call(api, remote, r, error).await
}

pub(crate) async fn get(
    api: &ClientApi,
    remote: Option<SocketAddr>,
    r: pb::GetRequest,
) -> Result<pb::GetReply, ApiError> {
    call(api, remote, r, |e| pb::GetReply { result: Some(pb::get_reply::Result::Error(e)) }).await
}

/// The gRPC status code each API error is answered with, on gRPC and in client frames'
/// `CallError` alike.
pub(crate) fn code_of(e: &ApiError) -> tonic::Code {
    match e {
        ApiError::InvalidArgument(_) => tonic::Code::InvalidArgument,
        ApiError::Overloaded(_) => tonic::Code::ResourceExhausted,
        ApiError::Unavailable(_) => tonic::Code::Unavailable,
    }
}
