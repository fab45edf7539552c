//! Generated histories: large ones from a simulated linearizable store, the same with one read
//! corrupted, and property tests over small random ones.

mod common;

use common::{
    build, hot_key_spec_strategy, proptest_config, random_history, rewire_reads, rewire_strategy,
    spec_strategy, stalled_history, Generated, Shape, Spec, Stalls,
};
use kvraft_linearizability::{
    check_kv, check_kv_with_stats, check_operations, CheckResult, KvInput, KvModel, Model,
    Operation, Verdict,
};
use proptest::prelude::*;

/// 15 clients over 20 keys, 10_000 operations, every client almost always has one call in
/// flight and calls last up to 50 time units, so operations overlap heavily.
const BIG: Shape = Shape { clients: 15, keys: 20, ops: 10_000, max_duration: 50, max_gap: 5 };

/// Same load squeezed onto 4 keys: ~4 calls in flight per key at any moment. Search cost grows
/// steeply with per-key concurrency (wrongly ordered concurrent appends are only refuted by a
/// later read), so this is where the memoisation earns its keep.
const HOT: Shape = Shape { clients: 15, keys: 4, ops: 3_000, max_duration: 50, max_gap: 5 };

/// Far more than a good history of these sizes should need; the tests also assert the steps
/// actually used stay near-linear in the number of operations.
const BUDGET: u64 = 5_000_000;

#[test]
fn big_generated_history_is_linearizable_in_near_linear_steps() {
    for seed in 1..=3 {
        let generated = random_history(seed, BIG);
        let (result, stats) = check_kv_with_stats(&generated.history, BUDGET);
        println!("BIG seed {seed}: {result}, {} steps, {} keys", stats.steps, stats.partitions);
        assert_eq!(result, CheckResult::Ok);
        assert_eq!(stats.partitions, 20);
        // Each operation's call and return are visited a handful of times when little needs
        // undoing; allow a generous constant factor.
        assert!(stats.steps < 3 * BIG.ops as u64, "took {} steps", stats.steps);
    }
}

#[test]
fn hot_keys_history_is_linearizable() {
    for seed in 1..=3 {
        let generated = random_history(seed, HOT);
        let (result, stats) = check_kv_with_stats(&generated.history, BUDGET);
        println!("HOT seed {seed}: {result}, {} steps", stats.steps);
        assert_eq!(result, CheckResult::Ok);
        assert!(stats.steps < 1_000_000, "took {} steps", stats.steps);
    }
}

/// The index of the Get nearest the middle of the history (by effect order) on a key that has
/// had at least one Put complete strictly before the Get was invoked.
fn middle_get_after_a_completed_put(g: &Generated) -> (usize, usize) {
    let h = &g.history;
    let mid = g.effect_order.len() / 2;
    for &gi in &g.effect_order[mid..] {
        if !matches!(h[gi].input, KvInput::Get { .. }) {
            continue;
        }
        // The latest such Put in effect order.
        let put = g.effect_order.iter().rev().copied().find(|&pi| {
            matches!(h[pi].input, KvInput::Put { .. })
                && h[pi].input.key() == h[gi].input.key()
                && h[pi].ret < h[gi].call
        });
        if let Some(pi) = put {
            return (gi, pi);
        }
    }
    panic!("no suitable Get in the generated history");
}

#[test]
fn big_history_with_one_stale_read_is_illegal() {
    let mut g = random_history(7, BIG);
    let (gi, pi) = middle_get_after_a_completed_put(&g);
    // The value the key had just before that Put: gone for good once the Put returned, since
    // written values are unique and every later value starts with a later Put's value.
    let stale = g.value_before[pi].clone();
    assert_ne!(g.history[gi].output, stale);
    g.history[gi].output = stale;

    let (result, stats) = check_kv_with_stats(&g.history, BUDGET);
    println!("BIG stale read: {} steps", stats.steps);
    let CheckResult::Illegal(report) = result else { panic!("expected Illegal, got {result}") };
    println!("{report}");
    assert_eq!(report.key, g.history[gi].input.key());
    assert!(report.unexplained.contains(&g.history[gi]), "the corrupted read is unexplained");
}

#[test]
fn big_history_with_one_invented_read_is_illegal() {
    let mut g = random_history(8, BIG);
    let (gi, _) = middle_get_after_a_completed_put(&g);
    g.history[gi].output = "never-written".into();
    let (result, stats) = check_kv_with_stats(&g.history, BUDGET);
    println!("BIG invented read: {} steps", stats.steps);
    let CheckResult::Illegal(report) = result else { panic!("expected Illegal, got {result}") };
    assert!(report.unexplained.contains(&g.history[gi]));
}

/// One hot key, five clients, Appends and Gets only, and one call in fifty hanging for up to
/// 2000 time units (40 times the longest normal call) while the other clients go on: the shape
/// of the simulator's runs where a server crashed. A plain Wing & Gong search (even memoised)
/// tries the orders of the concurrent appends between reads one by one and, with hung calls
/// stretching those windows, runs out of any reasonable budget; these take a few steps per
/// operation.
const STALLS: Stalls = Stalls {
    clients: 5,
    ops: 1_000,
    gets_per_mille: 250,
    puts_per_mille: 0,
    stalls_per_mille: 20,
    stall: 2_000,
    max_duration: 50,
    max_gap: 5,
};

#[test]
fn hot_key_with_stalled_calls_is_cheap() {
    let shapes = [
        ("appends", STALLS),
        ("appends, 8 clients", Stalls { clients: 8, ops: 2_000, ..STALLS }),
        ("appends, 10 clients, few reads", Stalls { clients: 10, gets_per_mille: 100, ..STALLS }),
        // Puts: orders of appends that nobody read before a Put overwrote them must be merged.
        ("puts", Stalls { puts_per_mille: 100, ..STALLS }),
        ("puts, 8 clients", Stalls { clients: 8, ops: 2_000, puts_per_mille: 50, ..STALLS }),
    ];
    for (name, shape) in shapes {
        for seed in 1..=3 {
            let g = stalled_history(seed, shape);
            let (result, stats) = check_kv_with_stats(&g.history, BUDGET);
            println!(
                "stalls ({name}) seed {seed}: {result}, {} steps, {} cache entries",
                stats.steps, stats.peak_cache_entries
            );
            assert_eq!(result, CheckResult::Ok, "{name}, seed {seed}");
            // Measured: at most 28 steps and 12.3 cache entries per operation.
            assert!(stats.steps < 50 * shape.ops as u64, "{name}: {} steps", stats.steps);
            assert!(
                stats.peak_cache_entries < 20 * shape.ops,
                "{name}: {} cache entries",
                stats.peak_cache_entries
            );
        }
    }
}

#[test]
fn hot_key_with_stalled_calls_and_one_wrong_read_is_illegal() {
    for (shape, seed) in [(STALLS, 4), (Stalls { puts_per_mille: 100, ..STALLS }, 5)] {
        let mut g = stalled_history(seed, shape);
        // A read in the middle that returns its value with the last appended token dropped:
        // the value existed, but not during the read, as the reader's own client had seen
        // the token already... or someone had. Either way some read or real-time order breaks.
        let h = &g.history;
        let mid = g.effect_order.len() / 2;
        let gi = g.effect_order[mid..]
            .iter()
            .copied()
            .find(|&i| {
                matches!(h[i].input, KvInput::Get { .. })
                    && g.effect_order.iter().any(|&j| {
                        h[j].ret < h[i].call
                            && matches!(&h[j].input, KvInput::Append { value, .. }
                                if h[i].output.ends_with(value.as_str()))
                    })
            })
            .expect("a read whose last token was appended before it started");
        let KvInput::Append { value: token, .. } = g
            .effect_order
            .iter()
            .map(|&j| &h[j].input)
            .find(|input| {
                matches!(input, KvInput::Append { value, .. } if h[gi].output.ends_with(value.as_str()))
            })
            .cloned()
            .expect("found above")
        else {
            unreachable!()
        };
        let cut = h[gi].output.len() - token.len();
        g.history[gi].output.truncate(cut);

        let (result, stats) = check_kv_with_stats(&g.history, BUDGET);
        println!("stalls with a lost append: {} steps", stats.steps);
        let CheckResult::Illegal(report) = result else { panic!("expected Illegal, got {result}") };
        assert!(report.unexplained.contains(&g.history[gi]), "{report}");
        assert!(stats.steps < 50 * shape.ops as u64, "{} steps", stats.steps);
    }
}

#[test]
fn generated_history_order_does_not_change_the_verdict() {
    let mut g = random_history(11, Shape { ops: 2_000, ..BIG });
    assert!(check_kv(&g.history, BUDGET).is_ok());
    g.history.reverse();
    assert!(check_kv(&g.history, BUDGET).is_ok());
}

/// The KV model without the search's shortcuts (`is_read_only`, `is_monotone`, `blind_write`,
/// `accepts_any_state` left at their defaults), to check that they never change a verdict.
struct PlainKv;

impl Model for PlainKv {
    type State = String;
    type Input = KvInput;
    type Output = String;

    fn init(&self) -> String {
        KvModel.init()
    }

    fn step(&self, state: &String, input: &KvInput, output: &String) -> Option<String> {
        KvModel.step(state, input, output)
    }

    fn partition(&self, history: &[Operation]) -> Vec<Vec<usize>> {
        KvModel.partition(history)
    }
}

fn verdict_kind<S>(v: &Verdict<S>) -> &'static str {
    match v {
        Verdict::Linearizable => "linearizable",
        Verdict::Illegal(_) => "illegal",
        Verdict::Unknown => "unknown",
    }
}

/// Whether `check_kv` (rolling hashes) and the generic checker on the string model agree: same
/// verdict, same steps and cache size (the search is the same; only the representation of the
/// values differs), and for a violation the same report.
fn hash_and_string_models_agree(history: &[Operation]) -> Result<(), TestCaseError> {
    let (hashed, hashed_stats) = check_kv_with_stats(history, 10_000_000);
    let (plain, plain_stats) = check_operations(&KvModel, history, 10_000_000);
    prop_assert_eq!(hashed_stats, plain_stats);
    match (&hashed, &plain) {
        (CheckResult::Ok, Verdict::Linearizable) | (CheckResult::Unknown, Verdict::Unknown) => {}
        (CheckResult::Illegal(report), Verdict::Illegal(failure)) => {
            let prefix: Vec<Operation> =
                failure.longest_prefix.iter().map(|&i| history[i].clone()).collect();
            prop_assert_eq!(&report.longest_prefix, &prefix);
            prop_assert_eq!(&report.value_after_prefix, &failure.state_after_prefix);
        }
        _ => prop_assert!(false, "hashed: {}, string: {:?}", hashed, plain),
    }
    Ok(())
}

fn some_histories() -> impl Strategy<Value = Vec<Spec>> {
    prop_oneof![
        prop::collection::vec(spec_strategy(4, 2, 12), 0..40),
        prop::collection::vec(hot_key_spec_strategy(5, 12, 60), 0..40),
    ]
}

proptest! {
    #![proptest_config(proptest_config(512))]

    /// The rolling-hash model is not trusted blindly: it decides exactly as the string model,
    /// step for step, on linearizable histories and on ones with rewired reads.
    #[test]
    fn hashed_model_agrees_with_string_model(
        specs in some_histories(),
        rewires in rewire_strategy(),
    ) {
        let mut g = build(&specs);
        rewire_reads(&mut g, &rewires, true);
        hash_and_string_models_agree(&g.history)?;
    }

    /// The search's shortcuts (forced reads, dead ends, irrelevant states) never change a
    /// verdict: compare with the plain search on a hot key with hung calls, where they all
    /// fire. (The plain search runs out of budget on about one such history in 5000; those
    /// are skipped.)
    #[test]
    fn shortcuts_agree_with_plain_search_on_a_hot_key(
        specs in prop::collection::vec(hot_key_spec_strategy(5, 12, 60), 1..30),
        rewires in rewire_strategy(),
    ) {
        let mut g = build(&specs);
        rewire_reads(&mut g, &rewires, true);
        let (plain, _) = check_operations(&PlainKv, &g.history, 1_000_000);
        prop_assume!(plain != Verdict::Unknown);
        let (fast, _) = check_operations(&KvModel, &g.history, u64::MAX);
        prop_assert_eq!(verdict_kind(&fast), verdict_kind(&plain), "{:?}", g.history);
    }

    /// Whatever the overlap pattern, a history produced by a linearizable store is accepted.
    #[test]
    fn random_linearizable_histories_are_ok(
        specs in prop::collection::vec(spec_strategy(4, 3, 12), 0..40),
    ) {
        let g = build(&specs);
        let result = check_kv(&g.history, 10_000_000);
        prop_assert!(result.is_ok(), "{}\n{:?}", result, g.history);
    }

    /// And a read of a value no one wrote is always caught.
    #[test]
    fn an_invented_read_is_always_illegal(
        specs in prop::collection::vec(spec_strategy(4, 2, 12), 1..30),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut g = build(&specs);
        // Whatever the picked operation was, it becomes a read of a value no one wrote.
        let op = &mut g.history[pick.index(specs.len())];
        op.input = KvInput::Get { key: op.input.key().to_string() };
        op.output = "invented".into();
        let result = check_kv(&g.history, 10_000_000);
        prop_assert!(result.is_illegal(), "{}", result);
    }

    /// The verdict and the step count depend only on the history and the budget.
    #[test]
    fn checking_is_deterministic(
        specs in prop::collection::vec(spec_strategy(3, 2, 12), 0..30),
        budget in 0..2_000u64,
    ) {
        let g = build(&specs);
        let first = check_kv_with_stats(&g.history, budget);
        prop_assert_eq!(first, check_kv_with_stats(&g.history, budget));
    }

    /// Reads placed without alternatives (`is_read_only`) never change a verdict: compare with
    /// the plain search on histories where some reads were rewired to plausible but possibly
    /// wrong values (another point in the same key's past).
    #[test]
    fn read_shortcut_agrees_with_plain_search(
        specs in prop::collection::vec(spec_strategy(4, 2, 12), 1..30),
        rewires in rewire_strategy(),
    ) {
        let mut g = build(&specs);
        rewire_reads(&mut g, &rewires, true);
        let (fast, _) = check_operations(&KvModel, &g.history, 10_000_000);
        let (plain, _) = check_operations(&PlainKv, &g.history, 10_000_000);
        prop_assert_eq!(verdict_kind(&fast), verdict_kind(&plain), "{:?}", g.history);
    }
}
