//! `ready <id>`: the first half of handling a Ready, for a driver whose storage writes
//! complete asynchronously: takes the Ready, prints it and sends its `messages`, leaving its
//! write in flight until `persist`.

use kvraft_raft::Ready;

use crate::env::{parse_u64, Env, Out};
use crate::format::{fmt_entries, fmt_vote};

impl Env {
    pub(crate) fn handle_ready(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let [id] = args else { return Err("usage: ready <id>".into()) };
        let id = parse_u64(id)?;
        if let Some(rd) = self.take_ready(id, out)? {
            self.node(id)?.unpersisted.push_back(rd);
        }
        Ok(())
    }

    /// Takes a node's Ready, prints it and sends its `messages` (step 1 of the contract).
    pub(crate) fn take_ready(&mut self, id: u64, out: &mut Out) -> Result<Option<Ready>, String> {
        let node = self.node(id)?;
        if !node.raw.has_ready() {
            out.line(format!("> {id} has no Ready"));
            return Ok(None);
        }
        let rd: Ready = node.raw.ready();
        out.line(format!("> {id} handling Ready #{}", rd.number));
        if let Some(hs) = rd.hard_state {
            out.line(format!(
                "  hard-state term={} vote={} commit={}",
                hs.term,
                fmt_vote(hs.vote),
                hs.commit
            ));
        }
        if let Some(s) = &rd.snapshot {
            out.line(format!(
                "  persist snapshot ({},{}) data={:?}",
                s.meta.index,
                s.meta.term,
                String::from_utf8_lossy(&s.data)
            ));
        }
        if !rd.entries.is_empty() {
            out.line(format!("  persist entries: {}", fmt_entries(&rd.entries)));
        }
        if !rd.read_states.is_empty() {
            let reads: Vec<String> =
                rd.read_states.iter().map(|r| format!("{}@{}", r.ctx, r.index)).collect();
            out.line(format!("  reads confirmed (ctx@index): {}", reads.join(" ")));
        }
        if !rd.failed_reads.is_empty() {
            let failed: Vec<String> = rd.failed_reads.iter().map(u64::to_string).collect();
            out.line(format!("  reads failed (ctx): {}", failed.join(" ")));
        }
        for m in rd.messages.iter().cloned() {
            self.send(m, "send ", out);
        }
        Ok(Some(rd))
    }
}
