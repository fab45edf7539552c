//! What `kvraft-bench scale` reads off its cluster ([`ProcessCluster`]): the
//! memory of each node's process, and the size of its data files.

use std::path::Path;

use kvraft_testkit::ProcessCluster;

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

/// The memory of node `i`'s process, if it runs.
pub fn node_memory(cluster: &ProcessCluster, i: usize) -> Option<Memory> {
    memory_of(&cluster.pid(i)?.to_string())
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
