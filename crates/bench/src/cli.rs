//! The command line of `kvraft-bench`, and what each form of it runs: a load run (the default,
//! [`run`](crate::run)), `compare` or `scale`.

use std::process::ExitCode;

use crate::compare::CompareArgs;
use crate::options::RunArgs;
use crate::scale::ScaleArgs;

/// kvraft-bench: load a cluster (kvraft or etcd) with closed-loop clients and report throughput
/// and latency percentiles; `compare` summarizes several runs side by side.
#[derive(Debug, clap::Parser)]
#[command(
    name = "kvraft-bench",
    version,
    propagate_version = true,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub action: Option<Action>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Read `kvraft-bench --json` reports (one per line; several rounds of several workloads
    /// against kvraft and etcd), print a Markdown table of the medians per workload and system
    /// with the ratio kvraft/etcd, and optionally draw a latency-throughput chart.
    Compare(CompareArgs),
    /// Start a 3-node cluster of `kvraft server` processes on loopback, load it with N keys,
    /// and report resident memory per node, snapshot size and costs, restart and wiped-follower
    /// catch-up times, beside the disk's and loopback's raw rates.
    Scale(ScaleArgs),
}

/// Runs what `cli` asks for; the process's exit status.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.action {
        Some(Action::Compare(args)) => crate::compare::run(args),
        Some(Action::Scale(args)) => crate::scale::run(args).await,
        None => crate::run::run(cli.run).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_options_and_subcommands_do_not_mix() {
        let cli = Cli::try_parse_from(["kvraft-bench", "--clients", "4"]).unwrap();
        assert!(cli.action.is_none() && cli.run.clients == 4);
        let cli = Cli::try_parse_from(["kvraft-bench", "compare", "a.jsonl"]).unwrap();
        assert!(matches!(cli.action, Some(Action::Compare(_))));
        assert!(Cli::try_parse_from(["kvraft-bench", "--clients", "4", "scale"]).is_err());
    }
}
