//! Majority arithmetic.

use crate::types::LogIndex;

/// The number of votes that make a majority of `voters`.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// The highest index that a majority of peers hold, given every voter's match index.
/// (Whether it may be committed also depends on its term: see `RawNode::maybe_commit`.)
pub fn majority_match(matches: &[LogIndex]) -> LogIndex {
    assert!(!matches.is_empty(), "a cluster has at least one voter");
    let mut sorted = matches.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted[majority(matches.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_cases() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(4), 3);
        assert_eq!(majority_match(&[LogIndex(5)]), LogIndex(5));
        assert_eq!(majority_match(&[LogIndex(5), LogIndex(3), LogIndex(9)]), LogIndex(5));
        assert_eq!(majority_match(&[LogIndex(1), LogIndex(2), LogIndex(3), LogIndex(4)]), LogIndex(2));
    }

    proptest! {
        // The definition, checked by brute force: the result is held by a majority, and no
        // higher index is.
        #[test]
        fn majority_match_is_the_highest_index_a_majority_holds(v in proptest::collection::vec(0u64..50, 1..9)) {
            let matches: Vec<LogIndex> = v.iter().copied().map(LogIndex).collect();
            let m = majority_match(&matches);
            let holders = |i: LogIndex| matches.iter().filter(|x| **x >= i).count();
            prop_assert!(holders(m) >= majority(matches.len()));
            prop_assert!(holders(m.next()) < majority(matches.len()));
        }

        // Two majorities of the same cluster always share a member: the root of election safety.
        #[test]
        fn two_majorities_intersect(n in 1usize..10, a in any::<u16>(), b in any::<u16>()) {
            let pick = |mask: u16| (0..n).filter(|i| mask >> i & 1 == 1).collect::<Vec<_>>();
            let (sa, sb) = (pick(a), pick(b));
            if sa.len() >= majority(n) && sb.len() >= majority(n) {
                prop_assert!(sa.iter().any(|x| sb.contains(x)));
            }
        }
    }
}
