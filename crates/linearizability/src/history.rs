//! The checks run on a finished key/value history, shared by the simulator and the tests that
//! drive real processes, so that both fail with the same, complete message:
//!
//! - [`assert_linearizable`]: the history passes the checker, or the test fails with its
//!   report. Running out of the step budget fails too: an undecided history is not a pass.
//! - [`assert_appends_once`]: every acknowledged append is in its key's final value exactly
//!   once (none lost, none applied twice), and no final value holds any token twice.
//!
//! Both return a summary to print when they pass. Neither reads a clock, so the simulator's
//! messages stay the same from one run of a seed to the next; callers that want the time
//! taken measure it around the call.
//!
//! The append check relies on how the workloads write: every value written is a *token*
//! unique in the whole run and ending with `;` (the workloads use `c{client}.{n};`), so a
//! final value is a sequence of tokens and a token seen twice is one write applied twice.

use std::collections::{BTreeMap, BTreeSet};
// `assert_appends_once` takes the final values as the simulator and the test kit collect them.
#[allow(clippy::disallowed_types)]
use std::collections::HashMap;
use std::fmt;

use crate::kv_check::check_kv_with_stats;
use crate::kv_model::Operation;
use crate::report::CheckResult;

/// What [`assert_linearizable`] checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linearizable {
    /// Operations in the history.
    pub operations: usize,
    /// Writes whose outcome is unknown (recorded with `ret = u64::MAX`).
    pub unknown: usize,
    /// Distinct keys.
    pub keys: usize,
    /// Search steps the checker took.
    pub steps: u64,
}

impl Linearizable {
    /// The size of `history`, before it is checked.
    fn describe(history: &[Operation]) -> Linearizable {
        let unknown = history.iter().filter(|op| op.ret == u64::MAX).count();
        let keys: BTreeSet<&str> = history.iter().map(|op| op.input.key()).collect();
        Linearizable { operations: history.len(), unknown, keys: keys.len(), steps: 0 }
    }

    /// "1200 ops (1180 ok, 20 unknown) on 8 keys".
    fn size(&self) -> String {
        format!(
            "{} ops ({} ok, {} unknown) on {} keys",
            self.operations,
            self.operations - self.unknown,
            self.unknown,
            self.keys
        )
    }
}

impl fmt::Display for Linearizable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: linearizable ({} search steps)", self.size(), self.steps)
    }
}

/// Checks `history` for linearizability within `step_budget` search steps.
///
/// # Panics
/// With the checker's report if the history is not linearizable, and if the budget runs out
/// before a verdict (an undecided check fails rather than passes).
pub fn assert_linearizable(history: &[Operation], step_budget: u64) -> Linearizable {
    let mut summary = Linearizable::describe(history);
    let (result, stats) = check_kv_with_stats(history, step_budget);
    summary.steps = stats.steps;
    match result {
        CheckResult::Ok => summary,
        CheckResult::Illegal(report) => {
            panic!("{}: the history is NOT LINEARIZABLE\n{report}", summary.size())
        }
        CheckResult::Unknown => panic!(
            "{}: the linearizability checker gave up after {} steps (its budget), with {} of {} \
             keys checked: undecided fails",
            summary.size(),
            stats.steps,
            stats.partitions_checked,
            stats.partitions
        ),
    }
}

/// What [`assert_appends_once`] checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendsOnce {
    /// Acknowledged appends, each found exactly once.
    pub acknowledged: usize,
    /// Keys those appends went to.
    pub keys: usize,
    /// Final values searched for repeated tokens.
    pub values: usize,
    /// Tokens in those values.
    pub tokens: usize,
}

impl fmt::Display for AppendsOnce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} acknowledged appends on {} keys each present exactly once; no duplicate in {} \
             final values ({} tokens)",
            self.acknowledged, self.keys, self.values, self.tokens
        )
    }
}

/// The tokens of a value: its pieces up to and including each `;`.
fn tokens(value: &str) -> impl Iterator<Item = &str> {
    value.split_inclusive(';')
}

/// Checks that every `(key, token)` in `acked` (the acknowledged appends nothing can have
/// overwritten) appears exactly once in `final_values[key]`, and that no final value holds
/// any token twice. Keys are visited in order, so the first failure reported does not depend
/// on the map's iteration order.
///
/// # Panics
/// On the first token missing, repeated or read twice, naming the token, the key and
/// (abbreviated) the final value.
// The map's order never shows: its keys are visited through the sorted copy.
#[allow(clippy::disallowed_types)]
pub fn assert_appends_once(
    final_values: &HashMap<String, String>,
    acked: &[(String, String)],
) -> AppendsOnce {
    let sorted: BTreeMap<&str, &str> =
        final_values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut counts: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (&key, &value) in &sorted {
        let per_key = counts.entry(key).or_default();
        for token in tokens(value) {
            *per_key.entry(token).or_insert(0) += 1;
        }
    }
    for (key, token) in acked {
        let count = counts.get(key.as_str()).and_then(|c| c.get(token.as_str())).copied();
        let count = count.unwrap_or(0);
        if count != 1 {
            let value = sorted.get(key.as_str()).map_or("(not read)".into(), |v| abbreviate(v));
            panic!("acknowledged append {token} appears {count} times in {key}: {value}");
        }
    }
    for (&key, &value) in &sorted {
        // The first repeated token in the value, so that the message is the same every run.
        let per_key = &counts[key];
        if let Some(token) = tokens(value).find(|t| per_key[t] > 1) {
            panic!(
                "{token} appears {} times in {key} (a write applied more than once): {}",
                per_key[token],
                abbreviate(value)
            );
        }
    }
    let keys: BTreeSet<&str> = acked.iter().map(|(k, _)| k.as_str()).collect();
    AppendsOnce {
        acknowledged: acked.len(),
        keys: keys.len(),
        values: final_values.len(),
        tokens: final_values.values().map(|v| tokens(v).count()).sum(),
    }
}

/// A value short enough for a message: whole up to 200 bytes, else its two ends.
fn abbreviate(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut cut = MAX / 2;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut tail = s.len() - MAX / 2;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{:?}...({} bytes)...{:?}", &s[..cut], s.len(), &s[tail..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).expect_err("the check passed");
        match payload.downcast::<String>() {
            Ok(message) => *message,
            Err(payload) => payload.downcast_ref::<&str>().unwrap_or(&"?").to_string(),
        }
    }

    // The map type `assert_appends_once` takes.
    #[allow(clippy::disallowed_types)]
    fn values(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn acked(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, t)| (k.to_string(), t.to_string())).collect()
    }

    #[test]
    fn a_linearizable_history_passes_with_its_size() {
        let history = vec![
            Operation::put(1, "x", "a", 0, 10),
            Operation::get(2, "x", "a", 5, 15),
            Operation::append(3, "y", "b", 20, u64::MAX),
        ];
        let summary = assert_linearizable(&history, 1_000);
        assert_eq!((summary.operations, summary.unknown, summary.keys), (3, 1, 2));
        assert!(summary.to_string().starts_with("3 ops (2 ok, 1 unknown) on 2 keys: linearizable"));
    }

    #[test]
    fn an_illegal_history_fails_with_the_report() {
        let stale = vec![Operation::put(1, "x", "a", 0, 10), Operation::get(2, "x", "", 20, 30)];
        let message = panic_message(|| {
            assert_linearizable(&stale, 1_000);
        });
        assert!(message.starts_with("2 ops (2 ok, 0 unknown) on 1 keys: the history is NOT"));
        assert!(message.contains("\"x\""), "the report names the key: {message}");
    }

    #[test]
    fn an_undecided_history_fails() {
        // Concurrent appends whose order only the last read settles: more than one step.
        let history = vec![
            Operation::append(1, "k", "a;", 0, 100),
            Operation::append(2, "k", "b;", 0, 100),
            Operation::append(3, "k", "c;", 0, 100),
            Operation::get(4, "k", "c;b;a;", 200, 300),
        ];
        let message = panic_message(|| {
            assert_linearizable(&history, 1);
        });
        assert!(message.contains("gave up after 1 steps"), "{message}");
        assert!(message.contains("0 of 1 keys checked: undecided fails"), "{message}");
    }

    #[test]
    fn appends_present_once_pass() {
        let finals = values(&[("a", "c0.1;c1.1;"), ("b", "c0.2;")]);
        let summary = assert_appends_once(&finals, &acked(&[("a", "c1.1;"), ("b", "c0.2;")]));
        assert_eq!(summary, AppendsOnce { acknowledged: 2, keys: 2, values: 2, tokens: 3 });
        assert!(summary.to_string().starts_with("2 acknowledged appends on 2 keys"));
    }

    #[test]
    fn a_lost_or_doubled_append_fails_naming_it() {
        let finals = values(&[("a", "c0.1;c1.1;c0.1;"), ("b", "c0.2;")]);
        let lost = panic_message(|| {
            assert_appends_once(&finals, &acked(&[("b", "c9.9;")]));
        });
        assert_eq!(lost, "acknowledged append c9.9; appears 0 times in b: \"c0.2;\"");
        let doubled = panic_message(|| {
            assert_appends_once(&finals, &acked(&[("a", "c0.1;")]));
        });
        assert!(doubled.starts_with("acknowledged append c0.1; appears 2 times in a"));
        // A token repeated that nobody saw acknowledged (its reply was lost) fails too.
        let repeated = panic_message(|| {
            assert_appends_once(&finals, &[]);
        });
        assert!(repeated.starts_with("c0.1; appears 2 times in a (a write applied more"));
        let unread = panic_message(|| {
            assert_appends_once(&finals, &acked(&[("z", "c0.1;")]));
        });
        assert!(unread.ends_with("appears 0 times in z: (not read)"), "{unread}");
    }

    #[test]
    fn long_values_are_abbreviated() {
        let long = "c1.1;".repeat(100);
        let text = abbreviate(&long);
        assert!(text.contains("...(500 bytes)..."), "{text}");
        assert!(text.len() < 260);
    }
}
