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
//!
//! `phase` is the loop itself, `progress` the progress bars.

mod phase;
mod progress;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::driver::Driver;
use crate::options::{Plan, Stop};
use crate::workload::{KeyChooser, OpSource, Values};
pub use phase::Sweep;
use phase::{run_phase, Ops, Phase};
use progress::{measurement_progress, progress_bar};

/// Histograms track 1 us to 1 hour with 3 significant digits.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;
const HISTOGRAM_SIGFIG: u8 = 3;
/// Pause after a failed measured-phase operation, so that a refused connection does not become
/// a busy loop. (The prefill goes straight on, as it always has.)
const ERROR_PAUSE: Duration = Duration::from_millis(10);
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
