//! Data-driven interaction tests for the Raft core.
//!
//! Each file in `testdata/` is a script of blocks:
//!
//! ```text
//! # comments (lines starting with '#') and blank lines may separate blocks
//! <command> <args...>
//! ----
//! <expected output, one or more non-blank lines>
//! <a blank line ends the block>
//! ```
//!
//! The harness runs every command against an "interaction env" of `RawNode`s, each with its own
//! `MemStorage` and inbox, and compares the output with the expected lines. With `REWRITE=1`
//! in the environment the files are rewritten with the actual output instead (except files
//! with a line `# no-rewrite`, whose expectations are written by hand). A mismatch fails the
//! test with a diff per block, naming the file and the line of the command.
//!
//! Commands:
//! - `add-nodes <n> [pre-vote=true|false] [check-quorum=true|false] [noop=true|false]
//!   [lease-margin=<ticks>]`: nodes `1..=n` (`noop`: a new leader appends an empty entry;
//!   `lease-margin`: leader-lease reads with that clock-drift margin).
//! - `read-index <id> <ctx>`: ask for a linearizable read (on a follower: forwarded to its
//!   leader); confirmed and failed reads show in a Ready.
//! - `campaign <id>`: tick the node until it starts an election (at most 2 election timeouts).
//! - `tick <id> [n]`, `tick-heartbeat <id>`: advance a node's clock.
//! - `propose <id> <data>`: propose an entry.
//! - `process-ready <id>...`: take each node's `Ready`, print it and carry it out.
//! - `ready <id>` / `persist <id>`: the same in two halves, for a driver whose storage writes
//!   complete asynchronously: `ready` takes a Ready and sends its `messages`; `persist`
//!   finishes the oldest outstanding one (persist, `on_persisted`, send, apply).
//! - `deliver-msgs <id>... [drop=<id>[,<id>...]]`: step the queued inbox messages into the
//!   listed nodes; the inboxes of the `drop` nodes are discarded instead.
//! - `stabilize [<id>...]`: process readies and deliver messages until nothing moves.
//! - `status <id>`, `raft-log <id>`, `storage <id>`: inspect a node, its log, its storage.
//! - `isolate <id>`: drop every message to or from the node from now on (until `recover`).
//! - `recover [<id>...]`: stop isolating the listed nodes (all nodes if none is listed).
//! - `compact <id> <index> <data>`: the application snapshots its state at `index`.
//! - `restart <id>`: rebuild the node from its storage (its inbox and unfinished writes are lost).
//!
//! After every command each node's invariants are checked, and every applied entry is compared
//! with what other nodes applied at its index (a mismatch prints a `SAFETY VIOLATION` line).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kvraft_raft::progress::ReplicationMode;
use kvraft_raft::{
    AppendResult, Config, Entry, LogIndex, MemStorage, Message, MessageBody, NodeId, RawNode,
    Ready, SnapshotResult, Storage,
};

const ELECTION_TIMEOUT: u32 = 10;
const HEARTBEAT_INTERVAL: u32 = 2;
const SNAPSHOT_CHUNK: usize = 4;

// ----- the interaction env -----

struct Node {
    config: Config,
    raw: RawNode,
    storage: MemStorage,
    inbox: VecDeque<Message>,
    /// Readies handed out by `ready` whose persistence `persist` has not finished yet.
    unpersisted: VecDeque<Ready>,
}

#[derive(Default)]
struct Env {
    nodes: Vec<Node>,
    isolated: BTreeSet<u64>,
    /// The first entry any node applied at each index, and which node: every other node must
    /// apply the same one there (state machine safety).
    applied: BTreeMap<LogIndex, (u64, Entry)>,
}

/// Output of one command, line by line.
#[derive(Default)]
struct Out(Vec<String>);

impl Out {
    fn line(&mut self, s: impl Into<String>) {
        self.0.push(s.into());
    }
}

fn fmt_data(data: &[u8]) -> String {
    if data.is_empty() {
        "<empty>".to_string()
    } else {
        String::from_utf8_lossy(data).into_owned()
    }
}

fn fmt_entry(e: &Entry) -> String {
    format!("{}@{}:{}", e.index, e.term, fmt_data(&e.data))
}

fn fmt_entries(es: &[Entry]) -> String {
    es.iter().map(fmt_entry).collect::<Vec<_>>().join(" ")
}

fn fmt_msg(m: &Message) -> String {
    let mut s = format!("{}->{} {} term={}", m.from, m.to, m.body.kind(), m.term);
    match &m.body {
        MessageBody::Vote { last_log_index, last_log_term, .. } => {
            write!(s, " last=({last_log_index},{last_log_term})").unwrap();
        }
        MessageBody::VoteResponse { granted, .. } => {
            s.push_str(if *granted { " granted" } else { " rejected" });
        }
        MessageBody::Append { prev_log_index, prev_log_term, entries, leader_commit } => {
            let es = entries.iter().map(|e| format!("{}@{}", e.index, e.term)).collect::<Vec<_>>();
            write!(
                s,
                " prev=({prev_log_index},{prev_log_term}) entries=[{}] commit={leader_commit}",
                es.join(",")
            )
            .unwrap();
        }
        MessageBody::AppendResponse(AppendResult::Accepted { match_index }) => {
            write!(s, " accepted match={match_index}").unwrap();
        }
        MessageBody::AppendResponse(AppendResult::Rejected {
            rejected_prev,
            hint_index,
            hint_term,
        }) => {
            write!(s, " rejected prev={rejected_prev} hint=({hint_index},{hint_term})").unwrap();
        }
        MessageBody::Heartbeat { commit, read_round: 0 } => write!(s, " commit={commit}").unwrap(),
        MessageBody::Heartbeat { commit, read_round } => {
            write!(s, " commit={commit} read_round={read_round}").unwrap()
        }
        MessageBody::HeartbeatResponse { read_round: 0 } => {}
        MessageBody::HeartbeatResponse { read_round } => {
            write!(s, " read_round={read_round}").unwrap()
        }
        MessageBody::SnapshotChunk { meta, offset, data, done } => {
            write!(
                s,
                " snap=({},{}) offset={offset} data={:?} done={done}",
                meta.index,
                meta.term,
                String::from_utf8_lossy(data)
            )
            .unwrap();
        }
        MessageBody::SnapshotResponse(SnapshotResult::Installed { match_index }) => {
            write!(s, " installed match={match_index}").unwrap();
        }
        MessageBody::SnapshotResponse(SnapshotResult::NeedOffset { snapshot_index, offset }) => {
            write!(s, " need snap={snapshot_index} offset={offset}").unwrap();
        }
        // Batch numbers on the wire are mixed with a random nonce: print only what varies.
        MessageBody::ReadIndexRequest { .. } => {}
        MessageBody::ReadIndexResponse { index: Some(index), .. } => {
            write!(s, " index={index}").unwrap();
        }
        MessageBody::ReadIndexResponse { index: None, .. } => s.push_str(" refused"),
    }
    s
}

fn fmt_role(raw: &RawNode) -> String {
    format!("{:?} term={}", raw.role(), raw.term())
}

fn parse_bool(v: &str) -> Result<bool, String> {
    v.parse::<bool>().map_err(|_| format!("expected true or false, got {v:?}"))
}

fn parse_u64(v: &str) -> Result<u64, String> {
    v.parse::<u64>().map_err(|_| format!("expected a number, got {v:?}"))
}

impl Env {
    fn node(&mut self, id: u64) -> Result<&mut Node, String> {
        let n = self.nodes.len();
        id.checked_sub(1)
            .and_then(|i| self.nodes.get_mut(i as usize))
            .ok_or_else(|| format!("no node {id} (have 1..={n})"))
    }

    fn ids(&self) -> Vec<u64> {
        (1..=self.nodes.len() as u64).collect()
    }

    fn parse_ids(&self, args: &[&str]) -> Result<Vec<u64>, String> {
        let ids = args.iter().map(|a| parse_u64(a)).collect::<Result<Vec<_>, _>>()?;
        for id in &ids {
            if *id == 0 || *id > self.nodes.len() as u64 {
                return Err(format!("no node {id}"));
            }
        }
        Ok(ids)
    }

    /// Puts a message on the wire: into its recipient's inbox unless the network drops it.
    fn send(&mut self, m: Message, prefix: &str, out: &mut Out) {
        let dropped = self.isolated.contains(&m.from.0) || self.isolated.contains(&m.to.0);
        if dropped {
            out.line(format!("  {prefix}{} (dropped)", fmt_msg(&m)));
        } else {
            out.line(format!("  {prefix}{}", fmt_msg(&m)));
            self.node(m.to.0).expect("message to a known node").inbox.push_back(m);
        }
    }

    fn run(&mut self, cmd: &str, args: &[&str], out: &mut Out) -> Result<(), String> {
        match cmd {
            "add-nodes" => self.add_nodes(args, out),
            "campaign" => self.campaign(args, out),
            "tick" => {
                let (id, n) = match args {
                    [id] => (parse_u64(id)?, 1),
                    [id, n] => (parse_u64(id)?, parse_u64(n)?),
                    _ => return Err("usage: tick <id> [n]".into()),
                };
                self.tick(id, n, out)
            }
            "tick-heartbeat" => {
                let [id] = args else { return Err("usage: tick-heartbeat <id>".into()) };
                let id = parse_u64(id)?;
                let n = self.node(id)?.config.heartbeat_interval_ticks as u64;
                self.tick(id, n, out)
            }
            "propose" => {
                let [id, data] = args else { return Err("usage: propose <id> <data>".into()) };
                let node = self.node(parse_u64(id)?)?;
                match node.raw.propose(Bytes::copy_from_slice(data.as_bytes())) {
                    Ok((index, term)) => out.line(format!("proposed at index {index} term {term}")),
                    Err(e) => out.line(format!("error: {e}")),
                }
                Ok(())
            }
            "read-index" => {
                let [id, ctx] = args else { return Err("usage: read-index <id> <ctx>".into()) };
                let node = self.node(parse_u64(id)?)?;
                match node.raw.read_index(parse_u64(ctx)?) {
                    Ok(()) => out.line(format!("read {ctx} requested")),
                    Err(e) => out.line(format!("error: {e}")),
                }
                Ok(())
            }
            "ready" => {
                let [id] = args else { return Err("usage: ready <id>".into()) };
                let id = parse_u64(id)?;
                if let Some(rd) = self.take_ready(id, out)? {
                    self.node(id)?.unpersisted.push_back(rd);
                }
                Ok(())
            }
            "persist" => {
                let [id] = args else { return Err("usage: persist <id>".into()) };
                let id = parse_u64(id)?;
                let Some(rd) = self.node(id)?.unpersisted.pop_front() else {
                    return Err(format!("node {id} has no unpersisted Ready"));
                };
                out.line(format!("> {id} finished persisting Ready #{}", rd.number));
                self.finish_ready(id, rd, out)
            }
            "process-ready" => {
                for id in self.parse_ids(args)? {
                    self.process_ready(id, out)?;
                }
                Ok(())
            }
            "deliver-msgs" => {
                let mut deliver = Vec::new();
                let mut drop = Vec::new();
                for a in args {
                    if let Some(list) = a.strip_prefix("drop=") {
                        drop.extend(self.parse_ids(&list.split(',').collect::<Vec<_>>())?);
                    } else {
                        deliver.extend(self.parse_ids(&[a])?);
                    }
                }
                for id in drop {
                    let inbox = std::mem::take(&mut self.node(id)?.inbox);
                    for m in inbox {
                        out.line(format!("dropped {}", fmt_msg(&m)));
                    }
                }
                for id in deliver {
                    self.deliver(id, out)?;
                }
                Ok(())
            }
            "stabilize" => {
                let ids = if args.is_empty() { self.ids() } else { self.parse_ids(args)? };
                self.stabilize(&ids, out)
            }
            "status" => {
                let [id] = args else { return Err("usage: status <id>".into()) };
                self.status(parse_u64(id)?, out)
            }
            "raft-log" => {
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
            "storage" => {
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
            "isolate" => {
                let [id] = args else { return Err("usage: isolate <id>".into()) };
                let id = parse_u64(id)?;
                self.node(id)?;
                self.isolated.insert(id);
                Ok(())
            }
            "recover" => {
                if args.is_empty() {
                    self.isolated.clear();
                }
                for id in self.parse_ids(args)? {
                    self.isolated.remove(&id);
                }
                Ok(())
            }
            "compact" => {
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
            "restart" => {
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
                node.raw =
                    RawNode::new(node.config.clone(), recovered).map_err(|e| e.to_string())?;
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
            _ => Err(format!("unknown command {cmd:?}")),
        }
    }

    fn add_nodes(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let Some((n, opts)) = args.split_first() else {
            return Err(
                "usage: add-nodes <n> [pre-vote=..] [check-quorum=..] [noop=..] [lease-margin=..]"
                    .into(),
            );
        };
        if !self.nodes.is_empty() {
            return Err("nodes already added".into());
        }
        let n = parse_u64(n)?;
        let (mut pre_vote, mut check_quorum, mut noop) = (false, false, false);
        let mut lease_margin = None;
        for opt in opts {
            match opt.split_once('=') {
                Some(("lease-margin", v)) => lease_margin = Some(parse_u64(v)? as u32),
                Some(("pre-vote", v)) => pre_vote = parse_bool(v)?,
                Some(("check-quorum", v)) => check_quorum = parse_bool(v)?,
                Some(("noop", v)) => noop = parse_bool(v)?,
                _ => return Err(format!("unknown option {opt:?}")),
            }
        }
        let voters: Vec<NodeId> = (1..=n).map(NodeId).collect();
        for id in 1..=n {
            let mut config = Config::new(NodeId(id), voters.clone());
            config.election_timeout_ticks = ELECTION_TIMEOUT;
            config.heartbeat_interval_ticks = HEARTBEAT_INTERVAL;
            config.pre_vote = pre_vote;
            config.check_quorum = check_quorum;
            config.snapshot_chunk_bytes = SNAPSHOT_CHUNK;
            config.append_noop_on_election = noop;
            config.lease_reads = lease_margin.is_some();
            config.lease_drift_margin_ticks = lease_margin.unwrap_or(0);
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
        }
        out.line(format!(
            "{n} nodes: election-timeout={ELECTION_TIMEOUT} heartbeat={HEARTBEAT_INTERVAL} \
             pre-vote={pre_vote} check-quorum={check_quorum} snapshot-chunk={SNAPSHOT_CHUNK}{}{}",
            if noop { " noop-on-election" } else { "" },
            match lease_margin {
                Some(m) => format!(
                    " lease-reads (margin={m}: lease={} ticks from a round's send)",
                    self.nodes[0].config.lease_duration_ticks().expect("lease reads on")
                ),
                None => String::new(),
            }
        ));
        Ok(())
    }

    fn campaign(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let [id] = args else { return Err("usage: campaign <id>".into()) };
        let node = self.node(parse_u64(id)?)?;
        if node.raw.is_leader() {
            out.line(format!("{} is the leader: it does not campaign", node.raw.id()));
            return Ok(());
        }
        let limit = 2 * node.config.election_timeout_ticks;
        let before = fmt_role(&node.raw);
        for i in 1..=limit {
            node.raw.tick();
            let after = fmt_role(&node.raw);
            if after != before {
                let ticks = if i == 1 { "tick" } else { "ticks" };
                out.line(format!(
                    "{} campaigns after {i} {ticks}: {before} -> {after}",
                    node.raw.id()
                ));
                return Ok(());
            }
        }
        out.line(format!("{} did not campaign within {limit} ticks", node.raw.id()));
        Ok(())
    }

    fn tick(&mut self, id: u64, n: u64, out: &mut Out) -> Result<(), String> {
        let node = self.node(id)?;
        for i in 1..=n {
            let before = fmt_role(&node.raw);
            node.raw.tick();
            let after = fmt_role(&node.raw);
            if before != after {
                out.line(format!("tick {i}: {id} {before} -> {after}"));
            }
        }
        Ok(())
    }

    fn process_ready(&mut self, id: u64, out: &mut Out) -> Result<(), String> {
        if !self.node(id)?.unpersisted.is_empty() {
            return Err(format!("node {id} has unpersisted Readies: `persist` them first"));
        }
        match self.take_ready(id, out)? {
            Some(rd) => self.finish_ready(id, rd, out),
            None => Ok(()),
        }
    }

    /// Takes a node's Ready, prints it and sends its `messages` (step 1 of the contract).
    fn take_ready(&mut self, id: u64, out: &mut Out) -> Result<Option<Ready>, String> {
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

    /// Steps 2 to 4 of the contract: persist, acknowledge, send what waited, apply.
    fn finish_ready(&mut self, id: u64, rd: Ready, out: &mut Out) -> Result<(), String> {
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

    fn deliver(&mut self, id: u64, out: &mut Out) -> Result<(), String> {
        let node = self.node(id)?;
        let inbox = std::mem::take(&mut node.inbox);
        if inbox.is_empty() {
            out.line(format!("> {id} has no messages"));
            return Ok(());
        }
        out.line(format!("> {id} receiving messages"));
        for m in inbox {
            out.line(format!("  {}", fmt_msg(&m)));
            let before = fmt_role(&node.raw);
            if let Err(e) = node.raw.step(m) {
                out.line(format!("    step error: {e}"));
            }
            let after = fmt_role(&node.raw);
            if before != after {
                out.line(format!("    {id}: {before} -> {after}"));
            }
        }
        Ok(())
    }

    fn stabilize(&mut self, ids: &[u64], out: &mut Out) -> Result<(), String> {
        for round in 0.. {
            if round > 1000 {
                return Err("stabilize did not converge in 1000 rounds".into());
            }
            let mut moved = false;
            for &id in ids {
                if self.node(id)?.raw.has_ready() {
                    self.process_ready(id, out)?;
                    moved = true;
                }
            }
            for &id in ids {
                if !self.node(id)?.inbox.is_empty() {
                    self.deliver(id, out)?;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        Ok(())
    }

    fn status(&mut self, id: u64, out: &mut Out) -> Result<(), String> {
        let raw = &self.node(id)?.raw;
        out.line(format!(
            "{id} {} vote={} leader={} commit={} applied={} last={}",
            fmt_role(raw),
            fmt_vote(raw.vote()),
            fmt_vote(raw.leader()),
            raw.commit_index(),
            raw.applied_index(),
            raw.last_index()
        ));
        if raw.is_leader() && raw.config().lease_reads {
            out.line(format!("  in read lease: {}", raw.in_read_lease()));
        }
        if raw.is_leader() {
            for peer in 1..=self.nodes.len() as u64 {
                let raw = &self.nodes[id as usize - 1].raw;
                let Some(pr) = raw.progress(NodeId(peer)) else { continue };
                let mode = match &pr.mode {
                    ReplicationMode::Probe { awaiting_response } => {
                        format!(
                            "Probe{}",
                            if *awaiting_response { " (awaiting response)" } else { "" }
                        )
                    }
                    ReplicationMode::Replicate { inflight } => {
                        format!("Replicate inflight={}", inflight.len())
                    }
                    ReplicationMode::Snapshot(t) => format!(
                        "Snapshot ({},{}) offset={}/{}",
                        t.snapshot.meta.index,
                        t.snapshot.meta.term,
                        t.offset,
                        t.snapshot.data.len()
                    ),
                };
                out.line(format!(
                    "  peer {peer}: match={} next={} {mode}",
                    pr.match_index, pr.next_index
                ));
            }
        }
        Ok(())
    }

    fn check_invariants(&self) {
        for n in &self.nodes {
            n.raw.check_invariants();
        }
    }
}

fn fmt_vote(v: Option<NodeId>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

// ----- the script format -----

enum Item {
    /// A comment or blank line between blocks, kept verbatim.
    Verbatim(String),
    Block {
        line: usize,
        command: String,
        expected: Vec<String>,
    },
}

fn parse_script(path: &Path, text: &str) -> Vec<Item> {
    let lines: Vec<&str> = text.lines().collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.trim().is_empty() || l.starts_with('#') {
            items.push(Item::Verbatim(l.to_string()));
            i += 1;
            continue;
        }
        let line = i + 1;
        assert!(
            lines.get(i + 1) == Some(&"----"),
            "{}:{line}: command {l:?} must be followed by a line \"----\"",
            path.display()
        );
        i += 2;
        let mut expected = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() {
            expected.push(lines[i].to_string());
            i += 1;
        }
        // The blank line that ends the block belongs to it.
        i += 1;
        items.push(Item::Block { line, command: l.to_string(), expected });
    }
    items
}

fn render_script(items: &[Item], actual: &[Vec<String>]) -> String {
    let mut s = String::new();
    let mut outputs = actual.iter();
    let last = items.len().saturating_sub(1);
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Verbatim(l) => {
                s.push_str(l);
                s.push('\n');
            }
            Item::Block { command, .. } => {
                s.push_str(command);
                s.push_str("\n----\n");
                for l in outputs.next().expect("an output per block") {
                    s.push_str(l);
                    s.push('\n');
                }
                if i != last {
                    s.push('\n');
                }
            }
        }
    }
    s
}

/// A line diff (longest common subsequence), `-` for expected only, `+` for actual only.
fn diff(expected: &[String], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut s) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            writeln!(s, "   {}", expected[i]).unwrap();
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            writeln!(s, " - {}", expected[i]).unwrap();
            i += 1;
        } else {
            writeln!(s, " + {}", actual[j]).unwrap();
            j += 1;
        }
    }
    s
}

fn run_command(env: &mut Env, command: &str) -> Vec<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut out = Out::default();
    if let Err(e) = env.run(words[0], &words[1..], &mut out) {
        out.line(format!("error: {e}"));
    }
    env.check_invariants();
    if out.0.is_empty() {
        out.line("ok");
    }
    for l in &out.0 {
        assert!(!l.trim().is_empty(), "command {command:?} printed a blank line");
    }
    out.0
}

fn run_file(name: &str) {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", name].iter().collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let items = parse_script(&path, &text);
    let mut env = Env::default();
    let mut actual = Vec::new();
    let mut failures = Vec::new();
    for item in &items {
        let Item::Block { line, command, expected } = item else { continue };
        let got = run_command(&mut env, command);
        if &got != expected {
            failures.push(format!(
                "{}:{line}: output of `{command}` differs (- expected, + actual):\n{}",
                path.display(),
                diff(expected, &got)
            ));
        }
        actual.push(got);
    }
    // A file holding a line `# no-rewrite` keeps hand-checked expectations (for example the
    // correct behaviour where the core is known to be wrong): REWRITE never touches it.
    let frozen = text.lines().any(|l| l.trim() == "# no-rewrite");
    if std::env::var_os("REWRITE").is_some_and(|v| v == "1") && !frozen {
        std::fs::write(&path, render_script(&items, &actual)).unwrap();
        return;
    }
    let hint = if frozen {
        "this file is `# no-rewrite`: its expectations are hand-checked"
    } else {
        "if the actual output is right, rerun with REWRITE=1 to accept it"
    };
    assert!(
        failures.is_empty(),
        "{}: {} block(s) differ ({hint})\n\n{}",
        path.display(),
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn election() {
    run_file("election.txt");
}

#[test]
fn replication() {
    run_file("replication.txt");
}

#[test]
fn conflict_backup() {
    run_file("conflict_backup.txt");
}

#[test]
fn snapshot() {
    run_file("snapshot.txt");
}

#[test]
fn restart() {
    run_file("restart.txt");
}

#[test]
fn async_persist() {
    run_file("async_persist.txt");
}

#[test]
fn election_no_prevote() {
    run_file("election_no_prevote.txt");
}

#[test]
fn read_index() {
    run_file("read_index.txt");
}

#[test]
fn follower_read() {
    run_file("follower_read.txt");
}

#[test]
fn lease_read() {
    run_file("lease_read.txt");
}
