//! A startup check of the cluster definition: each peer is asked for its status (for up to
//! [`CHECK_FOR`] after start, as peers come up); a peer that names another cluster, or
//! another node id than `--cluster` gives it, means the nodes were given different cluster
//! definitions, and this node stops with a message saying which and why. Peers that stay
//! unreachable are not an error (the cluster serves with a majority).

use std::sync::Arc;
use std::time::Duration;

use kvraft_proto::v1 as pb;
use kvraft_proto::v1::kv_service_client::KvServiceClient;
use kvraft_proto::ClusterId;
use tokio::sync::{mpsc, watch};
use tonic::transport::Endpoint;

use crate::config::{Member, ServerConfig};
use crate::node::Input;

/// How long after start peers are checked.
pub(crate) const CHECK_FOR: Duration = Duration::from_secs(60);

/// Runs the check; sends `Input::Fatal` to the node on a mismatch.
pub(crate) async fn check_peers(
    config: Arc<ServerConfig>,
    inputs: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut unchecked: Vec<Member> = config.peers().cloned().collect();
    let deadline = tokio::time::Instant::now() + CHECK_FOR;
    while !unchecked.is_empty() && tokio::time::Instant::now() < deadline {
        let mut still = Vec::new();
        for peer in unchecked {
            match peer_status(&peer).await {
                Some(status) => {
                    if let Some(why) = mismatch(&config, &peer, &status) {
                        let _ = inputs.send(Input::Fatal(why)).await;
                        return;
                    }
                }
                None => still.push(peer),
            }
        }
        unchecked = still;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

async fn peer_status(peer: &Member) -> Option<pb::StatusReply> {
    let endpoint = Endpoint::from_shared(format!("http://{}", peer.address))
        .ok()?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2));
    let channel = endpoint.connect().await.ok()?;
    let reply = KvServiceClient::new(channel).status(pb::StatusRequest {}).await.ok()?;
    Some(reply.into_inner())
}

/// Why `status`, reported by `peer`, shows a different cluster definition; None if it agrees.
pub(crate) fn mismatch(
    config: &ServerConfig,
    peer: &Member,
    status: &pb::StatusReply,
) -> Option<String> {
    if ClusterId(status.cluster_id) != config.cluster_id {
        return Some(format!(
            "node {} at {} belongs to cluster {}, this node to cluster {}: every node must be \
             given the same --cluster (and --cluster-id); this node's is {}",
            peer.id.0,
            peer.address,
            ClusterId(status.cluster_id),
            config.cluster_id,
            describe(&config.cluster)
        ));
    }
    if status.node_id != peer.id.0 {
        return Some(format!(
            "{} answers as node {}, but --cluster says it is node {}",
            peer.address, status.node_id, peer.id.0
        ));
    }
    None
}

fn describe(cluster: &[Member]) -> String {
    let parts: Vec<String> = cluster.iter().map(|m| format!("{}={}", m.id.0, m.address)).collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ServerArgs, ServerConfig};

    fn config(cluster: &str) -> ServerConfig {
        ServerConfig::resolve(&ServerArgs {
            id: Some(1),
            cluster: Some(cluster.into()),
            data_dir: Some("/d".into()),
            ..ServerArgs::default()
        })
        .unwrap()
    }

    #[test]
    fn names_the_disagreement() {
        let mine = config("1=a:1,2=b:1");
        let peer = mine.peers().next().unwrap().clone();
        let agreeing =
            pb::StatusReply { cluster_id: mine.cluster_id.0, node_id: 2, ..Default::default() };
        assert_eq!(mismatch(&mine, &peer, &agreeing), None);
        let other = config("1=a:1,2=b:1,3=c:1");
        let foreign =
            pb::StatusReply { cluster_id: other.cluster_id.0, node_id: 2, ..Default::default() };
        let why = mismatch(&mine, &peer, &foreign).unwrap();
        assert!(why.contains("same --cluster") && why.contains("1=a:1,2=b:1"), "{why}");
        let swapped =
            pb::StatusReply { cluster_id: mine.cluster_id.0, node_id: 3, ..Default::default() };
        let why = mismatch(&mine, &peer, &swapped).unwrap();
        assert!(why.contains("answers as node 3"), "{why}");
    }
}
