//! Shared support for tests that run real `kvraft` processes (`process.rs` here, and the Docker
//! tests): a client workload that records a history, the checks run on it, and a cluster of
//! `kvraft server` child processes on loopback.
//!
//! # The workload and its checks
//!
//! [`run_workload`] runs `clients` concurrent clients (each its own [`kvraft_client::Client`],
//! so its own session) until a `watch` channel flips to `true`. Each client loops: a random
//! operation (read, append or put, by the per-mille shares in [`WorkloadOptions`]) on a random
//! key of `k0..k{keys-1}`, with a value unique in the whole run (`"c{client}.{n};"`), so that
//! appended tokens can be traced in the final values. Every call is recorded in a [`History`]
//! with its invocation and response times in microseconds since the workload started:
//!
//! - an acknowledged operation: `[call, ret]` and, for a read, the value it returned;
//! - a write that failed or timed out (its outcome is unknown: it may still take effect): kept
//!   with `ret = u64::MAX`, which is how `kvraft-linearizability` represents a call that never
//!   returned (see its `Op` docs): the checker may place it anywhere after its call, or treat
//!   it as never applied (it can always go last);
//! - a read that failed: dropped (its output is unknown, and it changed nothing).
//!
//! Then:
//! - [`read_final_values`] reads every key once more through the library and appends those
//!   reads to the history (so they are checked too);
//! - [`check`] runs the linearizability checker on the whole history and panics with its
//!   report unless the verdict is "linearizable";
//! - [`check_acked_appends`] checks that every acknowledged append that nothing could have
//!   overwritten ([`WorkloadReport::acked_appends`]) appears exactly once in the final value of
//!   its key, and that no final value holds a token twice (an operation applied twice).
//!
//! # The cluster
//!
//! [`ProcessCluster`] starts `n` `kvraft server` processes (the binary Cargo built for this
//! package) on free loopback ports, node `i` (0-based index; node id `i + 1`) with its data in
//! `<tmp>/node{i+1}` and its stdout and stderr appended to `<tmp>/node{i+1}.log` (a line
//! `=== start #k ===` marks each start). By default the nodes snapshot at 16 KiB of Raft state
//! ([`SMALL_RAFT_STATE_BYTES`]), so compaction and InstallSnapshot happen within seconds of
//! load. Dropping the cluster SIGKILLs every node and removes the directory (kept if
//! `KVRAFT_TEST_KEEP` is set); if the thread is panicking, it first prints the tail of every
//! node's log.
//!
//! Not every test binary uses every item.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kvraft_client::{Client, ClientOptions};
use kvraft_linearizability::{check_kv_with_stats, CheckResult, KvInput, Operation};
use kvraft_proto::v1 as pb;
use tokio::sync::watch;

// ------------------------------------------------------------------------------------------
// History and workload
// ------------------------------------------------------------------------------------------

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

/// What a workload did.
#[derive(Clone, Debug)]
pub struct WorkloadReport {
    /// Every acknowledged operation, and every write whose outcome is unknown (`ret =
    /// u64::MAX`); failed reads are left out. Times are microseconds since `started`.
    pub history: Vec<Operation>,
    /// Operations acknowledged.
    pub ok: usize,
    /// Operations that failed or timed out (writes among them are in `history` as pending).
    pub failed: usize,
    /// `(key, token)` of every acknowledged append that no put can have overwritten: every put
    /// on that key was acknowledged before the append was invoked. Each must appear exactly
    /// once in the key's final value (see [`check_acked_appends`]).
    pub acked_appends: Vec<(String, String)>,
    /// The keys the workload used.
    pub keys: Vec<String>,
    /// Time 0 of `history`.
    pub started: Instant,
}

impl WorkloadReport {
    /// `t` in the history's microseconds.
    pub fn us_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.started).as_micros() as u64
    }

    /// Writes whose outcome is unknown.
    pub fn unknown(&self) -> usize {
        self.history.iter().filter(|op| op.ret == u64::MAX).count()
    }

    /// How long after `at` the first write invoked at or after `at` was acknowledged, if one
    /// was. Only writes invoked after `at` count, so a reply sent by a server that was
    /// killed at `at` cannot be taken for one from its successor; the figure includes that one
    /// write's round trip.
    pub fn first_write_acked_after(&self, at: Instant) -> Option<Duration> {
        let at_us = self.us_at(at);
        self.history
            .iter()
            .filter(|op| !matches!(op.input, KvInput::Get { .. }))
            .filter(|op| op.call >= at_us && op.ret != u64::MAX)
            .map(|op| op.ret)
            .min()
            .map(|ret| Duration::from_micros(ret - at_us))
    }
}

/// A small PRNG (xorshift64*), enough to pick operations.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
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
            let rng = Rng::new(seed ^ (id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
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
    mut rng: Rng,
    keys: Arc<Vec<String>>,
    opts: WorkloadOptions,
    history: History,
    stop: watch::Receiver<bool>,
) -> (usize, usize) {
    let (mut ok, mut failed) = (0, 0);
    let mut n: u64 = 0;
    while !*stop.borrow() {
        n += 1;
        let key = keys[rng.below(keys.len())].clone();
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
            // Errors that come back at once (a refusal) must not spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    (ok, failed)
}

/// The acknowledged appends no put can have overwritten: on their key, every put was
/// acknowledged before the append was invoked, so every linearization orders the append after
/// all of them.
fn unoverwritable_appends(history: &[Operation]) -> Vec<(String, String)> {
    let mut last_put_ret: HashMap<&str, u64> = HashMap::new();
    for op in history {
        if let KvInput::Put { key, .. } = &op.input {
            let last = last_put_ret.entry(key).or_insert(0);
            *last = (*last).max(op.ret);
        }
    }
    history
        .iter()
        .filter_map(|op| match &op.input {
            KvInput::Append { key, value } if op.ret != u64::MAX => {
                let overwritable = last_put_ret.get(key.as_str()).is_some_and(|&r| r >= op.call);
                (!overwritable).then(|| (key.clone(), value.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Reads every key of `report` through a fresh client (each read may take up to `timeout`),
/// appends the reads to `report.history` (so that [`check`] covers them; client id =
/// `u64::MAX`) and returns the values. Panics if a read fails.
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

/// The checker's step budget: generous (the search takes one or two steps per operation on
/// these histories), and still a bound.
pub const CHECK_STEP_BUDGET: u64 = 200_000_000;

/// Checks the history of `report` for linearizability and returns a one-line summary; panics
/// with the checker's report if it is not linearizable or the budget ran out.
pub fn check(report: &WorkloadReport) -> String {
    let started = Instant::now();
    let (result, stats) = check_kv_with_stats(&report.history, CHECK_STEP_BUDGET);
    let took = started.elapsed();
    let unknown = report.unknown();
    let keys: HashSet<&str> = report.history.iter().map(|op| op.input.key()).collect();
    let summary = format!(
        "{} ops ({} ok, {} unknown) on {} keys",
        report.history.len(),
        report.history.len() - unknown,
        unknown,
        keys.len()
    );
    match result {
        CheckResult::Ok => format!(
            "{summary}: linearizable in {} ms ({} search steps)",
            took.as_millis(),
            stats.steps
        ),
        CheckResult::Unknown => panic!(
            "{summary}: the checker ran out of its budget of {CHECK_STEP_BUDGET} steps after \
             {} ms ({} of {} keys checked)",
            took.as_millis(),
            stats.partitions_checked,
            stats.partitions
        ),
        CheckResult::Illegal(report) => panic!("{summary}: NOT LINEARIZABLE\n{report}"),
    }
}

/// The tokens (`"c1.7;"`) of a value written by the workload.
fn tokens(value: &str) -> Vec<&str> {
    value.split_inclusive(';').collect()
}

/// Checks that every `(key, token)` in `acked` appears exactly once in `final_values[key]`,
/// and that no final value holds any token twice (the workload's values are unique, so a
/// repeat is an operation applied twice). Panics otherwise; returns a one-line summary.
pub fn check_acked_appends(
    final_values: &HashMap<String, String>,
    acked: &[(String, String)],
) -> String {
    let mut counts: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
    for (key, value) in final_values {
        let per_key = counts.entry(key).or_default();
        for token in tokens(value) {
            *per_key.entry(token).or_insert(0) += 1;
        }
        if let Some((token, n)) = per_key.iter().find(|(_, &n)| n > 1) {
            panic!(
                "{token:?} appears {n} times in the value of {key:?} (an operation applied \
                 more than once): {}",
                abbreviate(value)
            );
        }
    }
    for (key, token) in acked {
        let n = counts.get(key.as_str()).and_then(|c| c.get(token.as_str())).copied();
        if n != Some(1) {
            let value = final_values.get(key).map(|v| abbreviate(v)).unwrap_or("(not read)".into());
            panic!(
                "the acknowledged append of {token:?} to {key:?} appears {} times in its final \
                 value: {value}",
                n.unwrap_or(0)
            );
        }
    }
    let keys: HashSet<&str> = acked.iter().map(|(k, _)| k.as_str()).collect();
    format!(
        "{} acknowledged appends on {} keys each present exactly once; no duplicate in {} \
         final values ({} tokens)",
        acked.len(),
        keys.len(),
        final_values.len(),
        final_values.values().map(|v| tokens(v).len()).sum::<usize>()
    )
}

fn abbreviate(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut cut = MAX / 2;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut tail = s.len() - MAX / 2;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{:?}...({} bytes)...{:?}", &s[..cut], s.len(), &s[tail..])
}

// ------------------------------------------------------------------------------------------
// Process cluster
// ------------------------------------------------------------------------------------------

/// The default `--max-raft-state-bytes` of a [`ProcessCluster`]: small, so that the nodes
/// compact their logs (and send InstallSnapshot to a node left behind) within seconds.
pub const SMALL_RAFT_STATE_BYTES: u64 = 16 * 1024;

/// How long a starting node may take to answer `Status`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node may take to exit after SIGTERM.
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(20);

/// The cluster code `kvraft bench scale` runs, compiled into the tests too (one copy).
#[path = "../../src/process_cluster.rs"]
mod process_cluster;

/// `n` `kvraft server` processes on loopback: [`process_cluster::Cluster`] with the tests'
/// defaults (a fresh temporary directory, the binary Cargo built, [`SMALL_RAFT_STATE_BYTES`],
/// `RUST_LOG` from `KVRAFT_TEST_LOG`), whose failures panic with the nodes' logs. Node `i`
/// (0-based) has node id `i + 1`; see the [module docs](self).
#[derive(Debug)]
pub struct ProcessCluster {
    inner: process_cluster::Cluster,
}

impl ProcessCluster {
    /// Starts `nodes` servers with the default flags and waits until each answers `Status`.
    pub async fn start(name: &str, nodes: usize) -> ProcessCluster {
        ProcessCluster::start_with(name, nodes, &[]).await
    }

    /// [`ProcessCluster::start`] with extra `kvraft server` flags (e.g.
    /// `["--election-timeout-ms", "300"]`), placed after the defaults.
    pub async fn start_with(name: &str, nodes: usize, extra_args: &[&str]) -> ProcessCluster {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "kvraft-{name}-{}-{:x}",
            std::process::id(),
            nanos & 0xff_ffff
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        let mut args =
            vec!["--max-raft-state-bytes".to_string(), SMALL_RAFT_STATE_BYTES.to_string()];
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let rust_log = std::env::var("KVRAFT_TEST_LOG").unwrap_or_else(|_| "info".into());
        let bin = Path::new(env!("CARGO_BIN_EXE_kvraft"));
        match process_cluster::Cluster::start(bin, &dir, nodes, &args, &rust_log, START_TIMEOUT)
            .await
        {
            Ok(inner) => ProcessCluster { inner },
            Err(e) => panic!("the cluster did not start: {e}"),
        }
    }

    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// The client addresses (`host:port`), node 1 first.
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.endpoints()
    }

    pub fn endpoint(&self, i: usize) -> &str {
        self.inner.endpoint(i)
    }

    /// The cluster's directory (node data and logs).
    pub fn dir(&self) -> &Path {
        self.inner.root()
    }

    pub fn data_dir(&self, i: usize) -> &Path {
        self.inner.data_dir(i)
    }

    pub fn log_path(&self, i: usize) -> &Path {
        self.inner.log_path(i)
    }

    /// The log of node `i` since its last start.
    pub fn current_log(&self, i: usize) -> String {
        self.inner.current_log(i)
    }

    /// The last `lines` lines of node `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        self.inner.log_tail(i, lines)
    }

    /// Every node's log tail, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        self.inner.log_tails(lines)
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.inner.pid(i)
    }

    /// Whether node `i` was started and has not exited (an exit found here is reaped).
    pub fn is_running(&mut self, i: usize) -> bool {
        self.inner.is_running(i)
    }

    /// SIGKILLs node `i` and reaps it; panics if it is down.
    pub fn kill9(&mut self, i: usize) {
        assert!(self.inner.pid(i).is_some(), "node {} is down", i + 1);
        self.inner.kill9(i);
    }

    /// Starts node `i` again on its data directory and waits until it answers `Status`.
    pub async fn restart(&mut self, i: usize) {
        self.inner.spawn(i).unwrap_or_else(|e| panic!("{e}"));
        self.inner.wait_answering(i, START_TIMEOUT).await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Sends SIGTERM to node `i` and waits for it to exit; panics (with its log) unless it
    /// exits with status 0 within 20 s.
    pub async fn terminate(&mut self, i: usize) {
        self.inner.terminate(i, TERMINATE_TIMEOUT).await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Removes node `i`'s data directory; the node must be down.
    pub fn wipe(&mut self, i: usize) {
        self.inner.wipe(i).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Node `i`'s `Status`, or `None` if it is down or does not answer within `timeout`.
    pub async fn status(&self, i: usize, timeout: Duration) -> Option<pb::StatusReply> {
        self.inner.status(i, timeout).await
    }

    /// Every node's `Status` (`None` for those down or silent), asked concurrently.
    pub async fn statuses(&self, timeout: Duration) -> Vec<Option<pb::StatusReply>> {
        self.inner.statuses(timeout).await
    }

    /// The node that says it leads (the one with the highest term if several do), if any.
    pub async fn leader(&self) -> Option<usize> {
        self.inner.leader(Duration::from_millis(500)).await.map(|(i, _)| i)
    }

    /// Waits up to `within` for a leader; panics (with the logs) if none shows up.
    pub async fn wait_leader(&self, within: Duration) -> usize {
        match self.inner.wait_leader(within).await {
            Ok((leader, _)) => leader,
            Err(e) => panic!("{e}\n{}", self.log_tails(30)),
        }
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        self.inner.kill_all();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails(40));
        }
        if std::env::var_os("KVRAFT_TEST_KEEP").is_some() {
            eprintln!("kept {}", self.dir().display());
        } else {
            let _ = std::fs::remove_dir_all(self.dir());
        }
    }
}

/// `n` distinct loopback ports that were free a moment ago, preferably below the ephemeral
/// range (so that no outgoing connection takes one while its node is down).
pub fn free_ports(n: usize) -> Vec<u16> {
    process_cluster::free_ports(n).unwrap_or_else(|e| panic!("{e}"))
}
