//! The closed loop shared by every driver and every phase: N clients, each with one operation in
//! flight, issuing the next as soon as the previous one returns.
//!
//! A load run ([`run`]) is an optional prefill (every key written once, so that reads find
//! values), then the warmup, then the measurement. `scale` loads and settles its cluster with
//! the same loop ([`sweep`]): keys written in order, each with its own value, until every key
//! is written or the caller says stop.
//!
//! An operation is measured if it started after the warmup and (with `--duration`) finished
//! before the end; its latency, from just before the request to the reply, goes into an HDR
//! histogram in microseconds. A failed operation counts as an error and records no latency.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::driver::{Driver, Session};
use crate::options::{Plan, Stop};
use crate::workload::{key_name, KeyChooser, OpKind, OpSource, Values};

/// Histograms track 1 us to 1 hour with 3 significant digits.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;
const HISTOGRAM_SIGFIG: u8 = 3;
/// Clients record into this many histograms (by client index), merged at the end.
const HISTOGRAM_SHARDS: usize = 16;
/// Pause after a failed measured-phase operation, so that a refused connection does not become
/// a busy loop. (The prefill goes straight on, as it always has.)
const ERROR_PAUSE: Duration = Duration::from_millis(10);
/// Distinct error messages kept for the report.
const ERROR_SAMPLES: usize = 8;
/// How often the progress bars are updated.
const BAR_TICK: Duration = Duration::from_millis(100);

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, HISTOGRAM_SIGFIG)
        .expect("valid histogram bounds")
}

/// What a run measured.
#[derive(Debug)]
pub struct Measurement {
    /// Latencies of the successful measured operations, in microseconds.
    pub histogram: Histogram<u64>,
    pub errors: u64,
    /// The measurement window: the duration, or (with `--ops`) from the end of the warmup to
    /// the last completion.
    pub elapsed: Duration,
    pub prefill: Option<Prefill>,
    /// Some error messages, with how often each occurred (measured or not).
    pub error_samples: Vec<(String, u64)>,
}

#[derive(Debug)]
pub struct Prefill {
    pub keys: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

/// What a [`sweep`] did.
#[derive(Debug, Default)]
pub struct SweepOutcome {
    /// Puts acknowledged.
    pub ok: u64,
    /// Puts that failed (after the driver's own retries).
    pub errors: u64,
    pub elapsed: Duration,
    /// Some error messages, with how often each occurred.
    pub error_samples: Vec<(String, u64)>,
}

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
enum Ops {
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
struct Phase {
    /// Operations started before this are not counted.
    warmup_end: Instant,
    /// With `--duration`: when the measurement ends.
    deadline: Option<Instant>,
    /// With `--ops`: measured operations left to start.
    tickets: Option<AtomicU64>,
    /// Pause after a failed operation.
    error_pause: Duration,
    /// Whether to record latencies (only the measurement reports them).
    latencies: bool,
}

impl Phase {
    /// Every operation counted from the start, none timed, until the sweep ends.
    fn sweep(error_pause: Duration) -> Phase {
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
struct PhaseEnd<S> {
    /// The sessions, for the next phase.
    sessions: Vec<S>,
    ok: u64,
    errors: u64,
    /// Latencies, if the phase recorded them.
    histogram: Histogram<u64>,
    /// Error messages of this phase and of those before it.
    samples: Vec<(String, u64)>,
    /// When the last counted operation completed, if any did.
    last_completion: Option<Instant>,
    elapsed: Duration,
}

/// Runs one phase: a client per session, drawing its operations from `ops(index)`, until the
/// phase says stop. Every `every`, `progress` is told the operations done so far (ok, errors).
/// `samples` are the error messages of earlier phases, to which this one adds.
async fn run_phase<S: Session>(
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

fn progress_bar(enabled: bool, length: u64, template: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    // Hidden by indicatif itself when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Runs the plan's load with `driver`; `progress` shows a progress bar on stderr.
pub async fn run<D: Driver>(driver: &D, plan: &Plan, progress: bool) -> Measurement {
    let values = Values::new(plan.value_size, plan.seed);
    let mut sessions: Vec<D::Session> = (0..plan.clients).map(|i| driver.session(i)).collect();
    let mut error_samples = Vec::new();

    let prefill = if plan.prefill {
        let bar =
            progress_bar(progress, plan.keys, "prefill  [{bar:40}] {pos}/{len} keys {elapsed}");
        let sweep = Arc::new(Sweep::once(plan.keys));
        let phase = Phase::sweep(Duration::ZERO);
        let ops = |_| Ops::Sweep(sweep.clone());
        let end = run_phase(sessions, phase, ops, &values, Vec::new(), BAR_TICK, |ok, errors| {
            bar.set_position(ok + errors)
        })
        .await;
        bar.finish_and_clear();
        sessions = end.sessions;
        error_samples = end.samples;
        Some(Prefill { keys: plan.keys, errors: end.errors, elapsed: end.elapsed })
    } else {
        None
    };

    let start = Instant::now();
    let warmup_end = start + plan.warmup;
    let (deadline, tickets) = match plan.stop {
        Stop::After(d) => (Some(warmup_end + d), None),
        Stop::Ops(n) => (None, Some(AtomicU64::new(n))),
    };
    let phase = Phase { warmup_end, deadline, tickets, error_pause: ERROR_PAUSE, latencies: true };
    let chooser = KeyChooser::new(plan.keys, plan.key_dist);
    let ops = |index: usize| {
        let seed = plan.seed.wrapping_add((index as u64 + 1).wrapping_mul(0x9E37_79B9));
        Ops::Random { source: OpSource::new(plan.workload, chooser.clone(), seed), n: index }
    };
    let mut show = measurement_progress(plan, start, warmup_end, progress);
    let end = run_phase(sessions, phase, ops, &values, error_samples, BAR_TICK, &mut show).await;
    drop(show);

    let elapsed = match plan.stop {
        Stop::After(d) => d,
        Stop::Ops(_) => {
            end.last_completion.unwrap_or(warmup_end).saturating_duration_since(warmup_end)
        }
    };
    Measurement {
        histogram: end.histogram,
        errors: end.errors,
        elapsed,
        prefill,
        error_samples: end.samples,
    }
}

/// The progress bar of the warmup and the measurement, and what updates it; the bar is cleared
/// when the updater is dropped.
fn measurement_progress(
    plan: &Plan,
    start: Instant,
    warmup_end: Instant,
    enabled: bool,
) -> impl FnMut(u64, u64) {
    let (bar, by_time) = match plan.stop {
        Stop::After(d) => {
            let total = (plan.warmup + d).as_millis() as u64;
            (progress_bar(enabled, total, "{prefix:7}  [{bar:40}] {elapsed:>4}  {msg}"), true)
        }
        Stop::Ops(n) => {
            (progress_bar(enabled, n, "{prefix:7}  [{bar:40}] {pos}/{len} ops  {msg}"), false)
        }
    };
    let bar = ClearOnDrop(bar);
    move |ok, errors| {
        let bar = &bar.0;
        if bar.is_hidden() {
            return;
        }
        let now = Instant::now();
        if now < warmup_end {
            bar.set_prefix("warmup");
            bar.set_message(String::new());
        } else {
            bar.set_prefix("running");
            let secs = now.duration_since(warmup_end).as_secs_f64().max(1e-3);
            bar.set_message(format!("{ok} ops  {:.0} ops/s  {errors} errors", ok as f64 / secs));
        }
        if by_time {
            bar.set_position(now.duration_since(start).as_millis() as u64);
        } else {
            bar.set_position(ok + errors);
        }
    }
}

/// A progress bar that clears itself when dropped.
#[derive(Debug)]
struct ClearOnDrop(ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Runs `sweep` with `clients` sessions of `driver` until it ends; `progress` is called about
/// every `every` with the puts done so far. A failed put is followed by `error_pause`.
pub async fn sweep<D: Driver>(
    driver: &D,
    clients: usize,
    values: &Values,
    sweep: Sweep,
    error_pause: Duration,
    every: Duration,
    progress: impl Fn(u64),
) -> SweepOutcome {
    let sessions: Vec<D::Session> = (0..clients).map(|i| driver.session(i)).collect();
    let sweep = Arc::new(sweep);
    let ops = |_| Ops::Sweep(sweep.clone());
    let phase = Phase::sweep(error_pause);
    let end = run_phase(sessions, phase, ops, values, Vec::new(), every, |ok, errors| {
        progress(ok + errors)
    })
    .await;
    SweepOutcome {
        ok: end.ok,
        errors: end.errors,
        elapsed: end.elapsed,
        error_samples: end.samples,
    }
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
