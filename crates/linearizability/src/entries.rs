//! The search's working list: every operation's call and return event in time order, as an
//! index-based doubly linked list.
//!
//! Linearizing an operation "lifts" its two events out of the list; backtracking puts them back.
//! Because lifts are undone strictly in reverse order, a removed node can keep its own `prev`
//! and `next` links and be re-inserted in O(1) from them (the "dancing links" trick), so the
//! search never copies or re-sorts the list.

/// Marks the end of the list.
const NIL: usize = usize::MAX;
/// Index of the sentinel node that precedes the first real event.
const HEAD: usize = 0;

#[derive(Clone, Debug)]
struct Node {
    prev: usize,
    next: usize,
    /// The operation (local index within the partition) this event belongs to.
    op: usize,
    /// For a call event, the node of its return event; for a return event, its call's node.
    partner: usize,
    is_call: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct EntryList {
    nodes: Vec<Node>,
    /// The node of each operation's call event.
    call_nodes: Vec<usize>,
}

impl EntryList {
    /// Builds the list from each operation's `(call, ret)` interval, indexed by operation.
    ///
    /// Events are ordered by time; at equal times calls come before returns, because intervals
    /// are closed: an operation that returns at `t` overlaps one invoked at `t`, so neither is
    /// forced to precede the other. Remaining ties go by operation index, for determinism.
    pub(crate) fn build(intervals: &[(u64, u64)]) -> EntryList {
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(intervals.len() * 2);
        for (op, &(call, ret)) in intervals.iter().enumerate() {
            // `false` sorts before `true`: (time, is_return, op).
            events.push((call, false, op));
            events.push((ret, true, op));
        }
        events.sort_unstable();

        let mut call_node = vec![NIL; intervals.len()];
        let mut return_node = vec![NIL; intervals.len()];
        let mut nodes = Vec::with_capacity(events.len() + 1);
        nodes.push(Node { prev: NIL, next: NIL, op: NIL, partner: NIL, is_call: false });
        for (i, &(_, is_return, op)) in events.iter().enumerate() {
            let index = i + 1;
            let next = if index == events.len() { NIL } else { index + 1 };
            nodes.push(Node { prev: index - 1, next, op, partner: NIL, is_call: !is_return });
            if is_return {
                return_node[op] = index;
            } else {
                call_node[op] = index;
            }
        }
        if !events.is_empty() {
            nodes[HEAD].next = 1;
        }
        for op in 0..intervals.len() {
            nodes[call_node[op]].partner = return_node[op];
            nodes[return_node[op]].partner = call_node[op];
        }
        EntryList { nodes, call_nodes: call_node }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.nodes[HEAD].next == NIL
    }

    /// The first event still in the list; the list must not be empty.
    pub(crate) fn first(&self) -> usize {
        debug_assert!(!self.is_empty());
        self.nodes[HEAD].next
    }

    /// The event after `node`. Only asked of call events still in the list (or just put back),
    /// which always have at least their own return after them.
    pub(crate) fn next_after_call(&self, node: usize) -> usize {
        debug_assert!(self.nodes[node].is_call);
        let next = self.nodes[node].next;
        debug_assert_ne!(next, NIL, "a call event is always followed by its return");
        next
    }

    /// For every node, in time order, the first node at or after it that is the call event of
    /// an operation with `marked[op]`, or `usize::MAX` if there is none. Indexed by node, so
    /// `result[node + 1]` finds the next such call strictly after `node`.
    pub(crate) fn next_marked_calls(&self, marked: &[bool]) -> Vec<usize> {
        let mut next = vec![NIL; self.nodes.len() + 1];
        for node in (1..self.nodes.len()).rev() {
            let n = &self.nodes[node];
            next[node] = if n.is_call && marked[n.op] { node } else { next[node + 1] };
        }
        next
    }

    /// The call event of operation `op`.
    pub(crate) fn call_node(&self, op: usize) -> usize {
        self.call_nodes[op]
    }

    /// The event after `node` (a node in the list), or `usize::MAX` after the last one.
    pub(crate) fn next(&self, node: usize) -> usize {
        self.nodes[node].next
    }

    pub(crate) fn is_call(&self, node: usize) -> bool {
        self.nodes[node].is_call
    }

    pub(crate) fn op(&self, node: usize) -> usize {
        self.nodes[node].op
    }

    /// Removes a call event and its return event.
    pub(crate) fn lift(&mut self, call: usize) {
        debug_assert!(self.nodes[call].is_call);
        let ret = self.nodes[call].partner;
        self.unlink(call);
        self.unlink(ret);
    }

    /// Undoes the most recent `lift`, which must have been of `call`.
    pub(crate) fn unlift(&mut self, call: usize) {
        debug_assert!(self.nodes[call].is_call);
        let ret = self.nodes[call].partner;
        // Reverse order of `lift`, so each node's saved links are valid when it is re-linked.
        self.relink(ret);
        self.relink(call);
    }

    fn unlink(&mut self, node: usize) {
        let Node { prev, next, .. } = self.nodes[node];
        self.nodes[prev].next = next;
        if next != NIL {
            self.nodes[next].prev = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let Node { prev, next, .. } = self.nodes[node];
        self.nodes[prev].next = node;
        if next != NIL {
            self.nodes[next].prev = node;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The remaining events as (op, is_call), walking the links.
    fn walk(list: &EntryList) -> Vec<(usize, bool)> {
        let mut out = Vec::new();
        let mut node = list.nodes[HEAD].next;
        while node != NIL {
            out.push((list.op(node), list.is_call(node)));
            node = list.nodes[node].next;
        }
        out
    }

    #[test]
    fn orders_by_time_with_calls_before_returns_at_ties() {
        // op 0: [0, 5], op 1: [5, 9], op 2: [1, 2]
        let list = EntryList::build(&[(0, 5), (5, 9), (1, 2)]);
        assert_eq!(
            walk(&list),
            vec![(0, true), (2, true), (2, false), (1, true), (0, false), (1, false)]
        );
    }

    #[test]
    fn lift_and_unlift_restore_the_list_in_lifo_order() {
        let mut list = EntryList::build(&[(0, 5), (5, 9), (1, 2)]);
        let original = walk(&list);
        let call_of = |list: &EntryList, op: usize| {
            let mut node = list.nodes[HEAD].next;
            while !(list.op(node) == op && list.is_call(node)) {
                node = list.nodes[node].next;
            }
            node
        };
        let c2 = call_of(&list, 2);
        list.lift(c2); // adjacent call/return pair
        assert_eq!(walk(&list), vec![(0, true), (1, true), (0, false), (1, false)]);
        let c1 = call_of(&list, 1);
        list.lift(c1); // pair at the tail
        let c0 = call_of(&list, 0);
        list.lift(c0);
        assert!(list.is_empty());
        list.unlift(c0);
        list.unlift(c1);
        list.unlift(c2);
        assert_eq!(walk(&list), original);
    }

    #[test]
    fn empty_history_gives_an_empty_list() {
        assert!(EntryList::build(&[]).is_empty());
    }
}
