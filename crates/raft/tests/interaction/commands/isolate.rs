//! `isolate <id>`: drops every message to or from the node from now on (until `recover`).

use crate::env::{parse_u64, Env, Out};

impl Env {
    pub(crate) fn handle_isolate(&mut self, args: &[&str], _out: &mut Out) -> Result<(), String> {
        let [id] = args else { return Err("usage: isolate <id>".into()) };
        let id = parse_u64(id)?;
        self.node(id)?;
        self.isolated.insert(id);
        Ok(())
    }
}
