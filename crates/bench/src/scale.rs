//! `kvraft-bench scale`: the memory and scale figures of issue 6. Resident memory per node
//! with N keys of V bytes; the time to take a snapshot of that state, to restart a node from
//! it, and to bring a wiped follower back by InstallSnapshot, in MB/s beside the disk's and
//! loopback's raw rates. Figures are printed, never asserted.
//!
//! One run, in order (progress on stderr):
//! 1. start a 3-node cluster of `kvraft server` child processes on loopback (a
//!    [`ProcessCluster`] of the `kvraft` binary beside this one, or `--kvraft-bin`), data under
//!    a fresh directory in `--dir`, and note each node's resident size (VmRSS) while it is
//!    empty ([`cluster`]);
//! 2. load: write every key once with many concurrent bench clients ([`load`]);
//! 3. settle: overwrite keys with the same values until every node's snapshot covers the
//!    load (so the snapshot on disk, and the one a wiped follower receives, holds every key),
//!    wait until every node has applied everything, and note VmRSS and VmHWM (the peak), the
//!    snapshot file and the WAL of each node;
//! 4. restart a follower after SIGKILL, then after SIGTERM: how long until it answers and
//!    until it has applied the leader's commit index of the moment it stopped;
//! 5. wipe a follower (SIGTERM, remove its data directory, start it again with the same id)
//!    and stop the leader, whose progress would never resend what the wiped node lost (see
//!    [`bring_back_wiped`]): how long until the third node leads, until the wiped node has
//!    received its snapshot and until it has caught up; check that the snapshot it wrote to
//!    disk holds sampled keys with their values; restart the old leader and read those keys
//!    through the cluster;
//! 6. stop the cluster; measure snapshot encoding, durable writing and reading back in this
//!    process on the same code paths ([`in_process`]), since the server does not time them;
//! 7. the raw rates: sequential write + fdatasync on the same disk, TCP over loopback
//!    ([`raw`]).
//!
//! Every child is SIGKILLed when the cluster is dropped: on success, on error and on Ctrl-C
//! or SIGTERM (the run is abandoned, the cluster dropped, then the process exits with 130).

pub mod cluster;
pub mod in_process;
pub mod load;
pub mod raw;
pub mod report;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvraft_client::{Client, ClientOptions};
use kvraft_kv::{KvStateMachine, SessionLimits};
use kvraft_proto::v1 as pb;
use kvraft_storage::snapshot_file::{decode_snapshot, parse_snapshot_file_name};

use cluster::{file_bytes, node_memory, Memory};
use kvraft_server::cli::parse_duration;

use in_process::SnapshotCosts;
use kvraft_testkit::ProcessCluster;
use load::Loader;
use report::{
    mb_per_sec, LoadFigures, Machine, MemoryFigures, NodeDisk, NodeMemory, RawFigures,
    RestartFigures, ScaleReport, Settings, SnapshotFigures, WipedFigures,
};

use crate::runner::SweepOutcome;
use crate::workload::{key_name, Values};

/// Nodes in the cluster.
const NODES: usize = 3;
/// How long the nodes may take to start and elect a leader.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one `Status` call may take.
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a node may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// A quiet pause before reading memory figures.
const IDLE: Duration = Duration::from_secs(2);
/// Progress lines while loading.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How often settling checks the nodes' snapshots.
const SETTLE_POLL: Duration = Duration::from_millis(250);
/// Keys sampled to check the wiped follower's data.
const SAMPLED_KEYS: u64 = 64;
/// The seed of the values.
const VALUE_SEED: u64 = 6;
/// Clients beyond this would overflow the servers' session table (10,000 sessions).
const MAX_CLIENTS: usize = 5000;

/// `kvraft-bench scale`.
#[derive(Clone, Debug, clap::Args)]
pub struct ScaleArgs {
    /// Keys to load (each written once; names `bench/0000000000`..., 16 bytes).
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    pub keys: u64,
    /// Bytes per value (ASCII).
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    pub value_size: usize,
    /// Concurrent loading clients, each with its own session.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub clients: usize,
    /// Connection sets (one connection per server each) shared by the clients.
    #[arg(long, default_value_t = 32, value_name = "M")]
    pub connections: usize,
    /// The nodes' --max-raft-state-bytes: they snapshot at 80% of it (0 never snapshots, and
    /// the wiped follower then replays the whole log).
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_raft_state_bytes: u64,
    /// Where to make the run's directory (node data and logs, the in-process snapshot, the raw
    /// disk test): the disk measured. [default: the system's temporary directory]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep the run's directory (its path is printed and is in the report).
    #[arg(long)]
    pub keep: bool,
    /// MiB written (in 1 MiB writes, then one fdatasync) for the disk's raw rate.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub raw_disk_mib: u64,
    /// MiB sent over loopback TCP (in 1 MiB writes) for its raw rate.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub raw_net_mib: u64,
    /// Limit on each wait: settling, a node catching up, a restart.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Print the report as one JSON object instead of Markdown.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// The `kvraft` binary the nodes run (`kvraft server`). [default: `kvraft` in the
    /// directory of this executable, where Cargo builds both]
    #[arg(long, value_name = "FILE")]
    pub kvraft_bin: Option<PathBuf>,
}

impl ScaleArgs {
    fn check(&self) -> Result<(), String> {
        if self.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        if self.value_size == 0 {
            return Err("--value-size must be at least 1".into());
        }
        if self.clients == 0 || self.clients > MAX_CLIENTS {
            return Err(format!("--clients must be 1 to {MAX_CLIENTS}"));
        }
        if self.connections == 0 || self.connections > self.clients {
            return Err(format!("--connections must be 1 to --clients ({})", self.clients));
        }
        if self.raw_disk_mib == 0 || self.raw_net_mib == 0 {
            return Err("--raw-disk-mib and --raw-net-mib must be at least 1".into());
        }
        Ok(())
    }
}

pub async fn run(args: ScaleArgs) -> ExitCode {
    if let Err(e) = args.check() {
        eprintln!("kvraft-bench scale: {e}");
        return ExitCode::from(2);
    }
    let kvraft = match kvraft_bin(args.kvraft_bin.as_deref()) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("kvraft-bench scale: {e}");
            return ExitCode::from(2);
        }
    };
    let progress = Progress { started: Instant::now(), quiet: args.quiet };
    // On a signal the run's future is dropped here, and with it the cluster (every child is
    // killed) and the run's directory.
    let result = tokio::select! {
        result = measure(&args, &kvraft, &progress) => Some(result),
        () = kvraft_server::shutdown_signal() => None,
    };
    let report = match result {
        None => {
            eprintln!("kvraft-bench scale: interrupted; the cluster is stopped");
            std::process::exit(130);
        }
        Some(Err(e)) => {
            eprintln!("kvraft-bench scale: {e}");
            return ExitCode::FAILURE;
        }
        Some(Ok(report)) => report,
    };
    if let Some(path) = &args.json_out {
        if let Err(e) = std::fs::write(path, report.to_json() + "\n") {
            eprintln!("kvraft-bench scale: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let text = if args.json { report.to_json() + "\n" } else { report.to_markdown() };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

/// Progress lines on stderr, stamped with the time since the start.
#[derive(Debug)]
struct Progress {
    started: Instant,
    quiet: bool,
}

impl Progress {
    fn say(&self, message: impl AsRef<str>) {
        if !self.quiet {
            let t = self.started.elapsed().as_secs_f64();
            eprintln!("[scale {t:7.1}s] {}", message.as_ref());
        }
    }
}

/// The run's directory, removed when dropped unless kept.
#[derive(Debug)]
struct RunDir {
    path: PathBuf,
    keep: bool,
}

impl RunDir {
    fn create(parent: &Path, keep: bool) -> Result<RunDir, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let path =
            parent.join(format!("kvraft-scale-{}-{:x}", std::process::id(), nanos & 0xff_ffff));
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(RunDir { path, keep })
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kvraft-bench scale: kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn is_snapshot_file(name: &str) -> bool {
    parse_snapshot_file_name(name).is_some()
}

fn is_wal_segment(name: &str) -> bool {
    name.starts_with("wal-") && name.ends_with(".log")
}

fn load_average() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default()
}

fn machine(load_average_start: Vec<f64>) -> Machine {
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?.to_string();
            line["MemTotal:".len()..].trim().trim_end_matches("kB").trim().parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024);
    Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_bytes,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        load_average_start,
        load_average_end: load_average(),
    }
}

fn role_name(role: i32) -> &'static str {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Leader) => "leader",
        Ok(pb::Role::Follower) => "follower",
        Ok(pb::Role::Candidate | pb::Role::PreCandidate) => "candidate",
        _ => "unknown",
    }
}

/// The state machine in the newest snapshot file of `dir`, read while its node may run (a
/// snapshot file is renamed into place whole; one removed meanwhile is looked for again).
fn read_snapshot_state(dir: &Path) -> Result<KvStateMachine, String> {
    for _ in 0..10 {
        let newest = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                parse_snapshot_file_name(&name).map(|meta| (meta.index, name))
            })
            .max();
        let Some((_, name)) = newest else {
            return Err(format!("{}: no snapshot file", dir.display()));
        };
        let bytes = match std::fs::read(dir.join(&name)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{name}: {e}")),
        };
        let snapshot = decode_snapshot(bytes).map_err(|e| format!("{name}: {e}"))?;
        return KvStateMachine::decode_snapshot(&snapshot.data, SessionLimits::default())
            .map_err(|e| format!("{name}: {e}"));
    }
    Err(format!("{}: snapshot files keep changing", dir.display()))
}

/// The keys sampled for verification: spread evenly over `0..keys`, the last one included.
fn sampled_keys(keys: u64) -> Vec<u64> {
    let n = SAMPLED_KEYS.min(keys);
    (0..n).map(|i| if n == 1 { 0 } else { i * (keys - 1) / (n - 1) }).collect()
}

/// The `kvraft` binary to run: `given`, or the one beside this executable.
fn kvraft_bin(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let beside = exe.with_file_name(format!("kvraft{}", std::env::consts::EXE_SUFFIX));
    if beside.is_file() {
        Ok(beside)
    } else {
        Err(format!(
            "no kvraft binary beside {} (build it: cargo build --release -p kvraft), or name \
             one with --kvraft-bin",
            exe.display()
        ))
    }
}

/// Stops node `i` with `signal` (`KILL` or `TERM`), starts it again, and times the restart
/// until it has applied the leader's commit index of the moment it stopped.
async fn restart(
    cluster: &mut ProcessCluster,
    i: usize,
    signal: &str,
    timeout: Duration,
) -> Result<RestartFigures, String> {
    let (_, leader) = cluster.wait_leader(timeout).await?;
    let target = leader.commit_index;
    let recovered_bytes = file_bytes(cluster.data_dir(i), is_snapshot_file)
        + file_bytes(cluster.data_dir(i), is_wal_segment);
    let stop_seconds = if signal == "KILL" {
        cluster.kill9(i);
        None
    } else {
        Some(cluster.terminate(i, STOP_TIMEOUT).await?.as_secs_f64())
    };
    let started = Instant::now();
    cluster.spawn(i)?;
    let answer = cluster.wait_answering(i, timeout).await?;
    cluster.wait_until(i, "caught up", timeout, |s| s.applied_index >= target).await?;
    let caught_up = started.elapsed().as_secs_f64();
    Ok(RestartFigures {
        node_id: i as u64 + 1,
        signal: signal.into(),
        stop_seconds,
        recovered_bytes,
        target_index: target,
        answer_seconds: answer.as_secs_f64(),
        caught_up_seconds: caught_up,
        mb_per_sec: mb_per_sec(recovered_bytes, caught_up),
    })
}

/// Stops a follower, removes its data directory and starts it again with the same id, then
/// times how long it takes to receive the snapshot and catch up; then checks its data.
///
/// A leader never lowers a follower's match index (Raft assumes a node keeps what it synced),
/// so the leader the wiped node had would go on sending only new entries and never resend what
/// was lost: the wiped node would stay empty. The old leader is therefore stopped too, so that
/// the third node is elected (with the wiped node's vote) and starts afresh: it probes the
/// wiped node, finds its log empty and sends its snapshot. The old leader is restarted once the
/// wiped node has caught up.
async fn bring_back_wiped(
    cluster: &mut ProcessCluster,
    values: &Values,
    keys: u64,
    timeout: Duration,
    progress: &Progress,
) -> Result<WipedFigures, String> {
    let (old_leader, _) = cluster.wait_leader(timeout).await?;
    let wiped = (0..NODES).find(|&i| i != old_leader).expect("3 nodes");
    let next_leader = (0..NODES).find(|&i| i != old_leader && i != wiped).expect("3 nodes");
    progress.say(format!(
        "wiping node {}, stopping the leader (node {}) so that node {} leads afresh",
        wiped + 1,
        old_leader + 1,
        next_leader + 1
    ));
    cluster.terminate(wiped, STOP_TIMEOUT).await?;
    cluster.wipe(wiped)?;
    cluster.terminate(old_leader, STOP_TIMEOUT).await?;
    let snapshot_index = cluster
        .status(next_leader, STATUS_TIMEOUT)
        .await
        .ok_or_else(|| format!("node {} does not answer", next_leader + 1))?
        .snapshot_index;
    let snapshot_bytes = file_bytes(cluster.data_dir(next_leader), is_snapshot_file);

    let times = time_wiped_return(cluster, wiped, next_leader, snapshot_index, timeout).await?;
    progress.say(format!(
        "  node {} leads after {}; snapshot ({}) received after {}, caught up after {}",
        next_leader + 1,
        report::secs(times.elected),
        report::mb(snapshot_bytes),
        report::secs(times.received),
        report::secs(times.caught_up)
    ));
    tokio::time::sleep(IDLE).await;
    let rss_bytes = node_memory(cluster, wiped).unwrap_or_default().rss_bytes;
    let samples = sampled_keys(keys);
    let (snapshot_keys, verified_keys) = if snapshot_index > 0 {
        let state = read_snapshot_state(cluster.data_dir(wiped))?;
        let verified = samples.iter().filter(|&&k| state.get(&key_name(k)) == values.of(k)).count();
        (state.len() as u64, verified as u64)
    } else {
        (0, 0)
    };
    let wiped_snapshot_bytes = file_bytes(cluster.data_dir(wiped), is_snapshot_file);

    progress.say(format!("restarting node {} (the old leader)", old_leader + 1));
    let cluster_reads_ok = restart_and_read(cluster, old_leader, &samples, values, timeout).await?;
    Ok(WipedFigures {
        node_id: wiped as u64 + 1,
        data_dir: cluster.data_dir(wiped).display().to_string(),
        old_leader_node_id: old_leader as u64 + 1,
        leader_node_id: next_leader as u64 + 1,
        leader_snapshot_bytes: snapshot_bytes,
        leader_snapshot_index: snapshot_index,
        target_index: times.target,
        answer_seconds: times.answer.as_secs_f64(),
        leader_elected_seconds: times.elected,
        received_seconds: times.received,
        caught_up_seconds: times.caught_up,
        receive_mb_per_sec: mb_per_sec(snapshot_bytes, times.received - times.elected),
        catch_up_mb_per_sec: mb_per_sec(snapshot_bytes, times.caught_up - times.elected),
        mb_per_sec: mb_per_sec(snapshot_bytes, times.caught_up),
        snapshot_bytes: wiped_snapshot_bytes,
        rss_bytes,
        snapshot_keys,
        sampled_keys: samples.len() as u64,
        verified_keys,
        cluster_reads_ok,
    })
}

/// How long the wiped node took to come back, from its start.
#[derive(Debug)]
struct WipedTimes {
    /// Until it answered a status call.
    answer: Duration,
    /// Seconds until `next_leader` led.
    elected: f64,
    /// The new leader's commit index once elected: what the wiped node must apply.
    target: u64,
    /// Seconds until the wiped node held the leader's snapshot.
    received: f64,
    /// Seconds until it had applied `target`.
    caught_up: f64,
}

/// Starts the wiped node again and times its return: `next_leader`'s election, the snapshot
/// (at least `snapshot_index`) received, and the catch-up.
async fn time_wiped_return(
    cluster: &mut ProcessCluster,
    wiped: usize,
    next_leader: usize,
    snapshot_index: u64,
    timeout: Duration,
) -> Result<WipedTimes, String> {
    let started = Instant::now();
    cluster.spawn(wiped)?;
    let answer = cluster.wait_answering(wiped, timeout).await?;
    cluster
        .wait_until(next_leader, "leading", timeout, |s| s.role == pb::Role::Leader as i32)
        .await?;
    let elected = started.elapsed().as_secs_f64();
    let target = cluster
        .status(next_leader, STATUS_TIMEOUT)
        .await
        .ok_or_else(|| format!("node {} does not answer", next_leader + 1))?
        .commit_index;
    cluster
        .wait_until(wiped, "holding the leader's snapshot", timeout, |s| {
            s.snapshot_index >= snapshot_index
        })
        .await?;
    let received = started.elapsed().as_secs_f64();
    cluster.wait_until(wiped, "caught up", timeout, |s| s.applied_index >= target).await?;
    let caught_up = started.elapsed().as_secs_f64();
    Ok(WipedTimes { answer, elected, target, received, caught_up })
}

/// Restarts node `i` (the old leader), waits until every node has applied everything, and
/// reads the `samples` through the cluster: true if each has its value.
async fn restart_and_read(
    cluster: &mut ProcessCluster,
    i: usize,
    samples: &[u64],
    values: &Values,
    timeout: Duration,
) -> Result<bool, String> {
    cluster.spawn(i)?;
    cluster.wait_answering(i, timeout).await?;
    cluster.wait_converged(timeout).await?;
    let mut client = Client::new(ClientOptions {
        op_timeout: Some(timeout),
        ..ClientOptions::new(cluster.endpoints())
    })
    .map_err(|e| e.to_string())?;
    let mut cluster_reads_ok = true;
    for &k in samples {
        let value = client.get(key_name(k)).await.map_err(|e| format!("get {k}: {e}"))?;
        cluster_reads_ok &= value == values.of(k);
    }
    Ok(cluster_reads_ok)
}

/// The whole run; on failure the run's directory is kept, for the nodes' logs.
async fn measure(
    args: &ScaleArgs,
    kvraft: &Path,
    progress: &Progress,
) -> Result<ScaleReport, String> {
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut run_dir = RunDir::create(&parent, args.keep)?;
    let result = measure_in(args, kvraft, &run_dir.path, progress).await;
    if result.is_err() {
        run_dir.keep = true;
    }
    result
}

/// The run's seven steps (see the module docs), in order; the figures are assembled at the end.
async fn measure_in(
    args: &ScaleArgs,
    kvraft: &Path,
    root: &Path,
    progress: &Progress,
) -> Result<ScaleReport, String> {
    let load_average_start = load_average();
    let root = root.to_path_buf();
    let timeout = args.timeout;

    // 1. The empty cluster.
    let (mut cluster, empty) = start_cluster(args, kvraft, &root, progress).await?;

    // 2. The load.
    let values = Values::new(args.value_size, VALUE_SEED);
    let loader = Loader::new(&cluster.endpoints(), args.clients, args.connections, values.clone())?;
    let loaded = load(args, &loader, progress).await;
    let (_, leader) = cluster.wait_leader(timeout).await?;
    let load_commit = leader.commit_index;

    // 3. Settle.
    let settled = settle(args, &cluster, &loader, load_commit, progress).await?;
    let (memory_nodes, on_disk) = node_figures(&cluster, &empty, args.keys).await;
    progress.say(format!(
        "settled in {} ({} overwrites); RSS {}",
        report::secs(settled.seconds),
        report::thousands(settled.puts),
        memory_nodes
            .iter()
            .map(|n| format!("{} (peak {})", report::mb(n.rss_bytes), report::mb(n.hwm_bytes)))
            .collect::<Vec<_>>()
            .join(" / ")
    ));

    // 4. Restarts of a follower.
    let (restart_after_kill, restart_after_term) =
        restart_follower(&mut cluster, timeout, progress).await?;

    // 5. A wiped follower.
    let wiped_follower =
        bring_back_wiped(&mut cluster, &values, args.keys, timeout, progress).await?;

    // 6. Stop the cluster; snapshot costs in this process.
    progress.say("stopping the cluster");
    if let Err(e) = cluster.stop(STOP_TIMEOUT).await {
        progress.say(format!("  not every node stopped cleanly: {e}"));
    }
    drop(cluster);
    drop(loader);
    let costs = snapshot_costs(&root, args.keys, &values, args.clients, progress).await?;

    // 7. Raw rates.
    let raw = raw_rates(args, &root, progress).await?;

    let payload_bytes_per_key = (key_name(0).len() + args.value_size) as f64;
    let bytes_per_key =
        memory_nodes.iter().map(|n| n.bytes_per_key).sum::<f64>() / memory_nodes.len() as f64;
    Ok(ScaleReport {
        machine: machine(load_average_start),
        settings: Settings {
            nodes: NODES,
            keys: args.keys,
            key_bytes: key_name(0).len(),
            value_bytes: args.value_size,
            clients: args.clients,
            connections: args.connections,
            max_raft_state_bytes: args.max_raft_state_bytes,
            dir: root.display().to_string(),
        },
        load: load_figures(&loaded, payload_bytes_per_key, load_commit, &settled),
        memory: MemoryFigures {
            nodes: memory_nodes,
            bytes_per_key,
            payload_bytes_per_key,
            state_machine_bytes_per_key: costs
                .state_machine_bytes
                .map(|b| b as f64 / args.keys as f64),
        },
        on_disk,
        snapshot: snapshot_figures(&costs),
        restart_after_kill,
        restart_after_term,
        wiped_follower,
        raw,
    })
}

/// Step 1: starts the cluster, waits for a leader and notes each node's memory while empty.
async fn start_cluster(
    args: &ScaleArgs,
    kvraft: &Path,
    root: &Path,
    progress: &Progress,
) -> Result<(ProcessCluster, Vec<Memory>), String> {
    progress.say(format!("starting {NODES} nodes, data in {}", root.display()));
    let extra = vec!["--max-raft-state-bytes".to_string(), args.max_raft_state_bytes.to_string()];
    let rust_log = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let cluster =
        ProcessCluster::start(kvraft, root, NODES, &extra, &rust_log, START_TIMEOUT).await?;
    cluster.wait_leader(START_TIMEOUT).await?;
    tokio::time::sleep(IDLE).await;
    let empty: Vec<Memory> =
        (0..NODES).map(|i| node_memory(&cluster, i).unwrap_or_default()).collect();
    progress.say(format!(
        "empty cluster: RSS {}",
        empty.iter().map(|m| report::mb(m.rss_bytes)).collect::<Vec<_>>().join(" / ")
    ));
    Ok((cluster, empty))
}

/// Step 2: writes every key once.
async fn load(args: &ScaleArgs, loader: &Loader, progress: &Progress) -> SweepOutcome {
    progress.say(format!(
        "loading {} keys of {} B with {} clients over {} connections",
        report::thousands(args.keys),
        args.value_size,
        args.clients,
        args.connections
    ));
    let load_started = Instant::now();
    let keys = args.keys;
    let loaded = loader
        .load(keys, PROGRESS_EVERY, |done| {
            let rate = done as f64 / load_started.elapsed().as_secs_f64();
            progress.say(format!(
                "  {} / {} keys, {} keys/s",
                report::thousands(done),
                report::thousands(keys),
                report::thousands(rate as u64)
            ));
        })
        .await;
    progress.say(format!(
        "loaded {} keys in {} ({} errors)",
        report::thousands(loaded.ok),
        report::secs(loaded.elapsed.as_secs_f64()),
        loaded.errors
    ));
    loaded
}

/// What settling took.
#[derive(Debug)]
struct Settled {
    /// Overwrites made.
    puts: u64,
    /// Whether every node's snapshot covered the load in the end (not before the timeout).
    covered: bool,
    seconds: f64,
}

/// Step 3: overwrites keys with their own values until every node's snapshot covers
/// `load_commit` (never when snapshots are off), then waits until every node has applied
/// everything.
async fn settle(
    args: &ScaleArgs,
    cluster: &ProcessCluster,
    loader: &Loader,
    load_commit: u64,
    progress: &Progress,
) -> Result<Settled, String> {
    let timeout = args.timeout;
    let settle_started = Instant::now();
    let (puts, covered) = if args.max_raft_state_bytes == 0 {
        (0, false)
    } else {
        progress.say(format!(
            "settling: overwriting keys until every node's snapshot covers index {load_commit}"
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let watch = async {
            loop {
                tokio::time::sleep(SETTLE_POLL).await;
                let statuses = cluster.statuses(STATUS_TIMEOUT).await;
                let covered = statuses
                    .iter()
                    .all(|s| s.as_ref().is_some_and(|s| s.snapshot_index >= load_commit));
                if covered || settle_started.elapsed() > timeout {
                    stop.store(true, Ordering::Relaxed);
                    return covered;
                }
            }
        };
        let overwrite = loader.overwrite_until(
            args.keys,
            PROGRESS_EVERY,
            |done| progress.say(format!("  {} overwrites", report::thousands(done))),
            stop.clone(),
        );
        let (outcome, covered) = tokio::join!(overwrite, watch);
        (outcome.ok, covered)
    };
    let seconds = settle_started.elapsed().as_secs_f64();
    cluster.wait_converged(timeout).await?;
    Ok(Settled { puts, covered, seconds })
}

/// Step 3, once settled: each node's memory (against its `empty` figure) and its files.
async fn node_figures(
    cluster: &ProcessCluster,
    empty: &[Memory],
    keys: u64,
) -> (Vec<NodeMemory>, Vec<NodeDisk>) {
    tokio::time::sleep(IDLE).await;
    let statuses = cluster.statuses(STATUS_TIMEOUT).await;
    let mut memory_nodes = Vec::new();
    let mut on_disk = Vec::new();
    for (i, status) in statuses.iter().enumerate() {
        let m = node_memory(cluster, i).unwrap_or_default();
        let grown = m.rss_bytes.saturating_sub(empty[i].rss_bytes);
        memory_nodes.push(NodeMemory {
            node_id: i as u64 + 1,
            role: status.as_ref().map_or("down", |s| role_name(s.role)).to_string(),
            empty_rss_bytes: empty[i].rss_bytes,
            rss_bytes: m.rss_bytes,
            hwm_bytes: m.hwm_bytes,
            bytes_per_key: grown as f64 / keys as f64,
        });
        on_disk.push(NodeDisk {
            node_id: i as u64 + 1,
            snapshot_index: status.as_ref().map_or(0, |s| s.snapshot_index),
            snapshot_bytes: file_bytes(cluster.data_dir(i), is_snapshot_file),
            wal_bytes: file_bytes(cluster.data_dir(i), is_wal_segment),
        });
    }
    (memory_nodes, on_disk)
}

/// The load's figures, settling included.
fn load_figures(
    loaded: &SweepOutcome,
    payload_bytes_per_key: f64,
    commit_index: u64,
    settled: &Settled,
) -> LoadFigures {
    let seconds = loaded.elapsed.as_secs_f64();
    LoadFigures {
        keys_written: loaded.ok,
        errors: loaded.errors,
        seconds,
        keys_per_sec: loaded.ok as f64 / seconds.max(1e-9),
        payload_mb_per_sec: mb_per_sec(loaded.ok * payload_bytes_per_key as u64, seconds),
        commit_index,
        settle_puts: settled.puts,
        settle_seconds: settled.seconds,
        settled: settled.covered,
        error_samples: loaded.error_samples.iter().map(|(m, n)| format!("{m} (x{n})")).collect(),
    }
}

/// Step 4: restarts a follower after SIGKILL, then after SIGTERM.
async fn restart_follower(
    cluster: &mut ProcessCluster,
    timeout: Duration,
    progress: &Progress,
) -> Result<(RestartFigures, RestartFigures), String> {
    let (leader_index, _) = cluster.wait_leader(timeout).await?;
    let follower = (0..NODES).find(|&i| i != leader_index).expect("3 nodes");
    progress.say(format!("restarting node {} after SIGKILL", follower + 1));
    let after_kill = restart(cluster, follower, "KILL", timeout).await?;
    progress.say(format!("  caught up in {}", report::secs(after_kill.caught_up_seconds)));
    progress.say(format!("restarting node {} after SIGTERM", follower + 1));
    let after_term = restart(cluster, follower, "TERM", timeout).await?;
    progress.say(format!("  caught up in {}", report::secs(after_term.caught_up_seconds)));
    Ok((after_kill, after_term))
}

/// Step 6, once the cluster is stopped: the snapshot costs, measured in this process.
async fn snapshot_costs(
    root: &Path,
    keys: u64,
    values: &Values,
    clients: usize,
    progress: &Progress,
) -> Result<SnapshotCosts, String> {
    progress.say("snapshot costs in process: building the same state machine");
    let in_process_dir = root.join("in-process");
    let costs = {
        let (dir, values) = (in_process_dir.clone(), values.clone());
        tokio::task::spawn_blocking(move || in_process::measure(&dir, keys, &values, clients))
            .await
            .map_err(|e| format!("the in-process measurement failed: {e}"))??
    };
    let _ = std::fs::remove_dir_all(&in_process_dir);
    Ok(costs)
}

/// The snapshot figures of the report, from the in-process costs.
fn snapshot_figures(costs: &SnapshotCosts) -> SnapshotFigures {
    let secs = |d: Duration| d.as_secs_f64();
    SnapshotFigures {
        keys: costs.keys,
        sessions: costs.sessions,
        build_seconds: secs(costs.build),
        data_bytes: costs.data_bytes,
        encode_seconds: secs(costs.encode),
        encode_mb_per_sec: mb_per_sec(costs.data_bytes, secs(costs.encode)),
        file_bytes: costs.file_bytes,
        write_seconds: secs(costs.write_durable),
        write_mb_per_sec: mb_per_sec(costs.file_bytes, secs(costs.write_durable)),
        read_seconds: secs(costs.open_read),
        read_mb_per_sec: mb_per_sec(costs.file_bytes, secs(costs.open_read)),
        decode_seconds: secs(costs.decode),
        decode_mb_per_sec: mb_per_sec(costs.data_bytes, secs(costs.decode)),
        restore_mb_per_sec: mb_per_sec(costs.file_bytes, secs(costs.open_read + costs.decode)),
        round_trip_ok: costs.round_trip_ok,
    }
}

/// Step 7: the disk's and loopback's raw rates.
async fn raw_rates(
    args: &ScaleArgs,
    root: &Path,
    progress: &Progress,
) -> Result<RawFigures, String> {
    progress.say(format!(
        "raw rates: {} MiB to disk, {} MiB over loopback",
        args.raw_disk_mib, args.raw_net_mib
    ));
    let (disk_mib, net_mib, dir) = (args.raw_disk_mib, args.raw_net_mib, root.to_path_buf());
    let (disk, net) = tokio::task::spawn_blocking(move || {
        Ok::<_, String>((raw::disk_write(&dir, disk_mib)?, raw::loopback(net_mib)?))
    })
    .await
    .map_err(|e| format!("the raw measurement failed: {e}"))??;
    Ok(RawFigures {
        disk_write_bytes: disk.bytes,
        disk_write_seconds: disk.elapsed.as_secs_f64(),
        disk_write_mb_per_sec: disk.mb_per_sec(),
        loopback_bytes: net.bytes,
        loopback_seconds: net.elapsed.as_secs_f64(),
        loopback_mb_per_sec: net.mb_per_sec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_spread_over_the_keys() {
        assert_eq!(sampled_keys(1), vec![0]);
        assert_eq!(sampled_keys(3), vec![0, 1, 2]);
        let s = sampled_keys(1_000_000);
        assert_eq!((s.len(), s[0], s[s.len() - 1]), (64, 0, 999_999));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn file_kinds() {
        assert!(is_snapshot_file("snapshot-000000000000002a-0000000000000007.snap"));
        assert!(!is_snapshot_file("snap.tmp"));
        assert!(is_wal_segment("wal-0000000000000001.log"));
        assert!(!is_wal_segment("node1.log"));
    }
}
