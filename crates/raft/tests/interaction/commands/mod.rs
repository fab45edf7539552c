//! The commands, one file each, and the dispatch from a script's command name to its
//! handler. Every handler is an `Env` method `handle_<command>(args, out)`: it prints into
//! `out` and returns an error for bad arguments (printed as `error: ...`).

mod add_empty_node;
mod add_nodes;
mod campaign;
mod compact;
mod conf_change;
mod deliver_msgs;
mod isolate;
mod persist;
mod process_ready;
mod propose;
mod raft_config;
mod raft_log;
mod read_index;
mod ready;
mod recover;
mod restart;
mod stabilize;
mod status;
mod storage;
mod tick;
mod transfer_leader;

use crate::env::{Env, Out};

impl Env {
    /// Runs one command of a script.
    pub(crate) fn run(&mut self, cmd: &str, args: &[&str], out: &mut Out) -> Result<(), String> {
        match cmd {
            "add-nodes" => self.handle_add_nodes(args, out),
            "campaign" => self.handle_campaign(args, out),
            "tick" => self.handle_tick(args, out),
            "tick-heartbeat" => self.handle_tick_heartbeat(args, out),
            "propose" => self.handle_propose(args, out),
            "read-index" => self.handle_read_index(args, out),
            "ready" => self.handle_ready(args, out),
            "persist" => self.handle_persist(args, out),
            "process-ready" => self.handle_process_ready(args, out),
            "deliver-msgs" => self.handle_deliver_msgs(args, out),
            "stabilize" => self.handle_stabilize(args, out),
            "status" => self.handle_status(args, out),
            "raft-log" => self.handle_raft_log(args, out),
            "storage" => self.handle_storage(args, out),
            "isolate" => self.handle_isolate(args, out),
            "recover" => self.handle_recover(args, out),
            "compact" => self.handle_compact(args, out),
            "restart" => self.handle_restart(args, out),
            "add-empty-node" => self.handle_add_empty_node(args, out),
            "propose-conf-change" => self.handle_propose_conf_change(args, out),
            "transfer-leader" => self.handle_transfer_leader(args, out),
            "raft-config" => self.handle_raft_config(args, out),
            _ => Err(format!("unknown command {cmd:?}")),
        }
    }
}
