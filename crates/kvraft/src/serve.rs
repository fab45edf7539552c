//! `kvraft server`: one node, until a signal or a fatal error.

use std::process::ExitCode;

use kvraft_server::{ServerArgs, ServerConfig};

pub async fn run(args: ServerArgs) -> ExitCode {
    kvraft_server::init_logging();
    let config = match ServerConfig::resolve(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kvraft server: {e}");
            return ExitCode::from(2);
        }
    };
    match kvraft_server::run_until_signal(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvraft server: {e}");
            ExitCode::FAILURE
        }
    }
}
