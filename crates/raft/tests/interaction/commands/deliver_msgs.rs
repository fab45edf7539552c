//! `deliver-msgs <id>... [drop=<id>[,<id>...]]`: steps the queued inbox messages into the
//! listed nodes; the inboxes of the `drop` nodes are discarded instead.

use crate::env::{Env, Out};
use crate::format::{fmt_msg, fmt_role};

impl Env {
    pub(crate) fn handle_deliver_msgs(
        &mut self,
        args: &[&str],
        out: &mut Out,
    ) -> Result<(), String> {
        let mut deliver = Vec::new();
        let mut drop = Vec::new();
        for a in args {
            if let Some(list) = a.strip_prefix("drop=") {
                drop.extend(self.parse_ids(&list.split(',').collect::<Vec<_>>())?);
            } else {
                deliver.extend(self.parse_ids(&[a])?);
            }
        }
        for id in drop {
            let inbox = std::mem::take(&mut self.node(id)?.inbox);
            for m in inbox {
                out.line(format!("dropped {}", fmt_msg(&m)));
            }
        }
        for id in deliver {
            self.deliver(id, out)?;
        }
        Ok(())
    }

    /// Steps every message in node `id`'s inbox into it, printing role changes and errors.
    pub(crate) fn deliver(&mut self, id: u64, out: &mut Out) -> Result<(), String> {
        let node = self.node(id)?;
        let inbox = std::mem::take(&mut node.inbox);
        if inbox.is_empty() {
            out.line(format!("> {id} has no messages"));
            return Ok(());
        }
        out.line(format!("> {id} receiving messages"));
        for m in inbox {
            out.line(format!("  {}", fmt_msg(&m)));
            let before = fmt_role(&node.raw);
            if let Err(e) = node.raw.step(m) {
                out.line(format!("    step error: {e}"));
            }
            let after = fmt_role(&node.raw);
            if before != after {
                out.line(format!("    {id}: {before} -> {after}"));
            }
        }
        Ok(())
    }
}
