//! WAL throughput against the disk's own fsync rate.
//!
//! ```text
//! cargo run --release -p kvraft-storage --example wal_bench -- \
//!     [--dir PATH] [--seconds S] [--entry-bytes N] [--json]
//! ```
//!
//! Works in a fresh directory `wal-bench-<pid>` under `--dir` (default `./target`, so the disk
//! measured is the one the build lives on), removed at the end. It measures, each for
//! `--seconds` (default 2):
//!
//! 1. the raw fsync rate: append 4 KiB to a file, `sync_data`, repeat (a new file every
//!    64 MiB, like WAL segments);
//! 2. `WalStorage<FileDisk>::persist` with 1, 8 and 64 entries of `--entry-bytes` (default
//!    256) per batch, each batch also carrying a hard state, as a Raft `Ready` would.
//!
//! Each persist is one append and one fsync (plus, every 64 MiB, a segment rollover), so the
//! WAL's fsyncs/s is its persists/s; the last column compares it with the raw rate. Only the
//! `persist` calls are timed: the log is compacted (a snapshot covering it) outside the timed
//! region whenever it holds more than 100 000 entries, to bound memory on fast disks.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kvraft_raft::{
    Entry, HardState, LogIndex, NodeId, PersistBatch, Snapshot, SnapshotMeta, Storage, Term,
};
use kvraft_storage::{FileDisk, WalStorage};

const RAW_WRITE_BYTES: usize = 4096;
const RAW_FILE_LIMIT_BYTES: u64 = 64 << 20;
const BATCH_SIZES: [usize; 3] = [1, 8, 64];
const COMPACT_ABOVE_ENTRIES: usize = 100_000;

const USAGE: &str = "usage: wal_bench [--dir PATH] [--seconds S] [--entry-bytes N] [--json]";

#[derive(Debug)]
struct Options {
    dir: PathBuf,
    seconds: f64,
    entry_bytes: usize,
    json: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut options =
        Options { dir: PathBuf::from("target"), seconds: 2.0, entry_bytes: 256, json: false };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--dir" => options.dir = PathBuf::from(value("--dir")?),
            "--seconds" => {
                let v = value("--seconds")?;
                options.seconds = v.parse().map_err(|_| format!("bad --seconds {v:?}"))?;
                if !(options.seconds > 0.0 && options.seconds.is_finite()) {
                    return Err(format!("--seconds must be positive, got {v}"));
                }
            }
            "--entry-bytes" => {
                let v = value("--entry-bytes")?;
                options.entry_bytes = v.parse().map_err(|_| format!("bad --entry-bytes {v:?}"))?;
            }
            "--json" => options.json = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

/// Removes the benchmark directory however the program ends.
#[derive(Debug)]
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug, Clone, Copy)]
struct RawResult {
    fsyncs: u64,
    busy: Duration,
}

impl RawResult {
    fn fsyncs_per_sec(&self) -> f64 {
        self.fsyncs as f64 / self.busy.as_secs_f64()
    }

    fn micros_per_fsync(&self) -> f64 {
        self.busy.as_secs_f64() * 1e6 / self.fsyncs as f64
    }
}

#[derive(Debug, Clone, Copy)]
struct WalResult {
    batch: usize,
    persists: u64,
    entries: u64,
    payload_bytes: u64,
    busy: Duration,
}

impl WalResult {
    fn per_sec(&self, n: u64) -> f64 {
        n as f64 / self.busy.as_secs_f64()
    }

    fn fsyncs_per_sec(&self) -> f64 {
        self.per_sec(self.persists)
    }

    fn entries_per_sec(&self) -> f64 {
        self.per_sec(self.entries)
    }

    fn megabytes_per_sec(&self) -> f64 {
        self.per_sec(self.payload_bytes) / 1e6
    }

    fn micros_per_persist(&self) -> f64 {
        self.busy.as_secs_f64() * 1e6 / self.persists as f64
    }
}

/// Append 4 KiB, fsync, repeat, for `duration`.
fn measure_raw_fsync(dir: &Path, duration: Duration) -> Result<RawResult, String> {
    let block = vec![0xA5u8; RAW_WRITE_BYTES];
    let mut file_no = 0u32;
    let open_next = |file_no: &mut u32| -> Result<(File, PathBuf), String> {
        *file_no += 1;
        let path = dir.join(format!("raw-{file_no:04}.dat"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((file, path))
    };
    let (mut file, mut path) = open_next(&mut file_no)?;
    let mut len = 0u64;
    let mut fsyncs = 0u64;
    let start = Instant::now();
    while start.elapsed() < duration {
        if len >= RAW_FILE_LIMIT_BYTES {
            drop(file);
            fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            (file, path) = open_next(&mut file_no)?;
            len = 0;
        }
        file.write_all(&block).map_err(|e| format!("{}: write: {e}", path.display()))?;
        file.sync_data().map_err(|e| format!("{}: fsync: {e}", path.display()))?;
        len += RAW_WRITE_BYTES as u64;
        fsyncs += 1;
    }
    Ok(RawResult { fsyncs, busy: start.elapsed() })
}

/// `persist` batches of `batch` entries for `duration` of time spent in `persist`.
fn measure_wal(
    dir: &Path,
    batch: usize,
    entry_bytes: usize,
    duration: Duration,
) -> Result<WalResult, String> {
    let disk = FileDisk::open(dir).map_err(|e| e.to_string())?;
    let mut wal = WalStorage::open(disk).map_err(|e| e.to_string())?;
    let payload = Bytes::from(vec![0x5Au8; entry_bytes]);
    let mut next_index = 1u64;
    let mut entries: Vec<Entry> = Vec::with_capacity(batch);
    let mut result =
        WalResult { batch, persists: 0, entries: 0, payload_bytes: 0, busy: Duration::ZERO };
    let mut retained = 0usize;
    while result.busy < duration {
        entries.clear();
        entries.extend((0..batch as u64).map(|i| Entry {
            term: Term(1),
            index: LogIndex(next_index + i),
            kind: Default::default(),
            data: payload.clone(),
        }));
        next_index += batch as u64;
        let last = LogIndex(next_index - 1);
        let hard_state = HardState { term: Term(1), vote: Some(NodeId(1)), commit: last };
        let persist_batch =
            PersistBatch { hard_state: Some(hard_state), snapshot: None, entries: &entries };

        let start = Instant::now();
        wal.persist(persist_batch).map_err(|e| e.to_string())?;
        result.busy += start.elapsed();

        result.persists += 1;
        result.entries += batch as u64;
        result.payload_bytes += (batch * entry_bytes) as u64;
        retained += batch;
        if retained > COMPACT_ABOVE_ENTRIES {
            // Untimed: what a node's snapshot policy would do, so memory and disk stay bounded.
            let snapshot = Snapshot {
                meta: SnapshotMeta { index: last, term: Term(1) },
                config: Default::default(),
                data: Bytes::new(),
            };
            let compact =
                PersistBatch { hard_state: None, snapshot: Some(&snapshot), entries: &[] };
            wal.persist(compact).map_err(|e| e.to_string())?;
            retained = 0;
        }
    }
    Ok(result)
}

fn print_table(options: &Options, dir: &Path, raw: &RawResult, wal: &[WalResult]) {
    println!(
        "wal_bench: {} s per run, {}-byte entries, in {}",
        options.seconds,
        options.entry_bytes,
        dir.display()
    );
    println!();
    println!(
        "{:<12} {:>6} {:>11} {:>10} {:>12} {:>9} {:>8}",
        "run", "batch", "fsyncs/s", "us/fsync", "entries/s", "MB/s", "vs raw"
    );
    println!(
        "{:<12} {:>6} {:>11.0} {:>10.1} {:>12} {:>9} {:>8}",
        "raw 4KiB",
        "-",
        raw.fsyncs_per_sec(),
        raw.micros_per_fsync(),
        "-",
        format!("{:.2}", raw.fsyncs_per_sec() * RAW_WRITE_BYTES as f64 / 1e6),
        "1.00"
    );
    for r in wal {
        println!(
            "{:<12} {:>6} {:>11.0} {:>10.1} {:>12.0} {:>9.2} {:>8.2}",
            "wal persist",
            r.batch,
            r.fsyncs_per_sec(),
            r.micros_per_persist(),
            r.entries_per_sec(),
            r.megabytes_per_sec(),
            r.fsyncs_per_sec() / raw.fsyncs_per_sec()
        );
    }
    println!();
    println!("MB/s counts entry payload bytes only (raw: the 4 KiB blocks); 1 MB = 10^6 bytes.");
}

fn print_json(options: &Options, dir: &Path, raw: &RawResult, wal: &[WalResult]) {
    let runs: Vec<serde_json::Value> = wal
        .iter()
        .map(|r| {
            serde_json::json!({
                "batch": r.batch,
                "persists": r.persists,
                "entries": r.entries,
                "seconds": r.busy.as_secs_f64(),
                "fsyncs_per_sec": r.fsyncs_per_sec(),
                "us_per_fsync": r.micros_per_persist(),
                "entries_per_sec": r.entries_per_sec(),
                "mb_per_sec": r.megabytes_per_sec(),
                "ratio_to_raw": r.fsyncs_per_sec() / raw.fsyncs_per_sec(),
            })
        })
        .collect();
    let report = serde_json::json!({
        "dir": dir.display().to_string(),
        "seconds_per_run": options.seconds,
        "entry_bytes": options.entry_bytes,
        "raw": {
            "write_bytes": RAW_WRITE_BYTES,
            "fsyncs": raw.fsyncs,
            "seconds": raw.busy.as_secs_f64(),
            "fsyncs_per_sec": raw.fsyncs_per_sec(),
            "us_per_fsync": raw.micros_per_fsync(),
        },
        "wal": runs,
    });
    println!("{report}");
}

fn run(options: &Options) -> Result<(), String> {
    let dir = options.dir.join(format!("wal-bench-{}", std::process::id()));
    fs::create_dir_all(&options.dir).map_err(|e| format!("{}: {e}", options.dir.display()))?;
    fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let scratch = ScratchDir(dir);
    let duration = Duration::from_secs_f64(options.seconds);

    let raw_dir = scratch.0.join("raw");
    fs::create_dir(&raw_dir).map_err(|e| format!("{}: {e}", raw_dir.display()))?;
    let raw = measure_raw_fsync(&raw_dir, duration)?;
    let _ = fs::remove_dir_all(&raw_dir);

    let mut wal = Vec::new();
    for batch in BATCH_SIZES {
        let wal_dir = scratch.0.join(format!("wal-batch-{batch}"));
        wal.push(measure_wal(&wal_dir, batch, options.entry_bytes, duration)?);
        let _ = fs::remove_dir_all(&wal_dir);
    }

    if options.json {
        print_json(options, &scratch.0, &raw, &wal);
    } else {
        print_table(options, &scratch.0, &raw, &wal);
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("wal_bench: {message}");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) };
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wal_bench: {message}");
            ExitCode::FAILURE
        }
    }
}
