//! `kvraft dev`: a local cluster of N nodes in this process, for trying kvraft out.
//!
//! Node `i` (1..=N) listens on 127.0.0.1:(base port + i - 1) and keeps its data in
//! `<data-dir>/node<i>`, so a restart picks up where the last run stopped: a [`LocalCluster`],
//! whose every node's configuration goes through [`ServerConfig::resolve`], the same validation
//! as `kvraft server`, with a small snapshot threshold so that snapshots happen in a short
//! session. Runs until Ctrl-C or SIGTERM (or until a node stops by itself), then shuts every
//! node down.

use std::path::PathBuf;
use std::process::ExitCode;

use kvraft_server::{
    LocalCluster, LocalClusterError, LocalClusterSpec, Ports, ServerArgs, ServerConfig,
};

use kvraft_server::cli::DEV_ENDPOINTS;

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

/// The cluster, its nodes' configurations resolved as `kvraft server` would; nothing runs yet.
pub fn cluster(args: &DevArgs) -> Result<LocalCluster, String> {
    let spec = LocalClusterSpec {
        nodes: usize::from(args.nodes),
        data_dir: args.data_dir.clone(),
        ports: Ports::From(args.base_port),
        args: ServerArgs {
            max_raft_state_bytes: Some(DEV_MAX_RAFT_STATE_BYTES),
            ..ServerArgs::default()
        },
        remove_data_dir: false,
    };
    LocalCluster::new(&spec).map_err(|e| match e {
        LocalClusterError::PortRange { .. } => format!(
            "--base-port {} leaves no room for {} nodes (ports up to 65535)",
            args.base_port, args.nodes
        ),
        other => other.to_string(),
    })
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
    let mut cluster = match cluster(&args) {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("kvraft dev: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = cluster.start_all().await {
        eprintln!("kvraft dev: {e}");
        shutdown(cluster).await;
        return ExitCode::FAILURE;
    }
    print!("{}", banner(&args, cluster.configs()));

    // Wait for a signal, or for a node to stop by itself (a fatal error such as a failed
    // fsync); such a node is finished and is not shut down again.
    let stopped = tokio::select! {
        _ = kvraft_server::shutdown_signal() => None,
        stopped = cluster.node_stopped() => Some(stopped),
    };
    let mut status = ExitCode::SUCCESS;
    match stopped {
        None => eprintln!("kvraft dev: stopping {} nodes", cluster.len()),
        Some((index, result)) => {
            let id = cluster.config(index).id.0;
            match result {
                Ok(()) => eprintln!("kvraft dev: node {id} stopped; stopping the others"),
                Err(e) => eprintln!("kvraft dev: node {id} failed: {e}; stopping the others"),
            }
            status = ExitCode::FAILURE;
        }
    }
    if !shutdown(cluster).await {
        status = ExitCode::FAILURE;
    }
    status
}

/// Shuts the running nodes down concurrently; false if any failed to stop cleanly.
async fn shutdown(cluster: LocalCluster) -> bool {
    match cluster.shutdown().await {
        Ok(()) => true,
        Err(failures) => {
            for e in failures {
                eprintln!("kvraft dev: {e}");
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(base_port: u16, nodes: u16) -> DevArgs {
        DevArgs { data_dir: "/tmp/d".into(), base_port, nodes }
    }

    #[test]
    fn nodes_get_consecutive_ports_and_their_own_directories() {
        let three = cluster(&args(7001, 3)).unwrap();
        let c = three.configs();
        assert_eq!(c.len(), 3);
        assert_eq!(c[2].address(), "127.0.0.1:7003");
        assert_eq!(c[2].listen, "127.0.0.1:7003".parse().unwrap());
        assert_eq!(c[2].data_dir, PathBuf::from("/tmp/d/node3"));
        assert_eq!(c[0].max_raft_state_bytes, Some(1 << 20));
        assert!(c.iter().all(|x| x.cluster_id == c[0].cluster_id && x.cluster.len() == 3));
        let text = banner(&args(7001, 3), c);
        assert!(text.contains("kvraft put a 1") && !text.contains("KVRAFT_ENDPOINTS"), "{text}");
        let other = banner(&args(8001, 1), cluster(&args(8001, 1)).unwrap().configs());
        assert!(other.contains("export KVRAFT_ENDPOINTS=127.0.0.1:8001\n"), "{other}");
    }

    #[test]
    fn the_default_cluster_is_where_the_clients_look_by_default() {
        use clap::Parser as _;
        let crate::Cli { command: crate::Command::Dev(defaults) } =
            crate::Cli::parse_from(["kvraft", "dev"])
        else {
            panic!("`kvraft dev` parses as the dev command");
        };
        assert_eq!(cluster(&defaults).unwrap().endpoints().join(","), DEV_ENDPOINTS);
    }

    #[test]
    fn ports_must_fit() {
        let err = cluster(&args(65535, 2)).unwrap_err();
        assert_eq!(err, "--base-port 65535 leaves no room for 2 nodes (ports up to 65535)");
        assert!(cluster(&args(65534, 2)).is_ok());
    }
}
