//! The measurements, from the simulator (virtual time; figures, not assertions):
//!
//! - [`replace_dead_voter`]: a 3-voter cluster holding 10,000 keys loses a voter for good; the
//!   operator adds a new server as a learner, waits until the leader reports it caught up,
//!   promotes it, and removes the dead voter. The figure is the time from the first request to
//!   the removal's commit, with each step's time.
//! - [`transfer_unavailability`]: writers write without pause while the operator moves the
//!   leadership; the figure is the longest time no write completed around the transfer,
//!   against one election timeout, and against the same gap when the leader crashes instead.
//!
//! `sweep --suite membership-figures --seeds 1..11 --stats` prints them per seed.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use kvraft_kv::Op;
use kvraft_raft::MembershipChange;

use super::operator::{ChangeOutcome, Operator, TransferOutcome};
use crate::kv_tester::KvTester;
use crate::network::MS;
use crate::options::SimOptions;
use crate::raft_tester::TEST_LIMIT_MS;
use crate::run::RunReport;
use crate::sim::RunSummary;
use crate::world::{node_id, TICK_US};

async fn wait_for_leader(op: &Operator) -> usize {
    loop {
        if let Some(l) = op.leader() {
            return l;
        }
        op.t.sleep(20).await;
    }
}

/// Puts `keys` keys (`k0`, `k1`, ...; 32-byte values) through `writers` clients at once.
pub(crate) async fn load(t: &KvTester, keys: usize, writers: usize) {
    let mut handles = Vec::new();
    for w in 0..writers {
        let t2 = t.clone();
        handles.push(t.sim.spawn(async move {
            let ck = t2.make_client(&t2.all());
            for k in (w..keys).step_by(writers) {
                let value = format!("{k:032}");
                t2.write(&ck, None, Op::Put { key: format!("k{k}"), value }, false, 0).await;
            }
        }));
    }
    for h in handles {
        h.await;
    }
}

/// What replacing a dead voter took, in virtual ms from the first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplaceFigures {
    pub added_ms: u64,
    pub caught_up_ms: u64,
    pub promoted_ms: u64,
    pub removed_ms: u64,
}

/// Replaces a dead voter of a 3-voter cluster holding `keys` keys (see the module docs). With
/// `auto_promote` the leader promotes the learner itself (after its stabilization window).
pub async fn replace_dead_voter(t: KvTester, keys: usize, auto_promote: bool) -> ReplaceFigures {
    let op = Operator::new(t.clone());
    wait_for_leader(&op).await;
    load(&t, keys, 50).await;
    let leader = wait_for_leader(&op).await;
    let dead = (0..t.n).find(|&s| s != leader).expect("a follower");
    t.shutdown_server(dead);
    // Long enough for the leader to stop counting it as alive.
    t.sleep(1000).await;

    let start = t.sim.now_ms();
    let since = |t: &KvTester| t.sim.now_ms() - start;
    let server = op.add_learner(auto_promote, None).await.expect("the learner is added");
    let id = node_id(server);
    let added_ms = since(&t);
    assert!(op.wait_caught_up(id, 60_000).await, "the learner never caught up");
    let caught_up_ms = since(&t);
    if auto_promote {
        while !op.committed_config().is_some_and(|c| c.config.membership.is_voter(id)) {
            assert!(since(&t) < 60_000, "the learner was never promoted");
            t.sleep(10).await;
        }
    } else {
        let promoted = op.change(MembershipChange::Promote { id }, false).await;
        assert!(matches!(promoted, ChangeOutcome::Done(_)), "promotion: {promoted:?}");
    }
    let promoted_ms = since(&t);
    let removed = op.change(MembershipChange::Remove { id: node_id(dead) }, false).await;
    assert!(matches!(removed, ChangeOutcome::Done(_)), "removal: {removed:?}");
    let removed_ms = since(&t);

    // The new voter serves: the cluster still has every key.
    let ck = t.make_client_of(&[leader, 3 - leader - dead, server], &[leader, server]);
    for k in [0, keys / 2, keys - 1] {
        assert_eq!(t.get(&ck, &format!("k{k}"), false, 0).await, format!("{k:032}"));
    }
    ReplaceFigures { added_ms, caught_up_ms, promoted_ms, removed_ms }
}

/// Client unavailability around a leadership change, in virtual ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransferFigures {
    /// The longest time without a completed write from the transfer request on.
    pub transfer_gap_ms: u64,
    /// From the request to the operator's answer (the new leader known).
    pub transfer_answer_ms: u64,
    /// The same gap when the leader crashes instead.
    pub crash_gap_ms: u64,
    /// The base election timeout (followers wait a random time in [1x, 2x) of it).
    pub election_timeout_ms: u64,
}

/// The longest gap between consecutive completions in `done` (sorted) that ends after `from`,
/// counting from the last completion before `from`, up to `to`.
fn longest_gap(done: &[u64], from: u64, to: u64) -> u64 {
    let mut previous = done.iter().copied().filter(|&d| d <= from).max().unwrap_or(from);
    let mut gap = 0;
    for &d in done.iter().filter(|&&d| d > from && d <= to) {
        gap = gap.max(d - previous);
        previous = d;
    }
    gap.max(to.saturating_sub(previous).min(to - from))
}

/// Writers write without pause; the operator transfers the leadership to the most caught-up
/// voter; later the leader crashes (see the module docs).
pub async fn transfer_unavailability(t: KvTester, writers: usize) -> TransferFigures {
    let op = Operator::new(t.clone());
    wait_for_leader(&op).await;
    let done = Rc::new(RefCell::new(Vec::new()));
    let stop = Rc::new(std::cell::Cell::new(false));
    let mut handles = Vec::new();
    for w in 0..writers {
        let (t2, done, stop) = (t.clone(), done.clone(), stop.clone());
        handles.push(t.sim.spawn(async move {
            let ck = t2.make_client(&t2.all());
            let mut j = 0;
            while !stop.get() {
                let op = Op::Put { key: format!("w{w}"), value: format!("{j}") };
                t2.write(&ck, None, op, true, w as u64).await;
                done.borrow_mut().push(t2.sim.now_us());
                j += 1;
            }
        }));
    }
    t.sleep(2000).await;
    let asked = t.sim.now_us();
    let outcome = op.transfer(None).await;
    assert!(matches!(outcome, TransferOutcome::Done { .. }), "transfer: {outcome:?}");
    let transfer_answer_ms = (t.sim.now_us() - asked) / MS;
    t.sleep(3000).await;
    let transfer_gap_ms = longest_gap(&done.borrow(), asked, asked + 3000 * MS) / MS;

    let leader = wait_for_leader(&op).await;
    let crashed = t.sim.now_us();
    t.shutdown_server(leader);
    t.sleep(5000).await;
    let crash_gap_ms = longest_gap(&done.borrow(), crashed, crashed + 5000 * MS) / MS;
    t.start_server(leader);
    t.connect_all();
    stop.set(true);
    for h in handles {
        h.await;
    }
    t.check_history();
    let leader = wait_for_leader(&op).await;
    let ticks = t.sim.world().node(leader).map(|n| n.config().election_timeout_ticks);
    let election_timeout_ms = u64::from(ticks.expect("a leader runs")) * TICK_US / MS;
    TransferFigures { transfer_gap_ms, transfer_answer_ms, crash_gap_ms, election_timeout_ms }
}

/// Runs `figures` to its end in `t`'s simulation, and returns what it measured (the default
/// if the run failed first, with the failure in the summary).
fn measure<F: Copy + Default + 'static>(
    t: &KvTester,
    figures: impl Future<Output = F> + 'static,
) -> (RunSummary, F) {
    let measured = Rc::new(Cell::new(F::default()));
    let out = measured.clone();
    let summary = t.sim.block_on(async move { out.set(figures.await) }, TEST_LIMIT_MS);
    (summary, measured.get())
}

/// Runs `replace_dead_voter` on 10,000 keys: with the log replayed to the learner
/// (`maxraftstate` -1) or sent as a snapshot (otherwise), promoted by the operator.
pub fn run_replace(seed: u64, options: &SimOptions, maxraftstate: i64, auto: bool) -> RunReport {
    let t = KvTester::new(seed, options, 3, false, maxraftstate);
    let (summary, f) = measure(&t, replace_dead_voter(t.clone(), 10_000, auto));
    let line = format!(
        "replace a dead voter, 10000 keys, maxraftstate {maxraftstate}, {}: learner added \
         {} ms, caught up {} ms, promoted {} ms, dead voter removed {} ms",
        if auto { "automatic promotion" } else { "operator promotes" },
        f.added_ms,
        f.caught_up_ms,
        f.promoted_ms,
        f.removed_ms
    );
    if !options.quiet {
        println!("seed {seed}: {line}");
    }
    RunReport { summary, figures: Some(line) }
}

/// Runs `transfer_unavailability` with five writers on three servers.
pub fn run_transfer(seed: u64, options: &SimOptions) -> RunReport {
    let t = KvTester::new(seed, options, 3, false, -1);
    let (summary, f) = measure(&t, transfer_unavailability(t.clone(), 5));
    let line = format!(
        "writes unavailable {} ms during a leadership transfer (answered after {} ms), {} ms \
         when the leader crashes; election timeout {} ms (randomized {}-{} ms)",
        f.transfer_gap_ms,
        f.transfer_answer_ms,
        f.crash_gap_ms,
        f.election_timeout_ms,
        f.election_timeout_ms,
        2 * f.election_timeout_ms
    );
    if !options.quiet {
        println!("seed {seed}: {line}");
    }
    RunReport { summary, figures: Some(line) }
}
