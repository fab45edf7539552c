//! The leader's side of log replication: AppendEntries, heartbeats, InstallSnapshot, commit.

use crate::message::{AppendResult, MessageBody, SnapshotResult};
use crate::progress::{ReplicationMode, SnapshotTransfer};
use crate::raw_node::RawNode;
use crate::role::RoleState;
use crate::types::{LogIndex, NodeId, ReadRound, Term};

impl RawNode {
    pub(crate) fn tick_leader(&mut self) {
        self.leader_state_mut().heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.config.election_timeout_ticks {
            self.election_elapsed = 0;
            if self.config.check_quorum
                && !self.tracker().quorum_recently_active(self.log.membership())
            {
                // Cut off from a quorum: stop claiming leadership (thesis 6.2).
                self.become_follower(self.term, None);
                return;
            }
            self.tracker_mut().forget_recent_activity();
        }
        if self.tick_transfer() {
            return;
        }
        self.tick_promotions();
        let interval = self.config.heartbeat_interval_ticks;
        let leader = self.leader_state_mut();
        if leader.heartbeat_elapsed >= interval {
            leader.heartbeat_elapsed = 0;
            if self.config.lease_reads {
                // Every heartbeat is a round, so that the lease is renewed continuously.
                self.start_read_round();
            }
            self.send_removal_notices();
            let reads_waiting =
                self.leader_state().reads.has_unconfirmed() || self.config.lease_reads;
            for peer in self.tracker().followers() {
                // Reads and leases are confirmed by heartbeat echoes only: peers that got a
                // probe or a chunk instead get a heartbeat too (a lost round retries).
                if !self.heartbeat_peer(peer) && reads_waiting {
                    self.send_heartbeat(peer);
                }
            }
        }
    }

    /// One heartbeat round for `peer`: also where lost appends and chunks are noticed and
    /// resent. True if the peer got a Heartbeat message.
    fn heartbeat_peer(&mut self, peer: NodeId) -> bool {
        let lost_after = 2 * self.config.heartbeat_interval_ticks as u64;
        let deadline = self.now_tick.saturating_sub(lost_after);
        let progress = self.tracker_mut().progress_mut(peer);
        let stalled = progress.replication_stalled(deadline);
        match &mut progress.mode {
            ReplicationMode::Probe { awaiting_response } => {
                // The probe doubles as the heartbeat; resend it even if one is outstanding.
                *awaiting_response = false;
                self.send_append(peer, true);
                false
            }
            ReplicationMode::Replicate { .. } if stalled => {
                progress.become_probe();
                self.send_append(peer, true);
                false
            }
            ReplicationMode::Snapshot(transfer) if transfer.sent_at_tick <= deadline => {
                self.send_snapshot_chunk(peer);
                false
            }
            ReplicationMode::Replicate { .. } | ReplicationMode::Snapshot(_) => {
                self.send_heartbeat(peer);
                true
            }
        }
    }

    pub(crate) fn send_heartbeat(&mut self, peer: NodeId) {
        let committed = self.log.committed();
        let progress = self.tracker_mut().progress_mut(peer);
        // The follower holds our log up to its match index, so that much commit is safe to tell.
        let commit = progress.match_index.min(committed);
        progress.sent_commit = progress.sent_commit.max(commit);
        let read_round = self.read_round.0;
        self.send(peer, MessageBody::Heartbeat { commit, read_round });
    }

    /// Sends `peer` the entries it lacks (or an empty probe if `allow_empty`), or starts a
    /// snapshot transfer if they are compacted away. False if nothing was sent.
    pub(crate) fn send_append(&mut self, peer: NodeId, allow_empty: bool) -> bool {
        let max_inflight = self.config.max_inflight_appends;
        let progress = self.tracker().progress(peer);
        if progress.is_paused(max_inflight) {
            return false;
        }
        let prev_log_index = progress.next_index.prev();
        let Some(prev_log_term) = self.log.term(prev_log_index) else {
            self.start_snapshot_transfer(peer);
            return true;
        };
        let entries = self.log.entries_from(progress.next_index, self.config.max_append_bytes);
        if entries.is_empty() && !allow_empty {
            return false;
        }
        let last_sent = prev_log_index.plus(entries.len() as u64);
        let leader_commit = self.log.committed();
        let now = self.now_tick;
        let progress = self.tracker_mut().progress_mut(peer);
        progress.sent_commit = progress.sent_commit.max(leader_commit.min(last_sent));
        match &mut progress.mode {
            ReplicationMode::Probe { awaiting_response } => *awaiting_response = true,
            ReplicationMode::Replicate { inflight } => {
                if !entries.is_empty() {
                    inflight.push_back((last_sent, now));
                    progress.next_index = last_sent.next();
                }
            }
            ReplicationMode::Snapshot(_) => unreachable!("paused"),
        }
        self.send(
            peer,
            MessageBody::Append { prev_log_index, prev_log_term, entries, leader_commit },
        );
        true
    }

    fn start_snapshot_transfer(&mut self, peer: NodeId) {
        let snapshot = self.log.snapshot().clone();
        let now = self.now_tick;
        self.tracker_mut().progress_mut(peer).become_snapshot(snapshot, now);
        self.send_snapshot_chunk(peer);
    }

    fn send_snapshot_chunk(&mut self, peer: NodeId) {
        let chunk = self.config.snapshot_chunk_bytes;
        let now = self.now_tick;
        let progress = self.tracker_mut().progress_mut(peer);
        let ReplicationMode::Snapshot(SnapshotTransfer { snapshot, offset, sent_at_tick }) =
            &mut progress.mode
        else {
            unreachable!("sending a snapshot chunk outside a transfer");
        };
        *sent_at_tick = now;
        let total = snapshot.data.len();
        let start = (*offset as usize).min(total);
        let end = (start + chunk).min(total);
        let body = MessageBody::SnapshotChunk {
            meta: snapshot.meta,
            config: snapshot.config.clone(),
            offset: start as u64,
            data: snapshot.data.slice(start..end),
            done: end == total,
        };
        self.send(peer, body);
    }

    /// Leader: send what proposals added since the last `ready()`, and tell followers about
    /// commit progress they have not heard of. Called from `ready()`, so proposals batch.
    pub(crate) fn flush_leader_sends(&mut self) {
        self.broadcast_read_round();
        if std::mem::take(&mut self.leader_state_mut().pending_broadcast) {
            for peer in self.tracker().followers() {
                self.send_append(peer, false);
            }
        }
        let committed = self.log.committed();
        if self.tracker().commit_news_pending(committed) {
            for peer in self.tracker().followers() {
                if self.tracker().owes_commit_news(peer, committed) {
                    self.send_heartbeat(peer);
                }
            }
        }
    }

    pub(crate) fn handle_append_response(&mut self, from: NodeId, result: AppendResult) {
        if !self.is_leader() {
            return;
        }
        let now = self.now_tick;
        let Some(progress) = self.tracker_mut().get_mut(from) else { return };
        progress.heard_from(now);
        match result {
            AppendResult::Accepted { match_index } => {
                let news = progress.maybe_update(match_index);
                match &mut progress.mode {
                    ReplicationMode::Probe { .. } => progress.become_replicate(),
                    ReplicationMode::Snapshot(transfer)
                        if progress.match_index >= transfer.snapshot.meta.index =>
                    {
                        progress.become_replicate()
                    }
                    _ => {}
                }
                if news {
                    self.maybe_commit();
                }
                if !self.is_leader() {
                    return; // a removed leader handed over on that commit
                }
                self.send_append(from, false);
                self.maybe_send_timeout_now(from);
            }
            AppendResult::Rejected { rejected_prev, hint_index, hint_term } => {
                if self.back_up(from, rejected_prev, hint_index, hint_term) {
                    self.send_append(from, true);
                }
            }
        }
    }

    /// Moves `next_index` back after a rejection, one term per round trip; false if the
    /// rejection is stale (answers an append we have already moved past).
    fn back_up(
        &mut self,
        peer: NodeId,
        rejected_prev: LogIndex,
        hint_index: LogIndex,
        hint_term: Term,
    ) -> bool {
        let candidate = self.log.find_conflict_by_term(hint_index, hint_term);
        let progress = self.tracker_mut().progress_mut(peer);
        if hint_index < progress.match_index && rejected_prev >= progress.match_index {
            // A follower that kept what it acknowledged names a last matching entry at or
            // above its match index (terms only grow along the log). This one does not: it
            // lost entries it had acknowledged (a wiped disk restarted under its old id), or
            // this is an old rejection overtaken by a later acceptance (a reordering network;
            // one ordered stream per peer cannot do that). Either way its acknowledgements
            // are taken back, so that it counts towards nothing it may not hold, and it is
            // probed again from what it says it holds.
            progress.lost_data = true;
            progress.match_index = hint_index.min(rejected_prev.prev());
            progress.become_probe();
            return true;
        }
        let stale = match &progress.mode {
            ReplicationMode::Replicate { .. } => rejected_prev <= progress.match_index,
            ReplicationMode::Probe { .. } => rejected_prev != progress.next_index.prev(),
            ReplicationMode::Snapshot(_) => true,
        };
        if stale {
            return false;
        }
        progress.become_probe();
        progress.next_index =
            candidate.min(rejected_prev.prev()).next().max(progress.match_index.next());
        true
    }

    pub(crate) fn handle_heartbeat_response(&mut self, from: NodeId, read_round: ReadRound) {
        if !self.is_leader() {
            return;
        }
        let now = self.now_tick;
        let Some(progress) = self.tracker_mut().get_mut(from) else { return };
        progress.heard_from(now);
        self.on_read_round_echo(from, read_round);
        self.send_append(from, false);
    }

    pub(crate) fn handle_snapshot_response(&mut self, from: NodeId, result: SnapshotResult) {
        if !self.is_leader() {
            return;
        }
        let now = self.now_tick;
        let Some(progress) = self.tracker_mut().get_mut(from) else { return };
        progress.heard_from(now);
        match result {
            SnapshotResult::Installed { match_index } => {
                let news = progress.maybe_update(match_index);
                if matches!(
                    progress.mode,
                    ReplicationMode::Snapshot(_) | ReplicationMode::Probe { .. }
                ) {
                    progress.become_replicate();
                }
                if news {
                    self.maybe_commit();
                }
                if !self.is_leader() {
                    return;
                }
                self.send_append(from, false);
                self.maybe_send_timeout_now(from);
            }
            SnapshotResult::NeedOffset { snapshot_index, offset } => {
                if let ReplicationMode::Snapshot(transfer) = &mut progress.mode {
                    if transfer.snapshot.meta.index == snapshot_index {
                        transfer.offset = offset;
                        self.send_snapshot_chunk(from);
                    }
                }
            }
        }
    }

    /// Commits the highest index a quorum holds, if it is from the current term (Raft paper
    /// 5.4.2, Figure 8: older entries commit only indirectly). True if the commit advanced.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let RoleState::Leader(leader) = &mut self.role else {
            unreachable!("node {}: only a leader commits by counting", self.id);
        };
        let Some(index) =
            leader.tracker.committable_index(self.log.membership(), &self.log, self.term)
        else {
            return false;
        };
        let before = self.log.committed();
        self.log.commit_to(index);
        let newly: usize = (before.0 + 1..=index.0)
            .filter_map(|i| self.log.entry(LogIndex(i)))
            .map(|e| e.data.len())
            .sum();
        leader.release_committed(newly);
        self.release_reads_awaiting_commit();
        self.after_leader_commit();
        true
    }
}
