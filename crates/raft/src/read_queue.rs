//! The leader's side of linearizable reads, as plain bookkeeping: reads waiting for the first
//! commit of the term, reads waiting for a heartbeat round that a quorum echoes, and the
//! lease. Its methods only decide (which reads are confirmed, at which index); the node sends
//! the answers and reports the reads. The protocol itself is described in `read_index.rs`.
//!
//! A `ReadQueue` belongs to one leadership: it is created empty when a peer becomes leader and
//! handed back, with every read it still holds, when the peer stops leading.

use std::collections::VecDeque;

use crate::types::{LogIndex, NodeId, ReadRound};

/// Whose read the leader is confirming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadOrigin {
    /// This node's service asked; `ctx` is the service's.
    Local(u64),
    /// A follower's forwarded batch; `ctx` is the follower's batch number.
    Remote { from: NodeId, ctx: u64 },
}

/// A decision of the queue: the read from `origin` is confirmed, to be served at `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConfirmedRead {
    pub(crate) origin: ReadOrigin,
    pub(crate) index: LogIndex,
}

/// A read with its index, waiting for a round that a quorum echoes.
#[derive(Clone, Copy, Debug)]
struct PendingRead {
    origin: ReadOrigin,
    index: LogIndex,
    /// The round that confirms it; `None` until the next round is sent.
    round: Option<ReadRound>,
}

/// Bound on the lease rounds remembered while no quorum echoes them. Dropping the oldest only
/// ever loses a lease, never grants one, and a leader that hears from no quorum steps down
/// within two election timeouts anyway (check-quorum).
const MAX_UNECHOED_LEASE_ROUNDS: usize = 1024;

/// The reads one leader is confirming (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct ReadQueue {
    /// Reads waiting for the first commit of this leader's term (their index is not known).
    awaiting_commit: Vec<ReadOrigin>,
    /// Reads with their index, oldest first.
    pending: VecDeque<PendingRead>,
    /// Lease reads: rounds that no quorum has echoed yet, with the tick each was sent at.
    round_sent_ticks: VecDeque<(ReadRound, u64)>,
    /// Lease reads: the tick at which the latest round a quorum echoed was sent.
    lease_from_tick: Option<u64>,
}

impl ReadQueue {
    pub(crate) fn len(&self) -> usize {
        self.awaiting_commit.len() + self.pending.len()
    }

    pub(crate) fn has_unconfirmed(&self) -> bool {
        self.len() > 0
    }

    /// True if some read waits for a round that has not been sent yet.
    pub(crate) fn needs_round(&self) -> bool {
        self.pending.back().is_some_and(|read| read.round.is_none())
    }

    pub(crate) fn has_awaiting_commit(&self) -> bool {
        !self.awaiting_commit.is_empty()
    }

    /// The tick at which the latest round a quorum echoed was sent, if any was.
    pub(crate) fn lease_from_tick(&self) -> Option<u64> {
        self.lease_from_tick
    }

    /// True if the lease, `lease_ticks` long, covers `now_tick`: a round a quorum echoed was
    /// sent at most that long ago. Never without lease reads (`lease_ticks` is `None`).
    /// With `floor_tick`, only a round sent strictly after it counts (a configuration
    /// changed then).
    pub(crate) fn in_lease(
        &self,
        now_tick: u64,
        lease_ticks: Option<u32>,
        floor_tick: Option<u64>,
    ) -> bool {
        lease_ticks.is_some_and(|lease| {
            self.lease_from_tick.is_some_and(|sent| {
                now_tick - sent <= lease as u64 && floor_tick.is_none_or(|floor| sent > floor)
            })
        })
    }

    /// A read arrives. `committed` is the commit index if the leader has committed an entry of
    /// its term (else the read waits for that); `at_once` says that the leader may confirm
    /// reads without a round (it alone is a quorum, or it holds a lease).
    pub(crate) fn add(
        &mut self,
        origin: ReadOrigin,
        committed: Option<LogIndex>,
        at_once: bool,
    ) -> Option<ConfirmedRead> {
        let Some(index) = committed else {
            self.awaiting_commit.push(origin);
            return None;
        };
        if at_once {
            return Some(ConfirmedRead { origin, index });
        }
        self.pending.push_back(PendingRead { origin, index, round: None });
        None
    }

    /// The leader's term has its first commit, `committed`: the reads that waited for it take
    /// it as their index, as if they arrived now. Returns those confirmed at once.
    pub(crate) fn release_awaiting_commit(
        &mut self,
        committed: LogIndex,
        at_once: bool,
    ) -> Vec<ConfirmedRead> {
        std::mem::take(&mut self.awaiting_commit)
            .into_iter()
            .filter_map(|origin| self.add(origin, Some(committed), at_once))
            .collect()
    }

    /// Round `round` goes out at `now_tick`: every read without a round joins it. With lease
    /// reads (`lease`), the send tick is kept until a quorum echoes the round.
    pub(crate) fn start_round(&mut self, round: ReadRound, now_tick: u64, lease: bool) {
        for read in self.pending.iter_mut().filter(|read| read.round.is_none()) {
            read.round = Some(round);
        }
        if lease {
            if self.round_sent_ticks.len() >= MAX_UNECHOED_LEASE_ROUNDS {
                self.round_sent_ticks.pop_front();
            }
            self.round_sent_ticks.push_back((round, now_tick));
        }
    }

    /// True if an echo could confirm something: a read or a lease round waits for a quorum.
    pub(crate) fn awaits_echoes(&self) -> bool {
        !self.pending.is_empty() || !self.round_sent_ticks.is_empty()
    }

    /// A quorum has echoed `quorum_round` (or later rounds): returns the reads that confirms,
    /// oldest first, and extends the lease.
    pub(crate) fn on_quorum_round(&mut self, quorum_round: ReadRound) -> Vec<ConfirmedRead> {
        // A quorum each received a heartbeat carrying `quorum_round` or later, so sent no
        // earlier than any round up to it: the latest such round's send tick starts the lease.
        while let Some(&(round, sent)) = self.round_sent_ticks.front() {
            if round > quorum_round {
                break;
            }
            self.round_sent_ticks.pop_front();
            self.lease_from_tick = Some(self.lease_from_tick.unwrap_or(0).max(sent));
        }
        let mut confirmed = Vec::new();
        while let Some(read) = self.pending.front() {
            match read.round {
                Some(round) if round <= quorum_round => {}
                _ => break,
            }
            confirmed.push(ConfirmedRead { origin: read.origin, index: read.index });
            self.pending.pop_front();
        }
        confirmed
    }

    /// The leadership ends: every read not yet confirmed, oldest first. (Reads already
    /// confirmed stay confirmed: they were linearizable when confirmed.)
    pub(crate) fn into_unconfirmed(self) -> impl Iterator<Item = ReadOrigin> {
        self.awaiting_commit.into_iter().chain(self.pending.into_iter().map(|read| read.origin))
    }

    /// Panics if the bookkeeping is inconsistent with the leader's commit index, the rounds it
    /// has sent (`last_round`) or its clock.
    pub(crate) fn check_invariants(
        &self,
        node: NodeId,
        committed: LogIndex,
        last_round: ReadRound,
        now_tick: u64,
    ) {
        let mut last = ReadRound::default();
        for read in &self.pending {
            assert!(read.index <= committed, "node {node}: read index beyond commit");
            if let Some(round) = read.round {
                assert!(round <= last_round, "node {node}: read round not sent yet");
                assert!(round >= last, "node {node}: read rounds go back");
                last = round;
            }
        }
        assert!(
            self.pending.iter().skip_while(|read| read.round.is_some()).all(|r| r.round.is_none()),
            "node {node}: a read without a round before one with a round"
        );
        let mut last_sent = None;
        for &(round, sent) in &self.round_sent_ticks {
            assert!(round <= last_round, "node {node}: lease round not sent yet");
            assert!(sent <= now_tick, "node {node}: lease round sent in the future");
            assert!(last_sent < Some(round), "node {node}: lease rounds out of order");
            last_sent = Some(round);
        }
        if let Some(sent) = self.lease_from_tick {
            assert!(sent <= now_tick, "node {node}: lease from the future");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: ReadOrigin = ReadOrigin::Local(7);
    const REMOTE: ReadOrigin = ReadOrigin::Remote { from: NodeId(2), ctx: 9 };

    fn origins(reads: &[ConfirmedRead]) -> Vec<ReadOrigin> {
        reads.iter().map(|read| read.origin).collect()
    }

    #[test]
    fn reads_wait_for_the_terms_first_commit_then_for_a_round() {
        let mut queue = ReadQueue::default();
        assert_eq!(queue.add(LOCAL, None, false), None);
        assert!(queue.has_awaiting_commit() && !queue.needs_round());
        assert!(queue.release_awaiting_commit(LogIndex(4), false).is_empty());
        assert!(queue.needs_round());
        queue.start_round(ReadRound(1), 10, false);
        assert!(!queue.needs_round());
        // A later read joins the next round, not the one already sent.
        assert_eq!(queue.add(REMOTE, Some(LogIndex(5)), false), None);
        queue.start_round(ReadRound(2), 11, false);
        assert!(queue.on_quorum_round(ReadRound::NONE).is_empty());
        let confirmed = queue.on_quorum_round(ReadRound(1));
        assert_eq!(confirmed, [ConfirmedRead { origin: LOCAL, index: LogIndex(4) }]);
        // A round confirms every earlier round too.
        let confirmed = queue.on_quorum_round(ReadRound(5));
        assert_eq!(confirmed, [ConfirmedRead { origin: REMOTE, index: LogIndex(5) }]);
        assert!(!queue.has_unconfirmed());
    }

    #[test]
    fn reads_are_confirmed_at_once_when_the_leader_may() {
        let mut queue = ReadQueue::default();
        let confirmed = queue.add(LOCAL, Some(LogIndex(3)), true);
        assert_eq!(confirmed, Some(ConfirmedRead { origin: LOCAL, index: LogIndex(3) }));
        queue.add(REMOTE, None, true);
        assert_eq!(origins(&queue.release_awaiting_commit(LogIndex(4), true)), [REMOTE]);
        assert!(!queue.has_unconfirmed());
    }

    #[test]
    fn the_lease_starts_when_the_latest_echoed_round_was_sent() {
        let mut queue = ReadQueue::default();
        queue.start_round(ReadRound(1), 100, true);
        queue.start_round(ReadRound(2), 110, true);
        queue.start_round(ReadRound(3), 120, true);
        assert!(!queue.in_lease(110, Some(25), None));
        queue.on_quorum_round(ReadRound(2));
        assert_eq!(queue.lease_from_tick(), Some(110));
        assert!(queue.in_lease(135, Some(25), None));
        assert!(!queue.in_lease(136, Some(25), None));
        assert!(!queue.in_lease(120, None, None), "no lease without lease reads");
        // Round 3 still waits for a quorum; echoes of older rounds change nothing.
        assert!(queue.awaits_echoes());
        queue.on_quorum_round(ReadRound(1));
        assert_eq!(queue.lease_from_tick(), Some(110));
    }

    #[test]
    fn a_leadership_that_ends_hands_back_its_unconfirmed_reads_oldest_first() {
        let mut queue = ReadQueue::default();
        queue.add(REMOTE, Some(LogIndex(1)), false);
        queue.start_round(ReadRound(1), 0, false);
        queue.add(LOCAL, Some(LogIndex(2)), false);
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.into_unconfirmed().collect::<Vec<_>>(), [REMOTE, LOCAL]);
    }
}
