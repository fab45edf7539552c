//! The closed loop shared by every driver: N clients, each with one operation in flight,
//! issuing the next as soon as the previous one returns. Optional prefill first (every key
//! written once, so that reads find values), then the warmup, then the measurement.
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
use crate::workload::{key_name, make_value, KeyChooser, OpKind, OpSource};

/// Histograms track 1 us to 1 hour with 3 significant digits.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;
const HISTOGRAM_SIGFIG: u8 = 3;
/// Clients record into this many histograms (by client index), merged at the end.
const HISTOGRAM_SHARDS: usize = 16;
/// Distinct values the clients cycle through.
const VALUE_POOL: usize = 64;
/// Pause after a failed operation, so that a refused connection does not become a busy loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);
/// Distinct error messages kept for the report.
const ERROR_SAMPLES: usize = 8;

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

/// Counters shared by the clients and the progress bar.
#[derive(Debug)]
struct Shared {
    warmup_end: Instant,
    /// With `--duration`: when the measurement ends.
    deadline: Option<Instant>,
    /// With `--ops`: measured operations left to start.
    tickets: AtomicU64,
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
    let values: Arc<Vec<String>> = Arc::new(
        (0..VALUE_POOL as u64)
            .map(|i| make_value(plan.value_size, plan.seed ^ (i << 32)))
            .collect(),
    );
    let mut sessions: Vec<D::Session> = (0..plan.clients).map(|i| driver.session(i)).collect();
    let mut error_samples = Vec::new();

    let prefill = if plan.prefill {
        let (back, result, samples) = prefill(sessions, plan.keys, values.clone(), progress).await;
        sessions = back;
        error_samples = samples;
        Some(result)
    } else {
        None
    };

    let start = Instant::now();
    let warmup_end = start + plan.warmup;
    let (deadline, tickets) = match plan.stop {
        Stop::After(d) => (Some(warmup_end + d), 0),
        Stop::Ops(n) => (None, n),
    };
    let shared = Arc::new(Shared {
        warmup_end,
        deadline,
        tickets: AtomicU64::new(tickets),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        histograms: (0..HISTOGRAM_SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
        samples: Mutex::new(error_samples),
    });

    let chooser = KeyChooser::new(plan.keys, plan.key_dist);
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(index, session)| {
            let seed = plan.seed.wrapping_add((index as u64 + 1).wrapping_mul(0x9E37_79B9));
            let source = OpSource::new(plan.workload, chooser.clone(), seed);
            tokio::spawn(client_loop(index, session, source, values.clone(), shared.clone()))
        })
        .collect();

    let done = Arc::new(AtomicBool::new(false));
    let ticker = tokio::spawn(show_progress(plan.clone(), shared.clone(), done.clone(), progress));
    let mut last_completion = warmup_end;
    for task in tasks {
        if let Ok(Some(t)) = task.await {
            last_completion = last_completion.max(t);
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = ticker.await;

    let mut histogram = new_histogram();
    for shard in &shared.histograms {
        let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        histogram.add(&*shard).expect("histograms of equal bounds");
    }
    let elapsed = match (plan.stop, deadline) {
        (Stop::After(d), _) => d,
        (Stop::Ops(_), _) => last_completion.saturating_duration_since(warmup_end),
    };
    let error_samples = shared.samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Measurement {
        histogram,
        errors: shared.errors.load(Ordering::Relaxed),
        elapsed,
        prefill,
        error_samples,
    }
}

/// One closed-loop client; returns when its last measured operation completed, if any.
async fn client_loop<S: Session>(
    index: usize,
    mut session: S,
    mut source: OpSource,
    values: Arc<Vec<String>>,
    shared: Arc<Shared>,
) -> Option<Instant> {
    let shard = &shared.histograms[index % HISTOGRAM_SHARDS];
    let mut last_completion = None;
    let mut n = index;
    loop {
        let now = Instant::now();
        let measured = now >= shared.warmup_end;
        match shared.deadline {
            Some(deadline) if now >= deadline => break,
            Some(_) => {}
            None if measured => {
                let claimed =
                    shared
                        .tickets
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(1));
                if claimed.is_err() {
                    break;
                }
            }
            None => {}
        }
        let (kind, key) = source.next_op();
        let key = key_name(key);
        n = n.wrapping_add(1);
        let value = if kind == OpKind::Get { "" } else { &values[n % values.len()] };
        let started = Instant::now();
        let result = session.execute(kind, &key, value).await;
        let finished = Instant::now();
        let counted = measured && shared.deadline.is_none_or(|d| finished <= d);
        match result {
            Ok(()) if counted => {
                let us = finished.duration_since(started).as_micros();
                let us = u64::try_from(us).unwrap_or(u64::MAX).max(1);
                shard.lock().unwrap_or_else(|e| e.into_inner()).saturating_record(us);
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
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
    last_completion
}

/// Writes every key once, with all clients sharing the work; hands the sessions back.
async fn prefill<S: Session>(
    sessions: Vec<S>,
    keys: u64,
    values: Arc<Vec<String>>,
    progress: bool,
) -> (Vec<S>, Prefill, Vec<(String, u64)>) {
    let started = Instant::now();
    let bar = progress_bar(progress, keys, "prefill  [{bar:40}] {pos}/{len} keys {elapsed}");
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let samples: Arc<Mutex<Vec<(String, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut session| {
            let (next, errors, samples, values, bar) =
                (next.clone(), errors.clone(), samples.clone(), values.clone(), bar.clone());
            tokio::spawn(async move {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= keys {
                        break;
                    }
                    let value = &values[k as usize % values.len()];
                    if let Err(e) = session.execute(OpKind::Put, &key_name(k), value).await {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let mut samples = samples.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(entry) = samples.iter_mut().find(|(m, _)| *m == e) {
                            entry.1 += 1;
                        } else if samples.len() < ERROR_SAMPLES {
                            samples.push((e, 1));
                        }
                    }
                    bar.inc(1);
                }
                session
            })
        })
        .collect();
    let mut back = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(session) => back.push(session),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    bar.finish_and_clear();
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let result =
        Prefill { keys, errors: errors.load(Ordering::Relaxed), elapsed: started.elapsed() };
    (back, result, samples)
}

/// Updates the progress bar until `done`.
async fn show_progress(plan: Plan, shared: Arc<Shared>, done: Arc<AtomicBool>, enabled: bool) {
    let (bar, by_time) = match plan.stop {
        Stop::After(d) => {
            let total = (plan.warmup + d).as_millis() as u64;
            (progress_bar(enabled, total, "{prefix:7}  [{bar:40}] {elapsed:>4}  {msg}"), true)
        }
        Stop::Ops(n) => {
            (progress_bar(enabled, n, "{prefix:7}  [{bar:40}] {pos}/{len} ops  {msg}"), false)
        }
    };
    if bar.is_hidden() {
        return;
    }
    let start = shared.warmup_end - plan.warmup;
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    while !done.load(Ordering::Relaxed) {
        interval.tick().await;
        let now = Instant::now();
        let ok = shared.ok.load(Ordering::Relaxed);
        let errors = shared.errors.load(Ordering::Relaxed);
        if now < shared.warmup_end {
            bar.set_prefix("warmup");
            bar.set_message(String::new());
        } else {
            bar.set_prefix("running");
            let secs = now.duration_since(shared.warmup_end).as_secs_f64().max(1e-3);
            bar.set_message(format!("{ok} ops  {:.0} ops/s  {errors} errors", ok as f64 / secs));
        }
        if by_time {
            bar.set_position(now.duration_since(start).as_millis() as u64);
        } else {
            bar.set_position(ok + errors);
        }
    }
    bar.finish_and_clear();
}
