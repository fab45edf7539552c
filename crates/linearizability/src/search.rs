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

use std::collections::HashSet;
use std::mem;

use crate::bitset::Bitset;
use crate::entries::EntryList;
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
    Linearizable,
    /// No linearization exists. `longest_prefix` is the longest sequence of operations (indices
    /// into the history, in linearization order) the search ever managed to place, and
    /// `state_after` the model's state after it.
    Illegal {
        longest_prefix: Vec<usize>,
        state_after: S,
    },
    OutOfBudget,
}

/// Checks the operations `members` (indices into `history`) against `model`.
pub(crate) fn check_partition<M: Model>(
    model: &M,
    history: &[Op<M::Input, M::Output>],
    members: &[usize],
    budget: &mut Budget,
) -> PartitionVerdict<M::State> {
    let ops: Vec<&Op<M::Input, M::Output>> = members.iter().map(|&i| &history[i]).collect();
    let mut search = Search::new(model, &ops);
    if search.list.is_empty() {
        return PartitionVerdict::Linearizable;
    }
    let mut cursor = search.list.first();
    loop {
        if !budget.spend() {
            return PartitionVerdict::OutOfBudget;
        }
        let resume = if search.list.is_call(cursor) {
            let is_read = model.is_read_only(&ops[search.list.op(cursor)].input);
            match search.try_place(cursor, is_read) {
                Placement::Placed if search.list.is_empty() => {
                    return PartitionVerdict::Linearizable
                }
                Placement::Placed => {
                    cursor = search.list.first();
                    continue;
                }
                // The read could go next and changes nothing, so this configuration is as
                // doomed as the explored one it leads to.
                Placement::AlreadyExplored if is_read => search.backtrack(),
                Placement::AlreadyExplored | Placement::Rejected => {
                    cursor = search.list.next_after_call(cursor);
                    continue;
                }
            }
        } else {
            search.backtrack()
        };
        match resume {
            Some(next) => cursor = next,
            None => {
                let longest_prefix: Vec<usize> =
                    search.longest.best.iter().map(|&i| members[i]).collect();
                let state_after = replay(model, history, &longest_prefix);
                return PartitionVerdict::Illegal { longest_prefix, state_after };
            }
        }
    }
}

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
    list: EntryList,
    linearized: Bitset,
    explored: HashSet<(Bitset, M::State)>,
    state: M::State,
    path: Vec<Placed<M::State>>,
    /// The operations of `path`, in order (kept apart so `longest` can compare slices).
    order: Vec<usize>,
    longest: LongestPrefix,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, ops: &'a [&'a Op<M::Input, M::Output>]) -> Self {
        let intervals: Vec<(u64, u64)> = ops.iter().map(|op| (op.call, op.ret)).collect();
        Search {
            model,
            ops,
            list: EntryList::build(&intervals),
            linearized: Bitset::new(ops.len()),
            explored: HashSet::new(),
            state: model.init(),
            path: Vec::new(),
            order: Vec::new(),
            longest: LongestPrefix::default(),
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
        if !self.explored.insert((self.linearized.clone(), next_state.clone())) {
            self.linearized.remove(op);
            return Placement::AlreadyExplored;
        }
        let state_before = mem::replace(&mut self.state, next_state);
        self.path.push(Placed { call_node, state_before, forced });
        self.order.push(op);
        self.longest.after_push(&self.order);
        self.list.lift(call_node);
        Placement::Placed
    }

    /// Undoes placements back to the latest one that has alternatives left, and returns the
    /// candidate to try after it; `None` if the path ran out (no linearization exists).
    fn backtrack(&mut self) -> Option<usize> {
        loop {
            let placed = self.path.pop()?;
            let op = self.list.op(placed.call_node);
            self.linearized.remove(op);
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
