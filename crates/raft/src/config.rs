//! Static configuration of one Raft peer.

use crate::types::NodeId;

/// Everything a `RawNode` needs to know that is not in its storage. Time is measured in ticks:
/// the driver decides how long a tick is (the simulator and the server both use 10 ms).
#[derive(Clone, Debug)]
pub struct Config {
    /// This peer. Must be one of `voters` and non-zero.
    pub id: NodeId,
    /// Every voting member of the cluster, this peer included.
    pub voters: Vec<NodeId>,
    /// Base election timeout; each follower waits a random time in `[base, 2 * base)`.
    pub election_timeout_ticks: u32,
    /// How often a leader sends heartbeats. Must be well below the election timeout.
    pub heartbeat_interval_ticks: u32,
    /// Ask "could I win?" before starting a real election, so that a peer returning from a
    /// partition does not force a healthy leader to step down (Raft thesis 9.6).
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum for an election timeout steps down, and a
    /// follower that heard from a leader within the timeout ignores vote requests.
    pub check_quorum: bool,
    /// Bound on AppendEntries messages in flight to one follower while pipelining.
    pub max_inflight_appends: usize,
    /// Bound on the entry bytes in one AppendEntries (at least one entry is always sent).
    pub max_append_bytes: usize,
    /// Size of one InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Bound on the bytes of proposed but not yet committed entries; beyond it proposals fail.
    pub max_uncommitted_bytes: usize,
    /// A new leader appends an empty entry at once, so that it commits an entry of its term
    /// (and learns the commit index) without waiting for a proposal. ReadIndex reads need
    /// this to be served promptly; the MIT lab's Raft tests forbid it (they check indices).
    pub append_noop_on_election: bool,
    /// Seed of this peer's randomness (election timeouts). Derive it per peer.
    pub seed: u64,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("node id 0 is reserved; ids start at 1")]
    ZeroId,
    #[error("node {0} is not among the voters {1:?}")]
    NotAVoter(NodeId, Vec<NodeId>),
    #[error("voter {0} is listed twice")]
    DuplicateVoter(NodeId),
    #[error("heartbeat interval ({heartbeat} ticks) must be below the election timeout ({election} ticks)")]
    HeartbeatTooSlow { heartbeat: u32, election: u32 },
    #[error("{0} must be positive")]
    NotPositive(&'static str),
}

impl Config {
    /// The defaults we run with, chosen for 10 ms ticks: elections after 300-600 ms of silence,
    /// heartbeats every 100 ms (the lab's limit of ten per second).
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            election_timeout_ticks: 30,
            heartbeat_interval_ticks: 10,
            pre_vote: true,
            check_quorum: true,
            max_inflight_appends: 64,
            max_append_bytes: 1 << 20,
            snapshot_chunk_bytes: 1 << 20,
            max_uncommitted_bytes: 64 << 20,
            append_noop_on_election: false,
            seed: id.0,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.voters.iter().any(|v| v.0 == 0) || self.id.0 == 0 {
            return Err(ConfigError::ZeroId);
        }
        if !self.voters.contains(&self.id) {
            return Err(ConfigError::NotAVoter(self.id, self.voters.clone()));
        }
        let mut sorted = self.voters.clone();
        sorted.sort();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError::DuplicateVoter(w[0]));
        }
        for (name, value) in [
            ("election_timeout_ticks", self.election_timeout_ticks as usize),
            ("heartbeat_interval_ticks", self.heartbeat_interval_ticks as usize),
            ("max_inflight_appends", self.max_inflight_appends),
            ("max_append_bytes", self.max_append_bytes),
            ("snapshot_chunk_bytes", self.snapshot_chunk_bytes),
            ("max_uncommitted_bytes", self.max_uncommitted_bytes),
        ] {
            if value == 0 {
                return Err(ConfigError::NotPositive(name));
            }
        }
        if self.heartbeat_interval_ticks >= self.election_timeout_ticks {
            return Err(ConfigError::HeartbeatTooSlow {
                heartbeat: self.heartbeat_interval_ticks,
                election: self.election_timeout_ticks,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_configs_with_reasons() {
        let ok = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
        assert_eq!(ok.validate(), Ok(()));
        let mut c = ok.clone();
        c.id = NodeId(4);
        assert!(matches!(c.validate(), Err(ConfigError::NotAVoter(..))));
        let mut c = ok.clone();
        c.voters.push(NodeId(2));
        assert_eq!(c.validate(), Err(ConfigError::DuplicateVoter(NodeId(2))));
        let mut c = ok.clone();
        c.heartbeat_interval_ticks = 30;
        assert!(matches!(c.validate(), Err(ConfigError::HeartbeatTooSlow { .. })));
        let mut c = ok;
        c.snapshot_chunk_bytes = 0;
        assert_eq!(c.validate(), Err(ConfigError::NotPositive("snapshot_chunk_bytes")));
    }
}
