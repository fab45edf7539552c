//! A cluster of `kvraft server` child processes on loopback: what `kvraft-bench scale` runs,
//! and (through [`TestCluster`](crate::TestCluster), which panics instead of returning errors)
//! what the real-process tests run.
//!
//! The caller says which `kvraft` binary to run: the tests pass the one Cargo built for them
//! (`CARGO_BIN_EXE_kvraft`), the bench the one beside its own executable or the one it was
//! told. Node `i` (0-based; node id `i + 1`) listens on a free loopback port, keeps its data in
//! `<root>/node{i+1}` and appends its stdout and stderr to `<root>/node{i+1}.log` (a line
//! `=== start #k ===` marks each start). No `KVRAFT_*` variable is inherited. Dropping the
//! [`ProcessCluster`] SIGKILLs and reaps every node still running, so no child outlives its
//! owner (an error, a panic or Ctrl-C all drop it). Errors are returned as one-line-plus-log
//! messages.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kvraft_proto::v1 as pb;

/// Pause between two polls of a node's status.
const POLL: Duration = Duration::from_millis(10);
/// How long one `Status` call may take while waiting for something.
const POLL_STATUS_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug)]
struct Node {
    address: String,
    data_dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    starts: u32,
}

/// `n` `kvraft server` processes on loopback; see the [module docs](self).
#[derive(Debug)]
pub struct ProcessCluster {
    server_bin: PathBuf,
    root: PathBuf,
    /// `--cluster`.
    cluster: String,
    /// Server flags after the defaults (so they may override them).
    extra_args: Vec<String>,
    /// `RUST_LOG` of the servers.
    rust_log: String,
    nodes: Vec<Node>,
}

impl ProcessCluster {
    /// Starts `n` nodes of `server_bin` (a `kvraft` binary) under `root` with `extra_args` and
    /// `RUST_LOG=rust_log`, and waits until each answers `Status` (not for a leader: see
    /// [`ProcessCluster::wait_leader`]).
    pub async fn start(
        server_bin: &Path,
        root: &Path,
        n: usize,
        extra_args: &[String],
        rust_log: &str,
        timeout: Duration,
    ) -> Result<ProcessCluster, String> {
        let ports = kvraft_server::free_ports(n)
            .map_err(|e| format!("cannot find {n} free loopback ports: {e}"))?;
        let addresses: Vec<String> = ports.into_iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let cluster: Vec<String> =
            addresses.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect();
        let mut c = ProcessCluster {
            server_bin: server_bin.to_path_buf(),
            root: root.to_path_buf(),
            cluster: cluster.join(","),
            extra_args: extra_args.to_vec(),
            rust_log: rust_log.to_string(),
            nodes: addresses
                .into_iter()
                .enumerate()
                .map(|(i, address)| Node {
                    address,
                    data_dir: root.join(format!("node{}", i + 1)),
                    log_path: root.join(format!("node{}.log", i + 1)),
                    child: None,
                    starts: 0,
                })
                .collect(),
        };
        for i in 0..n {
            c.spawn(i)?;
        }
        for i in 0..n {
            c.wait_answering(i, timeout).await?;
        }
        Ok(c)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no node at all.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The client addresses (`host:port`), node 1 first.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.address.clone()).collect()
    }

    pub fn endpoint(&self, i: usize) -> &str {
        &self.nodes[i].address
    }

    /// The directory holding every node's data and log.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn data_dir(&self, i: usize) -> &Path {
        &self.nodes[i].data_dir
    }

    pub fn log_path(&self, i: usize) -> &Path {
        &self.nodes[i].log_path
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// Node `i`'s log since its last start.
    pub fn current_log(&self, i: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[i].log_path).unwrap_or_default();
        let marker = format!("=== start #{} ", self.nodes[i].starts);
        match text.rfind(&marker) {
            Some(at) => text[at..].to_string(),
            None => text,
        }
    }

    /// The last `lines` lines of node `i`'s log, for error messages.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[i].log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Every node's log tail, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        (0..self.len())
            .map(|i| {
                format!(
                    "----- node {} ({}), last {lines} lines of {} -----\n{}\n",
                    i + 1,
                    self.nodes[i].address,
                    self.nodes[i].log_path.display(),
                    self.log_tail(i, lines)
                )
            })
            .collect()
    }

    /// Starts node `i` (which must be down) on its data directory.
    pub fn spawn(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        if node.child.is_some() {
            return Err(format!("node {} is already running", i + 1));
        }
        node.starts += 1;
        let open_error = |e: std::io::Error| format!("{}: {e}", node.log_path.display());
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .map_err(open_error)?;
        let _ = writeln!(log, "=== start #{} of node {} ===", node.starts, i + 1);
        let stderr = log.try_clone().map_err(open_error)?;
        let mut command = Command::new(&self.server_bin);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("KVRAFT_") {
                command.env_remove(name);
            }
        }
        command
            .env("RUST_LOG", &self.rust_log)
            .env("NO_COLOR", "1")
            .arg("server")
            .args(["--id", &(i + 1).to_string()])
            .args(["--cluster", &self.cluster])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr));
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {} server: {e}", self.server_bin.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// Whether node `i` was started and has not exited (an exit found here is reaped).
    pub fn is_running(&mut self, i: usize) -> bool {
        match &mut self.nodes[i].child {
            None => false,
            Some(child) => matches!(child.try_wait(), Ok(None)),
        }
    }

    /// Node `i`'s `Status`, or `None` if it is down or does not answer within `timeout`.
    pub async fn status(&self, i: usize, timeout: Duration) -> Option<pb::StatusReply> {
        self.nodes[i].child.as_ref()?;
        kvraft_client::remote::status(&self.nodes[i].address, timeout).await.ok()
    }

    /// Every node's `Status` (`None` for those down or silent), asked concurrently.
    pub async fn statuses(&self, timeout: Duration) -> Vec<Option<pb::StatusReply>> {
        futures_util::future::join_all((0..self.len()).map(|i| self.status(i, timeout))).await
    }

    /// The node that says it leads (the highest term if several do) and its status, if any.
    pub async fn leader(&self, timeout: Duration) -> Option<(usize, pb::StatusReply)> {
        self.statuses(timeout)
            .await
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s?)))
            .filter(|(_, s)| s.role == pb::Role::Leader as i32)
            .max_by_key(|(_, s)| s.term)
    }

    /// Waits until node `i` answers `Status`; returns how long that took.
    pub async fn wait_answering(
        &mut self,
        i: usize,
        timeout: Duration,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            if self.status(i, POLL_STATUS_TIMEOUT).await.is_some() {
                return Ok(started.elapsed());
            }
            if !self.is_running(i) {
                return Err(format!(
                    "node {} exited while starting:\n{}",
                    i + 1,
                    self.log_tail(i, 40)
                ));
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "node {} did not answer within {timeout:?}:\n{}",
                    i + 1,
                    self.log_tail(i, 40)
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits up to `timeout` for a leader; returns it with its status, or an error naming
    /// what each node said.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<(usize, pb::StatusReply), String> {
        let started = Instant::now();
        loop {
            if let Some(leader) = self.leader(POLL_STATUS_TIMEOUT).await {
                return Ok(leader);
            }
            if started.elapsed() > timeout {
                let views: Vec<String> = self
                    .statuses(POLL_STATUS_TIMEOUT)
                    .await
                    .iter()
                    .enumerate()
                    .map(|(i, s)| match s {
                        Some(s) => format!(
                            "node {}: {:?} in term {}, leader {}, commit {}",
                            i + 1,
                            pb::Role::try_from(s.role).unwrap_or(pb::Role::Unspecified),
                            s.term,
                            s.leader_id,
                            s.commit_index
                        ),
                        None => format!("node {}: no answer", i + 1),
                    })
                    .collect();
                return Err(format!("no leader within {timeout:?} ({})", views.join("; ")));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `done` holds for node `i`'s status; returns how long that took.
    pub async fn wait_until(
        &self,
        i: usize,
        what: &str,
        timeout: Duration,
        done: impl Fn(&pb::StatusReply) -> bool,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            if self.status(i, POLL_STATUS_TIMEOUT).await.as_ref().is_some_and(&done) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                let last = self.status(i, POLL_STATUS_TIMEOUT).await;
                return Err(format!(
                    "node {}: not {what} within {timeout:?} (last status: {last:?})",
                    i + 1
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for a leader, then for every node to apply the commit index the leader reported;
    /// returns the leader's status.
    pub async fn wait_converged(&self, timeout: Duration) -> Result<pb::StatusReply, String> {
        let (_, leader) = self.wait_leader(timeout).await?;
        for i in 0..self.len() {
            self.wait_until(i, "caught up", timeout, |s| s.applied_index >= leader.commit_index)
                .await?;
        }
        Ok(leader)
    }

    /// SIGKILLs node `i` and reaps it (nothing if it is down).
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILLs every node still running.
    pub fn kill_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill9(i);
        }
    }

    /// Sends SIGTERM to node `i` and waits for it to exit (SIGKILL after `timeout`); returns
    /// how long it took to exit, or an error if it had to be killed or exited with a failure.
    pub async fn terminate(&mut self, i: usize, timeout: Duration) -> Result<Duration, String> {
        let pid = self.pid(i).ok_or_else(|| format!("node {} is down", i + 1))?;
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .map_err(|e| format!("kill -TERM {pid}: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM {pid} failed: {sent}"));
        }
        let status = loop {
            let child = self.nodes[i].child.as_mut().expect("checked above");
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(format!("waiting for node {}: {e}", i + 1)),
            }
            if started.elapsed() > timeout {
                self.kill9(i);
                return Err(format!(
                    "node {} did not exit within {timeout:?} of SIGTERM:\n{}",
                    i + 1,
                    self.log_tail(i, 40)
                ));
            }
            tokio::time::sleep(POLL).await;
        };
        let took = started.elapsed();
        self.nodes[i].child = None;
        if !status.success() {
            return Err(format!(
                "node {} exited with {status} after SIGTERM:\n{}",
                i + 1,
                self.log_tail(i, 40)
            ));
        }
        Ok(took)
    }

    /// Removes node `i`'s data directory; the node must be down. (A node restarted on a wiped
    /// directory has forgotten its votes: Raft's safety assumes disks keep what they synced.)
    pub fn wipe(&mut self, i: usize) -> Result<(), String> {
        if self.nodes[i].child.is_some() {
            return Err(format!("node {} runs: not wiping its data", i + 1));
        }
        match std::fs::remove_dir_all(&self.nodes[i].data_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", self.nodes[i].data_dir.display())),
        }
    }

    /// Stops every running node with SIGTERM (concurrently), SIGKILL after `timeout`.
    pub async fn stop(&mut self, timeout: Duration) -> Result<(), String> {
        let pids: Vec<u32> = (0..self.len()).filter_map(|i| self.pid(i)).collect();
        for pid in &pids {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let started = Instant::now();
        let mut failures = Vec::new();
        for i in 0..self.len() {
            while let Some(child) = self.nodes[i].child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        if !status.success() {
                            failures.push(format!("node {} exited with {status}", i + 1));
                        }
                        self.nodes[i].child = None;
                        break;
                    }
                    Ok(None) if started.elapsed() > timeout => {
                        failures.push(format!("node {} ignored SIGTERM for {timeout:?}", i + 1));
                        self.kill9(i);
                        break;
                    }
                    Ok(None) => tokio::time::sleep(POLL).await,
                    Err(_) => {
                        self.kill9(i);
                        break;
                    }
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}
