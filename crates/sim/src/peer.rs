//! What the world hosts on each server: a Raft peer and whatever sits on top of it.

use bytes::Bytes;
use kvraft_kv::ClientRequest;
use kvraft_raft::{LogIndex, Message, ProposeError, RawNode, ReadyNumber, Term};
use kvraft_replica::{AdminRequest, Output, Replica, RequestId};

/// A hosted server. The world drives it as the real server drives its replica: inputs, then
/// `poll` until it returns None, carrying each output to the simulated network, disk or
/// client.
pub trait Peer {
    fn raft(&self) -> &RawNode;
    fn tick(&mut self);
    fn step(&mut self, msg: Message);
    /// The next output (see `kvraft_replica::pipeline`), or None when there is nothing until
    /// the next input.
    fn poll(&mut self) -> Option<Output>;
    /// The write handed out with this `through` is durable.
    fn on_written(&mut self, through: ReadyNumber, raft_state_size: usize);
    /// Panics if an invariant of the peer (its Raft node's included) is broken.
    fn check_invariants(&self);
    /// The lab's `Start(cmd)` (Raft tests only).
    fn propose(&mut self, _data: Bytes) -> Result<(LogIndex, Term), ProposeError> {
        Err(ProposeError::NotLeader { leader: None })
    }
    /// A client request arriving as call `call` (KV tests only).
    fn submit(&mut self, call: u64, _req: ClientRequest) {
        panic!("call {call}: this peer serves no clients");
    }
    /// An administration request (membership change, leadership transfer) arriving as
    /// request `id`; its answer comes out of `poll` as `Output::Admin` (KV peers only).
    fn submit_admin(&mut self, id: RequestId, _req: AdminRequest) {
        panic!("request {id}: this peer takes no administration requests");
    }
}

impl Peer for Replica {
    fn raft(&self) -> &RawNode {
        Replica::raft(self)
    }
    fn tick(&mut self) {
        Replica::tick(self)
    }
    fn step(&mut self, msg: Message) {
        Replica::step(self, msg).expect("simulator delivers only well-addressed messages")
    }
    fn poll(&mut self) -> Option<Output> {
        Replica::poll(self)
    }
    fn on_written(&mut self, through: ReadyNumber, raft_state_size: usize) {
        Replica::on_written(self, through, raft_state_size)
    }
    fn check_invariants(&self) {
        Replica::check_invariants(self)
    }
    fn submit(&mut self, call: u64, req: ClientRequest) {
        Replica::submit(self, call, req)
    }
    fn submit_admin(&mut self, id: RequestId, req: AdminRequest) {
        Replica::submit_admin(self, id, req)
    }
}
