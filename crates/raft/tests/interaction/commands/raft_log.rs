//! `raft-log <id>`: the node's in-memory log: its snapshot (if any) and its entries.

use kvraft_raft::{Entry, LogIndex};

use crate::env::{parse_u64, Env, Out};
use crate::format::fmt_entry;

impl Env {
    pub(crate) fn handle_raft_log(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let [id] = args else { return Err("usage: raft-log <id>".into()) };
        let raw = &self.node(parse_u64(id)?)?.raw;
        let log = raw.log();
        let meta = log.snapshot_meta();
        if meta.index > LogIndex::ZERO {
            out.line(format!(
                "snapshot ({},{}) data={:?}",
                meta.index,
                meta.term,
                String::from_utf8_lossy(&log.snapshot().data)
            ));
        }
        let entries: Vec<&Entry> = log.entries().collect();
        if entries.is_empty() {
            out.line("no entries");
        }
        for e in entries {
            out.line(fmt_entry(e));
        }
        Ok(())
    }
}
