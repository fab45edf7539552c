//! [`History`]: a concurrent history being recorded, shared by the tasks that add to it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use kvraft_linearizability::Operation;

/// A concurrent history being recorded: operations with times in microseconds since `start`.
/// Cheap to clone (clones share the record); safe to use from many tasks.
#[derive(Clone, Debug)]
pub struct History {
    start: Instant,
    ops: Arc<Mutex<Vec<Operation>>>,
}

impl Default for History {
    fn default() -> History {
        History::new()
    }
}

impl History {
    /// An empty history whose clock starts now.
    pub fn new() -> History {
        History::starting_at(Instant::now())
    }

    /// An empty history whose clock started at `start`.
    pub fn starting_at(start: Instant) -> History {
        History { start, ops: Arc::new(Mutex::new(Vec::new())) }
    }

    /// The instant time 0 stands for.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Microseconds since the start.
    pub fn now_us(&self) -> u64 {
        self.us_at(Instant::now())
    }

    /// `t` in microseconds since the start (0 if before it).
    pub fn us_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_micros() as u64
    }

    pub fn record(&self, op: Operation) {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).push(op);
    }

    /// A copy of the operations recorded so far, in the order they were recorded.
    pub fn operations(&self) -> Vec<Operation> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn len(&self) -> usize {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_record() {
        let history = History::new();
        let clone = history.clone();
        clone.record(Operation::put(1, "k", "v", 0, history.now_us()));
        assert_eq!(history.len(), 1);
        assert_eq!(history.operations()[0].input.key(), "k");
        assert_eq!(history.us_at(history.start() - std::time::Duration::from_secs(1)), 0);
    }
}
