//! A cluster of N nodes in this process, on loopback: what `kvraft dev` runs, and what the
//! tests of the server and of the bench start.
//!
//! Node `i` (0-based index; node id `i + 1`) listens on 127.0.0.1, on a free port or on
//! `base + i` ([`Ports`]), and keeps its data in `<data_dir>/node<i+1>`. Every node's
//! configuration goes through [`ServerConfig::resolve`], the validation `kvraft server`
//! applies, with the options of [`LocalClusterSpec::args`]. Nodes start, stop and restart one
//! at a time or all together; a node that stops by itself (a fatal error) can be waited for.
//!
//! Nothing here removes data unless asked ([`LocalClusterSpec::scratch`]): `kvraft dev` picks
//! up where its last session stopped.

mod ports;

use std::path::{Path, PathBuf};

use futures_util::future::{join_all, select_all};

use crate::config::{ConfigError, ServerArgs, ServerConfig};
use crate::server::{ServerError, ServerHandle};

pub use ports::free_ports;

/// Where the nodes of a [`LocalCluster`] listen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ports {
    /// Free loopback ports, chosen when the cluster is made ([`free_ports`]).
    Free,
    /// Node `i` (0-based) on port `base + i`.
    From(u16),
}

/// What a [`LocalCluster`] is made of.
#[derive(Clone, Debug)]
pub struct LocalClusterSpec {
    /// Number of nodes.
    pub nodes: usize,
    /// The directory of every node's data directory (`node1`, `node2`, ...).
    pub data_dir: PathBuf,
    pub ports: Ports,
    /// Options every node gets. The cluster sets each node's id, `--cluster` and data
    /// directory over whatever these say.
    pub args: ServerArgs,
    /// Remove `data_dir` after a clean [`LocalCluster::shutdown`].
    pub remove_data_dir: bool,
}

impl LocalClusterSpec {
    /// `nodes` nodes on free ports, their data in a fresh directory under the system's
    /// temporary directory (named after `name` and this process), removed after a clean
    /// shutdown: what a test wants.
    pub fn scratch(name: &str, nodes: usize) -> LocalClusterSpec {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let data_dir = std::env::temp_dir().join(format!(
            "kvraft-{name}-{}-{:x}",
            std::process::id(),
            nanos & 0xff_ffff
        ));
        LocalClusterSpec {
            nodes,
            data_dir,
            ports: Ports::Free,
            args: ServerArgs::default(),
            remove_data_dir: true,
        }
    }
}

/// Why a [`LocalCluster`] could not be made, or a node not started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LocalClusterError {
    /// [`Ports::From`] would pass port 65535 (or starts at 0).
    #[error("ports from {base} leave no room for {nodes} nodes (ports up to 65535)")]
    PortRange { base: u16, nodes: usize },
    #[error("no free loopback port: {0}")]
    NoFreePort(std::io::Error),
    #[error("node {id}: {source}")]
    Config { id: u64, source: ConfigError },
    #[error("node {id}: {source}")]
    Start { id: u64, source: ServerError },
    #[error("node {id}: {source}")]
    Stop { id: u64, source: ServerError },
}

/// N nodes in this process; see the [module docs](self).
#[derive(Debug)]
pub struct LocalCluster {
    configs: Vec<ServerConfig>,
    /// The `--cluster` every node was given.
    cluster: String,
    data_dir: PathBuf,
    remove_data_dir: bool,
    /// The running nodes; `None` for a node down.
    nodes: Vec<Option<ServerHandle>>,
}

impl LocalCluster {
    /// Chooses the ports and resolves every node's configuration; starts nothing and touches
    /// no disk.
    pub fn new(spec: &LocalClusterSpec) -> Result<LocalCluster, LocalClusterError> {
        let n = spec.nodes;
        let ports: Vec<u16> = match spec.ports {
            Ports::Free => free_ports(n).map_err(LocalClusterError::NoFreePort)?,
            Ports::From(base) => {
                let last = usize::from(base) + n.saturating_sub(1);
                if base == 0 || last > usize::from(u16::MAX) {
                    return Err(LocalClusterError::PortRange { base, nodes: n });
                }
                (0..n).map(|i| base + i as u16).collect()
            }
        };
        let members: Vec<String> =
            ports.iter().enumerate().map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1)).collect();
        let cluster = members.join(",");
        let configs = (1..=n as u64)
            .map(|id| {
                let args = ServerArgs {
                    id: Some(id),
                    cluster: Some(cluster.clone()),
                    data_dir: Some(spec.data_dir.join(format!("node{id}"))),
                    ..spec.args.clone()
                };
                ServerConfig::resolve(&args)
                    .map_err(|source| LocalClusterError::Config { id, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LocalCluster {
            nodes: configs.iter().map(|_| None).collect(),
            configs,
            cluster,
            data_dir: spec.data_dir.clone(),
            remove_data_dir: spec.remove_data_dir,
        })
    }

    /// [`LocalCluster::new`], then every node started. If one fails to start, those already
    /// running are shut down before the error is returned.
    pub async fn start(spec: &LocalClusterSpec) -> Result<LocalCluster, LocalClusterError> {
        let mut cluster = LocalCluster::new(spec)?;
        if let Err(e) = cluster.start_all().await {
            let _ = cluster.shutdown().await;
            return Err(e);
        }
        Ok(cluster)
    }

    /// Starts every node that is down, in order, and stops at the first that fails (the
    /// others keep running).
    pub async fn start_all(&mut self) -> Result<(), LocalClusterError> {
        for i in 0..self.len() {
            if !self.is_running(i) {
                self.start_node(i).await?;
            }
        }
        Ok(())
    }

    /// Starts node `i` on its data directory; returns once it listens.
    ///
    /// # Panics
    /// If node `i` is running.
    pub async fn start_node(&mut self, i: usize) -> Result<(), LocalClusterError> {
        assert!(!self.is_running(i), "node {} is already running", i + 1);
        let config = self.configs[i].clone();
        let id = config.id.0;
        let handle = crate::server::start(config)
            .await
            .map_err(|source| LocalClusterError::Start { id, source })?;
        self.nodes[i] = Some(handle);
        Ok(())
    }

    /// Shuts node `i` down cleanly.
    ///
    /// # Panics
    /// If node `i` is down.
    pub async fn stop_node(&mut self, i: usize) -> Result<(), LocalClusterError> {
        let handle = self.nodes[i].take().unwrap_or_else(|| panic!("node {} is down", i + 1));
        let id = self.configs[i].id.0;
        handle.shutdown().await.map_err(|source| LocalClusterError::Stop { id, source })
    }

    /// Shuts node `i` down (if it runs) and starts it again on its data.
    pub async fn restart_node(&mut self, i: usize) -> Result<(), LocalClusterError> {
        if self.is_running(i) {
            self.stop_node(i).await?;
        }
        self.start_node(i).await
    }

    /// Waits until a running node stops by itself (a fatal error such as a failed fsync) and
    /// returns its index and what it stopped with; that node is then down, and finished: it is
    /// not shut down again. Never resolves if no node runs.
    pub async fn node_stopped(&mut self) -> (usize, Result<(), ServerError>) {
        let (index, result) = {
            let running: Vec<_> = self
                .nodes
                .iter_mut()
                .enumerate()
                .filter_map(|(i, node)| Some((i, node.as_mut()?)))
                .map(|(i, handle)| Box::pin(async move { (i, handle.stopped().await) }))
                .collect();
            if running.is_empty() {
                return std::future::pending().await;
            }
            select_all(running).await.0
        };
        self.nodes[index] = None;
        (index, result)
    }

    /// Shuts every running node down, concurrently. Returns the nodes that did not stop
    /// cleanly; after a clean shutdown, removes the data if the spec said so.
    pub async fn shutdown(mut self) -> Result<(), Vec<LocalClusterError>> {
        let stops = self.nodes.iter_mut().zip(&self.configs).filter_map(|(node, config)| {
            let (handle, id) = (node.take()?, config.id.0);
            Some(async move {
                handle.shutdown().await.map_err(|source| LocalClusterError::Stop { id, source })
            })
        });
        let failures: Vec<LocalClusterError> =
            join_all(stops).await.into_iter().filter_map(Result::err).collect();
        if !failures.is_empty() {
            return Err(failures);
        }
        if self.remove_data_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
        Ok(())
    }

    /// The number of nodes, running or not.
    pub fn len(&self) -> usize {
        self.configs.len()
    }

    /// Whether the cluster has no node at all.
    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    /// Node `i`'s configuration.
    pub fn config(&self, i: usize) -> &ServerConfig {
        &self.configs[i]
    }

    /// Every node's configuration, node 1 first.
    pub fn configs(&self) -> &[ServerConfig] {
        &self.configs
    }

    /// Node `i`'s client address (`host:port`), also its peers' address for it.
    pub fn endpoint(&self, i: usize) -> &str {
        self.configs[i].address()
    }

    /// Every node's client address, node 1 first.
    pub fn endpoints(&self) -> Vec<String> {
        self.configs.iter().map(|c| c.address().to_string()).collect()
    }

    /// The `--cluster` every node was given (`1=127.0.0.1:7001,...`).
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The directory holding every node's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ports: Ports, nodes: usize) -> LocalClusterSpec {
        LocalClusterSpec {
            nodes,
            data_dir: "/tmp/d".into(),
            ports,
            args: ServerArgs { max_raft_state_bytes: Some(4096), ..ServerArgs::default() },
            remove_data_dir: false,
        }
    }

    #[test]
    fn nodes_get_their_ports_directories_and_the_shared_options() {
        let c = LocalCluster::new(&spec(Ports::From(7001), 3)).unwrap();
        assert_eq!(c.endpoints(), ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]);
        assert_eq!(c.cluster(), "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003");
        assert_eq!(c.config(2).data_dir, PathBuf::from("/tmp/d/node3"));
        assert_eq!(c.config(2).listen, "127.0.0.1:7003".parse().unwrap());
        assert!(c.configs().iter().all(|x| x.max_raft_state_bytes == Some(4096)));
        assert!((0..3).all(|i| !c.is_running(i)));

        let free = LocalCluster::new(&spec(Ports::Free, 2)).unwrap();
        assert_ne!(free.endpoint(0), free.endpoint(1));
    }

    #[test]
    fn ports_must_fit_and_options_must_be_valid() {
        let err = LocalCluster::new(&spec(Ports::From(65535), 2)).unwrap_err();
        assert!(matches!(err, LocalClusterError::PortRange { base: 65535, nodes: 2 }), "{err}");
        assert!(LocalCluster::new(&spec(Ports::From(65534), 2)).is_ok());
        assert!(LocalCluster::new(&spec(Ports::From(0), 1)).is_err());
        let mut bad = spec(Ports::From(7001), 1);
        bad.args.tick_ms = Some(0);
        let err = LocalCluster::new(&bad).unwrap_err().to_string();
        assert!(err.starts_with("node 1: --tick-ms"), "{err}");
    }
}
