//! `recover [<id>...]`: stops isolating the listed nodes (all nodes if none is listed).

use crate::env::{Env, Out};

impl Env {
    pub(crate) fn handle_recover(&mut self, args: &[&str], _out: &mut Out) -> Result<(), String> {
        if args.is_empty() {
            self.isolated.clear();
        }
        for id in self.parse_ids(args)? {
            self.isolated.remove(&id);
        }
        Ok(())
    }
}
