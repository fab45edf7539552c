//! The follower's side: AppendEntries, heartbeats and InstallSnapshot chunks from the leader.

use bytes::Bytes;

use crate::cluster_config::ConfigState;
use crate::message::{
    AppendResult, Entry, Message, MessageBody, Snapshot, SnapshotMeta, SnapshotResult,
};
use crate::raw_node::{IncomingSnapshot, RawNode};
use crate::role::RoleState;
use crate::types::{LogIndex, Term};

impl RawNode {
    /// A message from the leader of our term: follow it and restart the election timer.
    fn follow_leader(&mut self, m: &Message) {
        assert!(!self.is_leader(), "node {}: two leaders in term {}", self.id, self.term);
        match &mut self.role {
            RoleState::Follower { leader } => *leader = Some(m.from),
            _ => self.become_follower(self.term, Some(m.from)),
        }
        self.election_elapsed = 0;
    }

    pub(crate) fn handle_append(
        &mut self,
        m: &Message,
        mut prev_log_index: LogIndex,
        mut prev_log_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: LogIndex,
    ) {
        self.follow_leader(m);
        let committed = self.log.committed();
        if prev_log_index < committed {
            // Our committed prefix is in the leader's log too (leader completeness): skip the
            // part of the message it covers, which may be compacted here already.
            let skip = (committed.0 - prev_log_index.0) as usize;
            entries.drain(..skip.min(entries.len()));
            prev_log_index = committed;
            prev_log_term = self.log.term(committed).expect("commit index is never compacted past");
        }
        let result = match self.log.try_append(prev_log_index, prev_log_term, entries) {
            Some(last_new) => {
                self.log.commit_to(leader_commit.min(last_new));
                self.drop_overtaken_snapshot();
                AppendResult::Accepted { match_index: last_new.max(prev_log_index) }
            }
            None => {
                let hint_index = self.log.find_conflict_by_term(
                    prev_log_index.min(self.log.last_index()),
                    prev_log_term,
                );
                let hint_term = self.log.term(hint_index).unwrap_or_default();
                AppendResult::Rejected { rejected_prev: prev_log_index, hint_index, hint_term }
            }
        };
        self.respond(m, MessageBody::AppendResponse(result));
    }

    pub(crate) fn handle_heartbeat(&mut self, m: &Message, commit: LogIndex, read_round: u64) {
        self.follow_leader(m);
        // `commit` is at most what the leader knows we hold, but our log may have been cut
        // since (a stale heartbeat): never commit beyond what we have.
        self.log.commit_to(commit.min(self.log.last_index()));
        self.respond(m, MessageBody::HeartbeatResponse { read_round });
    }

    pub(crate) fn handle_snapshot_chunk(
        &mut self,
        m: &Message,
        meta: SnapshotMeta,
        config: ConfigState,
        offset: u64,
        data: Bytes,
        done: bool,
    ) {
        self.follow_leader(m);
        if meta.index <= self.log.committed() {
            // We already have everything it covers.
            self.incoming_snapshot = None;
            let match_index = self.log.committed();
            self.respond(
                m,
                MessageBody::SnapshotResponse(SnapshotResult::Installed { match_index }),
            );
            return;
        }
        if offset == 0 {
            self.incoming_snapshot = Some(IncomingSnapshot { meta, config, data: Vec::new() });
        }
        let expected = match &mut self.incoming_snapshot {
            Some(incoming) if incoming.meta == meta && incoming.data.len() as u64 == offset => {
                incoming.data.extend_from_slice(&data);
                None
            }
            Some(incoming) if incoming.meta == meta => Some(incoming.data.len() as u64),
            _ => Some(0),
        };
        let result = match expected {
            Some(offset) => SnapshotResult::NeedOffset { snapshot_index: meta.index, offset },
            None if done => {
                let incoming = self.incoming_snapshot.take().expect("just extended");
                let snapshot =
                    Snapshot { meta, config: incoming.config, data: Bytes::from(incoming.data) };
                self.log.install_snapshot(snapshot.clone());
                self.snapshot_to_persist = Some(snapshot.clone());
                self.snapshot_to_apply = Some(snapshot);
                SnapshotResult::Installed { match_index: meta.index }
            }
            None => {
                let offset = self
                    .incoming_snapshot
                    .as_ref()
                    .map_or(0, |incoming| incoming.data.len() as u64);
                SnapshotResult::NeedOffset { snapshot_index: meta.index, offset }
            }
        };
        self.respond(m, MessageBody::SnapshotResponse(result));
    }

    /// A snapshot is being received whose last entry the log holds already: it brings
    /// nothing (a leader that replaced the one sending it caught this peer up with entries).
    pub(crate) fn snapshot_overtaken(&self) -> bool {
        self.incoming_snapshot
            .as_ref()
            .is_some_and(|incoming| self.log.matches(incoming.meta.index, incoming.meta.term))
    }

    /// Drops a partial snapshot the log has overtaken: kept, it would pass for a snapshot in
    /// flight (a transfer's target refuses TimeoutNow while one is) until some chunk came.
    fn drop_overtaken_snapshot(&mut self) {
        if self.snapshot_overtaken() {
            self.incoming_snapshot = None;
        }
    }

    /// Answers a request from an older term with our term and a refusal, so that the stale
    /// leader or candidate learns it is behind.
    pub(crate) fn reject_stale_request(&mut self, m: &Message) {
        let body = match &m.body {
            MessageBody::Vote { pre_vote, .. } => {
                MessageBody::VoteResponse { pre_vote: *pre_vote, granted: false }
            }
            MessageBody::Append { prev_log_index, .. } => {
                MessageBody::AppendResponse(AppendResult::Rejected {
                    rejected_prev: *prev_log_index,
                    hint_index: LogIndex::ZERO,
                    hint_term: Term::default(),
                })
            }
            // A stale leader learns our term from this and steps down; no read is confirmed.
            MessageBody::Heartbeat { .. } => MessageBody::HeartbeatResponse { read_round: 0 },
            MessageBody::SnapshotChunk { meta, .. } => {
                MessageBody::SnapshotResponse(SnapshotResult::NeedOffset {
                    snapshot_index: meta.index,
                    offset: 0,
                })
            }
            _ => unreachable!("not a request"),
        };
        self.respond(m, body);
    }
}
