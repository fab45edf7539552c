//! [`WorkloadReport`]: what a workload did, and the checks run on it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kvraft_linearizability::{assert_appends_once, assert_linearizable, KvInput, Operation};

/// The checker's step budget: generous (the search takes one or two steps per operation on
/// these histories), and still a bound.
pub const CHECK_STEP_BUDGET: u64 = 200_000_000;

/// What a workload did.
#[derive(Clone, Debug)]
pub struct WorkloadReport {
    /// Every acknowledged operation, and every write whose outcome is unknown (`ret =
    /// u64::MAX`); failed reads are left out. Times are microseconds since `started`.
    pub history: Vec<Operation>,
    /// Operations acknowledged.
    pub ok: usize,
    /// Operations that failed or timed out (writes among them are in `history` as pending).
    pub failed: usize,
    /// `(key, token)` of every acknowledged append that no put can have overwritten: every put
    /// on that key was acknowledged before the append was invoked. Each must appear exactly
    /// once in the key's final value (see [`WorkloadReport::check_appends`]).
    pub acked_appends: Vec<(String, String)>,
    /// The keys the workload used.
    pub keys: Vec<String>,
    /// Time 0 of `history`.
    pub started: Instant,
}

impl WorkloadReport {
    /// `t` in the history's microseconds.
    pub fn us_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.started).as_micros() as u64
    }

    /// Writes whose outcome is unknown.
    pub fn unknown(&self) -> usize {
        self.history.iter().filter(|op| op.ret == u64::MAX).count()
    }

    /// How long after `at` the first write invoked at or after `at` was acknowledged, if one
    /// was. Only writes invoked after `at` count, so a reply sent by a server that was
    /// killed at `at` cannot be taken for one from its successor; the figure includes that one
    /// write's round trip.
    pub fn first_write_acked_after(&self, at: Instant) -> Option<Duration> {
        let at_us = self.us_at(at);
        self.history
            .iter()
            .filter(|op| !matches!(op.input, KvInput::Get { .. }))
            .filter(|op| op.call >= at_us && op.ret != u64::MAX)
            .map(|op| op.ret)
            .min()
            .map(|ret| Duration::from_micros(ret - at_us))
    }

    /// Checks the history for linearizability ([`assert_linearizable`], within
    /// [`CHECK_STEP_BUDGET`]) and returns a one-line summary with the time the check took;
    /// panics with the checker's report if it is not linearizable or the budget ran out.
    pub fn check_linearizable(&self) -> String {
        let started = Instant::now();
        let checked = assert_linearizable(&self.history, CHECK_STEP_BUDGET);
        format!("{checked}, in {} ms", started.elapsed().as_millis())
    }

    /// Checks that every acknowledged append ([`WorkloadReport::acked_appends`]) appears
    /// exactly once in its key's final value, and that no final value holds a token twice
    /// ([`assert_appends_once`]); panics otherwise, and returns a one-line summary.
    pub fn check_appends(&self, final_values: &HashMap<String, String>) -> String {
        assert_appends_once(final_values, &self.acked_appends).to_string()
    }
}

/// The acknowledged appends no put can have overwritten: on their key, every put was
/// acknowledged before the append was invoked, so every linearization orders the append after
/// all of them.
pub(crate) fn unoverwritable_appends(history: &[Operation]) -> Vec<(String, String)> {
    let mut last_put_ret: HashMap<&str, u64> = HashMap::new();
    for op in history {
        if let KvInput::Put { key, .. } = &op.input {
            let last = last_put_ret.entry(key).or_insert(0);
            *last = (*last).max(op.ret);
        }
    }
    history
        .iter()
        .filter_map(|op| match &op.input {
            KvInput::Append { key, value } if op.ret != u64::MAX => {
                let overwritable = last_put_ret.get(key.as_str()).is_some_and(|&r| r >= op.call);
                (!overwritable).then(|| (key.clone(), value.clone()))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_a_put_may_have_overwritten_are_left_out() {
        let history = vec![
            Operation::append(1, "a", "c1.1;", 0, 10),
            Operation::put(2, "a", "c2.1;", 5, 20),
            Operation::append(1, "a", "c1.2;", 30, 40),
            Operation::append(1, "b", "c1.3;", 0, u64::MAX),
        ];
        let acked = unoverwritable_appends(&history);
        assert_eq!(acked, [("a".to_string(), "c1.2;".to_string())]);
    }
}
