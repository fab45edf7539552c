//! `kvraft put|append|get`: one operation through [`kvraft_client::Client`].

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use kvraft_client::{Client, ClientError, ClientOptions, Transport};
use kvraft_server::cli::parse_duration;

use crate::options::EndpointArgs;

/// How long one attempt at one server may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// Options of the client operations.
#[derive(Clone, Debug, clap::Args)]
pub struct OpArgs {
    #[command(flatten)]
    pub cluster: EndpointArgs,
    /// Give up after this long, retries included: seconds (10) or with a unit (500ms, 10s,
    /// 2m). A write that timed out may still take effect.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// How to talk to the servers: `frames` (client frames on plain TCP), or `grpc` (for a path
    /// that only passes HTTP/2, such as a gRPC proxy).
    #[arg(long, default_value_t = Transport::Frames, value_name = "frames|grpc")]
    pub transport: Transport,
}

#[derive(Clone, Debug, clap::Args)]
pub struct PutArgs {
    /// The key (any UTF-8 string).
    pub key: String,
    /// The value (any UTF-8 string; may start with '-').
    #[arg(allow_hyphen_values = true)]
    pub value: String,
    #[command(flatten)]
    pub op: OpArgs,
}

#[derive(Clone, Debug, clap::Args)]
pub struct GetArgs {
    /// The key (any UTF-8 string).
    pub key: String,
    #[command(flatten)]
    pub op: OpArgs,
}

fn client(op: &OpArgs) -> Result<Client, ClientError> {
    Client::new(ClientOptions {
        endpoints: op.cluster.endpoints.clone(),
        call_timeout: CALL_TIMEOUT.min(op.timeout),
        op_timeout: Some(op.timeout),
        transport: op.transport,
        ..ClientOptions::default()
    })
}

fn finish<T>(command: &str, result: Result<T, ClientError>, print: impl FnOnce(T)) -> ExitCode {
    match result {
        Ok(v) => {
            print(v);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kvraft {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

pub async fn put(args: PutArgs) -> ExitCode {
    let result = match client(&args.op) {
        Ok(mut c) => c.put(args.key, args.value).await,
        Err(e) => Err(e),
    };
    finish("put", result, drop)
}

pub async fn append(args: PutArgs) -> ExitCode {
    let result = match client(&args.op) {
        Ok(mut c) => c.append(args.key, args.value).await,
        Err(e) => Err(e),
    };
    finish("append", result, drop)
}

pub async fn get(args: GetArgs) -> ExitCode {
    let result = match client(&args.op) {
        Ok(mut c) => c.get(args.key).await,
        Err(e) => Err(e),
    };
    finish("get", result, |value| {
        // A closed stdout (e.g. `| head -c0`) is not worth a panic.
        let _ = writeln!(std::io::stdout().lock(), "{value}");
    })
}
