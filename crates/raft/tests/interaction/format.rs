//! How the harness prints entries, messages, roles and votes. The expected output of every
//! script in `testdata/` depends on these exact strings.

use std::fmt::Write as _;

use kvraft_raft::{
    AppendResult, ClusterConfig, Entry, EntryKind, Message, MessageBody, NodeId, RawNode,
    SnapshotResult,
};

pub(crate) fn fmt_data(data: &[u8]) -> String {
    if data.is_empty() {
        "<empty>".to_string()
    } else {
        String::from_utf8_lossy(data).into_owned()
    }
}

pub(crate) fn fmt_entry(e: &Entry) -> String {
    match e.kind {
        EntryKind::Normal => format!("{}@{}:{}", e.index, e.term, fmt_data(&e.data)),
        EntryKind::Config => {
            let config = ClusterConfig::decode(&e.data).expect("a well-formed config entry");
            format!("{}@{}:{}", e.index, e.term, fmt_config(&config))
        }
    }
}

/// A configuration as `conf(voters=1,2,3 learners=4 removed=5)`, the empty sets left out.
pub(crate) fn fmt_config(config: &ClusterConfig) -> String {
    let ids = |set: &mut dyn Iterator<Item = NodeId>| {
        set.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
    };
    let mut s = format!("conf(voters={}", ids(&mut config.membership.voters()));
    if !config.membership.learners().is_empty() {
        write!(s, " learners={}", ids(&mut config.membership.learners().iter().copied())).unwrap();
    }
    if !config.removed.is_empty() {
        write!(s, " removed={}", ids(&mut config.removed.iter().copied())).unwrap();
    }
    s.push(')');
    s
}

pub(crate) fn fmt_entries(es: &[Entry]) -> String {
    es.iter().map(fmt_entry).collect::<Vec<_>>().join(" ")
}

pub(crate) fn fmt_msg(m: &Message) -> String {
    let mut s = format!("{}->{} {} term={}", m.from, m.to, m.body.kind(), m.term);
    match &m.body {
        MessageBody::Vote { last_log_index, last_log_term, leadership_transfer, .. } => {
            write!(s, " last=({last_log_index},{last_log_term})").unwrap();
            if *leadership_transfer {
                s.push_str(" transfer");
            }
        }
        MessageBody::VoteResponse { granted, .. } => {
            s.push_str(if *granted { " granted" } else { " rejected" });
        }
        MessageBody::Append { prev_log_index, prev_log_term, entries, leader_commit } => {
            let es = entries.iter().map(|e| format!("{}@{}", e.index, e.term)).collect::<Vec<_>>();
            write!(
                s,
                " prev=({prev_log_index},{prev_log_term}) entries=[{}] commit={leader_commit}",
                es.join(",")
            )
            .unwrap();
        }
        MessageBody::AppendResponse(AppendResult::Accepted { match_index }) => {
            write!(s, " accepted match={match_index}").unwrap();
        }
        MessageBody::AppendResponse(AppendResult::Rejected {
            rejected_prev,
            hint_index,
            hint_term,
        }) => {
            write!(s, " rejected prev={rejected_prev} hint=({hint_index},{hint_term})").unwrap();
        }
        MessageBody::Heartbeat { commit, read_round: 0 } => write!(s, " commit={commit}").unwrap(),
        MessageBody::Heartbeat { commit, read_round } => {
            write!(s, " commit={commit} read_round={read_round}").unwrap()
        }
        MessageBody::HeartbeatResponse { read_round: 0 } => {}
        MessageBody::HeartbeatResponse { read_round } => {
            write!(s, " read_round={read_round}").unwrap()
        }
        MessageBody::SnapshotChunk { meta, config, offset, data, done } => {
            write!(
                s,
                " snap=({},{}) offset={offset} data={:?} done={done}",
                meta.index,
                meta.term,
                String::from_utf8_lossy(data)
            )
            .unwrap();
            if config.index.0 > 0 {
                write!(s, " config@{}={}", config.index, fmt_config(&config.config)).unwrap();
            }
        }
        MessageBody::SnapshotResponse(SnapshotResult::Installed { match_index }) => {
            write!(s, " installed match={match_index}").unwrap();
        }
        MessageBody::SnapshotResponse(SnapshotResult::NeedOffset { snapshot_index, offset }) => {
            write!(s, " need snap={snapshot_index} offset={offset}").unwrap();
        }
        // Batch numbers on the wire are mixed with a random nonce: print only what varies.
        MessageBody::ReadIndexRequest { .. } => {}
        MessageBody::ReadIndexResponse { index: Some(index), .. } => {
            write!(s, " index={index}").unwrap();
        }
        MessageBody::ReadIndexResponse { index: None, .. } => s.push_str(" refused"),
        MessageBody::TimeoutNow { last_index } => write!(s, " last={last_index}").unwrap(),
        MessageBody::TimeoutNowRejected { reason } => write!(s, " {reason:?}").unwrap(),
        MessageBody::Removed { config_index } => write!(s, " config={config_index}").unwrap(),
    }
    s
}

pub(crate) fn fmt_role(raw: &RawNode) -> String {
    format!("{:?} term={}", raw.role(), raw.term())
}

pub(crate) fn fmt_vote(v: Option<NodeId>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}
