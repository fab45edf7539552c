//! The set of operations linearized so far on the current search path.
//!
//! It is half of every memo-cache key, so it must hash quickly: besides the bits it keeps a
//! Zobrist-style fingerprint (the XOR of a fixed pseudo-random word per member) that is updated
//! in O(1) on every insert and remove, and `Hash` feeds only that fingerprint. Equality still
//! compares the bits, so a fingerprint collision costs a comparison, never a wrong answer.

use std::hash::{Hash, Hasher};

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
        self.fingerprint ^= member_key(i);
    }

    /// Removes `i`, which must be a member.
    pub(crate) fn remove(&mut self, i: usize) {
        debug_assert!(self.contains(i), "bit {i} not set");
        self.words[i / 64] &= !(1 << (i % 64));
        self.fingerprint ^= member_key(i);
    }
}

impl PartialEq for Bitset {
    fn eq(&self, other: &Bitset) -> bool {
        // Cheap reject first; the words decide.
        self.fingerprint == other.fingerprint && self.words == other.words
    }
}

impl Eq for Bitset {}

impl Hash for Bitset {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Equal sets have equal fingerprints, so this agrees with `Eq`.
        state.write_u64(self.fingerprint);
    }
}

/// A fixed, well-mixed word per member (SplitMix64's finaliser), so that XORs of different
/// sets rarely collide.
fn member_key(i: usize) -> u64 {
    let mut z = (i as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_round_trips_to_an_equal_set() {
        let empty = Bitset::new(130);
        let mut s = empty.clone();
        for i in [0, 63, 64, 129] {
            s.insert(i);
            assert!(s.contains(i));
        }
        assert_ne!(s, empty);
        for i in [64, 0, 129, 63] {
            s.remove(i);
        }
        assert_eq!(s, empty);
        assert_eq!(s.fingerprint, 0);
    }

    #[test]
    fn same_members_in_any_order_are_equal() {
        let mut a = Bitset::new(100);
        let mut b = Bitset::new(100);
        for i in [3, 70, 12] {
            a.insert(i);
        }
        for i in [12, 3, 70] {
            b.insert(i);
        }
        assert_eq!(a, b);
        assert_eq!(a.fingerprint, b.fingerprint);
    }
}
