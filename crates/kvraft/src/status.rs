//! `kvraft status`: asks every endpoint for its `Status` (concurrently) and prints one row per
//! node, as an aligned table or, with `--json`, one JSON array.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use kvraft_client::remote::{self, parse_address};
use kvraft_client::ClientError;
use kvraft_proto::v1 as pb;

use crate::options::{parse_duration, EndpointArgs};

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
    let mut out = String::from("[");
    for (i, n) in nodes.iter().enumerate() {
        out.push_str(if i == 0 { "\n  {" } else { ",\n  {" });
        let _ = write!(out, "\"endpoint\": {}", json_string(&n.endpoint));
        match &n.result {
            Ok(s) => {
                let _ = write!(
                    out,
                    ", \"reachable\": true, \"node_id\": {}, \"address\": {}, \
                     \"cluster_id\": {}, \"role\": {}, \"term\": {}, \"leader_id\": {}, \
                     \"leader_address\": {}, \"commit_index\": {}, \"applied_index\": {}, \
                     \"last_log_index\": {}, \"snapshot_index\": {}, \"snapshot_term\": {}, \
                     \"uptime_ms\": {}, \"server_version\": {}",
                    s.node_id,
                    json_string(&s.address),
                    s.cluster_id,
                    json_string(role_name(s.role)),
                    s.term,
                    if s.leader_id == 0 { "null".to_string() } else { s.leader_id.to_string() },
                    json_string(&s.leader_address),
                    s.commit_index,
                    s.applied_index,
                    s.last_log_index,
                    s.snapshot_index,
                    s.snapshot_term,
                    s.uptime_ms,
                    json_string(&s.server_version),
                );
            }
            Err(e) => {
                let _ = write!(
                    out,
                    ", \"reachable\": false, \"error\": {}",
                    json_string(&unreachable_reason(e))
                );
            }
        }
        out.push('}');
    }
    out.push_str(if nodes.is_empty() { "]\n" } else { "\n]\n" });
    out
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
        assert!(json.starts_with("[\n  {\"endpoint\": \"127.0.0.1:7001\", \"reachable\": true"));
        assert!(json.contains("\"role\": \"leader\""));
        assert!(json.contains("\"leader_id\": null"));
        assert!(json.contains(
            "{\"endpoint\": \"127.0.0.1:7003\", \"reachable\": false, \
             \"error\": \"connection \\\"refused\\\"\"}\n]\n"
        ));
        assert_eq!(render_json(&[]), "[]\n");
        assert_eq!(json_string("a\u{1}\\\n"), "\"a\\u0001\\\\\\n\"");
    }
}
