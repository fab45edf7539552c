//! Three real servers in one process ([`LocalCluster`]), on loopback: replication, failover,
//! restart from disk, and refusals (foreign data directory, oversized requests).

use std::time::{Duration, Instant};

use kvraft_proto::v1 as pb;
use kvraft_proto::v1::kv_service_client::KvServiceClient;
use kvraft_server::{free_ports, LocalCluster, LocalClusterSpec, ServerArgs, ServerConfig};
use tonic::transport::Channel;

/// The tests' snapshot threshold: small, so that a few dozen writes compact the log.
const MAX_RAFT_STATE_BYTES: u64 = 4096;

fn args(dir: &std::path::Path, cluster: &str, id: u64) -> ServerArgs {
    ServerArgs {
        id: Some(id),
        cluster: Some(cluster.to_string()),
        data_dir: Some(dir.join(format!("node{id}"))),
        max_raft_state_bytes: Some(MAX_RAFT_STATE_BYTES),
        ..ServerArgs::default()
    }
}

fn config(dir: &std::path::Path, cluster: &str, id: u64) -> ServerConfig {
    ServerConfig::resolve(&args(dir, cluster, id)).unwrap()
}

/// Three nodes on free ports, their data in a scratch directory.
async fn start(name: &str) -> LocalCluster {
    start_with(name, ServerArgs::default()).await
}

/// [`start`] with `args` (every node's options) adjusted.
async fn start_with(name: &str, mut args: ServerArgs) -> LocalCluster {
    if std::env::var_os("TEST_DEBUG").is_some() {
        kvraft_server::init_logging();
    }
    args.max_raft_state_bytes.get_or_insert(MAX_RAFT_STATE_BYTES);
    let spec = LocalClusterSpec { args, ..LocalClusterSpec::scratch(name, 3) };
    LocalCluster::start(&spec).await.unwrap()
}

async fn connect(c: &LocalCluster, i: usize) -> Option<KvServiceClient<Channel>> {
    KvServiceClient::connect(format!("http://{}", c.endpoint(i))).await.ok()
}

/// The index of the node that says it leads, waiting up to `within`.
async fn find_leader(c: &LocalCluster, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        for i in 0..c.len() {
            if !c.is_running(i) {
                continue;
            }
            let Some(mut kv) = connect(c, i).await else { continue };
            if let Ok(s) = kv.status(pb::StatusRequest {}).await {
                let s = s.into_inner();
                if std::env::var_os("TEST_DEBUG").is_some() {
                    eprintln!(
                        "node {}: role {} term {} commit {}",
                        s.node_id, s.role, s.term, s.commit_index
                    );
                }
                if s.role == pb::Role::Leader as i32 {
                    return i;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no leader within {within:?}");
}

/// Sends to the leader until it answers (a tiny clerk, enough for these tests).
async fn put(c: &LocalCluster, client: u64, seq: u64, key: &str, value: &str, append: bool) {
    for _ in 0..200 {
        let leader = find_leader(c, Duration::from_secs(5)).await;
        let Some(mut kv) = connect(c, leader).await else { continue };
        let done = if append {
            let r = pb::AppendRequest {
                client_id: client,
                sequence: seq,
                key: key.into(),
                value: value.into(),
            };
            matches!(
                kv.append(r).await.map(|r| r.into_inner().result),
                Ok(Some(pb::append_reply::Result::Done(_)))
            )
        } else {
            let r = pb::PutRequest {
                client_id: client,
                sequence: seq,
                key: key.into(),
                value: value.into(),
            };
            matches!(
                kv.put(r).await.map(|r| r.into_inner().result),
                Ok(Some(pb::put_reply::Result::Done(_)))
            )
        };
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("put {key} never succeeded");
}

/// One Get sent straight to node `i`: its value, or the error code it answered with.
async fn get_at(c: &LocalCluster, i: usize, key: &str) -> Result<String, pb::ErrorCode> {
    let mut kv = connect(c, i).await.expect("node is up");
    let r = pb::GetRequest { client_id: 99, sequence: 1, key: key.into() };
    match kv.get(r).await.expect("the rpc itself succeeds").into_inner().result {
        Some(pb::get_reply::Result::Value(v)) => Ok(v),
        Some(pb::get_reply::Result::Error(e)) => Err(e.code()),
        None => panic!("empty GetReply"),
    }
}

async fn get(c: &LocalCluster, client: u64, seq: u64, key: &str) -> String {
    for _ in 0..200 {
        let leader = find_leader(c, Duration::from_secs(5)).await;
        let Some(mut kv) = connect(c, leader).await else { continue };
        let r = pb::GetRequest { client_id: client, sequence: seq, key: key.into() };
        if let Ok(Some(pb::get_reply::Result::Value(v))) =
            kv.get(r).await.map(|r| r.into_inner().result)
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("get {key} never succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicates_fails_over_and_restarts_from_disk() {
    let mut c = start("failover").await;
    put(&c, 7, 1, "a", "1", false).await;
    put(&c, 7, 2, "a", "2", true).await;
    assert_eq!(get(&c, 7, 3, "a").await, "12");

    // Enough writes to compact the log (max_raft_state_bytes is 4 KiB).
    for seq in 4..80 {
        put(&c, 7, seq, "k", &format!("{seq};"), true).await;
    }

    let old = find_leader(&c, Duration::from_secs(5)).await;
    c.stop_node(old).await.unwrap();
    let stopped_at = Instant::now();
    let new = find_leader(&c, Duration::from_secs(5)).await;
    let failover = stopped_at.elapsed();
    assert_ne!(new, old);
    eprintln!("failover: a new leader {failover:?} after the old one stopped");
    assert!(failover < Duration::from_secs(2), "failover took {failover:?}");
    put(&c, 7, 80, "a", "3", true).await;

    c.start_node(old).await.unwrap();
    // The restarted node catches up (by snapshot, since the log was compacted).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut kv = connect(&c, old).await.unwrap();
        let s = kv.status(pb::StatusRequest {}).await.unwrap().into_inner();
        if s.applied_index >= 80 {
            break;
        }
        assert!(Instant::now() < deadline, "restarted node stuck at {}", s.applied_index);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Whole-cluster restart: everything acknowledged is still there.
    for i in 0..3 {
        c.stop_node(i).await.unwrap();
    }
    for i in 0..3 {
        c.start_node(i).await.unwrap();
    }
    assert_eq!(get(&c, 8, 1, "a").await, "123");
    let k = get(&c, 8, 2, "k").await;
    let expected: String = (4..80).map(|s| format!("{s};")).collect();
    assert_eq!(k, expected);
    c.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_foreign_data_dirs_and_bad_requests() {
    let c = start("refusals").await;
    // Another cluster's definition on node 1's directory.
    let other = "1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3";
    let err = kvraft_server::start(config(c.data_dir(), other, 1)).await.unwrap_err().to_string();
    assert!(err.contains("belongs to another cluster"), "{err}");
    // Node 2's directory for node 1.
    let mut wrong = config(c.data_dir(), c.cluster(), 1);
    wrong.data_dir = c.data_dir().join("node2");
    let err = kvraft_server::start(wrong).await.unwrap_err().to_string();
    assert!(err.contains("belongs to node 2, not to node 1"), "{err}");

    // A fresh node given a different cluster definition (its own address differs) stops once
    // it hears from a peer.
    let port = free_ports(1).unwrap()[0];
    let mismatched = format!("1={},2={},3=127.0.0.1:{port}", c.endpoint(0), c.endpoint(1));
    let fresh = c.data_dir().join("fresh");
    let mut odd = kvraft_server::start(config(&fresh, &mismatched, 3)).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), odd.stopped())
        .await
        .expect("the mismatched node keeps running")
        .unwrap_err()
        .to_string();
    assert!(err.contains("same --cluster"), "{err}");
    odd.shutdown().await.ok();

    let leader = find_leader(&c, Duration::from_secs(5)).await;
    let mut kv = connect(&c, leader).await.unwrap();
    let big = "x".repeat(5000);
    let r = pb::PutRequest { client_id: 1, sequence: 1, key: big, value: "v".into() };
    let status = kv.put(r).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    assert!(status.message().contains("key of 5000 bytes"), "{status}");
    let r = pb::PutRequest { client_id: 0, sequence: 1, key: "k".into(), value: "v".into() };
    assert_eq!(kv.put(r).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    // Nothing was written.
    assert_eq!(get(&c, 2, 1, "k").await, "");
    c.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_answer_gets_with_the_latest_acknowledged_write_unless_turned_off() {
    let c = start("follower-reads").await;
    let leader = find_leader(&c, Duration::from_secs(10)).await;
    for i in 1..=20 {
        put(&c, 7, i, "k", &format!("v{i}"), false).await;
        // Straight after the write is acknowledged, each follower's answer includes it: the
        // follower asks the leader for the read index and waits until it has applied it. (A
        // follower answering from its own state would usually pass too; the simulator's swarm
        // and the Docker test are what check these reads for linearizability.)
        for follower in (0..3).filter(|&f| f != leader) {
            assert_eq!(get_at(&c, follower, "k").await, Ok(format!("v{i}")), "node {follower}");
        }
    }
    c.shutdown().await.unwrap();

    let c = start_with(
        "no-follower-reads",
        ServerArgs { follower_reads: Some(false), ..ServerArgs::default() },
    )
    .await;
    let leader = find_leader(&c, Duration::from_secs(10)).await;
    put(&c, 7, 1, "k", "v", false).await;
    assert_eq!(get_at(&c, leader, "k").await, Ok("v".to_string()));
    let follower = (leader + 1) % 3;
    assert_eq!(get_at(&c, follower, "k").await, Err(pb::ErrorCode::NotLeader));
    c.shutdown().await.unwrap();
}

/// Opens a raw peer connection to `addr`, writes `bytes`, and returns the refusal the node
/// writes back before closing.
async fn refusal_for(addr: &str, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply))
        .await
        .expect("the node closes a refused connection")
        .unwrap();
    let mut frames = kvraft_proto::peer_wire::FrameReader::new(1 << 20);
    let mut reply = &reply[..];
    let frame = frames.next_frame(&mut reply).await.unwrap().expect("a refusal frame");
    assert_eq!(frames.next_frame(&mut reply).await.unwrap(), None, "one frame only");
    String::from_utf8(frame.to_vec()).unwrap()
}

/// A peer connection's bytes: the magic, then one batch with this header.
fn peer_bytes(cluster_id: u64, from: u64, to: u64) -> Vec<u8> {
    use kvraft_raft::{Message, MessageBody, NodeId, Term};
    let batch = kvraft_proto::PeerBatch {
        cluster_id: kvraft_proto::ClusterId(cluster_id),
        from: NodeId(from),
        to: NodeId(to),
        messages: vec![Message {
            from: NodeId(from),
            to: NodeId(to),
            term: Term(1_000),
            body: MessageBody::VoteResponse { pre_vote: false, granted: true },
        }],
    };
    let mut bytes = bytes::BytesMut::from(&kvraft_proto::peer_wire::PEER_MAGIC[..]);
    kvraft_proto::peer_wire::encode_batch(batch, &mut bytes);
    bytes.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_port_refuses_foreign_peers_and_still_serves_clients() {
    let c = start("peer-refusals").await;
    let leader = find_leader(&c, Duration::from_secs(10)).await;
    put(&c, 1, 1, "k", "before", false).await;
    let target = (leader + 1) % 3;
    let addr = c.endpoint(target);
    let me = target as u64 + 1;
    let cluster_id = c.config(target).cluster_id.0;
    let other = if me == 1 { 2 } else { 1 };

    let why = refusal_for(addr, &peer_bytes(cluster_id ^ 1, other, me)).await;
    assert!(why.contains(&format!("node {me} belongs to cluster")), "{why}");
    let why = refusal_for(addr, &peer_bytes(cluster_id, other, 9)).await;
    assert!(why.contains(&format!("this is node {me}, the batch is for node 9")), "{why}");
    let why = refusal_for(addr, &peer_bytes(cluster_id, 7, me)).await;
    assert!(why.contains(&format!("node 7 is not a peer of node {me}")), "{why}");
    let why = refusal_for(addr, &peer_bytes(cluster_id, me, me)).await;
    assert!(why.contains("is not a peer"), "{why}");
    let why = refusal_for(addr, b"KVRPEER9 a future version").await;
    assert!(why.contains("unknown protocol \"KVRPEER9\""), "{why}");
    let mut garbage = kvraft_proto::peer_wire::PEER_MAGIC.to_vec();
    garbage.extend_from_slice(&[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let why = refusal_for(addr, &garbage).await;
    assert!(why.contains("does not decode"), "{why}");

    // None of it reached the Raft core (the refused vote was for term 1000), and the same
    // port still serves gRPC clients and its peers.
    put(&c, 1, 2, "k", "after", false).await;
    assert_eq!(get_at(&c, leader, "k").await, Ok("after".to_string()));
    let mut kv = connect(&c, target).await.unwrap();
    let status = kv.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert!(status.term < 1_000, "term {}", status.term);
    c.shutdown().await.unwrap();
}

/// Writes `frames` (each a `ClientFrame`, or raw bytes) on a client-frames connection and
/// reads answers until the server closes or `answers` have come.
async fn client_frames_exchange(addr: &str, bytes: &[u8], answers: usize) -> Vec<pb::ServerFrame> {
    use prost::Message as _;
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(&kvraft_proto::frame::CLIENT_MAGIC).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut frames = kvraft_proto::frame::FrameReader::new(1 << 20);
    let mut got = Vec::new();
    while got.len() < answers {
        let next = tokio::time::timeout(Duration::from_secs(5), frames.next_frame(&mut stream));
        match next.await.expect("an answer or the close within 5 s") {
            Ok(Some(frame)) => got.push(pb::ServerFrame::decode(frame).unwrap()),
            _ => break,
        }
    }
    got
}

fn client_frame(id: u64, call: Option<pb::client_frame::Call>) -> Vec<u8> {
    let mut bytes = bytes::BytesMut::new();
    kvraft_proto::frame::encode_frame(&pb::ClientFrame { id, call }, &mut bytes);
    bytes.to_vec()
}

fn call_error_of(frame: &pb::ServerFrame) -> (i32, String) {
    match &frame.result {
        Some(pb::server_frame::Result::Error(e)) => (e.code, e.message.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_frames_answer_calls_and_refuse_bad_input_as_grpc_does() {
    use pb::client_frame::Call;
    let c = start("client-frames").await;
    let leader = find_leader(&c, Duration::from_secs(10)).await;
    let addr = c.endpoint(leader);
    let put = |client_id, key: &str, value: &str| {
        Some(Call::Put(pb::PutRequest {
            client_id,
            sequence: 1,
            key: key.into(),
            value: value.into(),
        }))
    };
    // Calls answered by id, a bad one among them, all on one connection.
    let mut bytes = client_frame(7, put(11, "k", "v"));
    bytes.extend(client_frame(8, put(12, &"x".repeat(5000), "v")));
    bytes.extend(client_frame(9, None));
    bytes.extend(client_frame(10, put(0, "k", "v")));
    let mut answers = client_frames_exchange(addr, &bytes, 4).await;
    answers.sort_by_key(|a| a.id);
    assert_eq!(answers.iter().map(|a| a.id).collect::<Vec<_>>(), vec![7, 8, 9, 10]);
    let done = pb::server_frame::Result::Put(pb::PutReply {
        result: Some(pb::put_reply::Result::Done(pb::Done {})),
    });
    assert_eq!(answers[0].result, Some(done));
    let (code, message) = call_error_of(&answers[1]);
    assert_eq!(code, tonic::Code::InvalidArgument as i32);
    assert!(message.contains("key of 5000 bytes"), "{message}");
    let (code, message) = call_error_of(&answers[2]);
    assert_eq!(code, tonic::Code::InvalidArgument as i32);
    assert!(message.contains("without a call"), "{message}");
    assert_eq!(call_error_of(&answers[3]).0, tonic::Code::InvalidArgument as i32);
    assert_eq!(get_at(&c, leader, "k").await, Ok("v".to_string()));

    // A frame that does not decode, or is longer than the limit, ends the connection with an
    // error about it (id 0); nothing after it is read.
    let mut bytes = vec![3, 0, 0, 0, 0xff, 0xff, 0xff];
    bytes.extend(client_frame(1, put(13, "k", "never")));
    let answers = client_frames_exchange(addr, &bytes, 2).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].id, 0);
    assert!(call_error_of(&answers[0]).1.contains("does not decode"), "{answers:?}");
    let mut bytes = (10u32 << 20).to_le_bytes().to_vec();
    bytes.extend(vec![0; 64]);
    let answers = client_frames_exchange(addr, &bytes, 2).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(call_error_of(&answers[0]).1.contains("exceeds the limit"), "{answers:?}");
    assert_eq!(get_at(&c, leader, "k").await, Ok("v".to_string()));

    // A follower answers NOT_LEADER over frames too, with the leader's address.
    let follower = (leader + 1) % 3;
    let answers =
        client_frames_exchange(c.endpoint(follower), &client_frame(1, put(14, "k", "w")), 1).await;
    let Some(pb::server_frame::Result::Put(pb::PutReply {
        result: Some(pb::put_reply::Result::Error(e)),
    })) = &answers[0].result
    else {
        panic!("{answers:?}");
    };
    assert_eq!(e.code, pb::ErrorCode::NotLeader as i32);
    assert_eq!(e.leader_hint.as_ref().map(|h| h.address.as_str()), Some(addr));
    c.shutdown().await.unwrap();
}
