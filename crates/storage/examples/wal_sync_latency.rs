//! Latency of one small durable batch, with and without preallocated WAL segments.
//!
//! ```text
//! cargo run --release -p kvraft-storage --example wal_sync_latency -- [--dir PATH]
//! ```
//!
//! In a fresh directory `wal-sync-latency-<pid>` under `--dir` (default `./target`), removed at
//! the end, it runs preallocation off and on, alternating, for 2 rounds. Each run opens a new
//! `WalStorage<FileDisk>` and writes 2000 batches, each one ~300-byte entry plus a hard state,
//! timing `write_batches` + `sync` (what a client's put waits for). With preallocation on,
//! `preallocate()` runs after each sync, untimed, as the WAL thread runs it after reporting.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bytes::Bytes;
use kvraft_raft::{Entry, HardState, LogIndex, NodeId, PersistBatch, Term};
use kvraft_storage::{FileDisk, WalConfig, WalStorage};

const BATCHES: u64 = 2000;
const ROUNDS: usize = 2;
const ENTRY_BYTES: usize = 300;

/// Removes the scratch directory however the program ends.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Write+sync latencies in microseconds, sorted.
fn run(dir: PathBuf, preallocate_bytes: u64) -> Result<Vec<u64>, String> {
    let disk = FileDisk::open(&dir).map_err(|e| e.to_string())?;
    let config = WalConfig { preallocate_bytes, ..WalConfig::default() };
    let mut wal = WalStorage::open_with(disk, config).map_err(|e| e.to_string())?;
    let mut latencies = Vec::with_capacity(BATCHES as usize);
    for i in 1..=BATCHES {
        let entries = [Entry {
            term: Term(1),
            index: LogIndex(i),
            kind: Default::default(),
            data: Bytes::from(vec![0x5a; ENTRY_BYTES]),
        }];
        let hard_state =
            HardState { term: Term(1), vote: Some(NodeId(1)), commit: LogIndex(i - 1) };
        let batch =
            PersistBatch { hard_state: Some(hard_state), snapshot: None, entries: &entries };
        let start = Instant::now();
        wal.write_batches(&[batch]).and_then(|()| wal.sync()).map_err(|e| e.to_string())?;
        latencies.push(start.elapsed().as_micros() as u64);
        wal.preallocate().map_err(|e| e.to_string())?;
    }
    drop(wal);
    std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
    latencies.sort_unstable();
    Ok(latencies)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> ExitCode {
    let mut base = PathBuf::from("target");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--dir", Some(dir)) => base = PathBuf::from(dir),
            _ => {
                eprintln!("usage: wal_sync_latency [--dir PATH]");
                return ExitCode::from(2);
            }
        }
    }
    let scratch = ScratchDir(base.join(format!("wal-sync-latency-{}", std::process::id())));
    println!("{BATCHES} batches of one {ENTRY_BYTES}-byte entry + hard state; write+sync, us");
    for round in 1..=ROUNDS {
        for (label, preallocate_bytes) in [("off", 0), ("on (1 MiB)", 1 << 20)] {
            let dir = scratch.0.join(format!("round{round}-{preallocate_bytes}"));
            match run(dir, preallocate_bytes) {
                Ok(l) => println!(
                    "round {round} preallocation {label:<10}  p50 {:>6}  p90 {:>6}  p99 {:>6}",
                    percentile(&l, 50.0),
                    percentile(&l, 90.0),
                    percentile(&l, 99.0)
                ),
                Err(e) => {
                    eprintln!("wal_sync_latency: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}
