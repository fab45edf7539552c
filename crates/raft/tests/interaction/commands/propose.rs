//! `propose <id> <data>`: proposes an entry on a node.

use bytes::Bytes;

use crate::env::{parse_u64, Env, Out};

impl Env {
    /// Prints the index and term the entry got, or the refusal.
    pub(crate) fn handle_propose(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let [id, data] = args else { return Err("usage: propose <id> <data>".into()) };
        let node = self.node(parse_u64(id)?)?;
        match node.raw.propose(Bytes::copy_from_slice(data.as_bytes())) {
            Ok((index, term)) => out.line(format!("proposed at index {index} term {term}")),
            Err(e) => out.line(format!("error: {e}")),
        }
        Ok(())
    }
}
