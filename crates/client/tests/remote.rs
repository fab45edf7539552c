//! The gRPC client against scripted in-process `KvService`s: leader hints (including an
//! address the client was not given), timeouts, overload, refusals and session handling.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvraft_client::remote::{self, Client, ClientError, ClientOptions, Transport};
use kvraft_kv::ClientId;
use kvraft_proto::v1 as pb;
use kvraft_proto::v1::kv_service_server::{KvService, KvServiceServer};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// What a scripted server does with one request.
#[derive(Clone, Debug)]
enum Action {
    /// Execute it: Done for writes, the stored value for Gets.
    Serve,
    NotLeader(Option<pb::LeaderHint>),
    Error(pb::ErrorCode),
    Status(tonic::Code),
    /// Never answer.
    Hang,
}

#[derive(Debug, Default)]
struct State {
    /// Actions for the next requests; `Serve` once empty.
    script: VecDeque<Action>,
    /// (client id, sequence, rpc) of every request received.
    seen: Vec<(u64, u64, &'static str)>,
    value: String,
}

#[derive(Clone, Debug, Default)]
struct Scripted(Arc<Mutex<State>>);

impl Scripted {
    fn script(&self, actions: impl IntoIterator<Item = Action>) {
        self.0.lock().unwrap().script.extend(actions);
    }

    fn clear_script(&self) {
        self.0.lock().unwrap().script.clear();
    }

    fn seen(&self) -> Vec<(u64, u64, &'static str)> {
        self.0.lock().unwrap().seen.clone()
    }

    /// Records the request; `Ok(None)` to serve it, `Ok(Some(error))` for an error reply.
    async fn handle(
        &self,
        client_id: u64,
        sequence: u64,
        rpc: &'static str,
    ) -> Result<Option<pb::Error>, Status> {
        let action = {
            let mut s = self.0.lock().unwrap();
            s.seen.push((client_id, sequence, rpc));
            s.script.pop_front().unwrap_or(Action::Serve)
        };
        match action {
            Action::Serve => Ok(None),
            Action::NotLeader(leader_hint) => Ok(Some(pb::Error {
                code: pb::ErrorCode::NotLeader.into(),
                leader_hint,
                message: "not the leader".into(),
            })),
            Action::Error(code) => {
                Ok(Some(pb::Error { code: code.into(), leader_hint: None, message: String::new() }))
            }
            Action::Status(code) => Err(Status::new(code, "scripted refusal")),
            Action::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                unreachable!()
            }
        }
    }
}

#[tonic::async_trait]
impl KvService for Scripted {
    async fn put(&self, r: Request<pb::PutRequest>) -> Result<Response<pb::PutReply>, Status> {
        let r = r.into_inner();
        let result = match self.handle(r.client_id, r.sequence, "Put").await? {
            None => {
                self.0.lock().unwrap().value = r.value;
                pb::put_reply::Result::Done(pb::Done {})
            }
            Some(e) => pb::put_reply::Result::Error(e),
        };
        Ok(Response::new(pb::PutReply { result: Some(result) }))
    }

    async fn append(
        &self,
        r: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendReply>, Status> {
        let r = r.into_inner();
        let result = match self.handle(r.client_id, r.sequence, "Append").await? {
            None => {
                self.0.lock().unwrap().value.push_str(&r.value);
                pb::append_reply::Result::Done(pb::Done {})
            }
            Some(e) => pb::append_reply::Result::Error(e),
        };
        Ok(Response::new(pb::AppendReply { result: Some(result) }))
    }

    async fn get(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::GetReply>, Status> {
        let r = r.into_inner();
        let result = match self.handle(r.client_id, r.sequence, "Get").await? {
            None => pb::get_reply::Result::Value(self.0.lock().unwrap().value.clone()),
            Some(e) => pb::get_reply::Result::Error(e),
        };
        Ok(Response::new(pb::GetReply { result: Some(result) }))
    }

    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        Ok(Response::new(pb::StatusReply {
            node_id: 7,
            role: pb::Role::Leader.into(),
            term: 3,
            ..pb::StatusReply::default()
        }))
    }
}

/// Serves `service` on a fresh loopback port until the runtime ends.
async fn serve(service: Scripted) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KvServiceServer::new(service))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}

/// A loopback address nobody listens on.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn options(endpoints: &[SocketAddr]) -> ClientOptions {
    ClientOptions {
        call_timeout: Duration::from_millis(300),
        op_timeout: Some(Duration::from_secs(5)),
        // The scripted servers speak gRPC.
        transport: Transport::Grpc,
        ..ClientOptions::new(endpoints.iter().map(|a| a.to_string()))
    }
}

fn hint(node_id: u64, address: &str) -> Option<pb::LeaderHint> {
    Some(pb::LeaderHint { node_id, address: address.into() })
}

#[tokio::test]
async fn follows_a_hint_to_an_address_it_was_not_given() {
    let (follower, leader) = (Scripted::default(), Scripted::default());
    let follower_addr = serve(follower.clone()).await;
    let leader_addr = serve(leader.clone()).await;
    follower.script(vec![Action::NotLeader(hint(2, &leader_addr.to_string()))]);
    let mut client = Client::new(options(&[follower_addr])).unwrap();
    client.put("k", "a").await.unwrap();
    client.append("k", "b").await.unwrap();
    assert_eq!(client.get("k").await.unwrap(), "ab");
    let id = client.client_id().0;
    assert_eq!(follower.seen(), vec![(id, 1, "Put")]);
    // The same sequence was retried at the leader, which then kept serving.
    assert_eq!(leader.seen(), vec![(id, 1, "Put"), (id, 2, "Append"), (id, 3, "Get")]);
    assert_eq!(
        client.endpoints().collect::<Vec<_>>(),
        [follower_addr.to_string(), leader_addr.to_string()]
    );
}

#[tokio::test]
async fn a_hint_without_an_address_to_an_unknown_node_moves_on_and_dead_servers_are_skipped() {
    let (a, b) = (Scripted::default(), Scripted::default());
    let dead = closed_port().await;
    let a_addr = serve(a.clone()).await;
    let b_addr = serve(b.clone()).await;
    // a points at node 3 by id only; the client does not know which endpoint that is, so it
    // tries the next one, b.
    a.script(vec![Action::NotLeader(hint(3, ""))]);
    let mut client = Client::new(options(&[dead, a_addr, b_addr])).unwrap();
    client.put("k", "v").await.unwrap();
    let id = client.client_id().0;
    assert_eq!(a.seen(), vec![(id, 1, "Put")]);
    assert_eq!(b.seen(), vec![(id, 1, "Put")]);
}

#[tokio::test]
async fn gives_up_when_the_operation_times_out() {
    let dead = closed_port().await;
    let hanging = Scripted::default();
    hanging.script(vec![Action::Hang; 100]);
    let hanging_addr = serve(hanging.clone()).await;
    let mut client = Client::new(ClientOptions {
        op_timeout: Some(Duration::from_millis(800)),
        ..options(&[dead, hanging_addr])
    })
    .unwrap();
    let started = std::time::Instant::now();
    let err = client.put("k", "v").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let ClientError::Timeout { tried, .. } = &err else { panic!("{err}") };
    assert_eq!(tried, &[dead.to_string(), hanging_addr.to_string()]);
    let text = err.to_string();
    assert!(text.starts_with("no leader reachable after"), "{text}");
}

#[tokio::test]
async fn abandoned_first_operations_start_a_new_session_later_ones_do_not() {
    let server = Scripted::default();
    let addr = serve(server.clone()).await;
    let opts = ClientOptions {
        op_timeout: Some(Duration::from_millis(400)),
        client_id: Some(ClientId(42)),
        ..options(&[addr])
    };
    let mut client = Client::new(opts).unwrap();
    server.script(vec![Action::Hang; 2]);
    assert!(matches!(client.put("k", "1").await, Err(ClientError::Timeout { .. })));
    server.clear_script();
    // The cluster may never have seen session 42: a new one.
    let renewed = client.client_id();
    assert_ne!(renewed, ClientId(42));
    client.put("k", "2").await.unwrap();
    server.script(vec![Action::Hang; 2]);
    assert!(matches!(client.put("k", "3").await, Err(ClientError::Timeout { .. })));
    server.clear_script();
    client.put("k", "4").await.unwrap();
    let seen: Vec<_> = server.seen().into_iter().filter(|s| s.0 == renewed.0).collect();
    // Sequence 2 was abandoned; 3 follows it in the same session.
    assert_eq!(seen.first(), Some(&(renewed.0, 1, "Put")));
    assert_eq!(seen.last(), Some(&(renewed.0, 3, "Put")));
    assert_eq!(client.client_id(), renewed);
}

#[tokio::test]
async fn retries_an_overloaded_server_a_few_times() {
    let server = Scripted::default();
    let addr = serve(server.clone()).await;
    let mut client = Client::new(options(&[addr])).unwrap();
    server.script(vec![Action::Status(tonic::Code::ResourceExhausted); 2]);
    client.put("k", "v").await.unwrap();
    assert_eq!(server.seen().len(), 3);
    server.script(vec![Action::Status(tonic::Code::ResourceExhausted); 10]);
    let err = client.put("k", "v").await.unwrap_err();
    assert!(matches!(err, ClientError::Overloaded { attempts: 5, .. }), "{err}");
}

#[tokio::test]
async fn refusals_and_session_errors_end_the_operation() {
    let server = Scripted::default();
    let addr = serve(server.clone()).await;
    let mut client = Client::new(options(&[addr])).unwrap();
    server.script(vec![Action::Status(tonic::Code::InvalidArgument)]);
    let err = client.put("k", "v").await.unwrap_err();
    assert_eq!(err, ClientError::InvalidArgument("scripted refusal".into()));
    client.put("k", "v").await.unwrap();
    let id = client.client_id();
    server.script(vec![Action::Error(pb::ErrorCode::SessionExpired)]);
    assert_eq!(client.get("k").await.unwrap_err(), ClientError::SessionExpired);
    // A new session, from sequence 1.
    assert_eq!(client.get("k").await.unwrap(), "v");
    assert_ne!(client.client_id(), id);
    assert_eq!(server.seen().last(), Some(&(client.client_id().0, 1, "Get")));
}

#[tokio::test]
async fn status_reports_a_node_or_why_it_is_unreachable() {
    let addr = serve(Scripted::default()).await;
    let reply = remote::status(&addr.to_string(), Duration::from_secs(1)).await.unwrap();
    assert_eq!((reply.node_id, reply.term), (7, 3));
    let dead = closed_port().await.to_string();
    let err = remote::status(&dead, Duration::from_secs(1)).await.unwrap_err();
    let ClientError::Unreachable { endpoint, reason } = &err else { panic!("{err}") };
    assert_eq!(endpoint, &dead);
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
}

/// The Docker case: the leader's hint names an address only the cluster can resolve (a
/// container name), while the client reaches the nodes through other addresses. After the
/// hinted address fails once, the client must try the configured servers instead of bouncing
/// between the hinting node and the unreachable address.
#[tokio::test]
async fn an_unreachable_hinted_address_is_not_followed_again() {
    let (first, leader) = (Scripted::default(), Scripted::default());
    let first_addr = serve(first.clone()).await;
    let leader_addr = serve(leader.clone()).await;
    let unreachable = closed_port().await.to_string();
    first.script((0..20).map(|_| Action::NotLeader(hint(2, &unreachable))));
    let mut client = Client::new(options(&[first_addr, leader_addr])).unwrap();
    client.put("k", "v").await.unwrap();
    assert_eq!(leader.seen().len(), 1, "the configured leader was never tried");
}

/// Clients over shared connections keep their own sessions.
#[tokio::test]
async fn clients_over_shared_connections_have_their_own_sessions() {
    let server = Scripted::default();
    let addr = serve(server.clone()).await;
    let opts = options(&[addr]);
    let shared = kvraft_client::Connections::new(&opts).unwrap();
    let mut a = Client::over(&shared, &opts);
    let mut b = Client::over(&shared, &opts);
    assert_ne!(a.client_id(), b.client_id());
    a.put("k", "x").await.unwrap();
    b.append("k", "y").await.unwrap();
    a.append("k", "z").await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), "xyz");
    let (ida, idb) = (a.client_id().0, b.client_id().0);
    assert_eq!(
        server.seen(),
        vec![(ida, 1, "Put"), (idb, 1, "Append"), (ida, 2, "Append"), (idb, 2, "Get")]
    );
}

#[tokio::test]
async fn gets_try_the_preferred_read_server_first_and_fall_back_to_the_leader() {
    let (leader, follower) = (Scripted::default(), Scripted::default());
    let leader_addr = serve(leader.clone()).await;
    let follower_addr = serve(follower.clone()).await;
    let mut client = Client::new(options(&[leader_addr, follower_addr])).unwrap();
    let err = client.read_from("127.0.0.1:1").unwrap_err();
    assert!(matches!(err, ClientError::InvalidEndpoint { .. }), "{err}");
    client.read_from(&follower_addr.to_string()).unwrap();

    client.put("k", "a").await.unwrap();
    // The follower answers from its own state (the scripted one holds "").
    assert_eq!(client.get("k").await.unwrap(), "");
    // It refuses: the Get goes on to the leader, and the leader guess stays where it was.
    follower.script(vec![Action::NotLeader(hint(1, &leader_addr.to_string()))]);
    assert_eq!(client.get("k").await.unwrap(), "a");
    client.append("k", "b").await.unwrap();
    let id = client.client_id().0;
    assert_eq!(follower.seen(), vec![(id, 2, "Get"), (id, 2, "Get")]);
    assert_eq!(leader.seen(), vec![(id, 1, "Put"), (id, 2, "Get"), (id, 2, "Append")]);
}
