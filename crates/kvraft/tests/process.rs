//! Real-process tests: `kvraft server` child processes on loopback (a [`TestCluster`] of the
//! binary Cargo built for this package), driven through the `kvraft` command line and the
//! client library, killed with SIGKILL and stopped with SIGTERM. Client histories are checked
//! with the linearizability checker.
//!
//! The tests take turns (one cluster at a time), so that timing figures such as the failover
//! time are not skewed by another test's load. Figures are printed to stderr; see them with
//! `cargo test --release -p kvraft --test process -- --nocapture`.

use std::time::{Duration, Instant};

use kvraft_linearizability::{check_kv_with_stats, KvInput};
use kvraft_testkit::{
    free_ports, read_final_values, run_workload, TestCluster, WorkloadOptions, WorkloadReport,
    CHECK_STEP_BUDGET,
};
use tokio::sync::watch;

/// The binary under test.
const KVRAFT: &str = env!("CARGO_BIN_EXE_kvraft");

/// One cluster at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Generous bounds for waits, so that a loaded machine does not fail the tests; the properties
/// themselves are checked strictly.
const WAIT: Duration = Duration::from_secs(30);

/// Runs `kvraft <args>` with the given `KVRAFT_ENDPOINTS` (or none) and a 30 s limit.
async fn kvraft(args: &[&str], env_endpoints: Option<&str>) -> std::process::Output {
    let mut command = tokio::process::Command::new(KVRAFT);
    command.args(args).env_remove("KVRAFT_ENDPOINTS").kill_on_drop(true);
    if let Some(endpoints) = env_endpoints {
        command.env("KVRAFT_ENDPOINTS", endpoints);
    }
    match tokio::time::timeout(WAIT, command.output()).await {
        Ok(output) => output.expect("run kvraft"),
        Err(_) => panic!("kvraft {args:?} did not finish within {WAIT:?}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts exit status 0 and an empty stderr; returns stdout.
fn succeeded(args: &[&str], output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "kvraft {args:?} exited with {}; stderr: {}",
        output.status,
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_round_trip() {
    let _turn = SERIAL.lock().await;
    let cluster = TestCluster::start(KVRAFT, "cli", 3).await;
    let endpoints = cluster.endpoints().join(",");

    for args in [["put", "a", "1"], ["append", "a", "2"]] {
        let mut args = args.to_vec();
        args.extend(["--endpoints", &endpoints]);
        let out = succeeded(&args, &kvraft(&args, None).await);
        assert_eq!(out, "", "kvraft {args:?} printed something");
    }
    let get = ["get", "a", "--endpoints", &endpoints];
    assert_eq!(succeeded(&get, &kvraft(&get, None).await), "12\n");
    // The same through KVRAFT_ENDPOINTS, with the endpoints in another order.
    let reversed: Vec<String> = cluster.endpoints().into_iter().rev().collect();
    let get_env = ["get", "a"];
    assert_eq!(succeeded(&get_env, &kvraft(&get_env, Some(&reversed.join(","))).await), "12\n");
    // The same calls over gRPC instead of client frames.
    let append = ["append", "a", "3", "--transport", "grpc", "--endpoints", &endpoints];
    succeeded(&append, &kvraft(&append, None).await);
    let get_grpc = ["get", "a", "--transport", "grpc", "--endpoints", &endpoints];
    assert_eq!(succeeded(&get_grpc, &kvraft(&get_grpc, None).await), "123\n");
    let bad = ["get", "a", "--transport", "http3", "--endpoints", &endpoints];
    let output = kvraft(&bad, None).await;
    assert_eq!(output.status.code(), Some(2), "a bad --transport is a usage error");
    assert!(text(&output.stderr).contains("http3"), "{}", text(&output.stderr));

    // Only dead endpoints: a non-zero exit and one line on stderr, soon after --timeout.
    let dead: Vec<String> =
        free_ports(2).expect("free ports").iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let dead = dead.join(",");
    let args = ["get", "a", "--endpoints", &dead, "--timeout", "1s"];
    let started = Instant::now();
    let output = kvraft(&args, None).await;
    let took = started.elapsed();
    let stderr = text(&output.stderr);
    eprintln!("kvraft get against dead endpoints: {} after {took:?}: {stderr}", output.status);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(text(&output.stdout), "");
    assert!(
        stderr.starts_with("kvraft get: ") && stderr.ends_with('\n') && stderr.lines().count() == 1,
        "stderr is not one line: {stderr:?}"
    );
    assert!(took < Duration::from_secs(10), "--timeout 1s took {took:?}");

    // status --json: one object per node, all reachable, one leader among them.
    let args = ["status", "--json", "--endpoints", &endpoints];
    let json = succeeded(&args, &kvraft(&args, None).await);
    let count = |needle: &str| json.matches(needle).count();
    assert!(json.trim_start().starts_with('[') && json.trim_end().ends_with(']'), "{json}");
    assert_eq!(count("\"endpoint\": "), 3, "{json}");
    assert_eq!(count("\"reachable\": true"), 3, "{json}");
    for (i, e) in cluster.endpoints().iter().enumerate() {
        assert!(json.contains(&format!("\"endpoint\": \"{e}\"")), "{json}");
        assert!(json.contains(&format!("\"node_id\": {}", i + 1)), "{json}");
    }
    assert!(count("\"role\": \"leader\"") <= 1, "{json}");
    eprintln!("kvraft status --json:\n{json}");
}

/// The index of the recovered log's last entry, from the node's "recovered: ... snapshot at
/// S, N log entries" start-up line (S + N, an upper bound if the log overlaps the snapshot).
fn recovered_last_index(log: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains(" recovered: "))?;
    let rest = &line[line.find("snapshot at ")? + "snapshot at ".len()..];
    let (snapshot, rest) = rest.split_once(", ")?;
    let (entries, rest) = rest.split_once(' ')?;
    rest.starts_with("log entries").then_some(())?;
    Some(snapshot.trim().parse::<u64>().ok()? + entries.parse::<u64>().ok()?)
}

/// A sanity check of the recording: the same history with one read's value altered (a token
/// nobody wrote added to it) must be found illegal.
fn assert_the_checker_notices_tampering(report: &WorkloadReport) {
    let mut tampered = report.history.clone();
    let read = tampered
        .iter_mut()
        .rev()
        .find(|op| matches!(op.input, KvInput::Get { .. }))
        .expect("the history has reads");
    read.output.push_str("never-written;");
    let (result, _) = check_kv_with_stats(&tampered, CHECK_STEP_BUDGET);
    assert!(result.is_illegal(), "a read of a value never written passed: {result}");
}

// A scenario script (load, SIGKILL the leader, restart it, catch up by snapshot, check), each
// step commented: it reads best top to bottom.
#[allow(clippy::too_many_lines)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_leader_under_load_then_the_restarted_node_catches_up_by_snapshot() {
    let _turn = SERIAL.lock().await;
    let mut cluster = TestCluster::start(KVRAFT, "kill9", 3).await;
    let endpoints = cluster.endpoints();
    cluster.wait_leader(WAIT).await;

    let (stop, stop_rx) = watch::channel(false);
    let opts = WorkloadOptions {
        clients: 5,
        keys: 10,
        // Reads and appends only, so that the exactly-once check covers every acknowledged
        // append, those retried across the kill included (puts are in the other test).
        read_per_mille: 300,
        append_per_mille: 700,
        call_timeout: Duration::from_secs(1),
        op_timeout: Duration::from_secs(10),
    };
    let workload = tokio::spawn(run_workload(endpoints.clone(), opts, stop_rx));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let old = cluster.wait_leader(WAIT).await;
    let before = cluster.status(old, Duration::from_secs(5)).await.expect("the leader answers");
    cluster.kill9(old);
    let killed_at = Instant::now();
    eprintln!(
        "kill -9 node {} (leader, term {}, commit {}, last log index {})",
        old + 1,
        before.term,
        before.commit_index,
        before.last_log_index
    );
    let new = cluster.wait_leader(WAIT).await;
    assert_ne!(new, old);
    eprintln!("new leader: node {} after {} ms", new + 1, killed_at.elapsed().as_millis());

    // Keep the old leader down until the leader's snapshot is well past the end of its log,
    // so that it can only catch up by InstallSnapshot.
    let past = before.last_log_index + 200;
    let deadline = Instant::now() + WAIT;
    let leader_snapshot = loop {
        let leader = cluster.wait_leader(WAIT).await;
        if let Some(s) = cluster.status(leader, Duration::from_secs(2)).await {
            if s.snapshot_index > past {
                break s.snapshot_index;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the leader did not compact its log past index {past} within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let down_for = killed_at.elapsed();

    cluster.restart(old).await;
    let restarted_at = Instant::now();
    let log = cluster.current_log(old);
    let recovered_last = recovered_last_index(&log).unwrap_or_else(|| {
        panic!(
            "no \"recovered: ... snapshot at S, N log entries\" line in node {}'s log:\n{log}",
            old + 1
        )
    });
    assert!(
        recovered_last < leader_snapshot,
        "node {} recovered a log up to {recovered_last}, not behind the leader's snapshot at \
         {leader_snapshot}",
        old + 1
    );

    // It catches up: its applied index reaches the leader's commit index of after its restart.
    let leader = cluster.wait_leader(WAIT).await;
    let target = cluster
        .status(leader, Duration::from_secs(5))
        .await
        .expect("the leader answers")
        .commit_index;
    let deadline = Instant::now() + WAIT;
    let caught_up = loop {
        if let Some(s) = cluster.status(old, Duration::from_secs(2)).await {
            if s.applied_index >= target {
                break s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "node {} did not apply up to {target} within {WAIT:?}",
            old + 1
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let catch_up = restarted_at.elapsed();
    assert!(
        caught_up.snapshot_index >= leader_snapshot,
        "node {} caught up without the leader's snapshot: its snapshot is at {}, the leader's \
         was at {leader_snapshot}",
        old + 1,
        caught_up.snapshot_index
    );
    eprintln!(
        "node {} was down {} ms, recovered its log up to index {recovered_last}, the leader's \
         snapshot was at {leader_snapshot}; it applied up to {} (leader commit {target}) {} ms \
         after its restart, with a snapshot at {}",
        old + 1,
        down_for.as_millis(),
        caught_up.applied_index,
        catch_up.as_millis(),
        caught_up.snapshot_index
    );

    // A little more load with every node up, then stop and check.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send(true).expect("the workload listens");
    let mut report = workload.await.expect("the workload panicked");
    let finals = read_final_values(&endpoints, &mut report, WAIT).await;

    let failover = report.first_write_acked_after(killed_at);
    let failover_ms = failover.map_or("none".to_string(), |d| d.as_millis().to_string());
    eprintln!("failover after kill -9: {failover_ms} ms (first write invoked after the kill and acknowledged)");
    eprintln!(
        "workload: {} acknowledged, {} failed; history of {} ops, {} writes of unknown outcome",
        report.ok,
        report.failed,
        report.history.len(),
        report.unknown()
    );
    eprintln!("linearizability: {}", report.check_linearizable());
    assert_the_checker_notices_tampering(&report);
    eprintln!("appends: {}", report.check_appends(&finals));
    assert!(report.ok >= 100, "too little was done to test anything: {} ops", report.ok);
    let failover = failover.expect("no write was acknowledged after the kill");
    assert!(failover < Duration::from_secs(2), "failover took {failover:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_kill9_and_restart_keeps_every_acknowledged_write() {
    let _turn = SERIAL.lock().await;
    let mut cluster = TestCluster::start(KVRAFT, "restart", 3).await;
    let endpoints = cluster.endpoints();
    cluster.wait_leader(WAIT).await;

    let (stop, stop_rx) = watch::channel(false);
    let opts = WorkloadOptions {
        clients: 4,
        keys: 6,
        read_per_mille: 200,
        append_per_mille: 750,
        // Shorter than the outage: writes in flight during it end with an unknown outcome,
        // which the checks must allow for.
        call_timeout: Duration::from_millis(500),
        op_timeout: Duration::from_secs(1),
    };
    let workload = tokio::spawn(run_workload(endpoints.clone(), opts, stop_rx));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // SIGKILL every node while writes are in flight, then bring them all back.
    for i in 0..3 {
        cluster.kill9(i);
    }
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..3 {
        cluster.restart(i).await;
    }
    cluster.wait_leader(WAIT).await;
    eprintln!(
        "whole cluster back with a leader {} ms after kill -9",
        killed_at.elapsed().as_millis()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.send(true).expect("the workload listens");
    let mut report = workload.await.expect("the workload panicked");
    let before_kill = report.us_at(killed_at);
    let acked_before_kill = report.history.iter().filter(|op| op.ret < before_kill).count();
    let finals = read_final_values(&endpoints, &mut report, WAIT).await;
    eprintln!(
        "workload: {} acknowledged ({acked_before_kill} before the kill), {} failed; history of \
         {} ops, {} writes of unknown outcome",
        report.ok,
        report.failed,
        report.history.len(),
        report.unknown()
    );
    eprintln!("linearizability: {}", report.check_linearizable());
    eprintln!("appends: {}", report.check_appends(&finals));
    assert!(acked_before_kill >= 50, "too little was written before the kill: {acked_before_kill}");

    // SIGTERM: a clean exit (status 0), after which the data is still all there.
    for i in 0..3 {
        cluster.terminate(i).await;
    }
    eprintln!("SIGTERM: all 3 nodes exited with status 0");
    for i in 0..3 {
        cluster.restart(i).await;
    }
    let mut again = report.clone();
    let after_term = read_final_values(&endpoints, &mut again, WAIT).await;
    assert_eq!(after_term, finals, "the values changed across a clean restart");
}
