//! The client workload of the real-process tests, which records a [`History`].
//!
//! [`run_workload`] runs `clients` concurrent clients (each its own [`kvraft_client::Client`],
//! so its own session) until a `watch` channel flips to `true`. Each client loops: a random
//! operation (read, append or put, by the per-mille shares in [`WorkloadOptions`]) on a random
//! key of `k0..k{keys-1}`, with a value unique in the whole run (`"c{client}.{n};"`), so that
//! appended tokens can be traced in the final values. Every call is recorded with its
//! invocation and response times in microseconds since the workload started:
//!
//! - an acknowledged operation: `[call, ret]` and, for a read, the value it returned;
//! - a write that failed or timed out (its outcome is unknown: it may still take effect): kept
//!   with `ret = u64::MAX`, which is how `kvraft-linearizability` represents a call that never
//!   returned (see its `Op` docs): the checker may place it anywhere after its call, or treat
//!   it as never applied (it can always go last);
//! - a read that failed: dropped (its output is unknown, and it changed nothing).
//!
//! Then [`read_final_values`] reads every key once more and appends those reads to the
//! history (so they are checked too), and the [`WorkloadReport`] checks run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kvraft_client::{Client, ClientOptions};
use kvraft_linearizability::Operation;
use kvraft_raft::DetRng;
use tokio::sync::watch;

use crate::history::History;
use crate::report::{unoverwritable_appends, WorkloadReport};

/// Pause after a failed operation, so that errors that come back at once (a refusal) do not
/// make the client spin.
const ERROR_PAUSE: Duration = Duration::from_millis(20);

/// What [`run_workload`] does.
#[derive(Clone, Debug)]
pub struct WorkloadOptions {
    /// Concurrent clients, each with its own session.
    pub clients: usize,
    /// Keys `k0..k{keys-1}`.
    pub keys: usize,
    /// Share of reads, per mille.
    pub read_per_mille: u32,
    /// Share of appends, per mille; the rest (1000 - reads - appends) are puts.
    pub append_per_mille: u32,
    /// Limit of one attempt at one server ([`ClientOptions::call_timeout`]).
    pub call_timeout: Duration,
    /// Limit of one operation, retries included ([`ClientOptions::op_timeout`]); past it the
    /// operation's outcome is unknown.
    pub op_timeout: Duration,
}

impl Default for WorkloadOptions {
    fn default() -> WorkloadOptions {
        WorkloadOptions {
            clients: 4,
            keys: 8,
            read_per_mille: 300,
            append_per_mille: 600,
            call_timeout: Duration::from_secs(1),
            op_timeout: Duration::from_secs(10),
        }
    }
}

/// Runs `opts.clients` clients against `endpoints` until `stop` holds `true` (each finishes
/// the operation it is in, which takes at most `opts.op_timeout`), and returns what they did.
/// See the [module docs](self) for how operations are recorded.
pub async fn run_workload(
    endpoints: Vec<String>,
    opts: WorkloadOptions,
    stop: watch::Receiver<bool>,
) -> WorkloadReport {
    assert!(opts.clients > 0 && opts.keys > 0, "{opts:?}");
    assert!(opts.read_per_mille + opts.append_per_mille <= 1000, "{opts:?}");
    let history = History::new();
    let keys: Arc<Vec<String>> = Arc::new((0..opts.keys).map(|k| format!("k{k}")).collect());
    // Each run draws different choices; the history, not the seed, is what gets checked.
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    let tasks: Vec<_> = (0..opts.clients)
        .map(|id| {
            let client = Client::new(ClientOptions {
                endpoints: endpoints.clone(),
                call_timeout: opts.call_timeout,
                op_timeout: Some(opts.op_timeout),
                ..ClientOptions::default()
            })
            .expect("valid endpoints");
            let rng = DetRng::new(seed ^ (id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            tokio::spawn(client_loop(
                id as u64,
                client,
                rng,
                keys.clone(),
                opts.clone(),
                history.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let (mut ok, mut failed) = (0, 0);
    for task in tasks {
        let (o, f) = task.await.expect("a workload client panicked");
        ok += o;
        failed += f;
    }
    let history_ops = history.operations();
    let acked_appends = unoverwritable_appends(&history_ops);
    WorkloadReport {
        history: history_ops,
        ok,
        failed,
        acked_appends,
        keys: keys.to_vec(),
        started: history.start(),
    }
}

/// One client's loop; returns (acknowledged, failed).
async fn client_loop(
    id: u64,
    mut client: Client,
    mut rng: DetRng,
    keys: Arc<Vec<String>>,
    opts: WorkloadOptions,
    history: History,
    stop: watch::Receiver<bool>,
) -> (usize, usize) {
    let (mut ok, mut failed) = (0, 0);
    let mut n: u64 = 0;
    while !*stop.borrow() {
        n += 1;
        let key = keys[rng.below(keys.len() as u64) as usize].clone();
        let roll = rng.below(1000) as u32;
        let call = history.now_us();
        let succeeded = if roll < opts.read_per_mille {
            match client.get(key.clone()).await {
                Ok(value) => {
                    history.record(Operation::get(id, key, value, call, history.now_us()));
                    true
                }
                Err(_) => false,
            }
        } else {
            let value = format!("c{id}.{n};");
            let append = roll < opts.read_per_mille + opts.append_per_mille;
            let result = if append {
                client.append(key.clone(), value.clone()).await
            } else {
                client.put(key.clone(), value.clone()).await
            };
            let ret = if result.is_ok() { history.now_us() } else { u64::MAX };
            history.record(if append {
                Operation::append(id, key, value, call, ret)
            } else {
                Operation::put(id, key, value, call, ret)
            });
            result.is_ok()
        };
        if succeeded {
            ok += 1;
        } else {
            failed += 1;
            tokio::time::sleep(ERROR_PAUSE).await;
        }
    }
    (ok, failed)
}

/// Reads every key of `report` through a fresh client (each read may take up to `timeout`),
/// appends the reads to `report.history` (so that the linearizability check covers them;
/// client id `u64::MAX`) and returns the values. Panics if a read fails.
pub async fn read_final_values(
    endpoints: &[String],
    report: &mut WorkloadReport,
    timeout: Duration,
) -> HashMap<String, String> {
    let mut client = Client::new(ClientOptions {
        endpoints: endpoints.to_vec(),
        op_timeout: Some(timeout),
        ..ClientOptions::default()
    })
    .expect("valid endpoints");
    let mut values = HashMap::new();
    for key in report.keys.clone() {
        let call = report.us_at(Instant::now());
        let value = match client.get(key.clone()).await {
            Ok(value) => value,
            Err(e) => panic!("final read of {key} failed: {e}"),
        };
        let ret = report.us_at(Instant::now());
        report.history.push(Operation::get(u64::MAX, key.clone(), value.clone(), call, ret));
        values.insert(key, value);
    }
    values
}
