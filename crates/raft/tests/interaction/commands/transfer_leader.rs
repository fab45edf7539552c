//! `transfer-leader <id> [to=<id>]`: asks the node to hand its leadership to `to` (without
//! one: to the most caught-up voter).

use kvraft_raft::NodeId;

use crate::env::{parse_u64, Env, Out};

impl Env {
    /// Prints the target, or the refusal (`TransferError`, by name).
    pub(crate) fn handle_transfer_leader(
        &mut self,
        args: &[&str],
        out: &mut Out,
    ) -> Result<(), String> {
        let (id, target) = match args {
            [id] => (parse_u64(id)?, None),
            [id, to] => match to.strip_prefix("to=") {
                Some(target) => (parse_u64(id)?, Some(NodeId(parse_u64(target)?))),
                None => return Err("usage: transfer-leader <id> [to=<id>]".into()),
            },
            _ => return Err("usage: transfer-leader <id> [to=<id>]".into()),
        };
        let raw = &mut self.node(id)?.raw;
        match raw.transfer_leadership(target) {
            Ok(target) => out.line(format!("transferring leadership to {target}")),
            Err(e) => out.line(format!("refused: {e:?}")),
        }
        Ok(())
    }
}
