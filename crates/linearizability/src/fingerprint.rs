//! Fixed, deterministic 64-bit fingerprints for the memo cache.
//!
//! The search remembers which (linearized set, model state) configurations it has explored. It
//! stores a pair of 64-bit fingerprints per configuration instead of the set and the state
//! themselves, so an entry costs 16 bytes whatever the size of the state (a key's value can be
//! tens of KB) or of the partition.
//!
//! Nothing here is seeded at run time (no `RandomState`): the same history always gives the same
//! fingerprints, hence the same verdict and the same step count.
//!
//! # Collisions
//! Two different configurations with equal fingerprint pairs make the second look "already
//! explored", and the search skips it. That can only prune: a linearizable partition could be
//! misreported as illegal (its only solutions being behind a skipped configuration), but an
//! illegal partition can never be reported linearizable, since `Linearizable` is only answered
//! for a complete path the model accepted step by step.
//!
//! Model the per-member words below and the state fingerprint as random functions. Two
//! configurations that differ in their sets collide with probability 2^-64 (the XOR of the words
//! of the members in the symmetric difference must be zero), and two with the same set but
//! different states collide with the state fingerprint's collision probability, also about
//! 2^-64 (plus the model's own, see `kv_hashed`). The pair does not make it 2^-128 because the
//! two configurations compared may agree on one component. A union bound over the pairs of
//! entries: with n entries the chance of any false hit is at most n²/2 · 2^-64, i.e.
//! 2.7·10^-8 for 10^6 entries and 2.7·10^-4 for 10^8 entries (about 3 GB of cache). (The
//! constant that stands for "state irrelevant" in the search is one more value a state
//! fingerprint could hit, with the same odds.) The checks of the simulator's histories store a
//! few hundred to a few thousand entries per key.

use std::hash::{BuildHasherDefault, Hasher};

/// SplitMix64's finaliser: a bijection on `u64` that mixes every input bit into every output
/// bit.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The Zobrist word of member `i` of a linearized set: the `i+1`-th output of SplitMix64 seeded
/// with 0. A set's fingerprint is the XOR of its members' words.
pub(crate) fn member_word(i: usize) -> u64 {
    mix64((i as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A fixed-key 64-bit hasher, used for the default `Model::fingerprint` and for the memo cache's
/// table. Eight bytes at a time are folded in with a bijective mix; not cryptographic, but
/// well-distributed on states that are not built to collide with it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StableHasher {
    state: u64,
    /// Bytes written so far, folded into the result so that inputs of different lengths differ.
    written: u64,
    /// Up to seven bytes not yet folded in, little-endian, and how many.
    tail: u64,
    tail_len: u32,
}

impl Default for StableHasher {
    fn default() -> StableHasher {
        StableHasher { state: 0x243F_6A88_85A3_08D3, written: 0, tail: 0, tail_len: 0 }
    }
}

impl StableHasher {
    fn fold(&mut self, word: u64) {
        self.state = mix64(self.state ^ word).wrapping_add(0x9E37_79B9_7F4A_7C15);
    }
}

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.written = self.written.wrapping_add(bytes.len() as u64);
        let mut rest = bytes;
        while self.tail_len != 0 && !rest.is_empty() {
            self.tail |= u64::from(rest[0]) << (8 * self.tail_len);
            self.tail_len += 1;
            rest = &rest[1..];
            if self.tail_len == 8 {
                let word = self.tail;
                self.fold(word);
                self.tail = 0;
                self.tail_len = 0;
            }
        }
        let mut chunks = rest.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
            self.fold(word);
        }
        for (i, &b) in chunks.remainder().iter().enumerate() {
            self.tail |= u64::from(b) << (8 * i);
        }
        self.tail_len = chunks.remainder().len() as u32;
    }

    fn write_u64(&mut self, n: u64) {
        if self.tail_len == 0 {
            self.written = self.written.wrapping_add(8);
            self.fold(n);
        } else {
            self.write(&n.to_le_bytes());
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        mix64(self.state ^ mix64(self.tail ^ self.written.rotate_left(56)))
    }
}

/// Builds [`StableHasher`]s, for hash tables keyed by fingerprints.
pub(crate) type StableBuild = BuildHasherDefault<StableHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash_of<T: Hash>(value: &T) -> u64 {
        StableBuild::default().hash_one(value)
    }

    #[test]
    fn is_deterministic_and_independent_of_how_bytes_are_split() {
        let mut a = StableHasher::default();
        a.write(b"hello, world");
        let mut b = StableHasher::default();
        b.write(b"hel");
        b.write(b"lo, wor");
        b.write(b"ld");
        assert_eq!(a.finish(), b.finish());
        assert_eq!(hash_of(&"abc".to_string()), hash_of(&"abc".to_string()));
    }

    // The tests only count distinct hashes: no order is observed.
    #[allow(clippy::disallowed_types)]
    #[test]
    fn distinguishes_nearby_inputs() {
        let mut seen = std::collections::HashSet::new();
        for s in ["", "a", "b", "ab", "ba", "aa", "\0", "\0\0", "abcdefgh", "abcdefgi"] {
            assert!(seen.insert(hash_of(&s.to_string())), "collision on {s:?}");
        }
        for n in 0..10_000u64 {
            assert!(seen.insert(hash_of(&(n, n))), "collision on {n}");
        }
    }

    #[allow(clippy::disallowed_types)]
    #[test]
    fn member_words_are_distinct() {
        let words: std::collections::HashSet<u64> = (0..100_000).map(member_word).collect();
        assert_eq!(words.len(), 100_000);
    }
}
