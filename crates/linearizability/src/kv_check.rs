//! The key/value entry points: run the generic checker with the rolling-hash model
//! (`kv_hashed`), double-check any linearization it finds on real strings, and turn its indices
//! into a self-contained report.

use crate::checker::{check_operations, check_with_witness, Failure, Stats, Verdict};
use crate::kv_hashed::HashedKvModel;
use crate::kv_model::{KvInput, KvModel, Operation};
use crate::report::{CheckResult, IllegalReport};

/// Checks that a key/value history is linearizable, in at most `step_budget` search steps.
///
/// Same history and budget, same answer: the budget counts search steps, never time.
pub fn check_kv(history: &[Operation], step_budget: u64) -> CheckResult {
    check_kv_with_stats(history, step_budget).0
}

/// [`check_kv`], also telling how much work it did (e.g. to print the steps used, or to size
/// a budget).
///
/// The search compares values by rolling hash (see `kv_hashed`), but an `Ok` never rests on a
/// hash: the linearization found for each key is replayed on the real strings first. Should
/// that replay ever fail (two different values with the same hash), the history is checked
/// again with the exact string model, [`KvModel`], under the same budget.
pub fn check_kv_with_stats(history: &[Operation], step_budget: u64) -> (CheckResult, Stats) {
    let (model, compiled) = HashedKvModel::compile(history);
    let (verdict, stats, witness) = check_with_witness(&model, &compiled, step_budget);
    let result = match verdict {
        Verdict::Linearizable if witness.iter().all(|order| replays(history, order)) => {
            CheckResult::Ok
        }
        Verdict::Linearizable => {
            let (verdict, stats) = check_operations(&KvModel, history, step_budget);
            let result = match verdict {
                Verdict::Linearizable => CheckResult::Ok,
                Verdict::Unknown => CheckResult::Unknown,
                Verdict::Illegal(failure) => CheckResult::Illegal(Box::new(report(
                    history,
                    failure.partition,
                    failure.longest_prefix,
                ))),
            };
            return (result, stats);
        }
        Verdict::Unknown => CheckResult::Unknown,
        Verdict::Illegal(Failure { partition, longest_prefix, .. }) => {
            CheckResult::Illegal(Box::new(report(history, partition, longest_prefix)))
        }
    };
    (result, stats)
}

/// Whether applying `order` (indices into `history`, one key's operations) to real strings
/// gives every Get its recorded output. Linear in the size of the values involved.
fn replays(history: &[Operation], order: &[usize]) -> bool {
    let mut value = String::new();
    order.iter().all(|&i| {
        let op = &history[i];
        match &op.input {
            KvInput::Get { .. } => return op.output == value,
            KvInput::Put { value: v, .. } => v.clone_into(&mut value),
            KvInput::Append { value: v, .. } => value.push_str(v),
        }
        true
    })
}

/// The key's value after `prefix` (indices into `history`, one key's operations), on real
/// strings; Gets are not checked.
fn value_after(history: &[Operation], prefix: &[usize]) -> String {
    let mut value = String::new();
    for &i in prefix {
        match &history[i].input {
            KvInput::Get { .. } => {}
            KvInput::Put { value: v, .. } => v.clone_into(&mut value),
            KvInput::Append { value: v, .. } => value.push_str(v),
        }
    }
    value
}

fn report(
    history: &[Operation],
    partition: Vec<usize>,
    longest_prefix: Vec<usize>,
) -> IllegalReport {
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
        value_after_prefix: value_after(history, &longest_prefix),
        longest_prefix: longest_prefix.iter().map(|&i| history[i].clone()).collect(),
        unexplained: unexplained.into_iter().cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_checks_reads_on_real_strings() {
        let history = vec![
            Operation::append(1, "k", "a;", 0, 1),
            Operation::put(1, "k", "p;", 2, 3),
            Operation::append(1, "k", "b;", 4, 5),
            Operation::get(2, "k", "p;b;", 6, 7),
        ];
        assert!(replays(&history, &[0, 1, 2, 3]));
        // The read sees "a;p;" in this order: wrong.
        assert!(!replays(&history, &[1, 0, 2, 3]));
        assert_eq!(value_after(&history, &[0, 1]), "p;");
        assert_eq!(value_after(&history, &[1, 0, 3]), "p;a;");
    }
}
