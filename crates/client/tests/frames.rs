//! The client over client frames (`frames.proto`), against a scripted frames server: answers
//! matched by id on a shared connection, a connection lost before the answer (retried: the
//! outcome is unknown), a call given up on, and the statuses a server returns as `CallError`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use kvraft_client::remote::{Client, ClientError, ClientOptions, Connections, Transport};
use kvraft_proto::frame::{encode_frame, read_magic, FrameReader, CLIENT_MAGIC};
use kvraft_proto::v1 as pb;
use prost::Message as _;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug)]
enum Action {
    /// Answer done (a Put) or the last value put (a Get).
    Answer,
    /// Answer after this many milliseconds.
    AnswerAfter(u64),
    /// Drop the connection without answering.
    Close,
    /// Never answer.
    Hang,
    /// Answer with this status, as a `CallError`.
    Status(tonic::Code),
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Action>,
    /// (connection number, client id, sequence) of every call seen.
    seen: Vec<(usize, u64, u64)>,
    connections: usize,
    value: String,
}

type Shared = Arc<Mutex<State>>;

async fn serve(script: impl IntoIterator<Item = Action>) -> (SocketAddr, Shared) {
    let state: Shared = Arc::default();
    state.lock().unwrap().script.extend(script);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = state.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let state = shared.clone();
            tokio::spawn(async move {
                let number = {
                    let mut s = state.lock().unwrap();
                    s.connections += 1;
                    s.connections
                };
                let (mut reader, mut writer) = stream.into_split();
                assert_eq!(read_magic(&mut reader).await.unwrap(), CLIENT_MAGIC);
                let (answers, mut to_write) = mpsc::unbounded_channel::<pb::ServerFrame>();
                tokio::spawn(async move {
                    while let Some(answer) = to_write.recv().await {
                        let mut out = BytesMut::new();
                        encode_frame(&answer, &mut out);
                        if writer.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                });
                let mut frames = FrameReader::new(1 << 20);
                while let Ok(Some(frame)) = frames.next_frame(&mut reader).await {
                    let frame = pb::ClientFrame::decode(frame).unwrap();
                    let (result, action) = {
                        let mut s = state.lock().unwrap();
                        let action = s.script.pop_front().unwrap_or(Action::Answer);
                        let result = match frame.call.unwrap() {
                            pb::client_frame::Call::Put(r) => {
                                s.seen.push((number, r.client_id, r.sequence));
                                s.value = r.value;
                                pb::server_frame::Result::Put(pb::PutReply {
                                    result: Some(pb::put_reply::Result::Done(pb::Done {})),
                                })
                            }
                            pb::client_frame::Call::Get(r) => {
                                s.seen.push((number, r.client_id, r.sequence));
                                pb::server_frame::Result::Get(pb::GetReply {
                                    result: Some(pb::get_reply::Result::Value(s.value.clone())),
                                })
                            }
                            other => panic!("unexpected call {other:?}"),
                        };
                        (result, action)
                    };
                    let answer = |result| pb::ServerFrame { id: frame.id, result: Some(result) };
                    match action {
                        Action::Answer => {
                            let _ = answers.send(answer(result));
                        }
                        Action::AnswerAfter(ms) => {
                            let answers = answers.clone();
                            let answer = answer(result);
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                                let _ = answers.send(answer);
                            });
                        }
                        Action::Close => return,
                        Action::Hang => {}
                        Action::Status(code) => {
                            let error =
                                pb::CallError { code: code as i32, message: "scripted".into() };
                            let _ = answers.send(answer(pb::server_frame::Result::Error(error)));
                        }
                    }
                }
            });
        }
    });
    (addr, state)
}

fn options(addr: SocketAddr) -> ClientOptions {
    ClientOptions {
        call_timeout: Duration::from_millis(300),
        op_timeout: Some(Duration::from_secs(5)),
        transport: Transport::Frames,
        ..ClientOptions::new([addr.to_string()])
    }
}

#[tokio::test]
async fn a_connection_lost_before_the_answer_is_retried_on_a_new_one() {
    let (addr, state) = serve([Action::Close]).await;
    let mut client = Client::new(options(addr)).unwrap();
    client.put("k", "v").await.unwrap();
    let s = state.lock().unwrap();
    assert_eq!(s.connections, 2, "the retry opened a new connection");
    assert_eq!(s.seen.len(), 2);
    assert_eq!(s.seen[0].0, 1);
    assert_eq!(s.seen[1].0, 2);
    assert_eq!((s.seen[0].1, s.seen[0].2), (s.seen[1].1, s.seen[1].2), "the same request again");
}

#[tokio::test]
async fn answers_reach_their_own_calls_on_a_shared_connection() {
    // The first call is answered last.
    let (addr, state) = serve([Action::AnswerAfter(1000), Action::Answer]).await;
    let opts = ClientOptions { call_timeout: Duration::from_secs(3), ..options(addr) };
    let connections = Connections::new(&opts).unwrap();
    let mut slow = Client::over(&connections, &opts);
    let mut fast = Client::over(&connections, &opts);
    let slow_put = tokio::spawn(async move { slow.put("k", "slow").await.map(|()| slow) });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    fast.put("k", "fast").await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(700), "{:?}", started.elapsed());
    let mut slow = slow_put.await.unwrap().unwrap();
    assert_eq!(slow.get("k").await.unwrap(), "fast");
    let s = state.lock().unwrap();
    assert_eq!(s.connections, 1, "one connection shared");
    assert_eq!(s.seen.len(), 3);
}

#[tokio::test]
async fn a_call_given_up_on_does_not_break_the_next() {
    let (addr, state) = serve([Action::Hang; 10]).await;
    let opts = ClientOptions { op_timeout: Some(Duration::from_millis(500)), ..options(addr) };
    let mut client = Client::new(opts).unwrap();
    let err = client.put("k", "lost").await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("no answer within"), "{err}");
    // However many attempts the timeout allowed, the server answers from now on.
    state.lock().unwrap().script.clear();
    client.put("k", "kept").await.unwrap();
    assert_eq!(client.get("k").await.unwrap(), "kept");
    assert_eq!(state.lock().unwrap().value, "kept");
}

#[tokio::test]
async fn statuses_come_back_as_grpc_would_return_them() {
    // Overloaded: retried on the same server after a pause; then answered.
    let (addr, state) = serve([Action::Status(tonic::Code::ResourceExhausted)]).await;
    let mut client = Client::new(options(addr)).unwrap();
    client.put("k", "v").await.unwrap();
    assert_eq!(state.lock().unwrap().seen.len(), 2);

    // Invalid argument: a client bug, not retried.
    let (addr, state) = serve([Action::Status(tonic::Code::InvalidArgument)]).await;
    let mut client = Client::new(options(addr)).unwrap();
    let err = client.put("k", "v").await.unwrap_err();
    assert!(err.to_string().contains("scripted"), "{err}");
    assert_eq!(state.lock().unwrap().seen.len(), 1);
}
