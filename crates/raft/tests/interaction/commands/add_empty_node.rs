//! `add-empty-node`: a brand-new node joins the env with empty storage and no bootstrap
//! voters (`Config::voters` empty): it knows no configuration, never campaigns, and learns
//! its configuration from a leader once a change adds it. It gets the next id and the
//! options of node 1.

use kvraft_raft::NodeId;

use crate::env::{Env, Out};

impl Env {
    pub(crate) fn handle_add_empty_node(
        &mut self,
        args: &[&str],
        out: &mut Out,
    ) -> Result<(), String> {
        if !args.is_empty() {
            return Err("usage: add-empty-node".into());
        }
        let Some(first) = self.nodes.first() else {
            return Err("add-nodes first: the new node takes node 1's options".into());
        };
        let id = self.nodes.len() as u64 + 1;
        let mut config = first.config.clone();
        config.id = NodeId(id);
        config.voters = Vec::new();
        config.seed = id;
        self.push_fresh_node(config)?;
        out.line(format!("node {id}: empty storage, no configuration (learns it from a leader)"));
        Ok(())
    }
}
