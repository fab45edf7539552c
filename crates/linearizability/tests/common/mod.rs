//! Shared helpers for the integration tests: a generator of histories that are linearizable by
//! construction, drawn from the workspace's one deterministic PRNG ([`DetRng`]).
//!
//! The generator simulates a correct store: each operation gets a random interval and a random
//! instant inside it at which it "takes effect"; applying the operations to per-key registers in
//! the order of those instants decides what every Get returns. That order is then a valid
//! linearization, so the checker must accept the history.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;

use kvraft_linearizability::{KvInput, Operation};
use kvraft_raft::DetRng;
use proptest::prelude::*;
use proptest::sample::Index;

/// What kind of call an operation makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Get,
    Put,
    Append,
}

/// The shape of one operation before the simulated store fills in its output.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub client: u64,
    pub key: u64,
    pub kind: Kind,
    /// Idle time since the client's previous operation returned.
    pub gap: u64,
    pub duration: u64,
    /// Where in `[call, ret]` it takes effect, as a fraction `0..=100` of the duration.
    pub effect_pct: u64,
}

/// A generated history plus what the simulated store saw, for tests that corrupt it.
#[derive(Clone, Debug)]
pub struct Generated {
    pub history: Vec<Operation>,
    /// Indices into `history` in the order the operations took effect (a valid linearization).
    pub effect_order: Vec<usize>,
    /// For each operation, its key's value just before it took effect.
    pub value_before: Vec<String>,
}

/// Builds a linearizable history from operation shapes. Each client's operations run one after
/// another, in the order they appear in `specs`. Written values are unique (`p<i>;` for Puts,
/// `a<i>;` for Appends), so no value can ever reappear by coincidence.
pub fn build(specs: &[Spec]) -> Generated {
    let mut free_at: HashMap<u64, u64> = HashMap::new();
    let mut history = Vec::with_capacity(specs.len());
    let mut effect_at = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        let call = free_at.get(&s.client).copied().unwrap_or(0) + s.gap;
        let ret = call + s.duration;
        free_at.insert(s.client, ret + 1);
        effect_at.push(call + s.duration * s.effect_pct.min(100) / 100);
        let key = format!("k{}", s.key);
        history.push(match s.kind {
            Kind::Get => Operation::get(s.client, key, "", call, ret),
            Kind::Put => Operation::put(s.client, key, format!("p{i};"), call, ret),
            Kind::Append => Operation::append(s.client, key, format!("a{i};"), call, ret),
        });
    }

    // Ties between equal instants go by index: any fixed order of simultaneous effects is fine.
    let mut effect_order: Vec<usize> = (0..history.len()).collect();
    effect_order.sort_by_key(|&i| (effect_at[i], i));
    let mut values: HashMap<String, String> = HashMap::new();
    let mut value_before = vec![String::new(); history.len()];
    for &i in &effect_order {
        let op = &mut history[i];
        let value = values.entry(op.input.key().to_string()).or_default();
        value_before[i] = value.clone();
        match &op.input {
            KvInput::Get { .. } => op.output = value.clone(),
            KvInput::Put { value: v, .. } => *value = v.clone(),
            KvInput::Append { value: v, .. } => value.push_str(v),
        }
    }
    Generated { history, effect_order, value_before }
}

/// Sizes and timing of a random history.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub clients: u64,
    pub keys: u64,
    pub ops: usize,
    /// Operations last `0..=max_duration` time units.
    pub max_duration: u64,
    /// Clients idle `0..=max_gap` between operations.
    pub max_gap: u64,
}

/// A random linearizable history: clients take turns at random, keys and kinds are uniform
/// (Gets 40%, Puts 30%, Appends 30%).
pub fn random_history(seed: u64, shape: Shape) -> Generated {
    let mut rng = DetRng::new(seed);
    let specs: Vec<Spec> = (0..shape.ops)
        .map(|_| Spec {
            client: rng.below(shape.clients),
            key: rng.below(shape.keys),
            kind: match rng.below(10) {
                0..=3 => Kind::Get,
                4..=6 => Kind::Put,
                _ => Kind::Append,
            },
            gap: rng.below(shape.max_gap + 1),
            duration: rng.below(shape.max_duration + 1),
            effect_pct: rng.below(101),
        })
        .collect();
    build(&specs)
}

/// Proptest settings for these tests. No regression file: proptest cannot place one for an
/// integration test; a failure prints the minimal history instead.
pub fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Random operation shapes: `clients` clients, `keys` keys, calls lasting `0..max_duration`.
pub fn spec_strategy(clients: u64, keys: u64, max_duration: u64) -> impl Strategy<Value = Spec> {
    (0..clients, 0..keys, 0..3u8, 0..4u64, 0..max_duration, 0..=100u64).prop_map(
        |(client, key, kind, gap, duration, effect_pct)| Spec {
            client,
            key,
            kind: [Kind::Get, Kind::Put, Kind::Append][kind as usize],
            gap,
            duration,
            effect_pct,
        },
    )
}

/// Random operation shapes on one hot key: `clients` clients, mostly Appends (Gets 3/8, Puts
/// 1/8), calls lasting `0..max_duration`, except that one in eight hangs for
/// `stall..2*stall` (a server crashed), so that it overlaps many others.
pub fn hot_key_spec_strategy(
    clients: u64,
    max_duration: u64,
    stall: u64,
) -> impl Strategy<Value = Spec> {
    let kind = prop_oneof![3 => Just(Kind::Get), 1 => Just(Kind::Put), 4 => Just(Kind::Append)];
    let duration = prop_oneof![7 => 0..max_duration, 1 => stall..2 * stall];
    (0..clients, kind, 0..4u64, duration, 0..=100u64).prop_map(
        |(client, kind, gap, duration, effect_pct)| Spec {
            client,
            key: 0,
            kind,
            gap,
            duration,
            effect_pct,
        },
    )
}

/// Up to three (target, source) picks for [`rewire_reads`].
pub fn rewire_strategy() -> impl Strategy<Value = Vec<(Index, Index)>> {
    prop::collection::vec((any::<Index>(), any::<Index>()), 0..4)
}

/// Makes each picked target, if it is a Get, return the value its key had just before the
/// picked source operation: a value that did exist at some point, so the result is plausible
/// but often not linearizable. Rewiring across keys is allowed when `same_key_only` is false.
pub fn rewire_reads(g: &mut Generated, picks: &[(Index, Index)], same_key_only: bool) {
    let n = g.history.len();
    if n == 0 {
        return;
    }
    for (target, source) in picks {
        let (t, s) = (target.index(n), source.index(n));
        let is_get = matches!(g.history[t].input, KvInput::Get { .. });
        if is_get && (!same_key_only || g.history[t].input.key() == g.history[s].input.key()) {
            g.history[t].output = g.value_before[s].clone();
        }
    }
}

/// Reads a history in the simulator's tab-separated format: one operation per line, fields
/// client_id, kind (`get`, `put` or `append`), key, value (written, or returned by a get; may
/// be empty), call time, return time.
pub fn load_tsv(path: &std::path::Path) -> Vec<Operation> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_tsv(&text)
}

pub fn parse_tsv(text: &str) -> Vec<Operation> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(n, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [client, kind, key, value, call, ret] = fields[..] else {
                panic!("line {}: expected 6 tab-separated fields: {line:?}", n + 1)
            };
            let number = |s: &str| -> u64 {
                s.parse().unwrap_or_else(|_| panic!("line {}: not a number: {s:?}", n + 1))
            };
            let (client, call, ret) = (number(client), number(call), number(ret));
            match kind {
                "get" => Operation::get(client, key, value, call, ret),
                "put" => Operation::put(client, key, value, call, ret),
                "append" => Operation::append(client, key, value, call, ret),
                _ => panic!("line {}: unknown kind {kind:?}", n + 1),
            }
        })
        .collect()
}

/// Writes a history in the format [`parse_tsv`] reads (for looking at a generated history with
/// other tools).
pub fn to_tsv(history: &[Operation]) -> String {
    let mut out = String::new();
    for op in history {
        let (kind, value) = match &op.input {
            KvInput::Get { .. } => ("get", op.output.as_str()),
            KvInput::Put { value, .. } => ("put", value.as_str()),
            KvInput::Append { value, .. } => ("append", value.as_str()),
        };
        let key = op.input.key();
        out.push_str(&format!(
            "{}\t{kind}\t{key}\t{value}\t{}\t{}\n",
            op.client_id, op.call, op.ret
        ));
    }
    out
}

/// The shape of a history like the simulator's fault-injection runs on a hot key: a few
/// clients on one key, and now and then a call that hangs for a long time (its server crashed
/// or was cut off) while the other clients carry on.
#[derive(Clone, Copy, Debug)]
pub struct Stalls {
    pub clients: u64,
    pub ops: usize,
    /// Out of 1000 operations, how many are Gets and Puts; the rest are Appends.
    pub gets_per_mille: u64,
    pub puts_per_mille: u64,
    /// Out of 1000 operations, how many hang; a hung call lasts `stall/2..=stall`.
    pub stalls_per_mille: u64,
    pub stall: u64,
    /// Other calls last `0..=max_duration`, with `0..=max_gap` between a client's calls.
    pub max_duration: u64,
    pub max_gap: u64,
}

/// A linearizable history of that shape, all on key "k". Every call takes effect at a uniformly
/// random instant of its interval, hung ones included.
pub fn stalled_history(seed: u64, shape: Stalls) -> Generated {
    let mut rng = DetRng::new(seed);
    let specs: Vec<Spec> = (0..shape.ops)
        .map(|_| {
            let roll = rng.below(1000);
            let kind = if roll < shape.gets_per_mille {
                Kind::Get
            } else if roll < shape.gets_per_mille + shape.puts_per_mille {
                Kind::Put
            } else {
                Kind::Append
            };
            let duration = if rng.below(1000) < shape.stalls_per_mille {
                shape.stall / 2 + rng.below(shape.stall / 2 + 1)
            } else {
                rng.below(shape.max_duration + 1)
            };
            Spec {
                client: rng.below(shape.clients),
                key: 0,
                kind,
                gap: rng.below(shape.max_gap + 1),
                duration,
                effect_pct: rng.below(101),
            }
        })
        .collect();
    build(&specs)
}
