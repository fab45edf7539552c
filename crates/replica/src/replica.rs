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
    /// Follower reads (Raft thesis 6.4), off by default (the MIT lab tests expect followers to
    /// refuse every request). When on, a follower that knows its leader accepts Gets instead
    /// of answering `WrongLeader`: it forwards a ReadIndex request to the leader and serves
    /// the Get from its own state machine once that has applied the index the leader
    /// confirmed, so the read is as linearizable as one served by the leader. Writes still
    /// go to the leader. A read that cannot be confirmed (no leader known, the leader or term
    /// changed, the leader refused, no answer within an election timeout) fails with
    /// `WrongLeader { leader_hint }`, and the client retries, there or at the hinted leader.
    ///
    /// A driver enables it by setting this field (every replica of the cluster should, though
    /// mixing is safe) and then lets clients send Gets to any server, e.g. the nearest one;
    /// the proto mapping must carry `ReadIndexRequest`/`ReadIndexResponse` between peers.
    pub follower_reads: bool,
}

impl Default for ReplicaConfig {
    fn default() -> ReplicaConfig {
        ReplicaConfig {
            max_raft_state_bytes: None,
            snapshot_at_percent: 80,
            sessions: SessionLimits::default(),
            follower_reads: false,
        }
    }
}

/// A confirmed read not applied within this many election timeouts fails (a follower that
/// lost its leader may not catch up soon): the client retries rather than waits.
const READ_APPLY_TIMEOUT_ELECTIONS: u64 = 2;

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
    /// Gets waiting for Raft to confirm them through ReadIndex (here, or forwarded to the
    /// leader), by request id (the read's context), with their key. Raft reports each one
    /// back exactly once, confirmed or failed.
    unconfirmed_reads: BTreeMap<RequestId, String>,
    /// Confirmed Gets waiting for the state machine to reach their read index, in index order
    /// (answers from the leader may arrive in any order).
    confirmed_reads: BTreeMap<(LogIndex, RequestId), String>,
    /// When each confirmed read gives up waiting, in confirmation (so deadline) order; reads
    /// served meanwhile are skipped.
    read_deadlines: VecDeque<(u64, LogIndex, RequestId)>,
    /// Ticks since this replica started.
    ticks: u64,
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
            confirmed_reads: BTreeMap::new(),
            read_deadlines: VecDeque::new(),
            ticks: 0,
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
        self.ticks += 1;
        self.raft.tick();
        self.fail_pending_if_deposed();
        self.expire_confirmed_reads();
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
        if let Op::Get { key } = &req.op {
            // Planted bug: a leader answers from local state, which it may hold stale if deposed.
            #[cfg(feature = "bug-get-from-local-state")]
            if self.raft.is_leader() {
                let value = self.sm.get(key).to_string();
                self.replies.push((id, Ok(Outcome::Value(value))));
                return;
            }
            if self.raft.is_leader() || self.config.follower_reads {
                self.submit_read(id, key.clone());
            } else {
                let hint = self.leader_hint();
                self.replies.push((id, Err(KvError::WrongLeader { leader_hint: hint })));
            }
            return;
        }
        if !self.raft.is_leader() {
            let hint = self.leader_hint();
            self.replies.push((id, Err(KvError::WrongLeader { leader_hint: hint })));
            return;
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

    /// A linearizable read through ReadIndex (on the leader, or forwarded by a follower): no
    /// log entry, no session (reads need no dedup: running one twice is harmless).
    fn submit_read(&mut self, id: RequestId, key: String) {
        if self.unconfirmed_reads.contains_key(&id) {
            // The same request delivered twice (a duplicating network): one answer serves both.
            return;
        }
        match self.raft.read_index(id) {
            Ok(()) => {
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
        while let Some(entry) = self.confirmed_reads.first_entry() {
            if entry.key().0 > applied {
                break;
            }
            let ((_, id), key) = entry.remove_entry();
            let value = self.sm.get(&key).to_string();
            self.replies.push((id, Ok(Outcome::Value(value))));
        }
    }

    /// Confirmed reads that the state machine has not reached in time fail: the client
    /// retries (elsewhere, or here once this replica has caught up).
    fn expire_confirmed_reads(&mut self) {
        while let Some(&(deadline, index, id)) = self.read_deadlines.front() {
            if deadline > self.ticks {
                break;
            }
            self.read_deadlines.pop_front();
            if self.confirmed_reads.remove(&(index, id)).is_some() {
                let hint = self.leader_hint();
                self.replies.push((id, Err(KvError::WrongLeader { leader_hint: hint })));
            }
        }
        if self.confirmed_reads.is_empty() {
            self.read_deadlines.clear();
        }
    }

    /// Leadership lost or the term moved on: no pending write can be answered here, so fail
    /// them now (the client retries; dedup makes that safe even if they do commit). Reads
    /// need no such check: Raft itself fails the reads it can no longer confirm.
    fn fail_pending_if_deposed(&mut self) {
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

    /// The next Ready. Confirmed and failed reads are taken from it here, at once: serving
    /// them needs no disk write, only the state machine to have applied their index.
    /// (Confirmed reads were linearizable when confirmed: they are served once applied even
    /// if this peer has lost its leader since.)
    pub fn ready(&mut self) -> Ready {
        let mut rd = self.raft.ready();
        let deadline = self.ticks
            + READ_APPLY_TIMEOUT_ELECTIONS * u64::from(self.raft.config().election_timeout_ticks);
        for state in std::mem::take(&mut rd.read_states) {
            let key = self
                .unconfirmed_reads
                .remove(&state.ctx)
                .unwrap_or_else(|| panic!("read {} confirmed but not asked for", state.ctx));
            self.confirmed_reads.insert((state.index, state.ctx), key);
            self.read_deadlines.push_back((deadline, state.index, state.ctx));
        }
        if !rd.failed_reads.is_empty() {
            let hint = self.leader_hint();
            for ctx in std::mem::take(&mut rd.failed_reads) {
                self.unconfirmed_reads
                    .remove(&ctx)
                    .unwrap_or_else(|| panic!("read {ctx} failed but not asked for"));
                self.replies.push((ctx, Err(KvError::WrongLeader { leader_hint: hint })));
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
