//! [`SimDisk`]: an in-memory, deterministic [`Disk`] that remembers what is durable.
//!
//! Files are inodes (contents) named by directory entries, as on a real filesystem, because
//! the two become durable separately: `sync_data` persists an inode's bytes, `sync_dir`
//! persists the name → inode map. Each inode keeps its `current` bytes (what reads see, the
//! page cache), its `durable` bytes (what survives any crash) and the list of writes since
//! the last sync (what a crash may partly keep; see [`crate::sim_crash`]).

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use kvraft_raft::DetRng;

use crate::disk::{validate_name, Disk, DiskError, DIR_NAME};

/// No simulated file may grow past this: the disk is in memory, and a stray huge `write_at`
/// offset must be an error, not an allocation failure that aborts the simulator.
pub const MAX_SIM_FILE_LEN: u64 = 1 << 32;

/// Faults a [`SimDisk`] injects, drawn from its seeded generator so a seed replays them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Chance (per thousand) that an `append`/`write_at` fails, writing nothing or a torn part.
    pub write_error_per_mille: u32,
    /// Chance (per thousand) that a `sync_data`/`sync_dir` fails.
    pub sync_error_per_mille: u32,
    /// Total bytes the files may hold; a write that would exceed it fails with `OutOfSpace`.
    pub capacity_bytes: Option<u64>,
}

impl FaultPlan {
    /// A disk that never fails.
    pub const NONE: FaultPlan =
        FaultPlan { write_error_per_mille: 0, sync_error_per_mille: 0, capacity_bytes: None };
}

/// Operation counters, for benchmarks and tests. Attempts are counted, failed or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// `append` + `write_at` calls that reached the device.
    pub writes: u64,
    /// Bytes that reached the file contents (including torn parts of failed writes).
    pub bytes_written: u64,
    /// `sync_data` calls.
    pub data_syncs: u64,
    /// `sync_dir` calls.
    pub dir_syncs: u64,
    /// Injected write faults.
    pub failed_writes: u64,
    /// Injected fsync faults (data or directory).
    pub failed_syncs: u64,
}

/// A change to a file's bytes not yet made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PendingOp {
    Write { offset: u64, data: Bytes },
    SetLen(u64),
}

impl PendingOp {
    /// How finely a crash can tear this op: a write byte by byte, a length change not at all.
    pub(crate) fn tear_units(&self) -> usize {
        match self {
            PendingOp::Write { data, .. } => data.len(),
            PendingOp::SetLen(_) => 1,
        }
    }

    /// Applies the first `units` of the op (see [`PendingOp::tear_units`]) to `image`.
    pub(crate) fn apply(&self, image: &mut Vec<u8>, units: usize) {
        match self {
            PendingOp::Write { offset, data } => {
                let data = &data[..units.min(data.len())];
                // Offsets were bounded by MAX_SIM_FILE_LEN when the op was accepted.
                let start = *offset as usize;
                let end = start + data.len();
                if image.len() < end {
                    // A write past the end leaves a hole of zeros, as on a real filesystem.
                    image.resize(end, 0);
                }
                image[start..end].copy_from_slice(data);
            }
            PendingOp::SetLen(len) => {
                if units > 0 {
                    image.resize(*len as usize, 0);
                }
            }
        }
    }

    pub(crate) fn apply_all(&self, image: &mut Vec<u8>) {
        self.apply(image, self.tear_units());
    }
}

/// One file's contents, written and durable kept apart.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inode {
    /// What reads return.
    pub(crate) current: Vec<u8>,
    /// What every crash keeps.
    pub(crate) durable: Vec<u8>,
    /// Changes since the last sync, oldest first; `durable` + all of them = what a successful
    /// `sync_data` would make durable. Usually that equals `current`, but not after a failed
    /// fsync, whose writes are gone from here for good (as Linux forgets failed pages).
    pub(crate) pending: Vec<PendingOp>,
}

impl Inode {
    pub(crate) fn recovered(image: Vec<u8>) -> Inode {
        Inode { current: image.clone(), durable: image, pending: Vec::new() }
    }

    fn record(&mut self, op: PendingOp) {
        op.apply_all(&mut self.current);
        self.pending.push(op);
    }
}

/// A change to the directory not yet made durable by `sync_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DirOp {
    Create { name: String, ino: u64 },
    Rename { from: String, to: String, ino: u64 },
    Remove { name: String },
}

impl DirOp {
    /// The entries the op reads or changes: a crash keeps an op only if it keeps every
    /// earlier op on these names, so each name's history survives as a prefix.
    pub(crate) fn names(&self) -> Vec<&str> {
        match self {
            DirOp::Create { name, .. } | DirOp::Remove { name } => vec![name],
            DirOp::Rename { from, to, .. } => vec![from, to],
        }
    }

    pub(crate) fn apply(&self, dir: &mut BTreeMap<String, u64>) {
        match self {
            DirOp::Create { name, ino } => {
                dir.insert(name.clone(), *ino);
            }
            DirOp::Rename { from, to, ino } => {
                dir.remove(from);
                dir.insert(to.clone(), *ino);
            }
            DirOp::Remove { name } => {
                dir.remove(name);
            }
        }
    }
}

/// A deterministic simulated disk. See the module docs; `Clone` gives an independent copy.
#[derive(Clone)]
pub struct SimDisk {
    pub(crate) inodes: BTreeMap<u64, Inode>,
    pub(crate) next_ino: u64,
    /// Entries as reads see them.
    pub(crate) dir: BTreeMap<String, u64>,
    /// Entries as of the last successful `sync_dir`.
    pub(crate) durable_dir: BTreeMap<String, u64>,
    /// Directory changes since then, oldest first.
    pub(crate) pending_dir: Vec<DirOp>,
    faults: FaultPlan,
    /// Drives fault injection only; crashes take their generator from the caller.
    rng: DetRng,
    stats: DiskStats,
}

impl fmt::Debug for SimDisk {
    // File contents would drown any assertion message; print the shape instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDisk")
            .field("files", &self.dir.keys().collect::<Vec<_>>())
            .field("pending_dir_ops", &self.pending_dir.len())
            .field("faults", &self.faults)
            .field("stats", &self.stats)
            .finish()
    }
}

impl SimDisk {
    /// An empty disk that never fails.
    pub fn new(seed: u64) -> SimDisk {
        SimDisk::with_faults(seed, FaultPlan::NONE)
    }

    /// An empty disk injecting `faults`, drawn from a generator seeded with `seed`.
    pub fn with_faults(seed: u64, faults: FaultPlan) -> SimDisk {
        SimDisk {
            inodes: BTreeMap::new(),
            next_ino: 0,
            dir: BTreeMap::new(),
            durable_dir: BTreeMap::new(),
            pending_dir: Vec::new(),
            faults,
            rng: DetRng::new(seed),
            stats: DiskStats::default(),
        }
    }

    /// Changes the fault plan (e.g. a test that wants a clean recovery after a faulty run).
    pub fn set_faults(&mut self, faults: FaultPlan) {
        self.faults = faults;
    }

    /// The fault plan in force.
    pub fn faults(&self) -> FaultPlan {
        self.faults
    }

    /// What the disk has counted so far: writes, bytes written, syncs and failures.
    pub fn stats(&self) -> DiskStats {
        self.stats
    }

    /// Bytes held by the visible files (what `capacity_bytes` limits).
    pub fn used_bytes(&self) -> u64 {
        self.dir
            .values()
            .map(|ino| self.inodes.get(ino).map_or(0, |i| i.current.len() as u64))
            .sum()
    }

    /// True if the file is visible and every write to it so far is durable, its directory
    /// entry included: a crash now cannot change or lose it.
    pub fn is_durable(&self, name: &str) -> bool {
        let Some(ino) = self.dir.get(name) else { return false };
        self.durable_dir.get(name) == Some(ino)
            && self.inodes.get(ino).is_some_and(|i| i.pending.is_empty() && i.current == i.durable)
    }

    fn ino(&self, name: &str) -> Result<u64, DiskError> {
        validate_name(name)?;
        self.dir.get(name).copied().ok_or_else(|| DiskError::NotFound { name: name.to_string() })
    }

    fn inode(&self, name: &str) -> Result<&Inode, DiskError> {
        let ino = self.ino(name)?;
        self.inodes.get(&ino).ok_or_else(|| DiskError::NotFound { name: name.to_string() })
    }

    fn inode_mut(&mut self, name: &str) -> Result<&mut Inode, DiskError> {
        let ino = self.ino(name)?;
        self.inodes.get_mut(&ino).ok_or_else(|| DiskError::NotFound { name: name.to_string() })
    }

    fn injected(&mut self, per_mille: u32) -> bool {
        // No draw when faults are off, so a fault-free disk never touches its generator.
        per_mille > 0 && self.rng.chance(u64::from(per_mille), 1000)
    }

    /// Refuses a size change of `name` from `old_len` to `new_len` that the disk cannot hold.
    fn check_space(&self, name: &str, old_len: u64, new_len: u64) -> Result<(), DiskError> {
        let full = || DiskError::OutOfSpace { name: name.to_string() };
        if new_len > MAX_SIM_FILE_LEN {
            return Err(full());
        }
        if let Some(capacity) = self.faults.capacity_bytes {
            if new_len > old_len && self.used_bytes() - old_len + new_len > capacity {
                return Err(full());
            }
        }
        Ok(())
    }

    /// `append` (offset `None`) and `write_at`. Returns the offset written at.
    fn write(&mut self, name: &str, offset: Option<u64>, data: &[u8]) -> Result<u64, DiskError> {
        let old_len = self.inode(name)?.current.len() as u64;
        let offset = offset.unwrap_or(old_len);
        let end = offset.saturating_add(data.len() as u64);
        self.check_space(name, old_len, end.max(old_len))?;
        self.stats.writes += 1;
        let (applied, failed) = if self.injected(self.faults.write_error_per_mille) {
            // A failed write may still have put a torn prefix into the file.
            let torn = if data.is_empty() || self.rng.chance(1, 2) {
                0
            } else {
                self.rng.below(data.len() as u64) as usize
            };
            (torn, true)
        } else {
            (data.len(), false)
        };
        if applied > 0 || !failed {
            let op = PendingOp::Write { offset, data: Bytes::copy_from_slice(&data[..applied]) };
            self.inode_mut(name)?.record(op);
            self.stats.bytes_written += applied as u64;
        }
        if failed {
            self.stats.failed_writes += 1;
            return Err(DiskError::InjectedWriteFault {
                name: name.to_string(),
                offset,
                len: data.len(),
                persisted: applied,
            });
        }
        Ok(offset)
    }

    /// Drops inodes no name can refer to any more, even after a crash. Only valid when the
    /// directory has no pending changes (a pending remove could be undone by a crash).
    fn collect_garbage(&mut self) {
        debug_assert!(self.pending_dir.is_empty());
        let live: std::collections::BTreeSet<u64> = self.dir.values().copied().collect();
        self.inodes.retain(|ino, _| live.contains(ino));
    }
}

impl Disk for SimDisk {
    fn create(&mut self, name: &str) -> Result<(), DiskError> {
        validate_name(name)?;
        if self.dir.contains_key(name) {
            return Err(DiskError::AlreadyExists { name: name.to_string() });
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, Inode::default());
        self.dir.insert(name.to_string(), ino);
        self.pending_dir.push(DirOp::Create { name: name.to_string(), ino });
        Ok(())
    }

    fn append(&mut self, name: &str, data: &[u8]) -> Result<u64, DiskError> {
        self.write(name, None, data)
    }

    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        self.write(name, Some(offset), data).map(|_| ())
    }

    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        let old_len = self.inode(name)?.current.len() as u64;
        self.check_space(name, old_len, len)?;
        self.inode_mut(name)?.record(PendingOp::SetLen(len));
        Ok(())
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, DiskError> {
        Ok(self.inode(name)?.current.clone())
    }

    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let current = &self.inode(name)?.current;
        let file_len = current.len() as u64;
        match offset.checked_add(len as u64) {
            Some(end) if end <= file_len => Ok(current[offset as usize..end as usize].to_vec()),
            _ => Err(DiskError::ShortRead { name: name.to_string(), offset, len, file_len }),
        }
    }

    fn file_len(&self, name: &str) -> Result<u64, DiskError> {
        Ok(self.inode(name)?.current.len() as u64)
    }

    fn sync_data(&mut self, name: &str) -> Result<(), DiskError> {
        self.inode(name)?;
        self.stats.data_syncs += 1;
        let failed = self.injected(self.faults.sync_error_per_mille);
        let inode = self.inode_mut(name)?;
        if failed {
            // Like Linux after a writeback error: the pages are marked clean, so these writes
            // stay readable until a crash but no later fsync will ever persist them.
            inode.pending.clear();
            self.stats.failed_syncs += 1;
            return Err(DiskError::InjectedSyncFault { name: name.to_string() });
        }
        for op in std::mem::take(&mut inode.pending) {
            op.apply_all(&mut inode.durable);
        }
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let ino = self.ino(from)?;
        validate_name(to)?;
        if from == to {
            return Ok(()); // POSIX: renaming a file onto itself does nothing.
        }
        self.dir.remove(from);
        self.dir.insert(to.to_string(), ino);
        self.pending_dir.push(DirOp::Rename { from: from.to_string(), to: to.to_string(), ino });
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        self.ino(name)?;
        self.dir.remove(name);
        // The inode stays until the removal is durable: a crash may bring the file back.
        self.pending_dir.push(DirOp::Remove { name: name.to_string() });
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, DiskError> {
        Ok(self.dir.keys().cloned().collect())
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        self.stats.dir_syncs += 1;
        if self.injected(self.faults.sync_error_per_mille) {
            // Simplification: the directory changes stay pending (a crash may keep or lose
            // each); unlike file data, a retried sync_dir would make them durable.
            self.stats.failed_syncs += 1;
            return Err(DiskError::InjectedSyncFault { name: DIR_NAME.to_string() });
        }
        self.durable_dir = self.dir.clone();
        self.pending_dir.clear();
        self.collect_garbage();
        Ok(())
    }
}
