//! The checker against a brute-force oracle on tiny histories: the oracle tries every order
//! that respects real time (an operation that returned before another was invoked goes first)
//! and replays it on a plain map, sharing no code with the checker.

mod common;

use std::collections::HashMap;

use common::{
    build, hot_key_spec_strategy, proptest_config, rewire_reads, rewire_strategy, spec_strategy,
};
use kvraft_linearizability::{check_kv, check_operations, KvInput, KvModel, Operation, Verdict};
use proptest::prelude::*;

fn brute_force_linearizable(history: &[Operation]) -> bool {
    fn extend(
        history: &[Operation],
        placed: &mut Vec<bool>,
        store: &HashMap<&str, String>,
    ) -> bool {
        if placed.iter().all(|&p| p) {
            return true;
        }
        for i in 0..history.len() {
            if placed[i] {
                continue;
            }
            // `i` may go next only if no unplaced operation returned before it was invoked.
            let blocked = (0..history.len())
                .any(|j| !placed[j] && j != i && history[j].ret < history[i].call);
            if blocked {
                continue;
            }
            let op = &history[i];
            let mut next = store.clone();
            match &op.input {
                KvInput::Get { key } => {
                    if store.get(key.as_str()).map_or("", String::as_str) != op.output {
                        continue;
                    }
                }
                KvInput::Put { key, value } => {
                    next.insert(key.as_str(), value.clone());
                }
                KvInput::Append { key, value } => {
                    next.entry(key.as_str()).or_default().push_str(value);
                }
            }
            placed[i] = true;
            if extend(history, placed, &next) {
                return true;
            }
            placed[i] = false;
        }
        false
    }
    extend(history, &mut vec![false; history.len()], &HashMap::new())
}

proptest! {
    #![proptest_config(proptest_config(5000))]

    /// Same verdict as the oracle, on linearizable histories and on ones where reads were
    /// rewired to other plausible values (most of those are not linearizable).
    #[test]
    fn agrees_with_brute_force(
        specs in prop::collection::vec(spec_strategy(3, 2, 6), 0..8),
        rewires in rewire_strategy(),
    ) {
        let mut g = build(&specs);
        rewire_reads(&mut g, &rewires, false);
        let expected = brute_force_linearizable(&g.history);
        let result = check_kv(&g.history, u64::MAX);
        prop_assert_eq!(result.is_ok(), expected, "{}\n{:#?}", result, g.history);
        prop_assert!(!result.is_unknown());
    }

    /// The same on one hot key where some calls hang across many others: the shape the
    /// dead-end and irrelevant-state shortcuts of the search are for. Checked with both the
    /// rolling-hash model (`check_kv`) and the string model.
    #[test]
    fn agrees_with_brute_force_on_a_hot_key_with_stalls(
        specs in prop::collection::vec(hot_key_spec_strategy(4, 6, 20), 0..9),
        rewires in rewire_strategy(),
    ) {
        let mut g = build(&specs);
        rewire_reads(&mut g, &rewires, false);
        let expected = brute_force_linearizable(&g.history);
        let result = check_kv(&g.history, u64::MAX);
        prop_assert_eq!(result.is_ok(), expected, "{}\n{:#?}", result, g.history);
        let (verdict, _) = check_operations(&KvModel, &g.history, u64::MAX);
        prop_assert_eq!(verdict == Verdict::Linearizable, expected, "{:?}", verdict);
    }
}
