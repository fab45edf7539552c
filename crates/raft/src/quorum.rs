//! Majority arithmetic over one set of voters. [`crate::membership::Membership`] combines it
//! over the halves of a (possibly joint) configuration; nothing else should count votes.

use crate::types::{LogIndex, Term};

/// The number of votes that make a majority of `voters`.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// Where an election stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted its vote.
    Won,
    /// A quorum refused: the candidate gives up before its election timer runs out.
    Lost,
    /// Neither yet: wait for more answers, or for the election timer.
    Pending,
}

/// The outcome of an election among `voters` voters, of which `granted` granted their vote and
/// `rejected` refused it. It is lost only once a majority refused, even when, with an even
/// number of voters, fewer refusals already make a win impossible: the candidate then waits for
/// its election timer, which is slower but never wrong.
pub fn vote_result(voters: usize, granted: usize, rejected: usize) -> VoteResult {
    let needed = majority(voters);
    if granted >= needed {
        VoteResult::Won
    } else if rejected >= needed {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

/// The highest index that a majority of peers hold, given every voter's match index.
/// (Whether it may be committed also depends on its term: see [`committable_index`].)
pub fn majority_match(matches: &[LogIndex]) -> LogIndex {
    majority_value(matches)
}

/// The highest value that a majority of voters have reached, given one value per voter: a
/// match index, or the ReadIndex round a voter has echoed.
pub fn majority_value<T: Ord + Copy>(values: &[T]) -> T {
    assert!(!values.is_empty(), "a cluster has at least one voter");
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted[majority(values.len()) - 1]
}

/// The index a leader of `current_term` may commit, given `held`, the highest index that a
/// quorum of voters holds (itself included), and the terms of its log: `held`, but only if that
/// entry is of the current term (Raft paper 5.4.2: older entries commit only indirectly, see
/// Figure 8). `None` if nothing new may be committed.
pub fn committable_index(
    held: LogIndex,
    committed: LogIndex,
    current_term: Term,
    term_at: impl Fn(LogIndex) -> Option<Term>,
) -> Option<LogIndex> {
    let from_current_term = term_at(held) == Some(current_term);
    #[cfg(feature = "bug-commit-old-term-by-count")]
    let from_current_term = {
        let _ = from_current_term;
        term_at(held).is_some()
    };
    (held > committed && from_current_term).then_some(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn read_rounds_confirm_at_the_majority_th_highest_echo() {
        // Five voters: the leader (every round), two peers at round 4, two that never echoed.
        assert_eq!(majority_value(&[u64::MAX, 4, 0, 4, 0]), 4);
        // Only one peer echoed: two of five is no majority.
        assert_eq!(majority_value(&[u64::MAX, 7, 0, 0, 0]), 0);
    }

    #[test]
    fn an_election_is_lost_only_once_a_majority_refused() {
        assert_eq!(vote_result(3, 2, 0), VoteResult::Won);
        assert_eq!(vote_result(3, 1, 1), VoteResult::Pending);
        assert_eq!(vote_result(3, 1, 2), VoteResult::Lost);
        // Four voters, two refusals: no win is possible any more, but it is not yet lost.
        assert_eq!(vote_result(4, 1, 2), VoteResult::Pending);
        assert_eq!(vote_result(4, 1, 3), VoteResult::Lost);
        assert_eq!(vote_result(1, 1, 0), VoteResult::Won);
    }

    #[test]
    fn small_cases() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(4), 3);
        assert_eq!(majority_match(&[LogIndex(5)]), LogIndex(5));
        assert_eq!(majority_match(&[LogIndex(5), LogIndex(3), LogIndex(9)]), LogIndex(5));
        assert_eq!(
            majority_match(&[LogIndex(1), LogIndex(2), LogIndex(3), LogIndex(4)]),
            LogIndex(2)
        );
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

        // The commit rule against its definition: the highest index that a majority holds and
        // whose term is the leader's, else nothing. Log terms never decrease along the log.
        #[test]
        fn committable_index_matches_the_definition(
            term_steps in proptest::collection::vec(0u64..2, 1..30),
            current_bump in 0u64..2,
            raw_matches in proptest::collection::vec(0usize..40, 1..8),
            committed in 0u64..10,
        ) {
            let mut terms = vec![Term(0)];
            let mut t = 1;
            for step in &term_steps {
                t += step;
                terms.push(Term(t));
            }
            let last = terms.len() as u64 - 1;
            let current = Term(t + current_bump);
            let matches: Vec<LogIndex> = raw_matches.iter().map(|m| LogIndex((*m as u64).min(last))).collect();
            let committed = LogIndex(committed.min(last));
            let term_at = |i: LogIndex| terms.get(i.0 as usize).copied();
            let got = committable_index(majority_match(&matches), committed, current, term_at);
            let holders = |i: u64| matches.iter().filter(|m| m.0 >= i).count();
            let want = (1..=last)
                .rev()
                .find(|i| holders(*i) >= majority(matches.len()) && terms[*i as usize] == current)
                .map(LogIndex)
                .filter(|i| *i > committed);
            #[cfg(not(feature = "bug-commit-old-term-by-count"))]
            prop_assert_eq!(got, want);
            #[cfg(feature = "bug-commit-old-term-by-count")]
            let _ = (got, want);
        }
    }
}
