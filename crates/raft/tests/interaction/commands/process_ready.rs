//! `process-ready <id>...`: takes each node's Ready, prints it and carries it out (`ready` and
//! `persist` in one step).

use crate::env::{Env, Out};

impl Env {
    pub(crate) fn handle_process_ready(
        &mut self,
        args: &[&str],
        out: &mut Out,
    ) -> Result<(), String> {
        for id in self.parse_ids(args)? {
            self.process_ready(id, out)?;
        }
        Ok(())
    }

    pub(crate) fn process_ready(&mut self, id: u64, out: &mut Out) -> Result<(), String> {
        if !self.node(id)?.unpersisted.is_empty() {
            return Err(format!("node {id} has unpersisted Readies: `persist` them first"));
        }
        match self.take_ready(id, out)? {
            Some(rd) => self.finish_ready(id, rd, out),
            None => Ok(()),
        }
    }
}
