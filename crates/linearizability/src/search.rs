//! The search for one partition: Wing & Gong's backtracking over candidate linearizations, with
//! Lowe's memoisation of configurations already explored.
//!
//! The list of pending events is scanned from the front. A call event names an operation that
//! may be linearized next (it has been invoked and every earlier-returning operation is already
//! placed); if the model accepts it and the resulting (linearized set, state) configuration is
//! new, it is placed, its events are lifted out of the list, and the scan restarts at the front.
//! A return event reached by the scan belongs to an operation that is not yet placed although
//! it has finished, so nothing still unplaced can be placed before it on this path: undo the
//! last placement and try the candidate after it. Emptying the list proves the partition
//! linearizable; having to undo with nothing placed proves it is not.
//!
//! Memoisation is what keeps this tractable: two paths that placed the same set of operations
//! and reached the same state have identical futures, so the second is cut off at once.
//!
//! One refinement beyond porcupine: forced reads. A read-only candidate the model accepts
//! (`Model::is_read_only`) can be placed now without losing any solution (see that method), so
//! the configuration before it is solvable iff the one after it is. Such a placement therefore
//! has no alternatives: when everything after it fails, backtracking goes straight past it, and
//! when the configuration it leads to was already explored, the current one is dead too. This
//! only prunes work the plain search would have found fruitless (tests compare the two).
//! (Trying reads before writes at each configuration was measured too: it cost more steps.)
//!
//! Two more, for models that describe how their states evolve (all off by default; the
//! key/value models use them), both only ever skipping configurations that have no completion
//! or that share their future with one already explored:
//!
//! - Dead ends (`Model::is_monotone`, `Model::blind_write`, `Model::may_accept_later`). While
//!   every operation still to be placed either moves the state forward in the model's order or
//!   is a blind write (sets a fixed state), every later state on this path is `⊒` the current
//!   one or `⊒` the state of a blind write still to be placed. An operation still to be placed
//!   that none of those can accept never will be, so the configuration is abandoned as soon as
//!   it is reached, instead of when a return event finally forces it, possibly much later with
//!   every order of the operations in between tried first. For the key/value store: a value
//!   that is not a prefix of a pending Get's output can only turn into it through a Put whose
//!   value is such a prefix. Examined: the candidates (the calls in front of the first return
//!   event, which include every operation pending for long) and the first `READ_LOOKAHEAD`
//!   reads not yet invoked (the next reads to come, which pin the order of the appends in
//!   flight).
//! - Irrelevant states (`DeadEnds::state_is_irrelevant`). When the next thing anyone can
//!   observe must come after a blind write, the current state does not matter: configurations
//!   with the same placed operations share one memo entry whatever their states. For the
//!   key/value store: the orders of appends that a Put overwrites before anyone reads them.
//!
//! Both tests depend only on the configuration, never on the path that reached it, so the
//! memoisation stays valid. Tests compare the search with and without them, and with a
//! brute-force oracle.
//!
//! Dead ends cut paths before the model itself objects, so when a partition is not
//! linearizable, the longest path placed is then extended greedily for the report (see
//! `Search::longest_legal_prefix`).
//!
//! The memo cache stores a 64-bit fingerprint of the linearized set (Zobrist, maintained in O(1)
//! by `Bitset`) and the model's 64-bit fingerprint of the state (`Model::fingerprint`): 16
//! bytes per configuration whatever the state's size. See `fingerprint` for the collision odds.

// The memo cache is a HashSet with the fixed `StableHasher`: only inserted into and looked up,
// never iterated, and hashing keeps the search fast. Nothing here depends on an order.
#![allow(clippy::disallowed_types)]

use std::collections::HashSet;
use std::mem;

use crate::bitset::Bitset;
use crate::entries::EntryList;
use crate::fingerprint::StableBuild;
use crate::model::{Model, Op};

/// The deterministic effort limit shared by every partition of one check.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub(crate) used: u64,
    pub(crate) limit: u64,
}

impl Budget {
    /// Takes one step, or reports that none is left.
    fn spend(&mut self) -> bool {
        if self.used >= self.limit {
            return false;
        }
        self.used += 1;
        true
    }
}

/// The verdict on one partition.
#[derive(Debug)]
pub(crate) enum PartitionVerdict<S> {
    /// `order` is a linearization: the partition's operations (indices into the history) in
    /// an order that respects real time and that the model accepted step by step.
    Linearizable {
        order: Vec<usize>,
    },
    /// No linearization exists. `longest_prefix` is the longest sequence of operations (indices
    /// into the history, in linearization order) the search ever managed to place, extended
    /// greedily, and `state_after` the model's state after it.
    Illegal {
        longest_prefix: Vec<usize>,
        state_after: S,
    },
    OutOfBudget,
}

/// Checks the operations `members` (indices into `history`) against `model`. Also returns how
/// many entries the memo cache reached.
pub(crate) fn check_partition<M: Model>(
    model: &M,
    history: &[Op<M::Input, M::Output>],
    members: &[usize],
    budget: &mut Budget,
) -> (PartitionVerdict<M::State>, usize) {
    let ops: Vec<&Op<M::Input, M::Output>> = members.iter().map(|&i| &history[i]).collect();
    let mut search = Search::new(model, &ops);
    let verdict = match search.run(budget) {
        Outcome::Linearizable => {
            let order = search.order.iter().map(|&i| members[i]).collect();
            PartitionVerdict::Linearizable { order }
        }
        Outcome::OutOfBudget => PartitionVerdict::OutOfBudget,
        Outcome::Illegal => {
            let longest_prefix: Vec<usize> =
                search.longest_legal_prefix().iter().map(|&i| members[i]).collect();
            let state_after = replay(model, history, &longest_prefix);
            PartitionVerdict::Illegal { longest_prefix, state_after }
        }
    };
    (verdict, search.explored.len())
}

/// How a search ended; `check_partition` adds the details.
enum Outcome {
    Linearizable,
    Illegal,
    OutOfBudget,
}

/// The memo cache's stand-in for the state's fingerprint when the state cannot matter any more
/// (`DeadEnds::state_is_irrelevant`).
const IRRELEVANT_STATE: u64 = 0x5354_4154_4520_4f46; // "STATE OF"

/// How many events `DeadEnds::state_is_irrelevant` examines at most, so that a blind write
/// left pending for a long time (say, a Put that never returned) does not make every placement
/// walk the rest of the history. On the simulator's histories the walk ends within a few dozen
/// events; beyond that it gives up, which only forgoes the merge.
const IRRELEVANCE_HORIZON: usize = 128;

/// How many reads not yet invoked the dead-end test examines, besides the candidates.
const READ_LOOKAHEAD: usize = 2;

/// The outcome of trying to linearize a candidate next.
enum Placement {
    Placed,
    /// The model does not allow it in the current state.
    Rejected,
    /// Allowed, but the configuration it leads to was explored before (and failed).
    AlreadyExplored,
}

/// One placement on the current path, kept so it can be undone.
struct Placed<S> {
    call_node: usize,
    state_before: S,
    /// A read placed without alternatives: if everything after it fails, so does the
    /// configuration before it.
    forced: bool,
}

/// The search's mutable state for one partition.
struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [&'a Op<M::Input, M::Output>],
    /// `Model::is_read_only` of each operation, asked once.
    read_only: Vec<bool>,
    list: EntryList,
    linearized: Bitset,
    dead_ends: DeadEnds<M::State>,
    /// Fingerprints of the (linearized set, state) configurations explored so far.
    explored: HashSet<(u64, u64), StableBuild>,
    state: M::State,
    path: Vec<Placed<M::State>>,
    /// The operations of `path`, in order (kept apart so `longest` can compare slices).
    order: Vec<usize>,
    longest: LongestPrefix,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, ops: &'a [&'a Op<M::Input, M::Output>]) -> Self {
        let intervals: Vec<(u64, u64)> = ops.iter().map(|op| (op.call, op.ret)).collect();
        let read_only: Vec<bool> = ops.iter().map(|op| model.is_read_only(&op.input)).collect();
        let list = EntryList::build(&intervals);
        Search {
            model,
            ops,
            dead_ends: DeadEnds::new(model, ops, &list, &read_only),
            read_only,
            list,
            linearized: Bitset::new(ops.len()),
            explored: HashSet::default(),
            state: model.init(),
            path: Vec::new(),
            order: Vec::new(),
            longest: LongestPrefix::default(),
        }
    }

    fn run(&mut self, budget: &mut Budget) -> Outcome {
        if self.list.is_empty() {
            return Outcome::Linearizable;
        }
        let mut cursor = self.list.first();
        loop {
            if !budget.spend() {
                return Outcome::OutOfBudget;
            }
            let resume = if self.list.is_call(cursor) {
                let is_read = self.read_only[self.list.op(cursor)];
                match self.try_place(cursor, is_read) {
                    Placement::Placed if self.list.is_empty() => return Outcome::Linearizable,
                    // Placed, but provably without completion (see the module docs).
                    Placement::Placed
                        if self.dead_ends.is_dead_end(
                            self.model,
                            self.ops,
                            &self.list,
                            &self.linearized,
                            &self.state,
                        ) =>
                    {
                        self.backtrack()
                    }
                    Placement::Placed => {
                        cursor = self.list.first();
                        continue;
                    }
                    // The read could go next and changes nothing, so this configuration is as
                    // doomed as the explored one it leads to.
                    Placement::AlreadyExplored if is_read => self.backtrack(),
                    Placement::AlreadyExplored | Placement::Rejected => {
                        cursor = self.list.next_after_call(cursor);
                        continue;
                    }
                }
            } else {
                self.backtrack()
            };
            match resume {
                Some(next) => cursor = next,
                None => return Outcome::Illegal,
            }
        }
    }

    /// Tries to linearize the candidate at `call_node` next.
    fn try_place(&mut self, call_node: usize, forced: bool) -> Placement {
        let op = self.list.op(call_node);
        let Some(next_state) =
            self.model.step(&self.state, &self.ops[op].input, &self.ops[op].output)
        else {
            return Placement::Rejected;
        };
        self.linearized.insert(op);
        self.list.lift(call_node);
        self.dead_ends.placed(op);
        let state_key =
            if self.dead_ends.state_is_irrelevant(self.model, self.ops, &self.list, &next_state) {
                IRRELEVANT_STATE
            } else {
                self.model.fingerprint(&next_state)
            };
        if !self.explored.insert((self.linearized.fingerprint(), state_key)) {
            self.dead_ends.unplaced(op);
            self.list.unlift(call_node);
            self.linearized.remove(op);
            return Placement::AlreadyExplored;
        }
        let state_before = mem::replace(&mut self.state, next_state);
        self.path.push(Placed { call_node, state_before, forced });
        self.order.push(op);
        self.longest.after_push(&self.order);
        Placement::Placed
    }

    /// For a report, once the search has failed (and unwound its path): the longest path it
    /// placed, extended greedily as far as it goes, placing the first candidate the model
    /// accepts each time.
    ///
    /// Dead-end tests cut paths as soon as a failure is certain, sometimes long before the
    /// model itself would object, so the longest path placed can stop short of where a person
    /// would look for the culprit (50 appends of "a" then a read of "never": every path is cut
    /// after the first append). Extending it shows how far the history can really be explained.
    fn longest_legal_prefix(&mut self) -> Vec<usize> {
        debug_assert!(self.path.is_empty());
        let mut prefix = mem::take(&mut self.longest.best);
        let mut lifted = Vec::with_capacity(self.ops.len());
        let mut state = self.model.init();
        for &op in &prefix {
            state = self
                .model
                .step(&state, &self.ops[op].input, &self.ops[op].output)
                .expect("the search only records paths the model accepted");
            let call = self.list.call_node(op);
            self.list.lift(call);
            lifted.push(call);
        }
        'extend: while !self.list.is_empty() {
            let mut node = self.list.first();
            while self.list.is_call(node) {
                let op = self.list.op(node);
                if let Some(next) =
                    self.model.step(&state, &self.ops[op].input, &self.ops[op].output)
                {
                    state = next;
                    prefix.push(op);
                    self.list.lift(node);
                    lifted.push(node);
                    continue 'extend;
                }
                node = self.list.next_after_call(node);
            }
            break;
        }
        for call in lifted.into_iter().rev() {
            self.list.unlift(call);
        }
        prefix
    }

    /// Undoes placements back to the latest one that has alternatives left, and returns the
    /// candidate to try after it; `None` if the path ran out (no linearization exists).
    fn backtrack(&mut self) -> Option<usize> {
        loop {
            let placed = self.path.pop()?;
            let op = self.list.op(placed.call_node);
            self.linearized.remove(op);
            self.dead_ends.unplaced(op);
            self.order.pop();
            self.longest.after_pop(self.order.len());
            self.state = placed.state_before;
            self.list.unlift(placed.call_node);
            if !placed.forced {
                return Some(self.list.next_after_call(placed.call_node));
            }
        }
    }
}

/// The dead-end and irrelevant-state tests (see the module docs), and what they need to know
/// about the partition.
struct DeadEnds<S> {
    /// Per operation: `Model::is_monotone`.
    monotone: Vec<bool>,
    /// Per operation: `Model::blind_write`.
    blind_write: Vec<Option<S>>,
    /// The blind writes, in operation order.
    blind_writes: Vec<usize>,
    /// Operations not yet placed that are neither monotone nor blind writes: while there is
    /// one, the states to come are unknown and the test is off.
    unplaced_blockers: usize,
    /// Per operation, once the test has needed it: the blind writes whose state `⊑` some state
    /// that accepts the operation (`may_accept_later` from the written state).
    enablers: Vec<Option<Box<[usize]>>>,
    /// `EntryList::next_marked_calls` of the read-only operations.
    next_read_call: Vec<usize>,
}

impl<S> DeadEnds<S> {
    fn new<M: Model<State = S>>(
        model: &M,
        ops: &[&Op<M::Input, M::Output>],
        list: &EntryList,
        read_only: &[bool],
    ) -> Self {
        let monotone: Vec<bool> = ops.iter().map(|op| model.is_monotone(&op.input)).collect();
        let blind_write: Vec<Option<S>> =
            ops.iter().map(|op| model.blind_write(&op.input, &op.output)).collect();
        let blind_writes = (0..ops.len()).filter(|&i| blind_write[i].is_some()).collect();
        let unplaced_blockers =
            (0..ops.len()).filter(|&i| !monotone[i] && blind_write[i].is_none()).count();
        DeadEnds {
            monotone,
            blind_write,
            blind_writes,
            unplaced_blockers,
            enablers: vec![None; ops.len()],
            next_read_call: list.next_marked_calls(read_only),
        }
    }

    fn is_blocker(&self, op: usize) -> bool {
        !self.monotone[op] && self.blind_write[op].is_none()
    }

    fn placed(&mut self, op: usize) {
        if self.is_blocker(op) {
            self.unplaced_blockers -= 1;
        }
    }

    fn unplaced(&mut self, op: usize) {
        if self.is_blocker(op) {
            self.unplaced_blockers += 1;
        }
    }

    /// Whether the configuration (`linearized`, `state`), whose pending events are `list`, has
    /// no completion because one of its candidates, or one of the next few reads to be
    /// invoked, can never be accepted again.
    fn is_dead_end<M: Model<State = S>>(
        &mut self,
        model: &M,
        ops: &[&Op<M::Input, M::Output>],
        list: &EntryList,
        linearized: &Bitset,
        state: &S,
    ) -> bool {
        if self.unplaced_blockers > 0 || list.is_empty() {
            return false;
        }
        let mut node = list.first();
        while list.is_call(node) {
            if self.never_again(model, ops, linearized, state, list.op(node)) {
                return true;
            }
            node = list.next_after_call(node);
        }
        // `node` is the first return event. Every call event after it is still in the list, as
        // nothing invoked after an unplaced operation returned can have been placed.
        let mut next = node + 1;
        for _ in 0..READ_LOOKAHEAD {
            let read = self.next_read_call[next];
            if read == usize::MAX {
                break;
            }
            if self.never_again(model, ops, linearized, state, list.op(read)) {
                return true;
            }
            next = read + 1;
        }
        false
    }

    /// Whether the configuration's future does not depend on its state `state` (the
    /// operations placed being known), so that all such configurations with the same placed
    /// operations can share one memo entry.
    ///
    /// That holds when a blind write is left to place, and every operation left that could be
    /// placed before the first of them (one invoked before the earliest return of a blind
    /// write left, the others must follow that write) either is a blind write, or is accepted
    /// in every state (`Model::accepts_any_state`), or cannot be accepted in any state `⊒`
    /// `state` (`may_accept_later`). Then in every completion the operations placed before the
    /// first blind write are accepted whatever the state, and that write replaces the state by
    /// one that does not depend on it: which completions are legal does not depend on `state`.
    /// It typically catches appends whose order nobody read before a Put overwrote them.
    fn state_is_irrelevant<M: Model<State = S>>(
        &self,
        model: &M,
        ops: &[&Op<M::Input, M::Output>],
        list: &EntryList,
        state: &S,
    ) -> bool {
        if self.unplaced_blockers > 0 || self.blind_writes.is_empty() || list.is_empty() {
            return false;
        }
        let mut node = list.first();
        for _ in 0..IRRELEVANCE_HORIZON {
            if node == usize::MAX {
                // No blind write is left.
                return false;
            }
            let op = list.op(node);
            if !list.is_call(node) {
                if self.blind_write[op].is_some() {
                    return true;
                }
            } else if self.blind_write[op].is_none()
                && !model.accepts_any_state(&ops[op].input, &ops[op].output)
                && model.may_accept_later(state, &ops[op].input, &ops[op].output)
            {
                return false;
            }
            node = list.next(node);
        }
        // Gave up looking (answering `false` is always safe).
        false
    }

    /// Whether operation `op`, not placed yet, can be accepted in no state to come: every
    /// operation still unplaced is monotone or a blind write, so each state to come is `⊒`
    /// either the current state or the state of a blind write still unplaced.
    fn never_again<M: Model<State = S>>(
        &mut self,
        model: &M,
        ops: &[&Op<M::Input, M::Output>],
        linearized: &Bitset,
        state: &S,
        op: usize,
    ) -> bool {
        let (input, output) = (&ops[op].input, &ops[op].output);
        if model.may_accept_later(state, input, output) {
            return false;
        }
        let (blind_write, blind_writes) = (&self.blind_write, &self.blind_writes);
        let enablers = self.enablers[op].get_or_insert_with(|| {
            blind_writes
                .iter()
                .copied()
                .filter(|&w| {
                    let written = blind_write[w].as_ref().expect("a blind write");
                    model.may_accept_later(written, input, output)
                })
                .collect()
        });
        enablers.iter().all(|&w| linearized.contains(w))
    }
}

/// The state after applying `prefix` (history indices, known to be legal in this order).
fn replay<M: Model>(model: &M, history: &[Op<M::Input, M::Output>], prefix: &[usize]) -> M::State {
    prefix.iter().fold(model.init(), |state, &i| {
        model
            .step(&state, &history[i].input, &history[i].output)
            .expect("the search only records prefixes the model accepted")
    })
}

/// Remembers the longest path ever placed, without copying the whole path on every push.
///
/// Invariant: `best[..agree] == order[..agree]` for the current path `order`. When the path
/// grows past `best`, only `order[agree..]` needs copying; `agree` only falls through pops, so
/// the copying is paid for by earlier pushes and stays linear in the number of steps.
#[derive(Debug, Default)]
struct LongestPrefix {
    best: Vec<usize>,
    agree: usize,
}

impl LongestPrefix {
    fn after_push(&mut self, order: &[usize]) {
        if order.len() > self.best.len() {
            self.best.truncate(self.agree);
            self.best.extend_from_slice(&order[self.agree..]);
            self.agree = order.len();
        }
    }

    fn after_pop(&mut self, new_len: usize) {
        self.agree = self.agree.min(new_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_tracks_the_longest_path_seen() {
        let mut lp = LongestPrefix::default();
        let mut order = vec![];
        for op in [4, 7, 1] {
            order.push(op);
            lp.after_push(&order);
        }
        // Back off two and take a different, shorter branch: best is unchanged.
        order.truncate(1);
        lp.after_pop(1);
        order.push(9);
        lp.after_push(&order);
        assert_eq!(lp.best, vec![4, 7, 1]);
        // Grow the new branch past the old best: best becomes the new branch.
        for op in [2, 3] {
            order.push(op);
            lp.after_push(&order);
        }
        assert_eq!(lp.best, vec![4, 9, 2, 3]);
    }

    #[test]
    fn budget_stops_at_its_limit() {
        let mut b = Budget { used: 0, limit: 2 };
        assert!(b.spend());
        assert!(b.spend());
        assert!(!b.spend());
        assert_eq!(b.used, 2);
    }
}
