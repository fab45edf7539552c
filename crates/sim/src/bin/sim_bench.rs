//! Benchmark (not a test): how much wall-clock time the simulator spends per simulated
//! operation, and how many events it processes per second, on the KV speed tests and a busy
//! GenericTest. Virtual time makes the lab's speed tests measure protocol latency only; this
//! shows the CPU side.
//!
//! `cargo run --release -p kvraft-sim --bin sim_bench [-- --seeds N]`

use std::time::Instant;

use kvraft_sim::lab::find_test;
use kvraft_sim::options::SimOptions;

fn main() {
    let seeds: u64 = std::env::args()
        .skip_while(|a| a != "--seeds")
        .nth(1)
        .map(|s| s.parse().expect("--seeds takes a number"))
        .unwrap_or(3);
    let options = SimOptions { quiet: true, ..SimOptions::from_env() };
    println!(
        "{:<40} {:>5} {:>9} {:>8} {:>10} {:>12} {:>10}",
        "test", "seed", "wall_ms", "ops", "us/op", "events", "events/s"
    );
    for name in ["speed_3a", "speed_3b", "concurrent_3a", "figure8_unreliable_2c"] {
        let test = find_test(name).expect("known test");
        for seed in 1..=seeds {
            let start = Instant::now();
            let report = (test.run)(seed, &options);
            let wall = start.elapsed();
            // KV figures end with the op count; Raft figures with agreements.
            let ops: u64 = report
                .figures
                .as_deref()
                .and_then(|f| f.split_whitespace().last())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let us_per_op = if ops > 0 { wall.as_micros() as f64 / ops as f64 } else { 0.0 };
            println!(
                "{name:<40} {seed:>5} {:>9.1} {ops:>8} {us_per_op:>10.1} {:>12} {:>10.0}",
                wall.as_secs_f64() * 1000.0,
                report.summary.events,
                report.summary.events as f64 / wall.as_secs_f64()
            );
        }
    }
}
