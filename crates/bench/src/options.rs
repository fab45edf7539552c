//! The options of a load run (`kvraft-bench [run options]`), and the validated [`Plan`].

use std::str::FromStr;
use std::time::Duration;

use kvraft_client::Transport;

use kvraft_server::cli::{parse_duration, DEV_ENDPOINTS};

/// The default etcd client endpoint.
pub const ETCD_DEFAULT_ENDPOINT: &str = "127.0.0.1:2379";

/// The system under load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// A kvraft cluster, through the client library (client frames, or gRPC with
    /// `--transport grpc`).
    Kvraft,
    /// An etcd cluster, through the etcd v3 gRPC API (Put, and Range without `serializable`,
    /// that is linearizable).
    Etcd,
}

/// Where a bench client of kvraft sends its Gets first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    /// To the leader, like writes.
    Leader,
    /// Client i to endpoint i mod N: followers serve linearizable reads by ReadIndex (as etcd's
    /// members do, and as the etcd client spreads its requests over the endpoints).
    Spread,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Kvraft => "kvraft",
            Target::Etcd => "etcd",
        }
    }
}

/// What each operation is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Workload {
    Put,
    /// On etcd, which has no append, a Put of the value.
    Append,
    /// Linearizable reads of prefilled keys.
    Get,
    /// Gets with this probability (percent, 0..=100), Puts otherwise.
    Mixed {
        read_percent: f64,
    },
}

impl Workload {
    /// Whether the workload reads (so the keys are prefilled first).
    pub fn reads(self) -> bool {
        match self {
            Workload::Get => true,
            Workload::Mixed { read_percent } => read_percent > 0.0,
            Workload::Put | Workload::Append => false,
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Workload::Put => f.write_str("put"),
            Workload::Append => f.write_str("append"),
            Workload::Get => f.write_str("get"),
            Workload::Mixed { read_percent } => write!(f, "mixed:{read_percent}"),
        }
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(text: &str) -> Result<Workload, String> {
        match text.trim() {
            "put" => Ok(Workload::Put),
            "append" => Ok(Workload::Append),
            "get" => Ok(Workload::Get),
            other => {
                let bad = || format!("{other:?}: expected put, append, get or mixed:<read%>");
                let percent = other.strip_prefix("mixed:").ok_or_else(bad)?;
                let percent = percent.trim().trim_end_matches('%');
                let read_percent: f64 = percent.parse().map_err(|_| bad())?;
                if !(0.0..=100.0).contains(&read_percent) {
                    return Err(format!("{other:?}: the read percentage must be 0 to 100"));
                }
                Ok(Workload::Mixed { read_percent })
            }
        }
    }
}

/// How keys are drawn from the key space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyDist {
    Uniform,
    /// Zipfian with exponent `theta` in (0, 1): key 0 is the most popular.
    Zipfian {
        theta: f64,
    },
}

/// The zipfian exponent when none is given (YCSB's).
pub const DEFAULT_THETA: f64 = 0.99;

impl std::fmt::Display for KeyDist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyDist::Uniform => f.write_str("uniform"),
            KeyDist::Zipfian { theta } => write!(f, "zipfian:{theta}"),
        }
    }
}

impl FromStr for KeyDist {
    type Err = String;

    fn from_str(text: &str) -> Result<KeyDist, String> {
        let text = text.trim();
        let bad = || format!("{text:?}: expected uniform, zipfian or zipfian:<theta>");
        if text == "uniform" {
            return Ok(KeyDist::Uniform);
        }
        let rest = text.strip_prefix("zipfian").ok_or_else(bad)?;
        let theta = match rest.strip_prefix(':') {
            None if rest.is_empty() => DEFAULT_THETA,
            None => return Err(bad()),
            Some(t) => t.trim().parse::<f64>().map_err(|_| bad())?,
        };
        if !(theta > 0.0 && theta < 1.0) {
            return Err(format!("{text:?}: theta must be strictly between 0 and 1"));
        }
        Ok(KeyDist::Zipfian { theta })
    }
}

/// A duration that may be zero (`0`, `0s`, `0ms`), for the warmup; otherwise as
/// [`parse_duration`].
pub fn parse_duration_or_zero(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let zero = !number.is_empty() && number.bytes().all(|b| b == b'0');
    if zero && matches!(unit.trim(), "" | "s" | "ms" | "m") {
        return Ok(Duration::ZERO);
    }
    parse_duration(text)
}

/// The options of one load run.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// The system to load.
    #[arg(long, value_enum, default_value_t = Target::Kvraft)]
    pub target: Target,
    /// The servers' client addresses, host:port, comma-separated. [default: $KVRAFT_ENDPOINTS
    /// or the dev cluster's for kvraft; 127.0.0.1:2379 for etcd]
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT,...")]
    pub endpoints: Vec<String>,
    /// Concurrent closed-loop clients: each has one operation in flight at a time, and its own
    /// session (kvraft client id and sequence numbers).
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub clients: usize,
    /// Connections, shared round-robin by the clients: client i uses connection i mod M, so
    /// with more clients than connections several clients multiplex one connection (kvraft: a
    /// set of one connection per server, client frames on TCP or HTTP/2 with `--transport
    /// grpc`; etcd: one gRPC channel over every member). At most --clients. [default: --clients]
    #[arg(long, value_name = "M")]
    pub connections: Option<usize>,
    /// How long to measure, after the warmup: seconds (10) or with a unit (500ms, 10s, 2m).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", conflicts_with = "ops")]
    pub duration: Option<Duration>,
    /// Measure this many operations (after the warmup) instead of a duration.
    #[arg(long, value_name = "N")]
    pub ops: Option<u64>,
    /// Run the load this long before measuring (0 for none).
    #[arg(long, default_value = "1s", value_parser = parse_duration_or_zero, value_name = "DURATION")]
    pub warmup: Duration,
    /// put, append, get (linearizable) or mixed:<read%> (e.g. mixed:90: 90% gets, 10% puts).
    #[arg(long, default_value = "put", value_name = "WORKLOAD")]
    pub workload: Workload,
    /// Bytes per value (ASCII).
    #[arg(long, default_value_t = 256, value_name = "BYTES")]
    pub value_size: usize,
    /// Size of the key space.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub keys: u64,
    /// How keys are drawn: uniform, or zipfian[:theta] (theta in (0, 1), default 0.99).
    #[arg(long, default_value = "uniform", value_name = "DIST")]
    pub key_dist: KeyDist,
    /// Seed of the key and operation choices (each client derives its own stream from it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Limit for one attempt at one server (kvraft: then the next server is tried with the
    /// same sequence number; etcd: the request fails).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub call_timeout: Duration,
    /// Limit for one operation, retries included; an operation that runs out counts as an
    /// error.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub op_timeout: Duration,
    /// Do not write every key before a workload that reads (reads then may see empty values).
    #[arg(long)]
    pub no_prefill: bool,
    /// kvraft: where Gets go first (leader, or spread over every endpoint: a follower serves
    /// them linearizably by asking the leader for the read index).
    #[arg(long, value_enum, default_value_t = ReadFrom::Leader)]
    pub read_from: ReadFrom,
    /// kvraft: how the clients talk to the servers, `frames` (client frames on plain TCP) or
    /// `grpc` (etcd is always gRPC).
    #[arg(long, default_value_t = Transport::Frames, value_name = "frames|grpc")]
    pub transport: Transport,
    /// A name for this run, copied into the report (e.g. by bench/vs-etcd.sh to group rounds).
    #[arg(long)]
    pub label: Option<String>,
    /// Print the report as one JSON object (and no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// When the measurement ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    After(Duration),
    Ops(u64),
}

/// The validated plan of a run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub target: Target,
    pub endpoints: Vec<String>,
    pub clients: usize,
    pub connections: usize,
    pub stop: Stop,
    pub warmup: Duration,
    pub workload: Workload,
    pub value_size: usize,
    pub keys: u64,
    pub key_dist: KeyDist,
    pub seed: u64,
    pub call_timeout: Duration,
    pub op_timeout: Duration,
    pub prefill: bool,
    pub read_from: ReadFrom,
    pub transport: Transport,
    pub label: Option<String>,
}

/// The measurement length when neither --duration nor --ops is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

impl RunArgs {
    /// Checks the options; `env_endpoints` is `$KVRAFT_ENDPOINTS`, if set.
    pub fn plan(&self, env_endpoints: Option<String>) -> Result<Plan, String> {
        if self.clients == 0 {
            return Err("--clients must be at least 1".into());
        }
        let connections = self.connections.unwrap_or(self.clients);
        if connections == 0 || connections > self.clients {
            return Err(format!(
                "--connections must be 1 to --clients ({}), not {connections}",
                self.clients
            ));
        }
        if self.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        let stop = match (self.duration, self.ops) {
            (_, Some(0)) => return Err("--ops must be at least 1".into()),
            (_, Some(n)) => Stop::Ops(n),
            (Some(d), None) => Stop::After(d),
            (None, None) => Stop::After(DEFAULT_DURATION),
        };
        let mut endpoints: Vec<String> =
            self.endpoints.iter().map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect();
        if endpoints.is_empty() {
            let default = match self.target {
                Target::Kvraft => env_endpoints
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| DEV_ENDPOINTS.to_string()),
                Target::Etcd => ETCD_DEFAULT_ENDPOINT.to_string(),
            };
            endpoints = default.split(',').map(|e| e.trim().to_string()).collect();
        }
        Ok(Plan {
            target: self.target,
            endpoints,
            clients: self.clients,
            connections,
            stop,
            warmup: self.warmup,
            workload: self.workload,
            value_size: self.value_size,
            keys: self.keys,
            key_dist: self.key_dist,
            seed: self.seed,
            call_timeout: self.call_timeout,
            op_timeout: self.op_timeout,
            prefill: !self.no_prefill && self.workload.reads(),
            read_from: self.read_from,
            transport: self.transport,
            label: self.label.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.run.plan(None)
    }

    #[test]
    fn workloads_parse() {
        assert_eq!("put".parse(), Ok(Workload::Put));
        assert_eq!("append".parse(), Ok(Workload::Append));
        assert_eq!("get".parse(), Ok(Workload::Get));
        assert_eq!("mixed:90".parse(), Ok(Workload::Mixed { read_percent: 90.0 }));
        assert_eq!("mixed:12.5%".parse(), Ok(Workload::Mixed { read_percent: 12.5 }));
        for bad in ["", "mixed", "mixed:", "mixed:101", "mixed:-1", "delete"] {
            assert!(bad.parse::<Workload>().is_err(), "{bad:?}");
        }
        assert!(Workload::Get.reads() && Workload::Mixed { read_percent: 1.0 }.reads());
        assert!(!Workload::Put.reads() && !Workload::Mixed { read_percent: 0.0 }.reads());
        assert_eq!(Workload::Mixed { read_percent: 90.0 }.to_string(), "mixed:90");
    }

    #[test]
    fn key_distributions_parse() {
        assert_eq!("uniform".parse(), Ok(KeyDist::Uniform));
        assert_eq!("zipfian".parse(), Ok(KeyDist::Zipfian { theta: DEFAULT_THETA }));
        assert_eq!("zipfian:0.5".parse(), Ok(KeyDist::Zipfian { theta: 0.5 }));
        for bad in ["", "zipf", "zipfian:", "zipfian:1", "zipfian:0", "zipfianx", "zipfian:a"] {
            assert!(bad.parse::<KeyDist>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn warmup_may_be_zero() {
        assert_eq!(parse_duration_or_zero("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("00ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration_or_zero("10ms"), Ok(Duration::from_millis(10)));
        assert!(parse_duration_or_zero("0h").is_err());
        assert!(parse_duration_or_zero("").is_err());
    }

    #[test]
    fn plans_fill_in_defaults_and_check_limits() {
        let p = plan(&[]).unwrap();
        assert_eq!((p.clients, p.connections), (16, 16));
        assert_eq!(p.stop, Stop::After(DEFAULT_DURATION));
        assert_eq!(p.endpoints.len(), 3);
        assert!(!p.prefill);
        let p = plan(&["--clients", "1000", "--connections", "100", "--ops", "5"]).unwrap();
        assert_eq!((p.clients, p.connections, p.stop), (1000, 100, Stop::Ops(5)));
        let p = plan(&["--target", "etcd", "--workload", "get"]).unwrap();
        assert_eq!(p.endpoints, [ETCD_DEFAULT_ENDPOINT]);
        assert!(p.prefill);
        assert!(!plan(&["--workload", "get", "--no-prefill"]).unwrap().prefill);
        let p = plan(&["--endpoints", "a:1, b:2", "--duration", "2s"]).unwrap();
        assert_eq!(
            (p.endpoints.clone(), p.stop),
            (vec!["a:1".into(), "b:2".into()], Stop::After(Duration::from_secs(2)))
        );
        assert!(plan(&["--clients", "0"]).unwrap_err().contains("--clients"));
        assert!(plan(&["--clients", "2", "--connections", "3"])
            .unwrap_err()
            .contains("--connections"));
        assert!(plan(&["--keys", "0"]).unwrap_err().contains("--keys"));
        assert!(plan(&["--ops", "0"]).unwrap_err().contains("--ops"));
        assert!(plan(&["--ops", "5", "--duration", "1s"]).is_err());
    }
}
