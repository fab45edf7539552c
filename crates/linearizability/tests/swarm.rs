//! Histories recorded by the simulator's swarm runs (see `tests/data/README.md`): many clients
//! on one append-only key, some calls hanging for seconds. A plain memoised Wing & Gong search
//! gave up on them after tens of millions of steps, or ran out of memory first.

mod common;

use std::path::PathBuf;

use common::load_tsv;
use kvraft_linearizability::{
    check_kv_with_stats, check_operations, CheckResult, KvInput, KvModel, Operation, Verdict,
};

const FILES: [&str; 3] = [
    "swarm_seed21_5clients_1key.tsv",
    "swarm_seed2_first2000.tsv",
    "swarm_seed60_key_a0_first900.tsv",
];

fn load(name: &str) -> Vec<Operation> {
    load_tsv(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name))
}

#[test]
fn recorded_histories_are_decided_in_a_few_steps_per_operation() {
    for name in FILES {
        let history = load(name);
        // The budget: three steps per operation (measured: 500 steps for 309 operations on
        // seed 21, 2157 for 2000 on seed 2, 973 for 900 on seed 60).
        let budget = 3 * history.len() as u64;
        let (result, stats) = check_kv_with_stats(&history, budget);
        println!(
            "{name}: {result}, {} operations, {} steps, {} memo cache entries",
            history.len(),
            stats.steps,
            stats.peak_cache_entries
        );
        assert_eq!(result, CheckResult::Ok, "{name}");
        // Memory: the memo cache, 16 bytes of fingerprints per entry, stays within two entries
        // per operation (measured: 459, 541 and 956 entries).
        assert!(stats.peak_cache_entries <= 2 * history.len(), "{name}: {stats:?}");

        // The string model decides the same, step for step.
        let (verdict, string_stats) = check_operations(&KvModel, &history, budget);
        assert_eq!(verdict, Verdict::Linearizable, "{name}");
        assert_eq!(string_stats, stats, "{name}");
    }
}

#[test]
fn recorded_history_with_a_lost_append_is_illegal() {
    let mut history = load("swarm_seed21_5clients_1key.tsv");
    // The first read past the middle whose last token was appended (and acknowledged) before
    // the read was invoked; dropping that token from its output gives a value that did exist,
    // but too early.
    let last_token =
        |value: &str| -> usize { value[..value.len() - 1].rfind(';').map_or(0, |i| i + 1) };
    let i = (history.len() / 2..history.len())
        .find(|&i| {
            let read = &history[i];
            matches!(read.input, KvInput::Get { .. })
                && !read.output.is_empty()
                && history.iter().any(|op| {
                    op.ret < read.call
                        && matches!(&op.input, KvInput::Append { value, .. }
                            if *value == read.output[last_token(&read.output)..])
                })
        })
        .expect("such a read");
    let cut = last_token(&history[i].output);
    history[i].output.truncate(cut);
    let corrupted = history[i].clone();

    let (result, stats) = check_kv_with_stats(&history, 100_000);
    let CheckResult::Illegal(report) = result else {
        panic!("expected a violation, got {result}");
    };
    println!("{} steps\n{report}", stats.steps);
    assert_eq!(report.key, "a0");
    assert!(report.unexplained.contains(&corrupted), "{report}");
    // The prefix is explained on real strings: the value after it is what its writes build.
    let mut value = String::new();
    for op in &report.longest_prefix {
        match &op.input {
            KvInput::Get { .. } => assert_eq!(op.output, value),
            KvInput::Put { value: v, .. } => value.clone_from(v),
            KvInput::Append { value: v, .. } => value.push_str(v),
        }
    }
    assert_eq!(report.value_after_prefix, value);
}
