//! The figures of one `kvraft-bench scale` run: one JSON object (`--json`, `--json-out`) or a
//! Markdown report for people. Sizes are bytes, times seconds, rates decimal megabytes per
//! second (1 MB = 10^6 bytes).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleReport {
    pub machine: Machine,
    pub settings: Settings,
    pub load: LoadFigures,
    pub memory: MemoryFigures,
    pub on_disk: Vec<NodeDisk>,
    pub snapshot: SnapshotFigures,
    pub restart_after_kill: RestartFigures,
    pub restart_after_term: RestartFigures,
    pub wiped_follower: WipedFigures,
    pub raw: RawFigures,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    /// `/proc/loadavg` (1, 5, 15 minutes) before the run and after it.
    pub load_average_start: Vec<f64>,
    pub load_average_end: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub nodes: usize,
    pub keys: u64,
    pub key_bytes: usize,
    pub value_bytes: usize,
    pub clients: usize,
    pub connections: usize,
    /// The nodes' `--max-raft-state-bytes` (0: never compact).
    pub max_raft_state_bytes: u64,
    /// Where the nodes' data directories were.
    pub dir: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadFigures {
    /// Puts acknowledged (one per key).
    pub keys_written: u64,
    pub errors: u64,
    pub seconds: f64,
    pub keys_per_sec: f64,
    /// Key and value bytes acknowledged per second.
    pub payload_mb_per_sec: f64,
    /// The leader's commit index when the load ended.
    pub commit_index: u64,
    /// Overwrites (same keys, same values) until every node's snapshot covered the load.
    pub settle_puts: u64,
    pub settle_seconds: f64,
    /// Whether every node's snapshot covered the load in the end.
    pub settled: bool,
    pub error_samples: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeMemory {
    pub node_id: u64,
    pub role: String,
    /// VmRSS of the node in the empty cluster.
    pub empty_rss_bytes: u64,
    /// VmRSS and VmHWM (the peak) after the load (and settling).
    pub rss_bytes: u64,
    pub hwm_bytes: u64,
    /// (rss - empty rss) / keys.
    pub bytes_per_key: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryFigures {
    pub nodes: Vec<NodeMemory>,
    /// The mean of the nodes' bytes per key.
    pub bytes_per_key: f64,
    /// Key + value bytes per key.
    pub payload_bytes_per_key: f64,
    /// Growth of this process while it built the same state machine, per key (no Raft log, no
    /// snapshot held): the state machine's own share.
    pub state_machine_bytes_per_key: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeDisk {
    pub node_id: u64,
    pub snapshot_index: u64,
    /// The snapshot file(s) in the data directory.
    pub snapshot_bytes: u64,
    /// The WAL segments.
    pub wal_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotFigures {
    pub keys: u64,
    pub sessions: usize,
    pub build_seconds: f64,
    pub data_bytes: u64,
    pub encode_seconds: f64,
    pub encode_mb_per_sec: f64,
    pub file_bytes: u64,
    pub write_seconds: f64,
    pub write_mb_per_sec: f64,
    pub read_seconds: f64,
    pub read_mb_per_sec: f64,
    pub decode_seconds: f64,
    pub decode_mb_per_sec: f64,
    /// Read + decode: what a restart pays for the snapshot.
    pub restore_mb_per_sec: f64,
    pub round_trip_ok: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestartFigures {
    pub node_id: u64,
    /// `KILL` or `TERM`.
    pub signal: String,
    /// With TERM: from the signal until the process exited.
    pub stop_seconds: Option<f64>,
    /// Snapshot and WAL bytes in its data directory when it stopped: what recovery reads.
    pub recovered_bytes: u64,
    /// The leader's commit index when the node stopped.
    pub target_index: u64,
    /// From the new process's start until it answered `Status`.
    pub answer_seconds: f64,
    /// From the start until its applied index reached `target_index`.
    pub caught_up_seconds: f64,
    /// recovered_bytes / caught_up_seconds.
    pub mb_per_sec: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WipedFigures {
    pub node_id: u64,
    pub data_dir: String,
    /// The leader before (stopped, so that another leads afresh) and the one that brought the
    /// wiped node back.
    pub old_leader_node_id: u64,
    pub leader_node_id: u64,
    /// The new leader's snapshot (file size; its index) that the wiped node had to receive.
    pub leader_snapshot_bytes: u64,
    pub leader_snapshot_index: u64,
    /// The new leader's commit index once elected.
    pub target_index: u64,
    /// From the wiped node's start until it answered `Status`.
    pub answer_seconds: f64,
    /// From its start until the new leader was elected.
    pub leader_elected_seconds: f64,
    /// From its start until its snapshot index reached the leader's: the whole snapshot has
    /// arrived (it is persisted and decoded after that).
    pub received_seconds: f64,
    /// From its start until its applied index reached `target_index`.
    pub caught_up_seconds: f64,
    /// leader_snapshot_bytes / (received_seconds - leader_elected_seconds): the transfer.
    pub receive_mb_per_sec: f64,
    /// leader_snapshot_bytes / (caught_up_seconds - leader_elected_seconds): the transfer,
    /// persisting the snapshot, decoding it and applying the entries after it.
    pub catch_up_mb_per_sec: f64,
    /// leader_snapshot_bytes / caught_up_seconds: everything, the election included.
    pub mb_per_sec: f64,
    /// Its snapshot file once caught up.
    pub snapshot_bytes: u64,
    pub rss_bytes: u64,
    /// Keys its snapshot on disk holds, and how many of the sampled keys hold their value there.
    pub snapshot_keys: u64,
    pub sampled_keys: u64,
    pub verified_keys: u64,
    /// The sampled keys read through the cluster (linearizably) hold their values.
    pub cluster_reads_ok: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawFigures {
    pub disk_write_bytes: u64,
    pub disk_write_seconds: f64,
    pub disk_write_mb_per_sec: f64,
    pub loopback_bytes: u64,
    pub loopback_seconds: f64,
    pub loopback_mb_per_sec: f64,
}

/// Decimal megabytes per second.
pub fn mb_per_sec(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / 1e6 / seconds
    } else {
        0.0
    }
}

/// `1234567` as `1,234,567` (exact: counts here stay far below 2^53).
pub fn thousands(n: u64) -> String {
    crate::report::thousands(n as f64)
}

/// Bytes as decimal megabytes, `12.3 MB`.
pub fn mb(bytes: u64) -> String {
    let m = bytes as f64 / 1e6;
    if m >= 100.0 {
        format!("{m:.0} MB")
    } else {
        format!("{m:.1} MB")
    }
}

/// Seconds, with a precision that suits them.
pub fn secs(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.0} ms", s * 1e3)
    }
}

fn rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0} MB/s")
    } else {
        format!("{r:.1} MB/s")
    }
}

fn loads(l: &[f64]) -> String {
    l.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(" ")
}

/// How to read the table, after it.
const NOTES: &str = "
Memory per key is (loaded RSS - empty RSS) / keys. A node holds the state machine, the latest \
snapshot (Raft keeps it to send to followers), the log since that snapshot (up to 80% of \
--max-raft-state-bytes) and the allocator's slack; the peak (VmHWM) also has the transient \
copies of a snapshot being encoded and written. A leader never lowers a follower's match \
index, so a follower that lost its data is repaired only by another leader: the run stops the \
leader, and the wiped node's times count from its start (the election included) or from the \
new leader's election. Restart times count from the new process's start; the in-process \
snapshot read comes from the page cache.
";

impl ScaleReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report always serializes")
    }

    /// The report in Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        self.write_heading(&mut out);
        let _ = writeln!(out, "| what | figure |\n|---|---|");
        for (what, figure) in self.rows() {
            let _ = writeln!(out, "| {what} | {figure} |");
        }
        out.push_str(NOTES);
        if !self.load.error_samples.is_empty() {
            let _ = writeln!(out, "\nLoad errors: {}", self.load.error_samples.join("; "));
        }
        out
    }

    /// The title and the run's setting: machine, cluster, units.
    fn write_heading(&self, out: &mut String) {
        let (m, s) = (&self.machine, &self.settings);
        let _ = writeln!(
            out,
            "# kvraft scale: {} keys of {} B ({} B keys), {} nodes\n",
            thousands(s.keys),
            s.value_bytes,
            s.key_bytes,
            s.nodes
        );
        let _ = writeln!(
            out,
            "- machine: {} cores, {:.1} GiB, Linux {}; load average {} before, {} after",
            m.cores,
            m.memory_bytes as f64 / (1u64 << 30) as f64,
            m.kernel,
            loads(&m.load_average_start),
            loads(&m.load_average_end)
        );
        let _ = writeln!(
            out,
            "- cluster: {} `kvraft server` processes on loopback, data under {}, \
             --max-raft-state-bytes {}; loaded by {} clients over {} connections",
            s.nodes, s.dir, s.max_raft_state_bytes, s.clients, s.connections
        );
        let _ = writeln!(out, "- MB = 10^6 bytes\n");
    }

    /// The table's rows (what, figure), in the order of the run's steps.
    fn rows(&self) -> Vec<(String, String)> {
        let mut rows = self.load_rows();
        rows.extend(self.memory_rows());
        rows.extend(self.snapshot_rows());
        rows.extend(self.restart_rows());
        rows.push(self.wiped_row());
        rows.extend(self.raw_rows());
        rows
    }

    fn load_rows(&self) -> Vec<(String, String)> {
        let (s, l) = (&self.settings, &self.load);
        vec![
            (
                format!("load: {} puts, one per key", thousands(s.keys)),
                format!(
                    "{}, {} keys/s, {} of payload; {} errors",
                    secs(l.seconds),
                    thousands(l.keys_per_sec.round() as u64),
                    rate(l.payload_mb_per_sec),
                    l.errors
                ),
            ),
            (
                "settle: overwrites until every snapshot covers the load".into(),
                format!(
                    "{} puts, {}{}",
                    thousands(l.settle_puts),
                    secs(l.settle_seconds),
                    if l.settled { "" } else { " (NOT settled)" }
                ),
            ),
        ]
    }

    /// Memory per node and per key, and the files of the node with the newest snapshot.
    fn memory_rows(&self) -> Vec<(String, String)> {
        let mem = &self.memory;
        let mut rows = Vec::new();
        let rss: Vec<String> = mem.nodes.iter().map(|n| mb(n.empty_rss_bytes)).collect();
        rows.push(("RSS per node, empty cluster".into(), rss.join(" / ")));
        let rss: Vec<String> = mem
            .nodes
            .iter()
            .map(|n| format!("{} ({}, peak {})", mb(n.rss_bytes), n.role, mb(n.hwm_bytes)))
            .collect();
        rows.push(("RSS per node, loaded (VmRSS, peak VmHWM)".into(), rss.join(" / ")));
        rows.push((
            "memory per key".into(),
            format!(
                "{:.0} B/key per node (payload {:.0} B/key; the state machine alone {})",
                mem.bytes_per_key,
                mem.payload_bytes_per_key,
                mem.state_machine_bytes_per_key
                    .map_or("n/a".into(), |b| format!("{b:.0} B/key, in process"))
            ),
        ));
        if let Some(d) = self.on_disk.iter().max_by_key(|d| d.snapshot_index) {
            rows.push((
                "on disk, per node".into(),
                format!(
                    "snapshot {} (index {}), WAL {}",
                    mb(d.snapshot_bytes),
                    thousands(d.snapshot_index),
                    mb(d.wal_bytes)
                ),
            ));
        }
        rows
    }

    fn snapshot_rows(&self) -> Vec<(String, String)> {
        let sn = &self.snapshot;
        vec![
            (
                "snapshot: encode the state machine (in process)".into(),
                format!(
                    "{} for {}: {}",
                    secs(sn.encode_seconds),
                    mb(sn.data_bytes),
                    rate(sn.encode_mb_per_sec)
                ),
            ),
            (
                "snapshot: write durably (WalStorage on FileDisk)".into(),
                format!(
                    "{} for {}: {}",
                    secs(sn.write_seconds),
                    mb(sn.file_bytes),
                    rate(sn.write_mb_per_sec)
                ),
            ),
            (
                "snapshot: read back (page cache) + decode".into(),
                format!(
                    "{} + {}: {} ({} read, {} decode)",
                    secs(sn.read_seconds),
                    secs(sn.decode_seconds),
                    rate(sn.restore_mb_per_sec),
                    rate(sn.read_mb_per_sec),
                    rate(sn.decode_mb_per_sec)
                ),
            ),
        ]
    }

    fn restart_rows(&self) -> Vec<(String, String)> {
        let (k, t) = (&self.restart_after_kill, &self.restart_after_term);
        [("restart after SIGKILL", k), ("restart after SIGTERM", t)]
            .into_iter()
            .map(|(name, x)| {
                let stop = x
                    .stop_seconds
                    .map_or(String::new(), |s| format!("exited {} after TERM; ", secs(s)));
                (
                    format!("{name} (node {})", x.node_id),
                    format!(
                        "{stop}answers in {}, caught up in {}: {} of snapshot + WAL at {}",
                        secs(x.answer_seconds),
                        secs(x.caught_up_seconds),
                        mb(x.recovered_bytes),
                        rate(x.mb_per_sec)
                    ),
                )
            })
            .collect()
    }

    fn wiped_row(&self) -> (String, String) {
        let w = &self.wiped_follower;
        (
            format!("wiped follower back by InstallSnapshot (node {})", w.node_id),
            format!(
                "another leader (node {}) after {}; snapshot {} received {} later ({}), \
                 persisted, decoded and caught up {} after the election ({}; {} from the \
                 start: {}); RSS then {}; {}/{} sampled keys in its snapshot",
                w.leader_node_id,
                secs(w.leader_elected_seconds),
                mb(w.leader_snapshot_bytes),
                secs(w.received_seconds - w.leader_elected_seconds),
                rate(w.receive_mb_per_sec),
                secs(w.caught_up_seconds - w.leader_elected_seconds),
                rate(w.catch_up_mb_per_sec),
                secs(w.caught_up_seconds),
                rate(w.mb_per_sec),
                mb(w.rss_bytes),
                w.verified_keys,
                w.sampled_keys
            ),
        )
    }

    fn raw_rows(&self) -> Vec<(String, String)> {
        let r = &self.raw;
        vec![
            (
                format!("raw disk: {} MiB sequential write + fdatasync", r.disk_write_bytes >> 20),
                format!("{}: {}", secs(r.disk_write_seconds), rate(r.disk_write_mb_per_sec)),
            ),
            (
                format!("raw loopback TCP: {} MiB in 1 MiB writes", r.loopback_bytes >> 20),
                format!("{}: {}", secs(r.loopback_seconds), rate(r.loopback_mb_per_sec)),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(mb(125_000_000), "125 MB");
        assert_eq!(mb(1_500_000), "1.5 MB");
        assert_eq!(secs(0.0123), "12 ms");
        assert_eq!(secs(2.5), "2.50 s");
        assert_eq!(secs(61.0), "61.0 s");
        assert_eq!(mb_per_sec(2_000_000, 2.0), 1.0);
        assert_eq!(mb_per_sec(1, 0.0), 0.0);
    }
}
