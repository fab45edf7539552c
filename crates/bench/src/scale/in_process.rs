//! Snapshot costs measured in this process, on the same code paths as the server, because the
//! server does not report how long its snapshots take:
//!
//! 1. build a [`KvStateMachine`] holding the same keys and values as the cluster (applying one
//!    Put per key, spread over as many client sessions as the load had clients), and measure
//!    how much this process grew;
//! 2. **encode**: [`KvStateMachine::encode_snapshot`], what a replica does when its Raft state
//!    outgrows `--max-raft-state-bytes` (on the node task, which serves nothing meanwhile);
//! 3. **write durably**: [`WalStorage::persist`] of a batch carrying that snapshot on a
//!    [`FileDisk`], what the server's WAL thread does: the snapshot file (`snap.tmp`, fdatasync,
//!    rename, directory fsync), then the batch's record in the segment and its fdatasync;
//! 4. **read back and decode** (the restart cost): [`WalStorage::open`] on that directory
//!    (reads the segment and the whole snapshot file, checks both checksums) and
//!    [`KvStateMachine::decode_snapshot`]. The file was just written, so it is read from the
//!    page cache, not from the disk.

use std::path::Path;
use std::time::{Duration, Instant};

use kvraft_kv::{ClientId, ClientRequest, Command, KvStateMachine, Op, Sequence, SessionLimits};
use kvraft_raft::{HardState, LogIndex, PersistBatch, Snapshot, SnapshotMeta, Storage, Term};
use kvraft_storage::snapshot_file::snapshot_file_name;
use kvraft_storage::{FileDisk, WalStorage};

use super::cluster::memory_of;
use crate::workload::{key_name, Values};

/// What [`measure`] found.
#[derive(Debug)]
pub struct SnapshotCosts {
    pub keys: u64,
    pub sessions: usize,
    /// Applying the Puts.
    pub build: Duration,
    /// Growth of this process's resident size while building, if `/proc` says.
    pub state_machine_bytes: Option<u64>,
    /// The encoded state machine.
    pub data_bytes: u64,
    pub encode: Duration,
    /// The snapshot file on disk (header + data).
    pub file_bytes: u64,
    pub write_durable: Duration,
    pub open_read: Duration,
    pub decode: Duration,
    /// The decoded state machine equals the original.
    pub round_trip_ok: bool,
}

/// Runs the measurement in `dir` (created; left for the caller to remove).
pub fn measure(
    dir: &Path,
    keys: u64,
    values: &Values,
    clients: usize,
) -> Result<SnapshotCosts, String> {
    let clients = clients.max(1) as u64;
    let limits = SessionLimits::default();
    let rss_before = memory_of("self").map(|m| m.rss_bytes);
    let started = Instant::now();
    let mut sm = KvStateMachine::new(limits);
    for k in 0..keys {
        let request = ClientRequest {
            client: ClientId(k % clients + 1),
            seq: Sequence(k / clients + 1),
            op: Op::Put { key: key_name(k), value: values.of(k).to_string() },
        };
        sm.apply(k + 1, &Command::Client(request))
            .map_err(|e| format!("applying put {k} in process: {e}"))?;
    }
    let build = started.elapsed();
    let state_machine_bytes = match (rss_before, memory_of("self")) {
        (Some(before), Some(after)) => Some(after.rss_bytes.saturating_sub(before)),
        _ => None,
    };

    let started = Instant::now();
    let data = sm.encode_snapshot();
    let encode = started.elapsed();
    let data_bytes = data.len() as u64;

    let meta = SnapshotMeta { index: LogIndex(keys.max(1)), term: Term(1) };
    let snapshot = Snapshot { meta, config: Default::default(), data };
    let hard_state = HardState { term: Term(1), vote: None, commit: meta.index };
    let wal_error = |e: kvraft_storage::WalError| format!("{}: {e}", dir.display());
    let disk_error = |e: kvraft_storage::DiskError| format!("{}: {e}", dir.display());
    let mut wal = WalStorage::open(FileDisk::open(dir).map_err(disk_error)?).map_err(wal_error)?;
    let started = Instant::now();
    wal.persist(PersistBatch {
        hard_state: Some(hard_state),
        snapshot: Some(&snapshot),
        entries: &[],
    })
    .map_err(wal_error)?;
    let write_durable = started.elapsed();
    drop(wal);
    drop(snapshot);
    let file_bytes = std::fs::metadata(dir.join(snapshot_file_name(meta)))
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .len();

    let started = Instant::now();
    let wal = WalStorage::open(FileDisk::open(dir).map_err(disk_error)?).map_err(wal_error)?;
    let open_read = started.elapsed();
    let started = Instant::now();
    let decoded = KvStateMachine::decode_snapshot(&wal.state().snapshot.data, limits)
        .map_err(|e| format!("decoding the snapshot read back: {e}"))?;
    let decode = started.elapsed();
    let round_trip_ok = decoded == sm;
    Ok(SnapshotCosts {
        keys,
        sessions: sm.sessions().len(),
        build,
        state_machine_bytes,
        data_bytes,
        encode,
        file_bytes,
        write_durable,
        open_read,
        decode,
        round_trip_ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_small_state() {
        let dir = std::env::temp_dir().join(format!("kvraft-scale-inproc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let costs = measure(&dir, 500, &Values::new(20, 1), 8).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(costs.round_trip_ok);
        assert_eq!((costs.keys, costs.sessions), (500, 8));
        // Every key and value is in the data, and the file adds its header: 52 fixed bytes,
        // no configuration, a 4-byte checksum.
        assert!(costs.data_bytes > 500 * (16 + 20), "{costs:?}");
        assert_eq!(costs.file_bytes, costs.data_bytes + 56);
    }
}
