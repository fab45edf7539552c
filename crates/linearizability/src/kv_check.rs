//! The key/value entry points: run the generic checker with [`KvModel`] and turn its indices
//! into a self-contained report.

use crate::checker::{check_operations, Failure, Stats, Verdict};
use crate::kv_model::{KvModel, Operation};
use crate::report::{CheckResult, IllegalReport};

/// Checks that a key/value history is linearizable, in at most `step_budget` search steps.
///
/// Same history and budget, same answer: the budget counts search steps, never time.
pub fn check_kv(history: &[Operation], step_budget: u64) -> CheckResult {
    check_kv_with_stats(history, step_budget).0
}

/// [`check_kv`], also telling how much work it did (e.g. to print the steps used, or to size
/// a budget).
pub fn check_kv_with_stats(history: &[Operation], step_budget: u64) -> (CheckResult, Stats) {
    let (verdict, stats) = check_operations(&KvModel, history, step_budget);
    let result = match verdict {
        Verdict::Linearizable => CheckResult::Ok,
        Verdict::Unknown => CheckResult::Unknown,
        Verdict::Illegal(failure) => CheckResult::Illegal(Box::new(report(history, failure))),
    };
    (result, stats)
}

fn report(history: &[Operation], failure: Failure<String>) -> IllegalReport {
    let Failure { partition, longest_prefix, state_after_prefix } = failure;
    let key = history[partition[0]].input.key().to_string();
    let mut in_prefix = vec![false; history.len()];
    for &i in &longest_prefix {
        in_prefix[i] = true;
    }
    let mut unexplained: Vec<&Operation> =
        partition.iter().filter(|&&i| !in_prefix[i]).map(|&i| &history[i]).collect();
    unexplained.sort_by_key(|op| (op.call, op.ret));
    IllegalReport {
        key,
        longest_prefix: longest_prefix.iter().map(|&i| history[i].clone()).collect(),
        unexplained: unexplained.into_iter().cloned().collect(),
        value_after_prefix: state_after_prefix,
    }
}
