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
    /// The object's state. `Hash` because the search remembers which (linearized set, state)
    /// pairs it has already explored, by fingerprint (see [`Model::fingerprint`]); `Clone`
    /// because it backtracks. Keep it small: the search clones it once per placement.
    type State: Clone + Eq + Hash;
    /// What a call asks for.
    type Input;
    /// What a call returned.
    type Output;

    /// The state before any call.
    fn init(&self) -> Self::State;

    /// A 64-bit fingerprint of `state`, stored in the memo cache instead of the state itself.
    ///
    /// It must be deterministic (never seeded at run time) and equal states must have equal
    /// fingerprints. Different states should collide with probability about 2^-64: a collision
    /// can make the search skip a configuration it has not explored, which can only turn a
    /// linearizable verdict into an illegal one, never the reverse (see the crate's
    /// `fingerprint` module for the odds). The default feeds the state's `Hash` to a fixed-key
    /// hasher; it costs time proportional to the state's size, so a model with large states
    /// may rather keep a fingerprint inside its state.
    fn fingerprint(&self, state: &Self::State) -> u64 {
        use std::hash::BuildHasher;
        crate::fingerprint::StableBuild::default().hash_one(state)
    }

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

    /// Whether a call with this input can only move the state forward, for the order on states
    /// that [`Model::may_accept_later`] is about: whenever `step` accepts it in state `s`, the
    /// new state `s'` satisfies `s ⊑ s'` (a preorder the model chooses; for an append-only
    /// register, "is a prefix of"). Reads are forward moves (`s ⊑ s`).
    ///
    /// Together with `may_accept_later` it lets the search drop a configuration early: while
    /// every operation still to be linearized moves forward, every state the rest of the path
    /// can reach is `⊒` the current one, so an operation still to be linearized that
    /// `may_accept_later` rules out in the current state can never be placed, and no
    /// linearization exists from here (see also [`Model::blind_write`]). The default,
    /// `false`, turns this off.
    fn is_monotone(&self, _input: &Self::Input) -> bool {
        false
    }

    /// Whether `step` accepts this call in every state (an Append, a Put). Used with
    /// [`Model::blind_write`] to recognise states that can no longer matter: when every call
    /// that could still be placed before the next blind write is accepted in any state or
    /// cannot be accepted in any state `⊒` the current one, the search does not tell apart
    /// configurations that differ only in their state. Answering `false` (the default) is
    /// always safe; answering `true` wrongly can make the checker reject linearizable
    /// histories.
    fn accepts_any_state(&self, _input: &Self::Input, _output: &Self::Output) -> bool {
        false
    }

    /// `Some(s)` if `step` accepts this call in every state and always leads to state `s` (a
    /// blind write, such as a Put). With blind writes left to place, the dead-end test of
    /// [`Model::is_monotone`] still works: each state to come is `⊒` the current state or `⊒`
    /// the state of a blind write still to be placed. A call that is neither monotone nor a
    /// blind write turns the test off until it is placed. The default is `None`; answering
    /// `Some` wrongly can make the checker reject linearizable histories.
    fn blind_write(&self, _input: &Self::Input, _output: &Self::Output) -> Option<Self::State> {
        None
    }

    /// Whether some state `s'` with `state ⊑ s'` (the order of [`Model::is_monotone`]) accepts
    /// this call with this output. Answering `true` is always safe; answering `false` when such
    /// an `s'` exists makes the checker reject linearizable histories. The default is `true`.
    fn may_accept_later(
        &self,
        _state: &Self::State,
        _input: &Self::Input,
        _output: &Self::Output,
    ) -> bool {
        true
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
