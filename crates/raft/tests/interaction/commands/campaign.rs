//! `campaign <id>`: ticks the node until it starts an election.

use crate::env::{parse_u64, Env, Out};
use crate::format::fmt_role;

impl Env {
    /// At most two election timeouts; a leader does not campaign.
    pub(crate) fn handle_campaign(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let [id] = args else { return Err("usage: campaign <id>".into()) };
        let node = self.node(parse_u64(id)?)?;
        if node.raw.is_leader() {
            out.line(format!("{} is the leader: it does not campaign", node.raw.id()));
            return Ok(());
        }
        let limit = 2 * node.config.election_timeout_ticks;
        let before = fmt_role(&node.raw);
        for i in 1..=limit {
            node.raw.tick();
            let after = fmt_role(&node.raw);
            if after != before {
                let ticks = if i == 1 { "tick" } else { "ticks" };
                out.line(format!(
                    "{} campaigns after {i} {ticks}: {before} -> {after}",
                    node.raw.id()
                ));
                return Ok(());
            }
        }
        out.line(format!("{} did not campaign within {limit} ticks", node.raw.id()));
        Ok(())
    }
}
