//! The key/value model the checker runs: [`KvModel`](crate::KvModel)'s semantics, with each
//! value represented by a polynomial rolling hash and its length, so a state is 16 bytes and
//! every step is O(1) however long the values grow.
//!
//! A byte string `s` of length `n` is represented by `(H(s), n)` with
//! `H(s) = Σ s[i]·B^(n-1-i) mod p`, `p = 2^61 - 1` (a Mersenne prime, so reduction is a shift and
//! an add) and `B` a fixed base. Then `H(a ++ b) = H(a)·B^|b| + H(b)`, so with `H(token)` and
//! `B^|token|` precomputed per operation, an Append is one multiply-add, a Put a copy, and a Get
//! one comparison with its output's precomputed `(H(output), |output|)`.
//!
//! For [`Model::may_accept_later`] (append-only pruning) each distinct Get output also gets a
//! table of the hashes of all its prefixes, so "the current value is a prefix of this Get's
//! output" is one lookup. A table is shared by every output that is a prefix of another output
//! of the same key already tabled (on an append-only key, usually all of them), so memory stays
//! about 8 bytes per byte of the longest value per key.
//!
//! # Collisions
//! Equal strings always get equal representations, so a hash never rejects what the real model
//! accepts. Two different strings of equal length `L` get the same hash for at most `L - 1`
//! bases `B` out of `p` (the roots of their difference polynomial), i.e. with probability below
//! `L/p ≈ L · 4.3·10^-19` for a base drawn at random independently of the history; `B` is a
//! fixed constant and the histories are not built against it, and heuristically a collision has
//! probability about `1/p` per comparison. Over 10^8 comparisons of 50 KB values the provable
//! bound is 2·10^-6, the heuristic one 4·10^-11.
//!
//! A false equality could wrongly accept a Get. `check_kv` never trusts that for a positive
//! answer: every linearization found is replayed on real strings before `Ok` is returned (see
//! `kv_check`). It could, very rarely, make an illegal verdict wrong (a forced read accepted by
//! mistake, or a memo-cache collision, see `fingerprint`).

use std::collections::BTreeMap;

use crate::fingerprint::mix64;
use crate::kv_model::{KvInput, Operation};
use crate::model::{Model, Op};

/// The modulus, the Mersenne prime 2^61 - 1.
const P: u64 = (1 << 61) - 1;
/// The base: any fixed number in `2..P-1`; this one has no structure.
const B: u64 = 0x0A1B_2C3D_4E5F_6071;

fn reduce(x: u128) -> u64 {
    // x = hi·2^61 + lo ≡ hi + lo (mod p), as 2^61 ≡ 1.
    let folded = (x as u64 & P) as u128 + (x >> 61);
    let r = (folded as u64 & P) + (folded >> 61) as u64;
    if r >= P {
        r - P
    } else {
        r
    }
}

fn mul(a: u64, b: u64) -> u64 {
    reduce(a as u128 * b as u128)
}

fn add(a: u64, b: u64) -> u64 {
    let r = a + b; // both < 2^61: no overflow
    if r >= P {
        r - P
    } else {
        r
    }
}

/// `B^n mod p`.
fn base_pow(mut n: u64) -> u64 {
    let (mut result, mut square) = (1, B);
    while n > 0 {
        if n & 1 == 1 {
            result = mul(result, square);
        }
        square = mul(square, square);
        n >>= 1;
    }
    result
}

/// `H(s)`.
fn hash(s: &[u8]) -> u64 {
    s.iter().fold(0, |h, &byte| add(mul(h, B), u64::from(byte)))
}

/// `H` of every prefix of `s`, by length: `[H(""), H(s[..1]), ..., H(s)]`.
fn prefix_hashes(s: &[u8]) -> Vec<u64> {
    let mut table = Vec::with_capacity(s.len() + 1);
    table.push(0);
    let mut h = 0;
    for &byte in s {
        h = add(mul(h, B), u64::from(byte));
        table.push(h);
    }
    table
}

/// A key's value, as its hash and its length in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct HashedValue {
    hash: u64,
    len: u64,
}

/// A call with everything the model needs precomputed. The Get's expected output is part of
/// the input here, so the output is `()`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HashedInput {
    /// Returned the first `len` bytes of prefix table `table`, whose hash is `hash`.
    Get {
        key: u32,
        table: u32,
        len: u64,
        hash: u64,
    },
    Put {
        key: u32,
        value: HashedValue,
    },
    /// Appends a token with the given hash and length; `shift` is `B^len`.
    Append {
        key: u32,
        token: HashedValue,
        shift: u64,
    },
}

impl HashedInput {
    fn key(&self) -> u32 {
        match *self {
            HashedInput::Get { key, .. }
            | HashedInput::Put { key, .. }
            | HashedInput::Append { key, .. } => key,
        }
    }
}

/// The rolling-hash key/value model for one history (it owns that history's prefix tables).
#[derive(Debug)]
pub(crate) struct HashedKvModel {
    tables: Vec<Vec<u64>>,
}

impl HashedKvModel {
    /// Compiles `history` for the model. Keys are numbered in key order, so partitions come out
    /// in the same order as [`KvModel`](crate::KvModel)'s and operation `i` stays operation `i`.
    pub(crate) fn compile(history: &[Operation]) -> (HashedKvModel, Vec<Op<HashedInput, ()>>) {
        let mut key_ids: BTreeMap<&str, u32> = BTreeMap::new();
        for op in history {
            key_ids.insert(op.input.key(), 0);
        }
        for (id, slot) in key_ids.values_mut().enumerate() {
            *slot = u32::try_from(id).expect("fewer than 2^32 keys");
        }

        // Distinct Get outputs per key, longest first, so that a table built for an output can
        // serve the shorter outputs that are its prefixes.
        let mut outputs: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
        for op in history {
            if let KvInput::Get { key } = &op.input {
                outputs.entry(key_ids[key.as_str()]).or_default().push(&op.output);
            }
        }
        let mut tables: Vec<Vec<u64>> = Vec::new();
        let mut where_tabled: BTreeMap<(u32, &str), u32> = BTreeMap::new();
        for (&key, outs) in &mut outputs {
            outs.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
            outs.dedup();
            // Tables of this key's outputs, with the output each was built from.
            let mut key_tables: Vec<(&str, u32)> = Vec::new();
            for &out in outs.iter() {
                // Only a few candidates are tried, so that many unrelated values (a key that is
                // mostly Put) cost linear time; a miss only costs a table.
                let found = key_tables
                    .iter()
                    .rev()
                    .take(8)
                    .find(|(longer, _)| longer.as_bytes().starts_with(out.as_bytes()));
                let table = match found {
                    Some(&(_, table)) => table,
                    None => {
                        let table = u32::try_from(tables.len()).expect("fewer than 2^32 tables");
                        tables.push(prefix_hashes(out.as_bytes()));
                        key_tables.push((out, table));
                        table
                    }
                };
                where_tabled.insert((key, out), table);
            }
        }

        let compiled = history
            .iter()
            .map(|op| {
                let key = key_ids[op.input.key()];
                let input = match &op.input {
                    KvInput::Get { .. } => {
                        let table = where_tabled[&(key, op.output.as_str())];
                        let len = op.output.len() as u64;
                        HashedInput::Get {
                            key,
                            table,
                            len,
                            hash: tables[table as usize][len as usize],
                        }
                    }
                    KvInput::Put { value, .. } => HashedInput::Put {
                        key,
                        value: HashedValue {
                            hash: hash(value.as_bytes()),
                            len: value.len() as u64,
                        },
                    },
                    KvInput::Append { value, .. } => HashedInput::Append {
                        key,
                        token: HashedValue {
                            hash: hash(value.as_bytes()),
                            len: value.len() as u64,
                        },
                        shift: base_pow(value.len() as u64),
                    },
                };
                Op { client_id: op.client_id, input, output: (), call: op.call, ret: op.ret }
            })
            .collect();
        (HashedKvModel { tables }, compiled)
    }
}

impl Model for HashedKvModel {
    type State = HashedValue;
    type Input = HashedInput;
    type Output = ();

    fn init(&self) -> HashedValue {
        HashedValue { hash: 0, len: 0 }
    }

    fn fingerprint(&self, state: &HashedValue) -> u64 {
        // `mix64` is a bijection and `mix64(hash)` looks uniform, so distinct states collide
        // with probability about 2^-64 (beyond distinct strings sharing a hash, see above).
        mix64(mix64(state.hash) ^ state.len)
    }

    fn step(&self, state: &HashedValue, input: &HashedInput, _: &()) -> Option<HashedValue> {
        match *input {
            HashedInput::Get { len, hash, .. } => {
                (state.len == len && state.hash == hash).then_some(*state)
            }
            HashedInput::Put { value, .. } => Some(value),
            HashedInput::Append { token, shift, .. } => Some(HashedValue {
                hash: add(mul(state.hash, shift), token.hash),
                len: state.len + token.len,
            }),
        }
    }

    fn is_read_only(&self, input: &HashedInput) -> bool {
        matches!(input, HashedInput::Get { .. })
    }

    /// Appends only extend the value: the order is "is a prefix of".
    fn is_monotone(&self, input: &HashedInput) -> bool {
        matches!(input, HashedInput::Get { .. } | HashedInput::Append { .. })
    }

    /// Only a Get can be refused.
    fn accepts_any_state(&self, input: &HashedInput, _: &()) -> bool {
        !matches!(input, HashedInput::Get { .. })
    }

    /// A Put sets the value whatever it was.
    fn blind_write(&self, input: &HashedInput, _: &()) -> Option<HashedValue> {
        match *input {
            HashedInput::Put { value, .. } => Some(value),
            HashedInput::Get { .. } | HashedInput::Append { .. } => None,
        }
    }

    /// A Get can be answered by an extension of the current value iff that value is a prefix
    /// of its output.
    fn may_accept_later(&self, state: &HashedValue, input: &HashedInput, _: &()) -> bool {
        match *input {
            HashedInput::Get { table, len, .. } => {
                state.len <= len && self.tables[table as usize][state.len as usize] == state.hash
            }
            HashedInput::Put { .. } | HashedInput::Append { .. } => true,
        }
    }

    /// One part per key, in key order (key ids are assigned in key order).
    fn partition(&self, history: &[Op<HashedInput, ()>]) -> Vec<Vec<usize>> {
        let mut by_key: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, op) in history.iter().enumerate() {
            by_key.entry(op.input.key()).or_default().push(i);
        }
        by_key.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> HashedValue {
        HashedValue { hash: hash(s.as_bytes()), len: s.len() as u64 }
    }

    #[test]
    fn modular_arithmetic_matches_u128() {
        let samples = [0, 1, 2, B, P - 1, P - 2, 1 << 60, (1 << 61) - 2, 12_345_678_901_234_567];
        for &a in &samples {
            for &b in &samples {
                let (a, b) = (a % P, b % P);
                assert_eq!(mul(a, b) as u128, a as u128 * b as u128 % P as u128, "{a} * {b}");
                assert_eq!(add(a, b) as u128, (a as u128 + b as u128) % P as u128, "{a} + {b}");
            }
        }
        assert_eq!(base_pow(0), 1);
        assert_eq!(base_pow(5), (0..5).fold(1, |acc, _| mul(acc, B)));
    }

    #[test]
    fn append_composes_hashes() {
        let history = vec![
            Operation::put(1, "k", "hello", 0, 1),
            Operation::append(1, "k", ", world", 2, 3),
            Operation::get(1, "k", "hello, world", 4, 5),
            Operation::get(1, "k", "hello", 4, 5),
        ];
        let (model, ops) = HashedKvModel::compile(&history);
        let s = model.step(&model.init(), &ops[0].input, &()).unwrap();
        assert_eq!(s, value("hello"));
        let s = model.step(&s, &ops[1].input, &()).unwrap();
        assert_eq!(s, value("hello, world"));
        assert_eq!(model.step(&s, &ops[2].input, &()), Some(s));
        assert_eq!(model.step(&s, &ops[3].input, &()), None);
        // Both outputs share one prefix table.
        assert_eq!(model.tables.len(), 1);
        // "hello" can still become "hello, world", not the other way round.
        assert!(model.may_accept_later(&value("hello"), &ops[2].input, &()));
        assert!(model.may_accept_later(&value(""), &ops[2].input, &()));
        assert!(!model.may_accept_later(&value("hello, world"), &ops[3].input, &()));
        assert!(!model.may_accept_later(&value("help"), &ops[2].input, &()));
    }

    #[test]
    fn keys_are_numbered_in_key_order() {
        let history = vec![Operation::get(1, "b", "", 0, 1), Operation::get(1, "a", "", 0, 1)];
        let (model, ops) = HashedKvModel::compile(&history);
        assert_eq!(model.partition(&ops), vec![vec![1], vec![0]]);
    }
}
