//! `status <id>`: a node's role, term, vote, leader and indexes; on a leader, its lease and
//! each peer's progress.

use kvraft_raft::progress::ReplicationMode;

use crate::env::{parse_u64, Env, Out};
use crate::format::{fmt_role, fmt_vote};

impl Env {
    pub(crate) fn handle_status(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let [id] = args else { return Err("usage: status <id>".into()) };
        self.status(parse_u64(id)?, out)
    }

    pub(crate) fn status(&mut self, id: u64, out: &mut Out) -> Result<(), String> {
        let raw = &self.node(id)?.raw;
        out.line(format!(
            "{id} {} vote={} leader={} commit={} applied={} last={}",
            fmt_role(raw),
            fmt_vote(raw.vote()),
            fmt_vote(raw.leader()),
            raw.commit_index(),
            raw.applied_index(),
            raw.last_index()
        ));
        if raw.is_leader() && raw.config().lease_reads {
            out.line(format!("  in read lease: {}", raw.in_read_lease()));
        }
        if raw.is_leader() {
            // Every member of its configuration, started or not (the leader has no progress).
            for peer in raw.cluster_config().config.members() {
                let Some(pr) = raw.progress(peer) else { continue };
                let mode = match &pr.mode {
                    ReplicationMode::Probe { awaiting_response } => {
                        format!(
                            "Probe{}",
                            if *awaiting_response { " (awaiting response)" } else { "" }
                        )
                    }
                    ReplicationMode::Replicate { inflight } => {
                        format!("Replicate inflight={}", inflight.len())
                    }
                    ReplicationMode::Snapshot(t) => format!(
                        "Snapshot ({},{}) offset={}/{}",
                        t.snapshot.meta.index,
                        t.snapshot.meta.term,
                        t.offset,
                        t.snapshot.data.len()
                    ),
                };
                out.line(format!(
                    "  peer {peer}: match={} next={} {mode}",
                    pr.match_index, pr.next_index
                ));
            }
        }
        Ok(())
    }
}
