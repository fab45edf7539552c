//! `kvraft status`: asks every endpoint for its `Status` (concurrently) and prints one row per
//! node, as an aligned table or, with `--json`, one JSON array.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use kvraft_client::remote::{self, parse_address};
use kvraft_client::ClientError;
use kvraft_proto::v1 as pb;
use kvraft_server::cli::parse_duration;

use crate::options::EndpointArgs;

#[derive(Clone, Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub cluster: EndpointArgs,
    /// How long to wait for each node: seconds (2) or with a unit (500ms, 2s).
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Print one JSON array (an object per endpoint) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One endpoint's answer.
#[derive(Debug)]
pub struct NodeStatus {
    pub endpoint: String,
    pub result: Result<pb::StatusReply, ClientError>,
}

/// Exit status 0 if at least one node answered, 1 otherwise.
pub async fn run(args: StatusArgs) -> ExitCode {
    let mut endpoints = Vec::new();
    for e in &args.cluster.endpoints {
        match parse_address(e) {
            Ok(a) => endpoints.push(a),
            Err(e) => {
                eprintln!("kvraft status: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let results = futures_util::future::join_all(
        endpoints.iter().map(|endpoint| remote::status(endpoint, args.timeout)),
    )
    .await;
    let nodes: Vec<NodeStatus> = endpoints
        .into_iter()
        .zip(results)
        .map(|(endpoint, result)| NodeStatus { endpoint, result })
        .collect();
    let text = if args.json { render_json(&nodes) } else { render_table(&nodes) };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if nodes.iter().any(|n| n.result.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn role_name(role: i32) -> &'static str {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Follower) => "follower",
        Ok(pb::Role::PreCandidate) => "pre-candidate",
        Ok(pb::Role::Candidate) => "candidate",
        Ok(pb::Role::Leader) => "leader",
        Ok(pb::Role::Unspecified) | Err(_) => "unknown",
    }
}

const HEADER: [&str; 9] =
    ["NODE", "ADDRESS", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "SNAPSHOT", "REACHABLE"];

/// An aligned table, one row per endpoint; unreachable nodes show `-` and why.
pub fn render_table(nodes: &[NodeStatus]) -> String {
    let dash = || "-".to_string();
    let rows: Vec<[String; 9]> = nodes
        .iter()
        .map(|n| match &n.result {
            Ok(s) => [
                s.node_id.to_string(),
                n.endpoint.clone(),
                role_name(s.role).to_string(),
                s.term.to_string(),
                if s.leader_id == 0 { dash() } else { s.leader_id.to_string() },
                s.commit_index.to_string(),
                s.applied_index.to_string(),
                s.snapshot_index.to_string(),
                "yes".to_string(),
            ],
            Err(e) => [
                dash(),
                n.endpoint.clone(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                format!("no ({})", unreachable_reason(e)),
            ],
        })
        .collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADER.map(str::to_string);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            // Numbers right-aligned, words left-aligned; the last column is not padded.
            let numeric = matches!(i, 3 | 5 | 6 | 7);
            if i > 0 {
                line.push_str("  ");
            }
            if i == row.len() - 1 {
                line.push_str(cell);
            } else if numeric {
                let _ = write!(line, "{cell:>w$}");
            } else {
                let _ = write!(line, "{cell:<w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn unreachable_reason(e: &ClientError) -> String {
    match e {
        ClientError::Unreachable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// A JSON array with one object per endpoint.
pub fn render_json(nodes: &[NodeStatus]) -> String {
    let objects: Vec<serde_json::Value> = nodes.iter().map(node_json).collect();
    let mut out = serde_json::to_string_pretty(&objects).expect("JSON values always serialize");
    out.push('\n');
    out
}

fn node_json(n: &NodeStatus) -> serde_json::Value {
    match &n.result {
        Ok(s) => serde_json::json!({
            "endpoint": n.endpoint,
            "reachable": true,
            "node_id": s.node_id,
            "address": s.address,
            "cluster_id": s.cluster_id,
            "role": role_name(s.role),
            "term": s.term,
            "leader_id": (s.leader_id != 0).then_some(s.leader_id),
            "leader_address": s.leader_address,
            "commit_index": s.commit_index,
            "applied_index": s.applied_index,
            "last_log_index": s.last_log_index,
            "snapshot_index": s.snapshot_index,
            "snapshot_term": s.snapshot_term,
            "uptime_ms": s.uptime_ms,
            "server_version": s.server_version,
        }),
        Err(e) => serde_json::json!({
            "endpoint": n.endpoint,
            "reachable": false,
            "error": unreachable_reason(e),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<NodeStatus> {
        let leader = pb::StatusReply {
            node_id: 1,
            address: "127.0.0.1:7001".into(),
            cluster_id: 77,
            role: pb::Role::Leader.into(),
            term: 12,
            leader_id: 1,
            leader_address: "127.0.0.1:7001".into(),
            commit_index: 1500,
            applied_index: 1500,
            last_log_index: 1501,
            snapshot_index: 1024,
            snapshot_term: 11,
            members: vec![],
            uptime_ms: 5,
            server_version: "0.1.0".into(),
        };
        let follower = pb::StatusReply {
            node_id: 2,
            role: pb::Role::Follower.into(),
            leader_id: 0,
            commit_index: 7,
            applied_index: 7,
            snapshot_index: 0,
            ..leader.clone()
        };
        vec![
            NodeStatus { endpoint: "127.0.0.1:7001".into(), result: Ok(leader) },
            NodeStatus { endpoint: "127.0.0.1:7002".into(), result: Ok(follower) },
            NodeStatus {
                endpoint: "127.0.0.1:7003".into(),
                result: Err(ClientError::Unreachable {
                    endpoint: "127.0.0.1:7003".into(),
                    reason: "connection \"refused\"".into(),
                }),
            },
        ]
    }

    #[test]
    fn the_table_is_aligned() {
        let want = "\
NODE  ADDRESS         ROLE      TERM  LEADER  COMMIT  APPLIED  SNAPSHOT  REACHABLE
1     127.0.0.1:7001  leader      12  1         1500     1500      1024  yes
2     127.0.0.1:7002  follower    12  -            7        7         0  yes
-     127.0.0.1:7003  -            -  -            -        -         -  no (connection \"refused\")
";
        assert_eq!(render_table(&nodes()), want);
    }

    #[test]
    fn json_is_one_array_with_escaped_strings() {
        let json = render_json(&nodes());
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let nodes = parsed.as_array().unwrap();
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[0]["endpoint"], "127.0.0.1:7001");
        assert_eq!(nodes[0]["reachable"], true);
        assert_eq!(nodes[0]["role"], "leader");
        assert_eq!(nodes[0]["leader_id"], 1);
        assert_eq!(nodes[1]["leader_id"], serde_json::Value::Null);
        assert_eq!(nodes[2]["reachable"], false);
        assert_eq!(nodes[2]["error"], "connection \"refused\"");
        // What scripts grep for.
        assert!(json.contains("\"role\": \"leader\""), "{json}");
        assert!(json.contains("\"error\": \"connection \\\"refused\\\"\""), "{json}");
        assert!(json.ends_with("]\n"));
        assert_eq!(render_json(&[]), "[]\n");
    }
}
