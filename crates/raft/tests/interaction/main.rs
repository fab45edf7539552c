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
//! - `add-empty-node`: a brand-new node `n+1` with empty storage and no bootstrap voters: it
//!   learns its configuration from a leader once a membership change adds it.
//! - `propose-conf-change <id> add-learner[=<id>] | add-voter[=<id>] | promote=<id> |
//!   demote=<id> | remove=<id> [expect-index=<n>] [force]`: propose a membership change
//!   (compare-and-set on the config index; `force` skips the quorum-safety check).
//! - `transfer-leader <id> [to=<id>]`: hand the node's leadership to a voter.
//! - `raft-config <id>`: the configuration in effect on a node, the latest it knows committed,
//!   and whether it knows it was removed.
//!
//! A message to a member that was never started (an id the configuration names, but no node
//! of the env) prints `(no such node)` and goes nowhere.
//!
//! After every command each node's invariants are checked, and every applied entry is compared
//! with what other nodes applied at its index (a mismatch prints a `SAFETY VIOLATION` line).
//!
//! Layout (as etcd's `rafttest`): `env.rs` holds the env, `format.rs` how entries and messages
//! print, `script.rs` the file format, and `commands/` one file per command, dispatched from
//! `commands/mod.rs`.

mod commands;
mod env;
mod format;
mod script;

use std::path::PathBuf;

use env::{Env, Out};
use script::{diff, parse_script, render_script, Item};

/// Runs one command and checks every node's invariants after it; returns its output lines.
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

/// Runs the script `testdata/<name>` and compares (or, with `REWRITE=1`, rewrites) its output.
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

#[test]
fn prevote_checkquorum() {
    run_file("prevote_checkquorum.txt");
}

#[test]
fn async_storage_race() {
    run_file("async_storage_race.txt");
}

#[test]
fn membership_learner() {
    run_file("membership_learner.txt");
}

#[test]
fn membership_remove() {
    run_file("membership_remove.txt");
}

#[test]
fn membership_rules() {
    run_file("membership_rules.txt");
}

#[test]
fn membership_term_barrier() {
    run_file("membership_term_barrier.txt");
}

#[test]
fn membership_remove_leader() {
    run_file("membership_remove_leader.txt");
}

#[test]
fn membership_demote() {
    run_file("membership_demote.txt");
}

#[test]
fn membership_remove_leader_two() {
    run_file("membership_remove_leader_two.txt");
}

#[test]
fn membership_revert() {
    run_file("membership_revert.txt");
}

#[test]
fn membership_votes() {
    run_file("membership_votes.txt");
}

#[test]
fn transfer() {
    run_file("transfer.txt");
}

#[test]
fn transfer_rejected() {
    run_file("transfer_rejected.txt");
}

#[test]
fn transfer_stale_snapshot() {
    run_file("transfer_stale_snapshot.txt");
}

#[test]
fn membership_reads() {
    run_file("membership_reads.txt");
}

#[test]
fn membership_snapshot() {
    run_file("membership_snapshot.txt");
}
