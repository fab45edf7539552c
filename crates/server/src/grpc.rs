//! The gRPC adapter of the client API (`KvService` in `kv.proto`): tonic decodes, [`pb_calls`]
//! does the rest, and an [`ApiError`] becomes the status its code names. `Status` is gRPC-only.
//!
//! Two refusals happen inside tonic, before a handler runs, and would carry tonic's own codes
//! where `kv.proto` promises INVALID_ARGUMENT (and client frames answer it): a request that does
//! not decode, for instance a key that is not UTF-8 (tonic: INTERNAL), and one over the size
//! limit, refused from its length prefix before the body is read (tonic: OUT_OF_RANGE).
//! [`RefusalsAsInvalidArgument`], a layer around the service, rewrites those two codes. It
//! touches nothing else: this service's handlers answer only with the codes of [`ApiError`].

use std::sync::Arc;
use std::task::{Context, Poll};

use kvraft_proto::v1 as pb;
use kvraft_proto::v1::kv_service_server::{KvService, KvServiceServer};
use tonic::codegen::http;
use tonic::{Request, Response, Status};

use crate::api::{ApiError, ClientApi};
use crate::node::NodeStatus;
use crate::pb_calls;

/// The gRPC service over a node's client API.
#[derive(Debug)]
pub(crate) struct GrpcService {
    api: Arc<ClientApi>,
}

/// The service as tonic serves it, with the request size limit of the API.
pub(crate) fn service(api: Arc<ClientApi>) -> KvServiceServer<GrpcService> {
    let limit = api.max_request_bytes();
    KvServiceServer::new(GrpcService { api }).max_decoding_message_size(limit)
}

fn status_of(e: ApiError) -> Status {
    Status::new(pb_calls::code_of(&e), e.to_string())
}

#[tonic::async_trait]
impl KvService for GrpcService {
    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutReply>, Status> {
        let remote = request.remote_addr();
        let reply = pb_calls::put(&self.api, remote, request.into_inner()).await;
        reply.map(Response::new).map_err(status_of)
    }

    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendReply>, Status> {
        let remote = request.remote_addr();
        let reply = pb_calls::append(&self.api, remote, request.into_inner()).await;
        reply.map(Response::new).map_err(status_of)
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetReply>, Status> {
        let remote = request.remote_addr();
        let reply = pb_calls::get(&self.api, remote, request.into_inner()).await;
        reply.map(Response::new).map_err(status_of)
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        let status = self.api.status().await.map_err(status_of)?;
        Ok(Response::new(status_reply(&self.api, status)))
    }
}

fn status_reply(api: &ClientApi, s: NodeStatus) -> pb::StatusReply {
    let node = api.node();
    let c = &node.config;
    pb::StatusReply {
        node_id: c.id.0,
        address: c.address().to_string(),
        cluster_id: c.cluster_id.0,
        role: pb::Role::from(s.role).into(),
        term: s.term.0,
        leader_id: s.leader.map_or(0, |l| l.0),
        leader_address: s.leader.and_then(|l| api.address_of(l)).unwrap_or_default(),
        commit_index: s.commit_index.0,
        applied_index: s.applied_index.0,
        last_log_index: s.last_log_index.0,
        snapshot_index: s.snapshot.index.0,
        snapshot_term: s.snapshot.term.0,
        members: c
            .cluster
            .iter()
            .map(|m| pb::Member { node_id: m.id.0, address: m.address.clone() })
            .collect(),
        uptime_ms: node.started.elapsed().as_millis() as u64,
        server_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// A tower layer for the gRPC server: tonic's own refusals of a malformed request (INTERNAL:
/// it does not decode) or an oversized one (OUT_OF_RANGE: decided from its length prefix) are
/// answered INVALID_ARGUMENT, as `kv.proto` promises. The handlers never answer either code.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RefusalsAsInvalidArgument;

impl<S> tower::Layer<S> for RefusalsAsInvalidArgument {
    type Service = InvalidArgumentService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InvalidArgumentService { inner }
    }
}

/// The service [`RefusalsAsInvalidArgument`] wraps.
#[derive(Clone, Debug)]
pub(crate) struct InvalidArgumentService<S> {
    inner: S,
}

type RewriteFuture<F, B> =
    futures_util::future::MapOk<F, fn(http::Response<B>) -> http::Response<B>>;

impl<S, Req, B> tower::Service<Req> for InvalidArgumentService<S>
where
    S: tower::Service<Req, Response = http::Response<B>>,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = RewriteFuture<S::Future, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        use futures_util::TryFutureExt;
        self.inner.call(request).map_ok(refusal_as_invalid_argument)
    }
}

/// Rewrites a trailers-only INTERNAL or OUT_OF_RANGE answer (the form tonic's refusals before
/// any handler take: the status in the response headers) to INVALID_ARGUMENT.
fn refusal_as_invalid_argument<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let code = headers.get("grpc-status").and_then(|v| v.to_str().ok()?.parse::<i32>().ok());
    if code == Some(tonic::Code::Internal as i32) || code == Some(tonic::Code::OutOfRange as i32) {
        let invalid = tonic::Code::InvalidArgument as i32;
        headers.insert("grpc-status", http::HeaderValue::from(invalid));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: Option<tonic::Code>) -> http::Response<()> {
        let mut response = http::Response::new(());
        if let Some(code) = code {
            response.headers_mut().insert("grpc-status", http::HeaderValue::from(code as i32));
        }
        response
    }

    fn code(response: &http::Response<()>) -> Option<String> {
        response.headers().get("grpc-status").map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn only_tonics_refusals_become_invalid_argument() {
        for refused in [tonic::Code::Internal, tonic::Code::OutOfRange] {
            let rewritten = refusal_as_invalid_argument(answer(Some(refused)));
            assert_eq!(code(&rewritten), Some("3".into()), "{refused:?}");
        }
        for kept in [tonic::Code::ResourceExhausted, tonic::Code::Unavailable, tonic::Code::Ok] {
            let same = refusal_as_invalid_argument(answer(Some(kept)));
            assert_eq!(code(&same), Some((kept as i32).to_string()), "{kept:?}");
        }
        assert_eq!(code(&refusal_as_invalid_argument(answer(None))), None);
    }
}
