//! [`TestCluster`]: a [`ProcessCluster`] with the tests' defaults, whose failures panic with the
//! nodes' logs.
//!
//! The nodes run the `kvraft` binary the test names (tests in the `kvraft` package pass
//! `env!("CARGO_BIN_EXE_kvraft")`, the binary Cargo built for this test run). Their data and
//! logs go to a fresh directory under the system's temporary directory. By default the nodes
//! snapshot at 16 KiB of Raft state ([`SMALL_RAFT_STATE_BYTES`]), so compaction and
//! InstallSnapshot happen within seconds of load, and log at `KVRAFT_TEST_LOG` (default
//! `info`). Dropping the cluster SIGKILLs every node and removes the directory (kept if
//! `KVRAFT_TEST_KEEP` is set); if the thread is panicking, it first prints the tail of every
//! node's log.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kvraft_proto::v1 as pb;

use crate::process_cluster::ProcessCluster;

/// The default `--max-raft-state-bytes` of a [`TestCluster`]: small, so that the nodes compact
/// their logs (and send InstallSnapshot to a node left behind) within seconds.
pub const SMALL_RAFT_STATE_BYTES: u64 = 16 * 1024;

/// How long a starting node may take to answer `Status`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node may take to exit after SIGTERM.
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(20);

/// `n` `kvraft server` processes on loopback with the tests' defaults; see the
/// [module docs](self). Node `i` (0-based) has node id `i + 1`.
#[derive(Debug)]
pub struct TestCluster {
    inner: ProcessCluster,
}

impl TestCluster {
    /// Starts `nodes` servers of `kvraft_bin` with the default flags and waits until each
    /// answers `Status`; `name` names the cluster's directory.
    pub async fn start(kvraft_bin: impl AsRef<Path>, name: &str, nodes: usize) -> TestCluster {
        TestCluster::start_with(kvraft_bin, name, nodes, &[]).await
    }

    /// [`TestCluster::start`] with extra `kvraft server` flags (e.g.
    /// `["--election-timeout-ms", "300"]`), placed after the defaults.
    pub async fn start_with(
        kvraft_bin: impl AsRef<Path>,
        name: &str,
        nodes: usize,
        extra_args: &[&str],
    ) -> TestCluster {
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
        let bin = kvraft_bin.as_ref();
        match ProcessCluster::start(bin, &dir, nodes, &args, &rust_log, START_TIMEOUT).await {
            Ok(inner) => TestCluster { inner },
            Err(e) => panic!("the cluster did not start: {e}"),
        }
    }

    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the cluster has no node at all.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
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

impl Drop for TestCluster {
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
