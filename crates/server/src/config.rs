//! Server configuration: command-line flags, environment variables (`KVRAFT_*`) and an
//! optional TOML file set the same options; a flag beats the environment, which beats the
//! file, which beats the default. [`ServerConfig::resolve`] validates everything up front, so
//! a bad setting stops the server before it touches its data directory.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use kvraft_raft::{ClusterId, NodeId};
use serde::Deserialize;

/// One cluster member: its id and the `host:port` its peers and clients reach it at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    pub address: String,
}

/// Options of `kvraft server`. The same struct is read twice: by clap from the command line and
/// the environment (a flag beats its variable), and by serde from the TOML file named by
/// `--config` (keys as the long flags, with `_` for `-`; an unknown key is an error). Every
/// option is optional here; [`ServerConfig::resolve`] merges the two, fills in the defaults
/// and validates.
#[derive(Clone, Debug, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerArgs {
    /// TOML file with any of the options below (keys as the long flags, with `_` for `-`).
    #[arg(long, env = "KVRAFT_CONFIG")]
    // A config file cannot name another one.
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// This node's id: one of the ids in --cluster. [required]
    #[arg(long, env = "KVRAFT_ID")]
    pub id: Option<u64>,
    /// Every member as id=host:port, comma-separated, e.g. 1=10.0.0.1:7001,2=10.0.0.2:7001.
    /// The same on every node. [required]
    #[arg(long, env = "KVRAFT_CLUSTER")]
    pub cluster: Option<String>,
    /// Directory for the WAL, snapshots and the node's identity file. [required]
    #[arg(long, env = "KVRAFT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on. [default: this node's cluster address if its host is an IP,
    /// otherwise 0.0.0.0 with its port]
    #[arg(long, env = "KVRAFT_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Cluster id: every node and data directory of a cluster must agree on it. [default:
    /// derived from --cluster]
    #[arg(long, env = "KVRAFT_CLUSTER_ID")]
    pub cluster_id: Option<u64>,
    /// Length of one Raft tick. [default: 10]
    #[arg(long, env = "KVRAFT_TICK_MS")]
    pub tick_ms: Option<u64>,
    /// Base election timeout; a follower waits a random time between it and twice it.
    /// [default: 500]
    #[arg(long, env = "KVRAFT_ELECTION_TIMEOUT_MS")]
    pub election_timeout_ms: Option<u64>,
    /// Leader heartbeat interval. [default: 100]
    #[arg(long, env = "KVRAFT_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Snapshot and compact the log when the Raft state reaches this many bytes; 0 never
    /// compacts. [default: 67108864]
    #[arg(long, env = "KVRAFT_MAX_RAFT_STATE_BYTES")]
    pub max_raft_state_bytes: Option<u64>,
    /// Largest key accepted, in bytes. [default: 4096]
    #[arg(long, env = "KVRAFT_MAX_KEY_BYTES")]
    pub max_key_bytes: Option<usize>,
    /// Largest value (or appended argument) accepted, in bytes. [default: 1048576]
    #[arg(long, env = "KVRAFT_MAX_VALUE_BYTES")]
    pub max_value_bytes: Option<usize>,
    /// Requests per second accepted on one client connection; 0 means no limit. [default: 0]
    #[arg(long, env = "KVRAFT_MAX_REQUESTS_PER_SEC")]
    pub max_requests_per_sec: Option<u32>,
    /// Client requests waiting for their log entry; beyond it new ones are refused with
    /// RESOURCE_EXHAUSTED. [default: 65536]
    #[arg(long, env = "KVRAFT_MAX_PENDING_REQUESTS")]
    pub max_pending_requests: Option<usize>,
    /// Serve linearizable Gets on followers too: a follower asks the leader for the read
    /// index (ReadIndex, Raft thesis 6.4) and answers from its own state once it has applied
    /// that far. Spreads read load; no clock assumption. [default: true]
    #[arg(long, env = "KVRAFT_FOLLOWER_READS", num_args = 0..=1, default_missing_value = "true")]
    pub follower_reads: Option<bool>,
    /// Leader-lease reads: the leader answers Gets without a heartbeat round while a majority
    /// acknowledged one recently. ASSUMES every node's clock runs at the same rate up to
    /// --lease-drift-margin-ms per election timeout, and that no node stalls (a long pause,
    /// SIGSTOP, `docker pause`, VM migration) — a stalled leader can then serve a stale read.
    /// Off unless you accept that. [default: false]
    #[arg(long, env = "KVRAFT_LEASE_READS", num_args = 0..=1, default_missing_value = "true")]
    pub lease_reads: Option<bool>,
    /// With --lease-reads: how much shorter than the election timeout the lease is, to cover
    /// clock drift between nodes. [default: a tenth of the election timeout]
    #[arg(long, env = "KVRAFT_LEASE_DRIFT_MARGIN_MS")]
    pub lease_drift_margin_ms: Option<u64>,
}

/// A validated server configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub id: NodeId,
    /// Every member, sorted by id.
    pub cluster: Vec<Member>,
    pub cluster_id: ClusterId,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub tick_ms: u64,
    pub election_timeout_ticks: u32,
    pub heartbeat_interval_ticks: u32,
    pub max_raft_state_bytes: Option<usize>,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    pub max_requests_per_sec: Option<u32>,
    pub max_pending_requests: usize,
    pub follower_reads: bool,
    /// `Some(drift margin in ticks)` when lease reads are on.
    pub lease_reads: Option<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing --{0} (or KVRAFT_{1}, or `{2}` in the config file)")]
    Missing(&'static str, &'static str, &'static str),
    #[error("--cluster: {0}")]
    Cluster(String),
    #[error("--id {id} is not a member of --cluster ({members})")]
    NotAMember { id: u64, members: String },
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("--{0}: {1}")]
    Invalid(&'static str, String),
}

impl ServerConfig {
    /// Merges `args` (flags and environment) with the config file it names, then fills in the
    /// defaults and validates: a flag beats the environment, which beats the file, which beats
    /// the default.
    pub fn resolve(args: &ServerArgs) -> Result<ServerConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => ServerArgs::default(),
        };
        args.clone().or(file).validate()
    }

    /// The Raft configuration of this node, its election timer seeded with `seed`.
    pub fn raft_config(&self, seed: u64) -> kvraft_raft::Config {
        let mut raft =
            kvraft_raft::Config::new(self.id, self.cluster.iter().map(|m| m.id).collect());
        raft.election_timeout_ticks = self.election_timeout_ticks;
        raft.heartbeat_interval_ticks = self.heartbeat_interval_ticks;
        raft.seed = seed;
        if let Some(margin) = self.lease_reads {
            raft.lease_reads = true;
            raft.lease_drift_margin_ticks = margin;
        }
        raft
    }

    /// This node's own cluster address.
    pub fn address(&self) -> &str {
        &self.member(self.id).expect("validated: the node is a member").address
    }

    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.cluster.iter().find(|m| m.id == id)
    }

    pub fn peers(&self) -> impl Iterator<Item = &Member> {
        self.cluster.iter().filter(move |m| m.id != self.id)
    }
}

/// The timing options, validated: everything in ticks of `tick_ms`.
struct Timing {
    tick_ms: u64,
    election_ms: u64,
    election_timeout_ticks: u32,
    heartbeat_interval_ticks: u32,
}

/// The size and rate limits, validated.
struct Limits {
    max_raft_state_bytes: Option<usize>,
    max_key_bytes: usize,
    max_value_bytes: usize,
    max_requests_per_sec: Option<u32>,
    max_pending_requests: usize,
}

impl ServerArgs {
    /// Each option as given on the command line or in the environment (clap has already put
    /// a flag before its variable), else as given in `file`. The struct literal names every
    /// field, so an option added to `ServerArgs` cannot be left out of the merge.
    fn or(self, file: ServerArgs) -> ServerArgs {
        ServerArgs {
            config: self.config,
            id: self.id.or(file.id),
            cluster: self.cluster.or(file.cluster),
            data_dir: self.data_dir.or(file.data_dir),
            listen: self.listen.or(file.listen),
            cluster_id: self.cluster_id.or(file.cluster_id),
            tick_ms: self.tick_ms.or(file.tick_ms),
            election_timeout_ms: self.election_timeout_ms.or(file.election_timeout_ms),
            heartbeat_ms: self.heartbeat_ms.or(file.heartbeat_ms),
            max_raft_state_bytes: self.max_raft_state_bytes.or(file.max_raft_state_bytes),
            max_key_bytes: self.max_key_bytes.or(file.max_key_bytes),
            max_value_bytes: self.max_value_bytes.or(file.max_value_bytes),
            max_requests_per_sec: self.max_requests_per_sec.or(file.max_requests_per_sec),
            max_pending_requests: self.max_pending_requests.or(file.max_pending_requests),
            follower_reads: self.follower_reads.or(file.follower_reads),
            lease_reads: self.lease_reads.or(file.lease_reads),
            lease_drift_margin_ms: self.lease_drift_margin_ms.or(file.lease_drift_margin_ms),
        }
    }

    /// Fills in the defaults and checks the merged options, in the order of the flags'
    /// documentation: who this node is, timing, limits, reads. The first problem found is
    /// the error.
    fn validate(self) -> Result<ServerConfig, ConfigError> {
        let id = self.id.ok_or(ConfigError::Missing("id", "ID", "id"))?;
        let cluster_text =
            self.cluster.as_deref().ok_or(ConfigError::Missing("cluster", "CLUSTER", "cluster"))?;
        let cluster = parse_cluster(cluster_text)?;
        let me = cluster.iter().find(|m| m.id.0 == id).ok_or_else(|| ConfigError::NotAMember {
            id,
            members: cluster.iter().map(|m| m.id.0.to_string()).collect::<Vec<_>>().join(","),
        })?;
        let data_dir = self
            .data_dir
            .clone()
            .ok_or(ConfigError::Missing("data-dir", "DATA_DIR", "data_dir"))?;
        let listen = match self.listen {
            Some(listen) => listen,
            None => default_listen(&me.address),
        };
        let cluster_id = ClusterId(self.cluster_id.unwrap_or_else(|| cluster_id_of(&cluster).0));
        if cluster_id.0 == 0 {
            return Err(ConfigError::Invalid("cluster-id", "0 is reserved".into()));
        }
        let timing = self.timing()?;
        let limits = self.limits()?;
        let config = ServerConfig {
            id: NodeId(id),
            cluster,
            cluster_id,
            data_dir,
            listen,
            tick_ms: timing.tick_ms,
            election_timeout_ticks: timing.election_timeout_ticks,
            heartbeat_interval_ticks: timing.heartbeat_interval_ticks,
            max_raft_state_bytes: limits.max_raft_state_bytes,
            max_key_bytes: limits.max_key_bytes,
            max_value_bytes: limits.max_value_bytes,
            max_requests_per_sec: limits.max_requests_per_sec,
            max_pending_requests: limits.max_pending_requests,
            follower_reads: self.follower_reads.unwrap_or(true),
            lease_reads: self.lease_reads(&timing)?,
        };
        if config.lease_reads.is_some() {
            // The lease rules (it must outlast a heartbeat interval) are the Raft config's.
            config
                .raft_config(0)
                .validate()
                .map_err(|e| ConfigError::Invalid("lease-drift-margin-ms", e.to_string()))?;
        }
        Ok(config)
    }

    /// The tick, and the election timeout and heartbeat interval as whole ticks; the
    /// heartbeat must come well within the election timeout.
    fn timing(&self) -> Result<Timing, ConfigError> {
        let tick_ms = self.tick_ms.unwrap_or(10);
        if tick_ms == 0 {
            return Err(ConfigError::Invalid("tick-ms", "must be positive".into()));
        }
        let election_ms = self.election_timeout_ms.unwrap_or(500);
        let heartbeat_ms = self.heartbeat_ms.unwrap_or(100);
        let ticks = |name, ms: u64| {
            let t = ms / tick_ms;
            if t == 0 || !ms.is_multiple_of(tick_ms) || t > u64::from(u32::MAX) {
                Err(ConfigError::Invalid(
                    name,
                    format!("{ms} ms is not a positive multiple of --tick-ms {tick_ms}"),
                ))
            } else {
                Ok(t as u32)
            }
        };
        let election_timeout_ticks = ticks("election-timeout-ms", election_ms)?;
        let heartbeat_interval_ticks = ticks("heartbeat-ms", heartbeat_ms)?;
        if heartbeat_interval_ticks >= election_timeout_ticks {
            return Err(ConfigError::Invalid(
                "heartbeat-ms",
                format!("{heartbeat_ms} ms must be below the election timeout ({election_ms} ms)"),
            ));
        }
        Ok(Timing { tick_ms, election_ms, election_timeout_ticks, heartbeat_interval_ticks })
    }

    /// The size and rate limits; 0 turns off the snapshot threshold and the rate limit.
    fn limits(&self) -> Result<Limits, ConfigError> {
        let max_raft_state_bytes =
            match self.max_raft_state_bytes.unwrap_or(64 << 20) {
                0 => None,
                n => Some(usize::try_from(n).map_err(|_| {
                    ConfigError::Invalid("max-raft-state-bytes", "too large".into())
                })?),
            };
        let max_key_bytes = self.max_key_bytes.unwrap_or(4096);
        let max_value_bytes = self.max_value_bytes.unwrap_or(1 << 20);
        // A WAL record holds at most 64 MiB; keep a whole request well inside it.
        const MAX_REQUEST: usize = 32 << 20;
        if max_key_bytes == 0 || max_key_bytes > MAX_REQUEST {
            return Err(ConfigError::Invalid(
                "max-key-bytes",
                format!("must be 1..={MAX_REQUEST}"),
            ));
        }
        if max_value_bytes > MAX_REQUEST {
            return Err(ConfigError::Invalid(
                "max-value-bytes",
                format!("must be at most {MAX_REQUEST}"),
            ));
        }
        let max_requests_per_sec = match self.max_requests_per_sec.unwrap_or(0) {
            0 => None,
            n => Some(n),
        };
        let max_pending_requests = self.max_pending_requests.unwrap_or(1 << 16);
        if max_pending_requests == 0 {
            return Err(ConfigError::Invalid("max-pending-requests", "must be positive".into()));
        }
        Ok(Limits {
            max_raft_state_bytes,
            max_key_bytes,
            max_value_bytes,
            max_requests_per_sec,
            max_pending_requests,
        })
    }

    /// `Some(drift margin in ticks)` when lease reads are on. The Raft config checks the
    /// lease itself once the whole configuration is known.
    fn lease_reads(&self, timing: &Timing) -> Result<Option<u32>, ConfigError> {
        if !self.lease_reads.unwrap_or(false) {
            return Ok(None);
        }
        let margin_ms = self.lease_drift_margin_ms.unwrap_or(timing.election_ms / 10);
        // Rounded up to whole ticks: the margin may only grow.
        let margin = u32::try_from(margin_ms.div_ceil(timing.tick_ms))
            .map_err(|_| ConfigError::Invalid("lease-drift-margin-ms", "too large".into()))?;
        Ok(Some(margin))
    }
}

fn read_file(path: &Path) -> Result<ServerArgs, ConfigError> {
    let err = |reason: String| ConfigError::File { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    toml::from_str(&text).map_err(|e| err(e.to_string()))
}

/// Parses `1=host:port,2=host:port,...`: ids positive and distinct, addresses `host:port`
/// and distinct. Sorted by id.
pub fn parse_cluster(text: &str) -> Result<Vec<Member>, ConfigError> {
    let bad = |why: String| ConfigError::Cluster(why);
    let mut members = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, address) =
            part.split_once('=').ok_or_else(|| bad(format!("{part:?} is not id=host:port")))?;
        let id: u64 = id.trim().parse().map_err(|_| {
            bad(format!("{id:?} in {part:?} is not a node id (a positive integer)"))
        })?;
        if id == 0 {
            return Err(bad("node id 0 is reserved; ids start at 1".into()));
        }
        let address = address.trim();
        let port = address.rsplit_once(':').and_then(|(host, port)| {
            (!host.is_empty()).then_some(())?;
            port.parse::<u16>().ok().filter(|p| *p != 0)
        });
        if port.is_none() {
            return Err(bad(format!("{address:?} (node {id}) is not host:port")));
        }
        members.push(Member { id: NodeId(id), address: address.to_string() });
    }
    if members.is_empty() {
        return Err(bad("no members".into()));
    }
    members.sort_by_key(|m| m.id);
    for pair in members.windows(2) {
        if pair[0].id == pair[1].id {
            return Err(bad(format!("node {} is listed twice", pair[0].id.0)));
        }
    }
    for (i, a) in members.iter().enumerate() {
        if let Some(b) = members[i + 1..].iter().find(|b| b.address == a.address) {
            return Err(bad(format!(
                "nodes {} and {} share the address {}",
                a.id.0, b.id.0, a.address
            )));
        }
    }
    Ok(members)
}

/// The default cluster id: a checksum of the membership (ids and addresses), so nodes given
/// different cluster definitions refuse each other's messages and data directories.
pub fn cluster_id_of(cluster: &[Member]) -> ClusterId {
    let text: Vec<String> = cluster.iter().map(|m| format!("{}={}", m.id.0, m.address)).collect();
    let text = text.join(",");
    let lo = crc32c::crc32c(text.as_bytes());
    let hi = crc32c::crc32c_append(lo, b"kvraft-cluster");
    ClusterId((u64::from(hi) << 32 | u64::from(lo)).max(1))
}

fn default_listen(address: &str) -> SocketAddr {
    let (host, port) = address.rsplit_once(':').expect("validated host:port");
    let port: u16 = port.parse().expect("validated port");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = host.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(id: u64, cluster: &str) -> ServerArgs {
        ServerArgs {
            id: Some(id),
            cluster: Some(cluster.into()),
            data_dir: Some("/tmp/x".into()),
            ..ServerArgs::default()
        }
    }

    #[test]
    fn resolves_defaults() {
        let c = ServerConfig::resolve(&args(2, "1=127.0.0.1:7001, 2=127.0.0.1:7002,3=h3:7003"))
            .unwrap();
        assert_eq!(c.id, NodeId(2));
        assert_eq!(c.address(), "127.0.0.1:7002");
        assert_eq!(c.listen, "127.0.0.1:7002".parse().unwrap());
        assert_eq!(c.peers().map(|m| m.id.0).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!((c.election_timeout_ticks, c.heartbeat_interval_ticks), (50, 10));
        let c3 =
            ServerConfig::resolve(&args(3, "3=h3:7003,1=127.0.0.1:7001,2=127.0.0.1:7002")).unwrap();
        assert_eq!(c3.listen, "0.0.0.0:7003".parse().unwrap());
        // The same membership in any order gives the same cluster id.
        assert_eq!(c3.cluster_id, c.cluster_id);
        let other = ServerConfig::resolve(&args(2, "1=127.0.0.1:7001,2=127.0.0.1:7009")).unwrap();
        assert_ne!(other.cluster_id, c.cluster_id);
    }

    #[test]
    fn refuses_bad_clusters() {
        for (cluster, why) in [
            ("", "no members"),
            ("1=a:1,1=b:2", "listed twice"),
            ("1=a:1,2=a:1", "share the address"),
            ("0=a:1", "reserved"),
            ("x=a:1", "not a node id"),
            ("1=a", "not host:port"),
            ("1=a:0", "not host:port"),
            ("1=:5", "not host:port"),
            ("1:a:5", "not id=host:port"),
        ] {
            let err = parse_cluster(cluster).unwrap_err().to_string();
            assert!(err.contains(why), "{cluster:?}: {err}");
        }
        let err = ServerConfig::resolve(&args(4, "1=a:1,2=b:1")).unwrap_err();
        assert_eq!(err, ConfigError::NotAMember { id: 4, members: "1,2".into() });
    }

    #[test]
    fn read_options_default_to_follower_reads_without_leases() {
        let c = ServerConfig::resolve(&args(1, "1=a:1")).unwrap();
        assert!(c.follower_reads);
        assert_eq!(c.lease_reads, None);

        let mut a = args(1, "1=a:1");
        a.follower_reads = Some(false);
        a.lease_reads = Some(true);
        let c = ServerConfig::resolve(&a).unwrap();
        assert!(!c.follower_reads);
        // A tenth of the 500 ms election timeout, in 10 ms ticks.
        assert_eq!(c.lease_reads, Some(5));
        a.lease_drift_margin_ms = Some(41);
        assert_eq!(ServerConfig::resolve(&a).unwrap().lease_reads, Some(5), "rounded up");
        // The lease (50 - 2 - margin ticks) must cover a heartbeat interval (10 ticks).
        a.lease_drift_margin_ms = Some(390);
        let err = ServerConfig::resolve(&a).unwrap_err().to_string();
        assert!(err.contains("lease-drift-margin-ms") && err.contains("heartbeat"), "{err}");
    }

    #[test]
    fn refuses_bad_timing_and_missing_options() {
        let mut a = args(1, "1=a:1");
        a.heartbeat_ms = Some(500);
        assert!(ServerConfig::resolve(&a).unwrap_err().to_string().contains("below the election"));
        a.heartbeat_ms = Some(15);
        assert!(ServerConfig::resolve(&a).unwrap_err().to_string().contains("multiple"));
        let missing = ServerArgs { id: Some(1), ..ServerArgs::default() };
        assert_eq!(
            ServerConfig::resolve(&missing).unwrap_err(),
            ConfigError::Missing("cluster", "CLUSTER", "cluster")
        );
    }

    #[test]
    fn the_file_fills_what_flags_leave_out() {
        let dir = std::env::temp_dir().join(format!("kvraft-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.toml");
        std::fs::write(
            &path,
            "id = 1\ncluster = \"1=127.0.0.1:7001\"\ndata_dir = \"/d\"\ntick_ms = 20\n",
        )
        .unwrap();
        let a =
            ServerArgs { config: Some(path.clone()), tick_ms: Some(5), ..ServerArgs::default() };
        let c = ServerConfig::resolve(&a).unwrap();
        assert_eq!((c.id, c.tick_ms, c.data_dir.as_path()), (NodeId(1), 5, Path::new("/d")));
        std::fs::write(&path, "id = 1\nbogus = 3\n").unwrap();
        let err = ServerConfig::resolve(&a).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
