//! What the world hosts on each server: a Raft peer and whatever sits on top of it.

use bytes::Bytes;
use kvraft_kv::{ClientRequest, Reply};
use kvraft_raft::{LogIndex, Message, ProposeError, RawNode, Ready, Term};
use kvraft_replica::Replica;

/// A hosted server, driven by the world exactly as the real server drives its replica.
pub trait Peer {
    fn raft(&self) -> &RawNode;
    fn tick(&mut self);
    fn step(&mut self, msg: Message);
    fn has_ready(&self) -> bool;
    fn ready(&mut self) -> Ready;
    fn on_persisted(&mut self, number: u64);
    /// Applies the committed part of a persisted Ready; `raft_state_size` is what storage
    /// holds now (the snapshot policy reads it).
    fn apply(&mut self, ready: &mut Ready, raft_state_size: usize);
    /// The lab's `Start(cmd)` (Raft tests only).
    fn propose(&mut self, _data: Bytes) -> Result<(LogIndex, Term), ProposeError> {
        Err(ProposeError::NotLeader { leader: None })
    }
    /// A client request arriving as call `call` (KV tests only).
    fn submit(&mut self, call: u64, _req: ClientRequest) {
        panic!("call {call}: this peer serves no clients");
    }
    /// Replies to client calls decided since the last call.
    fn take_replies(&mut self) -> Vec<(u64, Reply)> {
        Vec::new()
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
    fn has_ready(&self) -> bool {
        Replica::has_ready(self)
    }
    fn ready(&mut self) -> Ready {
        Replica::ready(self)
    }
    fn on_persisted(&mut self, number: u64) {
        Replica::on_persisted(self, number)
    }
    fn apply(&mut self, ready: &mut Ready, raft_state_size: usize) {
        Replica::apply(self, ready, raft_state_size)
    }
    fn submit(&mut self, call: u64, req: ClientRequest) {
        Replica::submit(self, call, req)
    }
    fn take_replies(&mut self) -> Vec<(u64, Reply)> {
        Replica::take_replies(self)
    }
}
