//! The generic entry point: split a history with the model's partition, search each part in
//! turn under one shared step budget, and stop at the first part that cannot be linearized.

use crate::model::{Model, Op};
use crate::search::{check_partition, Budget, PartitionVerdict};

/// The generic checker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<S> {
    /// Every partition has a linearization.
    Linearizable,
    /// A partition has none; details of the first such partition (in partition order).
    Illegal(Failure<S>),
    /// The step budget ran out before a verdict was reached (and before any illegal partition
    /// was found).
    Unknown,
}

/// Why a partition is not linearizable. All operations are indices into the checked history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure<S> {
    /// The operations of the failing partition, as the model's `partition` listed them.
    pub partition: Vec<usize>,
    /// The longest sequence of the partition's operations the search managed to linearize, in
    /// linearization order (the longest path it placed, extended greedily).
    pub longest_prefix: Vec<usize>,
    /// The model's state after `longest_prefix`.
    pub state_after_prefix: S,
}

/// How much work a check did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Search steps taken over all partitions (at most the budget).
    pub steps: u64,
    /// Partitions the history was split into.
    pub partitions: usize,
    /// Partitions whose search finished, with either verdict.
    pub partitions_checked: usize,
    /// The most entries any one partition's memo cache held (each partition has its own, freed
    /// when its search ends). An entry is two 64-bit fingerprints, so the cache takes about
    /// 16-40 bytes per entry, depending on where the hash table is in its growth.
    pub peak_cache_entries: usize,
}

/// Checks `history` against `model`, taking at most `step_budget` search steps in total.
///
/// Steps count work, not time, so the same history and budget always give the same verdict and
/// the same `Stats`.
///
/// # Panics
/// If an operation has `ret < call`: that is a bug in whoever recorded the history.
pub fn check_operations<M: Model>(
    model: &M,
    history: &[Op<M::Input, M::Output>],
    step_budget: u64,
) -> (Verdict<M::State>, Stats) {
    let (verdict, stats, _) = check_with_witness(model, history, step_budget);
    (verdict, stats)
}

/// [`check_operations`], also returning, when the history is linearizable, one linearization
/// of each partition (indices into `history`), for callers that want to double-check it.
pub(crate) fn check_with_witness<M: Model>(
    model: &M,
    history: &[Op<M::Input, M::Output>],
    step_budget: u64,
) -> (Verdict<M::State>, Stats, Vec<Vec<usize>>) {
    for (i, op) in history.iter().enumerate() {
        assert!(
            op.call <= op.ret,
            "operation {i} (client {}) returns at {} before its call at {}",
            op.client_id,
            op.ret,
            op.call
        );
    }
    let partitions = model.partition(history);
    let mut budget = Budget { used: 0, limit: step_budget };
    let mut stats = Stats { partitions: partitions.len(), ..Stats::default() };
    let mut witness = Vec::with_capacity(partitions.len());
    for members in partitions {
        let (verdict, cache_entries) = check_partition(model, history, &members, &mut budget);
        stats.steps = budget.used;
        stats.peak_cache_entries = stats.peak_cache_entries.max(cache_entries);
        match verdict {
            PartitionVerdict::Linearizable { order } => {
                stats.partitions_checked += 1;
                witness.push(order);
            }
            PartitionVerdict::Illegal { longest_prefix, state_after } => {
                stats.partitions_checked += 1;
                let failure =
                    Failure { partition: members, longest_prefix, state_after_prefix: state_after };
                return (Verdict::Illegal(failure), stats, Vec::new());
            }
            PartitionVerdict::OutOfBudget => return (Verdict::Unknown, stats, Vec::new()),
        }
    }
    (Verdict::Linearizable, stats, witness)
}
