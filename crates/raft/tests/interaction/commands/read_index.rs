//! `read-index <id> <ctx>`: asks for a linearizable read (on a follower: forwarded to its
//! leader); confirmed and failed reads show in a later Ready.

use crate::env::{parse_u64, Env, Out};

impl Env {
    /// Prints whether the core accepted the request.
    pub(crate) fn handle_read_index(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let [id, ctx] = args else { return Err("usage: read-index <id> <ctx>".into()) };
        let node = self.node(parse_u64(id)?)?;
        match node.raw.read_index(parse_u64(ctx)?) {
            Ok(()) => out.line(format!("read {ctx} requested")),
            Err(e) => out.line(format!("error: {e}")),
        }
        Ok(())
    }
}
