//! What a leader knows about one follower's log, and how it is sending to it.

use std::collections::VecDeque;

use crate::message::Snapshot;
use crate::types::{LogIndex, ReadRound};

/// How the leader is currently replicating to a follower (as in etcd-io/raft).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicationMode {
    /// Looking for the point where the logs agree: one AppendEntries at a time.
    Probe {
        /// An AppendEntries is out and unanswered: send nothing more until the answer (or a
        /// heartbeat response) comes.
        awaiting_response: bool,
    },
    /// Logs agree up to `match_index`: AppendEntries are pipelined, at most
    /// `max_inflight_appends` at once. Each in-flight entry is (last index sent, tick sent).
    Replicate {
        /// The AppendEntries sent and not yet acknowledged, oldest first.
        inflight: VecDeque<(LogIndex, u64)>,
    },
    /// The entries the follower needs are compacted: an InstallSnapshot transfer is under way,
    /// one chunk at a time.
    Snapshot(SnapshotTransfer),
}

/// An InstallSnapshot transfer to one follower, chunk by chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotTransfer {
    /// The snapshot being sent (the leader's latest when the transfer began).
    pub snapshot: Snapshot,
    /// The first byte the follower has not acknowledged.
    pub offset: u64,
    /// When the current chunk was sent, in the leader's ticks.
    pub sent_at_tick: u64,
}

/// What the leader knows of one follower's log, and how it sends to it.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The last index known to match the leader's log on this follower.
    pub match_index: LogIndex,
    /// The next index to send.
    pub next_index: LogIndex,
    /// How entries are sent to this follower now.
    pub mode: ReplicationMode,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// The leader's tick when this follower last answered anything (`None`: never in this
    /// leadership). The quorum-safety check and catch-up decisions read it.
    pub last_ack_tick: Option<u64>,
    /// The highest commit index this follower has been told of.
    pub sent_commit: LogIndex,
    /// The latest ReadIndex round this follower has echoed in this term.
    pub echoed_read_round: ReadRound,
    /// A learner's catch-up (see `promotion`): the round under way, and since when it has
    /// kept up.
    pub catch_up: CatchUp,
    /// The follower answered as if it no longer held entries it had acknowledged (a wiped
    /// disk under an old id): its acknowledgements were taken back, and it is reported.
    pub lost_data: bool,
}

/// A learner catching up, measured in rounds (Raft thesis 4.2.1): a round ships everything
/// the leader had when it began; a learner that finishes a round within an election timeout
/// is keeping up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// The round under way: the index it must reach, and the tick it began.
    pub round: Option<(LogIndex, u64)>,
    /// The tick since which every round finished in time and the learner stayed healthy.
    pub caught_up_since: Option<u64>,
    /// Rounds finished, in time or not.
    pub rounds: u64,
}

impl Progress {
    /// A follower nothing is known of yet: probe from the leader's next index.
    pub fn new(last_index: LogIndex) -> Progress {
        Progress {
            match_index: LogIndex::ZERO,
            next_index: last_index.next(),
            mode: ReplicationMode::Probe { awaiting_response: false },
            recent_active: false,
            last_ack_tick: None,
            sent_commit: LogIndex::ZERO,
            echoed_read_round: ReadRound::NONE,
            catch_up: CatchUp::default(),
            lost_data: false,
        }
    }

    /// The follower answered at `now_tick`.
    pub fn heard_from(&mut self, now_tick: u64) {
        self.recent_active = true;
        self.last_ack_tick = Some(now_tick);
    }

    /// Back to probing from just after the match index (after a rejection or a lost response).
    pub fn become_probe(&mut self) {
        self.next_index = self.match_index.next();
        self.mode = ReplicationMode::Probe { awaiting_response: false };
    }

    /// The logs agree up to the match index: pipeline appends from just after it.
    pub fn become_replicate(&mut self) {
        self.next_index = self.match_index.next();
        self.mode = ReplicationMode::Replicate { inflight: VecDeque::new() };
    }

    /// Starts sending `snapshot` from its first byte, at tick `now_tick`.
    pub fn become_snapshot(&mut self, snapshot: Snapshot, now_tick: u64) {
        self.mode = ReplicationMode::Snapshot(SnapshotTransfer {
            snapshot,
            offset: 0,
            sent_at_tick: now_tick,
        });
    }

    /// Records an acknowledgement up to `index`; true if it is news.
    pub fn maybe_update(&mut self, index: LogIndex) -> bool {
        if index <= self.match_index {
            return false;
        }
        self.match_index = index;
        self.next_index = self.next_index.max(index.next());
        if let ReplicationMode::Replicate { inflight } = &mut self.mode {
            while inflight.front().is_some_and(|(last, _)| *last <= index) {
                inflight.pop_front();
            }
        }
        true
    }

    /// True when nothing more may be sent until a response arrives.
    pub fn is_paused(&self, max_inflight: usize) -> bool {
        match &self.mode {
            ReplicationMode::Probe { awaiting_response } => *awaiting_response,
            ReplicationMode::Replicate { inflight } => inflight.len() >= max_inflight,
            ReplicationMode::Snapshot(_) => true,
        }
    }

    /// In Replicate mode, the oldest unacknowledged append was sent at or before `deadline`:
    /// it or its answer is presumably lost.
    pub fn replication_stalled(&self, deadline_tick: u64) -> bool {
        match &self.mode {
            ReplicationMode::Replicate { inflight } => {
                inflight.front().is_some_and(|(_, at)| *at <= deadline_tick)
            }
            _ => false,
        }
    }
}
