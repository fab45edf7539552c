//! Automatic promotion of learners (design rule R11), and what the leader reports of each
//! member's catch-up.
//!
//! The leader measures a learner marked `auto_promote` in rounds (Raft thesis 4.2.1): a round
//! ships everything the leader had when the round began. A learner that finishes rounds within
//! one election timeout and answers within an election timeout is
//! keeping up; once it has kept up for `Config::promotion_stable_ticks` (a stabilization
//! window), the leader promotes it through the ordinary change path, with every rule of a
//! requested change (one at a time, the term barrier, quorum safety). A learner that never
//! keeps up stays a harmless learner; `MemberStatus` says why.

use crate::conf_change::{ChangeRequest, MembershipChange};
use crate::progress::{CatchUp, Progress, ReplicationMode};
use crate::raw_node::RawNode;
use crate::types::{LogIndex, NodeId};

/// What the leader knows of one member, for status pages and the CLI. Lag is counted in
/// entries, bytes and time, never as a ratio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// The member.
    pub id: NodeId,
    /// A voter (otherwise a learner).
    pub voter: bool,
    /// The last index known to match the leader's log.
    pub match_index: LogIndex,
    /// Entries the member lacks: the leader's last index less its match index.
    pub lag_entries: u64,
    /// The bytes of those entries still in the leader's log (entries compacted into the
    /// snapshot count nothing: the member needs the snapshot instead).
    pub lag_bytes: u64,
    /// Ticks since the member last answered, if it ever did in this leadership.
    pub ticks_since_contact: Option<u64>,
    /// A snapshot is being sent to it.
    pub receiving_snapshot: bool,
    /// For a learner: since how many ticks it has kept up (None: it is not keeping up).
    pub caught_up_for_ticks: Option<u64>,
    /// It answered as if it had lost entries it acknowledged (see `Progress::lost_data`).
    pub lost_data: bool,
}

impl RawNode {
    /// What this leader knows of every other member, in id order; empty unless leading.
    pub fn member_status(&self) -> Vec<MemberStatus> {
        let Some(leader) = self.role.leader_state() else { return Vec::new() };
        let last = self.log.last_index();
        leader
            .tracker
            .iter()
            .map(|(id, p)| MemberStatus {
                id,
                voter: self.log.membership().is_voter(id),
                match_index: p.match_index,
                lag_entries: last.0.saturating_sub(p.match_index.0),
                lag_bytes: (p.match_index.0 + 1..=last.0)
                    .filter_map(|i| self.log.entry(LogIndex(i)))
                    .map(|e| e.data.len() as u64)
                    .sum(),
                ticks_since_contact: p.last_ack_tick.map(|at| self.now_tick - at),
                receiving_snapshot: matches!(p.mode, ReplicationMode::Snapshot(_)),
                caught_up_for_ticks: p.catch_up.caught_up_since.map(|at| self.now_tick - at),
                lost_data: p.lost_data,
            })
            .collect()
    }

    /// One leader tick of catch-up measurement, then at most one promotion.
    pub(crate) fn tick_promotions(&mut self) {
        let config = &self.log.config().config;
        let candidates: Vec<NodeId> = config
            .auto_promote
            .iter()
            .copied()
            .filter(|id| config.membership.is_learner(*id))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let (now, last) = (self.now_tick, self.log.last_index());
        let window = u64::from(self.config.election_timeout_ticks);
        for id in &candidates {
            if let Some(progress) = self.tracker_mut().get_mut(*id) {
                measure_round(progress, now, last, window);
            }
        }
        let stable = u64::from(self.config.promotion_stable_ticks);
        let ready = candidates.into_iter().find(|id| {
            cfg!(feature = "bug-promote-without-catchup")
                || self.tracker().get(*id).is_some_and(|p| {
                    p.catch_up.caught_up_since.is_some_and(|since| now - since >= stable)
                })
        });
        if let Some(id) = ready {
            // Refusals (a change pending, the term barrier, quorum safety) are retried on a
            // later tick: the learner stays marked.
            let _ = self
                .propose_membership_change(ChangeRequest::new(MembershipChange::Promote { id }));
        }
    }
}

/// Updates a learner's rounds at tick `now`: a round that reached its target ends (in time if
/// within `window` ticks) and the next begins at the leader's `last` index; a round still
/// open after `window` ticks, silence, or a snapshot in flight mean it is not keeping up.
fn measure_round(p: &mut Progress, now: u64, last: LogIndex, window: u64) {
    let CatchUp { round, caught_up_since, rounds } = &mut p.catch_up;
    match *round {
        Some((target, started)) if p.match_index >= target => {
            *rounds += 1;
            if now - started <= window {
                caught_up_since.get_or_insert(now);
            } else {
                *caught_up_since = None;
            }
            *round = Some((last, now));
        }
        Some((_, started)) if now - started > window => *caught_up_since = None,
        Some(_) => {}
        None => *round = Some((last, now)),
    }
    // Holding the commit index is not required at every tick: under a steady write load a
    // learner that keeps up is a few entries behind most of the time (redisraft#125). Rounds
    // finished in time say it keeps up; silence or a snapshot say it does not.
    let answering = p.last_ack_tick.is_some_and(|at| now - at < window);
    let healthy = answering && !matches!(p.mode, ReplicationMode::Snapshot(_));
    if !healthy {
        p.catch_up.caught_up_since = None;
    }
}
