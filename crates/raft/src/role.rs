//! The state a peer holds only while it plays a role. Changing role replaces it whole, so that
//! "a leader's progress exists only while leading" or "votes are counted only while
//! campaigning" are facts of the types rather than lines to remember in every transition.

use std::collections::BTreeMap;

use crate::read_queue::ReadQueue;
use crate::tracker::{Poll, Tracker};
use crate::types::{LogIndex, NodeId, Role};

#[derive(Debug)]
pub(crate) enum RoleState {
    /// `leader`: the leader of the current term, once this peer has heard from it.
    Follower {
        leader: Option<NodeId>,
    },
    PreCandidate {
        poll: Poll,
    },
    Candidate {
        poll: Poll,
    },
    Leader(Box<LeaderState>),
}

/// What only a leader keeps.
#[derive(Debug)]
pub(crate) struct LeaderState {
    pub(crate) tracker: Tracker,
    /// New entries wait for the next `ready()` before they are sent, so that proposals batch.
    pub(crate) pending_broadcast: bool,
    /// Bytes of this leader's proposals not yet known to be committed (see `admit_proposal`).
    uncommitted_bytes: usize,
    /// Ticks since the last heartbeat round.
    pub(crate) heartbeat_elapsed: u32,
    /// The reads this leader is confirming; those still unconfirmed fail when it steps down.
    pub(crate) reads: ReadQueue,
    /// The commit index when this peer became leader. From then on a leader moves its commit
    /// index only to entries of its own term (Raft paper 5.4.2, Figure 8): checked by
    /// `check_invariants`.
    pub(crate) commit_at_election: LogIndex,
    /// A leadership transfer under way: proposals and config changes wait until it ends.
    pub(crate) transfer: Option<Transfer>,
    /// No lease reads for the rest of this leadership: a transfer started (thesis 3.10 and
    /// 6.4.1: the target may win an election while this leader's lease would still run).
    pub(crate) leases_off: bool,
    /// The tick of the last config entry this leader appended: a lease is re-earned only from
    /// a round sent after it (design rule R13), counted by the new voters.
    pub(crate) lease_floor_tick: Option<u64>,
    /// The committed configuration whose removals this leader has announced (see
    /// `announce_removals`); at election, the one committed then.
    pub(crate) announced_config: LogIndex,
    /// Peers whose removal committed under this leader, with the heartbeat rounds left in
    /// which to tell them `Removed` (the leader no longer replicates to them, and a removed
    /// learner never speaks first).
    pub(crate) removal_notices: BTreeMap<NodeId, u32>,
}

/// A leadership transfer in progress (see `transfer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transfer {
    pub(crate) target: NodeId,
    pub(crate) started_tick: u64,
    /// The leader's last index when the transfer froze its log: the target must hold it.
    pub(crate) last_index: LogIndex,
    pub(crate) timeout_now_sent: bool,
}

impl LeaderState {
    pub(crate) fn new(tracker: Tracker, commit_at_election: LogIndex) -> LeaderState {
        LeaderState {
            tracker,
            commit_at_election,
            pending_broadcast: false,
            uncommitted_bytes: 0,
            heartbeat_elapsed: 0,
            reads: ReadQueue::default(),
            transfer: None,
            leases_off: false,
            lease_floor_tick: None,
            announced_config: LogIndex::ZERO,
            removal_notices: BTreeMap::new(),
        }
    }

    /// Admits a proposal of `bytes` under the flow-control `limit`
    /// (`Config::max_uncommitted_bytes`) and marks it for the next broadcast. Refused, with the
    /// bytes already uncommitted, if it would pass the limit, except when nothing is
    /// uncommitted: a single proposal larger than the limit must still be able to make progress.
    pub(crate) fn admit_proposal(&mut self, bytes: usize, limit: usize) -> Result<(), usize> {
        let uncommitted = self.uncommitted_bytes;
        if uncommitted > 0 && uncommitted + bytes > limit {
            return Err(uncommitted);
        }
        self.uncommitted_bytes += bytes;
        self.pending_broadcast = true;
        Ok(())
    }

    /// Entries holding `bytes` of data committed. Entries of earlier terms, never counted
    /// here, may commit too: the count only ever saturates at zero.
    pub(crate) fn release_committed(&mut self, bytes: usize) {
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(bytes);
    }
}

impl RoleState {
    pub(crate) fn role(&self) -> Role {
        match self {
            RoleState::Follower { .. } => Role::Follower,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    /// The poll of a (pre-)candidate.
    pub(crate) fn poll(&self) -> Option<&Poll> {
        match self {
            RoleState::PreCandidate { poll } | RoleState::Candidate { poll } => Some(poll),
            RoleState::Follower { .. } | RoleState::Leader(_) => None,
        }
    }

    pub(crate) fn poll_mut(&mut self) -> Option<&mut Poll> {
        match self {
            RoleState::PreCandidate { poll } | RoleState::Candidate { poll } => Some(poll),
            RoleState::Follower { .. } | RoleState::Leader(_) => None,
        }
    }

    pub(crate) fn leader_state(&self) -> Option<&LeaderState> {
        match self {
            RoleState::Leader(state) => Some(state),
            _ => None,
        }
    }
}
