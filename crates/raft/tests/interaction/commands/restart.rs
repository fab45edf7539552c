//! `restart <id>`: rebuilds the node from its storage, as after a crash: its inbox and its
//! unfinished writes are lost.

use kvraft_raft::{LogIndex, RawNode, Storage};

use crate::env::{parse_u64, Env, Out};
use crate::format::{fmt_msg, fmt_role, fmt_vote};

impl Env {
    pub(crate) fn handle_restart(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let [id] = args else { return Err("usage: restart <id>".into()) };
        let node = self.node(parse_u64(id)?)?;
        let recovered = node.storage.recover().expect("in-memory storage cannot fail");
        let hs = recovered.hard_state;
        out.line(format!(
            "recovered hard-state term={} vote={} commit={}, snapshot ({},{}), {} entries",
            hs.term,
            fmt_vote(hs.vote),
            hs.commit,
            recovered.snapshot.meta.index,
            recovered.snapshot.meta.term,
            recovered.entries.len()
        ));
        if recovered.snapshot.meta.index > LogIndex::ZERO {
            out.line(format!(
                "application restarts from snapshot ({},{}) data={:?}",
                recovered.snapshot.meta.index,
                recovered.snapshot.meta.term,
                String::from_utf8_lossy(&recovered.snapshot.data)
            ));
        }
        node.raw = RawNode::new(node.config.clone(), recovered).map_err(|e| e.to_string())?;
        for rd in std::mem::take(&mut node.unpersisted) {
            out.line(format!("lost unpersisted Ready #{}", rd.number));
        }
        let lost = std::mem::take(&mut node.inbox);
        for m in lost {
            out.line(format!("lost {}", fmt_msg(&m)));
        }
        let raw = &node.raw;
        out.line(format!(
            "{} {} vote={} commit={} applied={} last={}",
            raw.id(),
            fmt_role(raw),
            fmt_vote(raw.vote()),
            raw.commit_index(),
            raw.applied_index(),
            raw.last_index()
        ));
        Ok(())
    }
}
