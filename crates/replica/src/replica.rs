//! The replica itself.

use std::collections::{BTreeMap, VecDeque};

use kvraft_kv::codec::{decode_command, encode_command, DecodeError};
use kvraft_kv::{
    ClientId, ClientRequest, Command, Dedup, KvError, KvStateMachine, Op, Outcome, Reply, Sequence,
    SessionLimits,
};
use kvraft_raft::{
    Config, ConfigError, Entry, LogIndex, Message, RawNode, Ready, RecoveredState, StepError, Term,
};

/// The driver's handle for a client request, echoed back with its reply.
pub type RequestId = u64;

#[derive(Clone, Copy, Debug)]
pub struct ReplicaConfig {
    /// Snapshot when the Raft state reaches this many bytes (`maxraftstate`); None = never.
    pub max_raft_state_bytes: Option<usize>,
    /// Snapshot at this fraction (percent) of `max_raft_state_bytes`, leaving headroom for
    /// entries that arrive before the next apply.
    pub snapshot_at_percent: usize,
    pub sessions: SessionLimits,
}

impl Default for ReplicaConfig {
    fn default() -> ReplicaConfig {
        ReplicaConfig {
            max_raft_state_bytes: None,
            snapshot_at_percent: 80,
            sessions: SessionLimits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("bad Raft configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("the snapshot in storage cannot be decoded: {0}")]
    Snapshot(DecodeError),
}

/// A request waiting for its log entry.
#[derive(Debug)]
struct Pending {
    id: RequestId,
    term: Term,
    client: ClientId,
    seq: Sequence,
}

#[derive(Debug)]
pub struct Replica {
    raft: RawNode,
    sm: KvStateMachine,
    config: ReplicaConfig,
    /// Proposed requests by the log index they were given.
    pending: BTreeMap<LogIndex, Pending>,
    /// Gets waiting for the leader to confirm them through ReadIndex, by request id (the
    /// read's context), with their key. All were asked in `unconfirmed_reads_term`.
    unconfirmed_reads: BTreeMap<RequestId, String>,
    unconfirmed_reads_term: Term,
    /// Confirmed Gets waiting for the state machine to reach their read index, in
    /// confirmation order, which is also index order (the commit index never goes back).
    confirmed_reads: VecDeque<(LogIndex, RequestId, String)>,
    replies: Vec<(RequestId, Reply)>,
}

impl Replica {
    /// A replica restarting from its storage: the state machine comes from the snapshot; the
    /// log after it is replayed as Raft hands the committed entries out again.
    ///
    /// Gets are served by ReadIndex, without a log entry; so that a new leader can serve them
    /// at once, it appends a no-op entry on election (this overrides
    /// `raft_config.append_noop_on_election`).
    pub fn new(
        mut raft_config: Config,
        recovered: RecoveredState,
        config: ReplicaConfig,
    ) -> Result<Replica, ReplicaError> {
        let sm = if recovered.snapshot.data.is_empty() {
            KvStateMachine::new(config.sessions)
        } else {
            KvStateMachine::decode_snapshot(&recovered.snapshot.data, config.sessions)
                .map_err(ReplicaError::Snapshot)?
        };
        raft_config.append_noop_on_election = true;
        let raft = RawNode::new(raft_config, recovered)?;
        Ok(Replica {
            raft,
            sm,
            config,
            pending: BTreeMap::new(),
            unconfirmed_reads: BTreeMap::new(),
            unconfirmed_reads_term: Term::default(),
            confirmed_reads: VecDeque::new(),
            replies: Vec::new(),
        })
    }

    pub fn raft(&self) -> &RawNode {
        &self.raft
    }

    pub fn state_machine(&self) -> &KvStateMachine {
        &self.sm
    }

    pub fn tick(&mut self) {
        self.raft.tick();
        self.fail_pending_if_deposed();
    }

    pub fn step(&mut self, msg: Message) -> Result<(), StepError> {
        self.raft.step(msg)?;
        self.fail_pending_if_deposed();
        Ok(())
    }

    fn leader_hint(&self) -> Option<usize> {
        self.raft.leader().filter(|l| *l != self.raft.id()).map(|l| l.0 as usize - 1)
    }

    /// A client request. Its reply comes out of `take_replies` (at once if it cannot be
    /// served here, otherwise once its entry is applied).
    pub fn submit(&mut self, id: RequestId, req: ClientRequest) {
        if !self.raft.is_leader() {
            let hint = self.leader_hint();
            self.replies.push((id, Err(KvError::WrongLeader { leader_hint: hint })));
            return;
        }
        if let Op::Get { key } = &req.op {
            #[cfg(not(feature = "bug-get-from-local-state"))]
            {
                self.submit_read(id, key.clone());
                return;
            }
            // Planted bug: answer from local state, which a deposed leader may hold stale.
            #[cfg(feature = "bug-get-from-local-state")]
            {
                let value = self.sm.get(key).to_string();
                self.replies.push((id, Ok(Outcome::Value(value))));
                return;
            }
        }
        // Already applied (a retry whose reply was lost): answer from the session table.
        match self.sm.dedup(req.client, req.seq) {
            Dedup::Duplicate(outcome) => {
                self.replies.push((id, Ok(outcome)));
                return;
            }
            Dedup::Stale => {
                self.replies.push((id, Err(KvError::Stale)));
                return;
            }
            Dedup::New | Dedup::Expired => {}
        }
        let (client, seq) = (req.client, req.seq);
        match self.raft.propose(encode_command(&Command::Client(req))) {
            Ok((index, term)) => {
                let displaced = self.pending.insert(index, Pending { id, term, client, seq });
                assert!(displaced.is_none(), "two pending requests at index {index}");
            }
            Err(_) => {
                let hint = self.leader_hint();
                self.replies.push((id, Err(KvError::WrongLeader { leader_hint: hint })));
            }
        }
    }

    /// A linearizable read through ReadIndex: no log entry, no session (reads need no dedup:
    /// running one twice is harmless).
    #[cfg_attr(feature = "bug-get-from-local-state", allow(dead_code))]
    fn submit_read(&mut self, id: RequestId, key: String) {
        match self.raft.read_index(id) {
            Ok(()) => {
                self.unconfirmed_reads_term = self.raft.term();
                self.unconfirmed_reads.insert(id, key);
            }
            Err(_) => {
                let hint = self.leader_hint();
                self.replies.push((id, Err(KvError::WrongLeader { leader_hint: hint })));
            }
        }
    }

    /// Serves every confirmed read whose index the state machine has reached.
    fn serve_reads(&mut self) {
        let applied = LogIndex(self.sm.applied());
        while let Some((index, _, _)) = self.confirmed_reads.front() {
            if *index > applied {
                break;
            }
            let (_, id, key) = self.confirmed_reads.pop_front().expect("front exists");
            let value = self.sm.get(&key).to_string();
            self.replies.push((id, Ok(Outcome::Value(value))));
        }
    }

    /// Leadership lost or the term moved on: no pending request can be answered here, so fail
    /// them now (the client retries; dedup makes that safe even if they do commit).
    fn fail_pending_if_deposed(&mut self) {
        self.fail_reads_if_deposed();
        let Some((_, first)) = self.pending.first_key_value() else { return };
        if self.raft.is_leader() && self.raft.term() == first.term {
            return;
        }
        let hint = self.leader_hint();
        for (_, p) in std::mem::take(&mut self.pending) {
            self.replies.push((p.id, Err(KvError::WrongLeader { leader_hint: hint })));
        }
    }

    pub fn has_ready(&self) -> bool {
        self.raft.has_ready()
    }

    /// Unconfirmed reads of an older term, or of a leader no more, are failed (confirmed ones
    /// were linearizable when confirmed and are still served once applied).
    fn fail_reads_if_deposed(&mut self) {
        if self.unconfirmed_reads.is_empty()
            || (self.raft.is_leader() && self.raft.term() == self.unconfirmed_reads_term)
        {
            return;
        }
        let hint = self.leader_hint();
        for (id, _) in std::mem::take(&mut self.unconfirmed_reads) {
            self.replies.push((id, Err(KvError::WrongLeader { leader_hint: hint })));
        }
    }

    /// The next Ready. Confirmed reads are taken from it here, at once: serving them needs no
    /// disk write, only the state machine to have applied their index.
    pub fn ready(&mut self) -> Ready {
        let mut rd = self.raft.ready();
        for state in std::mem::take(&mut rd.read_states) {
            if let Some(key) = self.unconfirmed_reads.remove(&state.ctx) {
                debug_assert!(
                    self.confirmed_reads.back().is_none_or(|(last, _, _)| *last <= state.index),
                    "read indexes go back"
                );
                self.confirmed_reads.push_back((state.index, state.ctx, key));
            }
        }
        self.serve_reads();
        rd
    }

    pub fn on_persisted(&mut self, number: u64) {
        self.raft.on_persisted(number);
    }

    /// Applies the committed part of a persisted Ready, answers the requests waiting for those
    /// entries, and snapshots if the Raft state (`raft_state_size`, from storage) grew too big.
    pub fn apply(&mut self, ready: &mut Ready, raft_state_size: usize) {
        if let Some(snapshot) = ready.apply_snapshot.take() {
            self.sm = KvStateMachine::decode_snapshot(&snapshot.data, self.config.sessions)
                .unwrap_or_else(|e| panic!("leader sent a snapshot we cannot decode: {e}"));
            let covered: Vec<LogIndex> =
                self.pending.range(..=snapshot.meta.index).map(|(i, _)| *i).collect();
            for index in covered {
                let p = self.pending.remove(&index).expect("listed");
                self.replies.push((p.id, Err(KvError::WrongLeader { leader_hint: None })));
            }
        }
        for entry in std::mem::take(&mut ready.committed_entries) {
            self.apply_entry(&entry);
        }
        self.serve_reads();
        if let Some(max) = self.config.max_raft_state_bytes {
            if raft_state_size * 100 >= max * self.config.snapshot_at_percent {
                // The state machine's own index, not RawNode's: Readies handed out but still
                // waiting for the disk hold entries RawNode counts as applied.
                let index = LogIndex(self.sm.applied());
                if index > self.raft.log().snapshot_meta().index {
                    self.raft
                        .snapshot(index, self.sm.encode_snapshot())
                        .expect("snapshot of applied state");
                }
            }
        }
    }

    fn apply_entry(&mut self, entry: &Entry) {
        if entry.data.is_empty() {
            // A new leader's no-op.
            self.sm.apply_noop(entry.index.0);
            return;
        }
        let cmd = decode_command(&entry.data)
            .unwrap_or_else(|e| panic!("undecodable command at index {}: {e}", entry.index));
        let reply = self.sm.apply(entry.index.0, &cmd);
        let Some(p) = self.pending.remove(&entry.index) else { return };
        let Command::Client(req) = &cmd;
        let ours = p.term == entry.term && p.client == req.client && p.seq == req.seq;
        let reply = if ours {
            reply
        } else {
            Err(KvError::WrongLeader { leader_hint: self.leader_hint() })
        };
        self.replies.push((p.id, reply));
    }

    /// Replies ready for delivery, in the order they were decided.
    pub fn take_replies(&mut self) -> Vec<(RequestId, Reply)> {
        std::mem::take(&mut self.replies)
    }

    /// Requests waiting for their log entry or their read confirmation.
    pub fn pending_requests(&self) -> usize {
        self.pending.len() + self.unconfirmed_reads.len() + self.confirmed_reads.len()
    }
}
