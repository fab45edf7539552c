//! `raft-config <id>`: the cluster configuration in effect on the node (the latest in its
//! log), the latest it knows committed, and whether it knows it was removed.

use kvraft_raft::ConfigState;

use crate::env::{parse_u64, Env, Out};
use crate::format::fmt_config;

fn fmt_state(state: &ConfigState) -> String {
    if state.is_unknown() {
        return "none (learns it from a leader)".to_string();
    }
    format!(
        "{} at index {} next-id={}",
        fmt_config(&state.config),
        state.index,
        state.config.next_id
    )
}

impl Env {
    pub(crate) fn handle_raft_config(
        &mut self,
        args: &[&str],
        out: &mut Out,
    ) -> Result<(), String> {
        let [id] = args else { return Err("usage: raft-config <id>".into()) };
        let raw = &self.node(parse_u64(id)?)?.raw;
        out.line(format!("config: {}", fmt_state(raw.cluster_config())));
        out.line(format!("committed: {}", fmt_state(raw.committed_cluster_config())));
        let transfer =
            raw.transfer_target().map_or(String::new(), |t| format!(" transferring-to={t}"));
        out.line(format!("removed={}{transfer}", raw.is_removed()));
        Ok(())
    }
}
