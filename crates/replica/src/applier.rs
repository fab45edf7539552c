//! The KV side of the replica: the state machine, the client requests waiting for it, and the
//! snapshot policy. The Ready pipeline hands it each Ready (see [`crate::pipeline::Apply`]).

use std::collections::{BTreeMap, VecDeque};

use kvraft_kv::codec::decode_command;
use kvraft_kv::{ClientId, Command, KvError, KvStateMachine, Outcome, Reply, Sequence};
use kvraft_raft::{Entry, EntryKind, LogIndex, RawNode, Ready, Term};

use crate::admin::PendingAdmin;
use crate::leader_hint::leader_hint;
use crate::pipeline::Apply;
use crate::reads::PendingReads;
use crate::{ReplicaConfig, RequestId};

/// A confirmed read not applied within this many election timeouts fails (a follower that
/// lost its leader may not catch up soon): the client retries rather than waits.
const READ_APPLY_TIMEOUT_ELECTIONS: u64 = 2;

/// A write waiting for its log entry.
#[derive(Debug)]
pub(crate) struct PendingWrite {
    pub(crate) id: RequestId,
    pub(crate) term: Term,
    pub(crate) client: ClientId,
    pub(crate) seq: Sequence,
}

#[derive(Debug)]
pub(crate) struct KvApplier {
    pub(crate) sm: KvStateMachine,
    pub(crate) config: ReplicaConfig,
    /// Proposed writes by the log index they were given.
    pub(crate) writes: BTreeMap<LogIndex, PendingWrite>,
    pub(crate) reads: PendingReads,
    /// Ticks since this replica started.
    pub(crate) ticks: u64,
    /// Decided answers, in the order they were decided.
    pub(crate) replies: VecDeque<(RequestId, Reply)>,
    /// Membership changes and transfers waiting for their outcome.
    pub(crate) admin: PendingAdmin,
}

impl KvApplier {
    pub(crate) fn new(sm: KvStateMachine, config: ReplicaConfig) -> KvApplier {
        KvApplier {
            sm,
            config,
            writes: BTreeMap::new(),
            reads: PendingReads::default(),
            ticks: 0,
            replies: VecDeque::new(),
            admin: PendingAdmin::default(),
        }
    }

    /// Answers request `id` with "not the leader", hinting at the leader `raft` knows.
    pub(crate) fn refuse(&mut self, raft: &RawNode, id: RequestId) {
        let leader = leader_hint(raft);
        self.replies.push_back((id, Err(KvError::WrongLeader { leader })));
    }

    /// Serves every confirmed read whose index the state machine has reached.
    pub(crate) fn serve_reads(&mut self) {
        for (id, key) in self.reads.take_servable(LogIndex(self.sm.applied())) {
            let value = self.sm.get(&key).to_string();
            self.replies.push_back((id, Ok(Outcome::Value(value))));
        }
    }

    /// Confirmed reads that the state machine has not reached in time fail: the client
    /// retries (elsewhere, or here once this replica has caught up).
    pub(crate) fn expire_reads(&mut self, raft: &RawNode) {
        for id in self.reads.take_expired(self.ticks) {
            self.refuse(raft, id);
        }
    }

    /// Leadership lost or the term moved on: no pending write can be answered here, so fail
    /// them now (the client retries; dedup makes that safe even if they do commit). Reads
    /// need no such check: Raft itself fails the reads it can no longer confirm.
    pub(crate) fn fail_writes_if_deposed(&mut self, raft: &RawNode) {
        let Some((_, first)) = self.writes.first_key_value() else { return };
        if raft.is_leader() && raft.term() == first.term {
            return;
        }
        for (_, write) in std::mem::take(&mut self.writes) {
            self.refuse(raft, write.id);
        }
    }

    fn apply_entry(&mut self, raft: &RawNode, entry: &Entry) {
        if entry.data.is_empty() || entry.kind == EntryKind::Config {
            // A new leader's no-op, or a configuration (Raft's business, in effect since it
            // was appended): the state machine only moves its applied index.
            self.sm.apply_noop(entry.index.0);
            if entry.kind == EntryKind::Config {
                self.admin.on_config_applied(raft, entry.index, entry.term);
            }
            return;
        }
        let cmd = decode_command(&entry.data)
            .unwrap_or_else(|e| panic!("undecodable command at index {}: {e}", entry.index));
        let reply = self.sm.apply(entry.index.0, &cmd);
        let Some(write) = self.writes.remove(&entry.index) else { return };
        let Command::Client(req) = &cmd;
        let ours = write.term == entry.term && write.client == req.client && write.seq == req.seq;
        if ours {
            self.replies.push_back((write.id, reply));
        } else {
            self.refuse(raft, write.id);
        }
    }

    /// Snapshots if the Raft state (`raft_state_size`, from storage) grew too big.
    fn maybe_snapshot(&mut self, raft: &mut RawNode, raft_state_size: usize) {
        let Some(max) = self.config.max_raft_state_bytes else { return };
        if raft_state_size * 100 < max * self.config.snapshot_at_percent {
            return;
        }
        // The state machine's own index, not RawNode's: Readies handed out but still waiting
        // for the disk hold entries RawNode counts as applied.
        let index = LogIndex(self.sm.applied());
        if index > raft.log().snapshot_meta().index {
            raft.snapshot(index, self.sm.encode_snapshot()).expect("snapshot of applied state");
        }
    }

    /// Panics if the bookkeeping is inconsistent (the simulator calls it after every event).
    pub(crate) fn check_invariants(&self, raft: &RawNode) {
        let applied = LogIndex(self.sm.applied());
        if let Some((index, write)) = self.writes.first_key_value() {
            // Writes leave when their index applies, or all at once when leadership ends.
            assert!(
                *index > applied,
                "write {} at {index} outlived the apply of its index",
                write.id
            );
            assert!(raft.is_leader(), "a non-leader holds pending writes");
        }
        for (index, write) in &self.writes {
            assert_eq!(write.term, raft.term(), "write {} at {index} from another term", write.id);
            assert!(*index <= raft.last_index(), "write {} at {index} beyond the log", write.id);
        }
        self.reads.check_invariants(applied);
        self.admin.check_invariants(raft, applied);
        self.sm.check_invariants();
    }
}

impl Apply for KvApplier {
    /// Confirmed and failed reads are taken at once: serving them needs no disk write, only the
    /// state machine to have applied their index. (Confirmed reads were linearizable when
    /// confirmed: they are served once applied even if this peer has lost its leader since.)
    fn on_ready(&mut self, raft: &RawNode, ready: &mut Ready) {
        let deadline = self.ticks
            + READ_APPLY_TIMEOUT_ELECTIONS * u64::from(raft.config().election_timeout_ticks);
        for state in std::mem::take(&mut ready.read_states) {
            self.reads.confirmed(state.ctx, state.index, deadline);
        }
        for ctx in std::mem::take(&mut ready.failed_reads) {
            self.reads.failed(ctx);
            self.refuse(raft, ctx);
        }
        self.serve_reads();
    }

    fn apply(&mut self, raft: &mut RawNode, ready: Ready, raft_state_size: usize) {
        if let Some(snapshot) = ready.apply_snapshot {
            self.sm = KvStateMachine::decode_snapshot(&snapshot.data, self.config.sessions)
                .unwrap_or_else(|e| panic!("leader sent a snapshot we cannot decode: {e}"));
            let covered: Vec<LogIndex> =
                self.writes.range(..=snapshot.meta.index).map(|(i, _)| *i).collect();
            for index in covered {
                let write = self.writes.remove(&index).expect("listed");
                self.replies.push_back((write.id, Err(KvError::WrongLeader { leader: None })));
            }
        }
        for entry in &ready.committed_entries {
            self.apply_entry(raft, entry);
        }
        self.serve_reads();
        self.maybe_snapshot(raft, raft_state_size);
    }
}
