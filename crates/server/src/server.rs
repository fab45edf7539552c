//! Bringing a node up and down: data directory and recovery, the node task, peer senders, the
//! gRPC server, and shutdown on a signal or a fatal error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvraft_kv::SessionLimits;
use kvraft_raft::{ClusterConfig, PersistBatch, RecoveredState, Snapshot, Storage};
use kvraft_replica::{Replica, ReplicaConfig, ReplicaError};
use kvraft_storage::{
    open_data_dir, DataDirError, DataDirStatus, DiskError, FileDisk, NodeIdentity, WalError,
    WalStorage,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::api::ClientApi;
use crate::config::ServerConfig;
use crate::context::NodeContext;
use crate::grpc::RefusalsAsInvalidArgument;
use crate::node::{Input, Node, NodeError};
use crate::peer_outbound::start_peer_senders;
use crate::wal_thread::WalThread;

/// Why a server could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("data directory {dir}: {source}")]
    DataDir { dir: String, source: DataDirError },
    #[error("data directory {dir}: {source}")]
    Disk { dir: String, source: DiskError },
    #[error("cannot create data directory {dir}: {source}")]
    CreateDir { dir: String, source: std::io::Error },
    #[error("recovering the write-ahead log in {dir}: {source}")]
    Recovery { dir: String, source: WalError },
    #[error("cannot start from the stored state: {0}")]
    Replica(#[from] ReplicaError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot start the WAL thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("a server task panicked: {0}")]
    Panicked(String),
}

/// A running node.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    /// None once `stopped` has seen the node task end.
    node: Option<NodeTask>,
    grpc: JoinHandle<Result<(), tonic::transport::Error>>,
    senders: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address of the node's one port (clients over client frames or gRPC, and peers).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Resolves when the node stops by itself (a fatal error such as a failed fsync), with
    /// its error; at once if it already did.
    pub async fn stopped(&mut self) -> Result<(), ServerError> {
        match &mut self.node {
            Some(node) => {
                let result = join(node).await;
                self.node = None;
                result?.map_err(ServerError::from)
            }
            None => Ok(()),
        }
    }

    /// Stops the node: no new requests, the WAL thread finishes its write, connections close.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        let _ = self.shutdown.send(true);
        let node = match &mut self.node {
            Some(node) => join(node).await,
            None => Ok(Ok(())),
        };
        // Graceful: in-flight calls finish; a client that holds a call open longer is cut off.
        let grpc = match tokio::time::timeout(GRACE, &mut self.grpc).await {
            Ok(joined) => joined.map_err(|e| ServerError::Panicked(e.to_string())),
            Err(_) => {
                tracing::warn!("gRPC calls still open after {GRACE:?}; closing them");
                self.grpc.abort();
                Ok(Ok(()))
            }
        };
        for sender in &mut self.senders {
            let _ = join(sender).await;
        }
        node??;
        grpc??;
        Ok(())
    }
}

/// The node task: it ends on shutdown, or with the fatal error that stopped the node.
type NodeTask = JoinHandle<Result<(), NodeError>>;

/// How long a shutdown waits for open gRPC calls.
const GRACE: Duration = Duration::from_secs(2);

async fn join<T>(task: &mut JoinHandle<T>) -> Result<T, ServerError> {
    task.await.map_err(|e| ServerError::Panicked(e.to_string()))
}

/// Installs the log subscriber: level from `RUST_LOG` (default `info`), to stderr.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: `docker logs` and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// Starts a node; returns once it listens.
pub async fn start(config: ServerConfig) -> Result<ServerHandle, ServerError> {
    let config = Arc::new(config);
    let (wal, recovered) = open_storage(&config)?;
    let raft = config.raft_config(seed_from_clock(config.id.0));
    let replica_config = ReplicaConfig {
        max_raft_state_bytes: config.max_raft_state_bytes,
        sessions: SessionLimits::default(),
        follower_reads: config.follower_reads,
        ..ReplicaConfig::default()
    };
    let replica = Replica::new(raft, recovered, replica_config)?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen { addr: config.listen, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen { addr: config.listen, source })?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    let NodeTasks { node, inputs, senders } = spawn_node(&config, replica, wal, &shutdown_rx)?;
    let grpc = serve(&config, listener, inputs, shutdown_rx);
    tracing::info!(
        "node {} of cluster {} listening on {local_addr} (cluster address {})",
        config.id.0,
        config.cluster_id,
        config.address()
    );
    Ok(ServerHandle { local_addr, shutdown, node: Some(node), grpc, senders })
}

/// Opens the data directory (creating it on first start, refusing another node's or another
/// cluster's) and recovers the WAL in it.
fn open_storage(
    config: &ServerConfig,
) -> Result<(WalStorage<FileDisk>, RecoveredState), ServerError> {
    let dir = config.data_dir.display().to_string();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| ServerError::CreateDir { dir: dir.clone(), source })?;
    let mut disk = FileDisk::open(&config.data_dir)
        .map_err(|source| ServerError::Disk { dir: dir.clone(), source })?;
    let identity = NodeIdentity { cluster_id: config.cluster_id, node_id: config.id };
    let created = match open_data_dir(&mut disk, identity)
        .map_err(|source| ServerError::DataDir { dir: dir.clone(), source })?
    {
        DataDirStatus::Created => {
            tracing::info!("initialized data directory {dir}");
            true
        }
        DataDirStatus::Existing => false,
    };
    let mut wal = WalStorage::open(disk)
        .map_err(|source| ServerError::Recovery { dir: dir.clone(), source })?;
    if created {
        // The cluster's first configuration, durable before the first start: from now on the
        // configuration comes from the data directory (its log and snapshots), whatever
        // `--cluster` says on later starts.
        let voters = config.cluster.iter().map(|m| m.id);
        let bootstrap = Snapshot::bootstrap(ClusterConfig::bootstrap(voters));
        let batch = PersistBatch { hard_state: None, snapshot: Some(&bootstrap), entries: &[] };
        wal.persist(batch).map_err(|source| ServerError::Recovery { dir: dir.clone(), source })?;
    }
    let report = wal.recovery_report();
    if let Some(t) = &report.truncated {
        tracing::warn!(
            "recovery cut a torn tail of {} bytes from {} at offset {}",
            t.dropped_bytes,
            t.file,
            t.offset
        );
    }
    let recovered =
        wal.recover().map_err(|source| ServerError::Recovery { dir: dir.clone(), source })?;
    tracing::info!(
        "node {} recovered: term {}, commit {}, snapshot at {}, {} log entries",
        config.id.0,
        recovered.hard_state.term.0,
        recovered.hard_state.commit.0,
        recovered.snapshot.meta.index.0,
        recovered.entries.len()
    );
    Ok((wal, recovered))
}

/// What [`spawn_node`] started, for the server handle and the client API.
struct NodeTasks {
    node: NodeTask,
    /// The node's input queue, which the client API feeds.
    inputs: mpsc::Sender<Input>,
    /// One sender task per peer.
    senders: Vec<JoinHandle<()>>,
}

/// The node's tasks: the WAL thread, a sender per peer, the node loop and the peer check.
fn spawn_node(
    config: &Arc<ServerConfig>,
    replica: Replica,
    wal: WalStorage<FileDisk>,
    shutdown_rx: &watch::Receiver<bool>,
) -> Result<NodeTasks, ServerError> {
    let (wal_done_tx, wal_done) = mpsc::unbounded_channel();
    let wal = WalThread::spawn(wal, wal_done_tx).map_err(ServerError::Thread)?;
    let peers: Vec<_> = config.peers().cloned().collect();
    let (queues, senders) =
        start_peer_senders(config.id, config.cluster_id, &peers, shutdown_rx.clone());
    let (inputs, inputs_rx) = mpsc::channel(4096);
    let node = Node::new(replica, wal, wal_done, queues, config.max_pending_requests);
    let tick = Duration::from_millis(config.tick_ms);
    let node = tokio::spawn(node.run(tick, inputs_rx, shutdown_rx.clone()));

    tokio::spawn(crate::peer_check::check_peers(
        config.clone(),
        inputs.clone(),
        shutdown_rx.clone(),
    ));
    Ok(NodeTasks { node, inputs, senders })
}

/// Serves clients (client frames and gRPC) and peers on `listener` until shutdown.
fn serve(
    config: &Arc<ServerConfig>,
    listener: tokio::net::TcpListener,
    inputs: mpsc::Sender<Input>,
    shutdown_rx: watch::Receiver<bool>,
) -> JoinHandle<Result<(), tonic::transport::Error>> {
    let node_context = NodeContext {
        inputs,
        config: config.clone(),
        started: Instant::now(),
        shutdown: shutdown_rx.clone(),
    };
    let api = Arc::new(ClientApi::new(node_context));
    let kv = crate::grpc::service(api.clone());
    let mut grpc_shutdown = shutdown_rx;
    let incoming = crate::listener::accept_connections(listener, api);
    let serve = tonic::transport::Server::builder()
        .layer(RefusalsAsInvalidArgument)
        .add_service(kv)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = grpc_shutdown.wait_for(|stop| *stop).await;
        });
    tokio::spawn(async move {
        let result = serve.await;
        if let Err(e) = &result {
            tracing::error!("gRPC server stopped: {e}");
        }
        result
    })
}

/// Election timeouts must differ between nodes and between restarts; the Raft core takes
/// its randomness as a seed, so the driver supplies one.
fn seed_from_clock(id: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ id.rotate_left(32) ^ u64::from(std::process::id())
}

/// What `kvraft server` runs: start, then run until SIGTERM or Ctrl-C (then shut down
/// cleanly) or until the node stops by itself.
pub async fn run_until_signal(config: ServerConfig) -> Result<(), ServerError> {
    let mut handle = start(config).await?;
    tokio::select! {
        result = handle.stopped() => {
            result?;
            Ok(())
        }
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            handle.shutdown().await
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
