//! The generic layer: what one recorded call looks like, and what a sequential specification
//! must provide for the checker to judge a history against it.

use std::hash::Hash;

/// One call in a concurrent history: what was asked, what came back, and the real-time
/// interval `[call, ret]` (closed at both ends) somewhere inside which it took effect.
///
/// Times are in any unit that only increases (virtual microseconds, ticks, ...). `ret` must be
/// `>= call`. A call that never returned may be recorded with `ret = u64::MAX` when its output
/// does not matter (a write that may or may not have happened); a call whose output is unknown
/// and matters (a read that never came back) should be left out of the history.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Op<I, O> {
    /// Which client issued the call; only used to make reports readable.
    pub client_id: u64,
    /// What was asked.
    pub input: I,
    /// What came back.
    pub output: O,
    /// Invocation time.
    pub call: u64,
    /// Response time, `>= call`.
    pub ret: u64,
}

/// A sequential specification: the states an object can be in and which calls are legal in each.
///
/// The checker explores orders of the history's calls, so `step` must be a pure function of its
/// arguments: the same state, input and output must always give the same answer.
pub trait Model {
    /// The object's state. `Eq + Hash` because the search remembers which (linearized set,
    /// state) pairs it has already explored; `Clone` because it backtracks.
    type State: Clone + Eq + Hash;
    /// What a call asks for.
    type Input;
    /// What a call returned.
    type Output;

    /// The state before any call.
    fn init(&self) -> Self::State;

    /// The state after `input` is applied to `state` and answers `output`, or `None` if the
    /// object could not have answered `output` in `state`.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;

    /// Whether a call with this input can never change the state: for every state, `step`
    /// either rejects it or returns that same state (a read).
    ///
    /// The search uses it to cut its work: when such a call can be linearized next and the model
    /// accepts it, a solution exists from here iff one exists with that call placed right now
    /// (moving a read earlier changes no state, and it may go first because nothing unplaced
    /// returned before it was invoked). So the search places it and never tries alternatives
    /// at that point. Answering `false` is always safe, just slower; answering `true` wrongly
    /// makes the checker reject linearizable histories.
    fn is_read_only(&self, _input: &Self::Input) -> bool {
        false
    }

    /// Splits a history into independent sub-histories (as indices into `history`), each to be
    /// checked on its own. A history is linearizable iff every part is, when the parts touch
    /// disjoint pieces of state (P-compositionality, e.g. one part per key), and checking them
    /// separately is far cheaper than checking the whole. Every index must appear in exactly
    /// one part; parts are checked in the order returned.
    ///
    /// The default keeps the whole history as one part.
    fn partition(&self, history: &[Op<Self::Input, Self::Output>]) -> Vec<Vec<usize>> {
        vec![(0..history.len()).collect()]
    }
}
