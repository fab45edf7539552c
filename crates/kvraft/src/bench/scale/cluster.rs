//! A cluster of `kvraft server` child processes on loopback, owned by `kvraft bench scale`.
//!
//! Node `i` (0-based; node id `i + 1`) listens on a free loopback port, keeps its data in
//! `<root>/node{i+1}` and appends its stdout and stderr to `<root>/node{i+1}.log` (a line
//! `=== start #k ===` marks each start). Every process is started from this very binary
//! (`kvraft server`), with no `KVRAFT_*` variable inherited. Dropping the [`Cluster`] SIGKILLs
//! and reaps every node still running, so no child outlives the command (an error, a panic or
//! Ctrl-C all drop it).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kvraft_proto::v1 as pb;

use crate::bench::workload::Rng;

/// How long one `Status` call may take.
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between two polls of a node's status.
const POLL: Duration = Duration::from_millis(10);

/// Resident memory of one process, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_bytes: u64,
    /// `VmHWM`: the peak resident size since the process started.
    pub hwm_bytes: u64,
}

/// The memory of process `pid` (`self` for this process), or `None` where `/proc` does not
/// say (not Linux, or the process is gone).
pub fn memory_of(pid: &str) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    };
    Some(Memory { rss_bytes: field("VmRSS:")?, hwm_bytes: field("VmHWM:")? })
}

/// Total size of the regular files in `dir` whose name satisfies `pick` (0 if none).
pub fn file_bytes(dir: &Path, pick: impl Fn(&str) -> bool) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(&pick))
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[derive(Debug)]
struct Node {
    address: String,
    data_dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    starts: u32,
}

/// `n` `kvraft server` processes on loopback; see the module docs.
#[derive(Debug)]
pub struct Cluster {
    server_bin: PathBuf,
    /// `--cluster`.
    cluster: String,
    /// Server flags after the defaults.
    extra_args: Vec<String>,
    nodes: Vec<Node>,
}

impl Cluster {
    /// Starts `n` nodes under `root` with `extra_args` and waits until each answers `Status`
    /// and one leads.
    pub async fn start(
        server_bin: &Path,
        root: &Path,
        n: usize,
        extra_args: &[String],
        timeout: Duration,
    ) -> Result<Cluster, String> {
        let addresses: Vec<String> =
            free_ports(n)?.into_iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let cluster: Vec<String> =
            addresses.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect();
        let mut c = Cluster {
            server_bin: server_bin.to_path_buf(),
            cluster: cluster.join(","),
            extra_args: extra_args.to_vec(),
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
        c.wait_leader(timeout).await?;
        Ok(c)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The client addresses, node 1 first.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.address.clone()).collect()
    }

    pub fn data_dir(&self, i: usize) -> &Path {
        &self.nodes[i].data_dir
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// Node `i`'s memory, if it runs.
    pub fn memory(&self, i: usize) -> Option<Memory> {
        memory_of(&self.pid(i)?.to_string())
    }

    /// The last `lines` lines of node `i`'s log, for error messages.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[i].log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
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
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
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

    /// Node `i`'s `Status`, or `None` if it is down or silent.
    pub async fn status(&self, i: usize) -> Option<pb::StatusReply> {
        self.nodes[i].child.as_ref()?;
        kvraft_client::remote::status(&self.nodes[i].address, STATUS_TIMEOUT).await.ok()
    }

    /// Every node's `Status`, asked concurrently.
    pub async fn statuses(&self) -> Vec<Option<pb::StatusReply>> {
        futures_util::future::join_all((0..self.len()).map(|i| self.status(i))).await
    }

    /// Waits until node `i` answers `Status`; returns how long that took.
    pub async fn wait_answering(
        &mut self,
        i: usize,
        timeout: Duration,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            if self.status(i).await.is_some() {
                return Ok(started.elapsed());
            }
            if !self.is_running(i) {
                return Err(format!(
                    "node {} exited while starting:\n{}",
                    i + 1,
                    self.log_tail(i, 30)
                ));
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "node {} did not answer within {timeout:?}:\n{}",
                    i + 1,
                    self.log_tail(i, 30)
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The index of the node that says it leads (the highest term if several do) and its
    /// status, waiting up to `timeout` for one.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<(usize, pb::StatusReply), String> {
        let started = Instant::now();
        loop {
            let leader = self
                .statuses()
                .await
                .into_iter()
                .enumerate()
                .filter_map(|(i, s)| Some((i, s?)))
                .filter(|(_, s)| s.role == pb::Role::Leader as i32)
                .max_by_key(|(_, s)| s.term);
            if let Some(leader) = leader {
                return Ok(leader);
            }
            if started.elapsed() > timeout {
                let views: Vec<String> = self
                    .statuses()
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
            if self.status(i).await.as_ref().is_some_and(&done) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                let last = self.status(i).await;
                return Err(format!(
                    "node {}: not {what} within {timeout:?} (last status: {last:?})",
                    i + 1
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGKILLs node `i` and reaps it.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
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
                    self.log_tail(i, 30)
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
                self.log_tail(i, 30)
            ));
        }
        Ok(took)
    }

    /// Removes node `i`'s data directory; the node must be down.
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

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill9(i);
        }
    }
}

/// `n` distinct loopback ports that were free a moment ago, preferably below the ephemeral
/// range (so that no outgoing connection takes one while its node is down for a restart).
/// All probes are held until all are chosen, so no port is chosen twice.
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32768);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut rng = Rng::new(seed ^ u64::from(std::process::id()) << 32);
    let low = 20_000u16;
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..1000 {
        if ports.len() == n || ephemeral_low <= low + 1000 {
            break;
        }
        let port = low + rng.below(u64::from(ephemeral_low - low)) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            ports.push(port);
            held.push(l);
        }
    }
    while ports.len() < n {
        let l = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
        ports.push(l.local_addr().map_err(|e| format!("loopback port: {e}"))?.port());
        held.push(l);
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_memory() {
        if let Some(m) = memory_of("self") {
            assert!(m.rss_bytes > 0 && m.hwm_bytes >= m.rss_bytes, "{m:?}");
        }
    }
}
