//! Small hand-made histories whose verdict is known, one behaviour each. Timelines are given as
//! `[call, ret]`; intervals are closed.

use kvraft_linearizability::{
    check_kv, check_kv_with_stats, check_operations, CheckResult, IllegalReport, KvModel,
    Operation, Verdict,
};

const BUDGET: u64 = 100_000;

fn get(c: u64, k: &str, out: &str, call: u64, ret: u64) -> Operation {
    Operation::get(c, k, out, call, ret)
}
fn put(c: u64, k: &str, v: &str, call: u64, ret: u64) -> Operation {
    Operation::put(c, k, v, call, ret)
}
fn append(c: u64, k: &str, v: &str, call: u64, ret: u64) -> Operation {
    Operation::append(c, k, v, call, ret)
}

/// `check_kv`, which runs on rolling hashes of the values, after making sure the generic
/// checker on the plain string model decides the same in the same number of steps.
#[track_caller]
fn check_both(history: &[Operation]) -> CheckResult {
    let (result, stats) = check_kv_with_stats(history, BUDGET);
    let (verdict, string_stats) = check_operations(&KvModel, history, BUDGET);
    assert_eq!(stats, string_stats, "{result}");
    match (&result, &verdict) {
        (CheckResult::Ok, Verdict::Linearizable) | (CheckResult::Unknown, Verdict::Unknown) => {}
        (CheckResult::Illegal(report), Verdict::Illegal(failure)) => {
            let prefix: Vec<Operation> =
                failure.longest_prefix.iter().map(|&i| history[i].clone()).collect();
            assert_eq!(report.longest_prefix, prefix);
            assert_eq!(report.value_after_prefix, failure.state_after_prefix);
        }
        _ => panic!("rolling hashes: {result}\nstrings: {verdict:?}"),
    }
    result
}

#[track_caller]
fn assert_ok(history: &[Operation]) {
    let result = check_both(history);
    assert_eq!(result, CheckResult::Ok, "expected linearizable, got:\n{result}");
}

#[track_caller]
fn assert_illegal(history: &[Operation]) -> IllegalReport {
    match check_both(history) {
        CheckResult::Illegal(report) => *report,
        other => panic!("expected a violation, got: {other}"),
    }
}

// ---- known good ----

#[test]
fn empty_history_is_linearizable_without_search() {
    let (result, stats) = check_kv_with_stats(&[], BUDGET);
    assert_eq!(result, CheckResult::Ok);
    assert_eq!(stats.steps, 0);
}

#[test]
fn sequential_operations() {
    assert_ok(&[
        get(1, "x", "", 0, 1),
        put(1, "x", "1", 2, 3),
        get(2, "x", "1", 4, 5),
        append(2, "x", "2", 6, 7),
        get(1, "x", "12", 8, 9),
        append(1, "y", "a", 10, 11), // append to a missing key acts as a put
        get(2, "y", "a", 12, 13),
        put(2, "x", "3", 14, 15),
        get(1, "x", "3", 16, 17),
    ]);
}

#[test]
fn concurrent_put_and_get_may_see_the_old_value() {
    // put 1: [0,10]; put 2: [20,40]; get: [25,30] overlaps put 2 and may precede it.
    assert_ok(&[put(1, "x", "1", 0, 10), put(1, "x", "2", 20, 40), get(2, "x", "1", 25, 30)]);
}

#[test]
fn concurrent_put_and_get_may_see_the_new_value() {
    assert_ok(&[put(1, "x", "1", 0, 10), put(1, "x", "2", 20, 40), get(2, "x", "2", 25, 30)]);
}

#[test]
fn get_may_take_effect_before_a_put_that_started_first() {
    // The put is invoked first but the get, fully inside it, can still come first.
    assert_ok(&[put(1, "x", "1", 0, 100), get(2, "x", "", 10, 20), get(3, "x", "1", 30, 40)]);
}

#[test]
fn touching_intervals_overlap() {
    // The get is invoked at the instant the put returns: closed intervals overlap, so the get
    // may still be ordered first and see "".
    assert_ok(&[put(1, "x", "1", 0, 10), get(2, "x", "", 10, 20)]);
}

#[test]
fn concurrent_appends_seen_in_one_order() {
    assert_ok(&[append(1, "x", "a", 0, 10), append(2, "x", "b", 0, 10), get(3, "x", "ab", 20, 30)]);
}

#[test]
fn concurrent_appends_seen_in_the_other_order() {
    assert_ok(&[append(1, "x", "a", 0, 10), append(2, "x", "b", 0, 10), get(3, "x", "ba", 20, 30)]);
}

#[test]
fn reads_during_concurrent_appends_see_a_consistent_order() {
    // Both gets run while the appends are in flight; each sees a state of the same order b, a.
    assert_ok(&[
        append(1, "x", "a", 0, 50),
        append(2, "x", "b", 0, 50),
        get(3, "x", "b", 10, 20),
        get(4, "x", "ba", 30, 40),
        get(3, "x", "ba", 60, 70),
    ]);
}

#[test]
fn many_keys_interleaved() {
    let mut history = Vec::new();
    // Five clients, five keys; each round every client appends to "its" key while reading the
    // next client's key, all rounds overlapping in time.
    for round in 0..6u64 {
        for c in 0..5u64 {
            let t = round * 10 + c;
            let mine = format!("k{c}");
            let theirs = format!("k{}", (c + 1) % 5);
            history.push(append(c, &mine, &round.to_string(), t, t + 12));
            // The other key's owner appends at [t+1, t+13] this round; earlier rounds are
            // complete, so this read sees rounds 0..round, possibly also this one.
            let seen: String = (0..round).map(|r| r.to_string()).collect();
            history.push(get(c, &theirs, &seen, t, t + 1));
        }
    }
    assert_ok(&history);
}

#[test]
fn unfinished_write_may_or_may_not_have_happened() {
    // A put whose reply never came is recorded with ret = u64::MAX.
    let pending = put(1, "x", "1", 5, u64::MAX);
    assert_ok(&[pending.clone(), get(2, "x", "", 10, 20)]);
    assert_ok(&[pending.clone(), get(2, "x", "1", 10, 20)]);
    assert_ok(&[pending, get(2, "x", "1", 10, 20), get(2, "x", "1", 30, 40)]);
}

#[test]
fn a_put_pending_across_reads_may_take_effect_late() {
    // The put hangs for the whole history: reads first see appends to "", then the put's
    // value with the appends made after it.
    assert_ok(&[
        put(1, "x", "p;", 0, 1000),
        append(2, "x", "a;", 10, 20),
        get(3, "x", "a;", 30, 40),
        append(2, "x", "b;", 50, 60),
        get(3, "x", "p;", 70, 80),
        append(2, "x", "c;", 90, 100),
        get(3, "x", "p;c;", 110, 120),
    ]);
}

#[test]
fn reads_pin_the_order_of_many_concurrent_appends_at_once() {
    // Twelve appends in flight together, read only at the end: 12! orders, one of them right.
    // Once every write is placed nothing can undo a wrong order, and the pending read's output
    // is known, so a value that is not a prefix of it is abandoned at once.
    let mut history: Vec<Operation> =
        (0..12u64).map(|c| append(c, "x", &format!("{c};"), 0, 100)).collect();
    let order = [7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 4, 6];
    let seen: String = order.iter().map(|c| format!("{c};")).collect();
    history.push(get(99, "x", &seen, 200, 210));
    let (result, stats) = check_kv_with_stats(&history, BUDGET);
    assert_eq!(result, CheckResult::Ok);
    assert!(stats.steps < 200, "took {} steps", stats.steps);
}

#[test]
fn appends_overwritten_unread_are_not_told_apart() {
    // Eight appends in flight together, then a put that may come after any number of them and
    // a read that sees only the put: which appends went first, and in which order, does not
    // matter once the put is the next thing anyone can observe.
    let mut history: Vec<Operation> =
        (0..8u64).map(|c| append(c, "x", &format!("{c};"), 0, 100)).collect();
    history.push(put(8, "x", "p;", 50, 150));
    history.push(get(9, "x", "p;", 200, 210));
    // ... and a second round the same, so that a wrong choice in the first is paid for in the
    // second.
    history.extend((0..8u64).map(|c| append(c, "x", &format!("{c}';"), 300, 400)));
    history.push(put(8, "x", "q;", 350, 450));
    history.push(get(9, "x", "q;", 500, 510));
    let (result, stats) = check_kv_with_stats(&history, BUDGET);
    assert_eq!(result, CheckResult::Ok);
    assert!(stats.steps < 2_000, "took {} steps", stats.steps);
}

// ---- known bad ----

#[test]
fn stale_read_after_completed_put() {
    let history = [put(1, "x", "1", 0, 10), put(1, "x", "2", 20, 30), get(2, "x", "1", 40, 50)];
    let report = assert_illegal(&history);
    assert_eq!(report.key, "x");
    assert_eq!(report.longest_prefix, history[..2].to_vec());
    assert_eq!(report.unexplained, vec![history[2].clone()]);
    assert_eq!(report.value_after_prefix, "2");
}

#[test]
fn touching_is_not_overlapping_once_apart() {
    // One unit later than `touching_intervals_overlap`: the put must now come first.
    assert_illegal(&[put(1, "x", "1", 0, 10), get(2, "x", "", 11, 20)]);
}

#[test]
fn lost_append() {
    let report = assert_illegal(&[
        append(1, "x", "a", 0, 10),
        append(2, "x", "b", 5, 15),
        get(3, "x", "a", 20, 30),
    ]);
    assert_eq!(report.longest_prefix.len(), 2);
    assert_eq!(report.unexplained.len(), 1);
    assert_eq!(report.unexplained[0].output, "a");
}

#[test]
fn duplicated_append() {
    assert_illegal(&[
        append(1, "x", "a", 0, 10),
        append(2, "x", "b", 20, 30),
        get(3, "x", "abb", 40, 50),
    ]);
    // Also when the duplicate is of an append still concurrent with the read.
    assert_illegal(&[
        append(1, "x", "a", 0, 10),
        append(2, "x", "b", 20, 60),
        get(3, "x", "abb", 40, 50),
    ]);
}

#[test]
fn read_of_a_value_never_written() {
    let report = assert_illegal(&[put(1, "x", "1", 0, 10), get(2, "x", "7", 0, 20)]);
    assert_eq!(report.unexplained.len() + report.longest_prefix.len(), 2);
}

#[test]
fn read_from_the_future() {
    // The get returned "1" at 10, but the put of "1" was only invoked at 20.
    let report = assert_illegal(&[get(1, "x", "1", 0, 10), put(2, "x", "1", 20, 30)]);
    assert!(report.longest_prefix.is_empty());
    assert_eq!(report.unexplained.len(), 2);
}

#[test]
fn contradictory_orders_of_concurrent_appends() {
    // Both appends are in flight the whole time; one reader sees a before b, the other b before
    // a. Each read alone is fine, together they are not.
    let history = [
        append(1, "x", "a", 0, 100),
        append(2, "x", "b", 0, 100),
        get(3, "x", "ab", 40, 50),
        get(4, "x", "ba", 40, 50),
    ];
    assert_illegal(&history);
    assert_ok(&history[..3]);
    assert_ok(&[history[0].clone(), history[1].clone(), history[3].clone()]);
}

#[test]
fn a_violation_on_one_key_is_found_among_good_keys() {
    let mut history = Vec::new();
    for k in 0..10u64 {
        let key = format!("k{k}");
        history.push(put(k, &key, "v", k, k + 5));
        history.push(get(k, &key, "v", k + 10, k + 15));
    }
    history.push(get(99, "k7", "", 100, 110)); // stale: k7 was put long before
    let report = assert_illegal(&history);
    assert_eq!(report.key, "k7");
}

#[test]
fn report_explains_the_violation() {
    let report = assert_illegal(&[
        put(1, "x", "1", 0, 10),
        put(1, "x", "2", 20, 30),
        get(2, "x", "1", 40, 50),
    ]);
    let text = report.to_string();
    println!("{text}");
    assert!(text.contains("key \"x\""), "{text}");
    assert!(text.contains("2 of 3 operations"), "{text}");
    assert!(text.contains("client 1: put(\"x\", \"2\")  [20, 30]"), "{text}");
    assert!(text.contains("value of the key after it: \"2\""), "{text}");
    assert!(text.contains("client 2: get(\"x\") -> \"1\"  [40, 50]"), "{text}");
}

#[test]
fn long_report_is_abbreviated_unless_alternate() {
    let mut history: Vec<Operation> =
        (0..50u64).map(|i| append(1, "x", "a", i * 10, i * 10 + 5)).collect();
    history.push(get(2, "x", "never", 1000, 1010));
    let report = assert_illegal(&history);
    let short = report.to_string();
    let full = format!("{report:#}");
    assert!(short.contains("30 earlier operations elided"), "{short}");
    assert!(short.lines().count() < full.lines().count());
    assert!(full.contains("   1. client 1: append"), "{full}");
}

// ---- budget ----

/// Many concurrent appends observed only at the end: the search has to try many orders.
fn needs_search() -> Vec<Operation> {
    let mut history: Vec<Operation> =
        (0..8u64).map(|c| append(c, "x", &c.to_string(), 0, 100)).collect();
    history.push(get(9, "x", "76543210", 200, 210));
    history
}

#[test]
fn tiny_budget_gives_unknown() {
    let history = needs_search();
    let (result, stats) = check_kv_with_stats(&history, 1_000_000);
    assert_eq!(result, CheckResult::Ok);
    println!("needs_search: {} steps", stats.steps);
    assert!(stats.steps > 20, "expected real search, took {} steps", stats.steps);

    assert_eq!(check_kv(&history, 10), CheckResult::Unknown);
    // The budget is exact: the steps a check needs are enough, one fewer is not.
    assert_eq!(check_kv(&history, stats.steps), CheckResult::Ok);
    assert_eq!(check_kv(&history, stats.steps - 1), CheckResult::Unknown);
}

#[test]
fn budget_is_shared_across_keys_in_key_order() {
    let mut expensive_good = needs_search();
    let steps_for_x = check_kv_with_stats(&expensive_good, u64::MAX).1.steps;
    let cheap_bad = [put(1, "a", "1", 0, 10), get(2, "a", "", 20, 30)];

    // Key "a" sorts first: its violation is found before the budget runs out on "x".
    expensive_good.extend(cheap_bad.iter().cloned());
    assert!(check_kv(&expensive_good, 20).is_illegal());

    // Renamed to sort after "x", the same violation is never reached within that budget.
    let late_bad: Vec<Operation> = cheap_bad
        .iter()
        .map(|op| {
            let mut op = op.clone();
            op.input = match op.input {
                kvraft_linearizability::KvInput::Put { value, .. } => {
                    kvraft_linearizability::KvInput::Put { key: "z".into(), value }
                }
                _ => kvraft_linearizability::KvInput::Get { key: "z".into() },
            };
            op
        })
        .collect();
    let mut history = needs_search();
    history.extend(late_bad);
    assert_eq!(check_kv(&history, 20), CheckResult::Unknown);
    assert!(check_kv(&history, steps_for_x + 100).is_illegal());
}

#[test]
fn same_history_same_steps() {
    let history = needs_search();
    let a = check_kv_with_stats(&history, 1_000_000);
    let b = check_kv_with_stats(&history, 1_000_000);
    assert_eq!(a, b);
}

#[test]
#[should_panic(expected = "returns at 5 before its call at 10")]
fn rejects_an_interval_that_ends_before_it_starts() {
    check_kv(&[get(1, "x", "", 10, 5)], BUDGET);
}
