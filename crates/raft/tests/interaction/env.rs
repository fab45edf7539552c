//! The interaction env: the nodes (each a `RawNode` with its own `MemStorage`, inbox and
//! writes in flight), the network between them, and the record of applied entries that the
//! safety check compares against. The commands in `commands/` act on it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kvraft_raft::{Config, Entry, LogIndex, MemStorage, Message, RawNode, Ready, Storage};

use crate::format::fmt_msg;

/// The timing and chunking every node of the env gets (`add-nodes` prints them).
pub(crate) const ELECTION_TIMEOUT: u32 = 10;
pub(crate) const HEARTBEAT_INTERVAL: u32 = 2;
pub(crate) const SNAPSHOT_CHUNK: usize = 4;

pub(crate) struct Node {
    pub(crate) config: Config,
    pub(crate) raw: RawNode,
    pub(crate) storage: MemStorage,
    pub(crate) inbox: VecDeque<Message>,
    /// Readies handed out by `ready` whose persistence `persist` has not finished yet.
    pub(crate) unpersisted: VecDeque<Ready>,
}

#[derive(Default)]
pub(crate) struct Env {
    pub(crate) nodes: Vec<Node>,
    pub(crate) isolated: BTreeSet<u64>,
    /// The first entry any node applied at each index, and which node: every other node must
    /// apply the same one there (state machine safety).
    pub(crate) applied: BTreeMap<LogIndex, (u64, Entry)>,
}

/// Output of one command, line by line.
#[derive(Default)]
pub(crate) struct Out(pub(crate) Vec<String>);

impl Out {
    pub(crate) fn line(&mut self, s: impl Into<String>) {
        self.0.push(s.into());
    }
}

pub(crate) fn parse_bool(v: &str) -> Result<bool, String> {
    v.parse::<bool>().map_err(|_| format!("expected true or false, got {v:?}"))
}

pub(crate) fn parse_u64(v: &str) -> Result<u64, String> {
    v.parse::<u64>().map_err(|_| format!("expected a number, got {v:?}"))
}

impl Env {
    /// Adds a node with empty storage running `config`.
    pub(crate) fn push_fresh_node(&mut self, config: Config) -> Result<(), String> {
        let storage = MemStorage::new();
        let raw = RawNode::new(config.clone(), storage.recover().expect("in-memory"))
            .map_err(|e| e.to_string())?;
        self.nodes.push(Node {
            config,
            raw,
            storage,
            inbox: VecDeque::new(),
            unpersisted: VecDeque::new(),
        });
        Ok(())
    }

    pub(crate) fn node(&mut self, id: u64) -> Result<&mut Node, String> {
        let n = self.nodes.len();
        id.checked_sub(1)
            .and_then(|i| self.nodes.get_mut(i as usize))
            .ok_or_else(|| format!("no node {id} (have 1..={n})"))
    }

    pub(crate) fn ids(&self) -> Vec<u64> {
        (1..=self.nodes.len() as u64).collect()
    }

    pub(crate) fn parse_ids(&self, args: &[&str]) -> Result<Vec<u64>, String> {
        let ids = args.iter().map(|a| parse_u64(a)).collect::<Result<Vec<_>, _>>()?;
        for id in &ids {
            if *id == 0 || *id > self.nodes.len() as u64 {
                return Err(format!("no node {id}"));
            }
        }
        Ok(ids)
    }

    /// Puts a message on the wire: into its recipient's inbox unless the network drops it.
    pub(crate) fn send(&mut self, m: Message, prefix: &str, out: &mut Out) {
        let dropped = self.isolated.contains(&m.from.0) || self.isolated.contains(&m.to.0);
        if dropped {
            out.line(format!("  {prefix}{} (dropped)", fmt_msg(&m)));
        } else if self.node(m.to.0).is_err() {
            // A member the configuration names but that was never started.
            out.line(format!("  {prefix}{} (no such node)", fmt_msg(&m)));
        } else {
            out.line(format!("  {prefix}{}", fmt_msg(&m)));
            self.node(m.to.0).expect("message to a known node").inbox.push_back(m);
        }
    }

    /// Panics if any node's invariants are broken (checked after every command).
    pub(crate) fn check_invariants(&self) {
        for n in &self.nodes {
            n.raw.check_invariants();
        }
    }
}
