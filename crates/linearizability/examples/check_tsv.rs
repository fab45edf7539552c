//! Checks a recorded history in the simulator's tab-separated format and prints the verdict,
//! the steps used, the memo cache's peak size and the wall time:
//! `cargo run --release -p kvraft-linearizability --example check_tsv -- FILE [BUDGET]`.
//!
//! One operation per line: client_id, kind (get|put|append), key, value (the written value, or
//! what a get returned), call time, return time.

use std::time::Instant;

use kvraft_linearizability::{check_kv_with_stats, Operation};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: check_tsv FILE [BUDGET]");
    let budget: u64 = args.next().map_or(100_000_000, |b| b.parse().expect("BUDGET: a number"));
    let text = std::fs::read_to_string(&path).expect("readable file");
    let history: Vec<Operation> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 6, "bad line: {line:?}");
            let (client, key, value) = (f[0].parse().expect("client id"), f[2], f[3]);
            let (call, ret) = (f[4].parse().expect("call"), f[5].parse().expect("ret"));
            match f[1] {
                "get" => Operation::get(client, key, value, call, ret),
                "put" => Operation::put(client, key, value, call, ret),
                "append" => Operation::append(client, key, value, call, ret),
                other => panic!("bad kind {other:?}"),
            }
        })
        .collect();
    let start = Instant::now();
    let (result, stats) = check_kv_with_stats(&history, budget);
    let verdict = match &result {
        r if r.is_ok() => "Ok".to_string(),
        r if r.is_unknown() => "Unknown".to_string(),
        r => format!("{r}"),
    };
    println!(
        "{path}: {} ops, {verdict}, {} steps, {} partitions ({} checked), peak memo cache {} \
         entries, {:.2?}",
        history.len(),
        stats.steps,
        stats.partitions,
        stats.partitions_checked,
        stats.peak_cache_entries,
        start.elapsed()
    );
}
