//! Client calls (Clerk to KV server) with labrpc's semantics:
//! - counted on entry (total RPCs, request bytes);
//! - a disabled end or a missing server fails after U[0,100) ms (U[0,7000) with long delays);
//! - unreliable: U[0,27) ms delay, then 1/10 dropped before the handler;
//! - the handler (the replica) may answer at once or much later; meanwhile, every 100 ms the
//!   caller checks whether the end was disabled or the server died, and gives up if so;
//! - an answer from a server that died or whose end was disabled is lost; unreliable: 1/10 of
//!   answers are dropped; reply bytes are counted on delivery;
//! - on the reliable network, the request and the answer each take the network's latency
//!   (see `network`).

use std::collections::BTreeMap;
use std::task::Waker;

use kvraft_kv::{ClientRequest, Op, Outcome, Reply};
use kvraft_replica::RequestId;

use super::{Event, World};
use crate::network::{RequestFate, MS};

#[derive(Debug)]
pub enum ClientEvent {
    /// The request reaches the server's handler.
    Arrive { call: u64 },
    /// The call fails (request lost or end unreachable).
    Fail { call: u64 },
    /// The caller's periodic check that the server is still reachable.
    Watch { call: u64 },
    /// The server's answer reaches the caller.
    Answer { call: u64, reply: Reply },
}

#[derive(Debug)]
struct ClientCall {
    client: usize,
    server: usize,
    server_incarnation: u64,
    request: ClientRequest,
    outcome: Option<Option<Reply>>,
    /// The answer left the server and is on its way: labrpc stops watching the server then.
    answered: bool,
    waker: Option<Waker>,
}

#[derive(Debug, Default)]
pub(crate) struct ClientCalls {
    next_id: u64,
    calls: BTreeMap<u64, ClientCall>,
    /// Replies the servers decided, not yet routed back.
    decided: Vec<(u64, Reply)>,
    /// Requests handed to servers and not yet answered, by the request id the server got, with
    /// the call and the server. Every arrival gets its own id, as the real server gives every
    /// request its own: a duplicated request is two requests to the server.
    submitted: BTreeMap<RequestId, (u64, usize)>,
    next_request: RequestId,
    /// `ends[client][server]`: the client's end to that server is enabled.
    ends: Vec<Vec<bool>>,
}

impl ClientCalls {
    /// A server answered request `id`.
    pub(crate) fn on_server_reply(&mut self, id: RequestId, reply: Reply) {
        let (call, _) = self.submitted.remove(&id).expect("a reply to a request handed out");
        self.decided.push((call, reply));
    }

    /// A new request id for `call` arriving at `server`.
    fn submit(&mut self, call: u64, server: usize) -> RequestId {
        self.next_request += 1;
        self.submitted.insert(self.next_request, (call, server));
        self.next_request
    }

    /// One more server: every client gets an end to it, enabled (the client can call it once
    /// it knows its address).
    pub(crate) fn add_server(&mut self) {
        for ends in &mut self.ends {
            ends.push(true);
        }
    }

    /// `server` crashed: its requests will never be answered.
    pub(crate) fn forget_server(&mut self, server: usize) {
        self.submitted.retain(|_, (_, s)| *s != server);
    }
}

pub fn request_len(req: &ClientRequest) -> u64 {
    let body = match &req.op {
        Op::Get { key } => key.len(),
        Op::Put { key, value } | Op::Append { key, value } => key.len() + value.len(),
    };
    (8 + 8 + 1 + 8 + body) as u64
}

fn reply_len(reply: &Reply) -> u64 {
    match reply {
        Ok(Outcome::Value(v)) => 8 + v.len() as u64,
        _ => 8,
    }
}

impl World {
    /// A new client endpoint with ends enabled to `servers`; returns its index.
    pub fn add_client(&mut self, servers: &[usize]) -> usize {
        let mut ends = vec![false; self.servers.len()];
        for s in servers {
            ends[*s] = true;
        }
        self.client_calls.ends.push(ends);
        self.client_calls.ends.len() - 1
    }

    pub fn set_client_end(&mut self, client: usize, server: usize, enabled: bool) {
        self.client_calls.ends[client][server] = enabled;
    }

    /// How many client endpoints exist (indices `0..client_count()`).
    pub fn client_count(&self) -> usize {
        self.client_calls.ends.len()
    }

    fn client_end_enabled(&self, client: usize, server: usize) -> bool {
        self.client_calls.ends[client][server]
    }

    /// Sends a request from a client to a server; poll the outcome with `poll_client_call`.
    pub fn start_client_call(
        &mut self,
        client: usize,
        server: usize,
        request: ClientRequest,
    ) -> u64 {
        self.net.total_rpcs += 1;
        self.net.total_bytes += request_len(&request);
        let call = self.client_calls.next_id;
        self.client_calls.next_id += 1;
        let server_incarnation = self.servers[server].incarnation;
        self.client_calls.calls.insert(
            call,
            ClientCall {
                client,
                server,
                server_incarnation,
                request,
                outcome: None,
                answered: false,
                waker: None,
            },
        );
        let (enabled, alive) = (self.client_end_enabled(client, server), self.is_alive(server));
        let now = self.now_us;
        if let (true, true, Some(delay)) = (enabled, alive, self.net.duplicate(&mut self.rng)) {
            self.schedule(now + delay, Event::Client(ClientEvent::Arrive { call }));
        }
        let event = match self.net.request_fate(&mut self.rng, enabled, alive) {
            RequestFate::Unreachable => {
                let delay = self.net.unreachable_delay(&mut self.rng);
                (now + delay, ClientEvent::Fail { call })
            }
            RequestFate::Dropped { after_us } => (now + after_us, ClientEvent::Fail { call }),
            RequestFate::Deliver { delay_us } => (now + delay_us, ClientEvent::Arrive { call }),
        };
        self.schedule(event.0, Event::Client(event.1));
        call
    }

    /// The outcome of a call once it is decided: `Some(reply)` or `None` for a failed call.
    pub fn poll_client_call(&mut self, call: u64, waker: &Waker) -> Option<Option<Reply>> {
        let c = self.client_calls.calls.get_mut(&call).expect("polling an unknown call");
        match c.outcome.take() {
            Some(outcome) => {
                self.client_calls.calls.remove(&call);
                Some(outcome)
            }
            None => {
                c.waker = Some(waker.clone());
                None
            }
        }
    }

    fn finish_client_call(&mut self, call: u64, outcome: Option<Reply>) {
        if let Some(c) = self.client_calls.calls.get_mut(&call) {
            if c.outcome.is_none() {
                if let Some(reply) = &outcome {
                    self.net.total_bytes += reply_len(reply);
                }
                c.outcome = Some(outcome);
                if let Some(w) = c.waker.take() {
                    w.wake();
                }
            }
        }
    }

    /// The caller's view: is the server it called still there, through an enabled end?
    fn client_call_dead(&self, call: u64) -> bool {
        let c = &self.client_calls.calls[&call];
        !self.client_end_enabled(c.client, c.server)
            || self.servers[c.server].incarnation != c.server_incarnation
    }

    pub(crate) fn handle_client_event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Fail { call } => self.finish_client_call(call, None),
            ClientEvent::Arrive { call } => {
                // A duplicate may arrive after the call was decided.
                let Some(c) = self.client_calls.calls.get(&call) else { return };
                if c.outcome.is_some() {
                    return;
                }
                let (server, request) = (c.server, c.request.clone());
                if self.servers[server].incarnation != c.server_incarnation {
                    self.finish_client_call(call, None);
                    return;
                }
                self.servers[server].rpc_count += 1;
                self.trace.record(self.now_us, "client-request", call, server as u64);
                let id = self.client_calls.submit(call, server);
                self.servers[server]
                    .peer
                    .as_mut()
                    .expect("live incarnation has a peer")
                    .submit(id, request);
                self.drive(server);
                self.watch_client_call(call);
            }
            ClientEvent::Watch { call } => self.watch_client_call(call),
            ClientEvent::Answer { call, reply } => self.finish_client_call(call, Some(reply)),
        }
    }

    /// The server a client event runs on: arrivals run on the server; failures and the
    /// caller's watch run on the client.
    pub(crate) fn client_event_target(&self, event: &ClientEvent) -> Option<usize> {
        match event {
            ClientEvent::Arrive { call } => self.client_calls.calls.get(call).map(|c| c.server),
            ClientEvent::Fail { .. } | ClientEvent::Watch { .. } | ClientEvent::Answer { .. } => {
                None
            }
        }
    }

    fn watch_client_call(&mut self, call: u64) {
        let Some(c) = self.client_calls.calls.get(&call) else { return };
        if c.outcome.is_some() || c.answered {
            return;
        }
        if self.client_call_dead(call) {
            self.finish_client_call(call, None);
        } else {
            self.schedule(self.now_us + 100 * MS, Event::Client(ClientEvent::Watch { call }));
        }
    }

    /// Delivers (or loses) the replies servers decided.
    pub(crate) fn route_client_replies(&mut self) {
        for (call, reply) in std::mem::take(&mut self.client_calls.decided) {
            let Some(c) = self.client_calls.calls.get(&call) else { continue };
            if c.outcome.is_some() || c.answered {
                continue;
            }
            let lost =
                self.client_call_dead(call) || (!self.net.reliable && self.rng.chance(100, 1000));
            self.trace.record(
                self.now_us,
                if lost { "client-reply-lost" } else { "client-reply" },
                call,
                0,
            );
            if lost {
                self.finish_client_call(call, None);
                continue;
            }
            match self.net.reply_latency(&mut self.rng) {
                0 => self.finish_client_call(call, Some(reply)),
                delay_us => {
                    if let Some(c) = self.client_calls.calls.get_mut(&call) {
                        c.answered = true;
                    }
                    let answer = Event::Client(ClientEvent::Answer { call, reply });
                    self.schedule(self.now_us + delay_us, answer);
                }
            }
        }
    }
}
