//! `kvraft-bench`: see the library's docs (`kvraft_bench`) for what it measures and how.
//!
//! Exit status: 0 on success; 1 when the run failed; 2 for bad usage; 130 when `scale` is
//! interrupted.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    kvraft_bench::cli::run(kvraft_bench::Cli::parse()).await
}
