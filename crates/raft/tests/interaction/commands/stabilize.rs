//! `stabilize [<id>...]`: processes Readies and delivers messages among the listed nodes (all
//! by default) until nothing moves.

use crate::env::{Env, Out};

impl Env {
    pub(crate) fn handle_stabilize(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let ids = if args.is_empty() { self.ids() } else { self.parse_ids(args)? };
        self.stabilize(&ids, out)
    }

    /// Gives up after 1000 rounds: a script that never settles is a bug in it or in the core.
    pub(crate) fn stabilize(&mut self, ids: &[u64], out: &mut Out) -> Result<(), String> {
        for round in 0.. {
            if round > 1000 {
                return Err("stabilize did not converge in 1000 rounds".into());
            }
            let mut moved = false;
            for &id in ids {
                if self.node(id)?.raw.has_ready() {
                    self.process_ready(id, out)?;
                    moved = true;
                }
            }
            for &id in ids {
                if !self.node(id)?.inbox.is_empty() {
                    self.deliver(id, out)?;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        Ok(())
    }
}
