//! Options shared by the client subcommands.

use kvraft_server::cli::DEV_ENDPOINTS;

/// Where the cluster is.
#[derive(Clone, Debug, clap::Args)]
pub struct EndpointArgs {
    /// The servers' client addresses, host:port, comma-separated (node 1 first).
    #[arg(
        long,
        env = "KVRAFT_ENDPOINTS",
        value_delimiter = ',',
        default_value = DEV_ENDPOINTS,
        value_name = "HOST:PORT,..."
    )]
    pub endpoints: Vec<String>,
}
