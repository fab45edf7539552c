//! The follower's side of linearizable reads, as plain bookkeeping: batches of reads forwarded
//! to the leader, matched with its answers, and failed when they can no longer be answered.
//! Its methods only decide (which batch to send, which reads an answer or a failure covers);
//! the node sends the requests and reports the reads. The protocol itself is described in
//! `read_index.rs`.

use std::collections::BTreeMap;

use crate::types::{NodeId, Term};

/// A batch of reads a follower forwarded (or is about to forward) to its leader.
#[derive(Debug)]
struct ForwardedBatch {
    ctxs: Vec<u64>,
    /// When the batch was opened; it fails an election timeout later if still unanswered.
    created_tick: u64,
    /// False while the batch is open: reads join it until the next `ready()` sends it.
    sent: bool,
}

/// A follower's forwarded reads. It outlives roles: the batch numbering must never repeat in
/// one incarnation, so that a late answer can never match a newer batch.
#[derive(Debug, Default)]
pub(crate) struct ForwardedReads {
    /// Batches by number, oldest first.
    batches: BTreeMap<u64, ForwardedBatch>,
    /// The term and leader every batch was (or will be) sent to.
    destination: Option<(Term, NodeId)>,
    next_batch: u64,
    /// Mixed into batch numbers on the wire, so that a restarted follower (another nonce)
    /// never takes an answer meant for its previous incarnation.
    nonce: u64,
}

impl ForwardedReads {
    pub(crate) fn new(nonce: u64) -> ForwardedReads {
        ForwardedReads { nonce, ..ForwardedReads::default() }
    }

    /// The number of reads forwarded and not yet answered.
    pub(crate) fn len(&self) -> usize {
        self.batches.values().map(|batch| batch.ctxs.len()).sum()
    }

    /// True if a batch waits to be sent in the next Ready.
    pub(crate) fn has_open_batch(&self) -> bool {
        self.batches.last_key_value().is_some_and(|(_, batch)| !batch.sent)
    }

    /// Adds the read `ctx` for `leader` of `term`, opening a batch unless one is open.
    pub(crate) fn add(&mut self, term: Term, leader: NodeId, ctx: u64, now_tick: u64) {
        debug_assert!(self.destination.is_none_or(|to| to == (term, leader)));
        self.destination = Some((term, leader));
        if !self.has_open_batch() {
            self.next_batch += 1;
            let batch = ForwardedBatch { ctxs: Vec::new(), created_tick: now_tick, sent: false };
            self.batches.insert(self.next_batch, batch);
        }
        let mut batch = self.batches.last_entry().expect("just opened");
        batch.get_mut().ctxs.push(ctx);
    }

    /// Closes the open batch, if any: returns the leader to send it to and its `ctx` on the
    /// wire.
    pub(crate) fn send_open_batch(&mut self) -> Option<(NodeId, u64)> {
        let mut batch = self.batches.last_entry()?;
        if batch.get().sent {
            return None;
        }
        batch.get_mut().sent = true;
        let number = *batch.key();
        let (_, leader) = self.destination.expect("batches have a destination");
        Some((leader, self.mix_nonce(number)))
    }

    /// `from`, leader of `term`, answered the batch `ctx`: returns the reads it covers, or
    /// `None` if the answer matches no batch sent to it (a duplicate, an answer meant for an
    /// earlier incarnation, or from a peer we did not ask).
    pub(crate) fn answer(&mut self, term: Term, from: NodeId, ctx: u64) -> Option<Vec<u64>> {
        let number = self.mix_nonce(ctx);
        if self.destination != Some((term, from))
            || !self.batches.get(&number).is_some_and(|batch| batch.sent)
        {
            return None;
        }
        self.batches.remove(&number).map(|batch| batch.ctxs)
    }

    /// The reads of batches still unanswered `timeout` ticks after they were opened, oldest
    /// first: they fail (their request or its answer was lost, or the leader cannot confirm).
    pub(crate) fn expire(&mut self, now_tick: u64, timeout: u64) -> Vec<u64> {
        let mut expired = Vec::new();
        while let Some((_, batch)) = self.batches.first_key_value() {
            if now_tick - batch.created_tick < timeout {
                break;
            }
            let (_, batch) = self.batches.pop_first().expect("just seen");
            expired.extend(batch.ctxs);
        }
        expired
    }

    /// `following` is the term and leader this peer now follows (`None` unless it is a
    /// follower that knows its leader). If the batches went elsewhere, returns all their reads,
    /// oldest first: they fail. Free unless there is something to fail.
    pub(crate) fn settle(&mut self, following: Option<(Term, NodeId)>) -> Vec<u64> {
        if self.destination.is_none() || self.destination == following {
            return Vec::new();
        }
        self.destination = None;
        std::mem::take(&mut self.batches).into_values().flat_map(|batch| batch.ctxs).collect()
    }

    /// A batch number to its `ctx` on the wire, and back (an XOR with the nonce).
    fn mix_nonce(&self, value: u64) -> u64 {
        value ^ self.nonce
    }

    /// Panics if the batches are inconsistent, or outlive the leader they went to.
    pub(crate) fn check_invariants(&self, node: NodeId, following: Option<(Term, NodeId)>) {
        if let Some((term, leader)) = self.destination.filter(|_| !self.batches.is_empty()) {
            assert!(
                following == Some((term, leader)),
                "node {node}: forwarded reads outlive their leader {leader} in term {term}"
            );
        }
        assert!(
            self.destination.is_some() || self.batches.is_empty(),
            "node {node}: forwarded reads without a destination"
        );
        assert!(
            self.batches.values().all(|batch| !batch.ctxs.is_empty()),
            "node {node}: an empty forwarded batch"
        );
        assert!(
            self.batches.values().rev().skip(1).all(|batch| batch.sent),
            "node {node}: only the newest forwarded batch may be unsent"
        );
        assert!(
            self.batches.last_key_value().is_none_or(|(number, _)| *number <= self.next_batch),
            "node {node}: a forwarded batch numbered ahead of the count"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERM: Term = Term(3);
    const LEADER: NodeId = NodeId(1);

    #[test]
    fn reads_between_two_readies_share_one_batch_and_one_answer() {
        let mut reads = ForwardedReads::new(0xabcd);
        reads.add(TERM, LEADER, 10, 0);
        reads.add(TERM, LEADER, 11, 1);
        assert!(reads.has_open_batch());
        let (to, ctx) = reads.send_open_batch().expect("an open batch");
        assert_eq!(to, LEADER);
        assert_eq!(reads.send_open_batch(), None, "a batch is sent once");
        reads.add(TERM, LEADER, 12, 2);
        assert_eq!(reads.len(), 3);
        // Answers from another term or peer, or to an unsent batch, match nothing.
        assert_eq!(reads.answer(Term(4), LEADER, ctx), None);
        assert_eq!(reads.answer(TERM, NodeId(2), ctx), None);
        assert_eq!(reads.answer(TERM, LEADER, ctx ^ 3), None);
        assert_eq!(reads.answer(TERM, LEADER, ctx), Some(vec![10, 11]));
        assert_eq!(reads.answer(TERM, LEADER, ctx), None, "a duplicate answer");
        assert_eq!(reads.len(), 1);
    }

    #[test]
    fn batches_fail_when_they_time_out_or_the_leader_changes() {
        let mut reads = ForwardedReads::new(1);
        reads.add(TERM, LEADER, 10, 0);
        reads.send_open_batch();
        reads.add(TERM, LEADER, 11, 5);
        assert_eq!(reads.expire(9, 10), Vec::<u64>::new());
        assert_eq!(reads.expire(10, 10), [10]);
        assert_eq!(reads.settle(Some((TERM, LEADER))), Vec::<u64>::new());
        assert_eq!(reads.settle(Some((Term(4), LEADER))), [11]);
        assert_eq!(reads.len(), 0);
        reads.check_invariants(NodeId(2), None);
    }
}
