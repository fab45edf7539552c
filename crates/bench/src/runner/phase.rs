//! One phase of the closed loop: a client per session, each with one operation in flight,
//! drawing its operations from the workload's random stream or from a shared [`Sweep`], until
//! the phase's end (a deadline, a number of operations, or the sweep's end).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::new_histogram;
use crate::driver::Session;
use crate::workload::{key_name, OpKind, OpSource, Values};

/// Clients record into this many histograms (by client index), merged at the end.
const HISTOGRAM_SHARDS: usize = 16;
/// Distinct error messages kept for the report.
const ERROR_SAMPLES: usize = 8;

/// Puts in key order, shared by all the clients of a phase: the next put, whichever client
/// takes it, writes the next key, with that key's own value ([`Values::of`]).
#[derive(Debug)]
pub struct Sweep {
    next: AtomicU64,
    keys: u64,
    /// Puts after which the sweep ends; `None` cycles through the keys until stopped.
    total: Option<u64>,
    /// Set by the owner to end the sweep (each client finishes the put it is in).
    stop: Arc<AtomicBool>,
}

impl Sweep {
    /// Keys `0..keys`, each written once.
    pub fn once(keys: u64) -> Sweep {
        assert!(keys > 0, "an empty key space");
        let stop = Arc::new(AtomicBool::new(false));
        Sweep { next: AtomicU64::new(0), keys, total: Some(keys), stop }
    }

    /// Keys `0, 1, ...`, cycling through `0..keys`, until `stop` is set.
    pub fn cycling_until(keys: u64, stop: Arc<AtomicBool>) -> Sweep {
        assert!(keys > 0, "an empty key space");
        Sweep { next: AtomicU64::new(0), keys, total: None, stop }
    }

    /// The key of the next put, if the sweep has not ended.
    fn next_key(&self) -> Option<u64> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if self.total.is_some_and(|t| n >= t) {
            return None;
        }
        Some(n % self.keys)
    }
}

/// Where one client's operations come from.
#[derive(Debug)]
pub(super) enum Ops {
    /// The workload's own random stream, with the client's cycle through the value pool
    /// (starting at its index, so that clients do not all write the same value).
    Random {
        source: OpSource,
        n: usize,
    },
    Sweep(Arc<Sweep>),
}

impl Ops {
    /// The next operation, its key index and its value; `None` when the sweep has ended.
    fn next<'v>(&mut self, values: &'v Values) -> Option<(OpKind, u64, &'v str)> {
        match self {
            Ops::Random { source, n } => {
                let (kind, key) = source.next_op();
                *n = n.wrapping_add(1);
                let value = if kind == OpKind::Get { "" } else { values.of(*n as u64) };
                Some((kind, key, value))
            }
            Ops::Sweep(sweep) => {
                let key = sweep.next_key()?;
                Some((OpKind::Put, key, values.of(key)))
            }
        }
    }
}

/// When a phase's clients stop and what they measure.
#[derive(Debug)]
pub(super) struct Phase {
    /// Operations started before this are not counted.
    pub(super) warmup_end: Instant,
    /// With `--duration`: when the measurement ends.
    pub(super) deadline: Option<Instant>,
    /// With `--ops`: measured operations left to start.
    pub(super) tickets: Option<AtomicU64>,
    /// Pause after a failed operation.
    pub(super) error_pause: Duration,
    /// Whether to record latencies (only the measurement reports them).
    pub(super) latencies: bool,
}

impl Phase {
    /// Every operation counted from the start, none timed, until the sweep ends.
    pub(super) fn sweep(error_pause: Duration) -> Phase {
        Phase {
            warmup_end: Instant::now(),
            deadline: None,
            tickets: None,
            error_pause,
            latencies: false,
        }
    }
}

/// Counters shared by the clients of a phase and its progress display.
#[derive(Debug)]
struct Shared {
    phase: Phase,
    ok: AtomicU64,
    errors: AtomicU64,
    histograms: Vec<Mutex<Histogram<u64>>>,
    samples: Mutex<Vec<(String, u64)>>,
}

impl Shared {
    fn note_error(&self, message: String) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = samples.iter_mut().find(|(m, _)| *m == message) {
            entry.1 += 1;
        } else if samples.len() < ERROR_SAMPLES {
            samples.push((message, 1));
        }
    }
}

/// How a phase ended.
#[derive(Debug)]
pub(super) struct PhaseEnd<S> {
    /// The sessions, for the next phase.
    pub(super) sessions: Vec<S>,
    pub(super) ok: u64,
    pub(super) errors: u64,
    /// Latencies, if the phase recorded them.
    pub(super) histogram: Histogram<u64>,
    /// Error messages of this phase and of those before it.
    pub(super) samples: Vec<(String, u64)>,
    /// When the last counted operation completed, if any did.
    pub(super) last_completion: Option<Instant>,
    pub(super) elapsed: Duration,
}

/// Runs one phase: a client per session, drawing its operations from `ops(index)`, until the
/// phase says stop. Every `every`, `progress` is told the operations done so far (ok, errors).
/// `samples` are the error messages of earlier phases, to which this one adds.
pub(super) async fn run_phase<S: Session>(
    sessions: Vec<S>,
    phase: Phase,
    ops: impl Fn(usize) -> Ops,
    values: &Values,
    samples: Vec<(String, u64)>,
    every: Duration,
    mut progress: impl FnMut(u64, u64),
) -> PhaseEnd<S> {
    let started = Instant::now();
    let shared = Arc::new(Shared {
        phase,
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        histograms: (0..HISTOGRAM_SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
        samples: Mutex::new(samples),
    });
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(index, session)| {
            tokio::spawn(client_loop(index, session, ops(index), values.clone(), shared.clone()))
        })
        .collect();
    let all_done = async {
        let mut back = Vec::with_capacity(tasks.len());
        let mut last_completion: Option<Instant> = None;
        for task in tasks {
            match task.await {
                Ok((session, last)) => {
                    back.push(session);
                    last_completion = last_completion.max(last);
                }
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        (back, last_completion)
    };
    tokio::pin!(all_done);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let (sessions, last_completion) = loop {
        tokio::select! {
            end = &mut all_done => break end,
            _ = ticks.tick() => {
                progress(shared.ok.load(Ordering::Relaxed), shared.errors.load(Ordering::Relaxed));
            }
        }
    };
    let mut histogram = new_histogram();
    for shard in &shared.histograms {
        let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        histogram.add(&*shard).expect("histograms of equal bounds");
    }
    let samples = shared.samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    PhaseEnd {
        sessions,
        ok: shared.ok.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        histogram,
        samples,
        last_completion,
        elapsed: started.elapsed(),
    }
}

/// One closed-loop client; hands its session back, with when its last counted operation
/// completed, if any.
async fn client_loop<S: Session>(
    index: usize,
    mut session: S,
    mut ops: Ops,
    values: Values,
    shared: Arc<Shared>,
) -> (S, Option<Instant>) {
    let phase = &shared.phase;
    let shard = &shared.histograms[index % HISTOGRAM_SHARDS];
    let mut last_completion = None;
    loop {
        let now = Instant::now();
        let measured = now >= phase.warmup_end;
        match (phase.deadline, &phase.tickets) {
            (Some(deadline), _) if now >= deadline => break,
            (None, Some(tickets)) if measured => {
                let claimed = tickets
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(1));
                if claimed.is_err() {
                    break;
                }
            }
            _ => {}
        }
        let Some((kind, key, value)) = ops.next(&values) else { break };
        let key = key_name(key);
        let started = Instant::now();
        let result = session.execute(kind, &key, value).await;
        let finished = Instant::now();
        let counted = measured && phase.deadline.is_none_or(|d| finished <= d);
        match result {
            Ok(()) if counted => {
                if phase.latencies {
                    let us = finished.duration_since(started).as_micros();
                    let us = u64::try_from(us).unwrap_or(u64::MAX).max(1);
                    shard.lock().unwrap_or_else(|e| e.into_inner()).saturating_record(us);
                }
                shared.ok.fetch_add(1, Ordering::Relaxed);
                last_completion = Some(finished);
            }
            Ok(()) => {}
            Err(message) => {
                if counted {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                    last_completion = Some(finished);
                }
                shared.note_error(message);
                if !phase.error_pause.is_zero() {
                    tokio::time::sleep(phase.error_pause).await;
                }
            }
        }
    }
    (session, last_completion)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_write_each_key_once_or_cycle() {
        let once = Sweep::once(3);
        let keys: Vec<_> = std::iter::from_fn(|| once.next_key()).collect();
        assert_eq!(keys, [0, 1, 2]);
        let stop = Arc::new(AtomicBool::new(false));
        let cycling = Sweep::cycling_until(2, stop.clone());
        let keys: Vec<_> = (0..5).map(|_| cycling.next_key().unwrap()).collect();
        assert_eq!(keys, [0, 1, 0, 1, 0]);
        stop.store(true, Ordering::Relaxed);
        assert_eq!(cycling.next_key(), None);
    }

    #[test]
    fn a_sweep_writes_each_key_with_its_own_value() {
        let values = Values::new(8, 1);
        let mut ops = Ops::Sweep(Arc::new(Sweep::once(70)));
        for k in 0..70 {
            assert_eq!(ops.next(&values), Some((OpKind::Put, k, values.of(k))));
        }
        assert_eq!(ops.next(&values), None);
    }
}
