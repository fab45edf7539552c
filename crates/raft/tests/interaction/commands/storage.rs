//! `storage <id>`: what the node's storage holds: hard state, snapshot and entries.

use crate::env::{parse_u64, Env, Out};
use crate::format::{fmt_entries, fmt_vote};

impl Env {
    pub(crate) fn handle_storage(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let [id] = args else { return Err("usage: storage <id>".into()) };
        let st = self.node(parse_u64(id)?)?.storage.state().clone();
        let hs = st.hard_state;
        out.line(format!(
            "hard-state term={} vote={} commit={}",
            hs.term,
            fmt_vote(hs.vote),
            hs.commit
        ));
        out.line(format!(
            "snapshot ({},{}) data={:?}",
            st.snapshot.meta.index,
            st.snapshot.meta.term,
            String::from_utf8_lossy(&st.snapshot.data)
        ));
        out.line(format!(
            "entries: {}",
            if st.entries.is_empty() { "none".into() } else { fmt_entries(&st.entries) }
        ));
        Ok(())
    }
}
