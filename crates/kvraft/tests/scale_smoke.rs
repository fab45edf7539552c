//! `kvraft-bench scale` end to end with tiny sizes, so that the command does not rot: it starts
//! its own 3-node cluster of `kvraft server` processes, loads 2,000 keys, restarts and wipes a
//! follower, and reports. Only structural facts are asserted (every figure is there, sizes are
//! positive, the wiped follower holds the data), never timings.
//!
//! The test lives in this package because the nodes must run the `kvraft` binary Cargo built
//! for this test run (`CARGO_BIN_EXE_kvraft`), which only this package's tests are given. The
//! command runs in this process, from its command line (`kvraft_bench::Cli`) to its exit
//! status, with `--kvraft-bin` naming that binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser as _;

use kvraft_kv::codec::decode_command;
use kvraft_kv::{KvStateMachine, SessionLimits};
use kvraft_storage::{FileDisk, WalStorage};
use serde_json::Value;

const KEYS: u64 = 2000;
const VALUE_SIZE: usize = 32;

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn field<'a>(report: &'a Value, path: &str) -> &'a Value {
    let mut v = report;
    for part in path.split('.') {
        v = v.get(part).unwrap_or_else(|| panic!("the report has no {path}: {report:#}"));
    }
    v
}

fn number(report: &Value, path: &str) -> f64 {
    field(report, path).as_f64().unwrap_or_else(|| panic!("{path} is not a number"))
}

/// The state a node would recover from its data directory: its snapshot, then its committed
/// log entries applied on top.
fn recovered_state(dir: &Path) -> KvStateMachine {
    let wal = WalStorage::open(FileDisk::open(dir).unwrap()).unwrap();
    let state = wal.state();
    let mut sm = KvStateMachine::decode_snapshot(&state.snapshot.data, SessionLimits::default())
        .expect("the snapshot decodes");
    for entry in state.entries.iter().filter(|e| e.index <= state.hard_state.commit) {
        if entry.index.0 <= sm.applied() {
            continue;
        }
        if entry.data.is_empty() {
            sm.apply_noop(entry.index.0);
        } else {
            sm.apply(entry.index.0, &decode_command(&entry.data).unwrap()).unwrap();
        }
    }
    sm
}

// One end-to-end run, then one check per figure of its report: a flat list of assertions that
// reads best in the report's order.
#[allow(clippy::too_many_lines)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_runs_end_to_end_with_tiny_sizes() {
    let scratch =
        Scratch(std::env::temp_dir().join(format!("kvraft-scale-smoke-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).unwrap();
    let json_out = scratch.0.join("report.json");
    let (keys, value_size) = (KEYS.to_string(), VALUE_SIZE.to_string());
    let dir = scratch.0.display().to_string();
    let json_path = json_out.display().to_string();
    #[rustfmt::skip]
    let args = [
        "kvraft-bench", "scale", "--keys", &keys, "--value-size", &value_size,
        "--clients", "16", "--connections", "4",
        // Small, so that every node snapshots within the 2,000 keys.
        "--max-raft-state-bytes", "65536",
        "--raw-disk-mib", "4", "--raw-net-mib", "16", "--timeout", "60s",
        "--dir", &dir, "--json-out", &json_path, "--keep", "--json",
        "--kvraft-bin", env!("CARGO_BIN_EXE_kvraft"),
    ];
    let cli = kvraft_bench::Cli::try_parse_from(args).expect("valid arguments");
    let status = kvraft_bench::cli::run(cli).await;
    assert_eq!(status, ExitCode::SUCCESS, "kvraft-bench scale failed; see its stderr above");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json_out).unwrap())
        .expect("--json-out writes one JSON object");

    // Every section and figure is there.
    for path in [
        "machine.cores",
        "machine.memory_bytes",
        "settings.keys",
        "load.seconds",
        "load.keys_per_sec",
        "load.payload_mb_per_sec",
        "load.settle_seconds",
        "memory.bytes_per_key",
        "memory.payload_bytes_per_key",
        "snapshot.encode_seconds",
        "snapshot.encode_mb_per_sec",
        "snapshot.write_seconds",
        "snapshot.write_mb_per_sec",
        "snapshot.read_seconds",
        "snapshot.decode_seconds",
        "snapshot.restore_mb_per_sec",
        "restart_after_kill.answer_seconds",
        "restart_after_kill.caught_up_seconds",
        "restart_after_kill.mb_per_sec",
        "restart_after_term.stop_seconds",
        "restart_after_term.caught_up_seconds",
        "wiped_follower.leader_elected_seconds",
        "wiped_follower.received_seconds",
        "wiped_follower.caught_up_seconds",
        "wiped_follower.receive_mb_per_sec",
        "wiped_follower.catch_up_mb_per_sec",
        "wiped_follower.mb_per_sec",
        "wiped_follower.rss_bytes",
        "raw.disk_write_mb_per_sec",
        "raw.loopback_mb_per_sec",
    ] {
        assert!(number(&report, path) >= 0.0, "{path}");
    }
    assert_eq!(field(&report, "machine.load_average_start").as_array().map(Vec::len), Some(3));

    // The load: every key written once.
    assert_eq!(number(&report, "settings.keys"), KEYS as f64);
    assert_eq!(number(&report, "load.keys_written"), KEYS as f64);
    assert_eq!(number(&report, "load.errors"), 0.0);
    assert_eq!(field(&report, "load.settled"), &Value::Bool(true));
    let load_commit = number(&report, "load.commit_index");
    assert!(load_commit >= KEYS as f64);

    // Memory and disk, per node.
    let nodes = field(&report, "memory.nodes").as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for node in nodes {
        assert!(number(node, "empty_rss_bytes") > 0.0, "{node}");
        assert!(number(node, "rss_bytes") > 0.0, "{node}");
        assert!(number(node, "hwm_bytes") >= number(node, "rss_bytes"), "{node}");
    }
    let disks = field(&report, "on_disk").as_array().unwrap();
    assert_eq!(disks.len(), 3);
    for disk in disks {
        assert!(number(disk, "snapshot_bytes") > 0.0, "{disk}");
        assert!(number(disk, "snapshot_index") >= load_commit, "{disk}");
        assert!(number(disk, "wal_bytes") > 0.0, "{disk}");
    }

    // The in-process snapshot holds every key and round-trips.
    assert_eq!(number(&report, "snapshot.keys"), KEYS as f64);
    let data = number(&report, "snapshot.data_bytes");
    assert!(data > (KEYS * (16 + VALUE_SIZE as u64)) as f64);
    // The snapshot file's header: 52 fixed bytes, no configuration, a 4-byte checksum.
    assert_eq!(number(&report, "snapshot.file_bytes"), data + 56.0);
    assert_eq!(field(&report, "snapshot.round_trip_ok"), &Value::Bool(true));

    // Both restarts caught up with what the leader had committed.
    for restart in ["restart_after_kill", "restart_after_term"] {
        assert!(number(&report, &format!("{restart}.target_index")) >= load_commit);
        assert!(number(&report, &format!("{restart}.recovered_bytes")) > 0.0);
    }
    assert_eq!(field(&report, "restart_after_kill.signal"), "KILL");
    assert_eq!(field(&report, "restart_after_term.signal"), "TERM");

    // The wiped follower got the snapshot and holds the data.
    let wiped = field(&report, "wiped_follower");
    assert!(number(wiped, "leader_snapshot_bytes") > 0.0);
    assert!(number(wiped, "leader_snapshot_index") >= load_commit);
    assert!(number(wiped, "snapshot_bytes") > 0.0);
    assert_eq!(number(wiped, "snapshot_keys"), KEYS as f64);
    assert_eq!(number(wiped, "sampled_keys"), 64.0);
    assert_eq!(number(wiped, "verified_keys"), 64.0);
    assert_eq!(wiped["cluster_reads_ok"], Value::Bool(true));
    assert_ne!(wiped["node_id"], wiped["old_leader_node_id"]);
    assert_ne!(wiped["node_id"], wiped["leader_node_id"]);
    assert!(number(&report, "raw.disk_write_bytes") == (4 << 20) as f64);
    assert!(number(&report, "raw.loopback_bytes") == (16 << 20) as f64);

    // Independently: the wiped node's data directory (kept; every process has stopped) holds
    // every key with a value of the right size.
    let dir = PathBuf::from(wiped["data_dir"].as_str().unwrap());
    assert!(dir.starts_with(&scratch.0), "{}", dir.display());
    let state = recovered_state(&dir);
    assert_eq!(state.len() as u64, KEYS);
    for k in 0..KEYS {
        let value = state.get(&format!("bench/{k:010}"));
        assert_eq!(value.len(), VALUE_SIZE, "key {k}");
    }
}
