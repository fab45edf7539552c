//! The Clerk driven over the network: a [`Client`] for a real kvraft cluster (feature `grpc`).
//!
//! The [`Clerk`] decides whom to ask and when to retry; this module does the asking, over
//! client frames (`frames.proto`, the default) or gRPC ([`Transport`]); the two carry the same
//! calls, answers and statuses, so everything below holds for both. Per attempt: send the tagged request to the Clerk's target with a per-call timeout,
//! then feed the outcome back to the Clerk:
//!
//! | what came back                                   | what the client does                  |
//! |--------------------------------------------------|---------------------------------------|
//! | a reply (value / done)                           | done                                  |
//! | `NOT_LEADER`                                     | Clerk: retry at the hinted leader (see below) or the next server |
//! | timeout, transport error, `UNAVAILABLE` and the other transport-like statuses, a malformed reply | Clerk: `on_answer(None)`, retry at the next server |
//! | `RESOURCE_EXHAUSTED`                             | retry the same server after 50, 100, 200, 400 ms; then [`ClientError::Overloaded`] |
//! | `SESSION_EXPIRED`, `STALE`                        | error; the client starts a new session |
//! | `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, any other status | error, not retried          |
//!
//! **Leader hints.** A hint carries the leader's node id and, usually, its address. The address
//! is looked up in the endpoint list; an address the list lacks is appended to it (up to
//! [`MAX_ENDPOINTS`]; the Clerk grows with it), so a client given one server finds the others.
//! A hint without an address maps node id `n` to endpoint `n - 1`, the conventional numbering
//! (node ids 1..=N listed in order); an id outside the list is no hint at all.
//!
//! **Timeouts.** With [`ClientOptions::op_timeout`] `None` an operation is retried until it
//! succeeds, as the Clerk promises; otherwise it fails with [`ClientError::Timeout`] once the
//! time is up. A write that timed out may still take effect later: its outcome is unknown.
//!
//! **Sessions.** One [`Client`] is one session (client id + sequence numbers) and runs one
//! operation at a time (`&mut self`). An operation given up on (timeout, error, or a dropped
//! future: the methods are cancel-safe in that sense) is abandoned: the next operation takes
//! the next sequence number, so a late copy of the abandoned one is refused as stale once the
//! next one is applied. Until the cluster has confirmed one operation of the session, or after
//! `SESSION_EXPIRED` / `STALE`, the client starts a fresh session (new random client id) instead,
//! since the cluster may not know the old one.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kvraft_kv::{ClientId, KvError, Op, Outcome, Reply};
use kvraft_proto::v1 as pb;
use kvraft_proto::v1::kv_service_client::KvServiceClient;
use kvraft_proto::KvRequest;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::clerk::{Clerk, NextStep};
use crate::frames::FramesChannel;
use futures_util::FutureExt;

/// The most endpoints a client keeps, its configured ones and those learned from leader hints.
pub const MAX_ENDPOINTS: usize = 64;

/// Retries of a request refused with `RESOURCE_EXHAUSTED` before giving up, and the first pause
/// (doubled after each refusal).
const OVERLOADED_RETRIES: u32 = 4;
const OVERLOADED_BACKOFF_MS: u64 = 50;

/// How to reach a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// The servers' client addresses, `host:port` (an `http://` prefix is accepted). In node-id
    /// order if possible (node 1 first), so that address-less leader hints map right.
    pub endpoints: Vec<String>,
    /// The limit for one attempt at one server (connecting included). Default 1 s.
    pub call_timeout: Duration,
    /// The limit for a whole operation, retries included; `None` retries forever. Default
    /// `None`.
    pub op_timeout: Option<Duration>,
    /// The session's client id; `None` (the default) draws a random one. Two clients must
    /// never share one.
    pub client_id: Option<ClientId>,
    /// How calls travel. Default [`Transport::Frames`].
    pub transport: Transport,
}

/// How a client's calls travel to the servers; the same calls and answers either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// Client frames on plain TCP (`frames.proto`): the lowest latency.
    #[default]
    Frames,
    /// gRPC (`KvService` in `kv.proto`), as clients in other languages use.
    Grpc,
}

impl Transport {
    /// The name `FromStr` reads: "frames" or "grpc".
    pub fn name(self) -> &'static str {
        match self {
            Transport::Frames => "frames",
            Transport::Grpc => "grpc",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Transport, String> {
        match s {
            "frames" => Ok(Transport::Frames),
            "grpc" => Ok(Transport::Grpc),
            _ => Err(format!("unknown transport {s:?} (expected frames or grpc)")),
        }
    }
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            endpoints: Vec::new(),
            call_timeout: Duration::from_secs(1),
            op_timeout: None,
            client_id: None,
            transport: Transport::default(),
        }
    }
}

impl ClientOptions {
    /// The defaults, with these endpoints.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> ClientOptions {
        ClientOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ..ClientOptions::default()
        }
    }
}

/// Why an operation (or a status query) failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No endpoints were given.
    #[error("no endpoints given")]
    NoEndpoints,
    /// An endpoint is not `host:port`.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// The operation's time ran out before any server executed it. For a write, the outcome
    /// is unknown: it may still take effect.
    #[error("no leader reachable after {} (tried {}{})", format_duration(*.after), .tried.join(", "), last_error_suffix(.last_error))]
    Timeout { after: Duration, tried: Vec<String>, last_error: Option<String> },
    /// The server refused the request as malformed or too large (gRPC `INVALID_ARGUMENT`).
    #[error("request refused: {0}")]
    InvalidArgument(String),
    /// The server is not in a state to serve the request (gRPC `FAILED_PRECONDITION`).
    #[error("request refused: {0}")]
    FailedPrecondition(String),
    /// The server stayed overloaded (gRPC `RESOURCE_EXHAUSTED`) through every retry.
    #[error("server overloaded: {message} (gave up after {attempts} attempts)")]
    Overloaded { message: String, attempts: u32 },
    /// The cluster forgot this client's session; the operation's outcome is unknown. The client
    /// has started a new session; later operations work.
    #[error("client session expired; the outcome of this operation is unknown")]
    SessionExpired,
    /// The cluster had already seen a newer request of this session (another process using
    /// the same client id?). The client has started a new session.
    #[error("stale request: this client id has already issued a newer request (is it shared?)")]
    Stale,
    /// A gRPC status this client does not retry.
    #[error("server error ({code:?}): {message}")]
    Server { code: Code, message: String },
    /// A status query could not reach its server.
    #[error("cannot reach {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
}

fn last_error_suffix(last: &Option<String>) -> String {
    match last {
        Some(e) => format!("; last error: {e}"),
        None => String::new(),
    }
}

/// `10 s`, `1.5 s`, `500 ms`.
pub fn format_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A random non-zero client id: a hash of the time, the process id and a counter, keyed by the
/// standard library's per-process random hash keys.
pub fn new_client_id() -> ClientId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut h = RandomState::new().build_hasher();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        h.write_u128(now.as_nanos());
        h.write_u32(std::process::id());
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let id = h.finish();
        if id != 0 {
            return ClientId(id);
        }
    }
}

/// Normalizes an endpoint to `host:port`: trims it, drops an `http://` prefix and a trailing
/// `/`, and checks that a host and a non-zero port are there.
pub fn parse_address(endpoint: &str) -> Result<String, ClientError> {
    let bad = |reason: &str| ClientError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let text = endpoint.trim();
    if text.starts_with("https://") {
        return Err(bad("TLS is not supported; use host:port"));
    }
    let text = text.strip_prefix("http://").unwrap_or(text);
    let text = text.strip_suffix('/').unwrap_or(text);
    if text.contains('/') || text.contains(char::is_whitespace) {
        return Err(bad("expected host:port"));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(bad("expected host:port"));
    };
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(text.to_string()),
        _ => Err(bad("the port must be 1..=65535")),
    }
}

fn endpoint_of(address: &str, timeout: Duration) -> Result<Endpoint, ClientError> {
    Endpoint::from_shared(format!("http://{address}"))
        .map(|e| e.connect_timeout(timeout).tcp_nodelay(true))
        .map_err(|e| ClientError::InvalidEndpoint {
            endpoint: address.to_string(),
            reason: describe_error(&e),
        })
}

/// Where a leader hint points in an endpoint list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HintTarget {
    /// The endpoint at this index.
    Known(usize),
    /// An address not in the list (normalized to `host:port`).
    New(String),
    /// Nowhere usable: try the next server.
    Unknown,
}

/// Resolves a leader hint against `addresses` (normalized `host:port`s): by address when the
/// hint has one, else by the conventional numbering (node `n` is `addresses[n - 1]`).
pub fn locate_hint(addresses: &[String], hint: Option<&pb::LeaderHint>) -> HintTarget {
    let Some(hint) = hint else { return HintTarget::Unknown };
    if !hint.address.is_empty() {
        if let Ok(address) = parse_address(&hint.address) {
            return match addresses.iter().position(|a| *a == address) {
                Some(i) => HintTarget::Known(i),
                None => HintTarget::New(address),
            };
        }
    }
    match usize::try_from(hint.node_id) {
        Ok(id) if id >= 1 && id <= addresses.len() => HintTarget::Known(id - 1),
        _ => HintTarget::Unknown,
    }
}

/// What to do about a gRPC status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// A transport-like failure: the request may or may not have arrived; try another server.
    Retry,
    /// The server is overloaded: retry it later.
    Overloaded,
    /// Retrying will not help.
    Fatal,
}

pub fn classify_status(code: Code) -> StatusClass {
    match code {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::Aborted
        | Code::Unknown
        | Code::Internal
        | Code::Unimplemented => StatusClass::Retry,
        Code::ResourceExhausted => StatusClass::Overloaded,
        _ => StatusClass::Fatal,
    }
}

fn fatal_error(status: &Status) -> ClientError {
    let message = status.message().to_string();
    match status.code() {
        Code::InvalidArgument => ClientError::InvalidArgument(message),
        Code::FailedPrecondition => ClientError::FailedPrecondition(message),
        code => ClientError::Server { code, message },
    }
}

/// A message and its causes as one line, without repeats or the generic "transport error":
/// "tcp connect error: Connection refused (os error 111)".
fn join_causes(first: String, mut source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut push = |text: String| {
        if !text.is_empty() && text != "transport error" && !parts.iter().any(|p| p.contains(&text))
        {
            parts.push(text);
        }
    };
    push(first);
    while let Some(cause) = source {
        push(cause.to_string());
        source = cause.source();
    }
    if parts.is_empty() {
        "transport error".to_string()
    } else {
        parts.join(": ")
    }
}

fn describe_error(e: &(dyn std::error::Error + 'static)) -> String {
    join_causes(e.to_string(), e.source())
}

fn describe_status(status: &Status) -> String {
    let first = if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_string()
    };
    join_causes(first, std::error::Error::source(status))
}

/// The result of one attempt.
#[derive(Debug)]
enum Attempt {
    /// An answer for the Clerk (leader hints already mapped to endpoint indices).
    Answer(Reply),
    /// No usable answer (the Clerk gets `None`), and why.
    Failed(String),
    /// `RESOURCE_EXHAUSTED`, with the server's message.
    Overloaded(String),
    /// Stop the operation.
    Fatal(ClientError),
}

/// A reply's result in wire form, before leader hints are resolved.
enum WireResult {
    Outcome(Outcome),
    Error(pb::Error),
    Malformed(&'static str),
}

impl From<pb::PutReply> for WireResult {
    fn from(r: pb::PutReply) -> WireResult {
        use pb::put_reply::Result as R;
        match r.result {
            Some(R::Done(_)) => WireResult::Outcome(Outcome::Done),
            Some(R::Error(e)) => WireResult::Error(e),
            None => WireResult::Malformed("PutReply without a result"),
        }
    }
}

impl From<pb::AppendReply> for WireResult {
    fn from(r: pb::AppendReply) -> WireResult {
        use pb::append_reply::Result as R;
        match r.result {
            Some(R::Done(_)) => WireResult::Outcome(Outcome::Done),
            Some(R::Error(e)) => WireResult::Error(e),
            None => WireResult::Malformed("AppendReply without a result"),
        }
    }
}

impl From<pb::GetReply> for WireResult {
    fn from(r: pb::GetReply) -> WireResult {
        use pb::get_reply::Result as R;
        match r.result {
            Some(R::Value(v)) => WireResult::Outcome(Outcome::Value(v)),
            Some(R::Error(e)) => WireResult::Error(e),
            None => WireResult::Malformed("GetReply without a result"),
        }
    }
}

/// One server the client may call.
#[derive(Debug)]
struct Server {
    /// `host:port`.
    address: String,
    endpoint: Endpoint,
    /// Created on first use, possibly shared with other clients (see [`Connections`]);
    /// reconnects by itself after failures.
    channel: Arc<OnceLock<Channel>>,
    /// The same, over client frames.
    frames: Arc<FramesChannel>,
    transport: Transport,
    /// Learned from a leader hint rather than configured.
    from_hint: bool,
    /// The last call to it failed (unreachable, timed out). A hinted server in this state is
    /// not followed again: its address may be one only the cluster can resolve.
    failing: bool,
}

impl Server {
    fn new(
        address: String,
        call_timeout: Duration,
        transport: Transport,
    ) -> Result<Server, ClientError> {
        let endpoint = endpoint_of(&address, call_timeout)?;
        let channel = Arc::new(OnceLock::new());
        let frames = Arc::new(FramesChannel::new(address.clone(), call_timeout));
        Ok(Server {
            address,
            endpoint,
            channel,
            frames,
            transport,
            from_hint: false,
            failing: false,
        })
    }

    fn client(&self) -> KvServiceClient<Channel> {
        KvServiceClient::new(self.channel.get_or_init(|| self.endpoint.connect_lazy()).clone())
    }

    /// The same server and connection, with this client's own bookkeeping.
    fn share(&self) -> Server {
        Server {
            address: self.address.clone(),
            endpoint: self.endpoint.clone(),
            channel: self.channel.clone(),
            frames: self.frames.clone(),
            transport: self.transport,
            from_hint: false,
            failing: false,
        }
    }
}

/// One connection per configured endpoint, connected on first use, that any number of
/// [`Client`]s can share ([`Client::over`]): many sessions multiplexed over one HTTP/2
/// connection per server, as a load generator or a proxy wants. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Connections {
    servers: Arc<Vec<Server>>,
}

impl Connections {
    /// Checks `options` (endpoints and call timeout); connects lazily. Duplicate endpoints are
    /// dropped.
    pub fn new(options: &ClientOptions) -> Result<Connections, ClientError> {
        let mut addresses: Vec<String> = Vec::new();
        for e in &options.endpoints {
            let address = parse_address(e)?;
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        if addresses.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        if addresses.len() > MAX_ENDPOINTS {
            return Err(ClientError::InvalidEndpoint {
                endpoint: addresses[MAX_ENDPOINTS].clone(),
                reason: format!("at most {MAX_ENDPOINTS} endpoints"),
            });
        }
        if options.call_timeout.is_zero() {
            return Err(ClientError::InvalidEndpoint {
                endpoint: addresses[0].clone(),
                reason: "the call timeout must be positive".into(),
            });
        }
        let servers = addresses
            .into_iter()
            .map(|a| Server::new(a, options.call_timeout, options.transport))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Connections { servers: Arc::new(servers) })
    }
}

/// A kvraft client over gRPC: one session, one operation at a time. See the [module
/// docs](self) for the retry rules. Needs a tokio runtime (with the time driver) when its
/// operations run; constructing it does not.
#[derive(Debug)]
pub struct Client {
    clerk: Clerk,
    servers: Vec<Server>,
    call_timeout: Duration,
    op_timeout: Option<Duration>,
    /// Whether the cluster has executed an operation of the current session (so it knows the
    /// session, unless it expires).
    session_confirmed: bool,
    /// Where Gets go first ([`Client::read_from`]), as an index into `servers`.
    read_server: Option<usize>,
}

impl Client {
    /// Checks the options; connects lazily, on first use of each endpoint. Duplicate endpoints
    /// are dropped.
    pub fn new(options: ClientOptions) -> Result<Client, ClientError> {
        Ok(Client::over(&Connections::new(&options)?, &options))
    }

    /// A client with its own session over shared `connections`; `options` gives the timeouts
    /// and client id (its endpoints are those of `connections`).
    pub fn over(connections: &Connections, options: &ClientOptions) -> Client {
        let servers: Vec<Server> = connections.servers.iter().map(Server::share).collect();
        let client_id = options.client_id.unwrap_or_else(new_client_id);
        Client {
            clerk: Clerk::new(client_id, servers.len()),
            servers,
            call_timeout: options.call_timeout,
            op_timeout: options.op_timeout,
            session_confirmed: false,
            read_server: None,
        }
    }

    /// Sends Gets first to `endpoint` (one of this client's, e.g. the nearest server) rather
    /// than to the leader. A server with follower reads on (`kvraft server
    /// --follower-reads`, the default) answers there, still linearizably: it asks the leader
    /// for the read index and serves once it has applied that far. If that server refuses
    /// or fails, the Get goes on to the leader as usual. Writes always go to the leader.
    pub fn read_from(&mut self, endpoint: &str) -> Result<(), ClientError> {
        let address = parse_address(endpoint)?;
        let index = self.servers.iter().position(|s| s.address == address).ok_or_else(|| {
            ClientError::InvalidEndpoint {
                endpoint: endpoint.to_string(),
                reason: "not one of the client's endpoints".into(),
            }
        })?;
        self.read_server = Some(index);
        Ok(())
    }

    /// The current session's client id.
    pub fn client_id(&self) -> ClientId {
        self.clerk.client_id()
    }

    /// The endpoints as `host:port`: the configured ones, then those learned from hints.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        self.servers.iter().map(|s| s.address.as_str())
    }

    /// Sets `key` to `value`.
    pub async fn put(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), ClientError> {
        self.execute(Op::Put { key: key.into(), value: value.into() }).await.map(drop)
    }

    /// Appends `value` to the value of `key` (a missing key holds "").
    pub async fn append(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), ClientError> {
        self.execute(Op::Append { key: key.into(), value: value.into() }).await.map(drop)
    }

    /// The value of `key` ("" if it was never written); linearizable.
    pub async fn get(&mut self, key: impl Into<String>) -> Result<String, ClientError> {
        match self.execute(Op::Get { key: key.into() }).await? {
            Outcome::Value(v) => Ok(v),
            Outcome::Done => unreachable!("a GetReply carries a value"),
        }
    }

    async fn execute(&mut self, op: Op) -> Result<Outcome, ClientError> {
        if self.clerk.is_busy() {
            // The previous operation's future was dropped mid-flight.
            self.abandon();
        }
        let started = Instant::now();
        let deadline = self.op_timeout.map(|t| started + t);
        // A Get tries the preferred read server once, unless it is failing or already the
        // Clerk's guess of the leader.
        let mut read_here = match op {
            Op::Get { .. } => {
                self.read_server.filter(|&i| !self.servers[i].failing && i != self.clerk.target())
            }
            _ => None,
        };
        let request = self.clerk.begin(op);
        let mut tried: Vec<usize> = Vec::new();
        let mut last_error: Option<String> = None;
        let mut overloaded: u32 = 0;
        loop {
            let target = read_here.unwrap_or_else(|| self.clerk.target());
            if !tried.contains(&target) {
                tried.push(target);
            }
            let mut call_timeout = self.call_timeout;
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    self.abandon();
                    return Err(ClientError::Timeout {
                        after: started.elapsed(),
                        tried: tried.iter().map(|&i| self.servers[i].address.clone()).collect(),
                        last_error,
                    });
                }
                call_timeout = call_timeout.min(left);
            }
            let address = self.servers[target].address.clone();
            let attempt =
                self.attempt(target, KvRequest::from(request.clone()), call_timeout).await;
            if !matches!(attempt, Attempt::Failed(_)) {
                self.servers[target].failing = false;
            }
            if read_here.take().is_some() {
                // Only an answer ends the Get here. A refusal or failure sends it on to the
                // leader without touching the Clerk's leader guess (it was not asked).
                match &attempt {
                    Attempt::Answer(Ok(_)) | Attempt::Fatal(_) => {}
                    Attempt::Answer(Err(e)) => {
                        last_error = Some(format!("{address}: {e}"));
                        continue;
                    }
                    Attempt::Failed(reason) | Attempt::Overloaded(reason) => {
                        last_error = Some(format!("{address}: {reason}"));
                        if matches!(attempt, Attempt::Failed(_)) {
                            self.servers[target].failing = true;
                        }
                        continue;
                    }
                }
            }
            let step = match attempt {
                Attempt::Answer(reply) => {
                    if let Err(e @ KvError::WrongLeader { .. }) = &reply {
                        last_error = Some(format!("{address}: {e}"));
                    }
                    self.clerk.on_answer(Some(reply))
                }
                Attempt::Failed(reason) => {
                    last_error = Some(format!("{address}: {reason}"));
                    self.servers[target].failing = true;
                    self.clerk.on_answer(None)
                }
                Attempt::Overloaded(message) => {
                    overloaded += 1;
                    if overloaded > OVERLOADED_RETRIES {
                        self.abandon();
                        return Err(ClientError::Overloaded { message, attempts: overloaded });
                    }
                    last_error = Some(format!("{address}: overloaded: {message}"));
                    // The same server again: the Clerk is not told.
                    NextStep::Retry { backoff_ms: OVERLOADED_BACKOFF_MS << (overloaded - 1) }
                }
                Attempt::Fatal(e) => {
                    self.abandon();
                    return Err(e);
                }
            };
            match step {
                NextStep::Done(Ok(outcome)) => {
                    self.session_confirmed = true;
                    return Ok(outcome);
                }
                NextStep::Done(Err(e)) => {
                    self.renew_session();
                    return Err(match e {
                        KvError::SessionExpired => ClientError::SessionExpired,
                        KvError::Stale => ClientError::Stale,
                        KvError::WrongLeader { .. } => unreachable!("the Clerk retries these"),
                    });
                }
                NextStep::Retry { backoff_ms } => {
                    let mut pause = Duration::from_millis(backoff_ms);
                    if let Some(deadline) = deadline {
                        pause = pause.min(deadline.saturating_duration_since(Instant::now()));
                    }
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }

    /// Gives up on the operation in progress (see the module docs on sessions).
    fn abandon(&mut self) {
        self.clerk.abandon();
        if !self.session_confirmed {
            self.renew_session();
        }
    }

    fn renew_session(&mut self) {
        self.clerk.renew_session(new_client_id());
        self.session_confirmed = false;
    }

    /// Sends `request` to server `target` once.
    async fn attempt(&mut self, target: usize, request: KvRequest, timeout: Duration) -> Attempt {
        let server = &self.servers[target];
        let call = match server.transport {
            Transport::Grpc => call_grpc(server.client(), request, timeout).boxed(),
            Transport::Frames => call_frames(server.frames.clone(), request).boxed(),
        };
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => {
                return Attempt::Failed(format!("no answer within {}", format_duration(timeout)))
            }
        };
        match result {
            Ok(WireResult::Outcome(outcome)) => Attempt::Answer(Ok(outcome)),
            Ok(WireResult::Error(e)) => self.interpret_error(e),
            Ok(WireResult::Malformed(why)) => Attempt::Failed(format!("malformed reply: {why}")),
            Err(status) => match classify_status(status.code()) {
                StatusClass::Retry => Attempt::Failed(describe_status(&status)),
                StatusClass::Overloaded => Attempt::Overloaded(status.message().to_string()),
                StatusClass::Fatal => Attempt::Fatal(fatal_error(&status)),
            },
        }
    }

    fn interpret_error(&mut self, e: pb::Error) -> Attempt {
        match pb::ErrorCode::try_from(e.code) {
            Ok(pb::ErrorCode::NotLeader) => {
                let leader_hint = self.resolve_hint(e.leader_hint.as_ref());
                Attempt::Answer(Err(KvError::WrongLeader { leader_hint }))
            }
            Ok(pb::ErrorCode::SessionExpired) => Attempt::Answer(Err(KvError::SessionExpired)),
            Ok(pb::ErrorCode::Stale) => Attempt::Answer(Err(KvError::Stale)),
            Ok(pb::ErrorCode::Unspecified) | Err(_) => {
                Attempt::Failed(format!("unknown error code {}: {}", e.code, e.message))
            }
        }
    }

    /// The endpoint index a hint points at, adding its address to the list if need be.
    fn resolve_hint(&mut self, hint: Option<&pb::LeaderHint>) -> Option<usize> {
        let addresses: Vec<String> = self.servers.iter().map(|s| s.address.clone()).collect();
        match locate_hint(&addresses, hint) {
            // A hinted address that failed (say a container name behind a published port):
            // rotate through the configured servers instead of bouncing back to it.
            HintTarget::Known(i) if self.servers[i].from_hint && self.servers[i].failing => None,
            HintTarget::Known(i) => Some(i),
            HintTarget::Unknown => None,
            HintTarget::New(address) => {
                if self.servers.len() >= MAX_ENDPOINTS {
                    return None;
                }
                let transport = self.servers[0].transport;
                let mut server = Server::new(address, self.call_timeout, transport).ok()?;
                server.from_hint = true;
                self.servers.push(server);
                let index = self.clerk.add_server();
                debug_assert_eq!(index + 1, self.servers.len());
                Some(index)
            }
        }
    }
}

async fn call_grpc(
    mut client: KvServiceClient<Channel>,
    request: KvRequest,
    timeout: Duration,
) -> Result<WireResult, Status> {
    fn req<T>(message: T, timeout: Duration) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.set_timeout(timeout);
        r
    }
    match request {
        KvRequest::Put(r) => client.put(req(r, timeout)).await.map(|r| r.into_inner().into()),
        KvRequest::Append(r) => client.append(req(r, timeout)).await.map(|r| r.into_inner().into()),
        KvRequest::Get(r) => client.get(req(r, timeout)).await.map(|r| r.into_inner().into()),
    }
}

async fn call_frames(frames: Arc<FramesChannel>, request: KvRequest) -> Result<WireResult, Status> {
    use pb::client_frame::Call;
    use pb::server_frame::Result as R;
    let call = match request {
        KvRequest::Put(r) => Call::Put(r),
        KvRequest::Append(r) => Call::Append(r),
        KvRequest::Get(r) => Call::Get(r),
    };
    Ok(match frames.call(call).await? {
        R::Put(r) => r.into(),
        R::Append(r) => r.into(),
        R::Get(r) => r.into(),
        R::Error(_) => unreachable!("FramesChannel::call turns errors into a Status"),
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(node_id: u64, address: &str) -> pb::LeaderHint {
        pb::LeaderHint { node_id, address: address.to_string() }
    }

    fn list(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn addresses_are_normalized_and_checked() {
        for (given, want) in [
            ("127.0.0.1:7001", "127.0.0.1:7001"),
            (" localhost:1 ", "localhost:1"),
            ("http://h:7001/", "h:7001"),
            ("[::1]:7001", "[::1]:7001"),
        ] {
            assert_eq!(parse_address(given).unwrap(), want, "{given}");
        }
        for (given, why) in [
            ("h", "host:port"),
            (":7001", "missing host"),
            ("h:0", "port"),
            ("h:99999", "port"),
            ("h:x", "port"),
            ("https://h:1", "TLS"),
            ("http://h:1/path", "host:port"),
            ("a b:1", "host:port"),
        ] {
            let err = parse_address(given).unwrap_err().to_string();
            assert!(err.contains(why), "{given}: {err}");
        }
    }

    #[test]
    fn hints_map_by_address_first() {
        let eps = list(&["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]);
        assert_eq!(locate_hint(&eps, None), HintTarget::Unknown);
        assert_eq!(locate_hint(&eps, Some(&hint(3, "127.0.0.1:7002"))), HintTarget::Known(1));
        assert_eq!(
            locate_hint(&eps, Some(&hint(3, "http://127.0.0.1:7002"))),
            HintTarget::Known(1)
        );
        assert_eq!(
            locate_hint(&eps, Some(&hint(2, "10.0.0.9:7001"))),
            HintTarget::New("10.0.0.9:7001".into())
        );
    }

    #[test]
    fn hints_without_a_usable_address_map_by_node_id() {
        let eps = list(&["a:1", "b:1", "c:1"]);
        assert_eq!(locate_hint(&eps, Some(&hint(1, ""))), HintTarget::Known(0));
        assert_eq!(locate_hint(&eps, Some(&hint(3, ""))), HintTarget::Known(2));
        assert_eq!(locate_hint(&eps, Some(&hint(4, ""))), HintTarget::Unknown);
        assert_eq!(locate_hint(&eps, Some(&hint(0, ""))), HintTarget::Unknown);
        assert_eq!(locate_hint(&eps, Some(&hint(u64::MAX, ""))), HintTarget::Unknown);
        // A malformed address falls back on the node id.
        assert_eq!(locate_hint(&eps, Some(&hint(2, "nonsense"))), HintTarget::Known(1));
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify_status(Code::Unavailable), StatusClass::Retry);
        assert_eq!(classify_status(Code::DeadlineExceeded), StatusClass::Retry);
        assert_eq!(classify_status(Code::ResourceExhausted), StatusClass::Overloaded);
        assert_eq!(classify_status(Code::InvalidArgument), StatusClass::Fatal);
        assert_eq!(classify_status(Code::FailedPrecondition), StatusClass::Fatal);
        assert_eq!(
            fatal_error(&Status::invalid_argument("key too large: 5000 bytes")).to_string(),
            "request refused: key too large: 5000 bytes"
        );
    }

    #[test]
    fn errors_read_as_one_line() {
        let e = ClientError::Timeout {
            after: Duration::from_secs(10),
            tried: list(&["127.0.0.1:7001", "127.0.0.1:7002"]),
            last_error: Some("127.0.0.1:7002: connection refused".into()),
        };
        assert_eq!(
            e.to_string(),
            "no leader reachable after 10 s (tried 127.0.0.1:7001, 127.0.0.1:7002; \
             last error: 127.0.0.1:7002: connection refused)"
        );
        assert_eq!(format_duration(Duration::from_millis(500)), "500 ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5 s");
    }

    #[test]
    fn client_ids_are_random_and_non_zero() {
        let ids: std::collections::BTreeSet<u64> = (0..1000).map(|_| new_client_id().0).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&0));
    }

    #[test]
    fn options_are_checked() {
        assert_eq!(Client::new(ClientOptions::default()).unwrap_err(), ClientError::NoEndpoints);
        let c = Client::new(ClientOptions::new(["h:1", "http://h:1", "g:2"])).unwrap();
        assert_eq!(c.endpoints().collect::<Vec<_>>(), ["h:1", "g:2"]);
        assert!(matches!(
            Client::new(ClientOptions::new(["h"])),
            Err(ClientError::InvalidEndpoint { .. })
        ));
    }
}
