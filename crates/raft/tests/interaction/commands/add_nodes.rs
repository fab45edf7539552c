//! `add-nodes <n> [pre-vote=true|false] [check-quorum=true|false] [noop=true|false]
//! [lease-margin=<ticks>]`: creates nodes `1..=n`, all voters, each with empty storage.

use kvraft_raft::{Config, NodeId};

use crate::env::{
    parse_bool, parse_u64, Env, Out, ELECTION_TIMEOUT, HEARTBEAT_INTERVAL, SNAPSHOT_CHUNK,
};

impl Env {
    /// The options set the Raft config of every node (`noop`: a new leader appends an empty
    /// entry; `lease-margin`: leader-lease reads with that clock-drift margin).
    pub(crate) fn handle_add_nodes(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let Some((n, opts)) = args.split_first() else {
            return Err(
                "usage: add-nodes <n> [pre-vote=..] [check-quorum=..] [noop=..] [lease-margin=..]"
                    .into(),
            );
        };
        if !self.nodes.is_empty() {
            return Err("nodes already added".into());
        }
        let n = parse_u64(n)?;
        let (mut pre_vote, mut check_quorum, mut noop) = (false, false, false);
        let mut lease_margin = None;
        for opt in opts {
            match opt.split_once('=') {
                Some(("lease-margin", v)) => lease_margin = Some(parse_u64(v)? as u32),
                Some(("pre-vote", v)) => pre_vote = parse_bool(v)?,
                Some(("check-quorum", v)) => check_quorum = parse_bool(v)?,
                Some(("noop", v)) => noop = parse_bool(v)?,
                _ => return Err(format!("unknown option {opt:?}")),
            }
        }
        let voters: Vec<NodeId> = (1..=n).map(NodeId).collect();
        for id in 1..=n {
            let mut config = Config::new(NodeId(id), voters.clone());
            config.election_timeout_ticks = ELECTION_TIMEOUT;
            config.heartbeat_interval_ticks = HEARTBEAT_INTERVAL;
            config.pre_vote = pre_vote;
            config.check_quorum = check_quorum;
            config.snapshot_chunk_bytes = SNAPSHOT_CHUNK;
            config.append_noop_on_election = noop;
            config.lease_reads = lease_margin.is_some();
            config.lease_drift_margin_ticks = lease_margin.unwrap_or(0);
            self.push_fresh_node(config)?;
        }
        out.line(format!(
            "{n} nodes: election-timeout={ELECTION_TIMEOUT} heartbeat={HEARTBEAT_INTERVAL} \
             pre-vote={pre_vote} check-quorum={check_quorum} snapshot-chunk={SNAPSHOT_CHUNK}{}{}",
            if noop { " noop-on-election" } else { "" },
            match lease_margin {
                Some(m) => format!(
                    " lease-reads (margin={m}: lease={} ticks from a round's send)",
                    self.nodes[0].config.lease_duration_ticks().expect("lease reads on")
                ),
                None => String::new(),
            }
        ));
        Ok(())
    }
}
