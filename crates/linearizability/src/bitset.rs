//! The set of operations linearized so far on the current search path.
//!
//! It is half of every memo-cache key, through its fingerprint: a Zobrist-style hash (the XOR
//! of a fixed pseudo-random word per member, see `fingerprint`) updated in O(1) on every
//! insert and remove. The cache stores only that fingerprint, never the bits.

use crate::fingerprint::member_word;

#[derive(Clone, Debug)]
pub(crate) struct Bitset {
    words: Vec<u64>,
    fingerprint: u64,
}

impl Bitset {
    /// An empty set able to hold members `0..len`.
    pub(crate) fn new(len: usize) -> Bitset {
        Bitset { words: vec![0; len.div_ceil(64)], fingerprint: 0 }
    }

    pub(crate) fn contains(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// Adds `i`, which must not be a member yet.
    pub(crate) fn insert(&mut self, i: usize) {
        debug_assert!(!self.contains(i), "bit {i} already set");
        self.words[i / 64] |= 1 << (i % 64);
        self.fingerprint ^= member_word(i);
    }

    /// Removes `i`, which must be a member.
    pub(crate) fn remove(&mut self, i: usize) {
        debug_assert!(self.contains(i), "bit {i} not set");
        self.words[i / 64] &= !(1 << (i % 64));
        self.fingerprint ^= member_word(i);
    }

    /// The XOR of the members' words: equal sets have equal fingerprints, different sets
    /// collide with probability 2^-64 (see `fingerprint`).
    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_round_trips_to_an_empty_fingerprint() {
        let mut s = Bitset::new(130);
        for i in [0, 63, 64, 129] {
            s.insert(i);
            assert!(s.contains(i));
        }
        assert_ne!(s.fingerprint(), 0);
        for i in [64, 0, 129, 63] {
            s.remove(i);
            assert!(!s.contains(i));
        }
        assert_eq!(s.fingerprint(), 0);
        assert!(s.words.iter().all(|&w| w == 0));
    }

    #[test]
    fn same_members_in_any_order_have_the_same_fingerprint() {
        let mut a = Bitset::new(100);
        let mut b = Bitset::new(100);
        for i in [3, 70, 12] {
            a.insert(i);
        }
        for i in [12, 3, 70] {
            b.insert(i);
        }
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.remove(70);
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
