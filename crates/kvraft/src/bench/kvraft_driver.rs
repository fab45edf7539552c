//! The kvraft driver: raw `KvService` calls over shared tonic channels.
//!
//! [`kvraft_client::Client`] owns its channels (one per server, per client), so a thousand
//! clients would mean a thousand connections. Here the bench opens `--connections` sets of
//! channels (one lazily connected channel per server in each set) and gives bench client `i`
//! set `i mod M`; several clients then multiplex one HTTP/2 connection per server. Each bench
//! client still has its own session: its own random client id and sequence numbers, driven by
//! the sans-IO [`Clerk`], which picks the server, follows leader hints and retries the same
//! sequence number after `NOT_LEADER`, timeouts and transport errors, as the client library
//! does. `RESOURCE_EXHAUSTED` is retried at the same server with backoff; `SESSION_EXPIRED` and
//! `STALE` end the operation (an error) and start a new session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kvraft_client::remote::{
    classify_status, locate_hint, new_client_id, parse_address, HintTarget, StatusClass,
};
use kvraft_client::{Clerk, NextStep};
use kvraft_kv::{KvError, Op, Outcome, Reply};
use kvraft_proto::v1 as pb;
use kvraft_proto::v1::kv_service_client::KvServiceClient;
use kvraft_proto::KvRequest;
use tonic::transport::{Channel, Endpoint};

use super::driver::{Driver, Session};
use super::workload::OpKind;

/// Retries of a request refused with `RESOURCE_EXHAUSTED`, and the first pause (doubled each
/// time), as in the client library.
const OVERLOADED_RETRIES: u32 = 4;
const OVERLOADED_BACKOFF_MS: u64 = 50;

#[derive(Debug)]
pub struct KvraftDriver {
    /// The servers' addresses (`host:port`), in node-id order.
    addresses: Arc<Vec<String>>,
    /// `connections[m][s]`: connection set `m`'s channel to server `s`.
    connections: Vec<Vec<Channel>>,
    call_timeout: Duration,
    op_timeout: Duration,
}

impl KvraftDriver {
    /// Sets up `connections` channel sets to `endpoints`; nothing connects until first use.
    /// Needs a tokio runtime.
    pub fn new(
        endpoints: &[String],
        connections: usize,
        call_timeout: Duration,
        op_timeout: Duration,
    ) -> Result<KvraftDriver, String> {
        let mut addresses: Vec<String> = Vec::new();
        for e in endpoints {
            let address = parse_address(e).map_err(|e| e.to_string())?;
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        if addresses.is_empty() {
            return Err("no endpoints given".into());
        }
        let endpoints: Vec<Endpoint> = addresses
            .iter()
            .map(|a| {
                Endpoint::from_shared(format!("http://{a}"))
                    .map(|e| e.connect_timeout(call_timeout).tcp_nodelay(true))
                    .map_err(|e| format!("invalid endpoint {a:?}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        let connections = (0..connections.max(1))
            .map(|_| endpoints.iter().map(Endpoint::connect_lazy).collect())
            .collect();
        Ok(KvraftDriver { addresses: Arc::new(addresses), connections, call_timeout, op_timeout })
    }
}

impl Driver for KvraftDriver {
    type Session = KvraftSession;

    fn session(&self, index: usize) -> KvraftSession {
        let channels = self.connections[index % self.connections.len()].clone();
        KvraftSession {
            clerk: Clerk::new(new_client_id(), channels.len()),
            channels,
            addresses: self.addresses.clone(),
            call_timeout: self.call_timeout,
            op_timeout: self.op_timeout,
            session_confirmed: false,
        }
    }
}

/// One bench client's kvraft session.
#[derive(Debug)]
pub struct KvraftSession {
    clerk: Clerk,
    channels: Vec<Channel>,
    addresses: Arc<Vec<String>>,
    call_timeout: Duration,
    op_timeout: Duration,
    /// Whether the cluster has executed an operation of this session.
    session_confirmed: bool,
}

/// The outcome of one attempt.
enum Attempt {
    Answer(Reply),
    Failed(String),
    Overloaded,
    Fatal(String),
}

impl KvraftSession {
    /// Gives up on the current operation; a session the cluster never confirmed is replaced,
    /// since the cluster may not know it.
    fn abandon(&mut self) {
        self.clerk.abandon();
        if !self.session_confirmed {
            self.clerk.renew_session(new_client_id());
        }
    }

    async fn attempt(&self, target: usize, request: KvRequest, timeout: Duration) -> Attempt {
        let mut client = KvServiceClient::new(self.channels[target].clone());
        fn req<T>(message: T, timeout: Duration) -> tonic::Request<T> {
            let mut r = tonic::Request::new(message);
            r.set_timeout(timeout);
            r
        }
        let call = async move {
            match request {
                KvRequest::Put(r) => {
                    client.put(req(r, timeout)).await.map(|r| match r.into_inner().result {
                        Some(pb::put_reply::Result::Done(_)) => Ok(Outcome::Done),
                        Some(pb::put_reply::Result::Error(e)) => Err(Some(e)),
                        None => Err(None),
                    })
                }
                KvRequest::Append(r) => {
                    client.append(req(r, timeout)).await.map(|r| match r.into_inner().result {
                        Some(pb::append_reply::Result::Done(_)) => Ok(Outcome::Done),
                        Some(pb::append_reply::Result::Error(e)) => Err(Some(e)),
                        None => Err(None),
                    })
                }
                KvRequest::Get(r) => {
                    client.get(req(r, timeout)).await.map(|r| match r.into_inner().result {
                        Some(pb::get_reply::Result::Value(v)) => Ok(Outcome::Value(v)),
                        Some(pb::get_reply::Result::Error(e)) => Err(Some(e)),
                        None => Err(None),
                    })
                }
            }
        };
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => return Attempt::Failed(format!("no answer within {timeout:?}")),
        };
        match result {
            Ok(Ok(outcome)) => Attempt::Answer(Ok(outcome)),
            Ok(Err(None)) => Attempt::Failed("malformed reply (no result)".into()),
            Ok(Err(Some(e))) => match pb::ErrorCode::try_from(e.code) {
                Ok(pb::ErrorCode::NotLeader) => {
                    let leader_hint = match locate_hint(&self.addresses, e.leader_hint.as_ref()) {
                        HintTarget::Known(i) => Some(i),
                        // The bench keeps to its configured servers.
                        HintTarget::New(_) | HintTarget::Unknown => None,
                    };
                    Attempt::Answer(Err(KvError::WrongLeader { leader_hint }))
                }
                Ok(pb::ErrorCode::SessionExpired) => Attempt::Answer(Err(KvError::SessionExpired)),
                Ok(pb::ErrorCode::Stale) => Attempt::Answer(Err(KvError::Stale)),
                Ok(pb::ErrorCode::Unspecified) | Err(_) => {
                    Attempt::Failed(format!("unknown error code {}: {}", e.code, e.message))
                }
            },
            Err(status) => match classify_status(status.code()) {
                StatusClass::Retry => {
                    Attempt::Failed(format!("{:?}: {}", status.code(), status.message()))
                }
                StatusClass::Overloaded => Attempt::Overloaded,
                StatusClass::Fatal => {
                    Attempt::Fatal(format!("{:?}: {}", status.code(), status.message()))
                }
            },
        }
    }
}

impl Session for KvraftSession {
    async fn execute(&mut self, op: OpKind, key: &str, value: &str) -> Result<(), String> {
        if self.clerk.is_busy() {
            // The previous operation's future was dropped mid-flight.
            self.abandon();
        }
        let key = key.to_string();
        let op = match op {
            OpKind::Put => Op::Put { key, value: value.to_string() },
            OpKind::Append => Op::Append { key, value: value.to_string() },
            OpKind::Get => Op::Get { key },
        };
        let request = KvRequest::from(self.clerk.begin(op));
        let deadline = Instant::now() + self.op_timeout;
        let mut last_error = String::from("none");
        let mut overloaded = 0u32;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.abandon();
                return Err(format!("timed out (last error: {last_error})"));
            }
            let target = self.clerk.target();
            let step =
                match self.attempt(target, request.clone(), self.call_timeout.min(left)).await {
                    Attempt::Answer(reply) => {
                        if let Err(e) = &reply {
                            last_error = format!("{}: {e}", self.addresses[target]);
                        }
                        self.clerk.on_answer(Some(reply))
                    }
                    Attempt::Failed(why) => {
                        last_error = format!("{}: {why}", self.addresses[target]);
                        self.clerk.on_answer(None)
                    }
                    Attempt::Overloaded => {
                        overloaded += 1;
                        if overloaded > OVERLOADED_RETRIES {
                            self.abandon();
                            return Err(format!("{}: overloaded", self.addresses[target]));
                        }
                        NextStep::Retry { backoff_ms: OVERLOADED_BACKOFF_MS << (overloaded - 1) }
                    }
                    Attempt::Fatal(why) => {
                        self.abandon();
                        return Err(format!("{}: {why}", self.addresses[target]));
                    }
                };
            match step {
                NextStep::Done(Ok(_)) => {
                    self.session_confirmed = true;
                    return Ok(());
                }
                NextStep::Done(Err(e)) => {
                    self.clerk.renew_session(new_client_id());
                    self.session_confirmed = false;
                    return Err(e.to_string());
                }
                NextStep::Retry { backoff_ms } => {
                    let pause = Duration::from_millis(backoff_ms)
                        .min(deadline.saturating_duration_since(Instant::now()));
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }
}
