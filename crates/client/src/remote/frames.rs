//! The client-frames transport (`frames.proto`): Put, Append and Get as frames on one plain TCP
//! connection per server, without HTTP/2, shared by every client that shares the server.
//!
//! A call writes its frame itself (under the connection's write lock) and waits for its answer,
//! which the connection's reader task hands over by id. Against tonic's channel this saves a
//! buffer task, the HTTP/2 connection task and HTTP/2's framing on every call.
//!
//! A connection that breaks (reset, refused, a protocol error, a call abandoned in the middle
//! of writing its frame) is closed: the calls waiting on it fail as UNAVAILABLE, whose outcome
//! the client treats as unknown (it retries, and exactly-once makes that safe), and the next
//! call connects afresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use kvraft_proto::frame::{encode_frame, FrameReader, CLIENT_MAGIC};
use kvraft_proto::v1 as pb;
use prost::Message as _;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tonic::{Code, Status};

/// The largest answer accepted: a Get's value is bounded by the server's value limit; this is
/// far above any sane one.
const MAX_ANSWER_BYTES: usize = 256 << 20;

/// Calls to one server over client frames; connects on first use and after a failure.
#[derive(Debug)]
pub(crate) struct FramesChannel {
    address: String,
    connect_timeout: Duration,
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

#[derive(Debug)]
struct Connection {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    calls: Arc<Mutex<Calls>>,
    next_id: AtomicU64,
}

/// The calls waiting for answers, or why the connection closed.
#[derive(Debug, Default)]
struct Calls {
    waiting: HashMap<u64, oneshot::Sender<pb::server_frame::Result>>,
    closed: Option<String>,
}

fn lock(calls: &Mutex<Calls>) -> MutexGuard<'_, Calls> {
    calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Calls {
    /// Marks the connection closed; the waiting calls fail with `why`.
    fn close(&mut self, why: String) {
        if self.closed.is_none() {
            self.closed = Some(why);
        }
        self.waiting.clear();
    }
}

impl FramesChannel {
    pub(crate) fn new(address: String, connect_timeout: Duration) -> FramesChannel {
        FramesChannel { address, connect_timeout, connection: tokio::sync::Mutex::new(None) }
    }

    /// Makes one call. Transport failures come back as UNAVAILABLE, and a server's refusal of
    /// the call as the status a gRPC call would have ended with.
    pub(crate) async fn call(
        &self,
        call: pb::client_frame::Call,
    ) -> Result<pb::server_frame::Result, Status> {
        let connection = self.connection().await?;
        let id = connection.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        {
            let mut calls = lock(&connection.calls);
            if let Some(why) = &calls.closed {
                return Err(Status::unavailable(format!("{}: {why}", self.address)));
            }
            calls.waiting.insert(id, answer);
        }
        // However this call ends (answer, failure, or its future dropped), forget it.
        let _forget = Forget { calls: &connection.calls, id };
        let mut frame = BytesMut::new();
        encode_frame(&pb::ClientFrame { id, call: Some(call) }, &mut frame);
        {
            let mut writer = connection.writer.lock().await;
            // Dropped mid-write (the caller gave up), the frame is cut short: the stream is
            // then useless, so the guard closes the connection unless the write completes.
            let mut cut = CloseUnlessDone { calls: &connection.calls, done: false };
            if let Err(e) = writer.write_all(&frame).await {
                lock(&connection.calls).close(format!("write failed: {e}"));
                return Err(Status::unavailable(format!("{}: write failed: {e}", self.address)));
            }
            cut.done = true;
        }
        match answered.await {
            Ok(pb::server_frame::Result::Error(e)) => Err(status_of(e)),
            Ok(result) => Ok(result),
            Err(_) => {
                let why = lock(&connection.calls).closed.clone();
                let why = why.unwrap_or_else(|| "connection closed".to_string());
                Err(Status::unavailable(format!("{}: {why}", self.address)))
            }
        }
    }

    /// The open connection, or a new one.
    async fn connection(&self) -> Result<Arc<Connection>, Status> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            if lock(&connection.calls).closed.is_none() {
                return Ok(connection.clone());
            }
        }
        *slot = None;
        let unavailable = |why: String| Status::unavailable(format!("{}: {why}", self.address));
        let connect = TcpStream::connect(&self.address);
        let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(unavailable(format!("tcp connect error: {e}"))),
            Err(_) => return Err(unavailable("tcp connect timed out".to_string())),
        };
        configure(&stream);
        let (reader, mut writer) = stream.into_split();
        writer.write_all(&CLIENT_MAGIC).await.map_err(|e| unavailable(e.to_string()))?;
        let calls = Arc::new(Mutex::new(Calls::default()));
        tokio::spawn(read_answers(reader, calls.clone()));
        let connection = Arc::new(Connection {
            writer: tokio::sync::Mutex::new(writer),
            calls,
            next_id: AtomicU64::new(1),
        });
        *slot = Some(connection.clone());
        Ok(connection)
    }
}

/// Hands each answer to its call, until the connection ends. Holding only the call table (not
/// the write half), it lets the connection close once no client holds it: dropping the write
/// half sends FIN, the server closes, and this task ends.
async fn read_answers(mut reader: OwnedReadHalf, calls: Arc<Mutex<Calls>>) {
    let mut frames = FrameReader::new(MAX_ANSWER_BYTES);
    let why = loop {
        let frame = match frames.next_frame(&mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break "closed by the server".to_string(),
            Err(e) => break e.to_string(),
        };
        let answer = match pb::ServerFrame::decode(frame) {
            Ok(answer) => answer,
            Err(e) => break format!("an answer does not decode: {e}"),
        };
        match (answer.id, answer.result) {
            (0, Some(pb::server_frame::Result::Error(e))) => {
                break format!("the server closed the connection: {}", e.message)
            }
            (id, Some(result)) => {
                if let Some(call) = lock(&calls).waiting.remove(&id) {
                    let _ = call.send(result);
                }
            }
            (id, None) => break format!("an answer (id {id}) without a result"),
        }
    };
    lock(&calls).close(why);
}

/// Without TCP_NODELAY a small request can wait ~40 ms for a delayed ACK. Keepalive and
/// TCP_USER_TIMEOUT end a connection whose server vanished without a reset (a partition, a host
/// gone): otherwise every call on it would wait out its timeout until TCP gave up, minutes later.
fn configure(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let socket = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(1))
        .with_retries(5);
    let _ = socket.set_tcp_keepalive(&keepalive);
    #[cfg(target_os = "linux")]
    let _ = socket.set_tcp_user_timeout(Some(UNACKNOWLEDGED_FOR));
}

/// Sent data unacknowledged this long ends the connection.
#[cfg(target_os = "linux")]
const UNACKNOWLEDGED_FOR: Duration = Duration::from_secs(10);

fn status_of(e: pb::CallError) -> Status {
    Status::new(Code::from_i32(e.code), e.message)
}

struct Forget<'a> {
    calls: &'a Mutex<Calls>,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.calls).waiting.remove(&self.id);
    }
}

struct CloseUnlessDone<'a> {
    calls: &'a Mutex<Calls>,
    done: bool,
}

impl Drop for CloseUnlessDone<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(self.calls).close("a call was abandoned while writing".to_string());
        }
    }
}
