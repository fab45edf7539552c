//! The operator's administration calls (membership changes, leadership transfers) to one
//! server, answered by that server's `Output::Admin`.
//!
//! An operator talks to a server over a connection of its own, outside the partitions the
//! network strikes between servers and between clients and servers (an admin host): the
//! request and the answer each take the reliable network's latency. The call fails (resolves
//! to `None`) if the server is down when the request arrives, if it crashes before it answers
//! (the answer can then never come), or when the caller's deadline passes; an answer that comes
//! after that is only recorded in `World::admin_replies`.
//!
//! Every arrival is handed to the server under a request id of its own, from a range client
//! requests never use, so that the log of answers says which were administration.

use std::collections::BTreeMap;
use std::task::Waker;

use kvraft_replica::{AdminReply, AdminRequest, RequestId};

use super::{Event, World};
use crate::network::MS;

/// The first request id handed to servers for administration (client requests count from 1).
const FIRST_ADMIN_REQUEST: RequestId = 1 << 62;

#[derive(Debug)]
pub enum AdminEvent {
    /// The request reaches the server.
    Arrive { call: u64 },
    /// The answer reaches the operator.
    Answer { call: u64, reply: AdminReply },
    /// The call's deadline, or the server was unreachable: the call fails.
    Fail { call: u64 },
}

#[derive(Debug)]
struct AdminCall {
    server: usize,
    server_incarnation: u64,
    request: AdminRequest,
    outcome: Option<Option<AdminReply>>,
    waker: Option<Waker>,
}

#[derive(Debug)]
pub(crate) struct AdminCalls {
    next_call: u64,
    calls: BTreeMap<u64, AdminCall>,
    /// Requests handed to servers and not yet answered: request id to (call, server).
    submitted: BTreeMap<RequestId, (u64, usize)>,
    next_request: RequestId,
}

impl Default for AdminCalls {
    fn default() -> AdminCalls {
        AdminCalls {
            next_call: 0,
            calls: BTreeMap::new(),
            submitted: BTreeMap::new(),
            next_request: FIRST_ADMIN_REQUEST,
        }
    }
}

impl World {
    /// Sends an administration request to `server`; the call fails unless answered within
    /// `timeout_ms`. Poll the outcome with `poll_admin_call` (or await `Sim::admin_call`).
    pub fn start_admin_call(
        &mut self,
        server: usize,
        request: AdminRequest,
        timeout_ms: u64,
    ) -> u64 {
        let call = self.admin_calls.next_call;
        self.admin_calls.next_call += 1;
        let server_incarnation = self.servers[server].incarnation;
        self.admin_calls.calls.insert(
            call,
            AdminCall { server, server_incarnation, request, outcome: None, waker: None },
        );
        let now = self.now_us;
        if self.is_alive(server) {
            let delay = self.net.latency.sample(&mut self.rng);
            self.schedule(now + delay, Event::Admin(AdminEvent::Arrive { call }));
        } else {
            let delay = self.net.unreachable_delay(&mut self.rng);
            self.schedule(now + delay, Event::Admin(AdminEvent::Fail { call }));
        }
        self.schedule(now + timeout_ms * MS, Event::Admin(AdminEvent::Fail { call }));
        self.trace.record(now, "admin-call", call, server as u64);
        call
    }

    /// The outcome of an administration call once decided: `Some(reply)`, or `None` if the
    /// call failed.
    pub fn poll_admin_call(&mut self, call: u64, waker: &Waker) -> Option<Option<AdminReply>> {
        let c = self.admin_calls.calls.get_mut(&call).expect("polling an unknown admin call");
        match c.outcome.take() {
            Some(outcome) => {
                self.admin_calls.calls.remove(&call);
                Some(outcome)
            }
            None => {
                c.waker = Some(waker.clone());
                None
            }
        }
    }

    fn finish_admin_call(&mut self, call: u64, outcome: Option<AdminReply>) {
        let Some(c) = self.admin_calls.calls.get_mut(&call) else { return };
        if c.outcome.is_some() {
            return;
        }
        c.outcome = Some(outcome);
        if let Some(waker) = c.waker.take() {
            waker.wake();
        }
        // An answer that comes later is only logged.
        self.admin_calls.submitted.retain(|_, (pending, _)| *pending != call);
    }

    pub(crate) fn handle_admin_event(&mut self, event: AdminEvent) {
        match event {
            AdminEvent::Fail { call } => self.finish_admin_call(call, None),
            AdminEvent::Answer { call, reply } => self.finish_admin_call(call, Some(reply)),
            AdminEvent::Arrive { call } => {
                let Some(c) = self.admin_calls.calls.get(&call) else { return };
                if c.outcome.is_some() {
                    return;
                }
                let (server, request) = (c.server, c.request.clone());
                if self.servers[server].incarnation != c.server_incarnation {
                    self.finish_admin_call(call, None);
                    return;
                }
                self.admin_calls.next_request += 1;
                let id = self.admin_calls.next_request;
                self.admin_calls.submitted.insert(id, (call, server));
                self.trace.record(self.now_us, "admin-request", call, server as u64);
                self.servers[server]
                    .peer
                    .as_mut()
                    .expect("live incarnation has a peer")
                    .submit_admin(id, request);
                self.drive(server);
            }
        }
    }

    /// `server` answered administration request `id`: logged, and carried back to the call
    /// that is waiting for it, if any.
    pub(crate) fn on_admin_reply(&mut self, server: usize, id: RequestId, reply: AdminReply) {
        self.admin_replies.push((server, id, reply.clone()));
        let Some((call, _)) = self.admin_calls.submitted.remove(&id) else { return };
        let delay = self.net.latency.sample(&mut self.rng);
        self.schedule(self.now_us + delay, Event::Admin(AdminEvent::Answer { call, reply }));
    }

    /// `server` crashed: the requests it had not answered never will be.
    pub(crate) fn fail_admin_calls_to(&mut self, server: usize) {
        let lost: Vec<u64> = self
            .admin_calls
            .submitted
            .values()
            .filter(|(_, s)| *s == server)
            .map(|(call, _)| *call)
            .collect();
        for call in lost {
            self.finish_admin_call(call, None);
        }
    }

    /// The server an administration event runs on: arrivals run on the server.
    pub(crate) fn admin_event_target(&self, event: &AdminEvent) -> Option<usize> {
        match event {
            AdminEvent::Arrive { call } => self.admin_calls.calls.get(call).map(|c| c.server),
            AdminEvent::Answer { .. } | AdminEvent::Fail { .. } => None,
        }
    }
}
