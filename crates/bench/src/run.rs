//! A load run, what `kvraft-bench` does without a subcommand: the plan from the options, the
//! driver of the target system, the closed loop ([`runner`](crate::runner)), and the report on
//! stdout as text or JSON.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use crate::kvraft_driver::KvraftDriver;
use crate::options::{Plan, RunArgs, Target};
use crate::report::Report;
use crate::runner::{self, Measurement};

/// Runs the load `args` describe and prints its report; fails if no operation succeeded.
pub async fn run(args: RunArgs) -> ExitCode {
    let plan = match args.plan(std::env::var("KVRAFT_ENDPOINTS").ok()) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("kvraft-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let progress = !args.json && std::io::stderr().is_terminal();
    let measurement = match plan.target {
        Target::Kvraft => {
            let driver = match KvraftDriver::new(
                &plan.endpoints,
                plan.connections,
                plan.call_timeout,
                plan.op_timeout,
                plan.read_from,
                plan.transport,
            ) {
                Ok(driver) => driver,
                Err(e) => {
                    eprintln!("kvraft-bench: {e}");
                    return ExitCode::from(2);
                }
            };
            runner::run(&driver, &plan, progress).await
        }
        Target::Etcd => match run_etcd(&plan, progress).await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("kvraft-bench: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let report = Report::new(&plan, &measurement);
    let text = if args.json { report.to_json() + "\n" } else { report.to_text(plan.stop) };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if report.ops == 0 {
        eprintln!("kvraft-bench: no operation succeeded");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(feature = "etcd-client")]
async fn run_etcd(plan: &Plan, progress: bool) -> Result<Measurement, String> {
    let driver = crate::etcd_driver::EtcdDriver::connect(
        &plan.endpoints,
        plan.connections,
        plan.call_timeout,
        plan.op_timeout,
    )
    .await?;
    Ok(runner::run(&driver, plan, progress).await)
}

#[cfg(not(feature = "etcd-client"))]
async fn run_etcd(_plan: &Plan, _progress: bool) -> Result<Measurement, String> {
    Err("this kvraft-bench was built without etcd support: rebuild with \
         `cargo build --release -p kvraft-bench --features etcd-client` (needs protoc: \
         PROTOC=...; bench/vs-etcd.sh does this)"
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use kvraft_server::{LocalCluster, LocalClusterSpec};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    /// A real 3-node cluster in this process, loaded through shared channels: 6 clients over
    /// 2 connections, a mixed workload after a prefill, a fixed number of operations.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loads_a_real_cluster_over_shared_connections() {
        let nodes = LocalCluster::start(&LocalClusterSpec::scratch("bench-test", 3)).await.unwrap();
        let addrs = nodes.endpoints();
        let endpoints = addrs.join(",");
        let cli = Cli::parse_from([
            "bench",
            "--endpoints",
            &endpoints,
            "--clients",
            "6",
            "--connections",
            "2",
            "--ops",
            "60",
            "--warmup",
            "0",
            "--workload",
            "mixed:50",
            "--keys",
            "20",
            "--key-dist",
            "zipfian",
            "--value-size",
            "32",
        ]);
        let plan = cli.run.plan(None).unwrap();
        assert!(plan.prefill);
        let driver = KvraftDriver::new(
            &plan.endpoints,
            plan.connections,
            plan.call_timeout,
            plan.op_timeout,
            plan.read_from,
            plan.transport,
        )
        .unwrap();
        let measurement = runner::run(&driver, &plan, false).await;
        let report = Report::new(&plan, &measurement);
        assert_eq!((report.ops, report.errors), (60, 0), "{report:?}");
        assert_eq!((report.prefill_keys, report.prefill_errors), (20, 0));
        assert!(report.throughput > 0.0 && report.latency_us.p50 > 0, "{report:?}");
        assert!(report.latency_us.p50 <= report.latency_us.p99);
        assert!(report
            .to_text(plan.stop)
            .contains("mixed 50% linearizable gets, 6 clients over 2 connections"));
        let back: Report = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(back, report);

        // Every key holds a value of the configured size.
        let mut client =
            kvraft_client::Client::new(kvraft_client::ClientOptions::new(addrs.iter().cloned()))
                .unwrap();
        assert_eq!(client.get(crate::workload::key_name(7)).await.unwrap().len(), 32);

        nodes.shutdown().await.unwrap();
    }
}
