//! `persist <id>`: the second half of handling a Ready: finishes the node's oldest write in
//! flight (persist, `on_persisted`, send `persisted_messages`, apply).

use kvraft_raft::{Ready, Storage};

use crate::env::{parse_u64, Env, Out};
use crate::format::{fmt_entries, fmt_entry};

impl Env {
    pub(crate) fn handle_persist(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let [id] = args else { return Err("usage: persist <id>".into()) };
        let id = parse_u64(id)?;
        let Some(rd) = self.node(id)?.unpersisted.pop_front() else {
            return Err(format!("node {id} has no unpersisted Ready"));
        };
        out.line(format!("> {id} finished persisting Ready #{}", rd.number));
        self.finish_ready(id, rd, out)
    }

    /// Steps 2 to 4 of the contract: persist, acknowledge, send what waited, apply.
    pub(crate) fn finish_ready(&mut self, id: u64, rd: Ready, out: &mut Out) -> Result<(), String> {
        let node = self.node(id)?;
        node.storage.persist(rd.persist_batch()).expect("in-memory storage cannot fail");
        node.raw.on_persisted(rd.number);
        for m in rd.persisted_messages.iter().cloned() {
            self.send(m, "send after persist ", out);
        }
        if let Some(s) = &rd.apply_snapshot {
            out.line(format!(
                "  apply snapshot ({},{}) data={:?}",
                s.meta.index,
                s.meta.term,
                String::from_utf8_lossy(&s.data)
            ));
        }
        if !rd.committed_entries.is_empty() {
            out.line(format!("  apply entries: {}", fmt_entries(&rd.committed_entries)));
        }
        for e in rd.committed_entries {
            let (first, seen) = self.applied.entry(e.index).or_insert_with(|| (id, e.clone()));
            if *seen != e {
                out.line(format!(
                    "  SAFETY VIOLATION: {id} applies {} at index {} where {first} applied {}",
                    fmt_entry(&e),
                    e.index,
                    fmt_entry(seen)
                ));
            }
        }
        Ok(())
    }
}
