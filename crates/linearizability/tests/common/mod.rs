//! Shared helpers for the integration tests: a deterministic PRNG and a generator of histories
//! that are linearizable by construction.
//!
//! The generator simulates a correct store: each operation gets a random interval and a random
//! instant inside it at which it "takes effect"; applying the operations to per-key registers in
//! the order of those instants decides what every Get returns. That order is then a valid
//! linearization, so the checker must accept the history.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;

use kvraft_linearizability::{KvInput, Operation};
use proptest::prelude::*;
use proptest::sample::Index;

/// SplitMix64: tiny, deterministic, good enough to shape test histories.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`, `n > 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

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
    let mut rng = Rng::new(seed);
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
