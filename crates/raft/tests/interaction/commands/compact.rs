//! `compact <id> <index> <data>`: the application snapshots its state at `index`, and the
//! node compacts its log.

use bytes::Bytes;
use kvraft_raft::LogIndex;

use crate::env::{parse_u64, Env, Out};

impl Env {
    pub(crate) fn handle_compact(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let [id, index, data] = args else {
            return Err("usage: compact <id> <index> <data>".into());
        };
        let node = self.node(parse_u64(id)?)?;
        let index = LogIndex(parse_u64(index)?);
        match node.raw.snapshot(index, Bytes::copy_from_slice(data.as_bytes())) {
            Ok(()) => {
                let log = node.raw.log();
                out.line(format!(
                    "log now starts at index {} (snapshot at {})",
                    log.first_index(),
                    log.snapshot_meta().index
                ));
            }
            Err(e) => out.line(format!("error: {e}")),
        }
        Ok(())
    }
}
