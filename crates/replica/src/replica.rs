//! The replica: a Raft peer, the KV side on top of it, and the Ready pipeline between them.

use kvraft_kv::codec::{encode_command, DecodeError};
use kvraft_kv::{ClientRequest, Command, Dedup, KvError, KvStateMachine, Op, SessionLimits};
use kvraft_raft::{
    size, Config, ConfigError, Message, ProposeError, RawNode, ReadyNumber, RecoveredState,
    StepError,
};

use crate::admin::AdminRequest;
use crate::applier::{KvApplier, PendingWrite};
use crate::pipeline::{Output, ReadyPipeline};

/// The driver's handle for a client request, echoed back with its reply.
pub type RequestId = u64;

/// How a replica snapshots, keeps sessions and serves reads.
#[derive(Clone, Copy, Debug)]
pub struct ReplicaConfig {
    /// Snapshot when the Raft state reaches this many bytes (`maxraftstate`); None = never.
    pub max_raft_state_bytes: Option<usize>,
    /// Snapshot at this fraction (percent) of `max_raft_state_bytes`, leaving headroom for
    /// entries that arrive before the next apply.
    pub snapshot_at_percent: usize,
    /// Limits of the client session table.
    pub sessions: SessionLimits,
    /// Follower reads (Raft thesis 6.4), off by default (the MIT lab tests expect followers to
    /// refuse every request). When on, a follower that knows its leader accepts Gets instead
    /// of answering `WrongLeader`: it forwards a ReadIndex request to the leader and serves
    /// the Get from its own state machine once that has applied the index the leader
    /// confirmed, so the read is as linearizable as one served by the leader. Writes still
    /// go to the leader. A read that cannot be confirmed (no leader known, the leader or term
    /// changed, the leader refused, no answer within an election timeout) fails with
    /// `WrongLeader { leader }`, and the client retries, there or at the hinted leader.
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

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The Raft configuration is invalid.
    #[error("bad Raft configuration: {0}")]
    Config(#[from] ConfigError),
    /// The stored snapshot cannot be decoded: the state machine has nothing to start from.
    #[error("the snapshot in storage cannot be decoded: {0}")]
    Snapshot(DecodeError),
}

/// One KV server as a deterministic state machine; see the crate docs for how to drive it.
#[derive(Debug)]
pub struct Replica {
    raft: RawNode,
    pipeline: ReadyPipeline,
    kv: KvApplier,
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
        // What storage holds, as `Storage::raft_state_size` counts it, until the first write
        // reports the new size.
        let raft_state_size =
            size::HARD_STATE_LEN + recovered.entries.iter().map(size::entry_len).sum::<usize>();
        raft_config.append_noop_on_election = true;
        let raft = RawNode::new(raft_config, recovered)?;
        Ok(Replica {
            raft,
            pipeline: ReadyPipeline::new(raft_state_size),
            kv: KvApplier::new(sm, config),
        })
    }

    /// The Raft peer, for inspection.
    pub fn raft(&self) -> &RawNode {
        &self.raft
    }

    /// The state machine, for inspection.
    pub fn state_machine(&self) -> &KvStateMachine {
        &self.kv.sm
    }

    /// Advances the clock by one tick: Raft's timers, and the deadlines of pending reads and
    /// writes.
    pub fn tick(&mut self) {
        self.kv.ticks += 1;
        self.raft.tick();
        self.kv.fail_writes_if_deposed(&self.raft);
        self.kv.expire_reads(&self.raft);
        self.kv.admin.settle(&self.raft, self.kv.ticks);
    }

    /// Feeds a message from a peer; pending writes fail at once if it deposed this leader.
    pub fn step(&mut self, msg: Message) -> Result<(), StepError> {
        self.raft.step(msg)?;
        self.kv.fail_writes_if_deposed(&self.raft);
        self.kv.admin.settle(&self.raft, self.kv.ticks);
        Ok(())
    }

    /// A cluster administration request (membership change, leadership transfer); its reply
    /// comes out of `poll` as `Output::Admin` once the outcome is known (see `AdminRequest`).
    pub fn submit_admin(&mut self, id: RequestId, req: AdminRequest) {
        self.kv.admin.submit(&mut self.raft, id, req, self.kv.ticks);
        self.kv.admin.settle(&self.raft, self.kv.ticks);
    }

    /// A client request; `id` must differ from every request still in progress (a duplicate
    /// arriving over the network is a new request with a new id). Its reply comes out of
    /// `poll` as `Output::Reply` (soon if it cannot be served here, otherwise once its entry
    /// is applied or its read confirmed).
    pub fn submit(&mut self, id: RequestId, req: ClientRequest) {
        if let Op::Get { key } = &req.op {
            // Planted bug: a leader answers from local state, which it may hold stale if deposed.
            #[cfg(feature = "bug-get-from-local-state")]
            if self.raft.is_leader() {
                let value = self.kv.sm.get(key).to_string();
                self.kv.replies.push_back((id, Ok(kvraft_kv::Outcome::Value(value))));
                return;
            }
            if self.raft.is_leader() || self.kv.config.follower_reads {
                self.submit_read(id, key.clone());
            } else {
                self.kv.refuse(&self.raft, id);
            }
            return;
        }
        if !self.raft.is_leader() {
            self.kv.refuse(&self.raft, id);
            return;
        }
        // Already applied (a retry whose reply was lost): answer from the session table.
        match self.kv.sm.dedup(req.client, req.seq) {
            Dedup::Duplicate(outcome) => {
                self.kv.replies.push_back((id, Ok(outcome)));
                return;
            }
            Dedup::Stale => {
                self.kv.replies.push_back((id, Err(KvError::Stale)));
                return;
            }
            Dedup::New | Dedup::Expired => {}
        }
        let (client, seq) = (req.client, req.seq);
        match self.raft.propose(encode_command(&Command::Client(req))) {
            Ok((index, term)) => {
                let write = PendingWrite { id, term, client, seq };
                let displaced = self.kv.writes.insert(index, write);
                assert!(displaced.is_none(), "two pending requests at index {index}");
            }
            // Leadership is being handed over: the client should retry at the target, which
            // is about to lead (design rule T2). Nothing was proposed.
            Err(ProposeError::Transferring { target }) => {
                let refusal = Err(KvError::WrongLeader { leader: Some(target) });
                self.kv.replies.push_back((id, refusal));
            }
            Err(_) => self.kv.refuse(&self.raft, id),
        }
    }

    /// A linearizable read through ReadIndex (on the leader, or forwarded by a follower): no
    /// log entry, no session (reads need no dedup: running one twice is harmless).
    fn submit_read(&mut self, id: RequestId, key: String) {
        match self.raft.read_index(id) {
            Ok(()) => self.kv.reads.accepted(id, key),
            Err(_) => self.kv.refuse(&self.raft, id),
        }
    }

    /// The next thing the driver must do (send, write, answer), or None when there is
    /// nothing until the next input. Call it until it returns None after every input.
    pub fn poll(&mut self) -> Option<Output> {
        if let Some(output) = self.pipeline.poll(&mut self.raft, &mut self.kv) {
            return Some(output);
        }
        if let Some((id, reply)) = self.kv.admin.replies.pop_front() {
            return Some(Output::Admin(id, reply));
        }
        self.kv.replies.pop_front().map(|(id, reply)| Output::Reply(id, reply))
    }

    /// The write `poll` handed out as `Output::Write` with this `through` is durable; storage
    /// now holds `raft_state_size` bytes of Raft state (the snapshot policy reads it).
    pub fn on_written(&mut self, through: ReadyNumber, raft_state_size: usize) {
        self.pipeline.on_written(through, raft_state_size);
    }

    /// Requests waiting for their log entry or their read confirmation.
    pub fn pending_requests(&self) -> usize {
        self.kv.writes.len() + self.kv.reads.len() + self.kv.admin.len()
    }

    /// Panics with context if an invariant of the replica (Raft's included) is broken. The
    /// simulator calls it after every event.
    pub fn check_invariants(&self) {
        self.raft.check_invariants();
        self.kv.check_invariants(&self.raft);
    }
}
