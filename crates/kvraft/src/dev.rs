//! `kvraft dev`: a local cluster of N nodes in this process, for trying kvraft out.
//!
//! Node `i` (1..=N) listens on 127.0.0.1:(base port + i - 1) and keeps its data in
//! `<data-dir>/node<i>`, so a restart picks up where the last run stopped. Every node's
//! configuration goes through [`ServerConfig::resolve`], the same validation as `kvraft server`,
//! with a small snapshot threshold so that snapshots happen in a short session. Runs until
//! Ctrl-C or SIGTERM (or until a node stops by itself), then shuts every node down.

use std::path::PathBuf;
use std::process::ExitCode;

use futures_util::future::{join_all, select_all};
use kvraft_server::{ServerArgs, ServerConfig, ServerError, ServerHandle};

use crate::options::DEV_ENDPOINTS;

/// Snapshot threshold of dev nodes: small, so that snapshots and log compaction happen.
const DEV_MAX_RAFT_STATE_BYTES: u64 = 1 << 20;

#[derive(Clone, Debug, clap::Args)]
pub struct DevArgs {
    /// Directory for the nodes' data: node1, node2, ... inside it (created if missing, reused
    /// if present).
    #[arg(long, default_value = "./kvraft-data", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Client and peer port of node 1; node i uses base-port + i - 1.
    #[arg(long, default_value_t = 7001, value_name = "PORT")]
    pub base_port: u16,
    /// Number of nodes (1 to 9).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub nodes: u16,
}

/// The nodes' configurations, as `kvraft server` would resolve them.
pub fn configs(args: &DevArgs) -> Result<Vec<ServerConfig>, String> {
    let last = u32::from(args.base_port) + u32::from(args.nodes) - 1;
    if args.base_port == 0 || last > u32::from(u16::MAX) {
        return Err(format!(
            "--base-port {} leaves no room for {} nodes (ports up to 65535)",
            args.base_port, args.nodes
        ));
    }
    let cluster: Vec<String> =
        (1..=args.nodes).map(|i| format!("{i}=127.0.0.1:{}", args.base_port + (i - 1))).collect();
    let cluster = cluster.join(",");
    (1..=args.nodes)
        .map(|i| {
            let server = ServerArgs {
                id: Some(u64::from(i)),
                cluster: Some(cluster.clone()),
                data_dir: Some(args.data_dir.join(format!("node{i}"))),
                max_raft_state_bytes: Some(DEV_MAX_RAFT_STATE_BYTES),
                ..ServerArgs::default()
            };
            ServerConfig::resolve(&server).map_err(|e| format!("node {i}: {e}"))
        })
        .collect()
}

/// What to tell the user once the cluster is up.
pub fn banner(args: &DevArgs, configs: &[ServerConfig]) -> String {
    let endpoints: Vec<&str> = configs.iter().map(|c| c.address()).collect();
    let endpoints = endpoints.join(",");
    let mut out = format!(
        "kvraft dev: {} node{} running, data in {}\n",
        configs.len(),
        if configs.len() == 1 { "" } else { "s" },
        args.data_dir.display()
    );
    for c in configs {
        out.push_str(&format!("  node {}  {}  {}\n", c.id.0, c.address(), c.data_dir.display()));
    }
    out.push_str("\nTry, in another terminal:\n");
    if endpoints != DEV_ENDPOINTS {
        out.push_str(&format!("  export KVRAFT_ENDPOINTS={endpoints}\n"));
    }
    for example in ["put a 1", "append a 2", "get a", "status"] {
        out.push_str(&format!("  kvraft {example}\n"));
    }
    out.push_str("\nCtrl-C stops the cluster.\n");
    out
}

pub async fn run(args: DevArgs) -> ExitCode {
    kvraft_server::init_logging();
    let configs = match configs(&args) {
        Ok(configs) => configs,
        Err(e) => {
            eprintln!("kvraft dev: {e}");
            return ExitCode::from(2);
        }
    };
    let mut handles: Vec<ServerHandle> = Vec::new();
    for config in &configs {
        match kvraft_server::start(config.clone()).await {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                eprintln!("kvraft dev: node {}: {e}", config.id.0);
                shutdown_all(handles.into_iter().zip(configs.iter().map(|c| c.id.0))).await;
                return ExitCode::FAILURE;
            }
        }
    }
    print!("{}", banner(&args, &configs));

    let ids: Vec<u64> = configs.iter().map(|c| c.id.0).collect();
    // Wait for a signal, or for a node to stop by itself (a fatal error such as a failed
    // fsync); such a node is finished and is not shut down again.
    let stopped: Option<(usize, Result<(), ServerError>)> = {
        let any_stopped = select_all(handles.iter_mut().map(|h| Box::pin(h.stopped())));
        tokio::select! {
            _ = kvraft_server::shutdown_signal() => None,
            (result, index, _) = any_stopped => Some((index, result)),
        }
    };
    let mut status = ExitCode::SUCCESS;
    let mut nodes: Vec<(ServerHandle, u64)> = handles.into_iter().zip(ids).collect();
    match stopped {
        None => eprintln!("kvraft dev: stopping {} nodes", nodes.len()),
        Some((index, result)) => {
            let (_, id) = nodes.remove(index);
            match result {
                Ok(()) => eprintln!("kvraft dev: node {id} stopped; stopping the others"),
                Err(e) => eprintln!("kvraft dev: node {id} failed: {e}; stopping the others"),
            }
            status = ExitCode::FAILURE;
        }
    }
    if !shutdown_all(nodes).await {
        status = ExitCode::FAILURE;
    }
    status
}

/// Shuts the nodes down concurrently; false if any failed to stop cleanly.
async fn shutdown_all(nodes: impl IntoIterator<Item = (ServerHandle, u64)>) -> bool {
    let results =
        join_all(nodes.into_iter().map(|(h, id)| async move { (id, h.shutdown().await) })).await;
    let mut clean = true;
    for (id, result) in results {
        if let Err(e) = result {
            eprintln!("kvraft dev: node {id}: {e}");
            clean = false;
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(base_port: u16, nodes: u16) -> DevArgs {
        DevArgs { data_dir: "/tmp/d".into(), base_port, nodes }
    }

    #[test]
    fn nodes_get_consecutive_ports_and_their_own_directories() {
        let c = configs(&args(7001, 3)).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[2].address(), "127.0.0.1:7003");
        assert_eq!(c[2].listen, "127.0.0.1:7003".parse().unwrap());
        assert_eq!(c[2].data_dir, PathBuf::from("/tmp/d/node3"));
        assert_eq!(c[0].max_raft_state_bytes, Some(1 << 20));
        assert!(c.iter().all(|x| x.cluster_id == c[0].cluster_id && x.cluster.len() == 3));
        let text = banner(&args(7001, 3), &c);
        assert!(text.contains("kvraft put a 1") && !text.contains("KVRAFT_ENDPOINTS"), "{text}");
        let other = banner(&args(8001, 1), &configs(&args(8001, 1)).unwrap());
        assert!(other.contains("export KVRAFT_ENDPOINTS=127.0.0.1:8001\n"), "{other}");
    }

    #[test]
    fn ports_must_fit() {
        assert!(configs(&args(65535, 2)).unwrap_err().contains("no room"));
        assert!(configs(&args(65534, 2)).is_ok());
    }
}
