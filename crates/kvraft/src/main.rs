//! `kvraft`: the one binary of kvraft. Each subcommand lives in its own module; this file only
//! parses the command line and dispatches.
//!
//! - `server` ([`serve`]): one node of a cluster, configured by flags, `KVRAFT_*` variables or
//!   a TOML file;
//! - `put`, `append`, `get` ([`kv`]): one operation through the client library;
//! - `status` ([`status`]): every node's view of the cluster, as a table or JSON;
//! - `dev` ([`dev`]): a local cluster in one process, for trying things out.
//!
//! The benchmark is a binary of its own, `kvraft-bench` (crate `crates/bench`), so that this
//! one links no load-generator, histogram or chart code.
//!
//! Exit status: 0 on success; 1 when the operation failed; 2 for a bad server configuration
//! or bad usage.

mod dev;
mod kv;
mod options;
mod serve;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// kvraft: a key-value store replicated with Raft.
#[derive(Debug, Parser)]
#[command(name = "kvraft", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one node of a cluster (until SIGTERM or Ctrl-C).
    Server(kvraft_server::ServerArgs),
    /// Set a key to a value.
    Put(kv::PutArgs),
    /// Append a value to a key's value (a missing key counts as empty).
    Append(kv::PutArgs),
    /// Print a key's value (empty if it was never written), linearizably.
    Get(kv::GetArgs),
    /// Show every node's view of the cluster.
    Status(status::StatusArgs),
    /// Run a local cluster in this process, in the foreground, until Ctrl-C.
    Dev(dev::DevArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Server(args) => serve::run(args).await,
        Command::Put(args) => kv::put(args).await,
        Command::Append(args) => kv::append(args).await,
        Command::Get(args) => kv::get(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Dev(args) => dev::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
