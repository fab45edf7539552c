//! The same bad input gets the same status code on every wire of the shared port: a request
//! whose key is not UTF-8, and one larger than the node accepts, are INVALID_ARGUMENT over gRPC
//! (where tonic itself would say INTERNAL and OUT_OF_RANGE) and over client frames alike.

use std::time::Duration;

use bytes::BytesMut;
use kvraft_proto::frame::{encode_frame, FrameReader, CLIENT_MAGIC};
use kvraft_proto::v1 as pb;
use kvraft_server::{ServerArgs, ServerConfig, ServerHandle};
use prost::Message as _;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tonic::codegen::http::uri::PathAndQuery;

/// A `PutRequest` as bytes on the wire, its key free to be any bytes (the real message's key
/// is a protobuf `string`, which must be UTF-8).
#[derive(Clone, PartialEq, prost::Message)]
struct RawPut {
    #[prost(uint64, tag = "1")]
    client_id: u64,
    #[prost(uint64, tag = "2")]
    sequence: u64,
    #[prost(bytes = "vec", tag = "3")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    value: Vec<u8>,
}

/// A `ClientFrame` carrying a [`RawPut`] (field 2 of the `call` oneof).
#[derive(Clone, PartialEq, prost::Message)]
struct RawFrame {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(message, optional, tag = "2")]
    put: Option<RawPut>,
}

const MAX_VALUE_BYTES: usize = 4096;

fn not_utf8() -> RawPut {
    RawPut { client_id: 7, sequence: 1, key: vec![b'k', 0xff, 0xfe], value: b"v".to_vec() }
}

fn oversized() -> RawPut {
    // Beyond the value limit and beyond the whole-request limit derived from it.
    RawPut {
        client_id: 7,
        sequence: 1,
        key: b"k".to_vec(),
        value: vec![b'x'; 4 * MAX_VALUE_BYTES + 8192],
    }
}

/// A one-node cluster (it elects itself) with small size limits.
async fn one_node(dir: &std::path::Path) -> ServerHandle {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let args = ServerArgs {
        id: Some(1),
        cluster: Some(format!("1=127.0.0.1:{port}")),
        data_dir: Some(dir.to_path_buf()),
        max_value_bytes: Some(MAX_VALUE_BYTES),
        ..ServerArgs::default()
    };
    kvraft_server::start(ServerConfig::resolve(&args).unwrap()).await.unwrap()
}

/// The status code a raw Put gets over gRPC.
async fn grpc_code(addr: std::net::SocketAddr, put: RawPut) -> tonic::Code {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<RawPut, pb::PutReply>::default();
    let path = PathAndQuery::from_static("/kvraft.v1.KvService/Put");
    let status = grpc.unary(tonic::Request::new(put), path, codec).await.unwrap_err();
    status.code()
}

/// The status code a raw Put gets over client frames (an undecodable or oversized frame is
/// refused with a frame of id 0, then the connection closes).
async fn frames_code(addr: std::net::SocketAddr, put: RawPut) -> tonic::Code {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut bytes = BytesMut::from(&CLIENT_MAGIC[..]);
    encode_frame(&RawFrame { id: 5, put: Some(put) }, &mut bytes);
    // The server may close as soon as it has read the length prefix of an oversized frame.
    let _ = stream.write_all(&bytes).await;
    let frame = FrameReader::new(1 << 20).next_frame(&mut stream).await.unwrap().unwrap();
    let answer = pb::ServerFrame::decode(frame).unwrap();
    let Some(pb::server_frame::Result::Error(e)) = answer.result else {
        panic!("expected a refusal, got {answer:?}")
    };
    tonic::Code::from_i32(e.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_invalid_argument_on_every_wire() {
    kvraft_server::init_logging();
    let dir = std::env::temp_dir().join(format!("kvraft-wire-errors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = one_node(&dir).await;
    let addr = server.local_addr();
    for (what, put) in
        [("a key that is not UTF-8", not_utf8()), ("an oversized request", oversized())]
    {
        let over_grpc = tokio::time::timeout(Duration::from_secs(10), grpc_code(addr, put.clone()));
        let over_frames = tokio::time::timeout(Duration::from_secs(10), frames_code(addr, put));
        assert_eq!(over_grpc.await.unwrap(), tonic::Code::InvalidArgument, "{what} over gRPC");
        assert_eq!(over_frames.await.unwrap(), tonic::Code::InvalidArgument, "{what} over frames");
    }
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
