//! One node's `Status` (gRPC only), for `kvraft status` and tooling.

use std::time::Duration;

use kvraft_proto::v1 as pb;
use kvraft_proto::v1::kv_service_client::KvServiceClient;

use crate::remote::connections::{endpoint_of, parse_address};
use crate::remote::error::{
    classify_status, describe_error, describe_status, fatal_error, format_duration, ClientError,
    StatusClass,
};

/// Asks the server at `endpoint` (`host:port`) for its [`pb::StatusReply`], connecting afresh;
/// `timeout` bounds the whole exchange. Needs a tokio runtime.
pub async fn status(endpoint: &str, timeout: Duration) -> Result<pb::StatusReply, ClientError> {
    let address = parse_address(endpoint)?;
    let endpoint = endpoint_of(&address, timeout)?;
    let unreachable =
        |reason: String| ClientError::Unreachable { endpoint: address.clone(), reason };
    let call = async {
        let channel = endpoint.connect().await.map_err(|e| unreachable(describe_error(&e)))?;
        let mut request = tonic::Request::new(pb::StatusRequest {});
        request.set_timeout(timeout);
        match KvServiceClient::new(channel).status(request).await {
            Ok(reply) => Ok(reply.into_inner()),
            Err(status) => Err(match classify_status(status.code()) {
                StatusClass::Retry => unreachable(describe_status(&status)),
                StatusClass::Overloaded | StatusClass::Fatal => fatal_error(&status),
            }),
        }
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(unreachable(format!("no answer within {}", format_duration(timeout)))),
    }
}
